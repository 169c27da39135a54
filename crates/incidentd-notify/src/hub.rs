//! The notifier hub actor: owns every delivery's state and one lane per
//! destination, persists progress to the outbox, and hands attempts to the
//! adapter actors.
//!
//! A lane is strictly first-in first-out: its head is attempted, and the
//! messages behind it wait until the head is delivered or dead. That keeps a
//! chat channel's messages in incident order and means an outage spends the
//! retry budget of one message, not of all of them. A lane sends when all
//! of these allow it: its rate limit (minimum spacing of requests), the
//! head's backoff or the destination's `Retry-After`, and its circuit
//! breaker. At most one request per lane is in flight.
//!
//! The hub never awaits I/O: adapter calls run in tasks that report back
//! with `Outcome`, and outbox records are queued to the store's writer
//! thread in order (`OutboxLog::append`), whose sync is awaited off the
//! actor. Back-pressure: while more than `max_pending` notifications are
//! undelivered, `Ingest` calls are answered only as deliveries finish, so
//! the feeder stops reading the event feed (it catches up from the log).
//!
//! Memory: the hub keeps every delivery's target and progress (`Delivery`),
//! but a message only for the first `payload_window` deliveries of a lane,
//! and for notices that cannot be derived again (digests, drill
//! reminders). A lane's head without its message waits while the message
//! is derived again from the event log (`feeder::Source`), then goes.

use crate::adapter::{Adapter, AdapterMsg};
use crate::feeder::Source;
use crate::message::DestKind;
use crate::metrics::Metrics;
use crate::outbox::{Delivery, DeliveryState, Folded, Record, Stored};
use crate::policy::{Breaker, BreakerState, Settings};
use crate::route::Notification;
use crate::transport::{Job, SendError, SendOk, Transport};
use incidentd_actors::Clock;
use incidentd_store::OutboxLog;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

/// The notifications of one routed event.
#[derive(Debug, Clone)]
pub struct Routed {
    pub incident: String,
    pub version: u64,
    pub notifications: Vec<Notification>,
    /// When the feeder saw the event (latency metrics); `None` on catch-up.
    pub seen: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("delivery_id: delivery {0:?} not found")]
    NotFound(String),
    #[error("delivery_id: delivery {0:?} is {1}, only dead deliveries can be retried")]
    NotDead(String, &'static str),
    #[error("notifier is not running")]
    Unavailable,
}

pub enum HubMsg {
    /// Routed events, in log order per incident. Answered when accepted
    /// (later than sent while the hub is full: back-pressure).
    Ingest {
        batch: Vec<Routed>,
        reply: RpcReplyPort<()>,
    },
    Outcome {
        key: String,
        result: Result<SendOk, SendError>,
    },
    /// A lane head's notification, derived again from the log.
    Derived {
        key: String,
        result: Result<Vec<Notification>, String>,
    },
    Wake,
    List {
        incident: Option<String>,
        state: Option<DeliveryState>,
        reply: RpcReplyPort<Vec<Delivery>>,
    },
    Get {
        key: String,
        reply: RpcReplyPort<Option<Delivery>>,
    },
    Retry {
        key: String,
        reply: RpcReplyPort<Result<Delivery, NotifyError>>,
    },
    /// Events that notify nobody, routed: only the cursors move (one
    /// outbox record for many events; the feeder gathers them).
    Advance {
        cursors: BTreeMap<String, u64>,
        events: u64,
    },
    /// Every outbox record queued so far is synced (tests, shutdown).
    Flush {
        reply: RpcReplyPort<()>,
    },
}

pub struct HubArgs {
    pub outbox: OutboxLog,
    pub folded: Folded,
    pub transports: HashMap<&'static str, Arc<dyn Transport>>,
    pub settings: Settings,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
    /// Where messages that were not kept are derived from again (`None`:
    /// every message is kept, as in tests without a store).
    pub source: Option<Source>,
}

struct Lane {
    kind: DestKind,
    queue: VecDeque<Arc<str>>,
    /// An attempt is in flight, or the head's message is being derived.
    in_flight: bool,
    /// Rate limit: no request before this.
    next_allowed: Instant,
    /// Backoff of the head, or the destination's Retry-After.
    retry_at: Option<Instant>,
    breaker: Breaker,
}

impl Lane {
    fn new(kind: DestKind, now: Instant) -> Lane {
        Lane {
            kind,
            queue: VecDeque::new(),
            in_flight: false,
            next_allowed: now,
            retry_at: None,
            breaker: Breaker::new(),
        }
    }

    fn ready_at(&self) -> Option<Instant> {
        if self.in_flight || self.queue.is_empty() {
            return None;
        }
        let mut at = self.next_allowed;
        for t in [self.retry_at, self.breaker.open_until()].into_iter().flatten() {
            at = at.max(t);
        }
        Some(at)
    }
}

/// A delivery as the hub holds it.
struct Entry {
    d: Delivery,
    /// What to send: kept near the head of the lane (and when it cannot be
    /// derived again), else derived when the delivery reaches the head.
    payload: Option<Notification>,
    /// When the feeder saw the event (latency metrics).
    seen: Option<Instant>,
}

pub struct HubState {
    outbox: OutboxLog,
    deliveries: HashMap<Arc<str>, Entry>,
    by_incident: HashMap<String, Vec<Arc<str>>>,
    lanes: BTreeMap<String, Lane>,
    adapters: HashMap<&'static str, ActorRef<AdapterMsg>>,
    remote_ids: HashMap<(String, String), String>,
    source: Option<Source>,
    settings: Settings,
    clock: Clock,
    metrics: Arc<Metrics>,
    pending: usize,
    deferred: VecDeque<RpcReplyPort<()>>,
    wake: Option<(Instant, tokio::task::JoinHandle<()>)>,
}

pub struct Hub;

impl Actor for Hub {
    type Msg = HubMsg;
    type State = HubState;
    type Arguments = HubArgs;

    async fn pre_start(&self, myself: ActorRef<HubMsg>, args: HubArgs) -> Result<HubState, ActorProcessingErr> {
        let mut adapters = HashMap::new();
        for (name, transport) in args.transports {
            let (a, _) = Actor::spawn_linked(
                None,
                Adapter,
                (transport, args.settings.request_timeout),
                myself.get_cell(),
            )
            .await?;
            adapters.insert(name, a);
        }
        let mut st = HubState {
            outbox: args.outbox,
            deliveries: HashMap::new(),
            by_incident: HashMap::new(),
            lanes: BTreeMap::new(),
            adapters,
            remote_ids: HashMap::new(),
            source: args.source,
            settings: args.settings,
            clock: args.clock,
            metrics: args.metrics,
            pending: 0,
            deferred: VecDeque::new(),
            wake: None,
        };
        let Folded {
            mut deliveries,
            mut payloads,
            order,
            ..
        } = args.folded;
        for key in order {
            if let Some(d) = deliveries.remove(&key) {
                let payload = payloads.remove(&key);
                st.insert(d, payload, None);
            }
        }
        Ok(st)
    }

    async fn post_start(&self, myself: ActorRef<HubMsg>, st: &mut HubState) -> Result<(), ActorProcessingErr> {
        st.pump(&myself);
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<HubMsg>, st: &mut HubState) -> Result<(), ActorProcessingErr> {
        if let Some((_, task)) = st.wake.take() {
            task.abort();
        }
        Ok(())
    }

    async fn handle(&self, myself: ActorRef<HubMsg>, msg: HubMsg, st: &mut HubState) -> Result<(), ActorProcessingErr> {
        match msg {
            HubMsg::Ingest { batch, reply } => {
                st.ingest(batch);
                if st.pending < st.settings.max_pending {
                    let _ = reply.send(());
                } else {
                    st.deferred.push_back(reply);
                }
            }
            HubMsg::Advance { cursors, events } => {
                st.metrics.events_routed.fetch_add(events, Ordering::Relaxed);
                st.persist(vec![Record::Cursors { cursors }]);
            }
            HubMsg::Outcome { key, result } => st.outcome(&key, result),
            HubMsg::Derived { key, result } => st.derived(&key, result),
            HubMsg::Wake => st.wake = None,
            HubMsg::List { incident, state, reply } => {
                let _ = reply.send(st.list(incident.as_deref(), state));
            }
            HubMsg::Get { key, reply } => {
                let _ = reply.send(st.deliveries.get(key.as_str()).map(|e| e.d.clone()));
            }
            HubMsg::Retry { key, reply } => {
                let _ = reply.send(st.retry(&key));
            }
            HubMsg::Flush { reply } => {
                let synced = st.outbox.append(Vec::new());
                tokio::spawn(async move {
                    let _ = synced.await;
                    let _ = reply.send(());
                });
            }
        }
        st.pump(&myself);
        Ok(())
    }
}

impl HubState {
    fn now_ms(&self) -> i64 {
        self.clock.now().0
    }

    fn persist(&self, records: Vec<Record>) {
        if records.is_empty() {
            return;
        }
        let synced = self.outbox.append(records.iter().map(Record::encode).collect());
        tokio::spawn(async move {
            match synced.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "outbox append failed"),
                Err(_) => tracing::error!("outbox writer stopped"),
            }
        });
    }

    /// Whether a message need not be kept: it can be derived again.
    fn rederivable(&self, d: &Delivery) -> bool {
        self.source.is_some() && d.derivable()
    }

    /// Adds a delivery (from recovery or a routed event) to its lane; its
    /// message is kept only near the head of the lane (or if it cannot be
    /// derived again).
    fn insert(&mut self, d: Delivery, payload: Option<Notification>, seen: Option<Instant>) {
        let key: Arc<str> = Arc::from(d.key());
        if let Some(remote) = &d.progress.remote_id {
            self.remote_ids
                .insert((d.destination.clone(), d.incident.clone()), remote.clone());
        }
        self.by_incident
            .entry(d.incident.clone())
            .or_default()
            .push(key.clone());
        // A dead delivery may be retried: its message stays if it cannot be derived again.
        let mut keep = d.progress.state != DeliveryState::Delivered && !self.rederivable(&d);
        if !d.progress.state.is_terminal() {
            let now = Instant::now();
            let lane = self
                .lanes
                .entry(d.destination.clone())
                .or_insert_with(|| Lane::new(d.kind, now));
            if lane.queue.is_empty() && d.progress.state == DeliveryState::Retrying {
                // Recovered mid-backoff: keep its schedule.
                let wait = d
                    .progress
                    .next_attempt_at
                    .map(|t| Duration::from_millis(u64::try_from(t - self.clock.now().0).unwrap_or(0)));
                lane.retry_at = wait.map(|w| now + w);
            }
            keep = keep || lane.queue.len() < self.settings.payload_window;
            lane.queue.push_back(key.clone());
            self.pending += 1;
        }
        let payload = payload.filter(|_| keep);
        self.deliveries.insert(key, Entry { d, payload, seen });
        self.metrics.queue_depth.store(self.pending as u64, Ordering::Relaxed);
    }

    fn ingest(&mut self, batch: Vec<Routed>) {
        let now = self.now_ms();
        let mut records = Vec::with_capacity(batch.len());
        for r in batch {
            self.metrics.events_routed.fetch_add(1, Ordering::Relaxed);
            let mut stored = Vec::new();
            let mut fresh = 0;
            for n in r.notifications {
                if self.deliveries.contains_key(n.key.as_str()) {
                    continue; // derived again after a restart: same key, same delivery
                }
                let d = Delivery::new(&n, now);
                stored.push(Stored::new(&d, Some(&n)));
                self.insert(d, Some(n), r.seen);
                fresh += 1;
            }
            self.metrics.notifications_derived.fetch_add(fresh, Ordering::Relaxed);
            records.push(Record::Derived {
                incident: r.incident,
                version: r.version,
                deliveries: stored,
            });
        }
        self.persist(records);
    }

    fn list(&self, incident: Option<&str>, state: Option<DeliveryState>) -> Vec<Delivery> {
        let keep = |d: &&Delivery| state.is_none_or(|s| d.progress.state == s);
        match incident {
            Some(i) => self
                .by_incident
                .get(i)
                .map(|keys| {
                    keys.iter()
                        .filter_map(|k| self.deliveries.get(k))
                        .map(|e| &e.d)
                        .filter(keep)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
            None => {
                let mut all: Vec<Delivery> = self.deliveries.values().map(|e| &e.d).filter(keep).cloned().collect();
                all.sort_by(|a, b| (a.created_at, a.key()).cmp(&(b.created_at, b.key())));
                all
            }
        }
    }

    fn retry(&mut self, key: &str) -> Result<Delivery, NotifyError> {
        let now = self.now_ms();
        let (key, e) = match self.deliveries.get_key_value(key) {
            Some((k, _)) => {
                let k = k.clone();
                let e = self
                    .deliveries
                    .get_mut(&k)
                    .ok_or_else(|| NotifyError::NotFound(k.to_string()))?;
                (k, e)
            }
            None => return Err(NotifyError::NotFound(key.to_string())),
        };
        let p = &mut e.d.progress;
        if p.state != DeliveryState::Dead {
            return Err(NotifyError::NotDead(key.to_string(), p.state.as_str()));
        }
        p.state = DeliveryState::Pending;
        p.attempts = 0;
        p.updated_at = now;
        p.next_attempt_at = None;
        let d = e.d.clone();
        self.persist(vec![Record::State {
            key: key.to_string(),
            progress: d.progress.clone(),
        }]);
        // Its message, if not kept, is derived again when it reaches the head.
        self.lanes
            .entry(d.destination.clone())
            .or_insert_with(|| Lane::new(d.kind, Instant::now()))
            .queue
            .push_back(key);
        self.pending += 1;
        self.metrics.queue_depth.store(self.pending as u64, Ordering::Relaxed);
        Ok(d)
    }

    /// A lane head's message is back from the log: it goes at the next
    /// pump. Not derivable (the log cannot be read, or the event no longer
    /// routes there) counts as a failed attempt.
    fn derived(&mut self, key: &str, result: Result<Vec<Notification>, String>) {
        let failure = match result {
            Ok(routed) => match routed.into_iter().find(|n| n.key == key) {
                Some(n) => {
                    if let Some(e) = self.deliveries.get_mut(key) {
                        e.payload = Some(n);
                        if let Some(lane) = self.lanes.get_mut(&e.d.destination) {
                            lane.in_flight = false;
                        }
                    }
                    return;
                }
                None => SendError::permanent("the logged event no longer routes to this destination"),
            },
            Err(e) => SendError::transient(e),
        };
        if let Some(e) = self.deliveries.get_mut(key) {
            e.d.progress.attempts += 1;
        }
        self.outcome(key, Err(failure));
    }

    fn outcome(&mut self, key: &str, result: Result<SendOk, SendError>) {
        let now = Instant::now();
        let now_ms = self.now_ms();
        let Some(entry) = self.deliveries.get_mut(key) else {
            return;
        };
        let dest = entry.d.destination.clone();
        let Some(lane) = self.lanes.get_mut(&dest) else {
            return;
        };
        lane.in_flight = false;
        let kind = lane.kind;
        let rederivable = self.source.is_some() && entry.d.derivable();
        let p = &mut entry.d.progress;
        p.updated_at = now_ms;
        let finished = match result {
            Ok(ok) => {
                lane.breaker.on_success();
                lane.retry_at = None;
                p.state = DeliveryState::Delivered;
                p.delivered_at = Some(now_ms);
                p.next_attempt_at = None;
                p.last_error = ok.note;
                // Delivered for good: only the headline stays (memory stays
                // small however long the history grows).
                entry.payload = None;
                if let Some(remote) = ok.remote_id {
                    p.remote_id = Some(remote.clone());
                    self.remote_ids.insert((dest.clone(), entry.d.incident.clone()), remote);
                }
                self.metrics.count(kind, "delivered");
                if let Some(seen) = entry.seen.take() {
                    Metrics::observe(&self.metrics.to_delivered, seen.elapsed().as_secs_f64());
                }
                true
            }
            Err(e) => {
                lane.breaker.on_failure(now, &self.settings);
                p.last_error = Some(e.message.clone());
                if e.permanent || p.attempts >= self.settings.max_attempts {
                    p.state = DeliveryState::Dead;
                    p.next_attempt_at = None;
                    lane.retry_at = None;
                    self.metrics.count(kind, "dead");
                    entry.seen = None;
                    if rederivable {
                        // A retry derives it again.
                        entry.payload = None;
                    }
                    tracing::warn!(key, destination = %dest, attempts = p.attempts, error = %e.message, "delivery dead");
                    true
                } else {
                    let backoff = self.settings.backoff(p.attempts);
                    let wait = match e.retry_after {
                        Some(ra) => {
                            self.metrics.count(kind, "rate_limited");
                            ra.min(self.settings.max_retry_after)
                        }
                        None => {
                            self.metrics.count(kind, "retried");
                            backoff
                        }
                    };
                    p.state = DeliveryState::Retrying;
                    let at = now + wait;
                    lane.retry_at = Some(at);
                    p.next_attempt_at = Some(now_ms + wait.as_millis() as i64);
                    tracing::debug!(key, destination = %dest, attempts = p.attempts, wait_ms = wait.as_millis() as u64, error = %e.message, "delivery failed; retrying");
                    false
                }
            }
        };
        if finished {
            if lane.queue.front().map(|k| &**k) == Some(key) {
                lane.queue.pop_front();
            }
            self.pending = self.pending.saturating_sub(1);
            self.metrics.queue_depth.store(self.pending as u64, Ordering::Relaxed);
            while self.pending < self.settings.max_pending {
                match self.deferred.pop_front() {
                    Some(r) => {
                        let _ = r.send(());
                    }
                    None => break,
                }
            }
        }
        let record = Record::State {
            key: key.to_string(),
            progress: entry.d.progress.clone(),
        };
        self.persist(vec![record]);
    }

    /// Starts every lane that may send now and arms one timer for the
    /// earliest lane that may send later.
    fn pump(&mut self, myself: &ActorRef<HubMsg>) {
        let now = Instant::now();
        let mut earliest: Option<Instant> = None;
        let mut jobs = Vec::new();
        let mut derive = Vec::new();
        for (dest, lane) in self.lanes.iter_mut() {
            let Some(at) = lane.ready_at() else { continue };
            if at > now {
                earliest = Some(earliest.map_or(at, |e| e.min(at)));
                continue;
            }
            let Some(key) = lane.queue.front().cloned() else {
                continue;
            };
            let Some(e) = self.deliveries.get_mut(&key) else {
                lane.queue.pop_front();
                continue;
            };
            lane.in_flight = true;
            let Some(notification) = &e.payload else {
                derive.push((key.to_string(), e.d.incident.clone(), e.d.version));
                continue;
            };
            if lane.breaker.state(now) == BreakerState::HalfOpen {
                tracing::info!(destination = %dest, "circuit half-open: trial request");
            }
            lane.next_allowed = now + self.settings.interval(lane.kind);
            e.d.progress.attempts += 1;
            let remote_id = self.remote_ids.get(&(dest.clone(), e.d.incident.clone())).cloned();
            if e.d.progress.attempts == 1
                && let Some(seen) = e.seen
            {
                Metrics::observe(&self.metrics.to_adapter, seen.elapsed().as_secs_f64());
            }
            jobs.push((
                lane.kind,
                Job {
                    notification: notification.clone(),
                    attempt: e.d.progress.attempts,
                    remote_id,
                },
            ));
        }
        for (key, incident, version) in derive {
            let (source, me) = (self.source.clone(), myself.clone());
            tokio::spawn(async move {
                let result = match source {
                    Some(s) => s.derive(&incident, version).await,
                    None => Err("its message was not kept".to_string()),
                };
                let _ = me.cast(HubMsg::Derived { key, result });
            });
        }
        for (kind, job) in jobs {
            match self.adapters.get(kind.adapter()) {
                Some(a) => {
                    let _ = a.cast(AdapterMsg::Deliver {
                        job,
                        hub: myself.clone(),
                    });
                }
                None => {
                    let key = job.notification.key.clone();
                    let _ = myself.cast(HubMsg::Outcome {
                        key,
                        result: Err(SendError::permanent(format!(
                            "no {} adapter configured",
                            kind.adapter()
                        ))),
                    });
                }
            }
        }
        if let Some(at) = earliest {
            let sooner = self.wake.as_ref().is_none_or(|(w, _)| at < *w);
            if sooner {
                if let Some((_, task)) = self.wake.take() {
                    task.abort();
                }
                let me = myself.clone();
                let task = tokio::spawn(async move {
                    tokio::time::sleep_until(at).await;
                    let _ = me.cast(HubMsg::Wake);
                });
                self.wake = Some((at, task));
            }
        }
    }
}
