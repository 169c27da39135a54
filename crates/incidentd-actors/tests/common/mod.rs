// Each test binary uses a subset of these helpers.
#![allow(dead_code)]

//! Shared by the actor tests: a real store in a temp dir, a paused-clock
//! helper, start and stop.

use incidentd_actors::{Clock, Handle, OpenOrg, Options};
use incidentd_domain::Timestamp;
use incidentd_store::{Store, StoreConfig};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Keeps the runtime busy so a paused clock never jumps on its own (it would
/// while an append waits on the store's threads); time moves only by `advance`.
pub fn hold_the_clock() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        loop {
            tokio::task::yield_now().await;
        }
    })
}

/// Opens the store in `dir` and starts the actors with the clock at `at`.
pub async fn start(dir: &Path, at: Timestamp) -> (Handle, Store) {
    let cfg = StoreConfig {
        dir: dir.to_path_buf(),
        snapshot_flush_every: Duration::from_secs(3600),
    };
    let (store, recovery) = tokio::task::spawn_blocking(move || Store::open(cfg))
        .await
        .expect("join")
        .expect("store opens");
    let opts = Options {
        clock: Clock::anchored(at),
        snapshot_every: 4,
    };
    let (handle, _) = Handle::start(store.clone(), recovery, Arc::new(OpenOrg), opts)
        .await
        .expect("actors start");
    (handle, store)
}

pub async fn stop(handle: Handle, store: Store) {
    handle.shutdown().await;
    store.close().await.expect("store closes");
}
