//! Game days: scripted injections arrive at their offsets (clock driven by
//! hand), play once, and drive the real rules (a severity surprise, data
//! loss escalating to executives); role rotation suggests who should lead.

use incidentd_domain::drill::{builtin_scenarios, role_rotation};
use incidentd_domain::*;

const T0: i64 = 1_795_729_200_000;
const MIN: i64 = 60_000;

struct Sim {
    state: Incident,
    policy: Policy,
    now: Timestamp,
    /// Every event, as the log stores it (JSON).
    log: Vec<String>,
}

impl Sim {
    fn drill(drill: bool) -> Sim {
        let mut s = Sim {
            state: Incident::default(),
            policy: Policy::playbook(),
            now: Timestamp(T0),
            log: Vec::new(),
        };
        s.run(
            "alice",
            Action::Declare {
                id: IncidentId(ulid::Ulid::from_parts(1, 1)),
                number: 1,
                title: "Game day".into(),
                team: "payments".into(),
                services: vec![],
                severity: Some(Severity::Sev2),
                summary: String::new(),
                commander: Some("bob".into()),
                drill,
            },
        )
        .unwrap();
        s
    }

    fn run(&mut self, by: &str, action: Action) -> Result<Vec<Event>, DomainError> {
        let ctx = Ctx {
            now: self.now,
            policy: &self.policy,
            directory: &OpenDirectory,
        };
        let by = (!by.is_empty()).then(|| by.to_string());
        let events = decide(
            &self.state,
            &Command {
                access: Default::default(),
                by,
                action,
            },
            &ctx,
        )?;
        for e in &events {
            apply(&mut self.state, e);
            self.log.push(serde_json::to_string(e).unwrap());
        }
        Ok(events)
    }

    fn tick_at(&mut self, ms: i64) -> Vec<EventKind> {
        self.now = Timestamp(T0 + ms);
        self.run("", Action::Tick)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }
}

fn scenario(id: &str) -> drill::Scenario {
    builtin_scenarios().into_iter().find(|s| s.id == id).unwrap()
}

#[test]
fn the_builtin_scenarios_cover_the_playbook() {
    let ids: Vec<String> = builtin_scenarios().into_iter().map(|s| s.id).collect();
    assert_eq!(
        ids,
        [
            "sev1-payments-outage",
            "database-data-loss",
            "non-core-two-teams",
            "regulatory-exposure"
        ]
    );
}

#[test]
fn injections_arrive_at_their_offsets_once_and_drive_the_rules() {
    let mut s = Sim::drill(true);
    s.run(
        "alice",
        Action::StartScript {
            scenario: scenario("database-data-loss"),
        },
    )
    .unwrap();
    // Step 1 at 2 min: not a millisecond before.
    let dues: Vec<i64> = timers::deadlines(&s.state, &s.policy)
        .into_iter()
        .filter(|d| matches!(d.kind, timers::DeadlineKind::DrillStep(_)))
        .map(|d| d.due_at.0 - T0)
        .collect();
    assert_eq!(dues, [2 * MIN]);
    let injected = |k: &[EventKind]| k.iter().filter(|k| k.name() == "drill_injected").count();
    assert_eq!(injected(&s.tick_at(2 * MIN - 1)), 0);
    assert_eq!(injected(&s.tick_at(2 * MIN)), 1);
    assert_eq!(injected(&s.tick_at(2 * MIN)), 0, "played once");
    assert!(
        s.state
            .timeline
            .iter()
            .any(|e| e.text.starts_with("[DRILL] Alert fired: orders-db"))
    );
    s.tick_at(6 * MIN);
    assert_eq!(s.state.data_loss, DataLoss::Possible);
    // 10 min: the severity surprise, an upgrade to SEV-1 recorded with its reason.
    s.tick_at(10 * MIN);
    assert_eq!(s.state.severity, Severity::Sev1);
    assert!(
        s.state
            .timeline
            .iter()
            .any(|e| e.text.contains("upgraded from SEV-2 to SEV-1: [DRILL]"))
    );
    // 15 min: data loss confirmed → the SEV-1 data-loss rule fires at once.
    s.tick_at(15 * MIN);
    assert_eq!(s.state.data_loss, DataLoss::Confirmed);
    let fired = s.tick_at(15 * MIN);
    assert!(
        fired
            .iter()
            .any(|k| matches!(k, EventKind::Escalated { rule, .. } if rule == "sev1-data-loss"))
    );
    s.tick_at(25 * MIN);
    assert_eq!(s.state.drill_script.as_ref().unwrap().played, 5);
    assert!(
        timers::deadlines(&s.state, &s.policy)
            .iter()
            .all(|d| !matches!(d.kind, timers::DeadlineKind::DrillStep(_)))
    );
    // Replaying the stored log rebuilds exactly this drill.
    let events: Vec<Event> = s.log.iter().map(|j| serde_json::from_str(j).unwrap()).collect();
    assert_eq!(replay(&events), s.state);
}

#[test]
fn scenarios_play_only_into_drills_and_only_once() {
    let mut real = Sim::drill(false);
    let err = real
        .run(
            "alice",
            Action::StartScript {
                scenario: scenario("sev1-payments-outage"),
            },
        )
        .unwrap_err();
    assert_eq!((err.kind, err.field), (ErrorKind::FailedPrecondition, Some("scenario")));
    let mut d = Sim::drill(true);
    let start = || Action::StartScript {
        scenario: scenario("sev1-payments-outage"),
    };
    d.run("alice", start()).unwrap();
    assert_eq!(d.run("alice", start()).unwrap_err().kind, ErrorKind::FailedPrecondition);
}

#[test]
fn role_rotation_suggests_someone_who_never_led() {
    let mut a = Sim::drill(false); // bob commander at declaration
    a.run(
        "alice",
        Action::AssignRole {
            role: Role::CommsLead,
            person: "carol".into(),
            track: None,
        },
    )
    .unwrap();
    a.now = Timestamp(T0 + MIN);
    a.run(
        "alice",
        Action::AssignRole {
            role: Role::Commander,
            person: "alice".into(),
            track: None,
        },
    )
    .unwrap(); // hand-over bob → alice
    let members: Vec<String> = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (counts, never, suggestion) = role_rotation([&a.state], &members);
    assert_eq!(counts["bob"].commander, 1);
    assert_eq!(counts["alice"].commander, 1);
    assert_eq!(counts["carol"].comms_lead, 1);
    assert_eq!(never, ["carol", "dave"]);
    assert_eq!(suggestion.as_deref(), Some("carol"));
    // Everyone led once: the longest ago is next.
    let (_, never, suggestion) = role_rotation([&a.state], &members[..2]);
    assert!(never.is_empty());
    assert_eq!(suggestion.as_deref(), Some("bob"));
}
