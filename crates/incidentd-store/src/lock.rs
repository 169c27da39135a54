//! One `Store` per directory: an exclusive `flock` on `dir/LOCK`, held until
//! the store's last thread ends (the kernel drops it if the process dies).

use crate::StoreError;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;

#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock, StoreError> {
        let path = dir.join("LOCK");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io("open", &path, e))?;
        // SAFETY: flock on a file descriptor we own and keep open for the lock's lifetime.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::WouldBlock {
                return Err(StoreError::Locked(dir.to_path_buf()));
            }
            return Err(StoreError::io("lock", &path, err));
        }
        Ok(DirLock { _file: file })
    }
}
