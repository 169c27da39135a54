//! `DrillService`: game days. A drill is an incident with `drill = true`
//! whose scenario plays through its own timers; role rotation reads the
//! supervisor's summaries.

use crate::convert::{self, opt, request_id, ts};
use crate::error::{invalid, status};
use crate::grpc::{all_incidents, observe};
use crate::metrics::RpcMetrics;
use incidentd_actors::{Filter, Handle};
use incidentd_domain::drill::{Scenario, StepKind, role_rotation};
use incidentd_domain::{self as d, Action, Command, Role};
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

    /// One command of the drill's setup; retries of the whole call replay
    /// each step by its own request id.
    async fn step(
        &self,
        id: d::IncidentId,
        by: &Option<String>,
        action: Action,
        rid: &Option<String>,
        n: &str,
    ) -> Result<d::Incident, Status> {
        let cmd = Command { by: by.clone(), action };
        let rid = rid.as_ref().map(|r| format!("{r}/{n}"));
        self.handle.execute_incident(id, cmd, rid).await.map_err(status)
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
        let r = request.into_inner();
        self.observe("StartDrill", async {
            let org = self.handle.org();
            if r.scenario.is_empty() {
                return Err(invalid("scenario", "is required"));
            }
            let scenario = org
                .scenarios()
                .into_iter()
                .find(|s| s.id == r.scenario)
                .ok_or_else(|| Status::not_found(format!("scenario: unknown scenario {:?}", r.scenario)))?;
            if r.team.is_empty() {
                return Err(invalid("team", "is required"));
            }
            let roles = r.roles.unwrap_or_default();
            // Everyone named must exist before anything is declared: no half-started drill.
            let mut people = vec![
                ("roles.commander", &roles.commander),
                ("roles.comms_lead", &roles.comms_lead),
            ];
            people.extend(roles.smes.iter().map(|s| ("roles.smes.person", &s.person)));
            for (field, p) in people {
                if !p.is_empty() && !org.has_person(p) {
                    return Err(Status::not_found(format!("{field}: unknown person {p:?}")));
                }
            }
            if let Some(s) = roles
                .smes
                .iter()
                .find(|s| s.person.is_empty() || s.track.trim().is_empty())
            {
                let field = if s.person.is_empty() {
                    "roles.smes.person"
                } else {
                    "roles.smes.track"
                };
                return Err(invalid(field, "every SME needs a person and a track"));
            }
            let by = opt(r.by);
            let rid = request_id(r.request_id)?;
            let declare = Command {
                by: by.clone(),
                action: Action::Declare {
                    id: d::IncidentId::default(),
                    number: 0,
                    title: scenario.title.clone(),
                    team: r.team,
                    services: Vec::new(),
                    severity: scenario.severity,
                    summary: scenario.description.clone(),
                    commander: opt(roles.commander),
                    drill: true,
                },
            };
            let inc = self.handle.declare(declare, rid.clone()).await.map_err(status)?;
            let id = inc.id;
            tracing::Span::current().record("incident_id", tracing::field::display(&id));
            let mut last = self
                .step(id, &by, Action::StartScript { scenario }, &rid, "script")
                .await?;
            if let Some(comms) = opt(roles.comms_lead) {
                let assign = Action::AssignRole {
                    role: Role::CommsLead,
                    person: comms,
                    track: None,
                };
                last = self.step(id, &by, assign, &rid, "comms").await?;
            }
            for (i, sme) in roles.smes.into_iter().enumerate() {
                let assign = Action::AssignRole {
                    role: Role::Sme,
                    person: sme.person,
                    track: Some(sme.track),
                };
                last = self.step(id, &by, assign, &rid, &format!("sme{i}")).await?;
            }
            let policy = org.policy(&last.team);
            Ok(convert::incident(&last, &policy))
        })
        .await
    }

    async fn get_role_rotation(
        &self,
        request: Request<pb::GetRoleRotationRequest>,
    ) -> Result<Response<pb::RoleRotation>, Status> {
        let r = request.into_inner();
        self.observe("GetRoleRotation", async {
            let org = self.handle.org();
            if r.team.is_empty() {
                return Err(invalid("team", "is required"));
            }
            if !org.has_team(&r.team) {
                return Err(Status::not_found(format!("team: unknown team {:?}", r.team)));
            }
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
