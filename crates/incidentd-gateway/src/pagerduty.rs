//! `POST /v2/enqueue`: PagerDuty Events API v2, so tools that can send to
//! PagerDuty can point here unchanged. `routing_key` selects a `pagerduty`
//! integration; `dedup_key` is the incident; `event_action` is
//! trigger / acknowledge / resolve.
//!
//! Answers as PagerDuty does: `202 {"status":"success","message":"Event
//! processed","dedup_key":...}` once durable; `400 {"status":"invalid
//! event","message":"Event object is invalid","errors":[...]}` naming every
//! bad field; `429` under back-pressure. A follow-up on a closed key is
//! accepted (202) and its message says it was ignored.

use crate::http::HttpState;
use crate::ingest::{self, Integrations, SourceKind, kind_of, object, opt_str};
use crate::json::{Json, Obj};
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use incidentd_actors::Outcome;
use incidentd_domain::{self as d, AlertAction, AlertIntake, AlertSignal, alert::limits};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// PagerDuty's own limit on one event.
pub const MAX_BODY: usize = 512 * 1024;

pub async fn enqueue(State(st): State<HttpState>, body: Body) -> Response {
    let Some(ingest) = st.alerts.get().cloned() else {
        return respond(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "message": "not ready: recovering"}),
        );
    };
    let _permit = match ingest.permit() {
        Ok(p) => p,
        Err(_) => {
            return respond(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"status": "throttle event", "message": "Requests are arriving too quickly. Please retry later."}),
            );
        }
    };
    let parsed = match crate::http::read_body(body, MAX_BODY).await {
        Ok(bytes) => parse_body(&ingest.integrations(), &bytes),
        Err(s) => Err(vec![s.message().to_string()]),
    };
    let (route, dedup_key, notification) = match parsed {
        Ok(p) => p,
        Err(errors) => {
            ingest.count_rejected();
            return invalid(errors);
        }
    };
    let intake = ingest.intake(&route, notification);
    match ingest.submit(intake).await {
        Ok(done) => {
            let message = match done.outcome {
                Outcome::Ignored => format!("Event processed; {}", done.message),
                _ => "Event processed".to_string(),
            };
            ingest::json_response(
                StatusCode::ACCEPTED,
                &ingest::Accepted::of(&done, &message, Some(&dedup_key)),
            )
        }
        Err(incidentd_actors::Error::Domain(e)) if e.kind == d::ErrorKind::InvalidArgument => {
            invalid(vec![e.to_string()])
        }
        Err(e) => {
            let s = crate::error::status(e);
            respond(
                crate::error::http_status(s.code()),
                json!({"status": "error", "message": s.message()}),
            )
        }
    }
}

fn respond(code: StatusCode, body: Value) -> Response {
    ingest::json_response(code, &body)
}

fn invalid(errors: Vec<String>) -> Response {
    respond(
        StatusCode::BAD_REQUEST,
        json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors}),
    )
}

type Parsed = (std::sync::Arc<ingest::IntegrationRoute>, String, AlertIntake);

/// Validates one event body as received (also the fuzz targets' entry point).
pub fn parse_body(integrations: &Integrations, body: &[u8]) -> Result<Parsed, Vec<String>> {
    let v = ingest::parse_json(body).map_err(|s| vec![s.message().to_string()])?;
    parse(integrations, &v)
}

/// Validates one event, collecting every problem (PagerDuty answers all at once).
pub fn parse(integrations: &Integrations, v: &Json<'_>) -> Result<Parsed, Vec<String>> {
    let top = object(v, "body").map_err(|s| vec![s.message().to_string()])?;
    let mut errors = Vec::new();
    let routing_key = collect(opt_str(top, "routing_key", ""), &mut errors);
    let action = collect(opt_str(top, "event_action", ""), &mut errors);
    let dedup_key = collect(opt_str(top, "dedup_key", ""), &mut errors);
    let route = match routing_key {
        None | Some("") => {
            errors.push("routing_key: is required".into());
            None
        }
        Some(k) => match integrations.find(k) {
            Some(r) if r.kind == SourceKind::PagerDuty => Some(r),
            Some(r) => {
                errors.push(format!(
                    "routing_key: belongs to integration {:?} of kind {}, not pagerduty",
                    r.id,
                    r.kind.as_str()
                ));
                None
            }
            None => {
                errors.push("routing_key: unknown routing key (no pagerduty [[integrations]] has this secret)".into());
                None
            }
        },
    };
    let action = match action {
        Some("trigger") => Some(AlertAction::Trigger),
        Some("acknowledge") => Some(AlertAction::Acknowledge),
        Some("resolve") => Some(AlertAction::Resolve),
        Some(other) => {
            errors.push(format!(
                "event_action: must be trigger, acknowledge or resolve, got {other:?}"
            ));
            None
        }
        None => {
            errors.push("event_action: is required (trigger, acknowledge or resolve)".into());
            None
        }
    };
    let dedup_key = match dedup_key.map(str::trim).filter(|k| !k.is_empty()) {
        Some(k) if k.len() > limits::KEY_MAX_BYTES => {
            errors.push(format!("dedup_key: at most {} characters", limits::KEY_MAX_BYTES));
            None
        }
        Some(k) => Some(k.to_string()),
        None if action == Some(AlertAction::Trigger) => Some(ulid::Ulid::generate().to_string()),
        None => {
            if action.is_some() {
                errors.push("dedup_key: is required to acknowledge or resolve".into());
            }
            None
        }
    };
    let payload = match (action, top.get("payload")) {
        (Some(AlertAction::Trigger), None | Some(Json::Null)) => {
            errors.push("payload: is required to trigger".into());
            None
        }
        (_, None | Some(Json::Null)) => None,
        (_, Some(Json::Object(p))) => Some(p),
        (_, Some(other)) => {
            errors.push(format!("payload: must be an object, got {}", kind_of(other)));
            None
        }
    };
    let details = match payload {
        Some(p) => payload_fields(p, action == Some(AlertAction::Trigger), &mut errors),
        None => PayloadFields::default(),
    };
    match (route, action, dedup_key) {
        (Some(route), Some(action), Some(key)) if errors.is_empty() => {
            let signal = AlertSignal {
                action,
                fingerprint: key.clone(),
                labels: details.labels.clone(),
                summary: details.summary.clone(),
                started_at: details.timestamp,
                ended_at: None,
            };
            let notification = AlertIntake {
                key: key.clone(),
                signals: vec![signal],
                title: details.summary.clone(),
                summary: details.summary,
                labels: details.labels,
                // Severity from the labels: custom_details.incident_severity first, then payload.severity.
                ..Default::default()
            };
            Ok((route, key, notification))
        }
        _ => Err(errors),
    }
}

#[derive(Default)]
struct PayloadFields {
    summary: String,
    timestamp: Option<d::Timestamp>,
    labels: BTreeMap<String, String>,
}

fn payload_fields(p: &Obj<'_>, trigger: bool, errors: &mut Vec<String>) -> PayloadFields {
    let mut out = PayloadFields::default();
    let mut get = |name: &str| {
        collect(opt_str(p, name, "payload"), errors)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let summary = get("summary");
    let source = get("source");
    let severity = get("severity");
    let timestamp = get("timestamp");
    let optional = [
        ("component", get("component")),
        ("group", get("group")),
        ("class", get("class")),
    ];
    match summary {
        Some(s) if s.chars().count() > limits::SUMMARY_MAX_CHARS => errors.push(format!(
            "payload.summary: at most {} characters",
            limits::SUMMARY_MAX_CHARS
        )),
        Some(s) => out.summary = s.to_string(),
        None if trigger => errors.push("payload.summary: is required to trigger".into()),
        None => {}
    }
    match source {
        Some(s) => {
            out.labels.insert("source".into(), s.to_string());
        }
        None if trigger => errors.push("payload.source: is required to trigger".into()),
        None => {}
    }
    match severity {
        Some(s) => match d::alert::parse_monitoring_severity(s) {
            Some(_) => {
                out.labels.insert("severity".into(), s.to_string());
            }
            None => errors.push(format!(
                "payload.severity: must be critical, error, warning or info, got {s:?}"
            )),
        },
        None if trigger => errors.push("payload.severity: is required to trigger".into()),
        None => {}
    }
    if let Some(t) = timestamp {
        match ingest::parse_time(t) {
            Some(ts) => out.timestamp = Some(ts),
            None => errors.push(format!("payload.timestamp: {t:?} is not an ISO 8601 date-time")),
        }
    }
    for (name, v) in optional {
        if let Some(v) = v {
            out.labels.insert(name.into(), v.to_string());
        }
    }
    // custom_details: scalar entries become labels (team, service, incident_severity route).
    match p.get("custom_details") {
        None | Some(Json::Null) => {}
        Some(Json::Object(m)) => {
            for (k, v) in m {
                let text = match v {
                    Json::String(s) => s.to_string(),
                    Json::Number(n) => n.to_string(),
                    Json::Bool(b) => b.to_string(),
                    _ => continue,
                };
                if out.labels.len() >= limits::LABELS_MAX {
                    break;
                }
                if !k.is_empty() && k.len() <= limits::LABEL_NAME_MAX_BYTES {
                    out.labels
                        .entry(k.to_string())
                        .or_insert_with(|| ingest::clip(&text, limits::LABEL_VALUE_MAX_BYTES / 4));
                }
            }
        }
        Some(Json::String(s)) => {
            out.labels
                .insert("details".into(), ingest::clip(s, limits::LABEL_VALUE_MAX_BYTES / 4));
        }
        Some(other) => errors.push(format!(
            "payload.custom_details: must be an object or a string, got {}",
            kind_of(other)
        )),
    }
    out
}

/// The value, or `None` with the problem added to `errors`.
fn collect<'a>(r: Result<Option<&'a str>, tonic::Status>, errors: &mut Vec<String>) -> Option<&'a str> {
    r.unwrap_or_else(|s| {
        errors.push(s.message().to_string());
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::IntegrationRoute;
    use std::sync::Arc;

    const KEY: &str = "samplekeyhere-routing";

    fn table() -> Integrations {
        let mut t = Integrations::new("platform".into(), d::Severity::Sev1);
        let route = |id: &str, kind| {
            Arc::new(IntegrationRoute {
                id: id.into(),
                kind,
                team: "payments".into(),
                rules: Default::default(),
            })
        };
        t.insert(ingest::sha256(KEY), route("pd", SourceKind::PagerDuty));
        t.insert(ingest::sha256("am-token"), route("am", SourceKind::Alertmanager));
        t
    }

    fn parsed(event: &str) -> Result<Parsed, Vec<String>> {
        parse_body(&table(), event.as_bytes())
    }

    /// PagerDuty's documented trigger example (routing key replaced).
    const TRIGGER: &str = include_str!("../fixtures/pagerduty/trigger.json");

    #[test]
    fn documented_examples_parse() {
        let (route, key, i) = parsed(TRIGGER).unwrap();
        assert_eq!((route.id.as_str(), key.as_str()), ("pd", "samplekeyhere"));
        assert_eq!(i.title, "Example alert on host1.example.com");
        let s = &i.signals[0];
        assert_eq!(
            (s.action, s.fingerprint.as_str()),
            (AlertAction::Trigger, "samplekeyhere")
        );
        assert_eq!(
            s.started_at.map(|t| t.to_string()).as_deref(),
            Some("2015-07-17T08:42:58Z")
        );
        for (k, v) in [
            ("severity", "info"),
            ("component", "postgres"),
            ("load avg", "0.75"),
            ("class", "deploy"),
        ] {
            assert_eq!(i.labels.get(k).map(String::as_str), Some(v), "{k}");
        }
        // The documented acknowledge and resolve follow-ups carry no payload.
        for action in ["acknowledge", "resolve"] {
            let e = format!(r#"{{"routing_key":"{KEY}","dedup_key":"samplekeyhere","event_action":"{action}"}}"#);
            let (_, key, i) = parsed(&e).unwrap();
            assert_eq!(key, "samplekeyhere");
            assert_ne!(i.signals[0].action, AlertAction::Trigger);
        }
    }

    /// `check(event, fields)`: refused, naming every field.
    #[track_caller]
    fn check(event: &str, fields: &[&str]) {
        let errors = match parsed(event) {
            Ok(_) => panic!("expected errors for {event}"),
            Err(e) => e,
        };
        for f in fields {
            assert!(errors.iter().any(|e| e.starts_with(f)), "{errors:?} should name {f}");
        }
    }

    #[test]
    fn invalid_events_name_every_problem() {
        check("[]", &["body"]);
        check("{}", &["routing_key", "event_action"]);
        check(
            r#"{"routing_key":"am-token","event_action":"resolve","dedup_key":"k"}"#,
            &["routing_key"],
        );
        check(
            &format!(r#"{{"routing_key":"{KEY}","event_action":"trigger"}}"#),
            &["payload"],
        );
        check(
            &format!(
                r#"{{"routing_key":"{KEY}","event_action":"trigger","payload":{{"summary":7,"severity":"bad"}}}}"#
            ),
            &["payload.summary", "payload.source", "payload.severity"],
        );
        check(
            &format!(
                r#"{{"routing_key":"{KEY}","event_action":"trigger","dedup_key":"{}","payload":{{"summary":"s","source":"x","severity":"info","timestamp":"noon"}}}}"#,
                "k".repeat(300)
            ),
            &["dedup_key", "payload.timestamp"],
        );
        check(
            &format!(r#"{{"routing_key":"{KEY}","event_action":"acknowledge"}}"#),
            &["dedup_key"],
        );
    }

    #[test]
    fn a_keyless_trigger_gets_a_generated_key() {
        let e = format!(
            r#"{{"routing_key":"{KEY}","event_action":"trigger","payload":{{"summary":"s","source":"x","severity":"critical"}}}}"#
        );
        let (_, a, _) = parsed(&e).unwrap();
        let (_, b, _) = parsed(&e).unwrap();
        assert_eq!(a.len(), 26);
        assert_ne!(a, b);
    }
}
