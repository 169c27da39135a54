//! HTTP beside gRPC (axum): `/healthz`, `/readyz`, `/metrics`. Later issues
//! add webhooks and the status page here.

use crate::metrics::{Histogram, RpcMetrics};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use incidentd_actors::Handle;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Shared by the HTTP handlers; the handle appears once recovery is done.
#[derive(Clone, Default)]
pub struct HttpState {
    pub ready: Arc<AtomicBool>,
    pub handle: Arc<OnceLock<Handle>>,
    pub rpc: Arc<RpcMetrics>,
    /// Seconds the start-up recovery took.
    pub recovery_seconds: Arc<OnceLock<f64>>,
    /// The notifier's metrics, once it runs.
    pub notify: Arc<OnceLock<Arc<incidentd_notify::Metrics>>>,
    /// Alert ingestion (webhooks); appears with the handle.
    pub alerts: Arc<OnceLock<crate::ingest::AlertIngest>>,
    /// The authenticator (denial counters).
    pub auth: Arc<OnceLock<crate::auth::Auth>>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/v1/integrations/alertmanager",
            axum::routing::post(crate::alertmanager::receive),
        )
        .route("/v2/enqueue", axum::routing::post(crate::pagerduty::enqueue))
        .with_state(state)
}

async fn readyz(State(st): State<HttpState>) -> impl IntoResponse {
    if st.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: recovering or shutting down\n",
        )
    }
}

async fn metrics(State(st): State<HttpState>) -> impl IntoResponse {
    let mut out = String::with_capacity(8192);
    st.rpc.render(&mut out);
    let ready = u8::from(st.ready.load(Ordering::Acquire));
    let _ = writeln!(
        out,
        "# HELP incidentd_ready 1 when recovery is done and the server takes calls."
    );
    let _ = writeln!(out, "# TYPE incidentd_ready gauge");
    let _ = writeln!(out, "incidentd_ready {ready}");
    if let Some(secs) = st.recovery_seconds.get() {
        let _ = writeln!(
            out,
            "# HELP incidentd_recovery_seconds Time the start-up recovery took."
        );
        let _ = writeln!(out, "# TYPE incidentd_recovery_seconds gauge");
        let _ = writeln!(out, "incidentd_recovery_seconds {secs}");
    }
    if let Some(handle) = st.handle.get() {
        render_core(&mut out, handle).await;
    }
    if let Some(notify) = st.notify.get() {
        notify.render(&mut out);
    }
    if let Some(alerts) = st.alerts.get() {
        alerts.render(&mut out);
    }
    if let Some(auth) = st.auth.get() {
        auth.metrics().render(&mut out);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
}

async fn render_core(out: &mut String, handle: &Handle) {
    if let Ok(stats) = handle.stats().await {
        let _ = writeln!(out, "# HELP incidentd_live_incidents Unresolved incidents by severity.");
        let _ = writeln!(out, "# TYPE incidentd_live_incidents gauge");
        for (i, n) in stats.live_by_severity.iter().enumerate() {
            let _ = writeln!(out, "incidentd_live_incidents{{severity=\"SEV{}\"}} {n}", i + 1);
        }
        let _ = writeln!(out, "# HELP incidentd_incident_actors Running incident actors.");
        let _ = writeln!(out, "# TYPE incidentd_incident_actors gauge");
        let _ = writeln!(out, "incidentd_incident_actors {}", stats.live_actors);
        let _ = writeln!(out, "# HELP incidentd_incidents Incidents known, resolved included.");
        let _ = writeln!(out, "# TYPE incidentd_incidents gauge");
        let _ = writeln!(out, "incidentd_incidents {}", stats.incidents_total);
    }
    let c = handle.counters();
    let counters = [
        (
            "incidentd_actor_restarts_total",
            "Incident actors restarted after a failure.",
            &c.actor_restarts,
        ),
        (
            "incidentd_actors_retired_total",
            "Actors of resolved incidents stopped.",
            &c.actors_retired,
        ),
        (
            "incidentd_actors_spawned_total",
            "Incident actors started (declared, recovered, rehydrated).",
            &c.actors_spawned,
        ),
        (
            "incidentd_events_persisted_total",
            "Incident events made durable.",
            &c.events_persisted,
        ),
    ];
    for (name, help, v) in counters {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
    }
    let s = handle.store().stats();
    let _ = writeln!(
        out,
        "# HELP incidentd_store_syncs_total Log fdatasync calls (one per group commit)."
    );
    let _ = writeln!(out, "# TYPE incidentd_store_syncs_total counter");
    let _ = writeln!(out, "incidentd_store_syncs_total {}", s.syncs);
    let _ = writeln!(out, "# HELP incidentd_store_appends_total Batches appended to the log.");
    let _ = writeln!(out, "# TYPE incidentd_store_appends_total counter");
    let _ = writeln!(out, "incidentd_store_appends_total {}", s.appends);
    let _ = writeln!(
        out,
        "# HELP incidentd_store_flush_seconds Latency of one log write + fdatasync."
    );
    let _ = writeln!(out, "# TYPE incidentd_store_flush_seconds histogram");
    let mut h = Histogram {
        count: s.sync_latency.count,
        sum: s.sync_latency.sum_seconds,
        ..Default::default()
    };
    for (i, b) in crate::metrics::BUCKETS.iter().enumerate() {
        h.counts[i] = s.sync_latency.count_le(*b);
    }
    h.render(out, "incidentd_store_flush_seconds", "");
}

/// Reads a request body of at most `max` bytes; larger is `INVALID_ARGUMENT` naming `body`.
pub async fn read_body(body: axum::body::Body, max: usize) -> Result<axum::body::Bytes, tonic::Status> {
    axum::body::to_bytes(body, max).await.map_err(|e| {
        // axum reports the limit as a `LengthLimitError` ("length limit exceeded") inside its error.
        let mut too_big = false;
        let mut cause: Option<&dyn std::error::Error> = Some(&e);
        while let Some(c) = cause {
            too_big |= c.to_string().contains("length limit");
            cause = c.source();
        }
        if too_big {
            crate::error::invalid("body", format!("larger than {} KiB", max / 1024))
        } else {
            crate::error::invalid("body", format!("could not be read: {e}"))
        }
    })
}
