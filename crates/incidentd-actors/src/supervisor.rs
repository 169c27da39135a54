//! `IncidentSupervisor`: spawns one linked `IncidentActor` per live incident,
//! is the registry from incident id to `ActorRef` (owned state, no shared
//! map), restarts a crashed actor from the store, retires actors of resolved
//! incidents and rehydrates them on demand. It also keeps the summary of
//! every incident for listing.
//!
//! Messages for an incident whose actor is starting, retiring or restarting
//! are queued here and forwarded once exactly one actor owns the incident:
//! two actors never hold the same incident.

use crate::codec;
use crate::error::Error;
use crate::incident::{Answer, Declared, IncidentActor, IncidentArgs, IncidentMsg, ReplyKind, Start};
use crate::shared::{Shared, Timer};
use incidentd_domain::{Action, Command, Incident, IncidentId, Severity, Status, Timestamp, timers};
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Filters of `ListIncidents` / `WatchIncidents`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub team: Option<String>,
    pub status: Vec<Status>,
    pub severity: Vec<Severity>,
    pub active_only: bool,
    pub drill: Option<bool>,
    /// The teams the caller may read (`None`: all), from its token.
    pub readable: Option<Arc<[String]>>,
}

impl Filter {
    pub fn matches(&self, s: &Incident) -> bool {
        self.team.as_ref().is_none_or(|t| *t == s.team)
            && self.readable.as_ref().is_none_or(|ts| ts.contains(&s.team))
            && (self.status.is_empty() || self.status.contains(&s.status))
            && (self.severity.is_empty() || self.severity.contains(&s.severity))
            && (!self.active_only || !s.is_resolved())
            && self.drill.is_none_or(|d| d == s.drill)
    }
}

pub struct Page {
    pub incidents: Vec<Arc<Incident>>,
    /// Id of the last incident returned, when more may follow.
    pub next: Option<IncidentId>,
}

#[derive(Debug, Default, Clone)]
pub struct LiveStats {
    pub live_by_severity: [u64; 4],
    pub live_actors: u64,
    pub incidents_total: u64,
}

pub enum SupervisorMsg {
    /// Declare a new incident (`cmd.action` is `Declare` with id/number left for the supervisor to fill).
    Declare {
        cmd: Command,
        request_id: Option<String>,
        reply: Answer,
        /// The caller's span, handed on to the incident's actor.
        span: tracing::Span,
    },
    /// Deliver a message to an incident's actor, rehydrating it if needed.
    Route {
        id: IncidentId,
        msg: IncidentMsg,
    },
    /// From an actor: its incident changed.
    Changed {
        summary: Arc<Incident>,
    },
    /// From an actor of a resolved incident: it may stop. At `wake_at` (a
    /// deadline of a resolved incident, e.g. the review) the supervisor
    /// rehydrates it with a `Tick`.
    Retire {
        id: IncidentId,
        actor: ActorId,
        wake_at: Option<Timestamp>,
    },
    /// The earliest wake-up of a retired incident is due.
    Wake,
    /// Stop every incident actor (no restarts from here on), then the supervisor.
    Shutdown {
        reply: RpcReplyPort<()>,
    },
    List {
        filter: Filter,
        after: Option<IncidentId>,
        limit: usize,
        reply: RpcReplyPort<Page>,
    },
    Stats {
        reply: RpcReplyPort<LiveStats>,
    },
}

enum Slot {
    Live(ActorRef<IncidentMsg>),
    /// Stopping (retired or crashed) or starting; messages wait here.
    Waiting(Vec<IncidentMsg>),
}

pub struct SupervisorArgs {
    pub shared: Arc<Shared>,
    /// Recovered incidents (all of them; live ones get an actor).
    pub recovered: Vec<Incident>,
}

pub struct IncidentSupervisor;

pub struct SupervisorState {
    shared: Arc<Shared>,
    slots: HashMap<IncidentId, Slot>,
    by_actor: HashMap<ActorId, IncidentId>,
    summaries: BTreeMap<IncidentId, Arc<Incident>>,
    /// Incident ids by team (an incident's team never changes): a list for
    /// one team walks that team's incidents, not the whole org's.
    by_team: HashMap<String, BTreeSet<IncidentId>>,
    next_number: u64,
    /// Declarations in flight or done by this process: request id → incident.
    declared_requests: HashMap<String, IncidentId>,
    /// Monotonic ULIDs: incidents declared in the same millisecond still sort in order.
    ids: ulid::Generator,
    /// Retired incidents with a pending deadline, by due time; one timer for the earliest.
    sleepers: BTreeSet<(Timestamp, IncidentId)>,
    sleeper_at: HashMap<IncidentId, Timestamp>,
    wake_timer: Option<Timer>,
    /// Shutting down: ended actors are not restarted.
    stopping: bool,
}

impl Actor for IncidentSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SupervisorArgs,
    ) -> std::result::Result<SupervisorState, ActorProcessingErr> {
        let mut st = SupervisorState {
            shared: args.shared,
            slots: HashMap::new(),
            by_actor: HashMap::new(),
            summaries: BTreeMap::new(),
            by_team: HashMap::new(),
            next_number: 1,
            declared_requests: HashMap::new(),
            ids: ulid::Generator::new(),
            sleepers: BTreeSet::new(),
            sleeper_at: HashMap::new(),
            wake_timer: None,
            stopping: false,
        };
        let org = st.shared.org();
        for incident in args.recovered {
            if !incident.is_declared() {
                continue;
            }
            st.next_number = st.next_number.max(incident.number + 1);
            st.put_summary(Arc::new(codec::summary_of(&incident)));
            if incident.is_resolved() {
                let due = timers::next_deadline(&incident, &org.policy(&incident.team));
                st.sleep(incident.id, due);
            } else {
                let id = incident.id;
                let actor = st.spawn(&myself, id, Start::State(Box::new(incident))).await?;
                st.slots.insert(id, Slot::Live(actor));
            }
        }
        st.arm_wake(&myself);
        Ok(st)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        st: &mut SupervisorState,
    ) -> std::result::Result<(), ActorProcessingErr> {
        st.wake_timer = None;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: SupervisorMsg,
        st: &mut SupervisorState,
    ) -> std::result::Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Declare {
                cmd,
                request_id,
                reply,
                span,
            } => st.declare(&myself, cmd, request_id, reply, span).await,
            SupervisorMsg::Route { id, msg } => st.route(&myself, id, msg).await,
            SupervisorMsg::Changed { summary } => st.put_summary(summary),
            SupervisorMsg::Retire { id, actor, wake_at } => {
                if let Some(Slot::Live(a)) = st.slots.get(&id)
                    && a.get_id() == actor
                {
                    // New messages wait until the old actor has processed its queue and stopped.
                    let _ = a.drain();
                    st.slots.insert(id, Slot::Waiting(Vec::new()));
                    st.sleep(id, wake_at);
                    st.arm_wake(&myself);
                }
            }
            SupervisorMsg::Shutdown { reply } => {
                st.stopping = true;
                st.wake_timer = None;
                myself
                    .stop_children_and_wait(None, Some(std::time::Duration::from_secs(10)))
                    .await;
                let _ = reply.send(());
                myself.stop(None);
            }
            SupervisorMsg::Wake => {
                st.wake_timer = None;
                let now = st.shared.clock.now();
                while let Some(&(due, id)) = st.sleepers.first()
                    && due <= now
                {
                    st.sleepers.pop_first();
                    st.sleeper_at.remove(&id);
                    st.route(&myself, id, IncidentMsg::Tick).await;
                }
                st.arm_wake(&myself);
            }
            SupervisorMsg::List {
                filter,
                after,
                limit,
                reply,
            } => {
                // Newest first; one extra match tells whether another page follows.
                let end = match after {
                    Some(a) => std::ops::Bound::Excluded(a),
                    None => std::ops::Bound::Unbounded,
                };
                let range = (std::ops::Bound::Unbounded, end);
                let matching = |s: &&Arc<Incident>| filter.matches(s);
                let mut incidents: Vec<Arc<Incident>> = match &filter.team {
                    Some(team) => st
                        .by_team
                        .get(team)
                        .into_iter()
                        .flat_map(|ids| ids.range(range).rev())
                        .filter_map(|id| st.summaries.get(id))
                        .filter(matching)
                        .take(limit + 1)
                        .cloned()
                        .collect(),
                    None => st
                        .summaries
                        .range(range)
                        .rev()
                        .map(|(_, s)| s)
                        .filter(matching)
                        .take(limit + 1)
                        .cloned()
                        .collect(),
                };
                let next = if incidents.len() > limit {
                    incidents.truncate(limit);
                    incidents.last().map(|i| i.id)
                } else {
                    None
                };
                let _ = reply.send(Page { incidents, next });
            }
            SupervisorMsg::Stats { reply } => {
                let mut stats = LiveStats {
                    incidents_total: st.summaries.len() as u64,
                    ..Default::default()
                };
                for s in st.summaries.values().filter(|s| !s.is_resolved()) {
                    stats.live_by_severity[s.severity.index()] += 1;
                }
                stats.live_actors = st.slots.values().filter(|s| matches!(s, Slot::Live(_))).count() as u64;
                let _ = reply.send(stats);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        st: &mut SupervisorState,
    ) -> std::result::Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, _) => st.ended(&myself, &cell, false).await,
            SupervisionEvent::ActorFailed(cell, err) => {
                tracing::error!(actor = %cell.get_id(), error = %err, "incident actor failed; restarting from the store");
                st.ended(&myself, &cell, true).await
            }
            _ => {}
        }
        Ok(())
    }
}

impl SupervisorState {
    /// Records an incident's latest summary (and, for a new one, its team).
    fn put_summary(&mut self, summary: Arc<Incident>) {
        if !self.summaries.contains_key(&summary.id) {
            self.by_team.entry(summary.team.clone()).or_default().insert(summary.id);
        }
        self.summaries.insert(summary.id, summary);
    }

    /// Records when to wake a retired incident (`None`: never).
    fn sleep(&mut self, id: IncidentId, due: Option<Timestamp>) {
        if let Some(old) = self.sleeper_at.remove(&id) {
            self.sleepers.remove(&(old, id));
        }
        if let Some(due) = due {
            self.sleepers.insert((due, id));
            self.sleeper_at.insert(id, due);
        }
    }

    /// Arms the one wake-up timer for the earliest sleeper.
    fn arm_wake(&mut self, myself: &ActorRef<SupervisorMsg>) {
        let Some(&(due, _)) = self.sleepers.first() else {
            self.wake_timer = None;
            return;
        };
        if self.wake_timer.as_ref().is_none_or(|t| t.due() != due) {
            self.wake_timer = Some(Timer::start(&self.shared.clock, due, myself.clone(), || {
                SupervisorMsg::Wake
            }));
        }
    }

    async fn spawn(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        id: IncidentId,
        start: Start,
    ) -> std::result::Result<ActorRef<IncidentMsg>, ActorProcessingErr> {
        let args = IncidentArgs {
            id,
            start,
            shared: self.shared.clone(),
            supervisor: myself.clone(),
        };
        let (actor, _) = Actor::spawn_linked(None, IncidentActor, args, myself.get_cell()).await?;
        self.by_actor.insert(actor.get_id(), id);
        Ok(actor)
    }

    async fn declare(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        mut cmd: Command,
        request_id: Option<String>,
        reply: Answer,
        span: tracing::Span,
    ) {
        if let Some(rid) = &request_id {
            // A retry of a declaration goes to the incident it created, which answers from the store.
            let known = match self.declared_requests.get(rid) {
                Some(id) => Some(*id),
                None => match self.shared.store.get_idempotent(&format!("declare/{rid}")).await {
                    Ok(Some(bytes)) => match codec::decode_reply(&bytes) {
                        Ok(first) => {
                            reply.send(Ok(first));
                            return;
                        }
                        Err(e) => {
                            reply.send(Err(e));
                            return;
                        }
                    },
                    Ok(None) => None,
                    Err(e) => {
                        reply.send(Err(e.into()));
                        return;
                    }
                },
            };
            if let Some(id) = known {
                let msg = IncidentMsg::Execute {
                    cmd,
                    request_id,
                    kind: ReplyKind::Incident,
                    reply,
                    span,
                };
                self.route(myself, id, msg).await;
                return;
            }
        }
        // Overflow needs 2^80 ids in one millisecond; fall back to a random one.
        let id = IncidentId(self.ids.generate().unwrap_or_else(|_| ulid::Ulid::generate()));
        if let Action::Declare {
            id: slot_id, number, ..
        } = &mut cmd.action
        {
            *slot_id = id;
            *number = self.next_number;
        } else if let Action::Alert(intake) = &mut cmd.action {
            // The first notification of an alert group opens the incident (issue 6).
            std::sync::Arc::make_mut(intake).open_as = incidentd_domain::NewIncident {
                id,
                number: self.next_number,
            };
        }
        // Decide before spawning anything: a refused declaration leaves no trace.
        let declared = match self.decide_declaration(&cmd) {
            Ok(d) => d,
            Err(e) => {
                reply.send(Err(e.into()));
                return;
            }
        };
        self.next_number += 1;
        match self.spawn(myself, id, Start::Declaring(declared)).await {
            Ok(actor) => {
                if let Some(rid) = &request_id {
                    if self.declared_requests.len() > 100_000 {
                        self.declared_requests.clear();
                    }
                    self.declared_requests.insert(rid.clone(), id);
                }
                let _ = actor.cast(IncidentMsg::Execute {
                    cmd,
                    request_id,
                    kind: ReplyKind::Incident,
                    reply,
                    span,
                });
                self.slots.insert(id, Slot::Live(actor));
            }
            Err(e) => {
                reply.send(Err(Error::Internal(format!("could not start incident actor: {e}"))));
            }
        }
    }

    fn decide_declaration(&self, cmd: &Command) -> std::result::Result<Declared, incidentd_domain::DomainError> {
        let org = self.shared.org();
        let team = match &cmd.action {
            Action::Declare { team, .. } => team.as_str(),
            _ => "",
        };
        let policy = org.policy(team);
        let now = self.shared.clock.now();
        let ctx = incidentd_domain::Ctx {
            now,
            policy: &policy,
            directory: &*org,
        };
        let events = incidentd_domain::decide(&Incident::default(), cmd, &ctx)?;
        Ok(Declared { events, now })
    }

    async fn route(&mut self, myself: &ActorRef<SupervisorMsg>, id: IncidentId, msg: IncidentMsg) {
        match self.slots.get_mut(&id) {
            Some(Slot::Live(actor)) => {
                if let Err(e) = actor.cast(msg) {
                    tracing::warn!(incident_id = %id, error = %e, "incident actor gone while routing");
                }
            }
            Some(Slot::Waiting(queue)) => queue.push(msg),
            None => {
                if !self.summaries.contains_key(&id) {
                    fail(msg, Error::IncidentNotFound(id.to_string()));
                    return;
                }
                // A retired (resolved) incident: rehydrate it from the store.
                match self.spawn(myself, id, Start::Load).await {
                    Ok(actor) => {
                        let _ = actor.cast(msg);
                        self.slots.insert(id, Slot::Live(actor));
                    }
                    Err(e) => fail(msg, Error::Internal(format!("could not load incident: {e}"))),
                }
            }
        }
    }

    /// An incident actor stopped (retired) or failed (panicked).
    async fn ended(&mut self, myself: &ActorRef<SupervisorMsg>, cell: &ActorCell, failed: bool) {
        let Some(id) = self.by_actor.remove(&cell.get_id()) else {
            return;
        };
        if self.stopping {
            return;
        }
        let queued = match self.slots.remove(&id) {
            Some(Slot::Waiting(q)) => q,
            Some(Slot::Live(a)) if a.get_id() != cell.get_id() => {
                // A newer actor already owns the incident.
                self.slots.insert(id, Slot::Live(a));
                return;
            }
            _ => Vec::new(),
        };
        if failed {
            self.shared.counters.actor_restarts.fetch_add(1, Ordering::Relaxed);
        } else {
            self.shared.counters.actors_retired.fetch_add(1, Ordering::Relaxed);
        }
        let live = self.summaries.get(&id).is_some_and(|s| !s.is_resolved());
        if !failed && queued.is_empty() && !live {
            return;
        }
        if failed && !self.summaries.contains_key(&id) && queued.is_empty() {
            return;
        }
        match self.spawn(myself, id, Start::Load).await {
            Ok(actor) => {
                for m in queued {
                    let _ = actor.cast(m);
                }
                self.slots.insert(id, Slot::Live(actor));
            }
            Err(e) => {
                tracing::error!(incident_id = %id, error = %e, "could not restart incident actor");
                for m in queued {
                    fail(m, Error::Internal(format!("could not restart incident actor: {e}")));
                }
            }
        }
    }
}

fn fail(msg: IncidentMsg, err: Error) {
    match msg {
        IncidentMsg::Execute { reply, .. } => reply.send(Err(err)),
        IncidentMsg::Get { reply } => {
            let _ = reply.send(Err(err));
        }
        IncidentMsg::Version { reply } => {
            let _ = reply.send(Err(err));
        }
        IncidentMsg::Tick | IncidentMsg::Panic => {}
    }
}
