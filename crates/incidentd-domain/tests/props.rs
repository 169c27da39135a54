//! Property tests: for any command sequence the invariants hold, and
//! replaying the persisted (JSON round-tripped) events rebuilds exactly the
//! live state.

use incidentd_domain::*;
use proptest::prelude::*;

const PEOPLE: [&str; 4] = ["alice", "bob", "carol", "dave"];

fn person() -> impl Strategy<Value = String> {
    prop::sample::select(&PEOPLE[..]).prop_map(str::to_string)
}

fn severity() -> impl Strategy<Value = Severity> {
    prop::sample::select(&Severity::ALL[..])
}

fn status() -> impl Strategy<Value = Status> {
    prop::sample::select(
        &[
            Status::Investigating,
            Status::Identified,
            Status::Mitigating,
            Status::Resolved,
        ][..],
    )
}

fn role() -> impl Strategy<Value = Role> {
    prop::sample::select(&[Role::Commander, Role::CommsLead, Role::Sme][..])
}

fn text() -> impl Strategy<Value = String> {
    prop::sample::select(&["", " ", "db failover", "cache", "x"][..]).prop_map(str::to_string)
}

/// One alert notification for the one key of these tests (issue 6).
fn alert_intake() -> impl Strategy<Value = AlertIntake> {
    let signal = (
        prop::sample::select(&[AlertAction::Trigger, AlertAction::Acknowledge, AlertAction::Resolve][..]),
        prop::sample::select(&["fp-a", "fp-b", "fp-c"][..]),
        prop::option::of(prop::sample::select(&["critical", "info", "bogus"][..])),
    )
        .prop_map(|(action, fp, sev)| AlertSignal {
            action,
            fingerprint: fp.to_string(),
            labels: sev
                .map(|s| ("severity".to_string(), s.to_string()))
                .into_iter()
                .collect(),
            summary: format!("{fp} is down"),
            started_at: None,
            ended_at: None,
        });
    (
        prop::collection::vec(signal, 1..4),
        prop::option::of(prop::sample::select(&["payments", "nope"][..])),
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(&[0u64, 60, 3600][..]),
    )
        .prop_map(|(signals, team, auto_mitigate, auto_resolve, window)| AlertIntake {
            key: "group-1".into(),
            source: "am-main".into(),
            labels: signals.first().map(|s| s.labels.clone()).unwrap_or_default(),
            signals,
            title: "payments down".into(),
            summary: String::new(),
            team: team.map(str::to_string),
            service: None,
            severity: None,
            defaults: RouteDefaults {
                integration_team: "payments".into(),
                default_team: "platform".into(),
                unclear_severity: Severity::Sev1,
            },
            rules: AlertRules {
                reopen_window: std::time::Duration::from_secs(window),
                auto_mitigate,
                auto_resolve,
            },
            open_as: NewIncident {
                id: IncidentId(ulid::Ulid::from_parts(1, 7)),
                number: 1,
            },
        })
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        1 => alert_intake().prop_map(|i| Action::Alert(std::sync::Arc::new(i))),
        3 => Just(Action::Tick),
        1 => text().prop_map(|t| Action::UpdateReview {
            sections: review::ReviewSections {
                root_causes: Some(t),
                ..Default::default()
            }
        }),
        1 => (text(), person(), 0i64..10_000_000).prop_map(|(description, owner, due)| Action::AddActionItem {
            description,
            owner,
            due_at: Timestamp(1_795_729_200_000 + due),
        }),
        1 => (1u32..4).prop_map(|number| Action::CompleteActionItem { number }),
        1 => (1u32..4, text()).prop_map(|(number, reason)| Action::DropActionItem { number, reason }),
        1 => Just(Action::Acknowledge),
        1 => (severity(), text()).prop_map(|(severity, reason)| Action::SetSeverity { severity, reason }),
        1 => (role(), person(), prop::option::of(text())).prop_map(|(role, person, track)| Action::AssignRole {
            role,
            person,
            track
        }),
        1 => (role(), person()).prop_map(|(role, person)| Action::UnassignRole { role, person }),
        1 => (status(), text()).prop_map(|(status, note)| Action::SetStatus { status, note }),
        1 => text().prop_map(|note| Action::Resolve { note }),
        1 => (
            prop::option::of(text()),
            prop::option::of(0u32..150),
            any::<bool>(),
            prop::sample::select(&[DataLoss::None, DataLoss::Possible, DataLoss::Confirmed][..]),
        )
            .prop_map(|(impact, pct, reg, loss)| {
            Action::SetImpact {
                impact,
                customer_impact_percent: pct,
                data_loss: Some(loss),
                regulatory: Some(reg),
            }
        }),
        1 => (
            prop::sample::select(&[EntryKind::Note, EntryKind::Finding, EntryKind::System][..]),
            text()
        )
            .prop_map(|(kind, text)| Action::AddEntry { kind, text }),
        1 => (
            prop::sample::select(&[UpdateKind::Internal, UpdateKind::Customer, UpdateKind::Executive][..]),
            prop::option::of(text()),
            prop::option::of(text()),
            prop::option::of(text()),
        )
            .prop_map(|(kind, a, b, c)| Action::PostUpdate {
                kind,
                fields: UpdateFields {
                    current_theory: a,
                    customer_symptom: b,
                    business_impact: c,
                    ..Default::default()
                }
            }),
        1 => (
            prop::sample::select(&["payments-api", "checkout-web", ""][..]),
            prop::sample::select(&[
                ComponentStatus::Operational,
                ComponentStatus::DegradedPerformance,
                ComponentStatus::PartialOutage,
                ComponentStatus::MajorOutage,
            ][..]),
        )
            .prop_map(|(service, status)| Action::SetComponentStatus {
                service: service.to_string(),
                status,
            }),
    ]
}

fn check_invariants(s: &Incident, events_so_far: u64) {
    assert_eq!(s.version, events_so_far, "version counts events");
    let smes: Vec<&str> = s.roster.smes.iter().map(|x| x.person.as_str()).collect();
    let mut dedup = smes.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), smes.len(), "an SME appears once");
    assert!(
        s.roster.smes.iter().all(|x| !x.track.trim().is_empty()),
        "every SME has a track"
    );
    assert_eq!(
        s.resolved_at.is_some(),
        s.status == Status::Resolved,
        "resolved_at iff resolved"
    );
    if s.status >= Status::Mitigating {
        assert!(s.mitigated_at.is_some(), "mitigated_at once mitigating");
    }
    for (i, e) in s.timeline.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "timeline seq contiguous");
        assert!(e.version <= s.version && e.version >= 1);
    }
    assert!(
        s.timeline
            .windows(2)
            .all(|w| w[0].version <= w[1].version && w[0].at <= w[1].at)
    );
    if let Some(p) = s.customer_impact_percent {
        assert!(p <= 100);
    }
    if s.status == Status::Resolved {
        assert!(
            s.component_overrides.is_empty(),
            "status page overrides end with the incident"
        );
    }
    let mut services: Vec<&str> = s.component_overrides.iter().map(|o| o.service.as_str()).collect();
    services.sort();
    services.dedup();
    assert_eq!(
        services.len(),
        s.component_overrides.len(),
        "one override per component"
    );
    let mut rules: Vec<&str> = s.escalations.iter().map(|e| e.rule.as_str()).collect();
    rules.sort();
    rules.dedup();
    assert_eq!(rules.len(), s.escalations.len(), "each escalation rule fires once");
    assert!(
        s.checklist
            .iter()
            .all(|c| c.done_at.is_none() || c.missed_at.is_none() || c.done_at >= c.missed_at),
        "a missed item can only be done later"
    );
    let mut fps: Vec<&str> = s.alerts.iter().map(|a| a.fingerprint.as_str()).collect();
    fps.sort();
    fps.dedup();
    assert_eq!(fps.len(), s.alerts.len(), "an alert appears once per fingerprint");
    if !s.alerts.is_empty() {
        assert!(s.alert_key.is_some(), "an incident with alerts knows its key");
    }
    assert!(
        s.alerts
            .iter()
            .all(|a| a.ended_at.is_some() == (a.status == AlertStatus::Resolved)),
        "ended_at iff resolved"
    );
}

/// Runs one command: its events are applied and logged (as JSON), an error changes nothing.
fn step(
    live: &mut Incident,
    log: &mut Vec<String>,
    cmd: &Command,
    now: Timestamp,
    policy: &Policy,
) -> Result<(), TestCaseError> {
    let ctx = Ctx {
        now,
        policy,
        directory: &OpenDirectory,
    };
    let before = live.clone();
    match decide(live, cmd, &ctx) {
        Ok(events) => {
            for e in &events {
                apply(live, e);
                log.push(serde_json::to_string(e).unwrap());
            }
            if cmd.action == Action::Tick {
                // What fired is recorded: nothing is due any more at `now`.
                prop_assert!(timers::fire(live, policy, now).is_empty(), "a tick leaves nothing due");
                prop_assert!(timers::next_deadline(live, policy).is_none_or(|d| d > now));
            }
        }
        Err(_) => prop_assert_eq!(&*live, &before, "an error changes nothing"),
    }
    check_invariants(live, log.len() as u64);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn invariants_hold_and_replay_equals_live(
        declared_sev in prop::option::of(severity()),
        steps in prop::collection::vec((action(), prop::option::of(person()), 0i64..600_000), 0..60),
    ) {
        let policy = Policy::playbook();
        let mut now = Timestamp(1_795_729_200_000);
        let mut live = Incident::default();
        let mut log: Vec<String> = Vec::new();
        let declare = Command { access: Default::default(),
            by: Some("alice".into()),
            action: Action::Declare {
                id: IncidentId(ulid::Ulid::from_parts(1, 7)),
                number: 1,
                title: "payments down".into(),
                team: "payments".into(),
                services: vec!["payments-api".into()],
                severity: declared_sev,
                summary: String::new(),
                commander: None,
                drill: false,
            },
        };
        let all = std::iter::once((declare, 0)).chain(
            steps.into_iter().map(|(action, by, dt)| (Command { access: Default::default(), by, action }, dt)),
        );
        for (cmd, dt) in all {
            now = Timestamp(now.0 + dt);
            step(&mut live, &mut log, &cmd, now, &policy)?;
        }
        let events: Vec<Event> = log.iter().map(|j| serde_json::from_str(j).unwrap()).collect();
        let replayed = replay(&events);
        prop_assert_eq!(replayed, live);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Incidents opened by an alert: any mix of alert notifications and
    /// responder commands keeps the invariants, and replay == live.
    #[test]
    fn alert_opened_incidents_replay_equals_live(
        first in alert_intake(),
        steps in prop::collection::vec((action(), 0i64..1_200_000), 0..60),
    ) {
        let policy = Policy::playbook();
        let mut now = Timestamp(1_795_729_200_000);
        let mut live = Incident::default();
        let mut log: Vec<String> = Vec::new();
        let all = std::iter::once((Action::Alert(std::sync::Arc::new(first)), 0)).chain(steps);
        for (action, dt) in all {
            now = Timestamp(now.0 + dt);
            step(&mut live, &mut log, &Command { access: Default::default(), by: None, action }, now, &policy)?;
        }
        let events: Vec<Event> = log.iter().map(|j| serde_json::from_str(j).unwrap()).collect();
        prop_assert_eq!(replay(&events), live);
    }
}
