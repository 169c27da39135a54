//! `StatusPageActor`: owns the public view (public incidents, maintenance
//! windows) and re-renders every document when it changes.
//!
//! * **Fed by the incident feed.** A task forwards `Handle::watch_all`
//!   (subscribed before the initial load, so nothing is missed; what is
//!   seen twice is skipped by version). A gap in an incident's versions,
//!   or a lagging feed, reloads from the store: the view is always a
//!   function of the log.
//! * **Rendered on change, not per request.** Incoming events mark the view
//!   dirty and queue one `Render` behind them in the mailbox, so a burst of
//!   events costs one render. Readers get the last `Rendered` from a
//!   `watch` channel: thousands of readers never reach this actor, nor any
//!   incident actor.
//! * **Maintenance windows are durable.** Each change is an event appended
//!   to the log (fdatasync) before it is applied and acknowledged; recovery
//!   folds them back (`recover`). Their statuses follow their times, so the
//!   actor arms one timer (tokio's clock, paused in tests) for the next
//!   status change or the next UTC midnight (availability bars roll over).

use crate::maintenance::{self, Maintenance, MaintenanceEvent, MaintenanceId, ScheduleRequest, UpdateRequest};
use crate::render::Rendered;
use crate::view::{Catalog, ComponentState, HISTORY_DAYS, PageModel, PublicIncident, PublicStatus, PublicUpdate};
use incidentd_actors::{Error, Filter, Handle, Published, Result};
use incidentd_domain::{DomainError, EventKind, Incident, IncidentId, Timestamp, UpdateKind};
use incidentd_store::{Record, RecoveredIncident};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

const FORMAT_V1: u8 = 1;
const DAY_MS: i64 = 86_400_000;
/// Incidents read per page of the initial load.
const LOAD_PAGE: usize = 500;
/// Longest spacing of renders under a burst of events (reached only by
/// pages with tens of thousands of open incidents).
const MAX_RENDER_GAP: std::time::Duration = std::time::Duration::from_secs(1);
/// Renders are spaced this many render times apart under a burst (so
/// rendering takes at most a sixteenth of a core: a render walks every
/// incident of the view, and a declaration storm of 100k public incidents
/// otherwise spent a quarter of a core re-rendering, a quarter of the
/// declaration rate on two cores).
const RENDER_SPACING: u32 = 16;
/// Renders cheaper than this divided by `RENDER_SPACING` (5 ms) are never delayed.
const MIN_THROTTLED_GAP: std::time::Duration = std::time::Duration::from_millis(80);

pub enum PageMsg {
    /// Persisted incident events, in feed order.
    Events(Vec<Arc<Published>>),
    /// The feed lagged: reload every incident from the store.
    Resync,
    /// Render if anything changed since the last render.
    Render,
    /// A time-driven change may be due (maintenance status, new day).
    Tick,
    /// A command's reply: the incident is at least at this version.
    Observe(Arc<Incident>, RpcReplyPort<()>),
    Schedule {
        req: ScheduleRequest,
        request_id: Option<String>,
        reply: RpcReplyPort<Result<Maintenance>>,
    },
    Update {
        id: String,
        req: UpdateRequest,
        request_id: Option<String>,
        reply: RpcReplyPort<Result<Maintenance>>,
    },
    ListMaintenance {
        reply: RpcReplyPort<Vec<Maintenance>>,
    },
    Components {
        reply: RpcReplyPort<Vec<ComponentState>>,
    },
}

pub struct StatusPageActor;

pub struct PageArgs {
    pub handle: Handle,
    pub catalog: Arc<Catalog>,
    /// The log's maintenance aggregates, as recovered (see `split_recovery`).
    pub maintenance: Vec<RecoveredIncident>,
    pub publish: watch::Sender<Arc<Rendered>>,
}

pub struct PageState {
    handle: Handle,
    catalog: Arc<Catalog>,
    incidents: BTreeMap<IncidentId, PublicIncident>,
    maintenance: BTreeMap<MaintenanceId, Maintenance>,
    publish: watch::Sender<Arc<Rendered>>,
    started: Timestamp,
    dirty: bool,
    render_queued: bool,
    /// When the last render finished and how long it took (throttling).
    last_render: (tokio::time::Instant, std::time::Duration),
    timer: Option<(Timestamp, tokio::task::JoinHandle<()>)>,
    forwarder: tokio::task::JoinHandle<()>,
}

impl Drop for PageState {
    fn drop(&mut self) {
        self.forwarder.abort();
        if let Some((_, t)) = self.timer.take() {
            t.abort();
        }
    }
}

/// Folds the recovered maintenance aggregates.
pub fn recover(recs: &[RecoveredIncident]) -> Result<BTreeMap<MaintenanceId, Maintenance>> {
    let mut out = BTreeMap::new();
    for rec in recs {
        let mut m = Maintenance::default();
        for (version, payload) in &rec.tail {
            if *version != m.version + 1 {
                return Err(Error::Internal(format!(
                    "maintenance log has a gap: expected version {}, found {version}",
                    m.version + 1
                )));
            }
            m.apply(&decode(payload)?);
        }
        out.insert(MaintenanceId(rec.incident), m);
    }
    Ok(out)
}

fn encode(e: &MaintenanceEvent) -> Vec<u8> {
    let mut out = vec![FORMAT_V1];
    if serde_json::to_writer(&mut out, e).is_err() {
        out.truncate(1);
    }
    out
}

fn decode(bytes: &[u8]) -> Result<MaintenanceEvent> {
    match bytes.split_first() {
        Some((&FORMAT_V1, json)) => {
            serde_json::from_slice(json).map_err(|e| Error::Internal(format!("corrupt stored maintenance event: {e}")))
        }
        _ => Err(Error::Internal("stored maintenance event has an unknown format".into())),
    }
}

/// The full incident (customer updates included), read from the store and
/// replayed: no actor is woken for history.
async fn load_full(handle: &Handle, id: IncidentId) -> Result<Incident> {
    let events = handle.store().read_events(id.to_bytes(), 0, u64::MAX).await?;
    let mut decoded = Vec::with_capacity(events.len());
    for (_, bytes) in &events {
        decoded.push(incidentd_actors::codec::decode_event(bytes)?);
    }
    Ok(incidentd_domain::replay(&decoded))
}

fn in_history(i: &Incident, now: Timestamp) -> bool {
    i.resolved_at
        .filter(|_| i.is_resolved())
        .is_none_or(|r| r.0 >= now.0 - HISTORY_DAYS * DAY_MS)
}

impl PageState {
    fn now(&self) -> Timestamp {
        self.handle.clock().now()
    }

    async fn reload(&mut self, id: IncidentId) -> Result<()> {
        let full = load_full(&self.handle, id).await?;
        match PublicIncident::from_incident(&full).filter(|_| in_history(&full, self.now())) {
            Some(p) => self.incidents.insert(id, p),
            None => self.incidents.remove(&id),
        };
        self.dirty = true;
        Ok(())
    }

    /// Every incident from the supervisor's summaries; customer updates are
    /// read from the store only for the incidents the page lists
    /// (`complete_shown`), so a start with 100k live incidents stays cheap.
    async fn load_all(&mut self) -> Result<()> {
        let now = self.now();
        let mut after = None;
        let mut fresh = BTreeMap::new();
        loop {
            let page = self.handle.list(Filter::default(), after, LOAD_PAGE).await?;
            for s in &page.incidents {
                if s.drill || !in_history(s, now) || !s.is_declared() {
                    continue;
                }
                fresh.insert(s.id, PublicIncident::from_summary(s, Vec::new()));
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        self.incidents = fresh;
        self.dirty = true;
        Ok(())
    }

    async fn on_event(&mut self, p: &Published) -> Result<()> {
        if p.summary.drill {
            self.incidents.remove(&p.incident);
            return Ok(());
        }
        let known = self.incidents.get(&p.incident).map(|i| i.version);
        match known {
            Some(v) if p.version <= v => return Ok(()),
            Some(v) if p.version == v + 1 => {}
            None if p.version == 1 => {}
            // A gap (or an incident seen first mid-way): the log has it all.
            _ => return self.reload(p.incident).await,
        }
        // A new incident (version 1) is complete: every update will be seen.
        let old = self.incidents.remove(&p.incident);
        let (mut updates, complete) = old
            .as_ref()
            .map(|i| (i.updates.clone(), i.complete))
            .unwrap_or((Vec::new(), true));
        if let EventKind::UpdatePosted {
            kind: UpdateKind::Customer,
            rendered,
            ..
        } = &p.event.kind
        {
            updates.push(PublicUpdate {
                seq: updates.len() as u64 + 1,
                at: p.event.at,
                status: PublicStatus::from_status(p.summary.status),
                body: rendered.clone(),
            });
        }
        let mut public = PublicIncident::from_summary(&p.summary, updates);
        public.complete = complete;
        // Most events (internal updates, notes, roles) change nothing public,
        // and an incident customers never hear of (no component of the page,
        // no customer update) is on no document: no render for them.
        let seen = |i: &PublicIncident| !i.complete || i.is_public(&self.catalog);
        let changed = (old.as_ref().is_some_and(seen) || seen(&public))
            && old.is_none_or(|mut o| {
                o.version = public.version;
                o != public
            });
        self.incidents.insert(p.incident, public);
        self.dirty |= changed;
        Ok(())
    }

    /// Reads the customer updates of listed incidents not fully known yet.
    async fn complete_shown(&mut self) {
        for id in crate::view::shown(&self.incidents, &self.catalog) {
            if self.incidents.get(&id).is_some_and(|i| !i.complete)
                && let Err(e) = self.reload(id).await
            {
                tracing::warn!(incident_id = %id, error = %e, "status page could not load an incident");
            }
        }
    }

    fn model(&self, now: Timestamp) -> PageModel<'_> {
        PageModel::build(&self.catalog, &self.incidents, &self.maintenance, now, self.started)
    }

    async fn render(&mut self, myself: &ActorRef<PageMsg>) {
        self.complete_shown().await;
        let started = std::time::Instant::now();
        let now = self.now();
        // History older than the page shows leaves the view.
        let horizon = now.0 - HISTORY_DAYS * DAY_MS;
        self.incidents
            .retain(|_, i| i.resolved_at.is_none_or(|r| r.0 >= horizon));
        let rendered = Rendered::build(&self.model(now), self.started);
        let changed = self
            .publish
            .borrow()
            .docs
            .iter()
            .zip(&rendered.docs)
            .any(|(a, b)| a.etag != b.etag);
        if changed {
            self.publish.send_replace(Arc::new(rendered));
        }
        self.dirty = false;
        self.last_render = (tokio::time::Instant::now(), started.elapsed());
        self.arm_timer(myself, now);
    }

    /// One timer: the next maintenance status change, or the next UTC midnight.
    fn arm_timer(&mut self, myself: &ActorRef<PageMsg>, now: Timestamp) {
        let midnight = Timestamp((now.0.div_euclid(DAY_MS) + 1) * DAY_MS);
        let due = self
            .maintenance
            .values()
            .filter_map(|m| m.next_change(now))
            .min()
            .unwrap_or(midnight)
            .min(midnight);
        if self.timer.as_ref().is_some_and(|(t, h)| *t == due && !h.is_finished()) {
            return;
        }
        if let Some((_, h)) = self.timer.take() {
            h.abort();
        }
        let at = self.handle.clock().instant_at(due);
        let me = myself.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let _ = me.cast(PageMsg::Tick);
        });
        self.timer = Some((due, task));
    }

    /// Queues one render behind what is in the mailbox. When renders are
    /// expensive (a page with very many incidents), they are spaced so that
    /// rendering takes at most a sixteenth of a core: `RENDER_SPACING` render
    /// times apart, at most `MAX_RENDER_GAP`. A page that renders in under
    /// 5 ms (an ordinary one, even with hundreds of updates) is never delayed.
    fn queue_render(&mut self, myself: &ActorRef<PageMsg>) {
        if !self.dirty || self.render_queued {
            return;
        }
        self.render_queued = true;
        let (at, took) = self.last_render;
        let gap = (took * RENDER_SPACING).min(MAX_RENDER_GAP);
        if gap < MIN_THROTTLED_GAP || at.elapsed() >= gap {
            self.render_queued = myself.cast(PageMsg::Render).is_ok();
        } else {
            let me = myself.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(at + gap).await;
                let _ = me.cast(PageMsg::Render);
            });
        }
    }

    async fn schedule(&mut self, req: ScheduleRequest, request_id: Option<String>) -> Result<Maintenance> {
        let store = self.handle.store().clone();
        let idem = request_id.map(|r| format!("maintenance/schedule/{r}"));
        if let Some(key) = &idem
            && let Some(bytes) = store.get_idempotent(key).await?
            && let Ok(raw) = <[u8; 16]>::try_from(bytes.as_slice())
            && let Some(m) = self.maintenance.get(&MaintenanceId(raw))
        {
            return Ok(m.clone());
        }
        let id = MaintenanceId::generate();
        let catalog = self.catalog.clone();
        let event = maintenance::schedule(&req, id, self.now(), &|s| catalog.is_component(s))?;
        let mut batch = vec![Record::Event {
            incident: id.0,
            version: 1,
            payload: encode(&event),
        }];
        if let Some(key) = idem {
            batch.push(Record::Idempotency {
                key,
                response: id.0.to_vec(),
            });
        }
        store.append(batch).await?;
        let mut m = Maintenance::default();
        m.apply(&event);
        self.maintenance.insert(id, m.clone());
        self.dirty = true;
        Ok(m)
    }

    async fn update(&mut self, id: &str, req: UpdateRequest, request_id: Option<String>) -> Result<Maintenance> {
        let mid = MaintenanceId::parse(id)
            .ok_or_else(|| DomainError::invalid("id", format!("{id:?} is not a maintenance window id")))?;
        let current = self
            .maintenance
            .get(&mid)
            .cloned()
            .ok_or_else(|| DomainError::not_found("id", format!("no maintenance window {id}")))?;
        let store = self.handle.store().clone();
        let idem = request_id.map(|r| format!("maintenance/{mid}/update/{r}"));
        if let Some(key) = &idem
            && store.get_idempotent(key).await?.is_some()
        {
            return Ok(current);
        }
        let Some(event) = maintenance::update(&current, &req, self.now())? else {
            return Ok(current);
        };
        let mut batch = vec![Record::Event {
            incident: mid.0,
            version: current.version + 1,
            payload: encode(&event),
        }];
        if let Some(key) = idem {
            batch.push(Record::Idempotency { key, response: vec![] });
        }
        store.append(batch).await?;
        let mut m = current;
        m.apply(&event);
        self.maintenance.insert(mid, m.clone());
        self.dirty = true;
        Ok(m)
    }
}

impl Actor for StatusPageActor {
    type Msg = PageMsg;
    type State = PageState;
    type Arguments = PageArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<PageMsg>,
        args: PageArgs,
    ) -> std::result::Result<PageState, ActorProcessingErr> {
        // Subscribe before loading: nothing published meanwhile is missed.
        let feed = args.handle.watch_all();
        let maintenance = recover(&args.maintenance)?;
        let started = args.handle.clock().now();
        let forwarder = tokio::spawn(forward(feed, myself.clone()));
        let mut st = PageState {
            handle: args.handle,
            catalog: args.catalog,
            incidents: BTreeMap::new(),
            maintenance,
            publish: args.publish,
            started,
            dirty: true,
            render_queued: false,
            last_render: (tokio::time::Instant::now(), std::time::Duration::ZERO),
            timer: None,
            forwarder,
        };
        let t0 = std::time::Instant::now();
        st.load_all().await?;
        let loaded = t0.elapsed();
        st.render(&myself).await;
        tracing::info!(
            incidents = st.incidents.len(),
            maintenance = st.maintenance.len(),
            load_ms = loaded.as_millis() as u64,
            render_ms = st.last_render.1.as_millis() as u64,
            total_ms = t0.elapsed().as_millis() as u64,
            "status page loaded"
        );
        Ok(st)
    }

    async fn handle(
        &self,
        myself: ActorRef<PageMsg>,
        msg: PageMsg,
        st: &mut PageState,
    ) -> std::result::Result<(), ActorProcessingErr> {
        match msg {
            PageMsg::Events(batch) => {
                for p in &batch {
                    if let Err(e) = st.on_event(p).await {
                        tracing::warn!(incident_id = %p.incident, error = %e, "status page could not load an incident");
                    }
                }
                st.queue_render(&myself);
            }
            PageMsg::Resync => {
                if let Err(e) = st.load_all().await {
                    tracing::warn!(error = %e, "status page resync failed");
                }
                st.queue_render(&myself);
            }
            PageMsg::Render => {
                st.render_queued = false;
                if st.dirty {
                    st.render(&myself).await;
                }
            }
            PageMsg::Tick => st.render(&myself).await,
            PageMsg::Observe(summary, reply) => {
                let known = st.incidents.get(&summary.id).map(|i| i.version);
                if known.is_none_or(|v| v < summary.version)
                    && let Err(e) = st.reload(summary.id).await
                {
                    tracing::warn!(incident_id = %summary.id, error = %e, "status page could not load an incident");
                }
                if st.dirty {
                    st.render(&myself).await;
                }
                let _ = reply.send(());
            }
            PageMsg::Schedule { req, request_id, reply } => {
                let r = st.schedule(req, request_id).await;
                if st.dirty {
                    st.render(&myself).await;
                }
                let _ = reply.send(r);
            }
            PageMsg::Update {
                id,
                req,
                request_id,
                reply,
            } => {
                let r = st.update(&id, req, request_id).await;
                if st.dirty {
                    st.render(&myself).await;
                }
                let _ = reply.send(r);
            }
            PageMsg::ListMaintenance { reply } => {
                let _ = reply.send(st.maintenance.values().cloned().collect());
            }
            PageMsg::Components { reply } => {
                let now = st.now();
                let _ = reply.send(st.model(now).components);
            }
        }
        Ok(())
    }
}

/// Forwards the incident feed in batches: whatever is queued goes as one message.
async fn forward(mut feed: broadcast::Receiver<Arc<Published>>, to: ActorRef<PageMsg>) {
    loop {
        let msg = match feed.recv().await {
            Ok(p) => {
                let mut batch = vec![p];
                while batch.len() < 4096 {
                    match feed.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                PageMsg::Events(batch)
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(skipped = n, "status page fell behind the incident feed; reloading");
                PageMsg::Resync
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if to.cast(msg).is_err() {
            return;
        }
    }
}
