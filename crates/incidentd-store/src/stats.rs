//! Counters of the store, read by `/metrics` and the benchmarks. Lock-free:
//! the writer thread updates them, anyone reads a copy.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds, in seconds, of the sync latency buckets (a superset of the
/// usual Prometheus latency buckets, so `count_le` is exact for those).
pub const SYNC_LATENCY_BOUNDS: [f64; 15] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A fixed-bucket latency histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyHistogram {
    /// Upper bound (seconds, inclusive) of each bucket but the last.
    pub bounds: &'static [f64],
    /// Observations per bucket (not cumulative); one more entry than
    /// `bounds`: the last counts observations above every bound.
    pub counts: Vec<u64>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            bounds: &SYNC_LATENCY_BOUNDS,
            counts: vec![0; SYNC_LATENCY_BOUNDS.len() + 1],
            count: 0,
            sum_seconds: 0.0,
        }
    }
}

impl LatencyHistogram {
    /// Observations of at most `bound` seconds, counted by whole buckets
    /// (exact when `bound` is one of `bounds`).
    pub fn count_le(&self, bound: f64) -> u64 {
        self.bounds
            .iter()
            .zip(&self.counts)
            .filter(|(b, _)| **b <= bound * (1.0 + 1e-9))
            .map(|(_, c)| *c)
            .sum()
    }

    /// `(upper bound, cumulative count)` per bucket, ending with `+Inf`.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        let mut out = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            total += c;
            out.push((self.bounds.get(i).copied().unwrap_or(f64::INFINITY), total));
        }
        out
    }
}

/// A copy of the store's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreStats {
    /// `fdatasync` calls on the log: one per group commit.
    pub syncs: u64,
    /// Time spent in log write + `fdatasync`, in total.
    pub sync_seconds_total: f64,
    /// Batches (`append` calls) made durable.
    pub appends: u64,
    /// Records made durable.
    pub records: u64,
    /// Size of the log in bytes.
    pub bytes: u64,
    /// Batches in the last group commit.
    pub last_group_batches: u64,
    /// Bytes written by the last group commit.
    pub last_group_bytes: u64,
    /// Snapshots written to sled.
    pub snapshots_saved: u64,
    /// Snapshots dropped because the sled queue was full.
    pub snapshots_dropped: u64,
    /// Periodic sled flushes.
    pub sled_flushes: u64,
    /// Failed sled index updates (the log has the data; the next open re-indexes).
    pub index_errors: u64,
    /// Latency of one group commit (write + `fdatasync`).
    pub sync_latency: LatencyHistogram,
}

#[derive(Debug)]
pub(crate) struct Counters {
    syncs: AtomicU64,
    sync_nanos: AtomicU64,
    appends: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    last_group_batches: AtomicU64,
    last_group_bytes: AtomicU64,
    pub(crate) snapshots_saved: AtomicU64,
    pub(crate) snapshots_dropped: AtomicU64,
    pub(crate) sled_flushes: AtomicU64,
    pub(crate) index_errors: AtomicU64,
    buckets: [AtomicU64; SYNC_LATENCY_BOUNDS.len() + 1],
}

impl Counters {
    pub(crate) fn new(log_bytes: u64) -> Self {
        Counters {
            syncs: AtomicU64::new(0),
            sync_nanos: AtomicU64::new(0),
            appends: AtomicU64::new(0),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(log_bytes),
            last_group_batches: AtomicU64::new(0),
            last_group_bytes: AtomicU64::new(0),
            snapshots_saved: AtomicU64::new(0),
            snapshots_dropped: AtomicU64::new(0),
            sled_flushes: AtomicU64::new(0),
            index_errors: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    pub(crate) fn record_group(&self, took: Duration, batches: u64, records: u64, bytes: u64) {
        self.syncs.fetch_add(1, Relaxed);
        self.sync_nanos
            .fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Relaxed);
        self.appends.fetch_add(batches, Relaxed);
        self.records.fetch_add(records, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
        self.last_group_batches.store(batches, Relaxed);
        self.last_group_bytes.store(bytes, Relaxed);
        let secs = took.as_secs_f64();
        let i = SYNC_LATENCY_BOUNDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(SYNC_LATENCY_BOUNDS.len());
        self.buckets[i].fetch_add(1, Relaxed);
    }

    pub(crate) fn read(&self) -> StoreStats {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let sum_seconds = Duration::from_nanos(self.sync_nanos.load(Relaxed)).as_secs_f64();
        StoreStats {
            syncs: self.syncs.load(Relaxed),
            sync_seconds_total: sum_seconds,
            appends: self.appends.load(Relaxed),
            records: self.records.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            last_group_batches: self.last_group_batches.load(Relaxed),
            last_group_bytes: self.last_group_bytes.load(Relaxed),
            snapshots_saved: self.snapshots_saved.load(Relaxed),
            snapshots_dropped: self.snapshots_dropped.load(Relaxed),
            sled_flushes: self.sled_flushes.load(Relaxed),
            index_errors: self.index_errors.load(Relaxed),
            sync_latency: LatencyHistogram {
                bounds: &SYNC_LATENCY_BOUNDS,
                count: counts.iter().sum(),
                counts,
                sum_seconds,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_cumulative_counts() {
        let c = Counters::new(0);
        c.record_group(Duration::from_micros(40), 1, 1, 10);
        c.record_group(Duration::from_micros(700), 3, 4, 10);
        c.record_group(Duration::from_secs(9), 2, 2, 10);
        let s = c.read();
        assert_eq!(
            (s.syncs, s.appends, s.records, s.bytes, s.last_group_batches),
            (3, 6, 7, 30, 2)
        );
        let h = &s.sync_latency;
        assert_eq!(h.count, 3);
        assert_eq!(h.count_le(0.00005), 1);
        assert_eq!(h.count_le(0.0005), 1);
        assert_eq!(h.count_le(0.001), 2);
        assert_eq!(h.count_le(5.0), 2);
        assert_eq!(h.cumulative().last(), Some(&(f64::INFINITY, 3)));
    }
}
