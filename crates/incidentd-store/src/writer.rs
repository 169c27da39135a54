//! The log writer thread: group commit.
//!
//! It takes every batch queued since its last sync (up to a size cap),
//! frames them into one buffer, writes it with one positioned write, calls
//! `fdatasync` once, queues the group for the sled thread to index, and then
//! answers each caller with the offset after its batch. Queuing before
//! answering keeps reads consistent: any sled request a caller sends after
//! its answer is behind the indexing of its records in the sled thread's
//! queue. Indexing is off the answer path: while the sled thread indexes,
//! the writer is already writing the next group.

use crate::format;
use crate::index::{Committed, Reply, SledMsg};
use crate::stats::Counters;
use crate::{Record, StoreError};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// Largest group commit in bytes (one batch may exceed it alone).
const MAX_GROUP_BYTES: usize = 16 << 20;
/// Largest group commit in batches.
const MAX_GROUP_BATCHES: usize = 4096;

pub(crate) struct WriteReq {
    pub records: Vec<Record>,
    /// Framed size of `records`.
    pub bytes: usize,
    pub reply: Reply<u64>,
}

pub(crate) enum WriterMsg {
    Append(WriteReq),
    /// Finish what is queued before this, then stop (and stop the sled thread).
    Shutdown(Reply<()>),
}

pub(crate) struct Writer {
    pub file: File,
    pub path: PathBuf,
    /// Where the next record goes (the end of the valid log).
    pub offset: u64,
    pub rx: mpsc::Receiver<WriterMsg>,
    pub sled: mpsc::Sender<SledMsg>,
    pub stats: Arc<Counters>,
    /// Test hook: gather this many batches before the first write.
    pub hold_first: usize,
}

struct Group {
    reqs: Vec<WriteReq>,
    bytes: usize,
    /// `Some` once a shutdown was asked for (`Some(None)`: every sender is gone).
    stop: Option<Option<Reply<()>>>,
}

impl Group {
    fn take(&mut self, msg: Option<WriterMsg>) {
        match msg {
            Some(WriterMsg::Append(r)) => {
                self.bytes += r.bytes;
                self.reqs.push(r);
            }
            Some(WriterMsg::Shutdown(reply)) => self.stop = Some(Some(reply)),
            None => self.stop = Some(None),
        }
    }
}

impl Writer {
    pub(crate) fn run(mut self) {
        let mut buf: Vec<u8> = Vec::with_capacity(256 << 10);
        // Set after a failure that could not be rolled back: refuse further appends.
        let mut failed: Option<StoreError> = None;
        let mut hold = self.hold_first;
        loop {
            let mut group = Group {
                reqs: Vec::new(),
                bytes: 0,
                stop: None,
            };
            group.take(self.rx.blocking_recv());
            while group.stop.is_none() && group.reqs.len() < hold {
                group.take(self.rx.blocking_recv());
            }
            hold = 0;
            while group.stop.is_none() && group.bytes < MAX_GROUP_BYTES && group.reqs.len() < MAX_GROUP_BATCHES {
                match self.rx.try_recv() {
                    Ok(msg) => group.take(Some(msg)),
                    Err(_) => break,
                }
            }
            if !group.reqs.is_empty() {
                self.commit(group.reqs, &mut buf, &mut failed);
            }
            if let Some(reply) = group.stop {
                // Answer `Closed` to what came after the shutdown, including
                // sends that reserved their slot before it and deliver late:
                // merely dropping the receiver would leave those in the
                // channel, their callers waiting for as long as a sender lives.
                self.rx.close();
                while self.rx.blocking_recv().is_some() {}
                // Everything before the shutdown is written; the sled thread
                // indexes it, flushes, and answers the closer.
                let _ = self.sled.blocking_send(SledMsg::Shutdown(reply));
                return;
            }
        }
    }

    fn commit(&mut self, reqs: Vec<WriteReq>, buf: &mut Vec<u8>, failed: &mut Option<StoreError>) {
        if let Some(e) = failed {
            for r in reqs {
                let _ = r.reply.send(Err(e.clone()));
            }
            return;
        }
        buf.clear();
        let mut batches = Vec::with_capacity(reqs.len());
        let mut replies = Vec::with_capacity(reqs.len());
        let mut records = 0u64;
        for r in reqs {
            let start = self.offset + buf.len() as u64;
            for rec in &r.records {
                format::encode(rec, buf);
            }
            records += r.records.len() as u64;
            batches.push(Committed {
                records: r.records,
                start,
            });
            replies.push((r.reply, self.offset + buf.len() as u64));
        }
        if !buf.is_empty() {
            let started = Instant::now();
            if let Err(err) = self.write_and_sync(buf) {
                self.roll_back(&err, failed);
                for (reply, _) in replies {
                    let _ = reply.send(Err(err.clone()));
                }
                return;
            }
            let took = started.elapsed();
            self.offset += buf.len() as u64;
            self.stats
                .record_group(took, batches.len() as u64, records, buf.len() as u64);
        }
        let msg = SledMsg::Commit {
            batches,
            end: self.offset,
        };
        // If the sled thread is gone, the batches are durable all the same
        // (and the next open indexes them).
        let _ = self.sled.blocking_send(msg);
        for (reply, end) in replies {
            let _ = reply.send(Ok(end));
        }
    }

    fn write_and_sync(&self, buf: &[u8]) -> Result<(), StoreError> {
        self.file
            .write_all_at(buf, self.offset)
            .map_err(|e| StoreError::io("write", &self.path, e))?;
        // fdatasync on Linux: data plus the size change, not the timestamps.
        self.file
            .sync_data()
            .map_err(|e| StoreError::io("fdatasync", &self.path, e))
    }

    /// Cuts a failed group off the file so that the log ends at the last
    /// acknowledged record, on disk as well. The callers got an error, and a
    /// later restart must not resurrect what they were told failed.
    fn roll_back(&self, err: &StoreError, failed: &mut Option<StoreError>) {
        tracing::error!(path = %self.path.display(), offset = self.offset, error = %err, "log append failed; rolling back");
        if let Err(e) = self.file.set_len(self.offset).and_then(|()| self.file.sync_data()) {
            tracing::error!(path = %self.path.display(), error = %e, "log rollback failed; refusing further appends");
            *failed = Some(StoreError::Failed(format!(
                "append failed ({err}) and could not be rolled back ({e}); restart to recover from the log on disk"
            )));
        }
    }
}
