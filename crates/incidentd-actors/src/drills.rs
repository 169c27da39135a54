//! Game days: starting a drill (declare + scenario + roles), and the drill
//! calendar, an actor that owns the scheduled drills, keeps them durable in
//! `drills.log` (acknowledged means synced), reminds a day ahead and starts
//! each drill at its time with the team's suggested commander; recurring
//! drills (the quarterly default) schedule their next one when they start.

use crate::error::{Error, Result};
use crate::handle::Handle;
use crate::shared::Timer;
use incidentd_domain::drill::{Scenario, role_rotation};
use incidentd_domain::{Action, Command, DomainError, Incident, IncidentId, Role, Timestamp};
use incidentd_store::OutboxLog;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Who plays which role in a drill.
#[derive(Debug, Clone, Default)]
pub struct DrillRoles {
    pub commander: Option<String>,
    pub comms_lead: Option<String>,
    /// (person, track)
    pub smes: Vec<(String, String)>,
}

/// Reminders go out this long before a scheduled drill.
pub const REMIND_BEFORE: Duration = Duration::from_secs(24 * 3600);
/// The default cadence of recurring drills: a quarter.
pub const QUARTER: Duration = Duration::from_secs(91 * 24 * 3600);

impl Handle {
    /// Declares a drill incident from a scenario, plays its script and
    /// assigns the roles. Everyone named is checked before anything is
    /// declared; with a request id, each step is idempotent on retry.
    pub async fn start_drill(
        &self,
        scenario: &str,
        team: &str,
        roles: DrillRoles,
        by: Option<String>,
        request_id: Option<String>,
    ) -> Result<Incident> {
        let org = self.org();
        let scenario: Scenario = org
            .scenarios()
            .into_iter()
            .find(|s| s.id == scenario)
            .ok_or_else(|| DomainError::not_found("scenario", format!("unknown scenario {scenario:?}")))?;
        if team.is_empty() {
            return Err(DomainError::invalid("team", "is required").into());
        }
        let mut people = vec![
            ("roles.commander", &roles.commander),
            ("roles.comms_lead", &roles.comms_lead),
        ];
        let smes: Vec<Option<String>> = roles.smes.iter().map(|(p, _)| Some(p.clone())).collect();
        people.extend(smes.iter().map(|p| ("roles.smes.person", p)));
        for (field, p) in people {
            if let Some(p) = p
                && !org.has_person(p)
            {
                return Err(DomainError::not_found(field, format!("unknown person {p:?}")).into());
            }
        }
        if roles.smes.iter().any(|(p, t)| p.is_empty() || t.trim().is_empty()) {
            return Err(DomainError::invalid("roles.smes.track", "every SME needs a person and a track").into());
        }
        let declare = Command {
            access: Default::default(),
            by: by.clone(),
            action: Action::Declare {
                id: IncidentId::default(),
                number: 0,
                title: scenario.title.clone(),
                team: team.to_string(),
                services: Vec::new(),
                severity: scenario.severity,
                summary: scenario.description.clone(),
                commander: roles.commander.clone(),
                drill: true,
            },
        };
        let inc = self.declare(declare, request_id.clone()).await?;
        let step = |action: Action, n: String| {
            let cmd = Command {
                access: Default::default(),
                by: by.clone(),
                action,
            };
            let rid = request_id.as_ref().map(|r| format!("{r}/{n}"));
            self.execute_incident(inc.id, cmd, rid)
        };
        let mut last = step(Action::StartScript { scenario }, "script".into()).await?;
        if let Some(comms) = roles.comms_lead {
            let assign = Action::AssignRole {
                role: Role::CommsLead,
                person: comms,
                track: None,
            };
            last = step(assign, "comms".into()).await?;
        }
        for (i, (person, track)) in roles.smes.into_iter().enumerate() {
            let assign = Action::AssignRole {
                role: Role::Sme,
                person,
                track: Some(track),
            };
            last = step(assign, format!("sme{i}")).await?;
        }
        Ok(last)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DrillState {
    Scheduled,
    Started {
        incident: IncidentId,
        at: Timestamp,
    },
    Cancelled {
        at: Timestamp,
    },
    /// Starting it failed (e.g. the scenario was removed); says why.
    Failed {
        at: Timestamp,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledDrill {
    pub id: String,
    pub scenario: String,
    pub team: String,
    pub at: Timestamp,
    pub recurring: bool,
    pub scheduled_by: Option<String>,
    pub reminded_at: Option<Timestamp>,
    pub state: DrillState,
}

/// One record of `drills.log`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Record {
    Scheduled(ScheduledDrill),
    Reminded { id: String, at: Timestamp },
    Changed { id: String, state: DrillState },
}

pub enum CalendarMsg {
    Schedule {
        scenario: String,
        team: String,
        /// `None`: a quarter after the team's latest drill (or now).
        at: Option<Timestamp>,
        recurring: bool,
        by: Option<String>,
        reply: RpcReplyPort<Result<ScheduledDrill>>,
    },
    Cancel {
        id: String,
        reply: RpcReplyPort<Result<ScheduledDrill>>,
    },
    List {
        team: Option<String>,
        reply: RpcReplyPort<Vec<ScheduledDrill>>,
    },
    Tick,
}

pub struct Calendar;

pub struct CalendarState {
    handle: Handle,
    log: OutboxLog,
    drills: Vec<ScheduledDrill>,
    timer: Option<Timer>,
    ids: ulid::Generator,
}

fn fold(records: &[Vec<u8>]) -> Vec<ScheduledDrill> {
    let mut drills: Vec<ScheduledDrill> = Vec::new();
    for r in records {
        let Ok(rec) = serde_json::from_slice::<Record>(r) else {
            tracing::warn!("skipping an unreadable drills.log record");
            continue;
        };
        match rec {
            Record::Scheduled(d) => drills.push(d),
            Record::Reminded { id, at } => {
                if let Some(d) = drills.iter_mut().find(|d| d.id == id) {
                    d.reminded_at = Some(at);
                }
            }
            Record::Changed { id, state } => {
                if let Some(d) = drills.iter_mut().find(|d| d.id == id) {
                    d.state = state;
                }
            }
        }
    }
    drills
}

impl Calendar {
    /// Opens `drills.log` in the store's directory and starts the calendar.
    pub async fn start(handle: Handle) -> Result<ActorRef<CalendarMsg>> {
        let dir = handle.store().dir().to_path_buf();
        let (log, drills) = tokio::task::spawn_blocking(move || {
            let mut folded = Vec::new();
            let opened = OutboxLog::open_named(&dir, "drills.log", |records| {
                folded = fold(records);
                // Compacted: one `Scheduled` record per drill, state folded in.
                folded
                    .iter()
                    .filter_map(|d| serde_json::to_vec(&Record::Scheduled(d.clone())).ok())
                    .collect()
            });
            opened.map(|(log, _)| (log, folded))
        })
        .await
        .map_err(|e| Error::Internal(format!("drill calendar: {e}")))??;
        let (actor, _) = Actor::spawn(None, Calendar, (handle, log, drills))
            .await
            .map_err(|e| Error::Internal(format!("could not start the drill calendar: {e}")))?;
        Ok(actor)
    }
}

impl CalendarState {
    async fn persist(&self, rec: &Record) -> Result<()> {
        let bytes = serde_json::to_vec(rec).map_err(|e| Error::Internal(e.to_string()))?;
        self.log
            .append(vec![bytes])
            .await
            .map_err(|_| Error::ShuttingDown)?
            .map_err(Error::from)
    }

    fn next_due(&self) -> Option<Timestamp> {
        self.drills
            .iter()
            .filter(|d| d.state == DrillState::Scheduled)
            .map(|d| match d.reminded_at {
                None => Timestamp(d.at.0.saturating_sub(REMIND_BEFORE.as_millis() as i64)),
                Some(_) => d.at,
            })
            .min()
    }

    fn arm(&mut self, myself: &ActorRef<CalendarMsg>) {
        let clock = self.handle.clock();
        self.timer = self
            .next_due()
            .map(|due| Timer::start(&clock, due, myself.clone(), || CalendarMsg::Tick));
    }

    /// A quarter after the team's latest drill (scheduled or held), or from now.
    async fn default_time(&self, team: &str) -> Timestamp {
        let now = self.handle.clock().now();
        let scheduled = self
            .drills
            .iter()
            .filter(|d| d.team == team && !matches!(d.state, DrillState::Cancelled { .. }))
            .map(|d| d.at)
            .max();
        scheduled.unwrap_or(now).max(now).plus(QUARTER)
    }

    async fn schedule(
        &mut self,
        scenario: String,
        team: String,
        at: Option<Timestamp>,
        recurring: bool,
        by: Option<String>,
    ) -> Result<ScheduledDrill> {
        let org = self.handle.org();
        if !org.scenarios().iter().any(|s| s.id == scenario) {
            return Err(DomainError::not_found("scenario", format!("unknown scenario {scenario:?}")).into());
        }
        if team.is_empty() {
            return Err(DomainError::invalid("team", "is required").into());
        }
        if !org.has_team(&team) {
            return Err(DomainError::not_found("team", format!("unknown team {team:?}")).into());
        }
        let now = self.handle.clock().now();
        let at = match at {
            Some(at) if at <= now => return Err(DomainError::invalid("at", "must be in the future").into()),
            Some(at) => at,
            None => self.default_time(&team).await,
        };
        let id = self.ids.generate().unwrap_or_else(|_| ulid::Ulid::generate());
        let drill = ScheduledDrill {
            id: id.to_string(),
            scenario,
            team,
            at,
            recurring,
            scheduled_by: by,
            reminded_at: None,
            state: DrillState::Scheduled,
        };
        self.persist(&Record::Scheduled(drill.clone())).await?;
        self.drills.push(drill.clone());
        Ok(drill)
    }

    async fn change(&mut self, id: &str, state: DrillState) -> Result<()> {
        self.persist(&Record::Changed {
            id: id.to_string(),
            state: state.clone(),
        })
        .await?;
        if let Some(d) = self.drills.iter_mut().find(|d| d.id == id) {
            d.state = state;
        }
        Ok(())
    }

    /// Reminders and starts that are due.
    async fn fire(&mut self) {
        let now = self.handle.clock().now();
        let due: Vec<ScheduledDrill> = self
            .drills
            .iter()
            .filter(|d| d.state == DrillState::Scheduled)
            .cloned()
            .collect();
        for d in due {
            if d.reminded_at.is_none() && d.at.0.saturating_sub(REMIND_BEFORE.as_millis() as i64) <= now.0 {
                tracing::info!(drill = %d.id, team = %d.team, scenario = %d.scenario, at = %d.at, "game day reminder");
                if self
                    .persist(&Record::Reminded {
                        id: d.id.clone(),
                        at: now,
                    })
                    .await
                    .is_ok()
                    && let Some(x) = self.drills.iter_mut().find(|x| x.id == d.id)
                {
                    x.reminded_at = Some(now);
                    // Nobody listening is fine: the notifier reads the calendar when it starts.
                    let _ = self.handle.drill_reminder(x.clone());
                }
            }
            if d.at <= now {
                self.start(d).await;
            }
        }
    }

    async fn start(&mut self, d: ScheduledDrill) {
        let now = self.handle.clock().now();
        // The team's suggested commander leads (someone who never has, first).
        let members = self.handle.org().team_members(&d.team);
        let filter = crate::Filter {
            team: Some(d.team.clone()),
            ..Default::default()
        };
        let history = self
            .handle
            .list(filter, None, 500)
            .await
            .map(|p| p.incidents)
            .unwrap_or_default();
        let (_, _, suggestion) = role_rotation(history.iter().map(|s| &**s), &members);
        let roles = DrillRoles {
            commander: suggestion,
            ..Default::default()
        };
        let rid = Some(format!("drill-calendar/{}", d.id));
        let state = match self.handle.start_drill(&d.scenario, &d.team, roles, None, rid).await {
            Ok(inc) => DrillState::Started {
                incident: inc.id,
                at: now,
            },
            Err(e) => DrillState::Failed {
                at: now,
                reason: e.to_string(),
            },
        };
        if let Err(e) = self.change(&d.id, state).await {
            tracing::warn!(drill = %d.id, error = %e, "could not record the drill's start; retried at the next tick");
            return;
        }
        if d.recurring {
            let next = d.at.plus(QUARTER);
            if let Err(e) = self
                .schedule(
                    d.scenario.clone(),
                    d.team.clone(),
                    Some(next.max(now.plus(Duration::from_secs(1)))),
                    true,
                    None,
                )
                .await
            {
                tracing::warn!(team = %d.team, error = %e, "could not schedule the next recurring drill");
            }
        }
    }
}

impl Actor for Calendar {
    type Msg = CalendarMsg;
    type State = CalendarState;
    type Arguments = (Handle, OutboxLog, Vec<ScheduledDrill>);

    async fn pre_start(
        &self,
        _myself: ActorRef<CalendarMsg>,
        (handle, log, drills): Self::Arguments,
    ) -> std::result::Result<CalendarState, ActorProcessingErr> {
        Ok(CalendarState {
            handle,
            log,
            drills,
            timer: None,
            ids: ulid::Generator::new(),
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<CalendarMsg>,
        st: &mut CalendarState,
    ) -> std::result::Result<(), ActorProcessingErr> {
        // Whatever fell due while the process was down happens now, once.
        st.fire().await;
        st.arm(&myself);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<CalendarMsg>,
        st: &mut CalendarState,
    ) -> std::result::Result<(), ActorProcessingErr> {
        st.timer = None;
        st.log.close();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<CalendarMsg>,
        msg: CalendarMsg,
        st: &mut CalendarState,
    ) -> std::result::Result<(), ActorProcessingErr> {
        match msg {
            CalendarMsg::Schedule {
                scenario,
                team,
                at,
                recurring,
                by,
                reply,
            } => {
                let r = st.schedule(scenario, team, at, recurring, by).await;
                let _ = reply.send(r);
            }
            CalendarMsg::Cancel { id, reply } => {
                let r = match st.drills.iter().find(|d| d.id == id).cloned() {
                    None => Err(DomainError::not_found("id", format!("no scheduled drill {id:?}")).into()),
                    Some(d) if d.state != DrillState::Scheduled => {
                        Err(DomainError::precondition(Some("id"), "the drill is no longer scheduled").into())
                    }
                    Some(d) => {
                        let state = DrillState::Cancelled {
                            at: st.handle.clock().now(),
                        };
                        st.change(&d.id, state.clone())
                            .await
                            .map(|()| ScheduledDrill { state, ..d })
                    }
                };
                let _ = reply.send(r);
            }
            CalendarMsg::List { team, reply } => {
                let mut list: Vec<ScheduledDrill> = st
                    .drills
                    .iter()
                    .filter(|d| team.as_ref().is_none_or(|t| *t == d.team))
                    .cloned()
                    .collect();
                list.sort_by_key(|d| d.at);
                let _ = reply.send(list);
            }
            CalendarMsg::Tick => st.fire().await,
        }
        st.arm(&myself);
        Ok(())
    }
}
