//! `Handle`: the one API the edges (gRPC, HTTP, benches, tests) use to talk
//! to incidents. It hides actors and reply ports behind async functions.

use crate::codec::{self, Reply};
use crate::error::{Error, Result};
use crate::incident::{IncidentMsg, ReplyKind, rebuild};
use crate::shared::{Clock, Counters, OrgView, Published, Shared};
use crate::supervisor::{Filter, IncidentSupervisor, LiveStats, Page, SupervisorArgs, SupervisorMsg};
use incidentd_domain::{Command, Incident, IncidentId, TimelineEntry, Update};
use incidentd_store::{Recovery, Store};
use ractor::{Actor, ActorRef, RpcReplyPort};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, oneshot};

/// Capacity of the feed of persisted events; a watcher further behind is cut off.
pub const FEED_CAPACITY: usize = 65_536;

#[derive(Clone)]
pub struct Handle {
    supervisor: ActorRef<SupervisorMsg>,
    shared: Arc<Shared>,
}

/// Figures of the start-up recovery.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub incidents: usize,
    pub live: usize,
    pub store: Duration,
    pub rebuild_and_spawn: Duration,
}

pub struct Options {
    pub clock: Clock,
    pub snapshot_every: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            clock: Clock::system(),
            snapshot_every: 32,
        }
    }
}

impl Handle {
    /// Rebuilds every incident from the store's recovery, spawns the supervisor
    /// and one actor per live incident. Returns when all are running.
    pub async fn start(
        store: Store,
        recovery: Recovery,
        org: Arc<dyn OrgView>,
        opts: Options,
    ) -> Result<(Handle, Recovered)> {
        let started = Instant::now();
        let mut recovered = Vec::with_capacity(recovery.incidents.len());
        for rec in &recovery.incidents {
            recovered.push(rebuild(rec)?);
        }
        let live = recovered.iter().filter(|i| i.is_declared() && !i.is_resolved()).count();
        let total = recovered.len();
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        let shared = Arc::new(Shared {
            store,
            org: std::sync::RwLock::new(org),
            feed,
            clock: opts.clock,
            counters: Counters::default(),
            snapshot_every: opts.snapshot_every.max(1),
            calendar: std::sync::OnceLock::new(),
            drill_reminders: broadcast::channel(1024).0,
        });
        let args = SupervisorArgs {
            shared: shared.clone(),
            recovered,
        };
        let (supervisor, _) = Actor::spawn(None, IncidentSupervisor, args)
            .await
            .map_err(|e| Error::Internal(format!("could not start the supervisor: {e}")))?;
        let handle = Handle { supervisor, shared };
        let calendar = crate::drills::Calendar::start(handle.clone()).await?;
        let _ = handle.shared.calendar.set(calendar);
        let figures = Recovered {
            incidents: total,
            live,
            store: recovery.elapsed,
            rebuild_and_spawn: started.elapsed(),
        };
        Ok((handle, figures))
    }

    /// The supervisor, for the alert router (`alerts.rs`), which routes through it.
    pub(crate) fn supervisor(&self) -> ActorRef<SupervisorMsg> {
        self.supervisor.clone()
    }

    pub fn clock(&self) -> Clock {
        self.shared.clock
    }

    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    pub fn org(&self) -> Arc<dyn OrgView> {
        self.shared.org()
    }

    /// Swaps the org view (config reload); commands after this see the new one.
    pub fn set_org(&self, org: Arc<dyn OrgView>) {
        self.shared.set_org(org);
    }

    pub async fn declare(&self, cmd: Command, request_id: Option<String>) -> Result<Incident> {
        let reply = self
            .ask(|reply| SupervisorMsg::Declare {
                cmd,
                request_id,
                reply: reply.into(),
                span: tracing::Span::current(),
            })
            .await??;
        expect_incident(reply)
    }

    /// Runs a command on an incident; the answer has the shape `kind` asks for.
    pub async fn execute(
        &self,
        id: IncidentId,
        cmd: Command,
        request_id: Option<String>,
        kind: ReplyKind,
    ) -> Result<Reply> {
        self.route(id, |reply| IncidentMsg::Execute {
            cmd,
            request_id,
            kind,
            reply: reply.into(),
            span: tracing::Span::current(),
        })
        .await?
    }

    pub async fn execute_incident(&self, id: IncidentId, cmd: Command, request_id: Option<String>) -> Result<Incident> {
        expect_incident(self.execute(id, cmd, request_id, ReplyKind::Incident).await?)
    }

    pub async fn execute_entry(
        &self,
        id: IncidentId,
        cmd: Command,
        request_id: Option<String>,
    ) -> Result<TimelineEntry> {
        match self.execute(id, cmd, request_id, ReplyKind::Entry).await? {
            Reply::Entry(e) => Ok(e),
            other => Err(Error::Internal(format!("expected a timeline entry, got {other:?}"))),
        }
    }

    pub async fn execute_update(&self, id: IncidentId, cmd: Command, request_id: Option<String>) -> Result<Update> {
        match self.execute(id, cmd, request_id, ReplyKind::Update).await? {
            Reply::Update(u) => Ok(*u),
            other => Err(Error::Internal(format!("expected an update, got {other:?}"))),
        }
    }

    /// Full state, timeline and updates included.
    pub async fn get(&self, id: IncidentId) -> Result<Arc<Incident>> {
        self.route(id, |reply| IncidentMsg::Get { reply }).await?
    }

    pub async fn list(&self, filter: Filter, after: Option<IncidentId>, limit: usize) -> Result<Page> {
        self.ask(|reply| SupervisorMsg::List {
            filter,
            after,
            limit,
            reply,
        })
        .await
    }

    pub async fn stats(&self) -> Result<LiveStats> {
        self.ask(|reply| SupervisorMsg::Stats { reply }).await
    }

    /// Test hook: makes the incident's actor panic.
    #[doc(hidden)]
    pub fn crash_actor(&self, id: IncidentId) {
        let _ = self.supervisor.cast(SupervisorMsg::Route {
            id,
            msg: IncidentMsg::Panic,
        });
    }

    /// Watches one incident: every persisted event with version > `from_version`,
    /// then live ones; no gaps, no duplicates.
    pub async fn watch(&self, id: IncidentId, from_version: u64) -> Result<Watch> {
        // Subscribe first, then read the version: every event after it is in `live`.
        let live = self.shared.feed.subscribe();
        let current = self.route(id, |reply| IncidentMsg::Version { reply }).await??;
        let history = if from_version < current {
            self.shared
                .store
                .read_events(id.to_bytes(), from_version, current)
                .await?
        } else {
            Vec::new()
        };
        let mut backlog = Vec::with_capacity(history.len());
        for (version, bytes) in history {
            let event = codec::decode_event(&bytes)?;
            backlog.push(WatchItem {
                incident: id,
                version,
                json: Arc::from(codec::event_json(&bytes)),
                event,
            });
        }
        Ok(Watch {
            id: Some(id),
            after: current.max(from_version),
            backlog: backlog.into(),
            live,
        })
    }

    /// Watches every incident (filter applied by the caller): live events from now on.
    pub fn watch_all(&self) -> broadcast::Receiver<Arc<Published>> {
        self.shared.feed.subscribe()
    }

    /// Stops all actors (their state is already durable).
    /// Drills whose reminder fell due, from now on (the notifier sends them;
    /// at its start it also reads `list_drills` for reminders it missed).
    pub fn watch_drill_reminders(&self) -> broadcast::Receiver<crate::drills::ScheduledDrill> {
        self.shared.drill_reminders.subscribe()
    }

    pub(crate) fn drill_reminder(&self, d: crate::drills::ScheduledDrill) -> bool {
        self.shared.drill_reminders.send(d).is_ok()
    }

    /// Puts a drill on the calendar (durable before it returns).
    pub async fn schedule_drill(
        &self,
        scenario: String,
        team: String,
        at: Option<incidentd_domain::Timestamp>,
        recurring: bool,
        by: Option<String>,
    ) -> Result<crate::drills::ScheduledDrill> {
        self.ask_calendar(|reply| crate::drills::CalendarMsg::Schedule {
            scenario,
            team,
            at,
            recurring,
            by,
            reply,
        })
        .await?
    }

    pub async fn cancel_drill(&self, id: String) -> Result<crate::drills::ScheduledDrill> {
        self.ask_calendar(|reply| crate::drills::CalendarMsg::Cancel { id, reply })
            .await?
    }

    pub async fn list_drills(&self, team: Option<String>) -> Result<Vec<crate::drills::ScheduledDrill>> {
        self.ask_calendar(|reply| crate::drills::CalendarMsg::List { team, reply })
            .await
    }

    async fn ask_calendar<T>(&self, make: impl FnOnce(RpcReplyPort<T>) -> crate::drills::CalendarMsg) -> Result<T> {
        let calendar = self.shared.calendar.get().ok_or(Error::ShuttingDown)?;
        let (tx, rx) = oneshot::channel();
        calendar
            .cast(make(RpcReplyPort::from(tx)))
            .map_err(|_| Error::ShuttingDown)?;
        rx.await
            .map_err(|_| Error::Internal("the drill calendar dropped the call".into()))
    }

    pub async fn shutdown(&self) {
        if let Some(c) = self.shared.calendar.get() {
            c.stop(None);
        }
        if self.ask(|reply| SupervisorMsg::Shutdown { reply }).await.is_err() {
            self.supervisor.stop(None); // it is gone or going already
        }
    }

    async fn ask<T>(&self, make: impl FnOnce(RpcReplyPort<T>) -> SupervisorMsg) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.supervisor
            .cast(make(RpcReplyPort::from(tx)))
            .map_err(|_| Error::ShuttingDown)?;
        rx.await
            .map_err(|_| Error::Internal("the supervisor dropped the call".into()))
    }

    async fn route<T>(&self, id: IncidentId, make: impl FnOnce(RpcReplyPort<T>) -> IncidentMsg) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let msg = make(RpcReplyPort::from(tx));
        self.supervisor
            .cast(SupervisorMsg::Route { id, msg })
            .map_err(|_| Error::ShuttingDown)?;
        rx.await.map_err(|_| {
            Error::Internal("the incident's actor failed while handling the call; it was restarted".into())
        })
    }
}

fn expect_incident(reply: Reply) -> Result<Incident> {
    match reply {
        Reply::Incident(i) => Ok(*i),
        other => Err(Error::Internal(format!("expected an incident, got {other:?}"))),
    }
}

#[derive(Debug, Clone)]
pub struct WatchItem {
    pub incident: IncidentId,
    pub version: u64,
    pub event: incidentd_domain::Event,
    pub json: Arc<str>,
}

/// A gap-free stream of one incident's events: the stored backlog, then live.
pub struct Watch {
    id: Option<IncidentId>,
    after: u64,
    backlog: std::collections::VecDeque<WatchItem>,
    live: broadcast::Receiver<Arc<Published>>,
}

impl Watch {
    /// The next event; `Err(Overloaded)` if this watcher fell too far behind
    /// (resume with `from_version` = the last version seen).
    pub async fn next(&mut self) -> Result<WatchItem> {
        if let Some(item) = self.backlog.pop_front() {
            return Ok(item);
        }
        loop {
            match self.live.recv().await {
                Ok(p) => {
                    if Some(p.incident) != self.id || p.version <= self.after {
                        continue;
                    }
                    self.after = p.version;
                    return Ok(WatchItem {
                        incident: p.incident,
                        version: p.version,
                        event: p.event.clone(),
                        json: p.json.clone(),
                    });
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    return Err(Error::Overloaded(format!(
                        "watcher fell {n} events behind; resume from version {}",
                        self.after
                    )));
                }
                Err(broadcast::error::RecvError::Closed) => return Err(Error::ShuttingDown),
            }
        }
    }
}
