//! Fuzzing the alert edges' parsers with proptest (issue 8): the Alertmanager
//! webhook and the PagerDuty Events v2 body, fed arbitrary bytes, arbitrary
//! JSON, and structure-aware mutants of the real payloads in `fixtures/`.
//! The property: no panic; a refusal names the field it is about (the 400's
//! message); an accepted notification keeps the parser's limits.
//! `PROPTEST_CASES` (default 256) sets the run's size: see `fuzz/README.md`.

use incidentd_domain::alert::limits;
use incidentd_fuzzkit::json;
use incidentd_gateway::ingest::{self, Integrations};
use incidentd_gateway::{IntegrationRoute, SourceKind, alertmanager, pagerduty};
use proptest::prelude::*;
use serde_json::Value;
use std::sync::Arc;

const AM_SEEDS: &[&str] = &[
    include_str!("../fixtures/alertmanager/firing.json"),
    include_str!("../fixtures/alertmanager/partially-resolved.json"),
    include_str!("../fixtures/alertmanager/resolved.json"),
    include_str!("../fixtures/alertmanager/capture-checkout/firing.json"),
    include_str!("../fixtures/alertmanager/capture-checkout/resolved.json"),
];
const AM_FIELDS: &[&str] = &[
    "body",
    "version",
    "groupKey",
    "commonLabels",
    "groupLabels",
    "commonAnnotations",
    "externalURL",
    "alerts",
];
/// Field names of a payload (mutants insert and rename with these).
const AM_KEYS: &[&str] = &[
    "version",
    "groupKey",
    "status",
    "receiver",
    "alerts",
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "fingerprint",
    "generatorURL",
    "commonLabels",
    "groupLabels",
    "commonAnnotations",
    "externalURL",
    "truncatedAlerts",
    "alertname",
    "summary",
    "description",
    "team",
    "severity",
];

const PD_SEEDS: &[&str] = &[
    include_str!("../fixtures/pagerduty/trigger.json"),
    include_str!("../fixtures/pagerduty/acknowledge.json"),
    include_str!("../fixtures/pagerduty/resolve.json"),
];
const PD_FIELDS: &[&str] = &["body", "routing_key", "event_action", "dedup_key", "payload"];
const PD_KEYS: &[&str] = &[
    "routing_key",
    "event_action",
    "dedup_key",
    "payload",
    "summary",
    "source",
    "severity",
    "timestamp",
    "component",
    "group",
    "class",
    "custom_details",
    "images",
    "links",
    "client",
    "client_url",
];
/// The routing key of the PagerDuty fixtures.
const PD_ROUTING_KEY: &str = "samplekeyhere-routing";

fn seeds(texts: &[&str]) -> Vec<Value> {
    texts
        .iter()
        .map(|t| serde_json::from_str(t).expect("fixture is JSON"))
        .collect()
}

/// The fixtures' routing key (a pagerduty integration) and an Alertmanager token.
fn integrations() -> Integrations {
    let mut t = Integrations::new("platform".into(), incidentd_domain::Severity::Sev1);
    let secrets = [
        (PD_ROUTING_KEY, "pd", SourceKind::PagerDuty),
        ("am-token", "am", SourceKind::Alertmanager),
    ];
    for (secret, id, kind) in secrets {
        let (id, team, rules) = (id.into(), "payments".into(), Default::default());
        t.insert(
            ingest::sha256(secret),
            Arc::new(IntegrationRoute { id, kind, team, rules }),
        );
    }
    t
}

/// `message` names one of `fields` (`alerts[3].labels.x: ...`) and says something after it.
fn names_a_field(message: &str, fields: &[&str]) -> bool {
    fields.iter().any(|f| {
        message
            .strip_prefix(f)
            .is_some_and(|rest| rest.starts_with([':', '.', '[']))
    }) && message
        .split_once(": ")
        .is_some_and(|(_, what)| !what.trim().is_empty())
}

fn check_alertmanager(body: &[u8]) -> Result<(), TestCaseError> {
    match alertmanager::parse_body(body) {
        Ok(n) => {
            prop_assert!(!n.signals.is_empty() && n.signals.len() <= limits::SIGNALS_MAX);
            prop_assert!(
                !n.key.trim().is_empty() && n.key.len() <= limits::KEY_MAX_BYTES,
                "key {:?}",
                n.key
            );
            for s in &n.signals {
                prop_assert!(!s.fingerprint.is_empty() && !s.labels.is_empty());
                prop_assert!(s.summary.chars().count() <= limits::SUMMARY_MAX_CHARS);
            }
        }
        Err(s) => {
            prop_assert_eq!(s.code(), tonic::Code::InvalidArgument);
            prop_assert!(names_a_field(s.message(), AM_FIELDS), "{:?}", s.message());
        }
    }
    Ok(())
}

fn check_pagerduty(table: &Integrations, body: &[u8]) -> Result<(), TestCaseError> {
    match pagerduty::parse_body(table, body) {
        Ok((route, key, n)) => {
            prop_assert_eq!(route.kind, SourceKind::PagerDuty);
            prop_assert!(
                !key.trim().is_empty() && key.len() <= limits::KEY_MAX_BYTES,
                "key {:?}",
                key
            );
            prop_assert_eq!(&n.key, &key);
            prop_assert_eq!(n.signals.len(), 1);
            prop_assert!(n.signals[0].summary.chars().count() <= limits::SUMMARY_MAX_CHARS);
        }
        Err(errors) => {
            prop_assert!(!errors.is_empty());
            for e in &errors {
                prop_assert!(names_a_field(e, PD_FIELDS), "{:?} in {:?}", e, errors);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(incidentd_fuzzkit::config())]

    #[test]
    fn alertmanager_arbitrary_bytes(body in json::bytes()) {
        check_alertmanager(&body)?;
    }

    #[test]
    fn alertmanager_arbitrary_json(v in json::value(AM_KEYS)) {
        check_alertmanager(v.to_string().as_bytes())?;
    }

    #[test]
    fn alertmanager_mutated_captures(case in json::mutants(seeds(AM_SEEDS), AM_KEYS)) {
        check_alertmanager(&case.body)?;
    }

    /// The shared RFC 3339 parser: a time it reads it reads back from its
    /// own formatting (to the second, in the years 4 digits can hold).
    #[test]
    fn rfc3339_times(text in prop_oneof![incidentd_fuzzkit::time_like(), any::<String>()]) {
        if let Some(t) = ingest::parse_time(&text) {
            let formatted = t.to_string();
            if formatted.as_bytes().get(4) == Some(&b'-') {
                let again = ingest::parse_time(&formatted).map(|a| a.0.div_euclid(1000));
                prop_assert_eq!(again, Some(t.0.div_euclid(1000)), "{}", formatted);
            }
        }
    }

    #[test]
    fn pagerduty_arbitrary_bytes(body in json::bytes()) {
        check_pagerduty(&integrations(), &body)?;
    }

    #[test]
    fn pagerduty_arbitrary_json(v in json::value(PD_KEYS)) {
        check_pagerduty(&integrations(), v.to_string().as_bytes())?;
    }

    #[test]
    fn pagerduty_mutated_examples(case in json::mutants(seeds(PD_SEEDS), PD_KEYS)) {
        check_pagerduty(&integrations(), &case.body)?;
    }
}

/// The seeds themselves parse (else the mutants only test the refusals).
#[test]
fn seeds_parse() {
    for s in AM_SEEDS {
        alertmanager::parse_body(s.as_bytes()).expect("capture parses");
    }
    for s in PD_SEEDS {
        pagerduty::parse_body(&integrations(), s.as_bytes()).expect("example parses");
    }
}

/// Kinds of damage the mutants make, each checked once on purpose.
#[test]
fn named_mutations_are_refused_by_field() {
    use incidentd_fuzzkit::json::{Edit, edited};
    let firing = &seeds(AM_SEEDS)[0];
    let refused = |spot: &str, e: Edit, field: &str| {
        let body = edited(firing, spot, &e);
        let s = alertmanager::parse_body(&body).expect_err(&String::from_utf8_lossy(&body));
        assert!(s.message().starts_with(field), "{:?} should name {field}", s.message());
    };
    refused(
        "/alerts/0/startsAt",
        Edit::Replace(Value::from(7)),
        "alerts[0].startsAt",
    );
    refused("/alerts/1/labels", Edit::Delete, "alerts[1].labels");
    refused("/groupKey", Edit::Token(b"1e400".to_vec()), "body");
    refused("/alerts/1", Edit::Repeat(1000), "alerts");
    refused("/alerts/0/labels", Edit::Token(b"\"\xff\"".to_vec()), "body");
    refused(
        "/alerts/0",
        Edit::Token([b"[".repeat(200), b"]".repeat(200)].concat()),
        "body",
    );
    refused("/alerts/0/status", Edit::Nest(3, true), "alerts[0].status");
    // A duplicate key: the last one wins (serde_json), so a bad first copy is not seen.
    let dup = edited(firing, "/version", &Edit::Duplicate(Value::from("3")));
    assert!(
        dup.starts_with(br#"{"version":"3","#),
        "{}",
        String::from_utf8_lossy(&dup)
    );
    alertmanager::parse_body(&dup).expect("the last duplicate wins");
}
