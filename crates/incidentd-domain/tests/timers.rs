//! Timer rules (first 15 minutes, cadences, report-backs, escalations,
//! review) with the playbook defaults. The domain never reads a clock, so
//! these tests drive `now` by hand: every firing time is exact to the
//! millisecond.

use incidentd_domain::timers::{self, next_deadline};
use incidentd_domain::*;

const T0: i64 = 1_795_729_200_000; // 2026-11-26T21:40:00Z
const MIN: i64 = 60_000;

struct Sim {
    state: Incident,
    policy: Policy,
    now: Timestamp,
}

impl Sim {
    fn declared(severity: Option<Severity>) -> Sim {
        let mut s = Sim {
            state: Incident::default(),
            policy: Policy::playbook(),
            now: Timestamp(T0),
        };
        s.run(
            "alice",
            Action::Declare {
                id: IncidentId(ulid::Ulid::from_parts(1, 1)),
                number: 7,
                title: "Checkout errors".into(),
                team: "payments".into(),
                services: vec!["payments-api".into()],
                severity,
                summary: String::new(),
                commander: None,
                drill: false,
            },
        );
        s
    }

    /// Moves the clock to `T0 + ms`.
    fn at(&mut self, ms: i64) -> &mut Self {
        assert!(T0 + ms >= self.now.0, "time only moves forward");
        self.now = Timestamp(T0 + ms);
        self
    }

    fn run(&mut self, by: &str, action: Action) -> Vec<Event> {
        let by = (!by.is_empty()).then(|| by.to_string());
        let ctx = Ctx {
            now: self.now,
            policy: &self.policy,
            directory: &OpenDirectory,
        };
        let events = decide(
            &self.state,
            &Command {
                access: Default::default(),
                by,
                action,
            },
            &ctx,
        )
        .expect("command accepted");
        for e in &events {
            apply(&mut self.state, e);
        }
        events
    }

    /// The timer went off: the events it caused, by name.
    fn tick(&mut self) -> Vec<EventKind> {
        self.run("", Action::Tick).into_iter().map(|e| e.kind).collect()
    }

    fn names(&mut self) -> Vec<&'static str> {
        self.tick().iter().map(|k| k.name()).collect()
    }

    fn next(&self) -> Option<i64> {
        next_deadline(&self.state, &self.policy).map(|t| t.0 - T0)
    }

    fn assign(&mut self, role: Role, person: &str, track: Option<&str>) {
        self.run(
            "alice",
            Action::AssignRole {
                role,
                person: person.into(),
                track: track.map(str::to_string),
            },
        );
    }

    fn internal_update(&mut self, next_in_secs: Option<u64>) {
        self.run(
            "alice",
            Action::PostUpdate {
                kind: UpdateKind::Internal,
                fields: UpdateFields {
                    current_theory: Some("bad deploy".into()),
                    next_update_in_secs: next_in_secs,
                    ..Default::default()
                },
            },
        );
    }

    fn set_severity(&mut self, severity: Severity) {
        self.run(
            "alice",
            Action::SetSeverity {
                severity,
                reason: "new facts".into(),
            },
        );
    }

    fn set_status(&mut self, status: Status) {
        self.run(
            "alice",
            Action::SetStatus {
                status,
                note: String::new(),
            },
        );
    }

    fn item(&self, item: ChecklistItemKind) -> &ChecklistItem {
        self.state.checklist.iter().find(|c| c.item == item).unwrap()
    }
}

/// Nothing fires a millisecond early; it fires at the millisecond; and a
/// second tick at the same time fires nothing again.
fn fires_exactly_at(sim: &mut Sim, ms: i64, want: &[&str]) {
    assert_eq!(sim.next(), Some(ms), "next deadline");
    assert!(sim.at(ms - 1).names().is_empty(), "nothing before {ms}");
    assert_eq!(sim.at(ms).names(), want, "at {ms}");
    assert!(sim.names().is_empty(), "no double fire at {ms}");
}

#[test]
fn an_untouched_sev2_goes_through_every_default_deadline_in_order() {
    let mut s = Sim::declared(Some(Severity::Sev2));
    fires_exactly_at(&mut s, 2 * MIN, &["checklist_missed"]);
    fires_exactly_at(&mut s, 5 * MIN, &["checklist_missed"]);
    fires_exactly_at(&mut s, 10 * MIN, &["checklist_missed"]);
    fires_exactly_at(&mut s, 15 * MIN, &["checklist_missed"]);
    // SEV-2: stakeholders within 30 min, internal updates every 30 min.
    fires_exactly_at(&mut s, 30 * MIN, &["stakeholder_notice_due", "update_overdue"]);
    fires_exactly_at(&mut s, 60 * MIN, &["update_overdue"]);
    fires_exactly_at(&mut s, 90 * MIN, &["update_overdue"]);
    // Any incident open for 2 h: leadership briefing (with the 4th reminder).
    fires_exactly_at(&mut s, 120 * MIN, &["update_overdue", "escalated"]);
    assert_eq!(s.state.escalations.len(), 1);
    assert_eq!(s.state.escalations[0].rule, "long-running");
    assert_eq!(s.state.escalations[0].target, "engineering_leadership");
    assert_eq!(s.state.escalations[0].message.as_deref(), Some("leadership briefing"));
    assert_eq!(s.state.escalations[0].fired_at, Timestamp(T0 + 120 * MIN));
    // Nobody holds a role: every nudge goes to the team.
    for item in &s.state.checklist {
        assert_eq!(
            item.missed_at,
            Some(timers::checklist_due(&s.state, &s.policy, item.item))
        );
    }
    assert!(s.state.timeline.iter().any(|e| e.text.contains("nudged team payments")));
}

#[test]
fn checklist_items_tick_by_the_events_that_satisfy_them() {
    let mut s = Sim::declared(None); // unclear: SEV-1 by default, not confirmed
    s.at(MIN).run("bob", Action::Acknowledge);
    assert_eq!(
        s.item(ChecklistItemKind::Acknowledge).done_at,
        Some(Timestamp(T0 + MIN))
    );
    s.at(2 * MIN).assign(Role::Commander, "bob", None);
    // A commander but only the default severity: not done yet.
    assert_eq!(s.item(ChecklistItemKind::SeverityAndCommander).done_at, None);
    s.at(3 * MIN).set_severity(Severity::Sev1); // a person confirms SEV-1
    assert_eq!(
        s.item(ChecklistItemKind::SeverityAndCommander).done_at,
        Some(Timestamp(T0 + 3 * MIN))
    );
    assert!(
        s.state
            .timeline
            .last()
            .unwrap()
            .text
            .starts_with("Severity confirmed as SEV-1")
    );
    s.at(4 * MIN).assign(Role::CommsLead, "carol", None);
    // SEV-1: the team needs an SME as well.
    assert_eq!(s.item(ChecklistItemKind::TeamAssembled).done_at, None);
    s.at(6 * MIN).assign(Role::Sme, "dave", Some("database"));
    assert_eq!(
        s.item(ChecklistItemKind::TeamAssembled).done_at,
        Some(Timestamp(T0 + 6 * MIN))
    );
    assert_eq!(
        s.item(ChecklistItemKind::InvestigationPlan).done_at,
        Some(Timestamp(T0 + 6 * MIN))
    );
    // Nothing of the checklist fires later.
    s.at(20 * MIN);
    assert!(s.tick().iter().all(|k| !matches!(k, EventKind::ChecklistMissed { .. })));
    assert!(s.state.checklist.iter().all(|c| c.missed_at.is_none()));
}

#[test]
fn a_missed_item_nudges_the_commander_and_is_ticked_late_when_done() {
    let mut s = Sim::declared(Some(Severity::Sev3));
    s.at(MIN).assign(Role::Commander, "bob", None);
    let fired = s.at(2 * MIN).tick();
    assert_eq!(
        fired,
        vec![EventKind::ChecklistMissed {
            item: ChecklistItemKind::Acknowledge,
            due_at: Timestamp(T0 + 2 * MIN),
            notify: Recipients {
                people: vec!["bob".into()],
                team: None
            },
        }]
    );
    s.at(3 * MIN).run("bob", Action::Acknowledge);
    let ack = s.item(ChecklistItemKind::Acknowledge);
    assert_eq!(ack.missed_at, Some(Timestamp(T0 + 2 * MIN)));
    assert_eq!(ack.done_at, Some(Timestamp(T0 + 3 * MIN)));
    // SEV-3: a comms lead alone assembles the team.
    s.at(4 * MIN).assign(Role::CommsLead, "carol", None);
    assert!(s.item(ChecklistItemKind::TeamAssembled).done_at.is_some());
}

#[test]
fn update_cadence_reminds_commander_and_comms_lead_until_an_update_is_posted() {
    let mut s = Sim::declared(Some(Severity::Sev1));
    s.at(0).assign(Role::Commander, "bob", None);
    s.at(0).assign(Role::CommsLead, "carol", None);
    assert_eq!(s.names(), ["stakeholder_notice_due"]); // SEV-1: immediately
    // An update posted a millisecond before the deadline resets it.
    s.at(15 * MIN - 1).internal_update(None);
    assert_eq!(policy_due(&s), Some(30 * MIN - 1));
    let at_15: Vec<_> = s.at(15 * MIN).names();
    assert!(!at_15.contains(&"update_overdue"), "{at_15:?}");
    let fired = s.at(30 * MIN - 1).tick();
    let overdue: Vec<_> = fired
        .iter()
        .filter(|k| matches!(k, EventKind::UpdateOverdue { .. }))
        .collect();
    assert_eq!(
        overdue,
        [&EventKind::UpdateOverdue {
            due_at: Timestamp(T0 + 30 * MIN - 1),
            notify: Recipients {
                people: vec!["bob".into(), "carol".into()],
                team: None
            }
        }]
    );
    // Repeats every cadence period while no update comes.
    assert_eq!(s.at(45 * MIN - 2).names(), ["escalated"]); // SEV-1 not mitigated at 30 min
    assert_eq!(s.at(45 * MIN - 1).names(), ["update_overdue"]);
    // An update promising the next in 5 minutes: that promise is the deadline.
    s.at(50 * MIN).internal_update(Some(300));
    assert_eq!(policy_due(&s), Some(55 * MIN));
    let fired: Vec<_> = s.at(55 * MIN).names();
    assert!(fired.contains(&"update_overdue"), "{fired:?}");
}

fn policy_due(s: &Sim) -> Option<i64> {
    s.policy.next_update_due(&s.state).map(|t| t.0 - T0)
}

#[test]
fn sev4_has_no_cadence_no_notice_and_no_report_backs() {
    let mut s = Sim::declared(Some(Severity::Sev4));
    s.at(0).assign(Role::Commander, "bob", None);
    s.at(0).run("bob", Action::Acknowledge);
    s.at(0).assign(Role::CommsLead, "carol", None);
    s.at(0).assign(Role::Sme, "dave", Some("logs"));
    // Only the long-running escalation is left.
    assert_eq!(s.next(), Some(120 * MIN));
    assert_eq!(policy_due(&s), None);
}

#[test]
fn stakeholder_notice_per_severity_and_satisfied_by_an_update() {
    let mut s = Sim::declared(Some(Severity::Sev3));
    s.at(0).assign(Role::Commander, "bob", None);
    s.at(0).run("bob", Action::Acknowledge);
    s.at(0).assign(Role::CommsLead, "carol", None);
    s.at(0).assign(Role::Sme, "dave", Some("logs"));
    // SEV-3: within 2 h; the 60-min cadence fires first.
    fires_exactly_at(&mut s, 60 * MIN, &["update_overdue"]);
    fires_exactly_at(
        &mut s,
        120 * MIN,
        &["stakeholder_notice_due", "update_overdue", "escalated"],
    );

    let mut s = Sim::declared(Some(Severity::Sev2));
    s.at(20 * MIN).internal_update(None); // stakeholders hear through the update
    assert_eq!(s.state.stakeholders_notified_at, Some(Timestamp(T0 + 20 * MIN)));
    assert!(timers::stakeholder_notice_due(&s.state, &s.policy).is_none());

    // An upgrade from SEV-3 to SEV-1 makes the notice due at once.
    let mut s = Sim::declared(Some(Severity::Sev3));
    s.at(10 * MIN).tick();
    s.at(11 * MIN).set_severity(Severity::Sev1);
    let fired: Vec<_> = s.names();
    assert!(fired.contains(&"stakeholder_notice_due"), "{fired:?}");
}

#[test]
fn sme_report_back_resets_on_a_finding_by_that_sme() {
    let mut s = Sim::declared(Some(Severity::Sev1));
    s.at(0).assign(Role::Commander, "bob", None);
    s.at(0).assign(Role::CommsLead, "carol", None);
    s.at(0).run("bob", Action::Acknowledge);
    s.at(0).tick(); // the immediate stakeholder notice
    s.at(5 * MIN).assign(Role::Sme, "dave", Some("database"));
    assert_eq!(sme_due(&s), Some(20 * MIN));
    // A finding by someone else does not count for dave's track.
    s.at(10 * MIN).run(
        "erin",
        Action::AddEntry {
            kind: EntryKind::Finding,
            text: "cpu is fine".into(),
        },
    );
    assert_eq!(sme_due(&s), Some(20 * MIN));
    s.at(19 * MIN).run(
        "dave",
        Action::AddEntry {
            kind: EntryKind::Finding,
            text: "replica lag 40 s".into(),
        },
    );
    assert_eq!(sme_due(&s), Some(34 * MIN));
    s.at(30 * MIN).internal_update(None);
    assert_eq!(s.names(), ["escalated"]); // SEV-1 not mitigated at 30 min
    let fired = s.at(34 * MIN).tick();
    assert_eq!(
        fired,
        vec![EventKind::SmeReportOverdue {
            person: "dave".into(),
            track: "database".into(),
            due_at: Timestamp(T0 + 34 * MIN),
            notify: Recipients {
                people: vec!["dave".into(), "bob".into()],
                team: None
            },
        }]
    );
    // The next nudge is a period later.
    assert_eq!(sme_due(&s), Some(49 * MIN));
    // SEV-3 has no report-back cadence.
    s.at(40 * MIN).set_severity(Severity::Sev3);
    assert_eq!(sme_due(&s), None);
}

fn sme_due(s: &Sim) -> Option<i64> {
    timers::sme_report_due(&s.state, &s.policy, 0).map(|t| t.0 - T0)
}

fn escalations(s: &Sim) -> Vec<(String, i64)> {
    s.state
        .escalations
        .iter()
        .map(|e| (e.rule.clone(), e.fired_at.0 - T0))
        .collect()
}

#[test]
fn sev1_not_mitigated_escalates_at_30_minutes_once() {
    let mut s = Sim::declared(Some(Severity::Sev1));
    s.at(29 * MIN).tick();
    assert!(s.state.escalations.is_empty());
    s.at(30 * MIN).tick();
    assert_eq!(escalations(&s), [("sev1-not-mitigated".to_string(), 30 * MIN)]);
    s.at(31 * MIN).tick();
    s.at(100 * MIN).tick();
    assert_eq!(
        s.state
            .escalations
            .iter()
            .filter(|e| e.rule == "sev1-not-mitigated")
            .count(),
        1
    );

    // Mitigating in time: the rule never fires; identified does not stop the clock.
    let mut s = Sim::declared(Some(Severity::Sev1));
    s.at(10 * MIN).set_status(Status::Identified);
    s.at(29 * MIN).set_status(Status::Mitigating);
    s.at(31 * MIN).tick();
    assert!(s.state.escalations.is_empty());
}

#[test]
fn an_upgrade_to_sev1_starts_the_30_minute_clock_from_the_upgrade() {
    let mut s = Sim::declared(Some(Severity::Sev2));
    s.at(20 * MIN).set_severity(Severity::Sev1);
    s.at(30 * MIN).tick();
    s.at(49 * MIN).tick();
    assert!(escalations(&s).iter().all(|(r, _)| r != "sev1-not-mitigated"));
    s.at(50 * MIN).tick();
    assert!(escalations(&s).contains(&("sev1-not-mitigated".to_string(), 50 * MIN)));

    // Down and up again: the clock restarts at the second upgrade.
    let mut s = Sim::declared(Some(Severity::Sev1));
    s.at(20 * MIN).set_severity(Severity::Sev2);
    s.at(25 * MIN).set_severity(Severity::Sev1);
    s.at(50 * MIN).tick();
    assert!(escalations(&s).iter().all(|(r, _)| r != "sev1-not-mitigated"));
    assert_eq!(
        next_deadline(&s.state, &s.policy)
            .map(|t| t.0 - T0)
            .filter(|t| *t == 55 * MIN),
        Some(55 * MIN)
    );
    s.at(55 * MIN).tick();
    assert!(escalations(&s).contains(&("sev1-not-mitigated".to_string(), 55 * MIN)));
}

#[test]
fn confirmed_data_loss_on_sev1_goes_to_executives_at_once_and_regulatory_to_legal() {
    let impact = |data_loss: Option<DataLoss>, regulatory: Option<bool>| Action::SetImpact {
        impact: None,
        customer_impact_percent: None,
        data_loss,
        regulatory,
    };
    let mut s = Sim::declared(Some(Severity::Sev2));
    s.at(3 * MIN).run("alice", impact(Some(DataLoss::Confirmed), None));
    s.at(3 * MIN).tick();
    assert!(s.state.escalations.is_empty(), "SEV-2: not this rule");
    s.at(4 * MIN).set_severity(Severity::Sev1);
    assert_eq!(s.next(), Some(4 * MIN), "due at the upgrade");
    s.tick();
    assert_eq!(escalations(&s), [("sev1-data-loss".to_string(), 4 * MIN)]);
    assert_eq!(s.state.escalations[0].target, "executives");

    s.at(5 * MIN).run("alice", impact(None, Some(true)));
    assert_eq!(s.next(), Some(5 * MIN));
    let fired = s.tick();
    assert!(fired.iter().any(|k| matches!(
        k,
        EventKind::Escalated { rule, target, .. } if rule == "regulatory" && target == "legal"
    )));
    // Clearing and setting the flag again does not fire a second time.
    s.at(6 * MIN).run("alice", impact(None, Some(false)));
    s.at(7 * MIN).run("alice", impact(None, Some(true)));
    s.tick();
    assert_eq!(s.state.escalations.iter().filter(|e| e.rule == "regulatory").count(), 1);
}

#[test]
fn overdue_deadlines_fire_once_at_once_after_a_long_gap() {
    // As after a restart: nothing ran for three hours.
    let mut s = Sim::declared(Some(Severity::Sev1));
    let fired = s.at(180 * MIN).tick();
    let count = |name: &str| fired.iter().filter(|k| k.name() == name).count();
    assert_eq!(count("checklist_missed"), 4);
    assert_eq!(count("update_overdue"), 1, "one reminder, not one per missed period");
    assert_eq!(count("stakeholder_notice_due"), 1);
    assert_eq!(count("escalated"), 2); // not mitigated in 30 min, open 2 h
    assert!(fired.iter().all(|k| match k {
        EventKind::ChecklistMissed { due_at, .. } | EventKind::UpdateOverdue { due_at, .. } =>
            due_at.0 < T0 + 180 * MIN,
        _ => true,
    }));
    assert!(s.names().is_empty());
    // The next reminder is a cadence period after this one.
    assert_eq!(s.next(), Some(195 * MIN));
}

#[test]
fn review_is_due_48_hours_after_resolution_and_reminded_once() {
    let mut s = Sim::declared(Some(Severity::Sev3));
    s.at(0).assign(Role::Commander, "bob", None);
    s.at(10 * MIN).run("bob", Action::Resolve { note: "fixed".into() });
    let due = T0 + 10 * MIN + 48 * 60 * MIN;
    assert_eq!(timers::review_due(&s.state, &s.policy), Some(Timestamp(due)));
    // Resolved: only the review is left.
    assert_eq!(s.next(), Some(due - T0));
    fires_exactly_at(&mut s, due - T0, &["review_overdue"]);
    assert_eq!(s.next(), None);
    assert!(s.state.timeline.last().unwrap().text.contains("reminded bob"));
}

#[test]
fn policy_values_drive_the_times() {
    let mut s = Sim::declared(Some(Severity::Sev2));
    s.policy.checklist.acknowledge = std::time::Duration::from_secs(3);
    s.policy.severities[1].update_every = Some(std::time::Duration::from_secs(7));
    assert_eq!(s.next(), Some(3_000));
    fires_exactly_at(&mut s, 3_000, &["checklist_missed"]);
    fires_exactly_at(&mut s, 7_000, &["update_overdue"]);
    fires_exactly_at(&mut s, 14_000, &["update_overdue"]);
}

#[test]
fn late_reminders_keep_the_cadence_grid() {
    let mut s = Sim::declared(Some(Severity::Sev1));
    s.at(0).assign(Role::Commander, "bob", None);
    s.at(0).tick();
    // The 15-min reminder fires 40 s late (a slow tick): the next is still at 30 min.
    s.at(15 * MIN + 40_000);
    assert!(s.names().contains(&"update_overdue"));
    assert_eq!(policy_due(&s), Some(15 * MIN));
    let next_update: Vec<_> = timers::deadlines(&s.state, &s.policy)
        .into_iter()
        .filter(|d| d.kind == timers::DeadlineKind::UpdateOverdue)
        .map(|d| d.due_at.0 - T0)
        .collect();
    assert_eq!(next_update, [30 * MIN]);
}
