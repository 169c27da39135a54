//! The indexes: everything here can be rebuilt from the log.
//!
//! In memory, [`EventOffsets`]: (incident, version) → log offset of the
//! event's record (payloads are read back from the log). The recovery scan
//! reads every record anyway, so it builds this map for free; keeping it
//! out of sled saves a sled insert per event (about a fifth of the CPU of a
//! durable write when it was a sled tree) at 16 bytes of memory per event.
//!
//! sled trees: `snapshots` (incident → snapshot), `requests` (idempotency
//! key → log offset of the record u64 LE, response) and `meta` (the
//! watermark: every idempotency record before that offset is in `requests`).
//!
//! All index calls after `open` run on one thread ([`run`]), which also
//! answers the writer's commits, so an append is readable once answered and a
//! `load_incident` sees every earlier `save_snapshot`. A second thread only
//! calls the blocking `Db::flush` periodically (never `flush_async`: sled
//! #1308) and then records the watermark that flush made durable.

use crate::format;
use crate::lock::DirLock;
use crate::stats::Counters;
use crate::{IncidentKey, Record, RecoveredIncident, Snapshot, StoreError};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

const WATERMARK: &[u8] = b"indexed_upto";
/// Layout of the trees; an index of another layout is rebuilt from the log.
const INDEX_FORMAT_KEY: &[u8] = b"index_format";
/// 3: events indexed in memory, no `events` tree.
const INDEX_FORMAT: u64 = 3;
const SNAPSHOT_FORMAT: u8 = 1;
/// Where index format 2 kept the event index.
const OLD_EVENTS_TREE: &[u8] = b"events";

pub(crate) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// One durable batch, to index (its caller was answered by the writer).
pub(crate) struct Committed {
    pub records: Vec<Record>,
    /// Log offset of the batch's first record.
    pub start: u64,
}

/// Reads event records back from the log by offset (positioned reads on a
/// handle of its own, so they never disturb the writer).
pub(crate) struct LogReader {
    pub file: std::fs::File,
    pub path: std::path::PathBuf,
}

impl LogReader {
    /// The payload of the event record at `at`, checked against its CRC and
    /// against the incident and version the index filed it under.
    fn event_at(&self, at: u64, incident: &IncidentKey, version: u64) -> Result<Vec<u8>, StoreError> {
        use std::os::unix::fs::FileExt;
        let io = |op| move |e| StoreError::io(op, &self.path, e);
        let mut raw = [0u8; format::RECORD_HEADER_LEN];
        self.file.read_exact_at(&mut raw, at).map_err(io("read"))?;
        let header = format::RecordHeader::new(raw);
        let corrupt = |why: &str| StoreError::Corrupt(format!("{} at offset {at}: {why}", self.path.display()));
        if !header.plausible() {
            return Err(corrupt("the index points at no record"));
        }
        let mut body = vec![0u8; header.body_len()];
        self.file
            .read_exact_at(&mut body, at + format::RECORD_HEADER_LEN as u64)
            .map_err(io("read"))?;
        if !header.matches(&body) {
            return Err(corrupt("checksum mismatch"));
        }
        match format::event_head(&body) {
            Some((inc, v)) if header.kind() == format::KIND_EVENT && inc == *incident && v == version => {
                body.drain(..format::EVENT_FIXED);
                Ok(body)
            }
            _ => Err(corrupt("the index points at another record")),
        }
    }
}

pub(crate) enum SledMsg {
    /// Batches that are in the log and synced, in log order; `end` is the log
    /// offset after the last of them.
    Commit {
        batches: Vec<Committed>,
        end: u64,
    },
    Snapshot {
        incident: IncidentKey,
        snapshot: Snapshot,
    },
    Load {
        incident: IncidentKey,
        reply: Reply<Option<RecoveredIncident>>,
    },
    ReadEvents {
        incident: IncidentKey,
        from_exclusive: u64,
        to_inclusive: u64,
        reply: Reply<Vec<(u64, Vec<u8>)>>,
    },
    GetIdempotent {
        key: String,
        reply: Reply<Option<Vec<u8>>>,
    },
    /// Sent by the writer after its last commit.
    Shutdown(Option<Reply<()>>),
}

/// (incident, version) → log offset of the event's record, for every event
/// in the log. Per incident, `(version, offset)` pairs in version order; a
/// version written again (reused after a cut tail) points at its latest record.
#[derive(Default)]
pub(crate) struct EventOffsets {
    by_incident: HashMap<IncidentKey, Vec<(u64, u64)>>,
}

impl EventOffsets {
    pub(crate) fn put(&mut self, incident: &IncidentKey, version: u64, at: u64) {
        let list = self.by_incident.entry(*incident).or_default();
        match list.last() {
            Some(&(last, _)) if last >= version => match list.binary_search_by_key(&version, |e| e.0) {
                Ok(i) => list[i].1 = at,
                Err(i) => list.insert(i, (version, at)),
            },
            _ => list.push((version, at)),
        }
    }

    /// `(version, offset)` of the incident's events in `first..=last`.
    pub(crate) fn range(&self, incident: &IncidentKey, first: u64, last: u64) -> &[(u64, u64)] {
        let Some(list) = self.by_incident.get(incident) else {
            return &[];
        };
        let lo = list.partition_point(|e| e.0 < first);
        let hi = list.partition_point(|e| e.0 <= last);
        list.get(lo..hi.max(lo)).unwrap_or(&[])
    }
}

fn encode_snapshot(s: &Snapshot) -> Vec<u8> {
    let mut out = Vec::with_capacity(17 + s.state.len());
    out.push(SNAPSHOT_FORMAT);
    out.extend_from_slice(&s.version.to_le_bytes());
    out.extend_from_slice(&s.log_offset.to_le_bytes());
    out.extend_from_slice(&s.state);
    out
}

fn decode_snapshot(b: &[u8]) -> Option<Snapshot> {
    if *b.first()? != SNAPSHOT_FORMAT {
        return None;
    }
    let version = u64::from_le_bytes(b.get(1..9)?.try_into().ok()?);
    let log_offset = u64::from_le_bytes(b.get(9..17)?.try_into().ok()?);
    Some(Snapshot {
        version,
        log_offset,
        state: b[17..].to_vec(),
    })
}

fn request_value(at: u64, response: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + response.len());
    v.extend_from_slice(&at.to_le_bytes());
    v.extend_from_slice(response);
    v
}

/// (log offset of the record, response)
fn split_request_value(v: &[u8]) -> Option<(u64, &[u8])> {
    let at = u64::from_le_bytes(v.get(..8)?.try_into().ok()?);
    Some((at, &v[8..]))
}

#[derive(Clone)]
pub(crate) struct Index {
    db: sled::Db,
    snapshots: sled::Tree,
    requests: sled::Tree,
    meta: sled::Tree,
}

impl Index {
    /// Opens the sled database. sled may panic on some corrupt files; that
    /// is reported as an error like any other, so the caller can rebuild.
    pub(crate) fn open(path: &Path) -> Result<Index, sled::Error> {
        let path = path.to_path_buf();
        let opened = std::panic::catch_unwind(move || -> Result<Index, sled::Error> {
            // No background flusher of sled's own: `flusher` owns flushing.
            let db = sled::Config::new().path(path).flush_every_ms(None).open()?;
            Ok(Index {
                snapshots: db.open_tree("snapshots")?,
                requests: db.open_tree("requests")?,
                meta: db.open_tree("meta")?,
                db,
            })
        });
        opened.unwrap_or_else(|_| Err(sled::Error::ReportableBug("sled panicked while opening".into())))
    }

    pub(crate) fn watermark(&self) -> Result<u64, StoreError> {
        let v = self.meta.get(WATERMARK).map_err(StoreError::sled("read watermark"))?;
        Ok(v.and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_le_bytes))
    }

    pub(crate) fn set_watermark(&self, offset: u64) -> Result<(), StoreError> {
        self.meta
            .insert(WATERMARK, &offset.to_le_bytes())
            .map_err(StoreError::sled("write watermark"))?;
        Ok(())
    }

    /// Drops an index written in another layout (format 2 kept events in a
    /// sled tree) and resets the watermark, so recovery rebuilds it from the log.
    pub(crate) fn ensure_format(&self) -> Result<(), StoreError> {
        let v = self
            .meta
            .get(INDEX_FORMAT_KEY)
            .map_err(StoreError::sled("read index format"))?;
        let format = v
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_le_bytes);
        if format == Some(INDEX_FORMAT) {
            return Ok(());
        }
        if format.is_some() {
            tracing::info!(?format, "the sled index has another layout; rebuilding it from the log");
        }
        self.db
            .drop_tree(OLD_EVENTS_TREE)
            .map_err(StoreError::sled("drop the old events tree"))?;
        self.set_watermark(0)?;
        self.meta
            .insert(INDEX_FORMAT_KEY, &INDEX_FORMAT.to_le_bytes())
            .map_err(StoreError::sled("write index format"))?;
        Ok(())
    }

    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(StoreError::sled("flush"))
    }

    /// Indexes committed batches (durable in the log): events in `offsets`,
    /// idempotency records in sled.
    pub(crate) fn apply(&self, offsets: &mut EventOffsets, batches: &[Committed]) -> Result<(), StoreError> {
        let mut requests = sled::Batch::default();
        let mut any_request = false;
        for batch in batches {
            let mut at = batch.start;
            for rec in &batch.records {
                match rec {
                    Record::Event { incident, version, .. } => offsets.put(incident, *version, at),
                    Record::Idempotency { key, response } => {
                        requests.insert(key.as_bytes(), request_value(at, response));
                        any_request = true;
                    }
                }
                at += format::encoded_len(rec) as u64;
            }
        }
        if any_request {
            self.requests
                .apply_batch(requests)
                .map_err(StoreError::sled("index requests"))?;
        }
        Ok(())
    }

    /// Indexes the idempotency record that starts at log offset `at`.
    pub(crate) fn put_request(&self, key: &str, response: &[u8], at: u64) -> Result<(), StoreError> {
        self.requests
            .insert(key.as_bytes(), request_value(at, response))
            .map_err(StoreError::sled("index request"))?;
        Ok(())
    }

    pub(crate) fn has_request(&self, key: &str) -> Result<bool, StoreError> {
        self.requests
            .contains_key(key.as_bytes())
            .map_err(StoreError::sled("read request"))
    }

    /// Writes what format 2 had: an `events` tree, format key 2.
    #[cfg(test)]
    pub(crate) fn make_old_layout_for_test(&self, incident: &IncidentKey) -> Result<(), StoreError> {
        self.meta
            .insert(INDEX_FORMAT_KEY, &2u64.to_le_bytes())
            .map_err(StoreError::sled("write index format"))?;
        let events = self
            .db
            .open_tree(OLD_EVENTS_TREE)
            .map_err(StoreError::sled("open events"))?;
        for version in 1..=3u64 {
            let mut k = incident.to_vec();
            k.extend_from_slice(&version.to_be_bytes());
            events
                .insert(k, &7u64.to_le_bytes())
                .map_err(StoreError::sled("index event"))?;
        }
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn has_old_layout_for_test(&self) -> bool {
        self.db.tree_names().iter().any(|n| n.as_ref() == OLD_EVENTS_TREE)
    }

    #[cfg(test)]
    pub(crate) fn forget_request_for_test(&self, key: &str) -> Result<(), StoreError> {
        self.requests
            .remove(key.as_bytes())
            .map_err(StoreError::sled("remove request"))?;
        Ok(())
    }

    /// Removes the idempotency records that start at or after log offset
    /// `end`. Reads the whole tree: only for a log that lost synced records.
    pub(crate) fn prune_requests_from(&self, end: u64) -> Result<u64, StoreError> {
        let mut removed = 0;
        let mut batch = sled::Batch::default();
        for kv in self.requests.iter() {
            let (key, value) = kv.map_err(StoreError::sled("scan requests"))?;
            if split_request_value(&value).is_none_or(|(at, _)| at >= end) {
                batch.remove(key);
                removed += 1;
            }
        }
        self.requests
            .apply_batch(batch)
            .map_err(StoreError::sled("prune requests"))?;
        Ok(removed)
    }

    pub(crate) fn snapshot(&self, incident: &IncidentKey) -> Result<Option<Snapshot>, StoreError> {
        let v = self
            .snapshots
            .get(incident)
            .map_err(StoreError::sled("read snapshot"))?;
        Ok(v.and_then(|v| decode_snapshot(&v)))
    }

    /// Stores `snapshot` unless a newer one is already there.
    pub(crate) fn put_snapshot(&self, incident: &IncidentKey, snapshot: &Snapshot) -> Result<bool, StoreError> {
        if self
            .snapshot(incident)?
            .is_some_and(|old| old.version > snapshot.version)
        {
            return Ok(false);
        }
        self.snapshots
            .insert(incident, encode_snapshot(snapshot))
            .map_err(StoreError::sled("write snapshot"))?;
        Ok(true)
    }

    pub(crate) fn remove_snapshot(&self, incident: &IncidentKey) -> Result<(), StoreError> {
        self.snapshots
            .remove(incident)
            .map_err(StoreError::sled("remove snapshot"))?;
        Ok(())
    }

    /// Every readable snapshot; unreadable ones are removed (they are caches).
    pub(crate) fn all_snapshots(&self) -> Result<HashMap<IncidentKey, Snapshot>, StoreError> {
        let mut out = HashMap::new();
        let mut bad = Vec::new();
        for kv in self.snapshots.iter() {
            let (k, v) = kv.map_err(StoreError::sled("scan snapshots"))?;
            match (<IncidentKey>::try_from(k.as_ref()), decode_snapshot(&v)) {
                (Ok(key), Some(snap)) => {
                    out.insert(key, snap);
                }
                _ => bad.push(k),
            }
        }
        for k in bad {
            tracing::warn!("dropping an unreadable snapshot");
            self.snapshots.remove(k).map_err(StoreError::sled("remove snapshot"))?;
        }
        Ok(out)
    }

    pub(crate) fn events(
        &self,
        offsets: &EventOffsets,
        log: &LogReader,
        incident: &IncidentKey,
        from_exclusive: u64,
        to_inclusive: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let Some(first) = from_exclusive.checked_add(1) else {
            return Ok(Vec::new());
        };
        offsets
            .range(incident, first, to_inclusive)
            .iter()
            .map(|&(version, at)| Ok((version, log.event_at(at, incident, version)?)))
            .collect()
    }

    pub(crate) fn load(
        &self,
        offsets: &EventOffsets,
        log: &LogReader,
        incident: &IncidentKey,
    ) -> Result<Option<RecoveredIncident>, StoreError> {
        let snapshot = self.snapshot(incident)?;
        let after = snapshot.as_ref().map_or(0, |s| s.version);
        let tail = self.events(offsets, log, incident, after, u64::MAX)?;
        if snapshot.is_none() && tail.is_empty() {
            return Ok(None);
        }
        Ok(Some(RecoveredIncident {
            incident: *incident,
            snapshot,
            tail,
        }))
    }

    pub(crate) fn request(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let v = self
            .requests
            .get(key.as_bytes())
            .map_err(StoreError::sled("read request"))?;
        Ok(v.as_deref()
            .and_then(split_request_value)
            .map(|(_, response)| response.to_vec()))
    }
}

/// What the sled thread shares with the rest of the store.
pub(crate) struct Shared {
    pub stats: Arc<Counters>,
    /// Every record before this log offset is in the trees (in memory).
    pub indexed_upto: AtomicU64,
}

/// The sled thread: serves requests in arrival order until `Shutdown`, or
/// until every sender is gone; then flushes, closes sled and answers.
pub(crate) fn run(
    index: Index,
    mut offsets: EventOffsets,
    log: LogReader,
    mut rx: mpsc::Receiver<SledMsg>,
    shared: Arc<Shared>,
    flush_every: Duration,
    lock: DirLock,
) {
    let (stop_flusher, stop_rx) = std::sync::mpsc::channel::<()>();
    let flusher = {
        let index = index.clone();
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("incidentd-sled-flush".into())
            .spawn(move || flusher(index, shared, flush_every, stop_rx))
    };
    let flusher = match flusher {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the sled flusher; sled is flushed only at shutdown");
            None
        }
    };
    // After an index failure the watermark stays put, so the next open re-indexes.
    let mut index_broken = false;
    let closer = loop {
        let Some(msg) = rx.blocking_recv() else { break None };
        match msg {
            SledMsg::Commit { batches, end } => {
                match index.apply(&mut offsets, &batches) {
                    Ok(()) if !index_broken => shared.indexed_upto.store(end, Ordering::Release),
                    Ok(()) => {}
                    Err(e) => {
                        // The log has the records: answer success; the index catches up at the next open.
                        index_broken = true;
                        shared.stats.index_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(error = %e, "sled index update failed; it is rebuilt from the log at the next start");
                    }
                }
            }
            SledMsg::Snapshot { incident, snapshot } => match index.put_snapshot(&incident, &snapshot) {
                Ok(true) => {
                    shared.stats.snapshots_saved.fetch_add(1, Ordering::Relaxed);
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "snapshot write failed; replay will be longer"),
            },
            SledMsg::Load { incident, reply } => {
                let _ = reply.send(usable(index_broken).and_then(|()| index.load(&offsets, &log, &incident)));
            }
            SledMsg::ReadEvents {
                incident,
                from_exclusive,
                to_inclusive,
                reply,
            } => {
                let read = usable(index_broken)
                    .and_then(|()| index.events(&offsets, &log, &incident, from_exclusive, to_inclusive));
                let _ = reply.send(read);
            }
            SledMsg::GetIdempotent { key, reply } => {
                let _ = reply.send(usable(index_broken).and_then(|()| index.request(&key)));
            }
            SledMsg::Shutdown(reply) => break reply,
        }
    };
    // Whatever is still queued was sent after shutdown: dropping it answers
    // `Closed`. Close first and drain until the late senders are done too
    // (a send that reserved its slot before the close still delivers).
    rx.close();
    while rx.blocking_recv().is_some() {}
    drop(rx);
    drop(stop_flusher);
    let result = match flusher.map(|h| h.join()) {
        Some(Ok(r)) => r,
        Some(Err(_)) => Err(StoreError::Failed("sled flusher panicked".into())),
        None => final_flush(&index, &shared),
    };
    if let Err(e) = &result {
        tracing::error!(error = %e, "final sled flush failed; the index is rebuilt from the log at the next start");
    }
    // Close sled and release the directory before answering, so the caller
    // may reopen at once.
    drop(index);
    drop(lock);
    if let Some(reply) = closer {
        let _ = reply.send(result);
    }
}

/// Reads are refused once the index fell behind the log: a stale answer
/// could rehydrate an incident without its latest events, or run a request twice.
fn usable(index_broken: bool) -> Result<(), StoreError> {
    if index_broken {
        return Err(StoreError::Failed(
            "the sled index fell behind the log after an error; restart to rebuild it".into(),
        ));
    }
    Ok(())
}

/// Flushes sled every `every`, then records the watermark the flush covered
/// (it becomes durable with the next flush). Returns the final flush's result.
fn flusher(
    index: Index,
    shared: Arc<Shared>,
    every: Duration,
    stop: std::sync::mpsc::Receiver<()>,
) -> Result<(), StoreError> {
    let every = every.max(Duration::from_millis(1));
    let mut recorded = shared.indexed_upto.load(Ordering::Acquire);
    loop {
        match stop.recv_timeout(every) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            // Disconnected (or a message): shut down.
            _ => return final_flush(&index, &shared),
        }
        let upto = shared.indexed_upto.load(Ordering::Acquire);
        if let Err(e) = index.flush() {
            tracing::warn!(error = %e, "sled flush failed");
            continue;
        }
        shared.stats.sled_flushes.fetch_add(1, Ordering::Relaxed);
        if upto != recorded {
            match index.set_watermark(upto) {
                Ok(()) => recorded = upto,
                Err(e) => tracing::warn!(error = %e, "cannot record the sled watermark"),
            }
        }
    }
}

fn final_flush(index: &Index, shared: &Shared) -> Result<(), StoreError> {
    let upto = shared.indexed_upto.load(Ordering::Acquire);
    index.flush()?;
    index.set_watermark(upto)?;
    index.flush()
}

#[cfg(test)]
mod offsets_tests {
    use super::EventOffsets;

    #[test]
    fn offsets_keep_version_order_and_the_latest_record_of_a_version() {
        let mut o = EventOffsets::default();
        let a = [1; 16];
        for v in 1..=5 {
            o.put(&a, v, v * 100);
        }
        o.put(&a, 3, 999); // written again after a cut tail
        o.put(&a, 9, 900); // a gap stays a gap
        o.put(&a, 7, 700); // out of order lands in order
        assert_eq!(
            o.range(&a, 1, u64::MAX),
            &[(1, 100), (2, 200), (3, 999), (4, 400), (5, 500), (7, 700), (9, 900)]
        );
        assert_eq!(o.range(&a, 4, 7), &[(4, 400), (5, 500), (7, 700)]);
        assert_eq!(o.range(&a, 6, 6), &[]);
        assert_eq!(o.range(&a, 8, 2), &[]);
        assert_eq!(o.range(&[2; 16], 1, u64::MAX), &[]);
    }
}
