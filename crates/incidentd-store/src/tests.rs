//! Tests that need the crate's test hooks (the rest are in `tests/store.rs`).

use crate::{Record, Store, StoreConfig, StoreError, Tuning};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const TASKS: u8 = 64;
const PER_TASK: u64 = 100;

fn payload(task: u8, version: u64) -> Vec<u8> {
    format!("task {task} event {version}").into_bytes()
}

/// 64 tasks × 100 appends: every append is recovered, and concurrent appends
/// share syncs. The writer is held until all 64 first appends are queued, so
/// at least that first group is shared whatever the disk's speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_shares_syncs_and_loses_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = StoreConfig::new(dir.path());
    let open_cfg = cfg.clone();
    let (store, _) = tokio::task::spawn_blocking(move || {
        Store::open_tuned(
            open_cfg,
            Tuning {
                hold_first: TASKS.into(),
            },
        )
    })
    .await??;

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut last = 0;
            for version in 1..=PER_TASK {
                let rec = Record::Event {
                    incident: [task; 16],
                    version,
                    payload: payload(task, version),
                };
                let offset = store.append(vec![rec]).await?;
                assert!(offset > last, "offsets grow per caller");
                last = offset;
            }
            Ok::<_, StoreError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }

    let appends = u64::from(TASKS) * PER_TASK;
    let stats = store.stats();
    assert_eq!(stats.appends, appends);
    assert_eq!(stats.records, appends);
    assert!(
        stats.syncs <= appends - u64::from(TASKS) + 1,
        "{} syncs for {appends} appends",
        stats.syncs
    );
    assert_eq!(stats.sync_latency.count, stats.syncs);
    assert!(stats.sync_seconds_total > 0.0);
    store.close().await?;

    let (store, recovery) = tokio::task::spawn_blocking(move || Store::open(cfg)).await??;
    assert_eq!(recovery.records, appends);
    assert_eq!(recovery.truncated_tail_bytes, 0);
    assert_eq!(recovery.incidents.len(), usize::from(TASKS));
    for (task, inc) in (0..TASKS).zip(&recovery.incidents) {
        assert_eq!(inc.incident, [task; 16]);
        let want: Vec<(u64, Vec<u8>)> = (1..=PER_TASK).map(|v| (v, payload(task, v))).collect();
        assert_eq!(inc.tail, want);
    }
    store.close().await?;
    Ok(())
}

/// sled's flush is not a durability point: if sled lost writes below its
/// watermark (as after a power loss), open notices and re-indexes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_that_lost_writes_below_its_watermark_is_reindexed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = StoreConfig::new(dir.path());
    let open_cfg = cfg.clone();
    let (store, _) = tokio::task::spawn_blocking(move || Store::open(open_cfg)).await??;
    let incident = [9; 16];
    for version in 1..=3 {
        let rec = Record::Event {
            incident,
            version,
            payload: payload(9, version),
        };
        store
            .append(vec![
                rec,
                Record::Idempotency {
                    key: format!("req-{version}"),
                    response: vec![1],
                },
            ])
            .await?;
    }
    store
        .append(vec![Record::Event {
            incident,
            version: 4,
            payload: payload(9, 4),
        }])
        .await?;
    store.close().await?;

    // Lose the last idempotency record and an earlier one behind sled's back.
    {
        let index = crate::index::Index::open(&dir.path().join("sled"))?;
        index.forget_request_for_test("req-3")?;
        index.forget_request_for_test("req-1")?;
        index.flush()?;
    }

    let (store, recovery) = tokio::task::spawn_blocking(move || Store::open(cfg)).await??;
    assert_eq!(recovery.reindexed_records, 3);
    let want: Vec<(u64, Vec<u8>)> = (1..=4).map(|v| (v, payload(9, v))).collect();
    assert_eq!(store.read_events(incident, 0, u64::MAX).await?, want);
    for key in ["req-1", "req-2", "req-3"] {
        assert_eq!(store.get_idempotent(key).await?, Some(vec![1]), "{key}");
    }
    store.close().await?;
    Ok(())
}

/// An index written in an older layout (format 2: an `events` tree) is
/// dropped and rebuilt from the log at open: reads return the log's payloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_of_an_older_layout_is_rebuilt_from_the_log() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = StoreConfig::new(dir.path());
    let open_cfg = cfg.clone();
    let (store, _) = tokio::task::spawn_blocking(move || Store::open(open_cfg)).await??;
    let incident = [5; 16];
    for version in 1..=3 {
        let rec = Record::Event {
            incident,
            version,
            payload: payload(5, version),
        };
        store.append(vec![rec]).await?;
    }
    let idem = Record::Idempotency {
        key: "req".into(),
        response: vec![2],
    };
    store.append(vec![idem]).await?;
    store.close().await?;

    let sled_dir = dir.path().join("sled");
    {
        let index = crate::index::Index::open(&sled_dir)?;
        index.make_old_layout_for_test(&incident)?;
        assert!(index.has_old_layout_for_test());
        index.flush()?;
    }

    let (store, recovery) = tokio::task::spawn_blocking(move || Store::open(cfg)).await??;
    assert_eq!(recovery.reindexed_records, 1, "the watermark was reset");
    let want: Vec<(u64, Vec<u8>)> = (1..=3).map(|v| (v, payload(5, v))).collect();
    assert_eq!(store.read_events(incident, 0, u64::MAX).await?, want);
    assert_eq!(store.read_events(incident, 1, 2).await?, want[1..2].to_vec());
    assert_eq!(store.get_idempotent("req").await?, Some(vec![2]));
    store.close().await?;
    assert!(!crate::index::Index::open(&sled_dir)?.has_old_layout_for_test());
    Ok(())
}
