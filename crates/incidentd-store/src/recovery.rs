//! Opening the store: read the whole log once, verify every record, cut a
//! torn tail, bring sled up to the log, and collect each incident's latest
//! snapshot plus the events after it.

use crate::format::{self, Body, FILE_HEADER_LEN, RECORD_HEADER_LEN, RecordHeader};
use crate::index::{EventOffsets, Index};
use crate::{IncidentKey, RecoveredIncident, Recovery, StoreError};
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What `open` needs after recovery.
pub(crate) struct Recovered {
    pub file: File,
    pub index: Index,
    pub offsets: EventOffsets,
    pub recovery: Recovery,
}

#[derive(Default)]
struct IncidentScan {
    /// Highest version seen in the log.
    last: u64,
    /// Events after the snapshot (all events when there is none).
    tail: Vec<(u64, Vec<u8>)>,
}

pub(crate) fn recover(dir: &Path, started: Instant) -> Result<Recovered, StoreError> {
    let log_path = dir.join("events.log");
    let (index, index_rebuilt) = open_index(dir, &dir.join("sled"))?;
    index.ensure_format()?;
    let (file, file_len) = open_log(&log_path)?;

    let mut snapshots = index.all_snapshots()?;
    let watermark = index.watermark()?;
    let mut incidents: HashMap<IncidentKey, IncidentScan> = HashMap::new();
    let mut offsets = EventOffsets::default();
    let mut reindexed = 0u64;
    // The last idempotency record sled claims to have (it ends at or below the watermark).
    let mut claimed: Option<String> = None;
    let (end, records) = scan(&file, &log_path, file_len, |at, next, body| {
        // The record is missing from sled if it ends past the watermark.
        let reindex = next > watermark;
        match body {
            Body::Event {
                incident,
                version,
                payload,
            } => {
                let inc = incidents.entry(incident).or_default();
                inc.last = inc.last.max(version);
                // Covered by the snapshot: skipped without copying the payload.
                if snapshots.get(&incident).is_none_or(|s| version > s.version) {
                    inc.tail.push((version, payload.to_vec()));
                }
                offsets.put(&incident, version, at);
            }
            Body::Idempotency { key, response } => {
                if reindex {
                    index.put_request(key, response, at)?;
                    reindexed += 1;
                } else {
                    // One buffer, reused: no allocation per record.
                    let k = claimed.get_or_insert_with(String::new);
                    k.clear();
                    k.push_str(key);
                }
            }
        }
        Ok(())
    })?;

    // sled's flush is not a durability point: if it lost writes its
    // watermark vouches for, trust none of it below the watermark.
    let claim_holds = match claimed {
        None => true,
        Some(key) => index.has_request(&key)?,
    };
    if !claim_holds {
        tracing::warn!(
            watermark,
            "sled lacks records it claims to hold; re-indexing the log below the claim"
        );
        reindexed += reindex_up_to(&file, &log_path, end, watermark, &index)?;
    }

    let torn = file_len - end;
    if torn > 0 {
        tracing::warn!(path = %log_path.display(), offset = end, bytes = torn, "cutting a torn or corrupt log tail");
        file.set_len(end)
            .map_err(|e| StoreError::io("truncate", &log_path, e))?;
        file.sync_data()
            .map_err(|e| StoreError::io("fdatasync", &log_path, e))?;
    }

    // A snapshot must describe events the log still has.
    let stale: HashSet<IncidentKey> = snapshots
        .iter()
        .filter(|(key, s)| s.log_offset > end || s.version > incidents.get(*key).map_or(0, |i| i.last))
        .map(|(key, _)| *key)
        .collect();
    if !stale.is_empty() {
        tracing::warn!(count = stale.len(), "dropping snapshots that are ahead of the log");
        for key in &stale {
            snapshots.remove(key);
            index.remove_snapshot(key)?;
            if let Some(inc) = incidents.get_mut(key) {
                inc.tail.clear();
            }
        }
        // Their incidents replay from the first event: a second pass for them only.
        scan(&file, &log_path, end, |_, _, body| {
            let Body::Event {
                incident,
                version,
                payload,
            } = body
            else {
                return Ok(());
            };
            if let Some(inc) = incidents.get_mut(&incident).filter(|_| stale.contains(&incident)) {
                inc.tail.push((version, payload.to_vec()));
            }
            Ok(())
        })?;
    }

    // sled may know idempotency records the log lost (damage to synced
    // records cuts them off too): drop them, so sled holds exactly what the
    // log holds and keys are reused cleanly. The tree is keyed by request, so
    // it is scanned only when the log lost a tail or sled vouches for more.
    let mut pruned = 0;
    if torn > 0 || watermark > end {
        pruned = index.prune_requests_from(end)?;
        if pruned > 0 {
            tracing::warn!(
                requests = pruned,
                "removed idempotency records that are no longer in the log"
            );
        }
    }
    if reindexed > 0 || pruned > 0 || watermark != end {
        index.set_watermark(end)?;
        index.flush()?;
    }
    if reindexed > 0 {
        tracing::info!(records = reindexed, "re-indexed log records into sled");
    }

    let mut list: Vec<RecoveredIncident> = Vec::with_capacity(incidents.len().max(snapshots.len()));
    for (key, scan) in incidents {
        let snapshot = snapshots.remove(&key);
        list.push(RecoveredIncident {
            incident: key,
            snapshot,
            tail: in_version_order(scan.tail),
        });
    }
    // Snapshots of incidents without events in the log (possible only at version 0).
    for (key, snapshot) in snapshots {
        list.push(RecoveredIncident {
            incident: key,
            snapshot: Some(snapshot),
            tail: Vec::new(),
        });
    }
    list.sort_unstable_by_key(|r| r.incident);

    let recovery = Recovery {
        incidents: list,
        log_bytes: end,
        records,
        truncated_tail_bytes: torn,
        index_rebuilt,
        reindexed_records: reindexed,
        elapsed: started.elapsed(),
    };
    Ok(Recovered {
        file,
        index,
        offsets,
        recovery,
    })
}

/// Copies into sled every idempotency record that ends at or below `watermark`.
fn reindex_up_to(file: &File, path: &Path, end: u64, watermark: u64, index: &Index) -> Result<u64, StoreError> {
    let mut copied = 0;
    scan(file, path, end, |at, next, body| {
        if let Body::Idempotency { key, response } = body
            && next <= watermark
        {
            index.put_request(key, response, at)?;
            copied += 1;
        }
        Ok(())
    })?;
    Ok(copied)
}

/// Sorts by version; of two records with one version, the later one wins
/// (as it does in [`EventOffsets`]).
fn in_version_order(mut tail: Vec<(u64, Vec<u8>)>) -> Vec<(u64, Vec<u8>)> {
    if tail.windows(2).all(|w| w[0].0 < w[1].0) {
        return tail;
    }
    tail.sort_by_key(|(v, _)| *v); // stable: log order within a version
    let mut out: Vec<(u64, Vec<u8>)> = Vec::with_capacity(tail.len());
    for (v, p) in tail {
        match out.last_mut() {
            Some(last) if last.0 == v => last.1 = p,
            _ => out.push((v, p)),
        }
    }
    out
}

/// Reads records from the start of the log up to `len`, calling `visit`
/// with (offset, offset after, record) for each intact one. Returns where
/// the intact prefix ends and how many records it holds.
pub(crate) fn scan(
    file: &File,
    path: &Path,
    len: u64,
    mut visit: impl FnMut(u64, u64, Body<'_>) -> Result<(), StoreError>,
) -> Result<(u64, u64), StoreError> {
    let io = |op| move |e| StoreError::io(op, path, e);
    let mut reader = BufReader::with_capacity(1 << 20, file);
    reader.seek(SeekFrom::Start(FILE_HEADER_LEN)).map_err(io("seek"))?;
    let mut pos = FILE_HEADER_LEN;
    let mut records = 0u64;
    let mut body = Vec::new();
    loop {
        let mut raw = [0u8; RECORD_HEADER_LEN];
        if read_up_to(&mut reader, &mut raw).map_err(io("read"))? < RECORD_HEADER_LEN {
            break; // the end, or a torn header
        }
        let header = RecordHeader::new(raw);
        let next = pos + (RECORD_HEADER_LEN + header.body_len()) as u64;
        if !header.plausible() || next > len {
            break; // garbage, or a record cut short
        }
        body.resize(header.body_len(), 0);
        reader.read_exact(&mut body).map_err(io("read"))?;
        if !header.matches(&body) {
            break; // torn or damaged
        }
        // Intact but unreadable: a bug or a newer format. Cutting it off
        // would lose acknowledged data, so refuse instead.
        let parsed = format::parse_body(header.kind(), &body)
            .map_err(|why| StoreError::Corrupt(format!("{} at offset {pos}: {why}", path.display())))?;
        visit(pos, next, parsed)?;
        records += 1;
        pos = next;
    }
    Ok((pos, records))
}

/// Fills `buf` as far as the reader goes; returns how much was read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Opens `events.log`, creating it (header first, then an atomic rename)
/// if it does not exist. Returns the file and its length.
fn open_log(path: &Path) -> Result<(File, u64), StoreError> {
    let io = |op| move |e| StoreError::io(op, path, e);
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return create_log(path),
        Err(e) => return Err(io("open")(e)),
    };
    let len = file.metadata().map_err(io("stat"))?.len();
    let header = format::file_header();
    if len < FILE_HEADER_LEN {
        // Only a header write cut short looks like this: start over.
        let mut head = vec![0u8; len as usize];
        file.read_exact_at(&mut head, 0).map_err(io("read"))?;
        if !header.starts_with(&head) {
            return Err(StoreError::Corrupt(format!(
                "{}: not an incidentd event log",
                path.display()
            )));
        }
        file.write_all_at(&header, 0).map_err(io("write"))?;
        file.sync_data().map_err(io("fdatasync"))?;
        return Ok((file, FILE_HEADER_LEN));
    }
    let mut head = [0u8; FILE_HEADER_LEN as usize];
    file.read_exact_at(&mut head, 0).map_err(io("read"))?;
    format::check_file_header(&head).map_err(|why| StoreError::Corrupt(format!("{}: {why}", path.display())))?;
    Ok((file, len))
}

fn create_log(path: &Path) -> Result<(File, u64), StoreError> {
    let tmp = path.with_extension("log.new");
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| StoreError::io("create", &tmp, e))?;
        f.write_all(&format::file_header())
            .map_err(|e| StoreError::io("write", &tmp, e))?;
        f.sync_all().map_err(|e| StoreError::io("fsync", &tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| StoreError::io("rename", &tmp, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| StoreError::io("open", path, e))?;
    Ok((file, FILE_HEADER_LEN))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("fsync directory", dir, e))
}

/// Opens sled; if it cannot be opened (say, damaged by a power loss), moves
/// it aside and starts an empty one, which recovery then fills from the log.
/// Returns whether the index starts empty.
fn open_index(dir: &Path, sled_path: &Path) -> Result<(Index, bool), StoreError> {
    let existed = sled_path.exists();
    let err = match open_index_waiting(sled_path) {
        Ok(index) => return Ok((index, !existed)),
        Err(e) => e,
    };
    if is_lock_error(&err) {
        return Err(StoreError::Locked(sled_path.to_path_buf()));
    }
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    let aside: PathBuf = dir.join(format!("sled.unreadable-{stamp}"));
    tracing::warn!(error = %err, aside = %aside.display(), "sled cannot be opened; moving it aside and rebuilding it from the log");
    match std::fs::rename(sled_path, &aside) {
        Ok(()) => sync_dir(dir)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::io("rename", sled_path, e)),
    }
    let index = Index::open(sled_path).map_err(StoreError::sled("open"))?;
    Ok((index, true))
}

/// sled's own file lock can outlive a closed store by a moment (its handles
/// close on its threads); the directory lock already excludes other stores,
/// so a lock conflict here is waited out briefly rather than read as damage.
fn open_index_waiting(sled_path: &Path) -> Result<Index, sled::Error> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match Index::open(sled_path) {
            Err(e) if is_lock_error(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}
