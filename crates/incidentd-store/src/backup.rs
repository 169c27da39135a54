//! Online backup: a consistent copy of a data directory while a server
//! writes to it, without its lock.
//!
//! Why copying only `events.log` is enough: the log is the durability point
//! and only ever grows at its end (a failed group is cut back off); sled
//! holds nothing the log cannot rebuild, and a store opened on a directory
//! without `sled/` rebuilds it from the log (`recovery.rs`). So a backup is
//! the longest prefix of the log that ends on a record boundary with every
//! record's CRC intact, copied as of one moment: exactly what a crash at
//! that moment would have left, which recovery already treats as a valid
//! state. sled is never copied (a live sled tree copied file by file is not
//! consistent, and it would only save replay time).
//!
//! The prefix is verified twice: in the source (where the scan stops at a
//! group still being written) and in the copy (so a copy cut short by a
//! concurrent rollback is caught). The source is `fdatasync`ed after the
//! copy so the backup holds nothing the server could still lose to a power
//! cut. The copy is written to a temporary file, synced and renamed, so a
//! destination never holds a half-written log.

use crate::StoreError;
use crate::format::{FILE_HEADER_LEN, check_file_header};
use crate::recovery::scan;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// What a backup copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The log written, `<dest>/events.log`.
    pub log: PathBuf,
    /// Bytes of log copied (header included).
    pub bytes: u64,
    /// Intact records copied.
    pub records: u64,
}

/// Copies the intact prefix of `<data_dir>/events.log` to `<dest>/events.log`.
/// `dest` is created if missing and must not already hold a store. Safe
/// while a server runs on `data_dir`: it reads only, and takes no lock.
pub fn backup(data_dir: &Path, dest: &Path) -> Result<BackupReport, StoreError> {
    let src_path = data_dir.join("events.log");
    let src = File::open(&src_path).map_err(|e| StoreError::io("open", &src_path, e))?;
    let mut head = [0u8; FILE_HEADER_LEN as usize];
    (&src)
        .read_exact(&mut head)
        .map_err(|e| StoreError::io("read the header of", &src_path, e))?;
    check_file_header(&head).map_err(|why| StoreError::Corrupt(format!("{}: {why}", src_path.display())))?;

    // One moment: the log as long as it is now; later appends are not ours.
    let len = src.metadata().map_err(|e| StoreError::io("stat", &src_path, e))?.len();
    let (end, records) = scan(&src, &src_path, len, |_, _, _| Ok(()))?;
    // Everything copied is on the source's disk too.
    src.sync_data().map_err(|e| StoreError::io("fdatasync", &src_path, e))?;

    std::fs::create_dir_all(dest).map_err(|e| StoreError::io("create directory", dest, e))?;
    let log = dest.join("events.log");
    if log.exists() || dest.join("sled").exists() {
        return Err(StoreError::Failed(format!(
            "{} already holds a store; back up into an empty directory",
            dest.display()
        )));
    }
    let tmp = dest.join("events.log.partial");
    let copied = copy_prefix(&src, &src_path, &tmp, end)?;
    if copied != end {
        let _ = std::fs::remove_file(&tmp);
        return Err(StoreError::Failed(format!(
            "{} shrank during the backup (a failed write was rolled back); run the backup again",
            src_path.display()
        )));
    }
    let check = File::open(&tmp).map_err(|e| StoreError::io("open", &tmp, e))?;
    let (copy_end, copy_records) = scan(&check, &tmp, end, |_, _, _| Ok(()))?;
    if (copy_end, copy_records) != (end, records) {
        let _ = std::fs::remove_file(&tmp);
        return Err(StoreError::Corrupt(format!(
            "the copy in {} does not verify ({copy_records} of {records} records); run the backup again",
            tmp.display()
        )));
    }
    std::fs::rename(&tmp, &log).map_err(|e| StoreError::io("rename", &tmp, e))?;
    File::open(dest)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("fsync directory", dest, e))?;
    Ok(BackupReport {
        log,
        bytes: end,
        records,
    })
}

/// Copies the first `len` bytes of `src` into a new file at `to`, synced.
/// Returns how many bytes there were to copy (fewer if `src` shrank).
fn copy_prefix(src: &File, src_path: &Path, to: &Path, len: u64) -> Result<u64, StoreError> {
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(to)
        .map_err(|e| StoreError::io("create", to, e))?;
    let mut reader = src.try_clone().map_err(|e| StoreError::io("open", src_path, e))?;
    std::io::Seek::seek(&mut reader, std::io::SeekFrom::Start(0)).map_err(|e| StoreError::io("seek", src_path, e))?;
    let copied = std::io::copy(&mut reader.take(len), &mut out).map_err(|e| StoreError::io("copy", src_path, e))?;
    out.flush().map_err(|e| StoreError::io("write", to, e))?;
    out.sync_all().map_err(|e| StoreError::io("fsync", to, e))?;
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Record, Store, StoreConfig};

    fn event(n: u64) -> Record {
        Record::Event {
            incident: [n as u8; 16],
            version: 1,
            payload: format!("event {n}").into_bytes(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backup_of_an_open_store_recovers_everything_acknowledged() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(StoreConfig::new(tmp.path().join("data"))).unwrap();
        for n in 0..20 {
            store.append(vec![event(n)]).await.unwrap();
        }
        // A torn group at the end, as a crash mid-write leaves it: not copied.
        let log = tmp.path().join("data/events.log");
        let intact = std::fs::metadata(&log).unwrap().len();
        OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(&[0xE5, 200, 0, 0, 0, 1, 2])
            .unwrap();

        let report = backup(&tmp.path().join("data"), &tmp.path().join("copy")).unwrap();
        assert_eq!((report.bytes, report.records), (intact, 20));
        // The source goes on taking writes.
        store.append(vec![event(99)]).await.unwrap();
        store.close().await.unwrap();

        let (copy, rec) = Store::open(StoreConfig::new(tmp.path().join("copy"))).unwrap();
        assert!(rec.index_rebuilt);
        assert_eq!(rec.incidents.len(), 20);
        assert_eq!(rec.truncated_tail_bytes, 0);
        let got = copy.read_events([7; 16], 0, 1).await.unwrap();
        assert_eq!(got, vec![(1, b"event 7".to_vec())]);
        copy.close().await.unwrap();
    }

    #[test]
    fn a_backup_refuses_a_destination_with_a_store() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let (store, _) = Store::open(StoreConfig::new(&data)).unwrap();
        drop(store);
        backup(&data, &tmp.path().join("copy")).unwrap();
        let again = backup(&data, &tmp.path().join("copy")).unwrap_err();
        assert!(again.to_string().contains("already holds a store"), "{again}");
        assert!(backup(&tmp.path().join("nope"), &tmp.path().join("x")).is_err());
    }
}
