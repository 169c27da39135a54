//! `outbox.log`: the notifier's delivery state, durable on its own log.
//!
//! Why a second log and not records in `events.log`: notifications are
//! derived deterministically from the logged events (the event log stays
//! the one source of truth), so the outbox only has to remember how far it
//! derived and what happened to each delivery. Losing its unsynced tail
//! costs a re-derivation and, at worst, a repeated delivery with the same
//! idempotency key: at-least-once, never at-most-once. Keeping it apart
//! keeps delivery bookkeeping (many small records per event, rewritten on
//! compaction) out of the incident log and off the incident actors' group
//! commits.
//!
//! Format: records framed as `len: u32 LE, crc32: u32 LE, payload`. The
//! payload is opaque here (the notifier's JSON). On open the intact prefix is
//! read, a torn tail cut off, and the caller may compact: its records are
//! written to a temporary file, synced, renamed over the log and the
//! directory synced. One thread writes: it drains everything queued, writes
//! once, calls `fdatasync` once and answers every waiter (group commit).
//! Appends are queued in call order and never block the caller.

use crate::StoreError;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The notifier's outbox file in the store's directory.
pub const FILE: &str = "outbox.log";
/// Largest outbox record.
pub const MAX_OUTBOX_RECORD: usize = 16 << 20;

/// What `open` found in `outbox.log`.
#[derive(Debug, Default)]
pub struct OutboxRecovery {
    /// Payloads of the intact records, in log order (before compaction).
    pub records: Vec<Vec<u8>>,
    /// The file existed (false: a new store, or one written before outboxes).
    pub existed: bool,
    /// Bytes of a torn or damaged tail that were cut off.
    pub truncated_tail_bytes: u64,
}

/// How the writer spaces its `fdatasync`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linger {
    /// Gathers appends for this long after the first one, then writes and
    /// syncs them together (zero: at once). The thread wakes once per
    /// window however many appends come, but a crash in the window, even a
    /// killed process, loses what was gathered (the audit log).
    Gather(Duration),
    /// Writes every append at once, so a killed process loses nothing,
    /// and syncs at most this long after the first unsynced write (only
    /// power loss can lose that window; the notifier's outbox).
    SyncWithin(Duration),
}

enum Msg {
    Append(Vec<Vec<u8>>, oneshot::Sender<Result<(), StoreError>>),
    Stop,
}

/// Handle to the outbox log's writer thread; cheap to clone.
#[derive(Clone)]
pub struct OutboxLog {
    tx: mpsc::Sender<Msg>,
}

impl std::fmt::Debug for OutboxLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxLog").finish_non_exhaustive()
    }
}

impl OutboxLog {
    /// Opens (or creates) `dir/outbox.log`, reads its intact records, lets
    /// `compact` replace them (the result is written and synced before this
    /// returns), and starts the writer thread. Blocking: call it from
    /// `spawn_blocking` or before the runtime. The store's `LOCK` on `dir`
    /// keeps other processes away; open the `Store` first.
    pub fn open(
        dir: &Path,
        compact: impl FnOnce(&[Vec<u8>]) -> Vec<Vec<u8>>,
    ) -> Result<(OutboxLog, OutboxRecovery), StoreError> {
        Self::open_named(dir, FILE, compact)
    }

    /// Like `open`, for another small record log of the store's directory
    /// (e.g. `drills.log`, the game-day calendar).
    pub fn open_named(
        dir: &Path,
        file: &str,
        compact: impl FnOnce(&[Vec<u8>]) -> Vec<Vec<u8>>,
    ) -> Result<(OutboxLog, OutboxRecovery), StoreError> {
        Self::open_lingering(dir, file, compact, Linger::Gather(Duration::ZERO))
    }

    /// Like `open_named`, with at most one `fdatasync` per `linger` window
    /// (for logs nobody waits on, so they do not compete with the event
    /// log's syncs); see [`Linger`].
    pub fn open_lingering(
        dir: &Path,
        file: &str,
        compact: impl FnOnce(&[Vec<u8>]) -> Vec<Vec<u8>>,
        linger: Linger,
    ) -> Result<(OutboxLog, OutboxRecovery), StoreError> {
        let path = dir.join(file);
        let existed = path.exists();
        let mut recovery = OutboxRecovery {
            existed,
            ..Default::default()
        };
        if existed {
            let mut bytes = Vec::new();
            File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(|e| StoreError::io("read", &path, e))?;
            let (records, intact) = decode_all(&bytes);
            recovery.records = records;
            recovery.truncated_tail_bytes = (bytes.len() - intact) as u64;
        }
        let compacted = compact(&recovery.records);
        rewrite(dir, &path, &compacted)?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| StoreError::io("open", &path, e))?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("incidentd-outbox".into())
            .spawn(move || run(file, path, rx, linger))
            .map_err(|e| StoreError::io("start the outbox writer for", dir, e))?;
        Ok((OutboxLog { tx }, recovery))
    }

    /// The intact records of `dir/file` as they are on disk now (a record
    /// being written is not among them). Blocking; for readers beside the
    /// writer (e.g. audit queries), which never take the whole log into memory
    /// for longer than the call.
    pub fn read_named(dir: &Path, file: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let path = dir.join(file);
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(mut f) => {
                f.read_to_end(&mut bytes)
                    .map_err(|e| StoreError::io("read", &path, e))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("open", &path, e)),
        }
        Ok(decode_all(&bytes).0)
    }

    /// Queues records (in call order) and returns at once; the receiver
    /// resolves after the `fdatasync` that covers them.
    pub fn append(&self, records: Vec<Vec<u8>>) -> oneshot::Receiver<Result<(), StoreError>> {
        let (reply, answer) = oneshot::channel();
        if let Some(too_big) = records.iter().find(|r| r.len() > MAX_OUTBOX_RECORD) {
            let _ = reply.send(Err(StoreError::TooLarge {
                what: "outbox record",
                len: too_big.len(),
                max: MAX_OUTBOX_RECORD,
            }));
            return answer;
        }
        if let Err(mpsc::SendError(Msg::Append(_, reply))) = self.tx.send(Msg::Append(records, reply)) {
            let _ = reply.send(Err(StoreError::Closed));
        }
        answer
    }

    /// Stops the writer after what is queued (also when the last handle drops).
    pub fn close(&self) {
        let _ = self.tx.send(Msg::Stop);
    }
}

fn encode(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The intact records of `bytes` and the length of the intact prefix.
fn decode_all(bytes: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= 8 {
        let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let crc = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        let Some(payload) = bytes.get(at + 8..at + 8 + len) else {
            break;
        };
        if len > MAX_OUTBOX_RECORD || crc32fast::hash(payload) != crc {
            break;
        }
        records.push(payload.to_vec());
        at += 8 + len;
    }
    (records, at)
}

fn rewrite(dir: &Path, path: &Path, records: &[Vec<u8>]) -> Result<(), StoreError> {
    let tmp = dir.join("outbox.log.tmp");
    let mut buf = Vec::new();
    for r in records {
        encode(r, &mut buf);
    }
    let mut f = File::create(&tmp).map_err(|e| StoreError::io("create", &tmp, e))?;
    f.write_all(&buf)
        .and_then(|()| f.sync_all())
        .map_err(|e| StoreError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| StoreError::io("rename into place", path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("sync directory", dir, e))
}

/// The writer thread's state: bytes to write, waiters to answer at the next sync.
struct Writer {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
    waiters: Vec<oneshot::Sender<Result<(), StoreError>>>,
    /// Written since the last sync.
    dirty: bool,
    failed: Option<StoreError>,
}

impl Writer {
    /// Takes one message; `true` for `Stop`.
    fn take(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Append(records, reply) => {
                for r in &records {
                    encode(r, &mut self.buf);
                }
                self.waiters.push(reply);
                false
            }
            Msg::Stop => true,
        }
    }

    fn write(&mut self) {
        if self.buf.is_empty() || self.failed.is_some() {
            self.buf.clear();
            return;
        }
        match self.file.write_all(&self.buf) {
            Ok(()) => self.dirty = true,
            // A partial write leaves a torn tail that the next open cuts off.
            Err(e) => self.fail(StoreError::io("append", &self.path, e)),
        }
        self.buf.clear();
    }

    fn sync_and_answer(&mut self) {
        if self.dirty && self.failed.is_none() {
            if let Err(e) = self.file.sync_data() {
                self.fail(StoreError::io("fdatasync", &self.path, e));
            }
            self.dirty = false;
        }
        let result = match &self.failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        };
        for w in self.waiters.drain(..) {
            let _ = w.send(result.clone());
        }
    }

    fn fail(&mut self, e: StoreError) {
        tracing::error!(path = %self.path.display(), error = %e, "outbox append failed; refusing further appends");
        self.failed = Some(e);
    }
}

fn run(file: File, path: PathBuf, rx: mpsc::Receiver<Msg>, linger: Linger) {
    let mut w = Writer {
        file,
        path,
        buf: Vec::with_capacity(64 << 10),
        waiters: Vec::new(),
        dirty: false,
        failed: None,
    };
    // `SyncWithin`: when the written, unsynced appends are due to be synced.
    let mut sync_at: Option<Instant> = None;
    loop {
        let next = match sync_at {
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        let mut stop = match next {
            Ok(msg) => {
                let stop = w.take(msg);
                if let Linger::Gather(window) = linger
                    && !stop
                    && !window.is_zero()
                {
                    // Sleep rather than wait on the channel: appends during the
                    // window then cost no wake-up of this thread each.
                    std::thread::sleep(window);
                }
                stop
            }
            Err(mpsc::RecvTimeoutError::Timeout) => false,
            Err(mpsc::RecvTimeoutError::Disconnected) => true,
        };
        while !stop {
            match rx.try_recv() {
                Ok(msg) => stop |= w.take(msg),
                Err(_) => break,
            }
        }
        w.write();
        let due = match linger {
            Linger::Gather(_) => true,
            Linger::SyncWithin(window) => {
                let at = *sync_at.get_or_insert_with(|| Instant::now() + window);
                stop || Instant::now() >= at
            }
        };
        if due {
            w.sync_and_answer();
            sync_at = None;
        }
        if stop {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> (OutboxLog, OutboxRecovery) {
        OutboxLog::open(dir, |r| r.to_vec()).expect("open outbox")
    }

    #[tokio::test]
    async fn appends_survive_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, rec) = open(dir.path());
        assert!(!rec.existed);
        log.append(vec![b"one".to_vec(), b"two".to_vec()])
            .await
            .expect("writer")
            .expect("append");
        log.append(vec![b"three".to_vec()])
            .await
            .expect("writer")
            .expect("append");
        log.close();
        // A torn record at the end: a length with half a payload.
        let path = dir.path().join(FILE);
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(&[9, 0, 0, 0, 1, 2, 3, 4, b'x']).expect("write");
        drop(f);
        let (_log, rec) = open(dir.path());
        assert!(rec.existed);
        assert_eq!(rec.records, vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
        assert_eq!(rec.truncated_tail_bytes, 9);
    }

    #[tokio::test]
    async fn compaction_replaces_the_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, _) = open(dir.path());
        log.append(vec![b"a".to_vec(), b"b".to_vec()])
            .await
            .expect("writer")
            .expect("append");
        log.close();
        let (log, rec) = OutboxLog::open(dir.path(), |r| vec![r.concat()]).expect("open");
        assert_eq!(rec.records.len(), 2);
        log.append(vec![b"c".to_vec()]).await.expect("writer").expect("append");
        log.close();
        let (_, rec) = open(dir.path());
        assert_eq!(rec.records, vec![b"ab".to_vec(), b"c".to_vec()]);
    }

    #[tokio::test]
    async fn sync_within_answers_after_its_sync_and_stop_syncs_what_waits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let short = Linger::SyncWithin(Duration::from_millis(5));
        let (log, _) = OutboxLog::open_lingering(dir.path(), FILE, |r| r.to_vec(), short).expect("open");
        let first = log.append(vec![b"one".to_vec()]);
        let second = log.append(vec![b"two".to_vec()]);
        first.await.expect("writer").expect("append");
        second.await.expect("writer").expect("append");
        log.close();
        // A window far longer than the test: stopping syncs and answers at once.
        let long = Linger::SyncWithin(Duration::from_secs(3600));
        let (log, rec) = OutboxLog::open_lingering(dir.path(), FILE, |r| r.to_vec(), long).expect("reopen");
        assert_eq!(rec.records, vec![b"one".to_vec(), b"two".to_vec()]);
        let third = log.append(vec![b"three".to_vec()]);
        log.close();
        third.await.expect("writer").expect("append");
        let (_, rec) = open(dir.path());
        assert_eq!(rec.records, vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
    }
}
