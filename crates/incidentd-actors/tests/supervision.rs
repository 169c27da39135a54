//! Supervision: a panicking incident actor is restarted from the store with
//! nothing acknowledged lost; resolved incidents' actors retire and come back
//! on demand; a restart of the whole process recovers every incident.

mod common;

use incidentd_actors::{Error, Filter, Handle};
use incidentd_domain::{Action, Command, EntryKind, Severity, Status, Timestamp};
use incidentd_store::Store;
use std::sync::atomic::Ordering;

async fn start(dir: &std::path::Path) -> (Handle, Store) {
    common::start(dir, Timestamp(1_795_729_200_000)).await
}

fn declare(title: &str) -> Command {
    Command {
        access: Default::default(),
        by: Some("alice".into()),
        action: Action::Declare {
            id: Default::default(),
            number: 0,
            title: title.into(),
            team: "payments".into(),
            services: vec![],
            // SEV-4: no deadline falls due while these tests run.
            severity: Some(Severity::Sev4),
            summary: String::new(),
            commander: None,
            drill: false,
        },
    }
}

fn note(text: &str) -> Command {
    Command {
        access: Default::default(),
        by: Some("bob".into()),
        action: Action::AddEntry {
            kind: EntryKind::Note,
            text: text.into(),
        },
    }
}

/// Makes the incident's actor panic, then reads the incident from its
/// replacement (the next call waits in the supervisor until it owns it).
async fn crash_and_get(
    handle: &Handle,
    id: incidentd_domain::IncidentId,
) -> std::sync::Arc<incidentd_domain::Incident> {
    handle.crash_actor(id);
    loop {
        match handle.get(id).await {
            Ok(s) => return s,
            Err(Error::Internal(_)) => continue, // the call that raced the panic
            Err(e) => panic!("unexpected error {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_actor_is_restarted_from_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let (handle, store) = start(tmp.path()).await;
    let inc = handle.declare(declare("db down"), None).await.unwrap();
    for i in 0..6 {
        handle
            .execute_entry(inc.id, note(&format!("note {i}")), None)
            .await
            .unwrap();
    }
    let before = handle.get(inc.id).await.unwrap();
    assert_eq!(before.version, 7);

    let after = crash_and_get(&handle, inc.id).await;
    assert_eq!(
        *after, *before,
        "state rebuilt from snapshot + log equals the live state"
    );
    assert_eq!(handle.counters().actor_restarts.load(Ordering::Relaxed), 1);
    let e = handle.execute_entry(inc.id, note("after restart"), None).await.unwrap();
    assert_eq!(e.version, 8);
    handle.shutdown().await;
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_actors_retire_and_rehydrate_on_demand() {
    let tmp = tempfile::tempdir().unwrap();
    let (handle, store) = start(tmp.path()).await;
    let inc = handle
        .declare(declare("api errors"), Some("req-1".into()))
        .await
        .unwrap();
    let resolve = Command {
        access: Default::default(),
        by: Some("alice".into()),
        action: Action::Resolve { note: "fixed".into() },
    };
    let resolved = handle.execute_incident(inc.id, resolve, None).await.unwrap();
    assert_eq!(resolved.status, Status::Resolved);

    // Wait until the supervisor has seen the retired actor stop.
    while handle.counters().actors_retired.load(Ordering::Relaxed) == 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(handle.stats().await.unwrap().live_actors, 0);

    // Reads and writes rehydrate it from the store.
    let s = handle.get(inc.id).await.unwrap();
    assert_eq!(s.version, resolved.version);
    let reopen = Command {
        access: Default::default(),
        by: Some("alice".into()),
        action: Action::SetStatus {
            status: Status::Investigating,
            note: "came back".into(),
        },
    };
    let reopened = handle.execute_incident(inc.id, reopen, None).await.unwrap();
    assert_eq!(reopened.status, Status::Investigating);
    assert_eq!(reopened.version, resolved.version + 1);

    // A retried declaration answers the first result.
    let again = handle
        .declare(declare("api errors"), Some("req-1".into()))
        .await
        .unwrap();
    assert_eq!(again.id, inc.id);
    assert_eq!(again.version, inc.version);

    handle.shutdown().await;
    store.close().await.unwrap();
    drop(handle);
    drop(store);

    // A new process recovers everything, idempotency included.
    let (handle, store) = start(tmp.path()).await;
    let page = handle.list(Filter::default(), None, 10).await.unwrap();
    assert_eq!(page.incidents.len(), 1);
    assert_eq!(page.incidents[0].version, reopened.version);
    let again = handle
        .declare(declare("api errors"), Some("req-1".into()))
        .await
        .unwrap();
    assert_eq!(again.id, inc.id);
    assert_eq!(
        handle.stats().await.unwrap().live_actors,
        1,
        "reopened incident is live again"
    );
    handle.shutdown().await;
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_newest_first() {
    let tmp = tempfile::tempdir().unwrap();
    let (handle, store) = start(tmp.path()).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            handle
                .declare(declare(&format!("incident {i}")), None)
                .await
                .unwrap()
                .id,
        );
    }
    let first = handle.list(Filter::default(), None, 2).await.unwrap();
    let got: Vec<_> = first.incidents.iter().map(|i| i.id).collect();
    assert_eq!(got, vec![ids[2], ids[1]]);
    assert_eq!(first.next, Some(ids[1]));
    let second = handle.list(Filter::default(), first.next, 2).await.unwrap();
    assert_eq!(second.incidents.iter().map(|i| i.id).collect::<Vec<_>>(), vec![ids[0]]);
    assert_eq!(second.next, None);
    let exact = handle.list(Filter::default(), None, 3).await.unwrap();
    assert_eq!(
        (exact.incidents.len(), exact.next),
        (3, None),
        "no token when nothing follows"
    );
    // A team filter pages through that team's index the same way.
    let mut other = declare("elsewhere");
    if let Action::Declare { team, .. } = &mut other.action {
        *team = "identity".into();
    }
    let elsewhere = handle.declare(other, None).await.unwrap().id;
    let team = |t: &str| Filter {
        team: Some(t.into()),
        ..Default::default()
    };
    let first = handle.list(team("payments"), None, 2).await.unwrap();
    assert_eq!(
        first.incidents.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![ids[2], ids[1]]
    );
    let second = handle.list(team("payments"), first.next, 2).await.unwrap();
    assert_eq!(
        (second.incidents.iter().map(|i| i.id).collect::<Vec<_>>(), second.next),
        (vec![ids[0]], None)
    );
    let only = handle.list(team("identity"), None, 10).await.unwrap();
    assert_eq!(only.incidents.iter().map(|i| i.id).collect::<Vec<_>>(), vec![elsewhere]);
    assert!(
        handle
            .list(team("nobody"), None, 10)
            .await
            .unwrap()
            .incidents
            .is_empty()
    );
    handle.shutdown().await;
    store.close().await.unwrap();
}

/// A long incident is snapshotted when the events since its last snapshot
/// weigh twice as much as that snapshot, not every `snapshot_every` events: its
/// snapshots cost a constant amount per event however long it runs, and a
/// restart still rebuilds exactly the live state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_incidents_are_snapshotted_by_weight() {
    let tmp = tempfile::tempdir().unwrap();
    let (handle, store) = start(tmp.path()).await;
    let inc = handle.declare(declare("flapping disk alerts"), None).await.unwrap();
    let notes = 400;
    for i in 0..notes {
        handle
            .execute_entry(inc.id, note(&format!("disk alert fired again, round {i}")), None)
            .await
            .unwrap();
    }
    // Reads are answered in order after the snapshot writes queued before them.
    store.load_incident(inc.id.to_bytes()).await.unwrap();
    let saved = store.stats().snapshots_saved;
    // Every 4 events (snapshot_every in these tests) would be 100 snapshots.
    assert!((2..=20).contains(&saved), "{saved} snapshots for {notes} notes");

    let before = handle.get(inc.id).await.unwrap();
    let after = crash_and_get(&handle, inc.id).await;
    assert_eq!(*after, *before, "snapshot + log tail rebuild the live state");
    handle.shutdown().await;
    store.close().await.unwrap();
}
