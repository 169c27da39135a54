//! `incident.v1.StatusPageService` over the status page (issue 5): component
//! statuses and overrides, maintenance windows. Converts and validates
//! requests (naming bad fields); errors map through `error.rs`.

use crate::convert::{self, opt, request_id};
use crate::error::{invalid, status};
use crate::metrics::RpcMetrics;
use incidentd_domain as d;
use incidentd_proto::v1 as pb;
use incidentd_proto::v1::status_page_service_server::StatusPageService;
use incidentd_statuspage::{ComponentState, Maintenance, MaintenanceStatus, StatusPage};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tonic::{Request, Response, Status};
use tracing::Instrument;

const DEFAULT_PAGE: u32 = 50;

#[derive(Clone)]
pub struct StatusPageApi {
    /// Filled once the status page has loaded (just after start-up).
    page: Arc<OnceLock<StatusPage>>,
    metrics: Arc<RpcMetrics>,
}

impl StatusPageApi {
    pub fn new(page: Arc<OnceLock<StatusPage>>, metrics: Arc<RpcMetrics>) -> Self {
        StatusPageApi { page, metrics }
    }

    fn page(&self) -> Result<&StatusPage, Status> {
        self.page
            .get()
            .ok_or_else(|| Status::unavailable("the status page is starting; retry in a moment"))
    }

    async fn observe<T>(
        &self,
        method: &'static str,
        fut: impl Future<Output = Result<T, Status>>,
    ) -> Result<Response<T>, Status> {
        let started = Instant::now();
        let result = fut.instrument(tracing::info_span!("rpc", rpc = method)).await;
        let code = result.as_ref().err().map_or(tonic::Code::Ok, Status::code);
        self.metrics.observe(method, code, started.elapsed());
        result.map(Response::new)
    }
}

fn component_status(s: &str) -> pb::ComponentStatus {
    match s {
        "degraded_performance" => pb::ComponentStatus::DegradedPerformance,
        "partial_outage" => pb::ComponentStatus::PartialOutage,
        "major_outage" => pb::ComponentStatus::MajorOutage,
        "under_maintenance" => pb::ComponentStatus::UnderMaintenance,
        _ => pb::ComponentStatus::Operational,
    }
}

fn component_status_in(v: i32) -> Result<d::ComponentStatus, Status> {
    match pb::ComponentStatus::try_from(v) {
        Ok(pb::ComponentStatus::Operational) => Ok(d::ComponentStatus::Operational),
        Ok(pb::ComponentStatus::DegradedPerformance) => Ok(d::ComponentStatus::DegradedPerformance),
        Ok(pb::ComponentStatus::PartialOutage) => Ok(d::ComponentStatus::PartialOutage),
        Ok(pb::ComponentStatus::MajorOutage) => Ok(d::ComponentStatus::MajorOutage),
        Ok(pb::ComponentStatus::UnderMaintenance) => Err(invalid(
            "status",
            "UNDER_MAINTENANCE comes from maintenance windows; it cannot be set",
        )),
        Ok(pb::ComponentStatus::Unspecified) => Err(invalid("status", "is required")),
        Err(_) => Err(invalid("status", format!("unknown value {v}"))),
    }
}

fn component(c: &ComponentState) -> pb::Component {
    let (incident_id, over) = match c.worst {
        Some((id, true)) => (
            id.to_string(),
            Some(pb::ComponentOverride {
                incident_id: id.to_string(),
                status: component_status(c.status.as_str()) as i32,
            }),
        ),
        Some((id, false)) => (id.to_string(), None),
        None => (String::new(), None),
    };
    pb::Component {
        service: c.def.id.clone(),
        name: c.def.name.clone(),
        group: c.def.group.clone().unwrap_or_default(),
        description: c.def.description.clone().unwrap_or_default(),
        position: u32::try_from(c.position).unwrap_or(u32::MAX),
        status: component_status(c.status_str()) as i32,
        r#override: over,
        incident_id,
    }
}

fn maintenance(m: &Maintenance, now: d::Timestamp) -> pb::Maintenance {
    let status = match m.status_at(now) {
        MaintenanceStatus::Scheduled => pb::MaintenanceStatus::Scheduled,
        MaintenanceStatus::InProgress => pb::MaintenanceStatus::InProgress,
        MaintenanceStatus::Verifying => pb::MaintenanceStatus::Verifying,
        MaintenanceStatus::Completed => pb::MaintenanceStatus::Completed,
    };
    pb::Maintenance {
        id: m.id.map(|i| i.to_string()).unwrap_or_default(),
        title: m.title.clone(),
        services: m.services.clone(),
        starts_at: Some(convert::ts(m.starts_at)),
        ends_at: Some(convert::ts(m.ends_at)),
        status: status as i32,
        notes: m
            .notes
            .iter()
            .map(|n| pb::MaintenanceNote {
                at: Some(convert::ts(n.at)),
                body: n.body.clone(),
            })
            .collect(),
        cancelled: m.cancelled_at.is_some(),
        created_at: Some(convert::ts(m.created_at)),
        updated_at: Some(convert::ts(m.updated_at)),
        verify_for: prost_types::Duration::try_from(incidentd_statuspage::maintenance::VERIFY_FOR).ok(),
        version: m.version,
    }
}

/// A request timestamp; out of range is `INVALID_ARGUMENT` naming the field.
fn time_in(field: &str, t: Option<prost_types::Timestamp>) -> Result<Option<d::Timestamp>, Status> {
    let Some(t) = t else { return Ok(None) };
    if !(0..=253_402_300_799).contains(&t.seconds) || !(0..1_000_000_000).contains(&t.nanos) {
        return Err(invalid(field, "timestamp out of range"));
    }
    Ok(Some(d::Timestamp(t.seconds * 1000 + i64::from(t.nanos / 1_000_000))))
}

#[tonic::async_trait]
impl StatusPageService for StatusPageApi {
    async fn list_components(
        &self,
        _req: Request<pb::ListComponentsRequest>,
    ) -> Result<Response<pb::ListComponentsResponse>, Status> {
        self.observe("ListComponents", async {
            let list = self.page()?.components().await.map_err(status)?;
            Ok(pb::ListComponentsResponse {
                components: list.iter().map(component).collect(),
            })
        })
        .await
    }

    async fn set_component_status(
        &self,
        req: Request<pb::SetComponentStatusRequest>,
    ) -> Result<Response<pb::Component>, Status> {
        let caller = crate::auth::Caller::of(&req);
        let r = req.into_inner();
        self.observe("SetComponentStatus", async {
            let caller = caller?;
            let id = convert::incident_id("incident_id", &r.incident_id)?;
            crate::auth::note_incident(&id);
            if r.service.trim().is_empty() {
                return Err(invalid("service", "is required"));
            }
            let st = component_status_in(r.status)?;
            let c = self
                .page()?
                .set_component_status(
                    id,
                    r.service,
                    st,
                    caller.acting(r.by)?,
                    caller.access(),
                    request_id(r.request_id)?,
                )
                .await
                .map_err(status)?;
            Ok(component(&c))
        })
        .await
    }

    async fn schedule_maintenance(
        &self,
        req: Request<pb::ScheduleMaintenanceRequest>,
    ) -> Result<Response<pb::Maintenance>, Status> {
        let r = req.into_inner();
        self.observe("ScheduleMaintenance", async {
            let sched = incidentd_statuspage::ScheduleRequest {
                title: r.title,
                services: r.services,
                starts_at: time_in("starts_at", r.starts_at)?,
                ends_at: time_in("ends_at", r.ends_at)?,
                body: r.body,
            };
            let m = self
                .page()?
                .schedule(sched, request_id(r.request_id)?)
                .await
                .map_err(status)?;
            Ok(maintenance(&m, self.page()?.now()))
        })
        .await
    }

    async fn update_maintenance(
        &self,
        req: Request<pb::UpdateMaintenanceRequest>,
    ) -> Result<Response<pb::Maintenance>, Status> {
        let r = req.into_inner();
        self.observe("UpdateMaintenance", async {
            if r.id.trim().is_empty() {
                return Err(invalid("id", "is required"));
            }
            let upd = incidentd_statuspage::UpdateRequest {
                body: opt(r.body),
                starts_at: time_in("starts_at", r.starts_at)?,
                ends_at: time_in("ends_at", r.ends_at)?,
                cancel: r.cancel,
            };
            let m = self
                .page()?
                .update(r.id, upd, request_id(r.request_id)?)
                .await
                .map_err(status)?;
            Ok(maintenance(&m, self.page()?.now()))
        })
        .await
    }

    async fn list_maintenances(
        &self,
        req: Request<pb::ListMaintenancesRequest>,
    ) -> Result<Response<pb::ListMaintenancesResponse>, Status> {
        let r = req.into_inner();
        self.observe("ListMaintenances", async {
            let limit = match r.page_size {
                0 => DEFAULT_PAGE as usize,
                n if n > crate::grpc::MAX_PAGE => {
                    return Err(invalid("page_size", format!("at most {}", crate::grpc::MAX_PAGE)));
                }
                n => n as usize,
            };
            let after = if r.page_token.is_empty() {
                None
            } else {
                Some(
                    incidentd_statuspage::MaintenanceId::parse(&r.page_token)
                        .ok_or_else(|| invalid("page_token", "not a token from a previous page"))?,
                )
            };
            let now = self.page()?.now();
            let all = self.page()?.maintenances().await.map_err(status)?;
            let mut page: Vec<&Maintenance> = all
                .iter()
                .filter(|m| after.is_none_or(|a| m.id.is_some_and(|id| id > a)))
                .filter(|m| {
                    !r.open_only || (m.cancelled_at.is_none() && m.status_at(now) != MaintenanceStatus::Completed)
                })
                .take(limit + 1)
                .collect();
            let more = page.len() > limit;
            page.truncate(limit);
            let next_page_token = if more {
                page.last()
                    .and_then(|m| m.id)
                    .map(|i| i.to_string())
                    .unwrap_or_default()
            } else {
                String::new()
            };
            Ok(pb::ListMaintenancesResponse {
                maintenances: page.iter().map(|m| maintenance(m, now)).collect(),
                next_page_token,
            })
        })
        .await
    }
}
