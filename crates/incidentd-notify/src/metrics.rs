//! Notifier metrics, rendered into `/metrics` by the gateway: attempts by
//! adapter and outcome, queue depth, event-to-adapter-call and
//! event-to-delivered latency.

use crate::message::DestKind;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Latency buckets in seconds.
pub const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

#[derive(Debug, Default, Clone)]
pub struct Histogram {
    pub counts: [u64; BUCKETS.len()],
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, secs: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += secs;
    }

    fn render(&self, out: &mut String, name: &str) {
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i];
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

/// Outcomes of one attempt.
pub const OUTCOMES: [&str; 4] = ["delivered", "retried", "dead", "rate_limited"];

#[derive(Debug, Default)]
pub struct Metrics {
    /// [adapter kind][outcome]
    attempts: [[AtomicU64; OUTCOMES.len()]; DestKind::ALL.len()],
    pub queue_depth: AtomicU64,
    pub events_routed: AtomicU64,
    pub notifications_derived: AtomicU64,
    pub to_adapter: Mutex<Histogram>,
    pub to_delivered: Mutex<Histogram>,
}

impl Metrics {
    pub fn count(&self, kind: DestKind, outcome: &str) {
        let k = DestKind::ALL.iter().position(|d| *d == kind).unwrap_or(0);
        let o = OUTCOMES.iter().position(|x| *x == outcome).unwrap_or(0);
        self.attempts[k][o].fetch_add(1, Ordering::Relaxed);
    }

    pub fn attempts(&self, kind: DestKind, outcome: &str) -> u64 {
        let k = DestKind::ALL.iter().position(|d| *d == kind).unwrap_or(0);
        let o = OUTCOMES.iter().position(|x| *x == outcome).unwrap_or(0);
        self.attempts[k][o].load(Ordering::Relaxed)
    }

    pub fn observe(h: &Mutex<Histogram>, secs: f64) {
        match h.lock() {
            Ok(mut g) => g.observe(secs),
            Err(p) => p.into_inner().observe(secs),
        }
    }

    fn snapshot(h: &Mutex<Histogram>) -> Histogram {
        match h.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Prometheus text exposition (the series of deploy/README.md).
    pub fn render(&self, out: &mut String) {
        let name = "incidentd_notify_attempts_total";
        let _ = writeln!(out, "# HELP {name} Delivery attempts by destination kind and outcome.");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (k, kind) in DestKind::ALL.iter().enumerate() {
            for (o, outcome) in OUTCOMES.iter().enumerate() {
                let v = self.attempts[k][o].load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}{{kind=\"{}\",outcome=\"{outcome}\"}} {v}", kind.as_str());
            }
        }
        let gauges = [
            (
                "incidentd_notify_queue_depth",
                "gauge",
                "Notifications not yet delivered or dead.",
                &self.queue_depth,
            ),
            (
                "incidentd_notify_events_routed_total",
                "counter",
                "Incident events routed by the notifier.",
                &self.events_routed,
            ),
            (
                "incidentd_notify_notifications_total",
                "counter",
                "Notifications derived from events (one per destination).",
                &self.notifications_derived,
            ),
        ];
        for (name, ty, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {ty}");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }
        let hists = [
            (
                "incidentd_notify_dispatch_seconds",
                "Event persisted to its first adapter call.",
                &self.to_adapter,
            ),
            (
                "incidentd_notify_delivery_seconds",
                "Event persisted to delivered (retries included).",
                &self.to_delivered,
            ),
        ];
        for (name, help, h) in hists {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} histogram");
            Self::snapshot(h).render(out, name);
        }
    }
}
