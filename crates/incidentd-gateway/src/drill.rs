//! `DrillService`: game days. A drill is an incident with `drill = true`
//! whose scenario plays through its own timers; role rotation reads the
//! supervisor's summaries.

use crate::auth::Caller;
use crate::convert::{self, opt, request_id, ts};
use crate::error::{invalid, status};
use crate::grpc::{all_incidents, observe};
use crate::metrics::RpcMetrics;
use incidentd_actors::drills::{DrillRoles, DrillState, ScheduledDrill};
use incidentd_actors::{Filter, Handle};
use incidentd_domain as d;
use incidentd_domain::drill::{Scenario, StepKind, role_rotation};
use incidentd_proto::v1 as pb;
use incidentd_proto::v1::drill_service_server::DrillService;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Role rotation looks this far back by default (a quarter).
const ROTATION_WINDOW_MS: i64 = 90 * 24 * 3600 * 1000;

pub struct DrillApi {
    handle: Handle,
    metrics: Arc<RpcMetrics>,
}

impl DrillApi {
    pub fn new(handle: Handle, metrics: Arc<RpcMetrics>) -> Self {
        DrillApi { handle, metrics }
    }

    async fn observe<T>(
        &self,
        method: &'static str,
        fut: impl Future<Output = Result<T, Status>>,
    ) -> Result<Response<T>, Status> {
        observe(&self.metrics, method, fut).await
    }
}

fn step_pb(s: &incidentd_domain::drill::Step) -> pb::ScenarioStep {
    let (kind, text) = match &s.kind {
        StepKind::Alert { text } => ("alert", text.clone()),
        StepKind::Finding { text } => ("finding", text.clone()),
        StepKind::CustomerComplaint { text } => ("customer_complaint", text.clone()),
        StepKind::Note { text } => ("note", text.clone()),
        StepKind::Severity { to, reason } => ("severity", format!("{to}: {reason}")),
        StepKind::DataLoss { value } => ("data_loss", format!("data loss {value}")),
        StepKind::Regulatory { text } => ("regulatory", text.clone()),
    };
    pb::ScenarioStep {
        after: Some(prost_types::Duration {
            seconds: s.after_secs as i64,
            nanos: 0,
        }),
        kind: kind.into(),
        text,
    }
}

fn drill_pb(d: &ScheduledDrill) -> pb::Drill {
    let (state, incident_id, reason) = match &d.state {
        DrillState::Scheduled => ("scheduled", String::new(), String::new()),
        DrillState::Started { incident, .. } => ("started", incident.to_string(), String::new()),
        DrillState::Cancelled { .. } => ("cancelled", String::new(), String::new()),
        DrillState::Failed { reason, .. } => ("failed", String::new(), reason.clone()),
    };
    pb::Drill {
        id: d.id.clone(),
        scenario: d.scenario.clone(),
        team: d.team.clone(),
        at: Some(ts(d.at)),
        recurring: d.recurring,
        state: state.into(),
        reminded_at: d.reminded_at.map(ts),
        incident_id,
        reason,
        scheduled_by: d.scheduled_by.clone().unwrap_or_default(),
    }
}

fn scenario_pb(s: &Scenario) -> pb::Scenario {
    pb::Scenario {
        id: s.id.clone(),
        title: s.title.clone(),
        description: s.description.clone(),
        severity: s.severity.map_or(pb::Severity::Unspecified, convert::severity) as i32,
        steps: s.steps.iter().map(step_pb).collect(),
    }
}

#[tonic::async_trait]
impl DrillService for DrillApi {
    async fn list_scenarios(
        &self,
        _request: Request<pb::ListScenariosRequest>,
    ) -> Result<Response<pb::ListScenariosResponse>, Status> {
        self.observe("ListScenarios", async {
            Ok(pb::ListScenariosResponse {
                scenarios: self.handle.org().scenarios().iter().map(scenario_pb).collect(),
            })
        })
        .await
    }

    async fn start_drill(&self, request: Request<pb::StartDrillRequest>) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&request);
        let r = request.into_inner();
        self.observe("StartDrill", async {
            if r.scenario.is_empty() {
                return Err(invalid("scenario", "is required"));
            }
            let roles = r.roles.unwrap_or_default();
            let roles = DrillRoles {
                commander: opt(roles.commander),
                comms_lead: opt(roles.comms_lead),
                smes: roles.smes.into_iter().map(|s| (s.person, s.track)).collect(),
            };
            let caller = caller?;
            caller.may_act(&r.team, d::Scope::Command)?;
            let by = caller.acting(r.by)?;
            let inc = self
                .handle
                .start_drill(&r.scenario, &r.team, roles, by, request_id(r.request_id)?)
                .await
                .map_err(status)?;
            crate::auth::note_incident(&inc.id);
            let policy = self.handle.org().policy(&inc.team);
            Ok(convert::incident(&inc, &policy))
        })
        .await
    }

    async fn schedule_drill(&self, request: Request<pb::ScheduleDrillRequest>) -> Result<Response<pb::Drill>, Status> {
        let caller = Caller::of(&request);
        let r = request.into_inner();
        self.observe("ScheduleDrill", async {
            if r.scenario.is_empty() {
                return Err(invalid("scenario", "is required"));
            }
            let at = match r.at {
                None => None,
                Some(t) if t.seconds < 0 => return Err(invalid("at", "is not a valid timestamp")),
                Some(t) => Some(d::Timestamp(t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)),
            };
            let caller = caller?;
            caller.may_act(&r.team, d::Scope::Command)?;
            let by = caller.acting(r.by)?;
            let drill = self
                .handle
                .schedule_drill(r.scenario, r.team, at, r.recurring, by)
                .await
                .map_err(status)?;
            Ok(drill_pb(&drill))
        })
        .await
    }

    async fn list_drills(
        &self,
        request: Request<pb::ListDrillsRequest>,
    ) -> Result<Response<pb::ListDrillsResponse>, Status> {
        let caller = Caller::of(&request);
        let r = request.into_inner();
        self.observe("ListDrills", async {
            if !r.team.is_empty() && !self.handle.org().has_team(&r.team) {
                return Err(Status::not_found(format!("team: unknown team {:?}", r.team)));
            }
            let caller = caller?;
            let drills = self.handle.list_drills(opt(r.team)).await.map_err(status)?;
            Ok(pb::ListDrillsResponse {
                drills: drills
                    .iter()
                    .filter(|x| caller.may_read(&x.team).is_ok())
                    .map(drill_pb)
                    .collect(),
            })
        })
        .await
    }

    async fn cancel_drill(&self, request: Request<pb::CancelDrillRequest>) -> Result<Response<pb::Drill>, Status> {
        let caller = Caller::of(&request);
        let r = request.into_inner();
        self.observe("CancelDrill", async {
            if r.id.is_empty() {
                return Err(invalid("id", "is required"));
            }
            let caller = caller?;
            if caller.grant().is_some() {
                let drills = self.handle.list_drills(None).await.map_err(status)?;
                if let Some(drill) = drills.iter().find(|x| x.id == r.id) {
                    caller.may_act(&drill.team, d::Scope::Command)?;
                }
            }
            let drill = self.handle.cancel_drill(r.id).await.map_err(status)?;
            Ok(drill_pb(&drill))
        })
        .await
    }

    async fn get_role_rotation(
        &self,
        request: Request<pb::GetRoleRotationRequest>,
    ) -> Result<Response<pb::RoleRotation>, Status> {
        let caller = Caller::of(&request);
        let r = request.into_inner();
        self.observe("GetRoleRotation", async {
            let org = self.handle.org();
            if r.team.is_empty() {
                return Err(invalid("team", "is required"));
            }
            if !org.has_team(&r.team) {
                return Err(Status::not_found(format!("team: unknown team {:?}", r.team)));
            }
            caller?.may_read(&r.team)?;
            let since = match r.since {
                Some(t) if t.seconds >= 0 => d::Timestamp(t.seconds * 1000),
                Some(_) => return Err(invalid("since", "is not a valid timestamp")),
                None => d::Timestamp(self.handle.clock().now().0 - ROTATION_WINDOW_MS),
            };
            let filter = Filter {
                team: Some(r.team.clone()),
                ..Default::default()
            };
            let incidents = all_incidents(&self.handle, filter).await?;
            let members = org.team_members(&r.team);
            let (counts, never, suggestion) = role_rotation(
                incidents.iter().filter(|s| s.declared_at >= since).map(|s| &**s),
                &members,
            );
            Ok(pb::RoleRotation {
                team: r.team,
                since: Some(ts(since)),
                people: counts
                    .into_iter()
                    .map(|(person, c)| pb::RoleCount {
                        person,
                        commander: c.commander,
                        comms_lead: c.comms_lead,
                        sme: c.sme,
                        last_commander_at: c.last_commander_at.map(ts),
                    })
                    .collect(),
                never_commander: never,
                suggested_commander: suggestion.unwrap_or_default(),
            })
        })
        .await
    }
}
