//! Where the address, token, user and default team come from: a flag, else
//! its environment variable (clap reads both), else the config file, else a
//! default. A typo in the config file is an error, not a silent default.

use crate::cli::Global;
use crate::fail::Failure;
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const DEFAULT_ADDR: &str = "http://127.0.0.1:50051";

/// `~/.config/incidentctl/config.toml` (or under `$XDG_CONFIG_HOME`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub addr: Option<String>,
    pub token: Option<String>,
    pub user: Option<String>,
    pub team: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// With a scheme (`http://` added when missing).
    pub addr: String,
    pub token: Option<String>,
    pub user: Option<String>,
    pub team: Option<String>,
}

pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("incidentctl").join("config.toml"))
}

/// Reads the config file: the one named (which must exist) or the default
/// one (which may be absent).
pub fn load_file(named: Option<&Path>) -> Result<FileConfig, Failure> {
    let (path, must_exist) = match named {
        Some(p) => (p.to_path_buf(), true),
        None => match default_path() {
            Some(p) => (p, false),
            None => return Ok(FileConfig::default()),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => return Ok(FileConfig::default()),
        Err(e) => return Err(Failure::usage(format!("config file {}: {e}", path.display()))),
    };
    toml::from_str(&text).map_err(|e| {
        let msg = e.message().trim_end();
        let line = e
            .span()
            .map(|s| {
                format!(
                    " (line {})",
                    text.as_bytes()[..s.start.min(text.len())]
                        .iter()
                        .filter(|b| **b == b'\n')
                        .count()
                        + 1
                )
            })
            .unwrap_or_default();
        Failure::usage(format!("config file {}{line}: {msg}", path.display()))
    })
}

pub fn resolve(global: &Global, file: FileConfig) -> Settings {
    let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let addr = nonempty(global.addr.clone())
        .or(nonempty(file.addr))
        .unwrap_or_else(|| DEFAULT_ADDR.to_string());
    Settings {
        addr: with_scheme(addr.trim()),
        token: nonempty(global.token.clone()).or(nonempty(file.token)),
        user: nonempty(global.user.clone()).or(nonempty(file.user)),
        team: nonempty(file.team),
    }
}

fn with_scheme(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_is_added_when_missing() {
        assert_eq!(with_scheme("127.0.0.1:1"), "http://127.0.0.1:1");
        assert_eq!(with_scheme("https://x:1"), "https://x:1");
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        let dir = std::env::temp_dir().join(format!("incidentctl-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c.toml");
        std::fs::write(&p, "addr = \"x:1\"\ntokn = \"t\"\n").unwrap();
        let err = load_file(Some(&p)).unwrap_err();
        assert!(
            err.message.contains("tokn") && err.message.contains("line 2"),
            "{}",
            err.message
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
