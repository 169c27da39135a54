//! Prometheus text exposition, written by hand: a few counters and
//! fixed-bucket histograms do not justify a metrics framework. Counters are
//! atomics or a short mutex; nothing here is on an actor's critical path.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Latency buckets in seconds (upper bounds).
pub const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Clone, Default)]
pub struct Histogram {
    pub counts: [u64; BUCKETS.len()],
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }

    /// Writes `name_bucket`, `name_sum`, `name_count` with the given labels.
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}", self.counts[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Default)]
pub struct RpcMetrics {
    inner: Mutex<RpcInner>,
}

#[derive(Default)]
struct RpcInner {
    requests: BTreeMap<(&'static str, &'static str), u64>,
    latency: BTreeMap<&'static str, Histogram>,
}

impl RpcMetrics {
    pub fn observe(&self, method: &'static str, code: tonic::Code, elapsed: Duration) {
        let mut g = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *g.requests.entry((method, code_name(code))).or_default() += 1;
        g.latency.entry(method).or_default().observe(elapsed.as_secs_f64());
    }

    pub fn render(&self, out: &mut String) {
        let g = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let _ = writeln!(
            out,
            "# HELP incidentd_rpc_requests_total gRPC requests by method and status code."
        );
        let _ = writeln!(out, "# TYPE incidentd_rpc_requests_total counter");
        for ((m, c), n) in &g.requests {
            let _ = writeln!(out, "incidentd_rpc_requests_total{{method=\"{m}\",code=\"{c}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP incidentd_rpc_duration_seconds gRPC handling latency by method."
        );
        let _ = writeln!(out, "# TYPE incidentd_rpc_duration_seconds histogram");
        for (m, h) in &g.latency {
            h.render(out, "incidentd_rpc_duration_seconds", &format!("method=\"{m}\""));
        }
    }
}

pub fn code_name(c: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match c {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}
