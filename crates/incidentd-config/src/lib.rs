//! Owns the org config file (`--config FILE`, CONFIG.md): parsing,
//! validation, defaults, and the built-in demo org.
//!
//! * [`OrgConfig::from_toml_str`] / [`OrgConfig::load`] parse and validate a
//!   config; [`OrgConfig::demo`] is the built-in demo org whose text,
//!   [`DEMO_TOML`], `incidentd demo-config` prints.
//! * Unknown keys are errors naming the key, its section and its line
//!   (`config line 12: unknown key "naem" in [[teams]] (...)`). The first
//!   structural error (TOML syntax, unknown key, missing key, wrong type)
//!   stops parsing; after that, every validation problem (bad ids, duplicate
//!   ids, dangling references, bad enums and durations, kind-specific keys)
//!   is collected and reported together, one per line, ordered by line.
//! * Defaults: what the file leaves out comes from the playbook
//!   ([`Policy::playbook`]); `[teams.policy]` is merged over `[policy]`
//!   (see [`Policy`] and [`SeverityPolicy`] for the exact merge rules).
//! * Output is fully typed: enums instead of strings, [`std::time::Duration`]
//!   instead of duration strings, secrets wrapped in [`Secret`].
//!
//! Conventions: ids are 1–64 lowercase letters, digits or `-`; durations are
//! strings like `"90s"`, `"15m"`, `"2h"`, `"1h30m"`, `"500ms"`
//! ([`parse_duration`]).

mod duration;
mod error;
mod model;
mod policy;
mod raw;
mod resolve;
mod types;

use std::path::Path;

use toml::de::DeTable;

pub use duration::{DurationError, format_duration, parse_duration};
pub use error::{ConfigError, Problem};
pub use model::{
    AccessConfig, BlameRuleConfig, Destination, Integration, Org, OrgConfig, Person, Principal, Secret, Service,
    Sha256Digest, Smtp, Team, TeamAccess, TokenConfig,
};
pub use policy::{Checklist, EscalationRule, Policy, SeverityPolicy};
pub use resolve::{MAX_ID_LEN, is_valid_id};
pub use types::{DataLoss, DestinationKind, IntegrationKind, Scope, Severity, Status, Tier, Tls, UnknownValue};

use error::{Problems, describe_de_error};
use raw::RawConfig;

/// The demo org's config text (a realistic four-team org without tokens);
/// `incidentd demo-config` prints it and [`OrgConfig::demo`] parses it.
pub const DEMO_TOML: &str = include_str!("demo.toml");

impl OrgConfig {
    /// Parses and validates config text.
    pub fn from_toml_str(text: &str) -> Result<OrgConfig, ConfigError> {
        let mut problems = Problems::new(text);
        let (doc, syntax_errors) = DeTable::parse_recoverable(text);
        if !syntax_errors.is_empty() {
            for err in &syntax_errors {
                describe_de_error(&mut problems, Some(doc.get_ref()), err);
            }
            return Err(problems.into_error());
        }
        let raw: RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(err) => {
                describe_de_error(&mut problems, Some(doc.get_ref()), &err);
                return Err(problems.into_error());
            }
        };
        match resolve::resolve(&raw, &mut problems) {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(problems.into_error()),
        }
    }

    /// Reads and validates a config file.
    pub fn load(path: impl AsRef<Path>) -> Result<OrgConfig, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        OrgConfig::from_toml_str(&text)
    }

    /// The built-in demo org, parsed from [`DEMO_TOML`].
    ///
    /// # Panics
    ///
    /// Never in practice: the embedded text is fixed at compile time and the
    /// crate's tests assert that it parses and validates.
    pub fn demo() -> OrgConfig {
        match OrgConfig::from_toml_str(DEMO_TOML) {
            Ok(config) => config,
            Err(err) => panic!("the embedded demo config is invalid:\n{err}"),
        }
    }
}
