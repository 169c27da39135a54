//! The drill calendar on a paused clock: a scheduled drill is reminded a
//! day ahead, starts at its time as a drill incident playing its scenario,
//! a recurring one books the next quarter, everything survives a restart,
//! and nothing fires twice.

mod common;
use common::{hold_the_clock, start, stop};
use incidentd_actors::drills::{DrillRoles, DrillState, QUARTER};
use incidentd_actors::{Filter, Handle};
use incidentd_domain::{ErrorKind, Timestamp};
use std::time::Duration;

const T0: i64 = 1_795_729_200_000;
const HOUR: u64 = 3600;

/// Advances the paused clock and lets the calendar act (bounded by real time).
async fn advance_to(handle: &Handle, secs: u64, until: impl Fn(&[incidentd_actors::drills::ScheduledDrill]) -> bool) {
    let target = T0 + (secs * 1000) as i64;
    let now = handle.clock().now().0;
    tokio::time::advance(Duration::from_millis((target - now).max(0) as u64)).await;
    let started = std::time::Instant::now();
    loop {
        let drills = handle.list_drills(None).await.unwrap();
        if until(&drills) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "calendar did not act: {drills:?}"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn scheduled_drills_are_reminded_started_and_recur_once_across_restarts() {
    let _busy = hold_the_clock();
    let tmp = tempfile::tempdir().unwrap();
    let (handle, store) = start(tmp.path(), Timestamp(T0)).await;

    // Bad input is named and leaves nothing behind.
    let past = Some(Timestamp(T0 - 1));
    let e = handle
        .schedule_drill("database-data-loss".into(), "payments".into(), past, false, None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("at"), "{e}");
    let e = handle
        .schedule_drill("meteor".into(), "payments".into(), None, false, None)
        .await
        .unwrap_err();
    match e {
        incidentd_actors::Error::Domain(d) => assert_eq!((d.kind, d.field), (ErrorKind::NotFound, Some("scenario"))),
        other => panic!("{other}"),
    }
    assert!(handle.list_drills(None).await.unwrap().is_empty());

    let at = Timestamp(T0 + (48 * HOUR * 1000) as i64);
    let drill = handle
        .schedule_drill(
            "database-data-loss".into(),
            "payments".into(),
            Some(at),
            true,
            Some("alice".into()),
        )
        .await
        .unwrap();
    assert_eq!(drill.state, DrillState::Scheduled);
    let other = handle
        .schedule_drill("regulatory-exposure".into(), "payments".into(), None, false, None)
        .await
        .unwrap();
    // No time given: a quarter after the team's latest drill.
    assert_eq!(other.at, at.plus(QUARTER));
    handle.cancel_drill(other.id.clone()).await.unwrap();
    let again = handle.cancel_drill(other.id.clone()).await.unwrap_err();
    assert!(again.to_string().contains("no longer scheduled"), "{again}");

    // A day ahead: the reminder.
    advance_to(&handle, 24 * HOUR, |d| d.iter().any(|x| x.reminded_at.is_some())).await;
    let first = handle.list_drills(None).await.unwrap();
    let d = first.iter().find(|x| x.id == drill.id).unwrap();
    assert_eq!(d.reminded_at, Some(Timestamp(T0 + (24 * HOUR * 1000) as i64)));
    assert_eq!(d.state, DrillState::Scheduled);

    // At its time: the drill incident starts, and the next quarter is booked.
    advance_to(&handle, 48 * HOUR, |d| {
        d.iter().any(|x| matches!(x.state, DrillState::Started { .. }))
    })
    .await;
    let drills = handle.list_drills(Some("payments".into())).await.unwrap();
    let incident = match &drills.iter().find(|x| x.id == drill.id).unwrap().state {
        DrillState::Started { incident, .. } => *incident,
        other => panic!("{other:?}"),
    };
    let inc = handle.get(incident).await.unwrap();
    assert!(inc.drill);
    assert_eq!(inc.drill_script.as_ref().unwrap().scenario, "database-data-loss");
    let next: Vec<_> = drills.iter().filter(|x| x.state == DrillState::Scheduled).collect();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].at, at.plus(QUARTER));
    assert!(next[0].recurring);
    stop(handle, store).await;

    // A restart later: the calendar is recovered and nothing starts twice.
    let (handle, store) = start(tmp.path(), Timestamp(T0 + (50 * HOUR * 1000) as i64)).await;
    let recovered = handle.list_drills(None).await.unwrap();
    assert_eq!(recovered.len(), 3);
    let page = handle.list(Filter::default(), None, 10).await.unwrap();
    assert_eq!(
        page.incidents.iter().filter(|i| i.drill).count(),
        1,
        "one drill incident, not two"
    );
    stop(handle, store).await;
}

#[tokio::test(start_paused = true)]
async fn start_drill_checks_everyone_before_declaring() {
    let _busy = hold_the_clock();
    let tmp = tempfile::tempdir().unwrap();
    let (handle, store) = start(tmp.path(), Timestamp(T0)).await;
    let roles = DrillRoles {
        commander: Some("bob".into()),
        comms_lead: None,
        smes: vec![("dave".into(), " ".into())],
    };
    let e = handle
        .start_drill("sev1-payments-outage", "payments", roles, None, None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("roles.smes.track"), "{e}");
    let page = handle.list(Filter::default(), None, 10).await.unwrap();
    assert!(page.incidents.is_empty());
    stop(handle, store).await;
}
