//! What the three alert edges share (issue 6): the Alertmanager webhook
//! (`alertmanager.rs`), the PagerDuty Events v2 endpoint (`pagerduty.rs`) and
//! the gRPC `AlertService` (`alert_grpc.rs`).
//!
//! * **Integrations**: secrets are never stored, only their SHA-256; a
//!   presented bearer token or routing key is hashed and looked up. The table
//!   is built by the server from `[[integrations]]` (and `[[tokens]]` bound to
//!   an integration with scope `ingest`).
//! * **Back-pressure**: at most `MAX_IN_FLIGHT` notifications are being made
//!   durable at once; beyond that the edges answer 429 / RESOURCE_EXHAUSTED
//!   at once instead of queueing without bound.
//! * **JSON field access** that names the offending field
//!   (`alerts[2].labels.team: must be a string`), and RFC 3339 parsing.

use crate::json::{Json, Obj};
use incidentd_actors::{Alerts, Error, Ingested, Outcome};
use incidentd_domain::{self as d, AlertIntake, AlertRules, RouteDefaults};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

/// Notifications being made durable at once, over all edges.
pub const MAX_IN_FLIGHT: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Alertmanager,
    PagerDuty,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Alertmanager => "alertmanager",
            SourceKind::PagerDuty => "pagerduty",
        }
    }
}

/// One `[[integrations]]` entry, as the edges need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationRoute {
    pub id: String,
    pub kind: SourceKind,
    /// Team of its alerts when their labels name none.
    pub team: String,
    pub rules: AlertRules,
}

/// Secret digest → integration, plus the org's routing defaults.
#[derive(Debug, Clone, Default)]
pub struct Integrations {
    by_digest: HashMap<[u8; 32], Arc<IntegrationRoute>>,
    pub default_team: String,
    pub unclear_severity: d::Severity,
}

pub fn sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl Integrations {
    pub fn new(default_team: String, unclear_severity: d::Severity) -> Integrations {
        Integrations {
            by_digest: HashMap::new(),
            default_team,
            unclear_severity,
        }
    }

    /// Registers a secret digest (an integration's own, or an ingest token's) for a route.
    pub fn insert(&mut self, digest: [u8; 32], route: Arc<IntegrationRoute>) {
        self.by_digest.insert(digest, route);
    }

    /// The integration whose secret this is.
    pub fn find(&self, secret: &str) -> Option<Arc<IntegrationRoute>> {
        if secret.is_empty() {
            return None;
        }
        self.by_digest.get(&sha256(secret)).cloned()
    }
}

/// Outcome counters for `/metrics`.
#[derive(Debug, Default)]
pub struct AlertCounters {
    pub created: AtomicU64,
    pub deduplicated: AtomicU64,
    pub ignored: AtomicU64,
    pub rejected: AtomicU64,
}

/// The alert ingestion core behind every edge. Cheap to clone.
#[derive(Clone)]
pub struct AlertIngest {
    alerts: Alerts,
    integrations: Arc<std::sync::RwLock<Arc<Integrations>>>,
    in_flight: Arc<Semaphore>,
    pub counters: Arc<AlertCounters>,
}

impl AlertIngest {
    pub fn new(alerts: Alerts, integrations: Integrations) -> AlertIngest {
        AlertIngest {
            alerts,
            integrations: Arc::new(std::sync::RwLock::new(Arc::new(integrations))),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            counters: Arc::default(),
        }
    }

    pub fn integrations(&self) -> Arc<Integrations> {
        match self.integrations.read() {
            Ok(i) => i.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A reloaded config's integrations, from the next alert on.
    pub fn set_integrations(&self, integrations: Integrations) {
        match self.integrations.write() {
            Ok(mut i) => *i = Arc::new(integrations),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(integrations),
        }
    }

    /// A slot for one notification, or `Overloaded` (429 / RESOURCE_EXHAUSTED) at once.
    pub fn permit(&self) -> Result<OwnedSemaphorePermit, Error> {
        self.in_flight.clone().try_acquire_owned().map_err(|_| {
            Error::Overloaded(format!(
                "{MAX_IN_FLIGHT} alert notifications are being stored; retry later"
            ))
        })
    }

    /// Waits for a slot (streams: back-pressure through flow control, not refusals).
    pub async fn permit_wait(&self) -> Result<OwnedSemaphorePermit, Error> {
        self.in_flight
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::ShuttingDown)
    }

    /// Completes what an edge parsed with the integration's source, defaults and rules.
    pub fn intake(&self, route: &IntegrationRoute, parsed: AlertIntake) -> AlertIntake {
        crate::auth::note_actor(&format!("integration:{}", route.id));
        let integrations = self.integrations();
        AlertIntake {
            source: route.id.clone(),
            defaults: RouteDefaults {
                integration_team: route.team.clone(),
                default_team: integrations.default_team.clone(),
                unclear_severity: integrations.unclear_severity,
            },
            rules: route.rules.clone(),
            ..parsed
        }
    }

    /// Submits now (order per key is kept), resolves when durable; counts the outcome.
    pub fn submit(&self, intake: AlertIntake) -> impl Future<Output = Result<Ingested, Error>> + Send + 'static {
        let fut = self.alerts.submit(intake);
        let counters = self.counters.clone();
        async move {
            let r = fut.await;
            let c = match &r {
                Ok(i) => match i.outcome {
                    Outcome::Created => &counters.created,
                    Outcome::Deduplicated => &counters.deduplicated,
                    Outcome::Ignored => &counters.ignored,
                },
                Err(Error::Domain(_)) => &counters.rejected,
                Err(_) => return r,
            };
            c.fetch_add(1, Ordering::Relaxed);
            r
        }
    }

    pub fn count_rejected(&self) {
        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text of the counters.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP incidentd_alerts_total Alert notifications by outcome (created an incident, went to an existing one, ignored, rejected)."
        );
        let _ = writeln!(out, "# TYPE incidentd_alerts_total counter");
        let c = &self.counters;
        for (outcome, v) in [
            ("created", &c.created),
            ("deduplicated", &c.deduplicated),
            ("ignored", &c.ignored),
            ("rejected", &c.rejected),
        ] {
            let _ = writeln!(
                out,
                "incidentd_alerts_total{{outcome=\"{outcome}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
    }
}

/// The secret of an `authorization: Bearer <secret>` value.
pub fn bearer(value: Option<&str>) -> Option<&str> {
    let v = value?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|s| !s.is_empty())
}

pub fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Created => "created",
        Outcome::Deduplicated => "deduplicated",
        Outcome::Ignored => "ignored",
    }
}

/// A JSON answer.
pub fn json_response(code: axum::http::StatusCode, body: &impl serde::Serialize) -> axum::response::Response {
    use axum::response::IntoResponse;
    // Serializing plain data into a Vec cannot fail; an empty object would be the fallback.
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    (code, [(axum::http::header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// The answer to an accepted notification or event (both HTTP edges).
#[derive(serde::Serialize)]
pub struct Accepted<'a> {
    pub status: &'static str,
    pub message: &'a str,
    /// PagerDuty's field: the event's dedup key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<&'a str>,
    pub incident_id: Option<String>,
    pub incident_number: Option<u64>,
    pub outcome: &'static str,
}

impl<'a> Accepted<'a> {
    pub fn of(done: &'a Ingested, message: &'a str, dedup_key: Option<&'a str>) -> Accepted<'a> {
        Accepted {
            status: "success",
            message,
            dedup_key,
            incident_id: done.incident.map(|i| i.to_string()),
            incident_number: done.number,
            outcome: outcome_name(done.outcome),
        }
    }
}

// ---- JSON fields that name themselves ------------------------------------

/// An object, or `INVALID_ARGUMENT` naming `path`.
pub fn object<'a, 'b>(v: &'b Json<'a>, path: &str) -> Result<&'b Obj<'a>, Status> {
    match v {
        Json::Object(m) => Ok(m),
        other => Err(crate::error::invalid(
            path,
            format!("must be an object, got {}", kind_of(other)),
        )),
    }
}

/// An optional string field (absent or `null` → `None`).
pub fn opt_str<'b>(m: &'b Obj<'_>, name: &str, path: &str) -> Result<Option<&'b str>, Status> {
    match m.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.as_ref())),
        Some(other) => Err(crate::error::invalid(
            &join(path, name),
            format!("must be a string, got {}", kind_of(other)),
        )),
    }
}

/// A required, non-blank string field.
pub fn req_str<'b>(m: &'b Obj<'_>, name: &str, path: &str) -> Result<&'b str, Status> {
    match opt_str(m, name, path)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        Some(_) => Err(crate::error::invalid(&join(path, name), "must not be empty")),
        None => Err(crate::error::invalid(&join(path, name), "is required")),
    }
}

/// An optional object of string values (labels, annotations), checked
/// without copying anything. The field's path is only spelled out for an error.
pub fn opt_str_object<'b, 'a>(m: &'b Obj<'a>, name: &str, path: &str) -> Result<Option<&'b Obj<'a>>, Status> {
    match m.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Object(obj)) => {
            if let Some((k, other)) = obj.iter().find(|(_, v)| !matches!(v, Json::String(_))) {
                return Err(crate::error::invalid(
                    &format!("{}.{k}", join(path, name)),
                    format!("must be a string, got {}", kind_of(other)),
                ));
            }
            Ok(Some(obj))
        }
        Some(other) => Err(crate::error::invalid(
            &join(path, name),
            format!("must be an object, got {}", kind_of(other)),
        )),
    }
}

/// The string at `key` of an object checked by [`opt_str_object`].
pub fn str_at<'b>(obj: Option<&'b Obj<'_>>, key: &str) -> Option<&'b str> {
    match obj?.get(key)? {
        Json::String(s) => Some(s.as_ref()),
        _ => None,
    }
}

/// An optional object of string values, as owned labels.
pub fn opt_labels(m: &Obj<'_>, name: &str, path: &str) -> Result<BTreeMap<String, String>, Status> {
    let Some(obj) = opt_str_object(m, name, path)? else {
        return Ok(BTreeMap::new());
    };
    Ok(obj
        .iter()
        .filter_map(|(k, v)| match v {
            Json::String(s) => Some((k.to_string(), s.to_string())),
            _ => None,
        })
        .collect())
}

pub fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

pub fn kind_of(v: &Json<'_>) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Parses a JSON body, naming the problem (`body: malformed JSON at line 1 column 7: ...`).
pub fn parse_json(body: &[u8]) -> Result<Json<'_>, Status> {
    if body.is_empty() {
        return Err(crate::error::invalid("body", "is empty; expected a JSON object"));
    }
    Json::parse(body).map_err(|e| crate::error::invalid("body", format!("malformed JSON: {e}")))
}

/// At most `max` characters (an ellipsis marks a cut).
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

// ---- time ------------------------------------------------------------------

/// Parses RFC 3339 / ISO 8601 date-times as sources send them:
/// `2026-11-26T18:57:27Z`, `...27.123456789+02:00`, `...27.315+0000`.
pub fn parse_time(s: &str) -> Option<d::Timestamp> {
    let b = s.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &b[start..i.min(start + 3)];
        let mut ms = 0i64;
        for (n, c) in digits.iter().enumerate() {
            ms += i64::from(c - b'0') * [100, 10, 1][n];
        }
        millis = ms;
    }
    let offset_secs = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) => {
            let rest = &b[i + 1..];
            let (h, m) = match rest.len() {
                5 if rest[2] == b':' => (num(i + 1..i + 3)?, num(i + 4..i + 6)?),
                4 => (num(i + 1..i + 3)?, num(i + 3..i + 5)?),
                2 => (num(i + 1..i + 3)?, 0),
                _ => return None,
            };
            let s = h * 3600 + m * 60;
            if *sign == b'-' { -s } else { s }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month as u32, day as u32);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec.min(59) - offset_secs;
    Some(d::Timestamp(secs * 1000 + millis))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of the
/// domain's `civil_from_days`, same era-based method).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_times_sources_send() {
        let t = |s: &str| parse_time(s).map(|t| t.to_string());
        assert_eq!(t("2026-11-26T18:57:27Z").as_deref(), Some("2026-11-26T18:57:27Z"));
        assert_eq!(
            parse_time("2026-11-26T18:57:27.5Z"),
            Some(d::Timestamp(1_795_719_447_500))
        );
        assert_eq!(
            parse_time("2021-10-12T09:51:03.157076+02:00"),
            parse_time("2021-10-12T07:51:03.157Z")
        );
        assert_eq!(
            parse_time("2015-07-17T08:42:58.315+0000"),
            parse_time("2015-07-17T08:42:58.315Z")
        );
        assert_eq!(t("2000-02-29T00:00:00Z").as_deref(), Some("2000-02-29T00:00:00Z"));
        assert!(parse_time("0001-01-01T00:00:00Z").is_some_and(|t| t.0 < 0));
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-26T18:57:27",
            "2026-11-26T18:57:27.Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }
}
