//! The alert router (issue 6): exactly one incident per dedup key under
//! concurrency and across restarts; order kept per key; a closed key opens a
//! new incident, a recently resolved one is reopened.

mod common;

use incidentd_actors::{Alerts, Filter, Handle, Outcome};
use incidentd_domain::{
    Action, AlertAction, AlertIntake, AlertRules, AlertSignal, AlertStatus, Command, RouteDefaults, Timestamp,
};
use incidentd_store::Store;
use std::sync::Arc;
use std::time::Duration;

async fn start(dir: &std::path::Path) -> (Handle, Alerts, Store) {
    let (handle, store) = common::start(dir, Timestamp(1_795_729_200_000)).await;
    let alerts = Alerts::start(&handle).await.unwrap();
    (handle, alerts, store)
}

fn intake(key: &str, action: AlertAction, fp: &str) -> AlertIntake {
    AlertIntake {
        key: key.into(),
        source: "am-main".into(),
        signals: vec![AlertSignal {
            action,
            fingerprint: fp.into(),
            labels: Default::default(),
            summary: format!("{fp} down"),
            started_at: None,
            ended_at: None,
        }],
        title: format!("group {key}"),
        defaults: RouteDefaults {
            integration_team: "payments".into(),
            default_team: "platform".into(),
            unclear_severity: incidentd_domain::Severity::Sev1,
        },
        rules: AlertRules {
            reopen_window: Duration::from_secs(600),
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn incidents(handle: &Handle) -> Vec<Arc<incidentd_domain::Incident>> {
    handle.list(Filter::default(), None, 500).await.unwrap().incidents
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_notifications_make_one_incident_per_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (handle, alerts, store) = start(tmp.path()).await;
    let mut tasks = Vec::new();
    for key in 0..8 {
        for n in 0..40 {
            let alerts = alerts.clone();
            tasks.push(tokio::spawn(async move {
                alerts
                    .ingest(intake(&format!("k{key}"), AlertAction::Trigger, &format!("fp{n}")))
                    .await
            }));
        }
    }
    let mut created = 0;
    for t in tasks {
        let done = t.await.unwrap().unwrap();
        created += usize::from(done.outcome == Outcome::Created);
        assert!(done.incident.is_some());
    }
    assert_eq!(created, 8, "one incident per key");
    let all = incidents(&handle).await;
    assert_eq!(all.len(), 8);
    for s in &all {
        let full = handle.get(s.id).await.unwrap();
        assert_eq!(full.alerts.len(), 40, "no alert lost in {:?}", full.alert_key);
    }
    assert_eq!(alerts.keys().await.unwrap(), 8);
    handle.shutdown().await;
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_of_one_key_keep_their_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (handle, alerts, store) = start(tmp.path()).await;
    // Submitted one after the other without waiting: trigger, then resolve, per fingerprint.
    let mut pending = Vec::new();
    for n in 0..50 {
        pending.push(alerts.submit(intake("k", AlertAction::Trigger, &format!("fp{n}"))));
        pending.push(alerts.submit(intake("k", AlertAction::Resolve, &format!("fp{n}"))));
    }
    let mut id = None;
    for p in pending {
        let done = p.await.unwrap();
        assert_ne!(done.outcome, Outcome::Ignored, "{}", done.message);
        id = done.incident;
    }
    let full = handle.get(id.unwrap()).await.unwrap();
    assert_eq!(full.alerts.len(), 50);
    assert!(full.alerts.iter().all(|a| a.status == AlertStatus::Resolved));
    assert!(full.timeline.iter().any(|e| e.text.contains("All 50 alert(s)")));
    handle.shutdown().await;
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let first = {
        let (handle, alerts, store) = start(tmp.path()).await;
        let done = alerts.ingest(intake("k", AlertAction::Trigger, "fp1")).await.unwrap();
        assert_eq!(done.outcome, Outcome::Created);
        handle.shutdown().await;
        store.close().await.unwrap();
        done.incident.unwrap()
    };
    let (handle, alerts, store) = start(tmp.path()).await;
    assert_eq!(alerts.keys().await.unwrap(), 1);
    let done = alerts.ingest(intake("k", AlertAction::Trigger, "fp2")).await.unwrap();
    assert_eq!((done.outcome, done.incident), (Outcome::Deduplicated, Some(first)));
    assert_eq!(handle.get(first).await.unwrap().alerts.len(), 2);
    handle.shutdown().await;
    store.close().await.unwrap();
}

// Real time, not a paused clock: with incident timers armed, a paused runtime
// would jump to their deadlines while the test waits on the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_key_opens_a_new_incident_and_a_recent_one_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let (handle, alerts, store) = start(tmp.path()).await;
    let resolve = |id| {
        handle.execute_incident(
            id,
            Command {
                access: Default::default(),
                by: Some("alice".into()),
                action: Action::Resolve { note: "fixed".into() },
            },
            None,
        )
    };
    let first = alerts.ingest(intake("k", AlertAction::Trigger, "fp1")).await.unwrap();
    let first_id = first.incident.unwrap();
    resolve(first_id).await.unwrap();
    // A follow-up on the closed key is ignored and says so.
    let ignored = alerts.ingest(intake("k", AlertAction::Resolve, "fp1")).await.unwrap();
    assert_eq!(ignored.outcome, Outcome::Ignored);
    assert!(ignored.message.contains("is resolved"), "{}", ignored.message);
    // Within the window (10 min): reopened.
    let again = alerts.ingest(intake("k", AlertAction::Trigger, "fp2")).await.unwrap();
    assert_eq!((again.outcome, again.incident), (Outcome::Deduplicated, Some(first_id)));
    assert!(!handle.get(first_id).await.unwrap().is_resolved());
    let resolved_at = resolve(first_id).await.unwrap().resolved_at.unwrap();
    // Outside the window (an integration with a zero window, once the clock has moved on):
    // concurrent triggers open exactly one new incident.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while handle.clock().now() <= resolved_at {
        assert!(std::time::Instant::now() < deadline, "the clock did not move");
        tokio::task::yield_now().await;
    }
    let closing = |n: usize| {
        let mut i = intake("k", AlertAction::Trigger, &format!("fp{n}"));
        i.rules.reopen_window = Duration::ZERO;
        i
    };
    let pending: Vec<_> = (0..10).map(|n| alerts.submit(closing(n))).collect();
    let mut new_ids = std::collections::BTreeSet::new();
    let mut created = 0;
    for p in pending {
        let done = p.await.unwrap();
        created += usize::from(done.outcome == Outcome::Created);
        new_ids.insert(done.incident.unwrap());
    }
    assert_eq!(created, 1);
    assert_eq!(new_ids.len(), 1);
    assert!(!new_ids.contains(&first_id));
    assert_eq!(incidents(&handle).await.len(), 2);
    handle.shutdown().await;
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_on_one_key_is_stored_in_few_batches_and_a_bad_one_fails_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let (handle, alerts, store) = start(tmp.path()).await;
    alerts.ingest(intake("k", AlertAction::Trigger, "fp0")).await.unwrap();
    let appends_before = store.stats().appends;
    let mut pending = Vec::new();
    for n in 1..=200 {
        let mut i = intake("k", AlertAction::Trigger, &format!("fp{n}"));
        if n == 100 {
            i.signals[0].fingerprint.clear(); // invalid
        }
        pending.push(alerts.submit(i));
    }
    let mut failed = 0;
    let mut id = None;
    for p in pending {
        match p.await {
            Ok(done) => id = done.incident,
            Err(incidentd_actors::Error::Domain(e)) => {
                assert_eq!(e.field, Some("fingerprint"));
                failed += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(failed, 1, "only the bad notification fails");
    assert_eq!(handle.get(id.unwrap()).await.unwrap().alerts.len(), 200);
    let appends = store.stats().appends - appends_before;
    assert!(appends < 100, "199 notifications in {appends} appends: batched per key");
    handle.shutdown().await;
    store.close().await.unwrap();
}
