//! After the incident: review rules, action items and their reminders, the
//! blameless check, Markdown export, and reports with answers computed by hand.

use incidentd_domain::report::{Quantiles, report, row};
use incidentd_domain::review::{ActionItemState, ReviewSections, blame_findings, default_blame_rules, markdown};
use incidentd_domain::*;
use std::sync::Arc;
use std::time::Duration;

const T0: i64 = 1_795_729_200_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

struct Sim {
    state: Incident,
    policy: Policy,
    now: Timestamp,
}

impl Sim {
    fn declared(severity: Severity, drill: bool, at: i64) -> Sim {
        let mut s = Sim {
            state: Incident::default(),
            policy: Policy::playbook(),
            now: Timestamp(T0 + at),
        };
        s.ok(
            "alice",
            Action::Declare {
                id: IncidentId(ulid::Ulid::from_parts(at as u64, 1)),
                number: 1,
                title: "Checkout errors".into(),
                team: "payments".into(),
                services: vec![],
                severity: Some(severity),
                summary: String::new(),
                commander: Some("bob".into()),
                drill,
            },
        );
        s
    }

    fn at(&mut self, ms: i64) -> &mut Self {
        self.now = Timestamp(T0 + ms);
        self
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
                by: (!by.is_empty()).then(|| by.to_string()),
                action,
            },
            &ctx,
        )?;
        for e in &events {
            apply(&mut self.state, e);
        }
        Ok(events)
    }

    fn ok(&mut self, by: &str, action: Action) -> Vec<Event> {
        self.run(by, action).expect("accepted")
    }

    fn tick(&mut self) -> Vec<&'static str> {
        self.ok("", Action::Tick).iter().map(|e| e.kind.name()).collect()
    }

    fn resolve(&mut self) {
        self.ok("bob", Action::Resolve { note: "fixed".into() });
    }
}

fn internal_update() -> Action {
    Action::PostUpdate {
        kind: UpdateKind::Internal,
        fields: UpdateFields {
            current_theory: Some("db".into()),
            ..Default::default()
        },
    }
}

fn sections(root: &str) -> ReviewSections {
    ReviewSections {
        root_causes: Some(root.into()),
        ..Default::default()
    }
}

fn add_item(owner: &str, due: i64) -> Action {
    Action::AddActionItem {
        description: "Alert on replica lag".into(),
        owner: owner.into(),
        due_at: Timestamp(T0 + due),
    }
}

#[test]
fn the_review_opens_at_resolution_and_sections_merge() {
    let mut s = Sim::declared(Severity::Sev2, false, 0);
    let early = s.run(
        "bob",
        Action::UpdateReview {
            sections: sections("x"),
        },
    );
    assert_eq!(early.unwrap_err().kind, ErrorKind::FailedPrecondition);
    s.at(30 * MIN).resolve();
    s.ok(
        "bob",
        Action::UpdateReview {
            sections: ReviewSections {
                what_happened: Some("Checkout failed for 30 minutes.".into()),
                ..Default::default()
            },
        },
    );
    s.ok(
        "bob",
        Action::UpdateReview {
            sections: sections("A config push without a canary."),
        },
    );
    let r = &s.state.review.sections;
    assert_eq!(r.what_happened.as_deref(), Some("Checkout failed for 30 minutes."));
    assert_eq!(r.root_causes.as_deref(), Some("A config push without a canary."));
    let empty = s.run(
        "bob",
        Action::UpdateReview {
            sections: ReviewSections::default(),
        },
    );
    assert_eq!(empty.unwrap_err().field, Some("root_causes"));
}

#[test]
fn action_items_open_close_and_refuse_bad_input() {
    let mut s = Sim::declared(Severity::Sev2, false, 0);
    s.at(HOUR).resolve();
    s.ok("bob", add_item("carol", 8 * 24 * HOUR));
    s.ok("bob", add_item("dave", 9 * 24 * HOUR));
    assert_eq!(s.state.review.action_items.len(), 2);
    let no_owner = s.run("bob", add_item("", HOUR)).unwrap_err();
    assert_eq!(no_owner.field, Some("owner"));
    s.at(2 * HOUR).ok("carol", Action::CompleteActionItem { number: 1 });
    assert_eq!(
        s.state.review.action_items[0].state,
        ActionItemState::Done {
            at: Timestamp(T0 + 2 * HOUR)
        }
    );
    let again = s.run("carol", Action::CompleteActionItem { number: 1 }).unwrap_err();
    assert_eq!(again.kind, ErrorKind::FailedPrecondition);
    let unknown = s.run("carol", Action::CompleteActionItem { number: 9 }).unwrap_err();
    assert_eq!(unknown.kind, ErrorKind::NotFound);
    let no_reason = s
        .run(
            "bob",
            Action::DropActionItem {
                number: 2,
                reason: " ".into(),
            },
        )
        .unwrap_err();
    assert_eq!(no_reason.field, Some("reason"));
    s.ok(
        "bob",
        Action::DropActionItem {
            number: 2,
            reason: "covered by #1".into(),
        },
    );
    assert!(!s.state.review.action_items[1].is_open());
}

#[test]
fn review_reminded_at_48h_unless_written_and_overdue_items_reminded_once() {
    let mut s = Sim::declared(Severity::Sev3, false, 0);
    s.at(HOUR).resolve();
    s.ok("bob", add_item("carol", 24 * HOUR));
    // The action item first (due at 24 h), then the review at 49 h.
    assert_eq!(
        timers::next_deadline(&s.state, &s.policy),
        Some(Timestamp(T0 + 24 * HOUR))
    );
    assert!(s.at(24 * HOUR - 1).tick().is_empty());
    assert_eq!(s.at(24 * HOUR).tick(), ["action_item_overdue"]);
    assert!(s.tick().is_empty(), "reminded once");
    assert_eq!(
        s.state.review.action_items[0].reminded_at,
        Some(Timestamp(T0 + 24 * HOUR))
    );
    assert_eq!(s.at(49 * HOUR).tick(), ["review_overdue"]);

    // A written review is not reminded.
    let mut w = Sim::declared(Severity::Sev3, false, 0);
    w.at(HOUR).resolve();
    w.ok(
        "bob",
        Action::UpdateReview {
            sections: sections("Retry storm after a failover."),
        },
    );
    assert_eq!(timers::next_deadline(&w.state, &w.policy), None);
}

#[test]
fn blameless_check_flags_people_and_blame_words_not_systems() {
    let people: Vec<String> = ["alice", "Alice Moreau", "bob"].iter().map(|s| s.to_string()).collect();
    let rules = default_blame_rules();
    let check = |text: &str| -> Vec<String> {
        blame_findings(&sections(text), &people, &rules)
            .into_iter()
            .map(|f| f.rule)
            .collect()
    };
    assert_eq!(check("Alice forgot to run the migration."), ["person-failed"]);
    assert_eq!(check("The outage happened because of bob."), ["person-failed"]);
    assert_eq!(check("Root cause: human error."), ["human-error"]);
    assert_eq!(
        check("The on-call engineer should have known better."),
        ["should-have-known"]
    );
    assert_eq!(check("It was a careless change."), ["careless"]);
    assert_eq!(check("It was the DBA's fault."), ["fault"]);
    // Systems framing, and words that merely contain a trigger, pass.
    assert!(check("The deploy pipeline failed.").is_empty());
    assert!(check("Alice noticed the alert and paged the DBA.").is_empty());
    assert!(check("The fault injection test caught it in staging.").is_empty());
    assert!(check("Bobcat service failed over.").is_empty());
    // Each finding names its sentence and suggests a systems framing.
    let f = blame_findings(
        &sections("The cache was cold. Alice forgot the flag! Then recovery."),
        &people,
        &rules,
    );
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].sentence, "Alice forgot the flag!");
    assert_eq!(f[0].section, "root_causes");
    assert!(!f[0].suggestion.is_empty());
}

#[test]
fn markdown_has_the_generated_timeline_sections_and_items() {
    let mut s = Sim::declared(Severity::Sev1, false, 0);
    s.at(2 * MIN).ok("bob", Action::Acknowledge);
    s.at(10 * MIN).ok(
        "dave",
        Action::AddEntry {
            kind: EntryKind::Finding,
            text: "replica lag 40 s".into(),
        },
    );
    s.at(20 * MIN).resolve();
    s.ok(
        "bob",
        Action::UpdateReview {
            sections: sections("Alice forgot the flag."),
        },
    );
    s.ok("bob", add_item("carol", 8 * 24 * HOUR));
    let people = vec!["alice".to_string()];
    let findings = blame_findings(&s.state.review.sections, &people, &default_blame_rules());
    let md = markdown(&s.state, timers::review_due(&s.state, &s.policy), &findings);
    assert!(md.starts_with("# Post-incident review: INC-1 Checkout errors"));
    assert!(md.contains("| Acknowledged by bob |"), "{md}");
    assert!(md.contains("Finding by dave: replica lag 40 s"));
    assert!(md.contains("## Root causes\n\nAlice forgot the flag."));
    assert!(md.contains("## What went well\n\n_Not written yet._"));
    assert!(md.contains("- [ ] Alert on replica lag — owner carol"));
    assert!(md.contains("## Blameless check"));
    // Durations between milestones: the acknowledgement came 2 minutes in.
    assert!(md.contains("| 2 min | 2 min | Acknowledged by bob |"), "{md}");
    assert!(
        !md.contains("| Review updated"),
        "the review's own edits are not incident milestones"
    );
}

#[test]
fn report_on_a_known_history() {
    // SEV-1 #1: ack 4 min, mitigated 20 min, resolved 60 min.
    let mut a = Sim::declared(Severity::Sev1, false, 0);
    a.at(4 * MIN).ok("bob", Action::Acknowledge);
    a.at(10 * MIN).ok("bob", internal_update()); // on time (due 15 min)
    a.at(20 * MIN).ok(
        "bob",
        Action::SetStatus {
            status: Status::Mitigating,
            note: String::new(),
        },
    );
    a.at(40 * MIN).ok("bob", internal_update()); // late (due 25 min)
    a.at(60 * MIN).resolve();
    a.ok("bob", add_item("carol", 2 * HOUR));
    a.at(90 * MIN).ok("carol", Action::CompleteActionItem { number: 1 });
    a.ok("bob", add_item("dave", 2 * HOUR)); // open, overdue at report time

    // SEV-1 #2: ack 10 min, resolved 120 min (never mitigating: mitigated = resolved).
    let mut b = Sim::declared(Severity::Sev1, false, HOUR);
    b.at(HOUR + 10 * MIN).ok("bob", Action::Acknowledge);
    b.at(3 * HOUR).tick(); // escalations fire (not mitigated in 30 min, open 2 h)
    b.at(3 * HOUR).resolve();

    // SEV-3: ack 1 min, still open.
    let mut c = Sim::declared(Severity::Sev3, false, 2 * HOUR);
    c.at(2 * HOUR + MIN).ok("bob", Action::Acknowledge);

    // A drill: excluded from the incident figures.
    let mut d = Sim::declared(Severity::Sev1, true, 3 * HOUR);
    d.at(3 * HOUR + 30 * MIN).ok("bob", Action::Acknowledge);

    let policy = Arc::new(Policy::playbook());
    let all = [&a.state, &b.state, &c.state, &d.state];
    let now = Timestamp(T0 + 5 * HOUR);
    let r = report(all, &|_| policy.clone(), Timestamp(T0), Timestamp(T0 + 24 * HOUR), now);

    assert_eq!(r.incidents, 3);
    let sev1 = row(&r, Severity::Sev1);
    assert_eq!(sev1.count, 2);
    let m = |x: i64| Some(Duration::from_millis(x as u64));
    assert_eq!(
        sev1.time_to_acknowledge,
        Quantiles {
            count: 2,
            median: m(4 * MIN),
            p90: m(10 * MIN)
        }
    );
    assert_eq!(sev1.time_to_mitigate.median, m(20 * MIN));
    assert_eq!(sev1.time_to_mitigate.p90, m(120 * MIN));
    assert_eq!(sev1.time_to_resolve.median, m(60 * MIN));
    assert_eq!(sev1.time_to_resolve.p90, m(120 * MIN));
    let sev3 = row(&r, Severity::Sev3);
    assert_eq!((sev3.count, sev3.time_to_resolve.count), (1, 0));
    assert_eq!(sev3.time_to_acknowledge.median, m(MIN));
    // One internal update of two on time.
    assert_eq!((r.update_cadence.hits, r.update_cadence.total), (1, 2));
    assert_eq!(r.escalations_by_rule.get("sev1-not-mitigated"), Some(&1));
    assert_eq!(r.escalations_by_rule.get("long-running"), Some(&1));
    // Checklist: a acked in 4 min (late), commander at once (severity given), no team/plan → misses.
    assert!(r.checklist.total > 0 && r.checklist.hits < r.checklist.total);
    let ai = &r.action_items;
    assert_eq!((ai.created, ai.done, ai.open, ai.overdue, ai.dropped), (2, 1, 1, 1, 0));
    assert_eq!(ai.completion_rate, Some(0.5));
    assert_eq!(ai.time_to_close.median, m(30 * MIN));
    // The drill is counted on its own.
    assert_eq!(r.drills.count, 1);
    assert_eq!(r.drills.time_to_acknowledge.median, m(30 * MIN));
}
