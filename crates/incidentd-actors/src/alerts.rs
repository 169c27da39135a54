//! `AlertRouter`: the dedup index of alert ingestion (issue 6), an actor that
//! owns the map dedup key → incident and guarantees one incident per key.
//!
//! Why an actor and not a shared map: the hard case is two concurrent first
//! notifications of one group. The router sees them one after the other; the
//! first makes the key `Declaring` and asks the supervisor to declare, the
//! second waits in that key's queue and is forwarded, in order, to the new
//! incident once its declaration is durable. Keys never wait on each other.
//!
//! Per key, one batch is at the incident at a time: notifications that arrive
//! meanwhile wait (in order) and go together as the next batch, one command,
//! one durable append (per-key group commit). An alert storm on a few groups
//! thus costs one `fdatasync` per group per round, not one per alert, and the
//! order of each key's notifications is the order the router saw them.
//! Notifications only merge when they come from the same integration (same
//! rules and defaults); each is validated alone first, so a bad one fails
//! alone.
//!
//! The index is not stored separately: every `AlertAttached` event carries its
//! key, so each incident's state knows its key (`Incident.alert_key`) and
//! [`Alerts::start`] rebuilds the index from the recovered incidents (the
//! newest incident of a key wins). What the log holds is what the index says.
//!
//! A key whose incident is resolved stays mapped: the incident's `decide`
//! reopens it within the reopen window, or refuses with `closed`, on which
//! the caller comes back with that incident as `stale` and the router opens a
//! new incident for the key (once, however many callers come back).

use crate::codec::Reply;
use crate::error::{Error, Result};
use crate::handle::Handle;
use crate::incident::{Answer, IncidentMsg, ReplyKind};
use crate::supervisor::{Filter, SupervisorMsg};
use incidentd_domain::{Action, AlertIntake, Command, Incident, IncidentId, alert};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::oneshot;

/// How many times one notification may be re-routed (closed incident → new one).
const MAX_REROUTES: usize = 4;

/// What happened to one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It opened a new incident.
    Created,
    /// It went to the key's existing incident (attached, resolved, reopened, or a duplicate).
    Deduplicated,
    /// A follow-up (acknowledge / resolve) on a key with no open incident: nothing changed.
    Ignored,
}

#[derive(Debug, Clone)]
pub struct Ingested {
    pub outcome: Outcome,
    pub incident: Option<IncidentId>,
    /// The incident's number (`INC-n`), when known.
    pub number: Option<u64>,
    /// Why it was ignored; empty otherwise.
    pub message: String,
}

/// The ingestion API the edges call. Cheap to clone.
#[derive(Clone)]
pub struct Alerts {
    router: ActorRef<RouterMsg>,
}

pub enum RouterMsg {
    Ingest {
        intake: Arc<AlertIntake>,
        /// The incident that answered `closed` for this key, if any.
        stale: Option<IncidentId>,
        reply: oneshot::Sender<Result<Routed>>,
        /// The caller's span, handed on to the incident's actor.
        span: tracing::Span,
    },
    /// A declaration the router asked for finished.
    Declared { key: String, result: Result<IncidentId> },
    /// The key's batch at its incident was answered: send the next one.
    BatchDone { key: String, id: IncidentId },
    /// Number of keys in the index (metrics, tests).
    Keys { reply: RpcReplyPort<usize> },
}

/// The router's answer to one `Ingest`.
pub enum Routed {
    /// The key's incident answered (durable if `Ok`).
    Answered {
        id: IncidentId,
        result: Result<Reply>,
    },
    /// The notification opened this incident (durable).
    Created(Box<Incident>),
    Ignored(String),
}

/// A notification waiting for its key's turn, with its reply and the caller's span.
type Waiter = (Arc<AlertIntake>, oneshot::Sender<Result<Routed>>, tracing::Span);

enum Entry {
    Known {
        id: IncidentId,
        /// A batch is at the incident.
        busy: bool,
        /// The next batch, in arrival order.
        waiting: Vec<Waiter>,
    },
    /// A declaration for the key is in flight; later notifications wait here, in order.
    Declaring {
        queue: Vec<Waiter>,
        previous: Option<IncidentId>,
    },
}

impl Entry {
    fn known(id: IncidentId) -> Entry {
        Entry::Known {
            id,
            busy: false,
            waiting: Vec::new(),
        }
    }
}

struct AlertRouter;

struct RouterState {
    index: HashMap<String, Entry>,
    supervisor: ActorRef<SupervisorMsg>,
}

impl Alerts {
    /// Rebuilds the dedup index from the incidents the handle recovered and
    /// starts the router. Call once, after `Handle::start`, before serving.
    pub async fn start(handle: &Handle) -> Result<Alerts> {
        let mut latest: HashMap<String, (u64, IncidentId)> = HashMap::new();
        let mut after = None;
        loop {
            let page = handle.list(Filter::default(), after, 10_000).await?;
            for s in &page.incidents {
                if let Some(key) = &s.alert_key {
                    let newer = latest.get(key).is_none_or(|(n, _)| s.number > *n);
                    if newer {
                        latest.insert(key.clone(), (s.number, s.id));
                    }
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let index = latest.into_iter().map(|(k, (_, id))| (k, Entry::known(id))).collect();
        let state = RouterState {
            index,
            supervisor: handle.supervisor(),
        };
        let (router, _) = Actor::spawn(None, AlertRouter, state)
            .await
            .map_err(|e| Error::Internal(format!("could not start the alert router: {e}")))?;
        Ok(Alerts { router })
    }

    /// Hands one notification to the router now (so notifications submitted one
    /// after the other keep their order per key) and returns the future of its
    /// outcome. The outcome is durable when the future resolves `Ok`.
    pub fn submit(&self, intake: AlertIntake) -> impl Future<Output = Result<Ingested>> + Send + 'static {
        let intake = Arc::new(intake);
        let first = self.send(intake.clone(), None);
        let this = self.clone();
        async move {
            let mut pending = first;
            for _ in 0..MAX_REROUTES {
                let routed = pending?
                    .await
                    .map_err(|_| Error::Internal("the alert router dropped the call".into()))??;
                match routed {
                    Routed::Created(s) => {
                        return Ok(Ingested {
                            outcome: Outcome::Created,
                            incident: Some(s.id),
                            number: Some(s.number),
                            message: String::new(),
                        });
                    }
                    Routed::Ignored(message) => {
                        return Ok(Ingested {
                            outcome: Outcome::Ignored,
                            incident: None,
                            number: None,
                            message,
                        });
                    }
                    Routed::Answered { id, result } => match result {
                        Ok(reply) => {
                            let number = match reply {
                                Reply::Incident(s) => Some(s.number),
                                _ => None,
                            };
                            return Ok(Ingested {
                                outcome: Outcome::Deduplicated,
                                incident: Some(id),
                                number,
                                message: String::new(),
                            });
                        }
                        Err(Error::Domain(e)) if alert::is_ignored(&e) => {
                            return Ok(Ingested {
                                outcome: Outcome::Ignored,
                                incident: Some(id),
                                number: None,
                                message: e.message,
                            });
                        }
                        Err(Error::Domain(e)) if alert::is_closed(&e) => {
                            pending = this.send(intake.clone(), Some(id));
                        }
                        Err(e) => return Err(e),
                    },
                }
            }
            Err(Error::Internal(format!(
                "dedup key {:?} was re-routed {MAX_REROUTES} times",
                intake.key
            )))
        }
    }

    pub async fn ingest(&self, intake: AlertIntake) -> Result<Ingested> {
        self.submit(intake).await
    }

    /// Number of dedup keys the router knows.
    pub async fn keys(&self) -> Result<usize> {
        let (tx, rx) = oneshot::channel();
        self.router
            .cast(RouterMsg::Keys {
                reply: RpcReplyPort::from(tx),
            })
            .map_err(|_| Error::ShuttingDown)?;
        rx.await
            .map_err(|_| Error::Internal("the alert router dropped the call".into()))
    }

    fn send(&self, intake: Arc<AlertIntake>, stale: Option<IncidentId>) -> Result<oneshot::Receiver<Result<Routed>>> {
        let (reply, rx) = oneshot::channel();
        self.router
            .cast(RouterMsg::Ingest {
                intake,
                stale,
                reply,
                span: tracing::Span::current(),
            })
            .map_err(|_| Error::ShuttingDown)?;
        Ok(rx)
    }
}

impl Actor for AlertRouter {
    type Msg = RouterMsg;
    type State = RouterState;
    type Arguments = RouterState;

    async fn pre_start(
        &self,
        _myself: ActorRef<RouterMsg>,
        state: RouterState,
    ) -> std::result::Result<RouterState, ActorProcessingErr> {
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<RouterMsg>,
        msg: RouterMsg,
        st: &mut RouterState,
    ) -> std::result::Result<(), ActorProcessingErr> {
        match msg {
            RouterMsg::Ingest {
                intake,
                stale,
                reply,
                span,
            } => st.ingest(&myself, (intake, reply, span), stale),
            RouterMsg::Declared { key, result } => st.declared(&myself, key, result),
            RouterMsg::BatchDone { key, id: done } => {
                // A batch of a key's previous (closed) incident does not free the new one's turn.
                if let Some(Entry::Known { id, busy, .. }) = st.index.get_mut(&key)
                    && *id == done
                {
                    *busy = false;
                }
                st.dispatch(&myself, &key);
            }
            RouterMsg::Keys { reply } => {
                let _ = reply.send(st.index.len());
            }
        }
        Ok(())
    }
}

impl RouterState {
    fn ingest(&mut self, myself: &ActorRef<RouterMsg>, waiter: Waiter, stale: Option<IncidentId>) {
        // Checked alone, before it can join a batch or declare: a bad notification fails alone.
        if let Err(e) = alert::validate(&waiter.0) {
            let _ = waiter.1.send(Err(e.into()));
            return;
        }
        let key = waiter.0.key.clone();
        let (previous, carried) = match self.index.get_mut(&key) {
            Some(Entry::Declaring { queue, .. }) => {
                queue.push(waiter);
                return;
            }
            Some(Entry::Known { id, waiting, .. }) if stale != Some(*id) => {
                waiting.push(waiter);
                self.dispatch(myself, &key);
                return;
            }
            // Known but closed (the caller saw `closed` from it): what waits goes to the new incident.
            Some(Entry::Known { id, waiting, .. }) => (Some(*id), std::mem::take(waiting)),
            None => (None, Vec::new()),
        };
        let (intake, reply, span) = waiter;
        if !intake.has_trigger() {
            let _ = reply.send(Ok(Routed::Ignored(format!(
                "ignored: no open incident for dedup key {:?}; only a trigger opens one",
                intake.key
            ))));
            if let Some(Entry::Known { waiting, .. }) = self.index.get_mut(&key) {
                *waiting = carried;
            }
            return;
        }
        self.index.insert(
            key.clone(),
            Entry::Declaring {
                queue: carried,
                previous,
            },
        );
        let cmd = Command {
            access: Default::default(),
            by: None,
            action: Action::Alert(intake),
        };
        let router = myself.clone();
        // Runs where the declaration is answered (the new incident's actor, or the supervisor).
        let answer = Answer::then(move |result| {
            let (answer, outcome) = match result {
                Ok(Reply::Incident(s)) => (Ok(s.id), Ok(Routed::Created(s))),
                Ok(other) => {
                    let e = Error::Internal(format!("declaration answered {other:?}"));
                    (Err(e.clone()), Err(e))
                }
                Err(e) => (Err(e.clone()), Err(e)),
            };
            // The index first: later notifications of the key go to the new incident.
            let _ = router.cast(RouterMsg::Declared { key, result: answer });
            let _ = reply.send(outcome);
        });
        let sent = self.supervisor.cast(SupervisorMsg::Declare {
            cmd,
            request_id: None,
            reply: answer,
            span,
        });
        if let Err(ractor::MessagingErr::SendErr(SupervisorMsg::Declare { reply, .. })) = sent {
            reply.send(Err(Error::ShuttingDown));
        }
    }

    fn declared(&mut self, myself: &ActorRef<RouterMsg>, key: String, result: Result<IncidentId>) {
        let Some(Entry::Declaring { queue, previous }) = self.index.remove(&key) else {
            return;
        };
        match result {
            Ok(id) => {
                self.index.insert(
                    key.clone(),
                    Entry::Known {
                        id,
                        busy: false,
                        waiting: queue,
                    },
                );
                self.dispatch(myself, &key);
            }
            Err(e) => {
                tracing::warn!(error = %e, "declaring an incident for an alert group failed");
                if let Some(prev) = previous {
                    self.index.insert(key, Entry::known(prev));
                }
                // The waiting notifications start over, in order; the first trigger declares again.
                for waiter in queue {
                    self.ingest(myself, waiter, previous);
                }
            }
        }
    }

    /// Sends the key's waiting notifications to its incident as one batch, unless one is there already.
    fn dispatch(&mut self, myself: &ActorRef<RouterMsg>, key: &str) {
        let Some(Entry::Known { id, busy, waiting }) = self.index.get_mut(key) else {
            return;
        };
        if *busy || waiting.is_empty() {
            return;
        }
        let id = *id;
        let (batch, merged) = take_batch(waiting);
        *busy = true;
        let (router, key) = (myself.clone(), key.to_string());
        // A batch travels in the span of its first notification's caller.
        let span = batch.first().map_or_else(tracing::Span::none, |(_, _, s)| s.clone());
        // Runs where the batch is answered (the incident's actor).
        let answer = Answer::then(move |result| {
            let _ = router.cast(RouterMsg::BatchDone { key, id });
            for (_, reply, _) in batch {
                let _ = reply.send(Ok(Routed::Answered {
                    id,
                    result: result.clone(),
                }));
            }
        });
        let msg = IncidentMsg::Execute {
            cmd: Command {
                access: Default::default(),
                by: None,
                action: Action::Alert(merged),
            },
            request_id: None,
            kind: ReplyKind::Incident,
            reply: answer,
            span,
        };
        if let Err(ractor::MessagingErr::SendErr(SupervisorMsg::Route {
            msg: IncidentMsg::Execute { reply, .. },
            ..
        })) = self.supervisor.cast(SupervisorMsg::Route { id, msg })
        {
            reply.send(Err(Error::ShuttingDown));
        }
    }
}

/// Takes the longest prefix (at least one) of `waiting` that can go as one
/// command: same integration (source, rules, defaults), at most `SIGNALS_MAX` alerts.
fn take_batch(waiting: &mut Vec<Waiter>) -> (Vec<Waiter>, Arc<AlertIntake>) {
    let mut batch: Vec<Waiter> = Vec::new();
    let mut signals = 0;
    let mut rest = std::mem::take(waiting).into_iter();
    for (intake, reply, span) in rest.by_ref() {
        let fits = batch.first().is_none_or(|(first, _, _)| {
            first.source == intake.source
                && first.rules == intake.rules
                && first.defaults == intake.defaults
                && signals + intake.signals.len() <= alert::limits::SIGNALS_MAX
        });
        if !fits {
            waiting.push((intake, reply, span));
            break;
        }
        signals += intake.signals.len();
        batch.push((intake, reply, span));
    }
    waiting.extend(rest);
    let merged = match batch.as_slice() {
        [(one, _, _)] => one.clone(),
        [(first, _, _), ..] => {
            let mut m = AlertIntake::clone(first);
            m.signals = batch.iter().flat_map(|(i, _, _)| i.signals.iter().cloned()).collect();
            Arc::new(m)
        }
        // `dispatch` only calls with something waiting, and the first always fits.
        [] => Arc::new(AlertIntake::default()),
    };
    (batch, merged)
}
