//! What an adapter's wire code implements, and the HTTP conventions shared
//! by the HTTP adapters: status classes, `Retry-After`, reserved hosts.

use crate::route::Notification;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

/// One delivery attempt.
#[derive(Debug, Clone)]
pub struct Job {
    pub notification: Notification,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// What the destination called this incident before (Statuspage id).
    pub remote_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOk {
    /// Remember this for later deliveries of the incident (Statuspage id).
    pub remote_id: Option<String>,
    /// Accepted without a request (e.g. nothing to update); shown as the last error.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub message: String,
    /// The destination asked to wait this long (`429`/`503` + `Retry-After`).
    pub retry_after: Option<Duration>,
    /// Retrying cannot help (bad request, unknown destination): dead at once.
    pub permanent: bool,
}

impl SendError {
    pub fn transient(message: impl Into<String>) -> SendError {
        SendError {
            message: message.into(),
            retry_after: None,
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> SendError {
        SendError {
            message: message.into(),
            retry_after: None,
            permanent: true,
        }
    }
}

pub type SendFuture = Pin<Box<dyn Future<Output = Result<SendOk, SendError>> + Send>>;

/// The wire side of one adapter.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, job: Job) -> SendFuture;
}

/// `Retry-After`: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Classifies an HTTP answer: 2xx is delivered; 408, 425, 429 and 5xx are
/// retried (honouring `Retry-After`); other 4xx are permanent.
pub fn classify(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &str,
) -> Result<(), SendError> {
    if status.is_success() {
        return Ok(());
    }
    let snippet: String = body.chars().take(200).collect();
    let message = format!("HTTP {}: {}", status.as_u16(), snippet.trim());
    let retry_after = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let code = status.as_u16();
    let retryable = matches!(code, 408 | 425 | 429) || status.is_server_error();
    Err(SendError {
        message,
        retry_after,
        permanent: !retryable,
    })
}

/// Documentation-only hosts (RFC 2606: `example.com/net/org`, `.invalid`):
/// the demo org's destinations point there, and nothing is ever sent to them.
pub fn reserved_host(url: &str) -> Option<String> {
    let host = reqwest::Url::parse(url).ok()?.host_str()?.to_ascii_lowercase();
    let reserved = ["example.com", "example.net", "example.org"]
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
        || host.ends_with(".invalid")
        || host.ends_with(".example");
    reserved.then_some(host)
}

/// A request error as a retryable failure (connection refused, timeout, ...).
pub fn request_error(e: reqwest::Error) -> SendError {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    if e.is_builder() {
        SendError::permanent(msg)
    } else {
        SendError::transient(msg)
    }
}

/// Sends a JSON body and classifies the answer (the shared part of the
/// chat, webhook and Statuspage adapters); returns the answer's body.
pub async fn send_json(req: reqwest::RequestBuilder, body: Vec<u8>) -> Result<String, SendError> {
    let resp = req
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(request_error)?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    classify(status, &headers, &text).map(|()| text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now - Duration::from_secs(30)),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn reserved_hosts_are_recognised() {
        assert_eq!(
            reserved_host("https://hooks.slack.example.com/services/x").as_deref(),
            Some("hooks.slack.example.com")
        );
        assert_eq!(reserved_host("http://127.0.0.1:9/x"), None);
        assert_eq!(reserved_host("https://hooks.slack.com/x"), None);
    }
}
