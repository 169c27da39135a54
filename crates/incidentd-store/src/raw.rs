//! The disk's own speed, as a baseline for benchmarks: the same batching and
//! one `fdatasync` per batch as the log, but no framing, no CRC, no sled and
//! no threads.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Creates (or empties) `path`, then `batches` times appends `batch_size`
/// records of `record_size` bytes with one write and syncs with
/// `fdatasync`. Returns the time taken by the appends and syncs.
pub fn append_and_sync_batches(
    path: &Path,
    record_size: usize,
    batch_size: usize,
    batches: usize,
) -> std::io::Result<Duration> {
    let file = OpenOptions::new().create(true).truncate(true).write(true).open(path)?;
    let chunk = vec![0xA5u8; record_size.max(1) * batch_size.max(1)];
    let mut offset = 0u64;
    let started = Instant::now();
    for _ in 0..batches {
        file.write_all_at(&chunk, offset)?;
        file.sync_data()?;
        offset += chunk.len() as u64;
    }
    Ok(started.elapsed())
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_every_batch() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("raw.log");
        super::append_and_sync_batches(&path, 100, 4, 3)?;
        assert_eq!(std::fs::metadata(&path)?.len(), 1200);
        Ok(())
    }
}
