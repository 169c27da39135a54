//! The store's one error type.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Everything that can go wrong in the store. Cheap to clone, so one failure
/// can answer every caller of a group commit.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// sled reported an error.
    #[error("sled {op}: {source}")]
    Sled {
        op: &'static str,
        #[source]
        source: sled::Error,
    },
    /// The stored data cannot be read back as written (and cutting it off
    /// would lose acknowledged data, so the store refuses to open).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// A record exceeds what the log format can hold.
    #[error("record too large: {what} is {len} bytes, at most {max}")]
    TooLarge { what: &'static str, len: usize, max: usize },
    /// Another process (or another open `Store`) holds the directory.
    #[error("store directory {} is in use", .0.display())]
    Locked(PathBuf),
    /// `close` was called, or the store's threads are gone.
    #[error("store is closed")]
    Closed,
    /// The log could not be synced; nothing more is appended until a restart
    /// recovers from what is on disk.
    #[error("log writer failed: {0}")]
    Failed(String),
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.to_path_buf(),
            source: Arc::new(source),
        }
    }

    pub(crate) fn sled(op: &'static str) -> impl FnOnce(sled::Error) -> StoreError {
        move |source| StoreError::Sled { op, source }
    }
}
