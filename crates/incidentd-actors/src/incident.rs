//! `IncidentActor`: one per live incident. It owns the incident's state and
//! serialises every command for it: decide → persist (durable) → apply →
//! reply → publish. Domain errors go back through the reply port; returning
//! `Err` from `handle` would mean "this actor must stop".

use crate::codec::{self, Reply};
use crate::error::{Error, Result};
use crate::shared::{Published, Shared, Timer};
use crate::supervisor::SupervisorMsg;
use incidentd_domain::{Action, Command, Ctx, Incident, IncidentId, Timestamp, apply, decide, timers};
use incidentd_store::{Record, Snapshot};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::sync::Arc;
use tracing::Instrument;

/// A snapshot waits until the events since the last one weigh this many
/// times as much as it: snapshots then cost half the bytes of the events
/// per event, and a rebuild replays a tail of at most about twice the
/// state's size.
const SNAPSHOT_WEIGHT: usize = 2;

/// What shape of answer a mutating call wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Incident,
    Entry,
    Update,
}

/// Where the answer to a command goes: a reply port that a caller awaits,
/// or a callback run where the answer is made (the alert router's batches
/// and declarations: no task is spawned just to wait for the answer and
/// pass it on). A callback dropped unanswered (its message was dropped by
/// an actor that failed or stopped) still runs, with an error, as a
/// dropped reply port wakes its caller.
pub enum Answer {
    Port(RpcReplyPort<Result<Reply>>),
    Then(Then),
}

/// A callback that runs exactly once: with the answer, or with an error when dropped unanswered.
pub struct Then(Option<Box<dyn FnOnce(Result<Reply>) + Send>>);

impl Answer {
    pub fn then(f: impl FnOnce(Result<Reply>) + Send + 'static) -> Answer {
        Answer::Then(Then(Some(Box::new(f))))
    }

    pub fn send(self, result: Result<Reply>) {
        match self {
            Answer::Port(port) => {
                let _ = port.send(result);
            }
            Answer::Then(mut then) => {
                if let Some(f) = then.0.take() {
                    f(result);
                }
            }
        }
    }
}

impl From<RpcReplyPort<Result<Reply>>> for Answer {
    fn from(port: RpcReplyPort<Result<Reply>>) -> Answer {
        Answer::Port(port)
    }
}

impl Drop for Then {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Err(Error::Internal(
                "the incident's actor stopped before answering".into(),
            )));
        }
    }
}

#[allow(clippy::large_enum_variant)] // commands are moved once; boxing would only add an allocation
pub enum IncidentMsg {
    Execute {
        cmd: Command,
        request_id: Option<String>,
        kind: ReplyKind,
        reply: Answer,
        /// The caller's span (the RPC's): the actor's work is its child.
        span: tracing::Span,
    },
    /// The full state, timeline included.
    Get { reply: RpcReplyPort<Result<Arc<Incident>>> },
    /// Current version, for a gap-free watch hand-over.
    Version { reply: RpcReplyPort<Result<u64>> },
    /// The armed deadline passed (or may have): fire what is due.
    Tick,
    /// Test hook: panic inside the handler (exercises supervision/restart).
    #[doc(hidden)]
    Panic,
}

/// How the actor starts.
pub enum Start {
    /// Recovered state (startup) or a fresh, undeclared one (declaration).
    State(Box<Incident>),
    /// Load snapshot + tail from the store (rehydration, restart after a crash).
    Load,
    /// A declaration the supervisor already decided (to refuse a bad one
    /// before spawning anything): the actor's first command, the declaration,
    /// takes these events instead of deciding them again.
    Declaring(Declared),
}

/// The events of a declaration, decided at `now` on the undeclared state.
pub struct Declared {
    pub events: Vec<incidentd_domain::Event>,
    pub now: Timestamp,
}

pub struct IncidentArgs {
    pub id: IncidentId,
    pub start: Start,
    pub shared: Arc<Shared>,
    pub supervisor: ActorRef<SupervisorMsg>,
}

pub struct IncidentActor;

pub struct IncidentState {
    id: IncidentId,
    incident: Incident,
    shared: Arc<Shared>,
    supervisor: ActorRef<SupervisorMsg>,
    snapshot_version: u64,
    /// Size of the last snapshot saved, and of the events encoded since:
    /// the next snapshot waits until the events since weigh
    /// `SNAPSHOT_WEIGHT` times as much as it (and `snapshot_every` events
    /// passed), so a long incident's snapshots cost a constant amount per
    /// event, not its whole state every few events.
    snapshot_bytes: usize,
    tail_bytes: usize,
    last_offset: u64,
    retiring: bool,
    /// The one armed timer (its deadline sends `Tick`).
    timer: Option<Timer>,
    /// The declaration's events, decided by the supervisor (`Start::Declaring`).
    declaring: Option<Declared>,
}

/// How long to wait before trying again when firing a deadline failed (the
/// store refused the append): the deadline stays pending, never lost.
const TICK_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Rebuilds an incident from what the store holds for it.
pub fn rebuild(rec: &incidentd_store::RecoveredIncident) -> Result<Incident> {
    let mut state = match &rec.snapshot {
        Some(s) => codec::decode_snapshot(&s.state)?,
        None => Incident::default(),
    };
    for (version, payload) in &rec.tail {
        if *version != state.version + 1 {
            return Err(Error::Internal(format!(
                "incident log has a gap: expected version {}, found {version}",
                state.version + 1
            )));
        }
        let event = codec::decode_event(payload)?;
        apply(&mut state, &event);
    }
    Ok(state)
}

impl Actor for IncidentActor {
    type Msg = IncidentMsg;
    type State = IncidentState;
    type Arguments = IncidentArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: IncidentArgs,
    ) -> std::result::Result<IncidentState, ActorProcessingErr> {
        let mut declaring = None;
        let incident = match args.start {
            Start::State(s) => *s,
            Start::Declaring(d) => {
                declaring = Some(d);
                Incident::default()
            }
            Start::Load => {
                let rec = args.shared.store.load_incident(args.id.to_bytes()).await?;
                match rec {
                    Some(rec) => rebuild(&rec)?,
                    None => Incident::default(),
                }
            }
        };
        args.shared
            .counters
            .actors_spawned
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(IncidentState {
            id: args.id,
            snapshot_version: incident.version,
            snapshot_bytes: 0,
            tail_bytes: 0,
            incident,
            shared: args.shared,
            supervisor: args.supervisor,
            last_offset: 0,
            retiring: false,
            timer: None,
            declaring,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        st: &mut IncidentState,
    ) -> std::result::Result<(), ActorProcessingErr> {
        // Deadlines that passed while nobody watched fire now, once.
        st.after_message(&myself, None);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        st: &mut IncidentState,
    ) -> std::result::Result<(), ActorProcessingErr> {
        st.disarm();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: IncidentMsg,
        st: &mut IncidentState,
    ) -> std::result::Result<(), ActorProcessingErr> {
        // ractor keeps one boxed loop future per actor, sized for the largest
        // message handler: boxing the handler here keeps that resident part
        // small (kilobytes per live incident), and only the message in hand
        // pays for the state of decide → persist → apply.
        Box::pin(st.on_message(myself, msg)).await
    }
}

impl IncidentState {
    async fn on_message(
        &mut self,
        myself: ActorRef<IncidentMsg>,
        msg: IncidentMsg,
    ) -> std::result::Result<(), ActorProcessingErr> {
        let st = self;
        match msg {
            IncidentMsg::Execute {
                cmd,
                request_id,
                kind,
                reply,
                span,
            } => {
                let span = tracing::info_span!(
                    parent: &span,
                    "incident.execute",
                    incident_id = %st.id,
                    command = cmd.action.name(),
                    version = tracing::field::Empty,
                );
                let (result, next) = async {
                    let result = st.execute(cmd, request_id, kind).await;
                    let mut next = None;
                    if result.is_ok() {
                        // What the command made due at once (a SEV-1's stakeholder
                        // notice, an escalation on confirmed data loss) is durable
                        // before the caller hears back: a watcher never sees the
                        // caller's next command overtake it.
                        next = st.fire_due_now().await;
                    }
                    tracing::Span::current().record("version", st.incident.version);
                    (result, next)
                }
                .instrument(span)
                .await;
                reply.send(result);
                if !st.incident.is_declared() {
                    // The declaration was refused or not persisted: this actor owns nothing.
                    myself.stop(None);
                    return Ok(());
                }
                st.after_message(&myself, next);
                return Ok(());
            }
            IncidentMsg::Tick => {
                st.timer = None;
                let span = tracing::info_span!("incident.tick", incident_id = %st.id);
                if let Err(e) = st.tick().instrument(span).await {
                    if st.shared.store.is_closed() {
                        // Shutting down: the deadline fires after the next start.
                        return Ok(());
                    }
                    tracing::warn!(incident_id = %st.id, error = %e, "firing a deadline failed; retrying");
                    st.arm(&myself, st.shared.clock.now().plus(TICK_RETRY));
                    return Ok(());
                }
            }
            // Reads change nothing: the armed deadline stands.
            IncidentMsg::Get { reply } => {
                let _ = reply.send(st.declared().map(|s| Arc::new(s.clone())));
                return Ok(());
            }
            IncidentMsg::Version { reply } => {
                let _ = reply.send(st.declared().map(|s| s.version));
                return Ok(());
            }
            IncidentMsg::Panic => panic!("incident actor {} asked to panic (test hook)", st.id),
        }
        st.after_message(&myself, None);
        Ok(())
    }

    /// After every change: re-derive the nearest deadline (unless `known`,
    /// derived from the current state already) and arm it, or, for a
    /// resolved incident, hand it to the supervisor to retire (with the
    /// deadline at which to wake it, e.g. the review reminder).
    fn after_message(&mut self, myself: &ActorRef<IncidentMsg>, known: Option<Option<Timestamp>>) {
        if !self.incident.is_declared() || self.retiring {
            return;
        }
        let next = known.unwrap_or_else(|| {
            let policy = self.shared.org().policy(&self.incident.team);
            timers::next_deadline(&self.incident, &policy)
        });
        if self.incident.is_resolved() {
            self.retiring = true;
            self.disarm();
            self.save_snapshot();
            let _ = self.supervisor.cast(SupervisorMsg::Retire {
                id: self.id,
                actor: myself.get_id(),
                wake_at: next,
            });
            return;
        }
        match next {
            Some(due) => self.arm(myself, due),
            None => self.disarm(),
        }
    }

    /// Fires every deadline due at `now` (none: no events, nothing written).
    async fn tick(&mut self) -> Result<()> {
        if !self.incident.is_declared() {
            return Ok(());
        }
        self.execute(tick(), None, ReplyKind::Incident).await.map(|_| ())
    }

    /// Fires what is already due, if anything; a failure leaves it to the
    /// timer. Answers the nearest deadline when nothing was due (the state
    /// it was derived from is still the current one).
    async fn fire_due_now(&mut self) -> Option<Option<Timestamp>> {
        if !self.incident.is_declared() {
            return None;
        }
        let policy = self.shared.org().policy(&self.incident.team);
        let next = timers::next_deadline(&self.incident, &policy);
        if next.is_none_or(|d| d > self.shared.clock.now()) {
            return Some(next);
        }
        if let Err(e) = self.tick().await {
            tracing::warn!(incident_id = %self.id, error = %e, "firing a due deadline failed; the timer retries");
        }
        None
    }

    /// Arms the one timer for `due` (wall time), replacing another.
    fn arm(&mut self, myself: &ActorRef<IncidentMsg>, due: Timestamp) {
        if self.timer.as_ref().is_none_or(|t| t.due() != due) {
            self.timer = Some(Timer::start(&self.shared.clock, due, myself.clone(), || {
                IncidentMsg::Tick
            }));
        }
    }

    fn disarm(&mut self) {
        self.timer = None;
    }

    fn declared(&self) -> Result<&Incident> {
        if self.incident.is_declared() {
            Ok(&self.incident)
        } else {
            Err(Error::IncidentNotFound(self.id.to_string()))
        }
    }

    async fn execute(&mut self, cmd: Command, request_id: Option<String>, kind: ReplyKind) -> Result<Reply> {
        let idem_key = request_id.map(|r| idempotency_key(&self.id, &cmd, &r));
        if let Some(key) = &idem_key
            && let Some(bytes) = self.shared.store.get_idempotent(key).await?
        {
            return codec::decode_reply(&bytes);
        }
        let events = {
            let org = self.shared.org();
            let policy = org.policy(&team_of(&self.incident, &cmd));
            let decided = self.declaring.take().filter(|_| !self.incident.is_declared());
            let ctx = Ctx {
                now: decided.as_ref().map_or_else(|| self.shared.clock.now(), |d| d.now),
                policy: &policy,
                directory: &*org,
            };
            let mut events = match decided {
                Some(d) => d.events,
                None => decide(&self.incident, &cmd, &ctx)?,
            };
            let answered = events.len();
            // A declaration: the new incident is built on a copy (it is
            // small), once; what it makes due at once (a SEV-1's stakeholder
            // notice) goes into the same append, as the events that follow.
            let declared = (!self.incident.is_declared() && !events.is_empty())
                .then(|| declare_with_due(&self.incident, &mut events, ctx.now, &*org, kind));
            (events, answered, declared)
        };
        let (events, answered, declared) = events;
        if events.is_empty() {
            return Ok(reply_for(&self.incident, kind));
        }
        let first_version = self.incident.version + 1;
        let mut records = Vec::with_capacity(events.len() + 1);
        // What watchers get: the stored JSON, shared (the record keeps the bytes).
        let mut encoded: Vec<Arc<str>> = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            let payload = codec::encode_event(e);
            encoded.push(Arc::from(codec::event_json(&payload)));
            records.push(Record::Event {
                incident: self.id.to_bytes(),
                version: first_version + i as u64,
                payload,
            });
        }
        // A declaration's incident was built before the append; with a
        // request id the stored answer must exist before the append too, so
        // work on a copy. Either copy is swapped in once the append is durable.
        let prepared = match (declared, &idem_key) {
            (Some(built), _) => Some(built),
            (None, Some(_)) => {
                let mut next = self.incident.clone();
                let answer = apply_answering(&mut next, &events, answered, kind);
                Some((next, answer))
            }
            (None, None) => None,
        };
        let answer = match prepared {
            Some((next, answer)) => {
                if let Some(key) = idem_key {
                    records.push(Record::Idempotency {
                        key,
                        response: codec::encode_reply(&answer),
                    });
                }
                self.persist(records).await?;
                self.incident = next;
                answer
            }
            // Without a request id: persist (the durability point: returns after fdatasync),
            // then apply in place (no copy of the state).
            None => {
                self.persist(records).await?;
                apply_answering(&mut self.incident, &events, answered, kind)
            }
        };
        self.shared
            .counters
            .events_persisted
            .fetch_add(events.len() as u64, std::sync::atomic::Ordering::Relaxed);
        self.tail_bytes += encoded.iter().map(|j| j.len() + 1).sum::<usize>();
        self.publish(first_version, events, encoded);
        if self.incident.version - self.snapshot_version >= self.shared.snapshot_every
            && self.tail_bytes >= SNAPSHOT_WEIGHT * self.snapshot_bytes
        {
            self.save_snapshot();
        }
        Ok(answer)
    }

    /// The durability point: returns after the log's `fdatasync`.
    async fn persist(&mut self, records: Vec<Record>) -> Result<()> {
        let span = tracing::info_span!("store.append", records = records.len());
        self.last_offset = self.shared.store.append(records).instrument(span).await?;
        Ok(())
    }

    fn publish(&self, first_version: u64, events: Vec<incidentd_domain::Event>, encoded: Vec<Arc<str>>) {
        let summary = Arc::new(codec::summary_of(&self.incident));
        let _ = self.supervisor.cast(SupervisorMsg::Changed {
            summary: summary.clone(),
        });
        for (i, (event, json)) in events.into_iter().zip(encoded).enumerate() {
            let published = Published {
                incident: self.id,
                version: first_version + i as u64,
                event,
                json,
                summary: summary.clone(),
                span: tracing::Span::current(),
            };
            // No receivers is fine: nobody is watching.
            let _ = self.shared.feed.send(Arc::new(published));
        }
    }

    fn save_snapshot(&mut self) {
        if self.incident.version == self.snapshot_version {
            return;
        }
        self.snapshot_version = self.incident.version;
        let state = codec::encode_snapshot(&self.incident);
        self.snapshot_bytes = state.len();
        self.tail_bytes = 0;
        self.shared.store.save_snapshot(
            self.id.to_bytes(),
            Snapshot {
                version: self.incident.version,
                log_offset: self.last_offset,
                state,
            },
        );
    }
}

/// The command that fires due deadlines (issued by the service itself).
fn tick() -> Command {
    Command {
        access: Default::default(),
        by: None,
        action: Action::Tick,
    }
}

/// Applies `events` to `state`; the answer is the state after the first
/// `answered` of them (the command's own, before what fell due with it).
fn apply_answering(
    state: &mut Incident,
    events: &[incidentd_domain::Event],
    answered: usize,
    kind: ReplyKind,
) -> Reply {
    let (own, due) = events.split_at(answered.min(events.len()));
    for e in own {
        apply(state, e);
    }
    let answer = reply_for(state, kind);
    for e in due {
        apply(state, e);
    }
    answer
}

/// Builds the incident a declaration's `events` make (on a copy of the
/// undeclared state) and the answer to the declaration; then appends to
/// `events` the deadline events due at once, under the new incident's team
/// policy at the same `now`, and applies them too.
fn declare_with_due(
    undeclared: &Incident,
    events: &mut Vec<incidentd_domain::Event>,
    now: Timestamp,
    org: &dyn crate::shared::OrgView,
    kind: ReplyKind,
) -> (Incident, Reply) {
    let mut next = undeclared.clone();
    let answer = apply_answering(&mut next, events, events.len(), kind);
    if next.is_declared() {
        let policy = org.policy(&next.team);
        let ctx = Ctx {
            now,
            policy: &policy,
            directory: org,
        };
        let due = decide(&next, &tick(), &ctx).unwrap_or_default();
        for e in &due {
            apply(&mut next, e);
        }
        events.extend(due);
    }
    (next, answer)
}

/// The team whose policy applies: the incident's, or the declaring team's.
fn team_of(state: &Incident, cmd: &Command) -> String {
    match &cmd.action {
        incidentd_domain::Action::Declare { team, .. } => team.clone(),
        _ => state.team.clone(),
    }
}

fn idempotency_key(id: &IncidentId, cmd: &Command, request_id: &str) -> String {
    match cmd.action {
        incidentd_domain::Action::Declare { .. } => format!("declare/{request_id}"),
        _ => format!("{id}/{request_id}"),
    }
}

pub fn reply_for(state: &Incident, kind: ReplyKind) -> Reply {
    match kind {
        ReplyKind::Incident => Reply::Incident(Box::new(codec::summary_of(state))),
        ReplyKind::Entry => match state.timeline.last() {
            Some(e) => Reply::Entry(e.clone()),
            None => Reply::Incident(Box::new(codec::summary_of(state))),
        },
        ReplyKind::Update => match state.updates.last() {
            Some(u) => Reply::Update(Box::new(u.clone())),
            None => Reply::Incident(Box::new(codec::summary_of(state))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn recorder() -> (Arc<Mutex<Vec<Result<Reply>>>>, Answer) {
        let seen: Arc<Mutex<Vec<Result<Reply>>>> = Arc::default();
        let sink = seen.clone();
        let answer = Answer::then(move |r| sink.lock().unwrap().push(r));
        (seen, answer)
    }

    #[test]
    fn a_callback_runs_once_with_the_answer() {
        let (seen, answer) = recorder();
        answer.send(Ok(Reply::Incident(Box::default())));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(matches!(seen[0], Ok(Reply::Incident(_))));
    }

    #[test]
    fn a_callback_dropped_unanswered_runs_with_an_error() {
        let (seen, answer) = recorder();
        // As when the actor holding the message fails or stops.
        drop(IncidentMsg::Execute {
            cmd: tick(),
            request_id: None,
            kind: ReplyKind::Incident,
            reply: answer,
            span: tracing::Span::none(),
        });
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(matches!(&seen[0], Err(Error::Internal(m)) if m.contains("before answering")));
    }
}
