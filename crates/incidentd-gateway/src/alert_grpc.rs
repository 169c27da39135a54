//! `incident.v1.AlertService` (API.md): PagerDuty-style alerts over gRPC.
//! `IngestAlert` answers once the alert is durable; `IngestAlerts` takes a
//! client stream for volume, submitting each alert as it arrives (so alerts of
//! one key keep their order) with up to `STREAM_IN_FLIGHT` awaiting their
//! durable acknowledgement, and answers counts when the stream ends.

use crate::convert;
use crate::error::{invalid, status};
use crate::ingest::{self, AlertIngest, IntegrationRoute};
use crate::metrics::RpcMetrics;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use incidentd_actors::{Error, Ingested, Outcome};
use incidentd_domain::{self as d, AlertAction, AlertIntake, AlertSignal, alert::limits};
use incidentd_proto::v1 as pb;
use incidentd_proto::v1::alert_service_server::AlertService;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Alerts of one stream awaiting their durable acknowledgement.
pub const STREAM_IN_FLIGHT: usize = 256;
/// Rejections described in an `IngestAlertsResponse`.
const REJECTIONS_SHOWN: usize = 100;

#[derive(Clone)]
pub struct AlertApi {
    ingest: AlertIngest,
    metrics: Arc<RpcMetrics>,
}

impl AlertApi {
    pub fn new(ingest: AlertIngest, metrics: Arc<RpcMetrics>) -> AlertApi {
        AlertApi { ingest, metrics }
    }

    /// The integration: `routing_key` of the request, else the bearer token.
    fn route(&self, routing_key: &str, bearer: Option<&str>) -> Result<Arc<IntegrationRoute>, Status> {
        let integrations = self.ingest.integrations();
        match (routing_key.trim(), bearer) {
            ("", None) => Err(Status::unauthenticated(
                "routing_key: is required (or authorization: Bearer <integration secret>)",
            )),
            ("", Some(secret)) => integrations
                .find(secret)
                .ok_or_else(|| Status::unauthenticated("authorization: unknown token")),
            (key, _) => integrations
                .find(key)
                .ok_or_else(|| Status::unauthenticated("routing_key: unknown routing key")),
        }
    }
}

fn bearer_of<T>(req: &Request<T>) -> Option<String> {
    let value = req.metadata().get("authorization").and_then(|v| v.to_str().ok());
    ingest::bearer(value).map(str::to_string)
}

/// One request as a notification; returns the dedup key (generated for a keyless trigger).
pub fn notification(r: pb::IngestAlertRequest) -> Result<AlertIntake, Status> {
    let action = match pb::AlertAction::try_from(r.action) {
        Ok(pb::AlertAction::Trigger) => AlertAction::Trigger,
        Ok(pb::AlertAction::Acknowledge) => AlertAction::Acknowledge,
        Ok(pb::AlertAction::Resolve) => AlertAction::Resolve,
        Ok(pb::AlertAction::Unspecified) => {
            return Err(invalid("action", "is required (TRIGGER, ACKNOWLEDGE or RESOLVE)"));
        }
        Err(_) => return Err(invalid("action", format!("unknown alert action {}", r.action))),
    };
    let key = match r.dedup_key.trim() {
        "" if action == AlertAction::Trigger => ulid::Ulid::generate().to_string(),
        "" => return Err(invalid("dedup_key", "is required to acknowledge or resolve")),
        k if k.len() > limits::KEY_MAX_BYTES => {
            return Err(invalid("dedup_key", format!("at most {} bytes", limits::KEY_MAX_BYTES)));
        }
        k => k.to_string(),
    };
    if r.fingerprint.len() > limits::KEY_MAX_BYTES {
        return Err(invalid(
            "fingerprint",
            format!("at most {} bytes", limits::KEY_MAX_BYTES),
        ));
    }
    let summary = r.summary.trim().to_string();
    if summary.chars().count() > limits::SUMMARY_MAX_CHARS {
        return Err(invalid(
            "summary",
            format!("at most {} characters", limits::SUMMARY_MAX_CHARS),
        ));
    }
    let mut labels: std::collections::BTreeMap<String, String> = r.labels.into_iter().collect();
    if !r.source.trim().is_empty() {
        labels
            .entry("source".into())
            .or_insert_with(|| r.source.trim().to_string());
    }
    let started_at = r
        .started_at
        .map(|t| d::Timestamp(t.seconds.saturating_mul(1000) + i64::from(t.nanos / 1_000_000)));
    let fingerprint = convert::opt(r.fingerprint).unwrap_or_else(|| key.clone());
    let title = match (summary.is_empty(), labels.get("alertname")) {
        (false, _) => summary.clone(),
        (true, Some(name)) => name.clone(),
        (true, None) => format!("Alert {key}"),
    };
    Ok(AlertIntake {
        signals: vec![AlertSignal {
            action,
            fingerprint,
            labels: labels.clone(),
            summary: summary.clone(),
            started_at,
            ended_at: None,
        }],
        key,
        title,
        summary,
        labels,
        team: convert::opt(r.team),
        service: convert::opt(r.service),
        severity: convert::severity_in("severity", r.severity)?,
        ..Default::default()
    })
}

fn response(key: String, done: Ingested) -> pb::IngestAlertResponse {
    pb::IngestAlertResponse {
        incident_id: done.incident.map(|i| i.to_string()).unwrap_or_default(),
        created: done.outcome == Outcome::Created,
        dedup_key: key,
        incident_number: done.number.unwrap_or(0),
        outcome: match done.outcome {
            Outcome::Created => pb::IngestOutcome::Created,
            Outcome::Deduplicated => pb::IngestOutcome::Deduplicated,
            Outcome::Ignored => pb::IngestOutcome::Ignored,
        } as i32,
        message: done.message,
    }
}

impl AlertApi {
    async fn one(&self, r: pb::IngestAlertRequest, bearer: Option<String>) -> Result<pb::IngestAlertResponse, Status> {
        let route = self.route(&r.routing_key, bearer.as_deref())?;
        let _permit = self.ingest.permit().map_err(status)?;
        let n = notification(r).inspect_err(|_| self.ingest.count_rejected())?;
        let key = n.key.clone();
        let done = self
            .ingest
            .submit(self.ingest.intake(&route, n))
            .await
            .map_err(status)?;
        if let Some(id) = done.incident {
            tracing::Span::current().record("incident_id", tracing::field::display(&id));
        }
        Ok(response(key, done))
    }

    async fn many(
        &self,
        mut stream: tonic::Streaming<pb::IngestAlertRequest>,
        bearer: Option<String>,
    ) -> Result<pb::IngestAlertsResponse, Status> {
        let mut out = pb::IngestAlertsResponse::default();
        let mut pending = FuturesUnordered::new();
        let mut index = 0u64;
        let reject = |out: &mut pb::IngestAlertsResponse, index: u64, key: String, message: String| {
            out.rejected += 1;
            if out.rejections.len() < REJECTIONS_SHOWN {
                out.rejections.push(pb::RejectedAlert {
                    index,
                    dedup_key: key,
                    message,
                });
            }
        };
        let settle = |out: &mut pb::IngestAlertsResponse,
                      (index, key, result): (u64, String, Result<Ingested, Error>)|
         -> Result<(), Status> {
            match result {
                Ok(done) => {
                    out.accepted += 1;
                    match done.outcome {
                        Outcome::Created => out.created += 1,
                        Outcome::Deduplicated => out.deduplicated += 1,
                        Outcome::Ignored => out.ignored += 1,
                    }
                    Ok(())
                }
                Err(Error::Domain(e)) => {
                    reject(out, index, key, e.to_string());
                    Ok(())
                }
                // Storage, shutdown, overload: the stream fails; the client resends (idempotent).
                Err(e) => Err(status(e)),
            }
        };
        while let Some(r) = stream.message().await? {
            while pending.len() >= STREAM_IN_FLIGHT {
                if let Some(done) = pending.next().await {
                    settle(&mut out, done)?;
                }
            }
            let key = r.dedup_key.clone();
            let route = match self.route(&r.routing_key, bearer.as_deref()) {
                Ok(route) => route,
                Err(s) if index == 0 => return Err(s),
                Err(s) => {
                    reject(&mut out, index, key, s.message().to_string());
                    self.ingest.count_rejected();
                    index += 1;
                    continue;
                }
            };
            match notification(r) {
                Ok(n) => {
                    let permit = self.ingest.permit_wait().await.map_err(status)?;
                    let key = n.key.clone();
                    let fut = self.ingest.submit(self.ingest.intake(&route, n));
                    pending.push(async move {
                        let result = fut.await;
                        drop(permit);
                        (index, key, result)
                    });
                }
                Err(s) => {
                    self.ingest.count_rejected();
                    reject(&mut out, index, key, s.message().to_string());
                }
            }
            index += 1;
        }
        while let Some(done) = pending.next().await {
            settle(&mut out, done)?;
        }
        Ok(out)
    }
}

#[tonic::async_trait]
impl AlertService for AlertApi {
    async fn ingest_alert(
        &self,
        req: Request<pb::IngestAlertRequest>,
    ) -> Result<Response<pb::IngestAlertResponse>, Status> {
        let bearer = bearer_of(&req);
        crate::grpc::observe(&self.metrics, "IngestAlert", self.one(req.into_inner(), bearer)).await
    }

    async fn ingest_alerts(
        &self,
        req: Request<tonic::Streaming<pb::IngestAlertRequest>>,
    ) -> Result<Response<pb::IngestAlertsResponse>, Status> {
        let bearer = bearer_of(&req);
        crate::grpc::observe(&self.metrics, "IngestAlerts", self.many(req.into_inner(), bearer)).await
    }
}
