//! `incident.v1.IncidentService` over the actors' `Handle`. Each method
//! validates and converts its request (naming bad fields), calls the handle,
//! and converts the answer; nothing else.

use crate::auth::Caller;
use crate::convert::{self, opt, request_id};
use crate::error::{invalid, status};
use crate::metrics::RpcMetrics;
use futures::Stream;
use incidentd_actors::{Filter, Handle};
use incidentd_domain::{self as d, Action, Command};
use incidentd_proto::v1 as pb;
use incidentd_proto::v1::incident_service_server::IncidentService;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};
use tracing::Instrument;

/// Largest page a list call returns.
pub const MAX_PAGE: u32 = 500;
const DEFAULT_PAGE: u32 = 50;
/// Events buffered per watcher before it is considered slow.
const WATCH_BUFFER: usize = 256;

#[derive(Clone)]
pub struct IncidentApi {
    handle: Handle,
    metrics: Arc<RpcMetrics>,
    /// Becomes true at shutdown: open watch streams end with UNAVAILABLE so draining finishes.
    stop: tokio::sync::watch::Receiver<bool>,
}

impl IncidentApi {
    pub fn new(handle: Handle, metrics: Arc<RpcMetrics>, stop: tokio::sync::watch::Receiver<bool>) -> Self {
        IncidentApi { handle, metrics, stop }
    }

    async fn observe<T>(
        &self,
        method: &'static str,
        fut: impl Future<Output = Result<T, Status>>,
    ) -> Result<Response<T>, Status> {
        observe(&self.metrics, method, fut).await
    }

    fn incident_pb(&self, s: &d::Incident) -> pb::Incident {
        let policy = self.handle.org().policy(&s.team);
        convert::incident(s, &policy)
    }

    async fn command(
        &self,
        caller: Result<Caller, Status>,
        id: &str,
        by: String,
        action: Action,
        rid: String,
    ) -> Result<pb::Incident, Status> {
        let caller = caller?;
        let id = convert::incident_id("id", id)?;
        crate::auth::note_incident(&id);
        let cmd = Command {
            access: caller.access(),
            by: caller.acting(by)?,
            action,
        };
        let s = self
            .handle
            .execute_incident(id, cmd, request_id(rid)?)
            .await
            .map_err(status)?;
        Ok(self.incident_pb(&s))
    }
}

fn filter(
    team: String,
    statuses: &[i32],
    severities: &[i32],
    active_only: bool,
    drill: Option<bool>,
) -> Result<Filter, Status> {
    let mut f = Filter {
        team: opt(team),
        active_only,
        drill,
        ..Default::default()
    };
    for s in statuses {
        if let Some(s) = convert::status_in("status", *s)? {
            f.status.push(s);
        }
    }
    for s in severities {
        if let Some(s) = convert::severity_in("severity", *s)? {
            f.severity.push(s);
        }
    }
    Ok(f)
}

/// Runs one RPC inside a span, recording its latency and status code.
pub(crate) async fn observe<T>(
    metrics: &RpcMetrics,
    method: &'static str,
    fut: impl Future<Output = Result<T, Status>>,
) -> Result<Response<T>, Status> {
    let started = Instant::now();
    let span = tracing::info_span!("rpc", rpc = method, incident_id = tracing::field::Empty);
    let result = fut.instrument(span).await;
    let code = match &result {
        Ok(_) => tonic::Code::Ok,
        Err(s) => s.code(),
    };
    metrics.observe(method, code, started.elapsed());
    result.map(Response::new)
}

/// Every incident summary matching `filter` (action items, reports and role
/// rotation read all of them; summaries carry everything but timelines).
pub(crate) async fn all_incidents(handle: &Handle, filter: Filter) -> Result<Vec<Arc<d::Incident>>, Status> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = handle
            .list(filter.clone(), after, MAX_PAGE as usize)
            .await
            .map_err(status)?;
        out.extend(page.incidents);
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

pub(crate) fn page_size(n: u32, default: u32) -> Result<usize, Status> {
    match n {
        0 => Ok(default as usize),
        n if n > MAX_PAGE => Err(invalid("page_size", format!("at most {MAX_PAGE}"))),
        n => Ok(n as usize),
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::IncidentEvent, Status>> + Send>>;

fn stream_of(rx: mpsc::Receiver<Result<pb::IncidentEvent, Status>>) -> EventStream {
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

#[tonic::async_trait]
impl IncidentService for IncidentApi {
    async fn declare_incident(
        &self,
        req: Request<pb::DeclareIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        self.observe("DeclareIncident", async {
            let caller = caller?;
            // No team: the org's default team (declare first, sort it out
            // later), or the token's own team when it may not use that one.
            let team = match opt(r.team) {
                Some(t) => t,
                None => {
                    let default = self.handle.org().default_team().unwrap_or_default();
                    match caller.grant().map(|g| &g.teams) {
                        Some(d::Teams::Only(ts)) if !ts.contains(&default) => ts.first().cloned().unwrap_or(default),
                        _ => default,
                    }
                }
            };
            let action = Action::Declare {
                id: d::IncidentId::default(),
                number: 0,
                title: r.title,
                team,
                services: r.services,
                severity: convert::severity_in("severity", r.severity)?,
                summary: r.summary,
                commander: opt(r.commander),
                drill: r.drill,
            };
            let cmd = Command {
                access: caller.access(),
                by: caller.acting(r.by)?,
                action,
            };
            let s = self
                .handle
                .declare(cmd, request_id(r.request_id)?)
                .await
                .map_err(status)?;
            crate::auth::note_incident(&s.id);
            Ok(self.incident_pb(&s))
        })
        .await
    }

    async fn get_incident(&self, req: Request<pb::GetIncidentRequest>) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        self.observe("GetIncident", async {
            let id = convert::incident_id("id", &r.id)?;
            let s = self.handle.get(id).await.map_err(status)?;
            caller?.may_read(&s.team)?;
            Ok(self.incident_pb(&s))
        })
        .await
    }

    async fn list_incidents(
        &self,
        req: Request<pb::ListIncidentsRequest>,
    ) -> Result<Response<pb::ListIncidentsResponse>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        self.observe("ListIncidents", async {
            let mut f = filter(r.team, &r.status, &r.severity, r.active_only, r.drill)?;
            f.readable = caller?.readable_teams().map(Into::into);
            let limit = page_size(r.page_size, DEFAULT_PAGE)?;
            let after = if r.page_token.is_empty() {
                None
            } else {
                Some(
                    d::IncidentId::parse(&r.page_token)
                        .ok_or_else(|| invalid("page_token", "not a token from a previous page"))?,
                )
            };
            let page = self.handle.list(f, after, limit).await.map_err(status)?;
            Ok(pb::ListIncidentsResponse {
                incidents: page.incidents.iter().map(|s| self.incident_pb(s)).collect(),
                next_page_token: page.next.map(|id| id.to_string()).unwrap_or_default(),
            })
        })
        .await
    }

    async fn acknowledge_incident(
        &self,
        req: Request<pb::AcknowledgeIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        self.observe(
            "AcknowledgeIncident",
            self.command(caller, &r.id, r.by, Action::Acknowledge, r.request_id),
        )
        .await
    }

    async fn set_severity(&self, req: Request<pb::SetSeverityRequest>) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        self.observe("SetSeverity", async {
            let severity = convert::required_severity("severity", r.severity)?;
            self.command(
                caller,
                &r.id,
                r.by,
                Action::SetSeverity {
                    severity,
                    reason: r.reason,
                },
                r.request_id,
            )
            .await
        })
        .await
    }

    async fn assign_role(&self, req: Request<pb::AssignRoleRequest>) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        self.observe("AssignRole", async {
            let role = convert::role_in(r.role)?;
            let action = Action::AssignRole {
                role,
                person: r.person,
                track: opt(r.track),
            };
            self.command(caller, &r.id, r.by, action, r.request_id).await
        })
        .await
    }

    async fn unassign_role(&self, req: Request<pb::UnassignRoleRequest>) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        self.observe("UnassignRole", async {
            let role = convert::role_in(r.role)?;
            if r.person.is_empty() {
                return Err(invalid("person", "is required"));
            }
            self.command(
                caller,
                &r.id,
                r.by,
                Action::UnassignRole { role, person: r.person },
                r.request_id,
            )
            .await
        })
        .await
    }

    async fn set_status(&self, req: Request<pb::SetStatusRequest>) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        self.observe("SetStatus", async {
            let s = convert::status_in("status", r.status)?.ok_or_else(|| {
                invalid(
                    "status",
                    "is required (INVESTIGATING, IDENTIFIED, MITIGATING or RESOLVED)",
                )
            })?;
            self.command(
                caller,
                &r.id,
                r.by,
                Action::SetStatus {
                    status: s,
                    note: r.note,
                },
                r.request_id,
            )
            .await
        })
        .await
    }

    async fn set_impact(&self, req: Request<pb::SetImpactRequest>) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        self.observe("SetImpact", async {
            let action = Action::SetImpact {
                impact: r.impact,
                customer_impact_percent: r.customer_impact_percent,
                data_loss: convert::data_loss_in(r.data_loss)?,
                regulatory: r.regulatory,
            };
            self.command(caller, &r.id, r.by, action, r.request_id).await
        })
        .await
    }

    async fn add_timeline_entry(
        &self,
        req: Request<pb::AddTimelineEntryRequest>,
    ) -> Result<Response<pb::TimelineEntry>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        self.observe("AddTimelineEntry", async {
            let id = convert::incident_id("id", &r.id)?;
            crate::auth::note_incident(&id);
            let caller = caller?;
            let kind = convert::entry_kind_in(r.kind)?;
            let cmd = Command {
                access: caller.access(),
                by: caller.acting_field("author", r.author)?,
                action: Action::AddEntry { kind, text: r.text },
            };
            let e = self
                .handle
                .execute_entry(id, cmd, request_id(r.request_id)?)
                .await
                .map_err(status)?;
            Ok(convert::entry(&id, &e))
        })
        .await
    }

    async fn post_update(&self, req: Request<pb::PostUpdateRequest>) -> Result<Response<pb::Update>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        self.observe("PostUpdate", async {
            let id = convert::incident_id("id", &r.id)?;
            crate::auth::note_incident(&id);
            let caller = caller?;
            let kind = convert::update_kind_in(r.kind)?;
            let next_update_in_secs = match r.next_update_in {
                None => None,
                Some(d) if d.seconds < 0 || d.nanos < 0 => return Err(invalid("next_update_in", "must be positive")),
                Some(d) => Some(d.seconds as u64),
            };
            let fields = d::UpdateFields {
                status_text: opt(r.status_text),
                impact: opt(r.impact),
                current_theory: opt(r.current_theory),
                next_steps: opt(r.next_steps),
                next_update_in_secs,
                customer_symptom: opt(r.customer_symptom),
                business_impact: opt(r.business_impact),
                estimated_resolution: opt(r.estimated_resolution),
            };
            let cmd = Command {
                access: caller.access(),
                by: caller.acting(r.by)?,
                action: Action::PostUpdate { kind, fields },
            };
            let u = self
                .handle
                .execute_update(id, cmd, request_id(r.request_id)?)
                .await
                .map_err(status)?;
            Ok(convert::update(&id, &u))
        })
        .await
    }

    async fn resolve_incident(
        &self,
        req: Request<pb::ResolveIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        self.observe(
            "ResolveIncident",
            self.command(caller, &r.id, r.by, Action::Resolve { note: r.note }, r.request_id),
        )
        .await
    }

    async fn get_timeline(
        &self,
        req: Request<pb::GetTimelineRequest>,
    ) -> Result<Response<pb::GetTimelineResponse>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        self.observe("GetTimeline", async {
            let id = convert::incident_id("id", &r.id)?;
            let limit = page_size(r.page_size, MAX_PAGE)?;
            let after: u64 = if r.page_token.is_empty() {
                0
            } else {
                r.page_token
                    .parse()
                    .map_err(|_| invalid("page_token", "not a token from a previous page"))?
            };
            let s = self.handle.get(id).await.map_err(status)?;
            caller?.may_read(&s.team)?;
            let start = usize::try_from(after).unwrap_or(usize::MAX).min(s.timeline.len());
            let entries: Vec<pb::TimelineEntry> = s.timeline[start..]
                .iter()
                .take(limit)
                .map(|e| convert::entry(&id, e))
                .collect();
            let end = start + entries.len();
            let next_page_token = if end < s.timeline.len() {
                end.to_string()
            } else {
                String::new()
            };
            Ok(pb::GetTimelineResponse {
                entries,
                next_page_token,
            })
        })
        .await
    }

    type WatchIncidentStream = EventStream;

    async fn watch_incident(
        &self,
        req: Request<pb::WatchIncidentRequest>,
    ) -> Result<Response<Self::WatchIncidentStream>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        self.observe("WatchIncident", async {
            let id = convert::incident_id("id", &r.id)?;
            let incident = self.handle.get(id).await.map_err(status)?;
            caller?.may_read(&incident.team)?;
            let number = incident.number;
            let mut watch = self.handle.watch(id, r.from_version).await.map_err(status)?;
            let (tx, rx) = mpsc::channel(WATCH_BUFFER);
            let mut stop = self.stop.clone();
            tokio::spawn(async move {
                loop {
                    let next = tokio::select! {
                        n = watch.next() => n,
                        _ = stop.wait_for(|s| *s) => Err(incidentd_actors::Error::ShuttingDown),
                        _ = tx.closed() => break,
                    };
                    let item = match next {
                        Ok(i) => Ok(convert::event(&i.incident, number, i.version, &i.event, &i.json)),
                        Err(e) => Err(status(e)),
                    };
                    let end = item.is_err();
                    if tx.send(item).await.is_err() || end {
                        break;
                    }
                }
            });
            Ok(stream_of(rx))
        })
        .await
    }

    type WatchIncidentsStream = EventStream;

    async fn watch_incidents(
        &self,
        req: Request<pb::WatchIncidentsRequest>,
    ) -> Result<Response<Self::WatchIncidentsStream>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        self.observe("WatchIncidents", async {
            let mut f = filter(r.team, &r.status, &r.severity, r.active_only, r.drill)?;
            f.readable = caller?.readable_teams().map(Into::into);
            let mut feed = self.handle.watch_all();
            let (tx, rx) = mpsc::channel(WATCH_BUFFER);
            let mut stop = self.stop.clone();
            tokio::spawn(async move {
                use tokio::sync::broadcast::error::RecvError;
                loop {
                    let next = tokio::select! {
                        n = feed.recv() => n,
                        _ = stop.wait_for(|s| *s) => Err(RecvError::Closed),
                        _ = tx.closed() => break,
                    };
                    let item = match next {
                        Ok(p) if f.matches(&p.summary) => Ok(convert::event(
                            &p.incident,
                            p.summary.number,
                            p.version,
                            &p.event,
                            &p.json,
                        )),
                        Ok(_) => continue,
                        Err(RecvError::Lagged(n)) => Err(Status::resource_exhausted(format!(
                            "watcher fell {n} events behind; watch again"
                        ))),
                        Err(RecvError::Closed) => Err(Status::unavailable("shutting down")),
                    };
                    let end = item.is_err();
                    if tx.send(item).await.is_err() || end {
                        break;
                    }
                }
            });
            Ok(stream_of(rx))
        })
        .await
    }
}
