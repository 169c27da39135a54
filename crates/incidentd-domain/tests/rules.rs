//! The playbook rules of DESIGN.md §2, one small check per rule.

use incidentd_domain::*;

const T0: i64 = 1_795_729_200_000; // 2026-11-26T21:40:00Z

struct World {
    state: Incident,
    policy: Policy,
    now: Timestamp,
}

impl World {
    fn declared(severity: Option<Severity>) -> World {
        let mut w = World {
            state: Incident::default(),
            policy: Policy::playbook(),
            now: Timestamp(T0),
        };
        w.run(
            "alice",
            Action::Declare {
                id: IncidentId(ulid::Ulid::from_parts(1, 1)),
                number: 42,
                title: "Payments down".into(),
                team: "payments".into(),
                services: vec!["payments-api".into()],
                severity,
                summary: "Card payments fail at checkout".into(),
                commander: None,
                drill: false,
            },
        )
        .unwrap();
        w
    }

    fn run(&mut self, by: &str, action: Action) -> Result<Vec<Event>, DomainError> {
        let ctx = Ctx {
            now: self.now,
            policy: &self.policy,
            directory: &OpenDirectory,
        };
        let events = decide(
            &self.state,
            &Command {
                access: Default::default(),
                by: Some(by.into()),
                action,
            },
            &ctx,
        )?;
        for e in &events {
            apply(&mut self.state, e);
        }
        Ok(events)
    }

    fn last_entry(&self) -> &str {
        &self.state.timeline.last().unwrap().text
    }
}

fn err_of(r: Result<Vec<Event>, DomainError>) -> (ErrorKind, Option<&'static str>) {
    let e = r.unwrap_err();
    (e.kind, e.field)
}

#[test]
fn unspecified_severity_defaults_up_and_says_so() {
    let w = World::declared(None);
    assert_eq!(w.state.severity, Severity::Sev1);
    assert!(
        w.state
            .timeline
            .iter()
            .any(|e| e.text.contains("unclear") && e.text.contains("SEV-1"))
    );
    let w = World::declared(Some(Severity::Sev3));
    assert_eq!(w.state.severity, Severity::Sev3);
    assert!(!w.state.timeline.iter().any(|e| e.text.contains("unclear")));
    assert_eq!(w.state.reference(), "INC-42");
}

#[test]
fn severity_change_needs_and_records_reason() {
    let mut w = World::declared(None);
    assert_eq!(
        err_of(w.run(
            "bob",
            Action::SetSeverity {
                severity: Severity::Sev2,
                reason: " ".into()
            }
        )),
        (ErrorKind::InvalidArgument, Some("reason"))
    );
    w.run(
        "bob",
        Action::SetSeverity {
            severity: Severity::Sev2,
            reason: "only EU affected".into(),
        },
    )
    .unwrap();
    assert_eq!(w.state.severity, Severity::Sev2);
    assert_eq!(
        w.last_entry(),
        "Severity downgraded from SEV-1 to SEV-2: only EU affected"
    );
    w.run(
        "bob",
        Action::SetSeverity {
            severity: Severity::Sev1,
            reason: "spreading".into(),
        },
    )
    .unwrap();
    assert_eq!(w.last_entry(), "Severity upgraded from SEV-2 to SEV-1: spreading");
}

#[test]
fn status_lifecycle() {
    let mut w = World::declared(Some(Severity::Sev2));
    w.run(
        "alice",
        Action::SetStatus {
            status: Status::Mitigating,
            note: "rolled back".into(),
        },
    )
    .unwrap();
    assert!(w.state.mitigated_at.is_some());
    w.run(
        "alice",
        Action::SetStatus {
            status: Status::Identified,
            note: "rollback did not help".into(),
        },
    )
    .unwrap();
    assert!(
        w.last_entry()
            .starts_with("Status moved back from Mitigating to Identified")
    );
    w.run("alice", Action::Resolve { note: "fixed".into() }).unwrap();
    assert_eq!(w.state.status, Status::Resolved);
    assert!(w.state.resolved_at.is_some());
    assert_eq!(
        err_of(w.run("alice", Action::Resolve { note: String::new() })),
        (ErrorKind::FailedPrecondition, Some("status"))
    );
    assert_eq!(
        err_of(w.run(
            "alice",
            Action::SetStatus {
                status: Status::Resolved,
                note: String::new()
            }
        )),
        (ErrorKind::FailedPrecondition, Some("status"))
    );
    assert_eq!(
        err_of(w.run("alice", Action::Acknowledge)),
        (ErrorKind::FailedPrecondition, Some("status"))
    );
    w.run(
        "alice",
        Action::SetStatus {
            status: Status::Investigating,
            note: "came back".into(),
        },
    )
    .unwrap();
    assert!(w.last_entry().starts_with("Reopened"));
    assert!(w.state.resolved_at.is_none());
}

#[test]
fn roster_rules() {
    let mut w = World::declared(None);
    w.run(
        "alice",
        Action::AssignRole {
            role: Role::Commander,
            person: "alice".into(),
            track: None,
        },
    )
    .unwrap();
    let ev = w
        .run(
            "alice",
            Action::AssignRole {
                role: Role::Commander,
                person: "bob".into(),
                track: None,
            },
        )
        .unwrap();
    assert_eq!(
        ev[0].kind,
        EventKind::RoleHandedOver {
            role: Role::Commander,
            from: "alice".into(),
            to: "bob".into()
        }
    );
    assert_eq!(w.state.roster.commander.as_deref(), Some("bob"));
    assert_eq!(
        err_of(w.run(
            "bob",
            Action::AssignRole {
                role: Role::Sme,
                person: "carol".into(),
                track: Some("  ".into())
            }
        )),
        (ErrorKind::FailedPrecondition, Some("track"))
    );
    w.run(
        "bob",
        Action::AssignRole {
            role: Role::Sme,
            person: "carol".into(),
            track: Some("database".into()),
        },
    )
    .unwrap();
    w.run(
        "bob",
        Action::AssignRole {
            role: Role::Sme,
            person: "dave".into(),
            track: Some("network".into()),
        },
    )
    .unwrap();
    assert_eq!(w.state.roster.smes.len(), 2);
    assert_eq!(
        err_of(w.run(
            "bob",
            Action::UnassignRole {
                role: Role::CommsLead,
                person: "carol".into()
            }
        )),
        (ErrorKind::FailedPrecondition, Some("person"))
    );
    w.run(
        "bob",
        Action::UnassignRole {
            role: Role::Sme,
            person: "carol".into(),
        },
    )
    .unwrap();
    assert_eq!(w.state.roster.smes.len(), 1);
}

#[test]
fn updates_render_templates() {
    let mut w = World::declared(None);
    w.run(
        "alice",
        Action::AssignRole {
            role: Role::Commander,
            person: "alice".into(),
            track: None,
        },
    )
    .unwrap();
    w.run(
        "alice",
        Action::SetImpact {
            impact: Some("card payments failing".into()),
            customer_impact_percent: Some(40),
            data_loss: None,
            regulatory: None,
        },
    )
    .unwrap();
    assert_eq!(
        err_of(w.run(
            "alice",
            Action::PostUpdate {
                kind: UpdateKind::Internal,
                fields: UpdateFields::default()
            }
        )),
        (ErrorKind::InvalidArgument, Some("current_theory"))
    );
    let fields = UpdateFields {
        current_theory: Some("bad deploy of ledger".into()),
        next_steps: Some("roll back".into()),
        ..Default::default()
    };
    w.run(
        "bob",
        Action::PostUpdate {
            kind: UpdateKind::Internal,
            fields,
        },
    )
    .unwrap();
    let u = w.state.updates.last().unwrap();
    assert!(u.rendered.contains("[INC-42] Payments down"));
    assert!(u.rendered.contains("Current theory: bad deploy of ledger"));
    assert!(u.rendered.contains("Next steps: roll back"));
    assert!(u.rendered.contains("~40% of customers"));
    assert!(
        u.rendered.contains("Next update: 21:55 UTC (in 15 min)"),
        "{}",
        u.rendered
    );
    assert_eq!(w.state.promised_next_update_at, Some(Timestamp(T0 + 15 * 60_000)));

    let fields = UpdateFields {
        customer_symptom: Some("payments time out".into()),
        ..Default::default()
    };
    w.run(
        "bob",
        Action::PostUpdate {
            kind: UpdateKind::Customer,
            fields,
        },
    )
    .unwrap();
    let u = w.state.updates.last().unwrap();
    assert!(
        u.rendered.contains("About 40% of customers may see: payments time out"),
        "{}",
        u.rendered
    );
    assert!(!u.rendered.contains("ledger"), "no internal text in a customer update");

    assert_eq!(
        err_of(w.run(
            "bob",
            Action::PostUpdate {
                kind: UpdateKind::Executive,
                fields: UpdateFields::default()
            }
        )),
        (ErrorKind::InvalidArgument, Some("business_impact"))
    );
    let fields = UpdateFields {
        business_impact: Some("checkout revenue at risk".into()),
        ..Default::default()
    };
    w.run(
        "bob",
        Action::PostUpdate {
            kind: UpdateKind::Executive,
            fields,
        },
    )
    .unwrap();
    let u = w.state.updates.last().unwrap();
    assert!(u.rendered.contains("Business impact: checkout revenue at risk"));
    assert!(u.rendered.contains("Estimated resolution: investigating"));
    assert_eq!(w.state.updates.len(), 3);
}

#[test]
fn bad_input_is_named() {
    let mut w = World::declared(None);
    assert_eq!(
        err_of(w.run(
            "alice",
            Action::AddEntry {
                kind: EntryKind::Note,
                text: "x".repeat(limits::TEXT_MAX_BYTES + 1)
            }
        )),
        (ErrorKind::InvalidArgument, Some("text"))
    );
    assert_eq!(
        err_of(w.run(
            "alice",
            Action::SetImpact {
                impact: None,
                customer_impact_percent: Some(101),
                data_loss: None,
                regulatory: None
            }
        )),
        (ErrorKind::InvalidArgument, Some("customer_impact_percent"))
    );
    let before = w.state.clone();
    let mut fresh = World {
        state: Incident::default(),
        policy: Policy::playbook(),
        now: Timestamp(T0),
    };
    assert_eq!(
        err_of(fresh.run(
            "alice",
            Action::Declare {
                id: IncidentId::default(),
                number: 1,
                title: "t".repeat(201),
                team: "payments".into(),
                services: vec![],
                severity: None,
                summary: String::new(),
                commander: None,
                drill: false,
            }
        )),
        (ErrorKind::InvalidArgument, Some("title"))
    );
    assert_eq!(w.state, before);
}

/// Issue 5: the comms lead's component override is on the timeline, is not
/// repeated, and ends with the incident.
#[test]
fn component_override_is_recorded_and_ends_with_the_incident() {
    let mut w = World::declared(Some(Severity::Sev2));
    let set = |status| Action::SetComponentStatus {
        service: "payments-api".into(),
        status,
    };
    let events = w.run("bob", set(ComponentStatus::MajorOutage)).unwrap();
    assert_eq!(events.len(), 1);
    assert!(
        w.last_entry().contains("payments-api set to major outage"),
        "{}",
        w.last_entry()
    );
    assert_eq!(w.state.component_overrides[0].by.as_deref(), Some("bob"));
    assert!(
        w.run("bob", set(ComponentStatus::MajorOutage)).unwrap().is_empty(),
        "same status: no event"
    );
    w.run("bob", set(ComponentStatus::PartialOutage)).unwrap();
    assert_eq!(w.state.component_overrides.len(), 1, "one override per component");
    let empty = w.run(
        "bob",
        Action::SetComponentStatus {
            service: String::new(),
            status: ComponentStatus::Operational,
        },
    );
    assert_eq!(empty.unwrap_err().field, Some("service"));
    w.run("alice", Action::Resolve { note: "fixed".into() }).unwrap();
    assert!(w.state.component_overrides.is_empty());
    let after = w.run("bob", set(ComponentStatus::MajorOutage)).unwrap_err();
    assert_eq!(after.kind, ErrorKind::FailedPrecondition);
}
