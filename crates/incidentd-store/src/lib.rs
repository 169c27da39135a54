//! The only crate that knows the storage engines.
//!
//! **The durability point** is `events.log`: an append-only log of
//! checksummed records (see `format.rs` for the bytes). One writer thread
//! takes every batch queued since its last sync, writes them with one write,
//! calls `fdatasync` once and then answers them all (group commit). Nothing
//! is acknowledged before the sync that covers it. On open the whole log is
//! read and every record's CRC checked; a torn or damaged tail is cut off
//! (and the cut synced).
//!
//! **sled** (0.34) holds only what can be rebuilt from the log: per-incident
//! state snapshots (with the log offset they cover), an index of every event
//! payload by (incident, version) for watch replays and rehydration, and
//! idempotency records. sled's flush uses `sync_file_range`, which survives a
//! process kill but not a power loss, so it is never the durability point; a
//! sled that cannot be opened is moved aside and rebuilt from the log.
//!
//! **Threads**: sled calls and file syncs block, so they run on the store's
//! own threads, never on tokio workers: `incidentd-log` (writes, syncs),
//! `incidentd-sled` (every sled read and write after open, in arrival
//! order) and `incidentd-sled-flush` (the periodic blocking `Db::flush`;
//! sled's `flush_async` deadlocks under concurrency, sled #1308, and is not
//! used). Async callers wait on a `tokio::sync::oneshot`.
//!
//! Call [`Store::close`] before reopening a directory in the same process:
//! dropping the last handle also stops the threads, but without waiting.

pub mod backup;
mod error;
mod format;
mod index;
mod lock;
pub mod outbox;
pub mod raw;
mod recovery;
mod stats;
mod writer;

#[cfg(test)]
mod tests;

pub use error::StoreError;
pub use outbox::{OutboxLog, OutboxRecovery};
pub use stats::{LatencyHistogram, SYNC_LATENCY_BOUNDS, StoreStats};

use index::{Reply, SledMsg};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, mpsc, oneshot};
use writer::{WriteReq, WriterMsg};

/// An incident id as the store sees it: 16 opaque bytes (a ULID).
pub type IncidentKey = [u8; 16];

/// One record of a durable batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// One domain event of one incident, serialized by the caller.
    Event {
        incident: IncidentKey,
        version: u64,
        payload: Vec<u8>,
    },
    /// The first answer to a mutating request, so a retry returns it (idempotency).
    Idempotency { key: String, response: Vec<u8> },
}

/// Where the store lives and how it behaves.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Holds `events.log`, `sled/` and `LOCK`; created if missing.
    pub dir: PathBuf,
    /// How often sled (snapshots, indexes) is flushed. A lost flush only
    /// costs replay time at the next start.
    pub snapshot_flush_every: Duration,
}

impl StoreConfig {
    /// A config for `dir` with the defaults (sled flushed every second).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            dir: dir.into(),
            snapshot_flush_every: Duration::from_secs(1),
        }
    }
}

/// A saved state of one incident: a cache that shortens replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Version of the last event folded into `state`.
    pub version: u64,
    /// Log offset just after that event (as returned by `append`).
    pub log_offset: u64,
    /// The caller's serialized state.
    pub state: Vec<u8>,
}

/// An incident as the store can rebuild it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredIncident {
    pub incident: IncidentKey,
    /// The latest snapshot, if one was saved (and still matches the log).
    pub snapshot: Option<Snapshot>,
    /// `(version, payload)` of the events after the snapshot (all events
    /// without one), in version order.
    pub tail: Vec<(u64, Vec<u8>)>,
}

/// What `open` found.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// Every incident with a snapshot or an event, by incident key.
    pub incidents: Vec<RecoveredIncident>,
    /// Size of the log after recovery (where the next record goes).
    pub log_bytes: u64,
    /// Intact records in the log.
    pub records: u64,
    /// Bytes cut off the end of the log (a torn or damaged tail).
    pub truncated_tail_bytes: u64,
    /// sled was missing or unreadable and was rebuilt from the log.
    pub index_rebuilt: bool,
    /// Idempotency records copied into sled because sled did not have them
    /// (events are indexed in memory at every open).
    pub reindexed_records: u64,
    pub elapsed: Duration,
}

/// Queued batches before `append` waits (backpressure).
const WRITE_QUEUE: usize = 4096;
/// Queued sled requests (commits to index, snapshots, reads).
const SLED_QUEUE: usize = 4096;

/// Knobs that only tests turn.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tuning {
    /// The writer gathers this many batches before its first write.
    pub hold_first: usize,
}

struct Inner {
    dir: PathBuf,
    writer: mpsc::Sender<WriterMsg>,
    sled: mpsc::Sender<SledMsg>,
    closed: AtomicBool,
    close_result: OnceCell<Result<(), StoreError>>,
    stats: Arc<stats::Counters>,
}

/// Handle to an open store; cheap to clone, shared by every caller.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens or creates the store in `cfg.dir` and recovers it. Blocking:
    /// call it from `spawn_blocking` or before the runtime starts.
    ///
    /// Reads the whole log, checking every record's CRC; cuts a torn or
    /// corrupt tail off (syncing the cut); copies into sled whatever it is
    /// missing (all of it, if sled was unreadable and moved aside); returns,
    /// per incident, its latest snapshot and the log events after it in
    /// version order. Events a snapshot covers are skipped without copying
    /// their payload.
    pub fn open(cfg: StoreConfig) -> Result<(Store, Recovery), StoreError> {
        Self::open_tuned(cfg, Tuning::default())
    }

    pub(crate) fn open_tuned(cfg: StoreConfig, tuning: Tuning) -> Result<(Store, Recovery), StoreError> {
        let started = Instant::now();
        std::fs::create_dir_all(&cfg.dir).map_err(|e| StoreError::io("create directory", &cfg.dir, e))?;
        let lock = lock::DirLock::acquire(&cfg.dir)?;
        let recovery::Recovered {
            file,
            index,
            offsets,
            recovery,
        } = recovery::recover(&cfg.dir, started)?;
        let end = recovery.log_bytes;

        let stats = Arc::new(stats::Counters::new(end));
        let shared = Arc::new(index::Shared {
            stats: stats.clone(),
            indexed_upto: AtomicU64::new(end),
        });
        let (sled_tx, sled_rx) = mpsc::channel(SLED_QUEUE);
        let (writer_tx, writer_rx) = mpsc::channel(WRITE_QUEUE);
        let flush_every = cfg.snapshot_flush_every;
        let log_path = cfg.dir.join("events.log");
        let reader = index::LogReader {
            file: file
                .try_clone()
                .map_err(|e| StoreError::io("open a reader of", &log_path, e))?,
            path: log_path,
        };
        std::thread::Builder::new()
            .name("incidentd-sled".into())
            .spawn(move || index::run(index, offsets, reader, sled_rx, shared, flush_every, lock))
            .map_err(|e| StoreError::io("start the sled thread for", &cfg.dir, e))?;
        let writer = writer::Writer {
            file,
            path: cfg.dir.join("events.log"),
            offset: end,
            rx: writer_rx,
            sled: sled_tx.clone(),
            stats: stats.clone(),
            hold_first: tuning.hold_first,
        };
        // On failure the sled thread sees its senders go and shuts down.
        std::thread::Builder::new()
            .name("incidentd-log".into())
            .spawn(move || writer.run())
            .map_err(|e| StoreError::io("start the log writer for", &cfg.dir, e))?;

        tracing::info!(
            dir = %cfg.dir.display(),
            log_bytes = end,
            records = recovery.records,
            incidents = recovery.incidents.len(),
            truncated_tail_bytes = recovery.truncated_tail_bytes,
            index_rebuilt = recovery.index_rebuilt,
            elapsed_ms = recovery.elapsed.as_millis() as u64,
            "store recovered"
        );
        let inner = Inner {
            dir: cfg.dir,
            writer: writer_tx,
            sled: sled_tx,
            closed: AtomicBool::new(false),
            close_result: OnceCell::new(),
            stats,
        };
        Ok((Store { inner: Arc::new(inner) }, recovery))
    }

    /// Durably appends one batch (all records of one mutating call): resolves
    /// after the `fdatasync` that covers it, with the log offset just after
    /// the batch. Reads sent after it resolves see its records. Concurrent appends
    /// share syncs (group commit). Waits while the writer queue is full.
    pub async fn append(&self, batch: Vec<Record>) -> Result<u64, StoreError> {
        if self.is_closed() {
            return Err(StoreError::Closed);
        }
        let mut bytes = 0;
        for rec in &batch {
            format::validate(rec)?;
            bytes += format::encoded_len(rec);
        }
        let (reply, answer) = oneshot::channel();
        let msg = WriterMsg::Append(WriteReq {
            records: batch,
            bytes,
            reply,
        });
        self.inner.writer.send(msg).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues a snapshot write and returns at once. Snapshots are caches:
    /// one is dropped (and counted in `stats().snapshots_dropped`) if the
    /// sled queue is full, and an older version never replaces a newer one.
    pub fn save_snapshot(&self, incident: IncidentKey, snapshot: Snapshot) {
        if self.is_closed() {
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(_)) =
            self.inner.sled.try_send(SledMsg::Snapshot { incident, snapshot })
        {
            self.inner.stats.snapshots_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An incident's latest snapshot and the events after it (to rehydrate a
    /// stopped actor); `None` if the store knows nothing of it. Sees every
    /// earlier `save_snapshot` and every answered `append`.
    pub async fn load_incident(&self, incident: IncidentKey) -> Result<Option<RecoveredIncident>, StoreError> {
        self.ask(|reply| SledMsg::Load { incident, reply }).await
    }

    /// Payloads of one incident's events with
    /// `from_exclusive < version <= to_inclusive`, in version order.
    pub async fn read_events(
        &self,
        incident: IncidentKey,
        from_exclusive: u64,
        to_inclusive: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.ask(|reply| SledMsg::ReadEvents {
            incident,
            from_exclusive,
            to_inclusive,
            reply,
        })
        .await
    }

    /// The response stored for an idempotency key, if any.
    pub async fn get_idempotent(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_owned();
        self.ask(|reply| SledMsg::GetIdempotent { key, reply }).await
    }

    /// Graceful shutdown: refuses new calls, finishes queued appends, flushes
    /// sled, closes it and stops the threads. Idempotent: later (and
    /// concurrent) calls wait for the first and return its result.
    pub async fn close(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        let result = inner
            .close_result
            .get_or_init(|| async {
                inner.closed.store(true, Ordering::Release);
                let (reply, done) = oneshot::channel();
                if inner.writer.send(WriterMsg::Shutdown(reply)).await.is_err() {
                    return Ok(()); // the threads are gone already
                }
                done.await
                    .unwrap_or_else(|_| Err(StoreError::Failed("the store's threads ended before closing it".into())))
            })
            .await;
        result.clone()
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Counters: syncs, appends, bytes, group sizes, sync latency histogram.
    pub fn stats(&self) -> StoreStats {
        self.inner.stats.read()
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> SledMsg) -> Result<T, StoreError> {
        if self.is_closed() {
            return Err(StoreError::Closed);
        }
        let (reply, answer) = oneshot::channel();
        self.inner
            .sled
            .send(make(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}
