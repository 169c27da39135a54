//! The outbox: delivery state as records on the store's `outbox.log`.
//!
//! Two records. `Derived` says "the event (incident, version) was routed and
//! caused these deliveries" (possibly none): the highest derived version per
//! incident is the outbox's durable cursor, and every logged event after it
//! is routed again on recovery. `State` records a delivery's progress
//! (attempts, state, last error, next attempt). Folding the log gives every
//! delivery's latest state; on open the log is compacted to that fold.
//! A delivery's record holds its target and headline, not its message: the
//! message of an incident's event is derived again from the event log when
//! it is sent (`Stored`).

use crate::message::{DestKind, Message};
use crate::route::{Addressed, Notification};
use incidentd_domain::IncidentId;
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

/// One notification's target and progress: what the hub keeps of every
/// delivery. The message itself is not kept: an incident's notification is
/// derived again from the logged event when it is about to be sent
/// (`route` is a pure function of the log and the config); only the
/// headline stays, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Idempotency key: `<incident id>:<version>:<destination>`.
    pub key: String,
    pub incident: String,
    pub version: u64,
    pub destination: String,
    pub kind: DestKind,
    /// Mail recipients (email destinations only).
    pub to: Vec<String>,
    pub headline: String,
    pub created_at: i64,
    pub progress: Progress,
}

impl Delivery {
    pub fn new(n: &Notification, now: i64) -> Delivery {
        Delivery {
            key: n.key.clone(),
            incident: n.incident.clone(),
            version: n.version,
            destination: n.destination.clone(),
            kind: n.kind,
            to: n.to.clone(),
            headline: n.message.headline.clone(),
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
        &self.key
    }

    /// `message` for this delivery's destination, under its key.
    pub fn addressed<M>(&self, message: M) -> Addressed<M> {
        Addressed {
            key: self.key.clone(),
            incident: self.incident.clone(),
            version: self.version,
            destination: self.destination.clone(),
            kind: self.kind,
            to: self.to.clone(),
            message,
        }
    }

    /// Whether its notification can be derived again from the event log:
    /// an incident's event can; a pseudo-incident's notice (`digest/…`,
    /// `drill/…`) cannot, so the outbox keeps its message.
    pub fn derivable(&self) -> bool {
        IncidentId::parse(&self.incident).is_some()
    }
}

/// A delivery as `outbox.log` holds it: the message only where it cannot
/// be derived again. Records written before messages were dropped carry
/// the full message, which is read back as the payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    notification: Addressed<StoredMessage>,
    created_at: i64,
    progress: Progress,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum StoredMessage {
    Full(Box<Message>),
    Headline { headline: String },
}

impl Stored {
    /// `payload` is written only for a delivery that is not derivable.
    pub fn new(d: &Delivery, payload: Option<&Notification>) -> Stored {
        let message = match payload.filter(|_| !d.derivable()) {
            Some(n) => StoredMessage::Full(Box::new(n.message.clone())),
            None => StoredMessage::Headline {
                headline: d.headline.clone(),
            },
        };
        Stored {
            notification: d.addressed(message),
            created_at: d.created_at,
            progress: d.progress.clone(),
        }
    }

    /// The delivery, and its notification where the record holds the message.
    pub fn into_parts(self) -> (Delivery, Option<Notification>) {
        let n = self.notification;
        let (headline, message) = match n.message {
            StoredMessage::Full(m) => (m.headline.clone(), Some(m)),
            StoredMessage::Headline { headline } => (headline, None),
        };
        let d = Delivery {
            key: n.key,
            incident: n.incident,
            version: n.version,
            destination: n.destination,
            kind: n.kind,
            to: n.to,
            headline,
            created_at: self.created_at,
            progress: self.progress,
        };
        let payload = message.map(|m| d.addressed(*m));
        (d, payload)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Record {
    Derived {
        incident: String,
        version: u64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        deliveries: Vec<Stored>,
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
    /// The messages the records hold (deliveries that are not derivable).
    pub payloads: HashMap<String, Notification>,
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
                for stored in deliveries {
                    let (d, payload) = stored.into_parts();
                    if !self.deliveries.contains_key(d.key()) {
                        self.order.push(d.key().to_string());
                        if let Some(n) = payload {
                            self.payloads.insert(d.key().to_string(), n);
                        }
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
                        incident: d.incident.clone(),
                        version: d.version,
                        deliveries: vec![Stored::new(d, self.payloads.get(key))],
                    }
                    .encode(),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "01KB0000000000000000000000";

    fn record(incident: &str, message: &str) -> Vec<u8> {
        format!(
            r#"{{"t":"derived","incident":"{incident}","version":1,"deliveries":[{{"notification":{{"key":"{incident}:1:hook","incident":"{incident}","version":1,"destination":"hook","kind":"webhook","message":{message}}},"created_at":5,"progress":{{"state":"pending","attempts":0,"updated_at":5}}}}]}}"#
        )
        .into_bytes()
    }

    const FULL: &str = r#"{"incident_id":"x","reference":"INC-1","title":"t","team":"payments","services":[],"severity":"Sev1","status":"Investigating","drill":false,"version":1,"event":"declared","headline":"INC-1 declared","body":"b","fields":[],"mentions":[],"at":0,"event_json":"{}"}"#;

    #[test]
    fn records_keep_a_message_only_where_it_cannot_be_derived_again() {
        // A record from before messages were dropped: the message comes back as the payload.
        let f = Folded::fold(&[record(ID, FULL), record("digest/payments", FULL)]);
        assert_eq!(f.undecodable, 0);
        let d = &f.deliveries[&format!("{ID}:1:hook")];
        assert_eq!((d.headline.as_str(), d.created_at), ("INC-1 declared", 5));
        assert_eq!(f.payloads.len(), 2);
        // Compacted: the incident's message is dropped, the digest's kept.
        let again = Folded::fold(&f.compact());
        assert_eq!(again.deliveries.len(), 2);
        assert_eq!(again.deliveries[&format!("{ID}:1:hook")], *d);
        let kept: Vec<&String> = again.payloads.keys().collect();
        assert_eq!(kept, ["digest/payments:1:hook"]);
        assert_eq!(again.payloads["digest/payments:1:hook"].message.body, "b");
        // A headline-only record reads back as one.
        let slim = Folded::fold(&[record(ID, r#"{"headline":"h"}"#)]);
        assert_eq!(slim.deliveries[&format!("{ID}:1:hook")].headline, "h");
        assert!(slim.payloads.is_empty());
    }
}
