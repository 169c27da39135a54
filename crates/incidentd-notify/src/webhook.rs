//! Generic signed webhook adapter.
//!
//! `POST <url>` with `Content-Type: application/json` and the body
//!
//! ```json
//! {"id": "<idempotency key>", "type": "<event name>", "timestamp": 1764200000,
//!  "incident": {"id", "reference", "title", "team", "services", "severity", "status", "drill"},
//!  "version": 3, "headline": "...", "text": "...", "event": { the event as logged }}
//! ```
//!
//! Headers: `X-Incidentd-Delivery` (the idempotency key: the same on every
//! retry, so receivers drop repeats), `X-Incidentd-Event` (event name),
//! `X-Incidentd-Timestamp` (Unix seconds of this attempt, also `timestamp`
//! in the body) and, when the destination has a `secret`,
//! `X-Incidentd-Signature: sha256=<hex HMAC-SHA256(secret, body)>` — the
//! GitHub convention: the signature covers the raw body bytes, and the body
//! carries the timestamp, so a receiver can also refuse stale replays.

use crate::chat::destination_url;
use crate::message::Message;
use crate::transport::{Job, SendFuture, SendOk, Transport, send_json};
use hmac::{Hmac, Mac};
use incidentd_config::OrgConfig;
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::Arc;

pub const DELIVERY_HEADER: &str = "X-Incidentd-Delivery";
pub const SIGNATURE_HEADER: &str = "X-Incidentd-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Incidentd-Timestamp";
pub const EVENT_HEADER: &str = "X-Incidentd-Event";

pub struct Webhook {
    pub client: reqwest::Client,
    pub org: Arc<OrgConfig>,
}

/// `sha256=<lowercase hex of HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::from("sha256=");
    };
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

pub fn body(key: &str, m: &Message, timestamp: u64) -> Value {
    let event: Value = serde_json::from_str(&m.event_json).unwrap_or(Value::Null);
    json!({
        "id": key,
        "type": m.event,
        "timestamp": timestamp,
        "incident": {
            "id": m.incident_id,
            "reference": m.reference,
            "title": m.title,
            "team": m.team,
            "services": m.services,
            "severity": format!("SEV{}", m.severity.index() + 1),
            "status": m.status_word(),
            "drill": m.drill,
        },
        "version": m.version,
        "headline": m.headline,
        "text": m.body,
        "event": event,
    })
}

impl Transport for Webhook {
    fn send(&self, job: Job) -> SendFuture {
        let n = job.notification;
        let url = destination_url(&self.org, &n.destination);
        let secret = self
            .org
            .destination(&n.destination)
            .and_then(|d| d.secret.as_ref())
            .map(|s| s.expose().as_bytes().to_vec());
        let client = self.client.clone();
        Box::pin(async move {
            let url = url?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let bytes = serde_json::to_vec(&body(&n.key, &n.message, now)).unwrap_or_default();
            let mut req = client
                .post(url)
                .header(DELIVERY_HEADER, &n.key)
                .header(EVENT_HEADER, &n.message.event)
                .header(TIMESTAMP_HEADER, now.to_string());
            if let Some(secret) = secret {
                req = req.header(SIGNATURE_HEADER, signature(&secret, &bytes));
            }
            send_json(req, bytes).await?;
            Ok(SendOk::default())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc_4231_test_case_2() {
        // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
