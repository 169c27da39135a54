//! Incident actors run the playbook's clocks: on a paused tokio clock, a
//! SEV-1 goes through its first 15 minutes with misses and nudges and the
//! 30-minute escalation, at exact times; deadlines that pass while the
//! process is down fire once, at once, on recovery, and never again.
//!
//! The store is real (files in a temp dir), so appends complete on the
//! store's own threads. Tokio's paused clock jumps to the next timer
//! whenever the runtime is idle, which would happen while an append is in
//! flight; a task that only yields keeps the runtime busy, so time moves
//! only when a test calls `advance`.

mod common;
use common::{hold_the_clock, start, stop};
use incidentd_actors::{Clock, Published};
use incidentd_domain::{
    Action, ChecklistItemKind, Command, EntryKind, EventKind, IncidentId, Policy, Role, Severity, Timestamp,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

const T0: i64 = 1_795_729_200_000;
const MIN: u64 = 60;

fn cmd(by: &str, action: Action) -> Command {
    Command {
        access: Default::default(),
        by: Some(by.into()),
        action,
    }
}

fn declare(severity: Option<Severity>) -> Command {
    cmd(
        "alice",
        Action::Declare {
            id: IncidentId::default(),
            number: 0,
            title: "Payments down".into(),
            team: "payments".into(),
            services: vec![],
            severity,
            summary: String::new(),
            commander: None,
            drill: false,
        },
    )
}

fn assign(role: Role, person: &str, track: Option<&str>) -> Command {
    cmd(
        "alice",
        Action::AssignRole {
            role,
            person: person.into(),
            track: track.map(str::to_string),
        },
    )
}

/// The next published event (what watchers and notifiers receive). The
/// paused clock cannot bound the wait, so real time does: an event that
/// never comes fails the test instead of hanging it.
async fn next_event(feed: &mut broadcast::Receiver<Arc<Published>>) -> Arc<Published> {
    let started = std::time::Instant::now();
    loop {
        match feed.try_recv() {
            Ok(p) => return p,
            Err(broadcast::error::TryRecvError::Empty) => {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(30),
                    "expected another event"
                );
                tokio::task::yield_now().await;
            }
            Err(e) => panic!("feed: {e}"),
        }
    }
}

/// Moves the paused clock to `T0 + secs` and returns the events the
/// deadlines that fell due caused (`count` of them).
async fn at(
    clock: &Clock,
    secs: u64,
    feed: &mut broadcast::Receiver<Arc<Published>>,
    count: usize,
) -> Vec<Arc<Published>> {
    let target = Timestamp(T0 + (secs * 1000) as i64);
    let now = clock.now();
    assert!(target >= now, "time only moves forward");
    tokio::time::advance(Duration::from_millis((target.0 - now.0) as u64)).await;
    let mut out = Vec::new();
    for _ in 0..count {
        out.push(next_event(feed).await);
    }
    assert!(feed.is_empty(), "no more events than expected at {secs}s");
    out
}

fn fired_at(p: &Published) -> i64 {
    (p.event.at.0 - T0) / 1000
}

#[tokio::test(start_paused = true)]
async fn a_sev1_runs_its_first_15_minutes_and_escalates_at_30() {
    let _busy = hold_the_clock();
    let tmp = tempfile::tempdir().unwrap();
    let (handle, store) = start(tmp.path(), Timestamp(T0)).await;
    let clock = handle.clock();
    let mut feed = handle.watch_all();

    // Declared without a severity: SEV-1 by default; stakeholders are due at
    // once, and that notice is stored in the declaration's own append.
    let appends = store.stats().appends;
    let inc = handle.declare(declare(None), None).await.unwrap();
    let id = inc.id;
    assert_eq!(
        store.stats().appends,
        appends + 1,
        "one append for the declaration and its notice"
    );
    assert_eq!(next_event(&mut feed).await.event.kind.name(), "declared");
    let notice = next_event(&mut feed).await;
    assert_eq!(notice.event.kind.name(), "stakeholder_notice_due");
    assert_eq!(fired_at(&notice), 0);
    assert_eq!(
        notice.version,
        inc.version + 1,
        "the answer is the declaration's own state"
    );

    at(&clock, MIN, &mut feed, 0).await;
    handle
        .execute_incident(id, cmd("bob", Action::Acknowledge), None)
        .await
        .unwrap();
    next_event(&mut feed).await;
    at(&clock, 3 * MIN, &mut feed, 0).await; // the 2-minute item was done in time
    handle
        .execute_incident(id, assign(Role::Commander, "bob", None), None)
        .await
        .unwrap();
    next_event(&mut feed).await;

    // 5 min: severity still the unclear default → the commander is nudged.
    let missed = at(&clock, 5 * MIN, &mut feed, 1).await;
    assert_eq!(fired_at(&missed[0]), 5 * MIN as i64);
    match &missed[0].event.kind {
        EventKind::ChecklistMissed { item, notify, .. } => {
            assert_eq!(*item, ChecklistItemKind::SeverityAndCommander);
            assert_eq!(notify.people, ["bob"]);
        }
        other => panic!("unexpected {other:?}"),
    }
    at(&clock, 6 * MIN, &mut feed, 0).await;
    let confirm = cmd(
        "bob",
        Action::SetSeverity {
            severity: Severity::Sev1,
            reason: "checkout fully down".into(),
        },
    );
    handle.execute_incident(id, confirm, None).await.unwrap();
    next_event(&mut feed).await;

    // 10 min: no comms lead, no SME → team not assembled.
    let missed = at(&clock, 10 * MIN, &mut feed, 1).await;
    assert!(matches!(
        missed[0].event.kind,
        EventKind::ChecklistMissed {
            item: ChecklistItemKind::TeamAssembled,
            ..
        }
    ));
    at(&clock, 12 * MIN, &mut feed, 0).await;
    handle
        .execute_incident(id, assign(Role::CommsLead, "carol", None), None)
        .await
        .unwrap();
    handle
        .execute_incident(id, assign(Role::Sme, "dave", Some("database")), None)
        .await
        .unwrap();
    next_event(&mut feed).await;
    next_event(&mut feed).await;

    // 15 min: the plan is there (no miss), but no internal update yet.
    let due = at(&clock, 15 * MIN, &mut feed, 1).await;
    match &due[0].event.kind {
        EventKind::UpdateOverdue { notify, .. } => assert_eq!(notify.people, ["bob", "carol"]),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(fired_at(&due[0]), 15 * MIN as i64);

    // 27 min: dave has not reported back on his track for 15 minutes.
    let nudge = at(&clock, 27 * MIN, &mut feed, 1).await;
    match &nudge[0].event.kind {
        EventKind::SmeReportOverdue { person, notify, .. } => {
            assert_eq!(person, "dave");
            assert_eq!(notify.people, ["dave", "bob"]);
        }
        other => panic!("unexpected {other:?}"),
    }
    // A finding by dave resets his clock.
    at(&clock, 28 * MIN, &mut feed, 0).await;
    let finding = cmd(
        "dave",
        Action::AddEntry {
            kind: EntryKind::Finding,
            text: "replica lag".into(),
        },
    );
    handle.execute_entry(id, finding, None).await.unwrap();
    next_event(&mut feed).await;

    // 30 min: the second update reminder and the SEV-1 escalation, together.
    let fired = at(&clock, 30 * MIN, &mut feed, 2).await;
    let names: Vec<&str> = fired.iter().map(|p| p.event.kind.name()).collect();
    assert_eq!(names, ["update_overdue", "escalated"]);
    match &fired[1].event.kind {
        EventKind::Escalated { rule, target, .. } => {
            assert_eq!(rule, "sev1-not-mitigated");
            assert_eq!(target, "engineering_leadership");
        }
        other => panic!("unexpected {other:?}"),
    }

    let state = handle.get(id).await.unwrap();
    let item = |k: ChecklistItemKind| state.checklist.iter().find(|c| c.item == k).unwrap().clone();
    let secs = |t: Option<Timestamp>| t.map(|t| (t.0 - T0) / 1000);
    assert_eq!(secs(item(ChecklistItemKind::Acknowledge).done_at), Some(60));
    assert_eq!(secs(item(ChecklistItemKind::SeverityAndCommander).missed_at), Some(300));
    assert_eq!(secs(item(ChecklistItemKind::SeverityAndCommander).done_at), Some(360));
    assert_eq!(secs(item(ChecklistItemKind::TeamAssembled).done_at), Some(720));
    assert_eq!(secs(item(ChecklistItemKind::InvestigationPlan).done_at), Some(720));
    assert_eq!(item(ChecklistItemKind::InvestigationPlan).missed_at, None);
    assert_eq!(state.escalations.len(), 1);
    // dave's next report is due 15 minutes after his finding.
    let sme_due = incidentd_domain::timers::sme_report_due(&state, &Policy::playbook(), 0);
    assert_eq!(secs(sme_due), Some(43 * 60));
    stop(handle, store).await;
}

#[tokio::test(start_paused = true)]
async fn a_deadline_that_passed_while_down_fires_once_on_recovery_and_never_again() {
    let _busy = hold_the_clock();
    let tmp = tempfile::tempdir().unwrap();

    // SEV-2: acknowledge by 2 min, severity + commander by 5 min.
    let (handle, store) = start(tmp.path(), Timestamp(T0)).await;
    let inc = handle.declare(declare(Some(Severity::Sev2)), None).await.unwrap();
    assert_eq!(inc.version, 1);
    stop(handle, store).await;

    // Down from 0:00 to 6:00: two checklist deadlines passed meanwhile.
    let (handle, store) = start(tmp.path(), Timestamp(T0 + 6 * 60_000)).await;
    let mut feed = handle.watch_all();
    let state = handle.get(inc.id).await.unwrap();
    // The actor fired on start; the events may already be in or still on the way.
    let mut seen = (state.version as usize).saturating_sub(1);
    while seen < 2 {
        next_event(&mut feed).await;
        seen += 1;
    }
    let state = handle.get(inc.id).await.unwrap();
    assert_eq!(state.version, 3);
    let missed: Vec<i64> = state
        .checklist
        .iter()
        .filter_map(|c| c.missed_at)
        .map(|t| (t.0 - T0) / 1000)
        .collect();
    assert_eq!(missed, [360, 360], "fired once each, at once, at recovery");
    stop(handle, store).await;

    // Restarted again at 7:00: nothing is due again.
    let (handle, store) = start(tmp.path(), Timestamp(T0 + 7 * 60_000)).await;
    let state = handle.get(inc.id).await.unwrap();
    assert_eq!(state.version, 3, "no second firing after a second restart");
    // The next deadline (team assembled at 10:00) is armed and fires on time.
    let mut feed = handle.watch_all();
    let clock = handle.clock();
    let fired = at(&clock, 10 * MIN, &mut feed, 1).await;
    assert!(matches!(
        fired[0].event.kind,
        EventKind::ChecklistMissed {
            item: ChecklistItemKind::TeamAssembled,
            ..
        }
    ));
    assert_eq!(fired_at(&fired[0]), 10 * MIN as i64);
    stop(handle, store).await;
}

#[tokio::test(start_paused = true)]
async fn a_resolved_incident_is_woken_for_its_review_reminder() {
    let _busy = hold_the_clock();
    let tmp = tempfile::tempdir().unwrap();
    let (handle, store) = start(tmp.path(), Timestamp(T0)).await;
    let clock = handle.clock();
    let mut feed = handle.watch_all();
    let inc = handle.declare(declare(Some(Severity::Sev4)), None).await.unwrap();
    handle
        .execute_incident(inc.id, assign(Role::Commander, "bob", None), None)
        .await
        .unwrap();
    let resolve = cmd("bob", Action::Resolve { note: "fixed".into() });
    handle.execute_incident(inc.id, resolve, None).await.unwrap();
    for _ in 0..3 {
        next_event(&mut feed).await;
    }
    // The actor retires; the supervisor wakes the incident 48 h later.
    let fired = at(&clock, 48 * 3600, &mut feed, 1).await;
    match &fired[0].event.kind {
        EventKind::ReviewOverdue { notify, .. } => assert_eq!(notify.people, ["bob"]),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(fired_at(&fired[0]), 48 * 3600);
    stop(handle, store).await;

    // After a restart the reminder is not sent again.
    let (handle, store) = start(tmp.path(), Timestamp(T0 + 50 * 3_600_000)).await;
    assert_eq!(handle.get(inc.id).await.unwrap().version, 4);
    stop(handle, store).await;
}
