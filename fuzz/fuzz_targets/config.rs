//! The org config (`OrgConfig::from_toml_str`): any text is a config or a
//! list of problems, each with a message and (but for a missing `[org]`) the
//! line it is on, never a panic.
#![no_main]

use incidentd_config::OrgConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Err(e) = OrgConfig::from_toml_str(text) {
        let problems = e.problems();
        assert!(!problems.is_empty());
        let last_line = text.split('\n').count();
        for p in problems {
            assert!(!p.message.trim().is_empty());
            match p.line {
                Some(line) => assert!((1..=last_line).contains(&line), "{p}"),
                None => assert!(p.message.starts_with("missing [org] section"), "{p}"),
            }
        }
    }
});
