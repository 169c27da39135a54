//! HTTP for the status page: every document is served from the last
//! rendering with `ETag`, `Last-Modified` and `Cache-Control`; a matching
//! `If-None-Match` (or an `If-Modified-Since` equal to `Last-Modified`) is
//! a `304` with no body. `/status/events` is a server-sent event stream of
//! the page's revision, for the page's live refresh. Until recovery is
//! done every path answers `503` with `Retry-After`.

use crate::StatusPage;
use crate::render::DocKind;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Browsers and proxies may reuse a document this long before revalidating.
pub const CACHE_CONTROL: &str = "public, max-age=5, stale-while-revalidate=30";

#[derive(Clone)]
struct PageState {
    page: Arc<OnceLock<StatusPage>>,
    stop: tokio::sync::watch::Receiver<bool>,
}

/// The status page routes. `page` is filled once recovery is done; `stop`
/// turning true ends the event streams (so a graceful shutdown is not held
/// open by readers).
pub fn router(page: Arc<OnceLock<StatusPage>>, stop: tokio::sync::watch::Receiver<bool>) -> Router {
    let doc = |kind: DocKind| get(move |st: State<PageState>, h: HeaderMap| serve(st, h, kind));
    Router::new()
        .route("/status", doc(DocKind::Html))
        .route("/status/", doc(DocKind::Html))
        .route("/status/api/v2/summary.json", doc(DocKind::Summary))
        .route("/status/api/v2/status.json", doc(DocKind::Status))
        .route("/status/api/v2/components.json", doc(DocKind::Components))
        .route("/status/api/v2/incidents.json", doc(DocKind::Incidents))
        .route("/status/api/v2/incidents/unresolved.json", doc(DocKind::Unresolved))
        .route("/status/api/v2/scheduled-maintenances.json", doc(DocKind::Maintenances))
        .route("/status/feed.atom", doc(DocKind::Atom))
        .route("/status/events", get(events))
        .with_state(PageState { page, stop })
}

fn starting() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        "status page starting: recovering incidents\n",
    )
        .into_response()
}

async fn serve(State(st): State<PageState>, headers: HeaderMap, kind: DocKind) -> Response {
    let Some(page) = st.page.get() else {
        return starting();
    };
    let r = page.rendered();
    let doc = r.doc(kind);
    let etag = HeaderValue::from_str(&doc.etag).unwrap_or(HeaderValue::from_static("\"0\""));
    let modified = HeaderValue::from_str(&r.last_modified).unwrap_or(HeaderValue::from_static(""));
    let common = [
        (header::ETAG, etag),
        (header::LAST_MODIFIED, modified),
        (header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL)),
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
        (header::VARY, HeaderValue::from_static("Accept-Encoding")),
    ];
    if not_modified(&headers, &doc.etag, &r.last_modified) {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        StatusCode::OK,
        common,
        [(header::CONTENT_TYPE, HeaderValue::from_static(kind.content_type()))],
        doc.body.clone(),
    )
        .into_response()
}

/// RFC 9110 §13.1: `If-None-Match` wins; otherwise `If-Modified-Since`
/// (compared as the exact date we sent, which is what clients echo).
fn not_modified(headers: &HeaderMap, etag: &str, last_modified: &str) -> bool {
    if let Some(inm) = headers.get(header::IF_NONE_MATCH) {
        let Ok(v) = inm.to_str() else { return false };
        return v
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == etag);
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == last_modified)
}

async fn events(State(st): State<PageState>) -> Response {
    let Some(page) = st.page.get() else {
        return starting();
    };
    let mut stop = st.stop.clone();
    let stopping = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let revs = tokio_stream::wrappers::WatchStream::new(page.subscribe())
        .map(|r| Ok::<_, std::convert::Infallible>(Event::default().data(r.rev.clone())))
        .take_until(stopping);
    Sse::new(revs)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
