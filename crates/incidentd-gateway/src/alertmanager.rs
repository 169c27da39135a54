//! `POST /v1/integrations/alertmanager`: Prometheus Alertmanager's webhook
//! (payload version 4). One alert group (`groupKey`) is one incident; alerts
//! inside it are told apart by `fingerprint`. One notification is one
//! command: all its alerts are stored in one durable batch, or none.
//!
//! Answers: 200 when durable; 400 naming the field for a bad payload
//! (Alertmanager does not retry a 4xx); 401 without a valid bearer token;
//! 503 under back-pressure, during recovery or on a storage failure
//! (Alertmanager retries a 5xx).

use crate::http::HttpState;
use crate::ingest::{
    self, IntegrationRoute, SourceKind, clip, object, opt_labels, opt_str, opt_str_object, parse_time, req_str, str_at,
};
use crate::json::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use incidentd_domain::{self as d, AlertAction, AlertIntake, AlertSignal};
use serde_json::json;
use std::collections::BTreeMap;
use tonic::Status;

/// Largest accepted body.
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// Alertmanager's "zero" endsAt (`0001-01-01T00:00:00Z`) and anything before 1970 mean "not ended".
const NOT_ENDED_BEFORE: i64 = 0;

pub async fn receive(State(st): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    let ingest = match st.alerts.get() {
        Some(i) => i.clone(),
        None => return reply(StatusCode::SERVICE_UNAVAILABLE, "not ready: recovering"),
    };
    let _permit = match ingest.permit() {
        Ok(p) => p,
        // 503, not 429: Alertmanager retries a 5xx at once, a 4xx only at its next group interval.
        Err(e) => {
            let mut r = reply(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return r;
        }
    };
    let route = match authorize(&ingest.integrations(), &headers) {
        Ok(r) => r,
        Err(s) => return error(s),
    };
    let result = async {
        let bytes = crate::http::read_body(body, MAX_BODY).await?;
        let notification = parse_body(&bytes)?;
        let intake = ingest.intake(&route, notification);
        ingest.submit(intake).await.map_err(crate::error::status)
    }
    .await;
    match result {
        Ok(done) => ingest::json_response(StatusCode::OK, &ingest::Accepted::of(&done, &done.message, None)),
        Err(s) => {
            if s.code() == tonic::Code::InvalidArgument {
                ingest.count_rejected();
            }
            error(s)
        }
    }
}

/// The integration named by the bearer token (kind `alertmanager`).
fn authorize(
    integrations: &ingest::Integrations,
    headers: &HeaderMap,
) -> Result<std::sync::Arc<IntegrationRoute>, Status> {
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let secret = ingest::bearer(value).ok_or_else(|| {
        Status::unauthenticated("authorization: a bearer token is required (the integration's secret)")
    })?;
    match integrations.find(secret) {
        Some(r) if r.kind == SourceKind::Alertmanager => Ok(r),
        Some(r) => Err(Status::permission_denied(format!(
            "authorization: the token belongs to integration {:?} of kind {}, not alertmanager",
            r.id,
            r.kind.as_str()
        ))),
        None => Err(Status::unauthenticated(
            "authorization: unknown token (no [[integrations]] or ingest token has this secret)",
        )),
    }
}

/// Converts a webhook body as received into one notification (also the fuzz targets' entry point).
pub fn parse_body(body: &[u8]) -> Result<AlertIntake, Status> {
    parse(&ingest::parse_json(body)?)
}

/// Converts a version-4 webhook payload into one notification.
pub fn parse(v: &Json<'_>) -> Result<AlertIntake, Status> {
    let top = object(v, "body")?;
    match opt_str(top, "version", "")? {
        Some("4") => {}
        Some(other) => {
            return Err(crate::error::invalid(
                "version",
                format!("unsupported webhook payload version {other:?}; incidentd speaks version \"4\""),
            ));
        }
        None => return Err(crate::error::invalid("version", "is required (\"4\")")),
    }
    let group_key = req_str(top, "groupKey", "")?;
    let common_labels = opt_labels(top, "commonLabels", "")?;
    let group_labels = opt_labels(top, "groupLabels", "")?;
    let common_annotations = opt_str_object(top, "commonAnnotations", "")?;
    let external_url = opt_str(top, "externalURL", "")?.unwrap_or("");
    let alerts = match top.get("alerts") {
        Some(Json::Array(a)) if !a.is_empty() => a,
        Some(Json::Array(_)) => return Err(crate::error::invalid("alerts", "at least one alert is required")),
        Some(other) => {
            return Err(crate::error::invalid(
                "alerts",
                format!("must be an array, got {}", ingest::kind_of(other)),
            ));
        }
        None => return Err(crate::error::invalid("alerts", "is required")),
    };
    if alerts.len() > d::alert::limits::SIGNALS_MAX {
        return Err(crate::error::invalid(
            "alerts",
            format!("at most {} alerts per notification", d::alert::limits::SIGNALS_MAX),
        ));
    }
    let mut signals = Vec::with_capacity(alerts.len());
    for (i, a) in alerts.iter().enumerate() {
        signals.push(parse_alert(a, &format!("alerts[{i}]"))?);
    }

    let alertname = common_labels
        .get("alertname")
        .or(group_labels.get("alertname"))
        .or_else(|| signals.first().and_then(|s| s.labels.get("alertname")));
    let title = str_at(common_annotations, "summary")
        .or(alertname.map(String::as_str))
        .unwrap_or("Alertmanager alert group")
        .to_string();
    let mut summary = String::new();
    if let Some(desc) = str_at(common_annotations, "description") {
        summary.push_str(desc);
        summary.push('\n');
    }
    summary.push_str(&format!("Alertmanager group {group_key}"));
    if !external_url.is_empty() {
        summary.push_str(&format!(" ({external_url})"));
    }
    let mut labels: BTreeMap<String, String> = group_labels;
    labels.extend(common_labels);
    Ok(AlertIntake {
        key: dedup_key(group_key),
        signals,
        title,
        summary,
        labels,
        ..Default::default()
    })
}

fn parse_alert(v: &Json<'_>, path: &str) -> Result<AlertSignal, Status> {
    let a = object(v, path)?;
    let action = match req_str(a, "status", path)? {
        "firing" => AlertAction::Trigger,
        "resolved" => AlertAction::Resolve,
        other => {
            return Err(crate::error::invalid(
                &format!("{path}.status"),
                format!("must be \"firing\" or \"resolved\", got {other:?}"),
            ));
        }
    };
    let labels = opt_labels(a, "labels", path)?;
    if labels.is_empty() {
        return Err(crate::error::invalid(
            &format!("{path}.labels"),
            "at least one label is required",
        ));
    }
    let annotations = opt_str_object(a, "annotations", path)?;
    let time = |name: &str| -> Result<Option<d::Timestamp>, Status> {
        match opt_str(a, name, path)? {
            None | Some("") => Ok(None),
            Some(s) => parse_time(s).map(Some).ok_or_else(|| {
                crate::error::invalid(&format!("{path}.{name}"), format!("{s:?} is not an RFC 3339 time"))
            }),
        }
    };
    let started_at = time("startsAt")?;
    let ended_at = time("endsAt")?.filter(|t| t.0 > NOT_ENDED_BEFORE);
    // Alertmanager 0.25 always sends a fingerprint; older ones did not: derive it from the labels.
    let fingerprint = match opt_str(a, "fingerprint", path)? {
        Some(f) if !f.is_empty() => f.to_string(),
        _ => label_fingerprint(&labels),
    };
    let summary = str_at(annotations, "summary")
        .or(str_at(annotations, "description"))
        .or(labels.get("alertname").map(String::as_str))
        .map(|s| clip(s, d::alert::limits::SUMMARY_MAX_CHARS))
        .unwrap_or_default();
    Ok(AlertSignal {
        action,
        fingerprint,
        labels,
        summary,
        started_at,
        ended_at: if action == AlertAction::Resolve { ended_at } else { None },
    })
}

/// Group keys longer than a dedup key may be are replaced by their digest (stable, collision-free in practice).
fn dedup_key(group_key: &str) -> String {
    if group_key.len() <= d::alert::limits::KEY_MAX_BYTES {
        return group_key.to_string();
    }
    let digest: String = ingest::sha256(group_key).iter().map(|b| format!("{b:02x}")).collect();
    format!("am-sha256:{digest}")
}

fn label_fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut text = String::new();
    for (k, v) in labels {
        text.push_str(k);
        text.push('\u{1f}');
        text.push_str(v);
        text.push('\u{1e}');
    }
    ingest::sha256(&text)[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn reply(code: StatusCode, message: &str) -> Response {
    ingest::json_response(code, &json!({"status": "error", "message": message}))
}

fn error(s: Status) -> Response {
    let code = crate::error::http_status(s.code());
    let mut r = reply(code, s.message());
    if code == StatusCode::UNAUTHORIZED
        && let Ok(v) = header::HeaderValue::from_str("Bearer")
    {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRING: &str = include_str!("../fixtures/alertmanager/firing.json");
    const PARTIAL: &str = include_str!("../fixtures/alertmanager/partially-resolved.json");
    const RESOLVED: &str = include_str!("../fixtures/alertmanager/resolved.json");

    fn parsed(text: &str) -> Result<AlertIntake, Status> {
        parse_body(text.as_bytes())
    }

    #[test]
    fn real_payloads_parse() {
        let f = parsed(FIRING).unwrap();
        assert_eq!(f.key, "{}:{alertname=\"PaymentsAPIDown\", service=\"payments\"}");
        assert_eq!(f.title, "Payments API is not answering");
        assert_eq!(f.labels.get("team").map(String::as_str), Some("payments"));
        assert_eq!(f.labels.get("severity").map(String::as_str), Some("critical"));
        let fps: Vec<_> = f.signals.iter().map(|s| (s.fingerprint.as_str(), s.action)).collect();
        assert_eq!(
            fps,
            [
                ("16bfda62961ff554", AlertAction::Trigger),
                ("4837bce62db63f3b", AlertAction::Trigger)
            ]
        );
        assert_eq!(
            f.signals[0].started_at.map(|t| t.to_string()).as_deref(),
            Some("2026-11-26T18:57:27Z")
        );
        assert_eq!(f.signals[0].ended_at, None, "0001-01-01 means not ended");

        let p = parsed(PARTIAL).unwrap();
        assert_eq!(p.key, f.key);
        assert_eq!(p.signals[0].action, AlertAction::Resolve);
        assert_eq!(
            p.signals[0].ended_at.map(|t| t.to_string()).as_deref(),
            Some("2026-11-26T18:57:45Z")
        );
        assert_eq!(p.signals[1].action, AlertAction::Trigger);

        let r = parsed(RESOLVED).unwrap();
        assert_eq!(r.key, f.key);
        assert!(r.signals.iter().all(|s| s.action == AlertAction::Resolve));
    }

    /// `check(payload, field)`: the payload is refused naming `field`.
    #[track_caller]
    fn check(payload: &str, field: &str) {
        match parsed(payload) {
            Ok(_) => panic!("expected an error naming {field:?} for {payload}"),
            Err(s) => {
                assert_eq!(s.code(), tonic::Code::InvalidArgument);
                assert!(
                    s.message().starts_with(field),
                    "{:?} should name {field:?}",
                    s.message()
                );
            }
        }
    }

    #[test]
    fn bad_payloads_name_the_problem() {
        check("", "body");
        check("{\"version\":", "body");
        check("[1,2]", "body");
        check(&FIRING.replace("\"version\":\"4\"", "\"version\":\"3\""), "version");
        check(&FIRING.replace("\"version\":\"4\",", ""), "version");
        check(&FIRING.replace("\"groupKey\"", "\"groupKey_\""), "groupKey");
        check(
            &FIRING.replace("\"status\":\"firing\",\"labels\"", "\"status\":\"burning\",\"labels\""),
            "alerts[0].status",
        );
        check(
            &FIRING.replacen("\"team\":\"payments\"}", "\"team\":7}", 1),
            "alerts[0].labels.team",
        );
        check(
            &FIRING.replace("\"startsAt\":\"2026-11-26T18:57:27Z\"", "\"startsAt\":\"yesterday\""),
            "alerts[0].startsAt",
        );
        let v: serde_json::Value = serde_json::from_str(FIRING).unwrap();
        let mut empty = v.clone();
        empty["alerts"] = json!([]);
        check(&empty.to_string(), "alerts");
        let mut not_array = v;
        not_array["alerts"] = json!({"a": 1});
        check(&not_array.to_string(), "alerts");
    }

    #[test]
    fn second_capture_parses() {
        let firing = parsed(include_str!("../fixtures/alertmanager/capture-checkout/firing.json")).unwrap();
        let resolved = parsed(include_str!("../fixtures/alertmanager/capture-checkout/resolved.json")).unwrap();
        assert_eq!(firing.key, resolved.key);
        assert_eq!(firing.title, "High 5xx rate on checkout");
        assert_eq!(firing.labels.get("service").map(String::as_str), Some("checkout"));
        assert_eq!(
            firing.signals[0].started_at.map(|t| t.0 % 1000),
            Some(946),
            "fractional seconds kept to the millisecond"
        );
        assert!(
            resolved
                .signals
                .iter()
                .all(|s| s.action == AlertAction::Resolve && s.ended_at.is_some())
        );
    }

    #[test]
    fn long_group_keys_become_digests() {
        let long = "x".repeat(400);
        let k = dedup_key(&long);
        assert!(k.starts_with("am-sha256:") && k.len() < 100);
        assert_eq!(k, dedup_key(&long));
        assert_eq!(dedup_key("{}:{a=\"b\"}"), "{}:{a=\"b\"}");
    }
}
