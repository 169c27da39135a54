//! Fuzzing the org config parser with proptest (issue 8): arbitrary text and
//! line-level mutants of the real configs (the demo org, the deploy example,
//! CONFIG.md's example). The property: no panic; a refusal lists at least
//! one problem, each with a message and, except for a missing `[org]`
//! section, the line it is on. `PROPTEST_CASES` (default 256) sets the size.

use incidentd_config::{DEMO_TOML, OrgConfig};
use incidentd_fuzzkit::text;
use proptest::prelude::*;

/// Valid configs.
const VALID: &[&str] = &[DEMO_TOML, include_str!("../../../deploy/config.example.toml")];
/// Mutation seeds: the valid ones and CONFIG.md's example (which refers to
/// entities it leaves out, so its mutants reach the cross-reference checks).
const SEEDS: &[&str] = &[VALID[0], VALID[1], include_str!("fixtures/config_md_example.toml")];

fn check(text: &str) -> Result<(), TestCaseError> {
    let Err(err) = OrgConfig::from_toml_str(text) else {
        return Ok(());
    };
    let problems = err.problems();
    prop_assert!(!problems.is_empty());
    let last_line = text.split('\n').count();
    for p in problems {
        prop_assert!(!p.message.trim().is_empty(), "{p:?}");
        match p.line {
            Some(line) => prop_assert!((1..=last_line).contains(&line), "{p:?} beyond line {last_line}"),
            None => prop_assert!(p.message.starts_with("missing [org] section"), "no line: {p:?}"),
        }
    }
    prop_assert_eq!(err.to_string().lines().count(), problems.len());
    Ok(())
}

proptest! {
    #![proptest_config(incidentd_fuzzkit::config())]

    #[test]
    fn arbitrary_text(t in prop_oneof![any::<String>(), "[\\[\\]a-z_. =\"'{},0-9#\n-]{0,200}"]) {
        check(&t)?;
    }

    #[test]
    fn arbitrary_bytes(b in incidentd_fuzzkit::json::bytes()) {
        check(&String::from_utf8_lossy(&b))?;
    }

    #[test]
    fn mutated_configs(case in text::mutants(SEEDS.iter().copied())) {
        check(&case.text)?;
    }
}

/// Found by `arbitrary_text`: a key spanning lines (recovered from a broken
/// multi-line string) put a line break inside a problem, so the error no
/// longer displayed one problem per line.
#[test]
fn a_problem_stays_on_one_line() {
    for text in ["=\n['''\"\n", "[\"a\\nb\"]\nx = 1\n", "[org]\n\"na\\nme\" = 1\n"] {
        let err = OrgConfig::from_toml_str(text).expect_err(text);
        assert_eq!(err.to_string().lines().count(), err.problems().len(), "{err}");
    }
    let err = OrgConfig::from_toml_str("[org]\n\"na\\nme\" = 1\n").expect_err("unknown key");
    assert!(
        err.to_string()
            .starts_with(r#"config line 2: unknown key "na\nme" in [org]"#),
        "{err}"
    );
}

#[test]
fn seeds_are_valid() {
    for s in VALID {
        if let Err(e) = OrgConfig::from_toml_str(s) {
            panic!("{e}");
        }
    }
}

/// Every key of every seed, renamed to an unknown one, is refused at its line
/// (but for `[contacts]`, whose keys are group names).
#[test]
fn every_renamed_key_is_named_at_its_line() {
    let mut seeds = VALID.to_vec();
    seeds.dedup(); // the deploy example is the demo org
    for seed in seeds {
        for (text, line, section) in text::renamed_keys(seed) {
            match OrgConfig::from_toml_str(&text) {
                Ok(_) => assert_eq!(section, "[contacts]", "line {line} renamed, still valid"),
                Err(e) => assert!(
                    e.problems().iter().any(|p| p.line == Some(line)),
                    "line {line} ({section}) renamed: {e}"
                ),
            }
        }
    }
}
