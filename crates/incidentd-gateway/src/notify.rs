//! `NotificationService` (API.md): deliveries per incident with their
//! state, and the retry of dead ones. Converts notifier values to proto
//! here; errors map in `error.rs`.

use crate::error::{invalid, notify_status};
use crate::metrics::RpcMetrics;
use incidentd_notify::{Delivery, DeliveryState, Notifier};
use incidentd_proto::v1 as pb;
use std::sync::Arc;
use std::time::Instant;
use tonic::{Request, Response, Status};

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 500;

#[derive(Clone)]
pub struct NotificationApi {
    notifier: Notifier,
    metrics: Arc<RpcMetrics>,
}

impl NotificationApi {
    pub fn new(notifier: Notifier, metrics: Arc<RpcMetrics>) -> NotificationApi {
        NotificationApi { notifier, metrics }
    }

    fn observe<T>(&self, method: &'static str, started: Instant, r: Result<T, Status>) -> Result<Response<T>, Status> {
        let code = r.as_ref().map(|_| tonic::Code::Ok).unwrap_or_else(|s| s.code());
        self.metrics.observe(method, code, started.elapsed());
        r.map(Response::new)
    }
}

fn ts(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

pub fn state_pb(s: DeliveryState) -> pb::DeliveryState {
    match s {
        DeliveryState::Pending => pb::DeliveryState::Pending,
        DeliveryState::Retrying => pb::DeliveryState::Retrying,
        DeliveryState::Delivered => pb::DeliveryState::Delivered,
        DeliveryState::Dead => pb::DeliveryState::Dead,
    }
}

fn state_filter(v: i32) -> Result<Option<DeliveryState>, Status> {
    match pb::DeliveryState::try_from(v) {
        Ok(pb::DeliveryState::Unspecified) => Ok(None),
        Ok(pb::DeliveryState::Pending) => Ok(Some(DeliveryState::Pending)),
        Ok(pb::DeliveryState::Retrying) => Ok(Some(DeliveryState::Retrying)),
        Ok(pb::DeliveryState::Delivered) => Ok(Some(DeliveryState::Delivered)),
        Ok(pb::DeliveryState::Dead) => Ok(Some(DeliveryState::Dead)),
        Err(_) => Err(invalid("state", format!("unknown delivery state {v}"))),
    }
}

pub fn delivery_pb(d: &Delivery) -> pb::Delivery {
    let p = &d.progress;
    pb::Delivery {
        id: d.key.clone(),
        incident_id: d.incident.clone(),
        version: d.version,
        destination: d.destination.clone(),
        kind: d.kind.as_str().to_string(),
        state: state_pb(p.state) as i32,
        attempts: p.attempts,
        last_error: p.last_error.clone().unwrap_or_default(),
        idempotency_key: d.key.clone(),
        created_at: Some(ts(d.created_at)),
        updated_at: Some(ts(p.updated_at)),
        next_attempt_at: p.next_attempt_at.map(ts),
        delivered_at: p.delivered_at.map(ts),
        headline: d.headline.clone(),
        to: d.to.clone(),
    }
}

#[tonic::async_trait]
impl pb::notification_service_server::NotificationService for NotificationApi {
    async fn list_deliveries(
        &self,
        req: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        let started = Instant::now();
        let caller = crate::auth::Caller::of(&req);
        let r = req.into_inner();
        let result = async {
            let caller = caller?;
            // Deliveries span teams: with reads limited to own teams, only admins list them.
            if let Some(g) = caller.grant()
                && caller.readable_teams().is_some()
            {
                g.require(incidentd_domain::Scope::Admin)
                    .map_err(crate::error::domain_status)?;
            }
            let state = state_filter(r.state)?;
            if !r.incident_id.is_empty() && incidentd_domain::IncidentId::parse(&r.incident_id).is_none() {
                return Err(invalid("incident_id", "not an incident id"));
            }
            let limit = match r.page_size as usize {
                0 => DEFAULT_PAGE,
                n if n > MAX_PAGE => return Err(invalid("page_size", format!("at most {MAX_PAGE}"))),
                n => n,
            };
            let incident = (!r.incident_id.is_empty()).then_some(r.incident_id);
            let all = self.notifier.list(incident, state).await.map_err(notify_status)?;
            let start = match r.page_token.as_str() {
                "" => 0,
                token => all
                    .iter()
                    .position(|d| d.key() == token)
                    .map(|i| i + 1)
                    .ok_or_else(|| invalid("page_token", "not a token from a previous page"))?,
            };
            let page: Vec<pb::Delivery> = all.iter().skip(start).take(limit).map(delivery_pb).collect();
            let next_page_token = if start + page.len() < all.len() {
                page.last().map(|d| d.id.clone()).unwrap_or_default()
            } else {
                String::new()
            };
            Ok(pb::ListDeliveriesResponse {
                deliveries: page,
                next_page_token,
            })
        }
        .await;
        self.observe("ListDeliveries", started, result)
    }

    async fn retry_delivery(&self, req: Request<pb::RetryDeliveryRequest>) -> Result<Response<pb::Delivery>, Status> {
        let started = Instant::now();
        let r = req.into_inner();
        let result = async {
            if r.delivery_id.is_empty() {
                return Err(invalid("delivery_id", "required"));
            }
            let d = self.notifier.retry(r.delivery_id).await.map_err(notify_status)?;
            Ok(delivery_pb(&d))
        }
        .await;
        self.observe("RetryDelivery", started, result)
    }
}
