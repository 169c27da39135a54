//! Alert rules of issue 6, one small check per rule: routing from labels,
//! one incident per key with alerts by fingerprint, resolution, reopen
//! window, auto_mitigate / auto_resolve, ignored follow-ups.

use incidentd_domain::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const T0: i64 = 1_795_729_200_000; // 2026-11-26T21:40:00Z

/// Teams `platform`, `payments`; service `payments-api`.
struct Org;

impl Directory for Org {
    fn has_team(&self, id: &str) -> bool {
        matches!(id, "platform" | "payments")
    }
    fn has_person(&self, _: &str) -> bool {
        true
    }
    fn has_service(&self, id: &str) -> bool {
        id == "payments-api"
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn signal(action: AlertAction, fp: &str) -> AlertSignal {
    AlertSignal {
        action,
        fingerprint: fp.into(),
        labels: labels(&[("alertname", "PaymentsDown"), ("instance", fp)]),
        summary: format!("payments down on {fp}"),
        started_at: None,
        ended_at: None,
    }
}

fn intake(route: &[(&str, &str)], signals: Vec<AlertSignal>) -> AlertIntake {
    AlertIntake {
        key: "group-1".into(),
        source: "am-main".into(),
        signals,
        title: "Payments API is not answering".into(),
        summary: String::new(),
        labels: labels(route),
        team: None,
        service: None,
        severity: None,
        defaults: RouteDefaults {
            integration_team: "payments".into(),
            default_team: "platform".into(),
            unclear_severity: Severity::Sev1,
        },
        rules: AlertRules::default(),
        open_as: NewIncident {
            id: IncidentId(ulid::Ulid::from_parts(1, 1)),
            number: 7,
        },
    }
}

struct World {
    state: Incident,
    now: Timestamp,
}

impl World {
    fn new() -> World {
        World {
            state: Incident::default(),
            now: Timestamp(T0),
        }
    }

    fn run_cmd(&mut self, by: Option<&str>, action: Action) -> Result<Vec<Event>, DomainError> {
        let policy = Policy::playbook();
        let ctx = Ctx {
            now: self.now,
            policy: &policy,
            directory: &Org,
        };
        let cmd = Command {
            access: Default::default(),
            by: by.map(str::to_string),
            action,
        };
        let events = decide(&self.state, &cmd, &ctx)?;
        for e in &events {
            apply(&mut self.state, e);
        }
        Ok(events)
    }

    fn alert(&mut self, i: AlertIntake) -> Result<Vec<Event>, DomainError> {
        self.run_cmd(None, Action::Alert(Arc::new(i)))
    }

    fn opened(route: &[(&str, &str)]) -> World {
        let mut w = World::new();
        w.alert(intake(route, vec![signal(AlertAction::Trigger, "fp-1")]))
            .unwrap();
        w
    }

    fn later(&mut self, d: Duration) {
        self.now = self.now.plus(d);
    }

    fn statuses(&self) -> Vec<(&str, AlertStatus)> {
        self.state
            .alerts
            .iter()
            .map(|a| (a.fingerprint.as_str(), a.status))
            .collect()
    }

    fn has_entry(&self, needle: &str) -> bool {
        self.state.timeline.iter().any(|e| e.text.contains(needle))
    }
}

fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind.name()).collect()
}

/// `check(labels, team, severity, services)`: a first notification with these labels.
#[track_caller]
fn check(route: &[(&str, &str)], team: &str, severity: Severity, services: &[&str]) {
    let w = World::opened(route);
    assert_eq!(w.state.team, team, "team for {route:?}");
    assert_eq!(w.state.severity, severity, "severity for {route:?}");
    assert_eq!(w.state.services, services, "services for {route:?}");
}

#[test]
fn routing_from_labels() {
    check(
        &[("team", "payments"), ("severity", "critical")],
        "payments",
        Severity::Sev1,
        &[],
    );
    check(
        &[("team", "platform"), ("severity", "error")],
        "platform",
        Severity::Sev2,
        &[],
    );
    check(&[("severity", "warning")], "payments", Severity::Sev3, &[]);
    check(&[("severity", "info")], "payments", Severity::Sev4, &[]);
    // incident_severity wins over severity.
    check(
        &[("incident_severity", "sev3"), ("severity", "critical")],
        "payments",
        Severity::Sev3,
        &[],
    );
    check(&[("incident_severity", "SEV-2")], "payments", Severity::Sev2, &[]);
    // A bad incident_severity falls back to severity.
    check(
        &[("incident_severity", "high"), ("severity", "info")],
        "payments",
        Severity::Sev4,
        &[],
    );
    // Missing or unknown severity: unclear → SEV-1.
    check(&[], "payments", Severity::Sev1, &[]);
    check(&[("severity", "page-me")], "payments", Severity::Sev1, &[]);
    // A configured service is recorded; an unknown one is not (and never refused).
    check(
        &[("service", "payments-api")],
        "payments",
        Severity::Sev1,
        &["payments-api"],
    );
    check(&[("service", "payments")], "payments", Severity::Sev1, &[]);
}

#[test]
fn unknown_team_goes_to_the_org_default_with_a_note() {
    let w = World::opened(&[("team", "no-such-team")]);
    assert_eq!(w.state.team, "platform");
    assert!(w.has_entry("\"no-such-team\", which is not a configured team: routed to platform"));
    let w = World::opened(&[]);
    assert_eq!(w.state.team, "payments", "no team label: the integration's team");
    assert!(w.has_entry("names no team: routed to payments"));
    assert!(w.has_entry("Severity was unclear"), "unclear severity says so");
}

#[test]
fn configured_unclear_severity_applies_and_is_noted() {
    let mut w = World::new();
    let mut i = intake(&[], vec![signal(AlertAction::Trigger, "fp-1")]);
    i.defaults.unclear_severity = Severity::Sev2;
    w.alert(i).unwrap();
    assert_eq!(w.state.severity, Severity::Sev2);
    assert!(w.has_entry("treated as SEV-2 (the org's unclear severity)"));
}

#[test]
fn explicit_fields_override_labels() {
    let mut w = World::new();
    let mut i = intake(
        &[("team", "platform"), ("severity", "critical")],
        vec![signal(AlertAction::Trigger, "k")],
    );
    i.team = Some("payments".into());
    i.severity = Some(Severity::Sev4);
    i.service = Some("payments-api".into());
    w.alert(i).unwrap();
    assert_eq!(
        (w.state.team.as_str(), w.state.severity, w.state.services.clone()),
        ("payments", Severity::Sev4, vec!["payments-api".to_string()])
    );
}

#[test]
fn first_trigger_declares_with_the_alert_and_the_key() {
    let mut w = World::new();
    let events = w
        .alert(intake(
            &[("team", "payments")],
            vec![signal(AlertAction::Trigger, "fp-1")],
        ))
        .unwrap();
    assert_eq!(names(&events), ["declared", "alert_attached"]);
    assert_eq!(w.state.number, 7);
    assert_eq!(w.state.title, "Payments API is not answering");
    assert_eq!(w.state.alert_key.as_deref(), Some("group-1"));
    assert_eq!(w.statuses(), [("fp-1", AlertStatus::Firing)]);
    assert!(
        events.iter().all(|e| e.by.as_deref() == Some("am-main")),
        "the integration is the author"
    );
}

#[test]
fn a_resolve_alone_opens_nothing() {
    let mut w = World::new();
    let e = w
        .alert(intake(&[], vec![signal(AlertAction::Resolve, "fp-1")]))
        .unwrap_err();
    assert!(alert::is_ignored(&e), "{e}");
    assert!(!w.state.is_declared());
}

#[test]
fn later_alerts_attach_by_fingerprint_and_duplicates_change_nothing() {
    let mut w = World::opened(&[]);
    let v = w.state.version;
    // Alertmanager resends the whole group: the known alert is a duplicate.
    let events = w
        .alert(intake(
            &[],
            vec![
                signal(AlertAction::Trigger, "fp-1"),
                signal(AlertAction::Trigger, "fp-2"),
            ],
        ))
        .unwrap();
    assert_eq!(names(&events), ["alert_attached"]);
    assert_eq!(w.state.version, v + 1);
    assert!(w.has_entry("Alert firing: payments down on fp-2 [fp-2]"));
    assert!(
        w.alert(intake(&[], vec![signal(AlertAction::Trigger, "fp-2")]))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        w.statuses(),
        [("fp-1", AlertStatus::Firing), ("fp-2", AlertStatus::Firing)]
    );
}

#[test]
fn all_alerts_resolved_is_noted_and_never_resolves_by_default() {
    let mut w = World::opened(&[]);
    w.alert(intake(&[], vec![signal(AlertAction::Trigger, "fp-2")]))
        .unwrap();
    let mut resolve1 = signal(AlertAction::Resolve, "fp-1");
    resolve1.ended_at = Some(Timestamp(T0 + 5_000));
    let events = w
        .alert(intake(&[], vec![resolve1, signal(AlertAction::Trigger, "fp-2")]))
        .unwrap();
    assert_eq!(names(&events), ["alert_resolved"]);
    assert_eq!(w.state.alerts[0].ended_at, Some(Timestamp(T0 + 5_000)));
    let events = w
        .alert(intake(&[], vec![signal(AlertAction::Resolve, "fp-2")]))
        .unwrap();
    assert_eq!(names(&events), ["alert_resolved", "alerts_all_resolved"]);
    assert!(w.has_entry("All 2 alert(s) of this incident are resolved"));
    assert_eq!(w.state.status, Status::Investigating, "the commander decides");
    // Resolving again changes nothing.
    assert!(
        w.alert(intake(&[], vec![signal(AlertAction::Resolve, "fp-2")]))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn auto_mitigate_and_auto_resolve_when_configured() {
    let mut w = World::opened(&[]);
    let mut i = intake(&[], vec![signal(AlertAction::Resolve, "fp-1")]);
    i.rules.auto_mitigate = true;
    let events = w.alert(i).unwrap();
    assert_eq!(
        names(&events),
        ["alert_resolved", "alerts_all_resolved", "status_changed"]
    );
    assert_eq!(w.state.status, Status::Mitigating);
    assert!(w.state.mitigated_at.is_some());

    let mut w = World::opened(&[]);
    let mut i = intake(&[], vec![signal(AlertAction::Resolve, "fp-1")]);
    i.rules.auto_resolve = true;
    w.alert(i).unwrap();
    assert_eq!(w.state.status, Status::Resolved);
}

#[test]
fn reopen_within_the_window_and_closed_outside_it() {
    let mut w = World::opened(&[]);
    w.run_cmd(Some("alice"), Action::Resolve { note: "fixed".into() })
        .unwrap();
    w.later(Duration::from_secs(10 * 60));
    // Follow-ups on the closed key are ignored and say so.
    let e = w
        .alert(intake(&[], vec![signal(AlertAction::Resolve, "fp-1")]))
        .unwrap_err();
    assert!(alert::is_ignored(&e) && e.message.contains("is resolved"), "{e}");
    // The group fires again within the 30 min window: reopened, same incident.
    let events = w
        .alert(intake(&[], vec![signal(AlertAction::Trigger, "fp-3")]))
        .unwrap();
    assert_eq!(names(&events), ["status_changed", "alert_attached"]);
    assert_eq!(w.state.status, Status::Investigating);
    assert!(w.has_entry("Reopened"));

    w.run_cmd(
        Some("alice"),
        Action::Resolve {
            note: "fixed again".into(),
        },
    )
    .unwrap();
    w.later(Duration::from_secs(31 * 60));
    let before = w.state.clone();
    let e = w
        .alert(intake(&[], vec![signal(AlertAction::Trigger, "fp-1")]))
        .unwrap_err();
    assert!(alert::is_closed(&e), "{e}");
    assert_eq!(w.state, before, "a refusal changes nothing");
}

#[test]
fn a_resolved_alert_firing_again_is_firing() {
    let mut w = World::opened(&[]);
    w.alert(intake(&[], vec![signal(AlertAction::Trigger, "fp-2")]))
        .unwrap();
    w.alert(intake(&[], vec![signal(AlertAction::Resolve, "fp-1")]))
        .unwrap();
    let events = w
        .alert(intake(&[], vec![signal(AlertAction::Trigger, "fp-1")]))
        .unwrap();
    assert_eq!(names(&events), ["alert_attached"]);
    assert!(w.has_entry("Alert firing again"));
    assert_eq!(
        w.statuses(),
        [("fp-1", AlertStatus::Firing), ("fp-2", AlertStatus::Firing)]
    );
}

#[test]
fn acknowledge_acknowledges_the_alert_and_the_incident_once() {
    let mut w = World::opened(&[]);
    let events = w
        .alert(intake(&[], vec![signal(AlertAction::Acknowledge, "fp-1")]))
        .unwrap();
    assert_eq!(names(&events), ["alert_acknowledged", "acknowledged"]);
    assert!(w.state.acknowledged_at.is_some());
    assert_eq!(w.state.acknowledged_by.as_deref(), Some("am-main"));
    assert!(
        w.alert(intake(&[], vec![signal(AlertAction::Acknowledge, "fp-1")]))
            .unwrap()
            .is_empty()
    );
    // An acknowledged alert still counts as unresolved until it resolves.
    let events = w
        .alert(intake(&[], vec![signal(AlertAction::Resolve, "fp-1")]))
        .unwrap();
    assert_eq!(names(&events), ["alert_resolved", "alerts_all_resolved"]);
}

#[test]
fn an_alert_that_fired_and_resolved_between_notifications_is_recorded() {
    let mut w = World::opened(&[]);
    let events = w
        .alert(intake(&[], vec![signal(AlertAction::Resolve, "fp-9")]))
        .unwrap();
    assert_eq!(names(&events), ["alert_attached"]);
    assert_eq!(w.statuses()[1], ("fp-9", AlertStatus::Resolved));
    assert!(w.state.alerts[1].ended_at.is_some());
}

#[test]
fn bad_intakes_name_the_field_and_change_nothing() {
    type Mutation = Box<dyn Fn(&mut AlertIntake)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (Box::new(|i| i.key = " ".into()), "dedup_key"),
        (Box::new(|i| i.key = "k".repeat(256)), "dedup_key"),
        (Box::new(|i| i.signals.clear()), "alerts"),
        (Box::new(|i| i.signals[0].fingerprint.clear()), "fingerprint"),
        (Box::new(|i| i.signals[0].summary = "s".repeat(1025)), "summary"),
        (
            Box::new(|i| {
                i.signals[0].labels = (0..65).map(|n| (format!("l{n}"), String::new())).collect();
            }),
            "labels",
        ),
        (Box::new(|i| i.source.clear()), "source"),
    ];
    for (mutate, field) in cases {
        let mut w = World::new();
        let mut i = intake(&[], vec![signal(AlertAction::Trigger, "fp-1")]);
        mutate(&mut i);
        let e = w.alert(i).unwrap_err();
        assert_eq!((e.kind, e.field), (ErrorKind::InvalidArgument, Some(field)), "{e}");
        assert!(!w.state.is_declared());
    }
}

#[test]
fn long_titles_are_cut_not_refused() {
    let mut w = World::new();
    let mut i = intake(&[], vec![signal(AlertAction::Trigger, "fp-1")]);
    i.title = "t".repeat(500);
    w.alert(i).unwrap();
    assert_eq!(w.state.title.chars().count(), 200);
}
