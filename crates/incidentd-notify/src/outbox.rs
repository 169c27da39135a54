//! The outbox: delivery state as records on the store's `outbox.log`.
//!
//! Two records. `Derived` says "the event (incident, version) was routed and
//! caused these deliveries" (possibly none): the highest derived version per
//! incident is the outbox's durable cursor, and every logged event after it
//! is routed again on recovery. `State` records a delivery's progress
//! (attempts, state, last error, next attempt). Folding the log gives every
//! delivery's latest state; on open the log is compacted to that fold.

use crate::route::Notification;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not attempted yet.
    Pending,
    /// Attempted, failed, another attempt is scheduled.
    Retrying,
    /// The destination accepted it.
    Delivered,
    /// The retry budget is spent, or the destination refused it for good.
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, DeliveryState::Delivered | DeliveryState::Dead)
    }
}

/// A delivery's progress (times are wall-clock milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub state: DeliveryState,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub updated_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<i64>,
    /// What the destination called it (a Statuspage incident id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
}

/// One notification and its progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub notification: Notification,
    pub created_at: i64,
    pub progress: Progress,
}

impl Delivery {
    pub fn new(notification: Notification, now: i64) -> Delivery {
        Delivery {
            notification,
            created_at: now,
            progress: Progress {
                state: DeliveryState::Pending,
                attempts: 0,
                last_error: None,
                updated_at: now,
                next_attempt_at: None,
                delivered_at: None,
                remote_id: None,
            },
        }
    }

    pub fn key(&self) -> &str {
        &self.notification.key
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Record {
    Derived {
        incident: String,
        version: u64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        deliveries: Vec<Delivery>,
    },
    State {
        key: String,
        #[serde(flatten)]
        progress: Progress,
    },
    /// Compaction: how far each incident was derived.
    Cursors { cursors: BTreeMap<String, u64> },
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The outbox folded from its records.
#[derive(Debug, Default)]
pub struct Folded {
    /// Every delivery, by idempotency key.
    pub deliveries: HashMap<String, Delivery>,
    /// Creation order of the keys (the dispatch order on recovery).
    pub order: Vec<String>,
    /// Highest derived version per incident.
    pub cursors: BTreeMap<String, u64>,
    /// Records that could not be decoded (skipped, logged).
    pub undecodable: usize,
}

impl Folded {
    pub fn fold(records: &[Vec<u8>]) -> Folded {
        let mut f = Folded::default();
        for bytes in records {
            match serde_json::from_slice::<Record>(bytes) {
                Ok(r) => f.apply(r),
                Err(_) => f.undecodable += 1,
            }
        }
        f
    }

    pub fn apply(&mut self, r: Record) {
        match r {
            Record::Derived {
                incident,
                version,
                deliveries,
            } => {
                let c = self.cursors.entry(incident).or_default();
                *c = (*c).max(version);
                for d in deliveries {
                    if !self.deliveries.contains_key(d.key()) {
                        self.order.push(d.key().to_string());
                        self.deliveries.insert(d.key().to_string(), d);
                    }
                }
            }
            Record::State { key, progress } => {
                if let Some(d) = self.deliveries.get_mut(&key) {
                    d.progress = progress;
                }
            }
            Record::Cursors { cursors } => {
                for (k, v) in cursors {
                    let c = self.cursors.entry(k).or_default();
                    *c = (*c).max(v);
                }
            }
        }
    }

    /// The fold as few records: the cursors, then each delivery as derived
    /// with its latest progress, in creation order.
    pub fn compact(&self) -> Vec<Vec<u8>> {
        let mut out = vec![
            Record::Cursors {
                cursors: self.cursors.clone(),
            }
            .encode(),
        ];
        for key in &self.order {
            if let Some(d) = self.deliveries.get(key) {
                out.push(
                    Record::Derived {
                        incident: d.notification.incident.clone(),
                        version: d.notification.version,
                        deliveries: vec![d.clone()],
                    }
                    .encode(),
                );
            }
        }
        out
    }
}
