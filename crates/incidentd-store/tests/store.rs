//! The store through its public API: round trips, torn tails, snapshots,
//! rebuilding sled from the log, shutdown.

use incidentd_store::{IncidentKey, Record, Recovery, Snapshot, Store, StoreConfig, StoreError};
use std::path::Path;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const A: IncidentKey = [0xA; 16];
const B: IncidentKey = [0xB; 16];
const C: IncidentKey = [0xC; 16];

/// `Store::open` blocks: keep it off the test's async workers.
async fn open(dir: &Path) -> Result<(Store, Recovery), StoreError> {
    let cfg = StoreConfig::new(dir);
    tokio::task::spawn_blocking(move || Store::open(cfg))
        .await
        .map_err(|e| StoreError::Failed(e.to_string()))?
}

fn event(incident: IncidentKey, version: u64) -> Record {
    Record::Event {
        incident,
        version,
        payload: payload(incident, version),
    }
}

fn payload(incident: IncidentKey, version: u64) -> Vec<u8> {
    format!("incident {:x} version {version}", incident[0]).into_bytes()
}

fn events(incident: IncidentKey, versions: impl IntoIterator<Item = u64>) -> Vec<(u64, Vec<u8>)> {
    versions.into_iter().map(|v| (v, payload(incident, v))).collect()
}

fn idem(key: &str) -> Record {
    Record::Idempotency {
        key: key.into(),
        response: format!("answer to {key}").into_bytes(),
    }
}

fn tail_of(recovery: &Recovery, incident: IncidentKey) -> Option<&[(u64, Vec<u8>)]> {
    recovery
        .incidents
        .iter()
        .find(|r| r.incident == incident)
        .map(|r| r.tail.as_slice())
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_through_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, recovery) = open(dir.path()).await?;
    assert!(recovery.incidents.is_empty());
    assert_eq!(recovery.records, 0);

    let mut last = recovery.log_bytes;
    let batches = vec![
        vec![event(A, 1), event(A, 2), idem("req-a")],
        vec![event(B, 1)],
        vec![event(A, 3), event(C, 1), event(C, 2), idem("req-c")],
        vec![],
        vec![event(B, 2), event(B, 3), event(A, 4)],
    ];
    for batch in batches {
        let empty = batch.is_empty();
        let offset = store.append(batch).await?;
        if empty {
            assert_eq!(offset, last);
        } else {
            assert!(offset > last);
        }
        last = offset;
    }
    assert_eq!(store.get_idempotent("req-a").await?, Some(b"answer to req-a".to_vec()));
    assert_eq!(store.get_idempotent("req-c").await?, Some(b"answer to req-c".to_vec()));
    assert_eq!(store.get_idempotent("req-x").await?, None);
    assert_eq!(store.read_events(A, 0, 4).await?, events(A, 1..=4));
    assert_eq!(store.read_events(A, 1, 3).await?, events(A, 2..=3));
    assert_eq!(store.read_events(A, 2, 2).await?, events(A, []));
    assert_eq!(store.read_events(A, 3, 1).await?, events(A, []));
    assert_eq!(store.read_events(A, 3, u64::MAX).await?, events(A, [4]));
    assert_eq!(store.read_events(A, u64::MAX, u64::MAX).await?, events(A, []));
    assert_eq!(store.read_events([0xD; 16], 0, u64::MAX).await?, events(A, []));
    assert_eq!(store.load_incident([0xD; 16]).await?, None);
    let loaded = store.load_incident(B).await?.ok_or("B is missing")?;
    assert_eq!((loaded.snapshot, loaded.tail), (None, events(B, 1..=3)));
    assert_eq!(store.stats().bytes, last);
    store.close().await?;

    let (store, recovery) = open(dir.path()).await?;
    assert_eq!(recovery.log_bytes, last);
    assert_eq!(recovery.records, 11);
    assert_eq!(recovery.truncated_tail_bytes, 0);
    assert_eq!(recovery.reindexed_records, 0, "sled was flushed at close");
    assert!(!recovery.index_rebuilt);
    let keys: Vec<IncidentKey> = recovery.incidents.iter().map(|r| r.incident).collect();
    assert_eq!(keys, vec![A, B, C]);
    assert_eq!(tail_of(&recovery, A), Some(events(A, 1..=4).as_slice()));
    assert_eq!(tail_of(&recovery, B), Some(events(B, 1..=3).as_slice()));
    assert_eq!(tail_of(&recovery, C), Some(events(C, 1..=2).as_slice()));
    assert!(recovery.incidents.iter().all(|r| r.snapshot.is_none()));
    assert_eq!(store.get_idempotent("req-a").await?, Some(b"answer to req-a".to_vec()));
    assert_eq!(store.read_events(C, 0, 2).await?, events(C, 1..=2));

    // Appends continue where the log ended.
    let end = store.append(vec![event(C, 3)]).await?;
    assert!(end > last);
    store.close().await?;
    let (store, recovery) = open(dir.path()).await?;
    assert_eq!(recovery.log_bytes, end);
    assert_eq!(tail_of(&recovery, C), Some(events(C, 1..=3).as_slice()));
    store.close().await?;
    Ok(())
}

/// Builds a log whose last record (event A 5) spans `start..end`; the
/// earlier records are events A 1..=4 and an idempotency record.
async fn log_with_last_record(dir: &Path) -> Result<(u64, u64), StoreError> {
    let (store, _) = open(dir).await?;
    store.append(vec![event(A, 1), event(A, 2)]).await?;
    store.append(vec![event(A, 3), idem("req-1")]).await?;
    let start = store.append(vec![event(A, 4)]).await?;
    let end = store.append(vec![event(A, 5)]).await?;
    store.close().await?;
    Ok((start, end))
}

/// Opens a damaged copy, checks that exactly the last record is gone, then
/// that appends work and survive another reopen.
async fn check_cut_at_last_record(dir: &Path, start: u64, cut_bytes: u64, case: &str) -> TestResult {
    let (store, recovery) = open(dir).await?;
    assert_eq!(recovery.log_bytes, start, "{case}");
    assert_eq!(recovery.records, 5, "{case}");
    assert_eq!(recovery.truncated_tail_bytes, cut_bytes, "{case}");
    assert_eq!(
        std::fs::metadata(dir.join("events.log"))?.len(),
        start,
        "{case}: file truncated"
    );
    assert_eq!(tail_of(&recovery, A), Some(events(A, 1..=4).as_slice()), "{case}");
    // sled had indexed event 5 before the damage; it must not serve it now.
    assert_eq!(store.read_events(A, 0, u64::MAX).await?, events(A, 1..=4), "{case}");
    assert_eq!(
        store.get_idempotent("req-1").await?,
        Some(b"answer to req-1".to_vec()),
        "{case}"
    );

    let replacement = Record::Event {
        incident: A,
        version: 5,
        payload: b"written again".to_vec(),
    };
    let end = store.append(vec![replacement, event(A, 6)]).await?;
    store.close().await?;

    let (store, recovery) = open(dir).await?;
    assert_eq!((recovery.log_bytes, recovery.truncated_tail_bytes), (end, 0), "{case}");
    let mut want = events(A, 1..=4);
    want.push((5, b"written again".to_vec()));
    want.extend(events(A, [6]));
    assert_eq!(tail_of(&recovery, A), Some(want.as_slice()), "{case}");
    assert_eq!(store.read_events(A, 0, u64::MAX).await?, want, "{case}");
    store.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_or_damaged_last_record_is_cut_at_every_offset() -> TestResult {
    let base = tempfile::tempdir()?;
    let original = base.path().join("original");
    let (start, end) = log_with_last_record(&original).await?;
    assert!(end > start + 9);

    for cut in start..end {
        let dir = base.path().join(format!("cut-{cut}"));
        copy_dir(&original, &dir)?;
        let log = std::fs::OpenOptions::new().write(true).open(dir.join("events.log"))?;
        log.set_len(cut)?;
        drop(log);
        check_cut_at_last_record(&dir, start, cut - start, &format!("truncated at {cut}")).await?;
        std::fs::remove_dir_all(&dir)?;
    }

    for at in start..end {
        let dir = base.path().join(format!("flip-{at}"));
        copy_dir(&original, &dir)?;
        let path = dir.join("events.log");
        let mut bytes = std::fs::read(&path)?;
        bytes[at as usize] ^= 0xFF;
        std::fs::write(&path, bytes)?;
        check_cut_at_last_record(&dir, start, end - start, &format!("byte {at} flipped")).await?;
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_covers_earlier_events() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, _) = open(dir.path()).await?;
    store.append((1..=3).map(|v| event(A, v)).collect()).await?;
    store.append(vec![event(B, 1), event(B, 2)]).await?;
    let offset5 = store.append(vec![event(A, 4), event(A, 5)]).await?;
    let snap5 = Snapshot {
        version: 5,
        log_offset: offset5,
        state: b"state at 5".to_vec(),
    };
    store.save_snapshot(A, snap5.clone());
    // An older snapshot never replaces a newer one.
    store.save_snapshot(
        A,
        Snapshot {
            version: 3,
            log_offset: 0,
            state: b"old".to_vec(),
        },
    );

    let loaded = store.load_incident(A).await?.ok_or("A is missing")?;
    assert_eq!((loaded.snapshot.as_ref(), loaded.tail.len()), (Some(&snap5), 0));
    for v in 6..=8 {
        store.append(vec![event(A, v)]).await?;
    }
    let loaded = store.load_incident(A).await?.ok_or("A is missing")?;
    assert_eq!(
        (loaded.snapshot.as_ref(), loaded.tail),
        (Some(&snap5), events(A, 6..=8))
    );
    assert_eq!(store.stats().snapshots_saved, 1, "the older snapshot is not written");
    store.close().await?;

    let (store, recovery) = open(dir.path()).await?;
    let a = recovery
        .incidents
        .iter()
        .find(|r| r.incident == A)
        .ok_or("A is missing")?;
    assert_eq!(a.snapshot.as_ref(), Some(&snap5));
    assert_eq!(a.tail, events(A, 6..=8));
    let b = recovery
        .incidents
        .iter()
        .find(|r| r.incident == B)
        .ok_or("B is missing")?;
    assert_eq!(
        (b.snapshot.as_ref(), b.tail.as_slice()),
        (None, events(B, 1..=2).as_slice())
    );
    // The index still has every event for replays.
    assert_eq!(store.read_events(A, 0, 8).await?, events(A, 1..=8));
    store.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_ahead_of_a_damaged_log_is_dropped() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, _) = open(dir.path()).await?;
    let after1 = store.append(vec![event(A, 1), idem("req-1")]).await?;
    store.append(vec![event(A, 2), idem("req-2")]).await?;
    let after3 = store.append(vec![event(A, 3)]).await?;
    store.save_snapshot(
        A,
        Snapshot {
            version: 3,
            log_offset: after3,
            state: b"state at 3".to_vec(),
        },
    );
    store.close().await?;

    // Damage event 2: it and everything after it is cut, so the snapshot
    // describes a future the log no longer has, and sled must forget
    // events 2 and 3 and the request answered with them.
    let path = dir.path().join("events.log");
    let mut bytes = std::fs::read(&path)?;
    bytes[after1 as usize + 20] ^= 0x55;
    std::fs::write(&path, bytes)?;

    let (store, recovery) = open(dir.path()).await?;
    assert_eq!(recovery.log_bytes, after1);
    let a = recovery
        .incidents
        .iter()
        .find(|r| r.incident == A)
        .ok_or("A is missing")?;
    assert_eq!(
        (a.snapshot.as_ref(), a.tail.as_slice()),
        (None, events(A, [1]).as_slice())
    );
    let loaded = store.load_incident(A).await?.ok_or("A is missing")?;
    assert_eq!((loaded.snapshot, loaded.tail), (None, events(A, [1])));
    assert_eq!(store.get_idempotent("req-1").await?, Some(b"answer to req-1".to_vec()));
    assert_eq!(store.get_idempotent("req-2").await?, None);

    // The request can run again, and its new answer sticks.
    store
        .append(vec![
            event(A, 2),
            Record::Idempotency {
                key: "req-2".into(),
                response: b"again".to_vec(),
            },
        ])
        .await?;
    store.close().await?;
    let (store, recovery) = open(dir.path()).await?;
    assert_eq!(tail_of(&recovery, A), Some(events(A, 1..=2).as_slice()));
    assert_eq!(store.get_idempotent("req-2").await?, Some(b"again".to_vec()));
    store.close().await?;
    Ok(())
}

async fn fill(store: &Store) -> Result<u64, StoreError> {
    store.append(vec![event(A, 1), event(A, 2), idem("req-a")]).await?;
    store.append(vec![event(B, 1)]).await?;
    let offset = store.append(vec![event(A, 3), event(B, 2)]).await?;
    store.save_snapshot(
        A,
        Snapshot {
            version: 3,
            log_offset: offset,
            state: b"state".to_vec(),
        },
    );
    store.load_incident(A).await?; // after the snapshot write
    Ok(offset)
}

async fn check_rebuilt(dir: &Path, end: u64) -> TestResult {
    let (store, recovery) = open(dir).await?;
    assert_eq!(recovery.log_bytes, end);
    assert_eq!(recovery.reindexed_records, 1, "the idempotency record");
    // No snapshot survives: every tail starts at version 1.
    assert!(recovery.incidents.iter().all(|r| r.snapshot.is_none()));
    assert_eq!(tail_of(&recovery, A), Some(events(A, 1..=3).as_slice()));
    assert_eq!(tail_of(&recovery, B), Some(events(B, 1..=2).as_slice()));
    assert_eq!(store.read_events(A, 1, 3).await?, events(A, 2..=3));
    assert_eq!(store.get_idempotent("req-a").await?, Some(b"answer to req-a".to_vec()));
    store.close().await?;

    // The rebuilt index was recorded: the next open copies nothing.
    let (store, recovery) = open(dir).await?;
    assert_eq!((recovery.reindexed_records, recovery.index_rebuilt), (0, false));
    store.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_sled_is_rebuilt_from_the_log() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, _) = open(dir.path()).await?;
    let end = fill(&store).await?;
    store.close().await?;

    std::fs::remove_dir_all(dir.path().join("sled"))?;
    check_rebuilt(dir.path(), end).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbled_sled_is_rebuilt_from_the_log() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, _) = open(dir.path()).await?;
    let end = fill(&store).await?;
    store.close().await?;

    // Whatever sled makes of this (refuse to open, or open empty), the data
    // comes back from the log.
    fn garble(dir: &Path) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                garble(&entry.path())?;
            } else {
                let len = entry.metadata()?.len() as usize;
                std::fs::write(entry.path(), vec![0x6B; len.max(64)])?;
            }
        }
        Ok(())
    }
    garble(&dir.path().join("sled"))?;
    let (store, recovery) = open(dir.path()).await?;
    assert!(
        recovery.index_rebuilt || recovery.reindexed_records == 1,
        "{recovery:?}"
    );
    store.close().await?;
    // Remove any state the garbled sled may have left, to check from a known point.
    std::fs::remove_dir_all(dir.path().join("sled"))?;
    check_rebuilt(dir.path(), end).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_store_refuses_calls() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, _) = open(dir.path()).await?;
    store.append(vec![event(A, 1)]).await?;

    // Appends racing with close either land durably or get `Closed`.
    let mut racers = Vec::new();
    for v in 2..=50 {
        let store = store.clone();
        racers.push(tokio::spawn(async move { (v, store.append(vec![event(B, v)]).await) }));
    }
    let (first, second) = tokio::join!(store.close(), store.close());
    first?;
    second?;
    let mut landed = Vec::new();
    for r in racers {
        match r.await? {
            (v, Ok(_)) => landed.push(v),
            (_, Err(StoreError::Closed)) => {}
            (_, Err(e)) => return Err(e.into()),
        }
    }

    assert!(matches!(store.append(vec![event(A, 2)]).await, Err(StoreError::Closed)));
    assert!(matches!(store.read_events(A, 0, 1).await, Err(StoreError::Closed)));
    assert!(matches!(store.get_idempotent("k").await, Err(StoreError::Closed)));
    assert!(matches!(store.load_incident(A).await, Err(StoreError::Closed)));
    store.save_snapshot(
        A,
        Snapshot {
            version: 1,
            log_offset: 0,
            state: Vec::new(),
        },
    );
    store.close().await?;

    let (store, recovery) = open(dir.path()).await?;
    assert_eq!(tail_of(&recovery, A), Some(events(A, [1]).as_slice()));
    let b: Vec<u64> = tail_of(&recovery, B)
        .unwrap_or_default()
        .iter()
        .map(|(v, _)| *v)
        .collect();
    landed.sort_unstable();
    assert_eq!(b, landed);
    store.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_store_per_directory() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, _) = open(dir.path()).await?;
    assert!(matches!(open(dir.path()).await, Err(StoreError::Locked(_))));
    store.close().await?;
    let (store, _) = open(dir.path()).await?;
    store.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_file_is_not_taken_for_a_log() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("events.log"), b"this is not a log file at all")?;
    assert!(matches!(open(dir.path()).await, Err(StoreError::Corrupt(_))));
    assert_eq!(
        std::fs::read(dir.path().join("events.log"))?,
        b"this is not a log file at all"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_idempotency_key_is_refused_before_writing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, recovery) = open(dir.path()).await?;
    let huge = Record::Idempotency {
        key: "k".repeat(70_000),
        response: Vec::new(),
    };
    assert!(matches!(
        store.append(vec![event(A, 1), huge]).await,
        Err(StoreError::TooLarge { .. })
    ));
    assert_eq!(store.stats().bytes, recovery.log_bytes);
    store.close().await?;
    Ok(())
}
