//! Game-day scenario files: every `*.toml` of the `--scenarios` directory,
//! read and checked before any port is bound. A file:
//!
//! ```toml
//! id = "cache-stampede"                 # unique, also among the built-in ones
//! title = "Cache stampede after a deploy"
//! description = "What the drill practises."
//! severity = "SEV2"                     # optional: omitted means unclear (SEV-1)
//!
//! [[steps]]
//! after = "2m"                          # from the drill's start
//! kind = "alert"                        # alert | finding | customer_complaint | note
//! text = "api p99 above 2 s"            #   (these take text)
//! [[steps]]
//! after = "10m"
//! kind = "severity"                     # severity: to + reason
//! to = "SEV1"
//! reason = "checkout fails too"
//! [[steps]]
//! after = "12m"
//! kind = "data_loss"                    # data_loss: value NONE | POSSIBLE | CONFIRMED
//! value = "CONFIRMED"
//! [[steps]]
//! after = "15m"
//! kind = "regulatory"                   # regulatory: text
//! text = "personal data exposed"
//! ```

use anyhow::{Context, bail};
use incidentd_domain::drill::{Scenario, Step, StepKind, builtin_scenarios};
use incidentd_domain::{DataLoss, Severity};
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    id: String,
    title: String,
    #[serde(default)]
    description: String,
    severity: Option<String>,
    #[serde(default)]
    steps: Vec<RawStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    after: String,
    kind: String,
    text: Option<String>,
    to: Option<String>,
    reason: Option<String>,
    value: Option<String>,
}

fn severity(s: &str) -> Option<Severity> {
    match s {
        "SEV1" => Some(Severity::Sev1),
        "SEV2" => Some(Severity::Sev2),
        "SEV3" => Some(Severity::Sev3),
        "SEV4" => Some(Severity::Sev4),
        _ => None,
    }
}

fn step(i: usize, raw: RawStep) -> anyhow::Result<Step> {
    let key = |k: &str| format!("steps[{i}].{k}");
    let after = incidentd_config::parse_duration(&raw.after).with_context(|| key("after"))?;
    let text = || {
        raw.text
            .clone()
            .with_context(|| format!("{} is required for kind {:?}", key("text"), raw.kind))
    };
    let kind = match raw.kind.as_str() {
        "alert" => StepKind::Alert { text: text()? },
        "finding" => StepKind::Finding { text: text()? },
        "customer_complaint" => StepKind::CustomerComplaint { text: text()? },
        "note" => StepKind::Note { text: text()? },
        "regulatory" => StepKind::Regulatory { text: text()? },
        "severity" => StepKind::Severity {
            to: raw
                .to
                .as_deref()
                .and_then(severity)
                .with_context(|| format!("{} must be SEV1..SEV4", key("to")))?,
            reason: raw
                .reason
                .clone()
                .with_context(|| format!("{} is required", key("reason")))?,
        },
        "data_loss" => StepKind::DataLoss {
            value: match raw.value.as_deref() {
                Some("NONE") => DataLoss::None,
                Some("POSSIBLE") => DataLoss::Possible,
                Some("CONFIRMED") => DataLoss::Confirmed,
                _ => bail!("{} must be NONE, POSSIBLE or CONFIRMED", key("value")),
            },
        },
        other => bail!(
            "{}: unknown kind {other:?} (alert, finding, customer_complaint, note, severity, data_loss, regulatory)",
            key("kind")
        ),
    };
    Ok(Step {
        after_secs: after.as_secs(),
        kind,
    })
}

/// Parses one scenario file's text.
pub fn parse(text: &str) -> anyhow::Result<Scenario> {
    let raw: RawScenario = toml::from_str(text)?;
    if raw.id.trim().is_empty() || raw.title.trim().is_empty() {
        bail!("id and title are required");
    }
    let severity = match raw.severity.as_deref() {
        None => None,
        Some(s) => Some(severity(s).with_context(|| format!("severity {s:?} must be SEV1..SEV4"))?),
    };
    let mut steps = raw
        .steps
        .into_iter()
        .enumerate()
        .map(|(i, s)| step(i, s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    steps.sort_by_key(|s| s.after_secs); // played in time order
    Ok(Scenario {
        id: raw.id,
        title: raw.title,
        description: raw.description,
        severity,
        steps,
    })
}

/// The built-in scenarios plus every `*.toml` in `dir` (sorted by file name).
pub fn load(dir: Option<&Path>) -> anyhow::Result<Vec<Scenario>> {
    let mut all = builtin_scenarios();
    let Some(dir) = dir else { return Ok(all) };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("scenarios directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).with_context(|| format!("scenario {}", f.display()))?;
        let s = parse(&text).with_context(|| format!("scenario {}", f.display()))?;
        if all.iter().any(|o| o.id == s.id) {
            bail!("scenario {}: id {:?} is used twice", f.display(), s.id);
        }
        all.push(s);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_parses_and_bad_keys_are_named() {
        let s = parse(
            "id = \"x\"\ntitle = \"X\"\nseverity = \"SEV2\"\n[[steps]]\nafter = \"2s\"\nkind = \"severity\"\nto = \"SEV1\"\nreason = \"worse\"\n[[steps]]\nafter = \"1s\"\nkind = \"alert\"\ntext = \"boom\"\n",
        )
        .unwrap();
        assert_eq!(s.severity, Some(Severity::Sev2));
        assert_eq!(s.steps.len(), 2);
        assert_eq!(s.steps[0].after_secs, 1, "sorted by time");
        let err = |t: &str| format!("{:#}", parse(t).unwrap_err());
        assert!(
            err("id = \"x\"\ntitle = \"X\"\n[[steps]]\nafter = \"1s\"\nkind = \"alert\"\n").contains("steps[0].text")
        );
        assert!(
            err("id = \"x\"\ntitle = \"X\"\n[[steps]]\nafter = \"soon\"\nkind = \"alert\"\ntext = \"t\"\n")
                .contains("steps[0].after")
        );
        assert!(
            err("id = \"x\"\ntitle = \"X\"\n[[steps]]\nafter = \"1s\"\nkind = \"meteor\"\n").contains("steps[0].kind")
        );
        assert!(err("id = \"x\"\ntitle = \"X\"\ncolour = \"red\"\n").contains("colour"));
    }

    /// The example of the module docs.
    fn doc_example() -> String {
        let doc: Vec<&str> = include_str!("scenarios.rs")
            .lines()
            .map_while(|l| l.strip_prefix("//!"))
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .skip_while(|l| *l != "```toml")
            .skip(1)
            .take_while(|l| *l != "```")
            .collect();
        doc.join("\n")
    }

    #[test]
    fn the_doc_example_parses() {
        let s = parse(&doc_example()).unwrap();
        assert_eq!((s.id.as_str(), s.steps.len()), ("cache-stampede", 4));
    }

    proptest::proptest! {
        #![proptest_config(incidentd_fuzzkit::config())]

        /// Fuzzing (issue 8): mutants of the doc example never panic, and a
        /// refusal says what is wrong (a TOML error with its line, or the key).
        #[test]
        fn mutated_scenarios_never_panic(case in incidentd_fuzzkit::text::mutants([doc_example()])) {
            if let Err(e) = parse(&case.text) {
                let text = format!("{e:#}");
                proptest::prop_assert!(!text.trim().is_empty());
                proptest::prop_assert!(
                    ["line ", "steps[", "severity", "id and title", "`"].iter().any(|w| text.contains(w)),
                    "{text}"
                );
            }
        }
    }
}
