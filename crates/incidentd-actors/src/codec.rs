//! Stored forms. Events, snapshots and idempotent replies are JSON behind a
//! one-byte format version, so the format can evolve without guessing.

use crate::error::{Error, Result};
use incidentd_domain::{Event, Incident, TimelineEntry, Update};
use serde::{Deserialize, Serialize};

const FORMAT_V1: u8 = 1;

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(FORMAT_V1);
    // Serialising these plain data types into a Vec cannot fail.
    if serde_json::to_writer(&mut out, value).is_err() {
        out.truncate(1);
    }
    out
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T> {
    match bytes.split_first() {
        Some((&FORMAT_V1, json)) => {
            serde_json::from_slice(json).map_err(|e| Error::Internal(format!("corrupt stored {what}: {e}")))
        }
        Some((v, _)) => Err(Error::Internal(format!("stored {what} has unknown format version {v}"))),
        None => Err(Error::Internal(format!("stored {what} is empty"))),
    }
}

pub fn encode_event(e: &Event) -> Vec<u8> {
    encode(e)
}

pub fn decode_event(bytes: &[u8]) -> Result<Event> {
    decode(bytes, "event")
}

/// The JSON of an event without the format byte (what watchers get).
pub fn event_json(bytes: &[u8]) -> &str {
    bytes.get(1..).and_then(|j| std::str::from_utf8(j).ok()).unwrap_or("{}")
}

pub fn encode_snapshot(s: &Incident) -> Vec<u8> {
    encode(s)
}

pub fn decode_snapshot(bytes: &[u8]) -> Result<Incident> {
    decode(bytes, "snapshot")
}

/// What a mutating call answers; stored so a retried `request_id` gets the first answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// The incident after the change, without timeline and updates (see `summary_of`).
    Incident(Box<Incident>),
    Entry(TimelineEntry),
    Update(Box<Update>),
}

pub fn encode_reply(r: &Reply) -> Vec<u8> {
    encode(r)
}

pub fn decode_reply(bytes: &[u8]) -> Result<Reply> {
    decode(bytes, "reply")
}

/// The incident without its timeline and updates: what lists and replies carry.
pub fn summary_of(s: &Incident) -> Incident {
    Incident {
        id: s.id,
        number: s.number,
        title: s.title.clone(),
        team: s.team.clone(),
        services: s.services.clone(),
        summary: s.summary.clone(),
        severity: s.severity,
        status: s.status,
        drill: s.drill,
        roster: s.roster.clone(),
        impact: s.impact.clone(),
        customer_impact_percent: s.customer_impact_percent,
        data_loss: s.data_loss,
        regulatory: s.regulatory,
        declared_at: s.declared_at,
        severity_set_at: s.severity_set_at,
        acknowledged_at: s.acknowledged_at,
        acknowledged_by: s.acknowledged_by.clone(),
        mitigated_at: s.mitigated_at,
        resolved_at: s.resolved_at,
        last_internal_update_at: s.last_internal_update_at,
        promised_next_update_at: s.promised_next_update_at,
        timeline: Vec::new(),
        updates: Vec::new(),
        version: s.version,
        last_event_at: s.last_event_at,
        severity_confirmed: s.severity_confirmed,
        checklist: s.checklist.clone(),
        escalations: s.escalations.clone(),
        phases: s.phases.clone(),
        update_reminded_at: s.update_reminded_at,
        stakeholders_notified_at: s.stakeholders_notified_at,
        review_reminded_at: s.review_reminded_at,
        component_overrides: s.component_overrides.clone(),
        review: s.review.clone(),
        internal_updates: s.internal_updates,
        internal_updates_on_time: s.internal_updates_on_time,
        drill_script: s.drill_script.clone(),
        role_history: s.role_history.clone(),
        // Alerts stay out of summaries like the timeline; the key stays (dedup index rebuild).
        alerts: Default::default(),
        alert_key: s.alert_key.clone(),
    }
}
