//! The feeder: turns the durable event log into routed notifications for
//! the hub, in log order per incident, without ever missing an event.
//!
//! Live events come from the actors' broadcast feed (`Handle::watch_all`),
//! which can lag and is not durable; so the feeder keeps, per incident, the
//! last version it routed (starting from the outbox's durable cursors) and
//! reads whatever it did not see from the store's log: at start-up for
//! every incident, after a gap in an incident's versions, and for every
//! incident after the feed lagged. Routing needs the incident state right
//! after each event: the published summary when it is that state, else the
//! events replayed from the log.
//!
//! Most events notify nobody (alert attachments, notes, roles). Their only
//! trace is the cursor, so the feeder gathers those cursors and hands them
//! to the hub as one `Advance` (one outbox record) at most every
//! `SILENT_EVERY`, instead of one record per event. What a crash loses of
//! them is routed again after the restart, and notifies nobody again.

use crate::hub::{HubMsg, Routed};
use crate::route::{Notification, route, silent};
use incidentd_actors::{Filter, Handle, Published, codec};
use incidentd_config::OrgConfig;
use incidentd_domain::{Event, Incident, IncidentId, apply};
use incidentd_store::StoreError;
use ractor::ActorRef;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tracing::Instrument;

/// Events sent to the hub per `Ingest` call at most.
const BATCH: usize = 256;
/// Cursors of events that notify nobody go to the hub at most this late,
/// or once this many incidents have one waiting.
const SILENT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
const SILENT_MAX: usize = 4096;

pub struct Feeder {
    pub handle: Handle,
    pub org: Arc<OrgConfig>,
    pub hub: ActorRef<HubMsg>,
    /// Last routed version per incident id.
    pub cursors: HashMap<String, u64>,
    /// The outbox is new on a store that has history: start at the current
    /// versions instead of notifying about the past.
    pub baseline: bool,
    /// States replayed from the log, by incident (dropped once live events
    /// carry the exact state again).
    pub states: HashMap<String, Incident>,
    /// Cursors of routed events that notify nobody, not yet at the hub.
    pub silent: Silent,
}

/// Cursors of events that notify nobody, gathered for one `Advance`.
#[derive(Default)]
pub struct Silent {
    cursors: BTreeMap<String, u64>,
    events: u64,
    since: Option<tokio::time::Instant>,
}

impl Silent {
    fn add(&mut self, r: Routed) {
        let c = self.cursors.entry(r.incident).or_default();
        *c = (*c).max(r.version);
        self.events += 1;
        self.since.get_or_insert_with(tokio::time::Instant::now);
    }

    /// When the gathered cursors are due at the hub.
    fn due(&self) -> Option<tokio::time::Instant> {
        self.since.map(|s| s + SILENT_EVERY)
    }

    fn take(&mut self) -> Option<HubMsg> {
        self.since = None;
        (!self.cursors.is_empty()).then(|| HubMsg::Advance {
            cursors: std::mem::take(&mut self.cursors),
            events: std::mem::take(&mut self.events),
        })
    }
}

impl Feeder {
    pub async fn run(mut self) {
        let mut rx = self.handle.watch_all();
        self.scan_all().await;
        self.flush_silent();
        self.baseline = false;
        loop {
            let received = match self.silent.due() {
                None => rx.recv().await,
                Some(due) => tokio::select! {
                    r = rx.recv() => r,
                    () = tokio::time::sleep_until(due) => {
                        self.flush_silent();
                        continue;
                    }
                },
            };
            let first = match received {
                Ok(p) => p,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(
                        skipped = n,
                        "notifier fell behind the event feed; catching up from the log"
                    );
                    self.scan_all().await;
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let mut items = vec![first];
            let mut lagged = false;
            while items.len() < BATCH {
                match rx.try_recv() {
                    Ok(p) => items.push(p),
                    Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {
                        lagged = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            let mut batch = Vec::with_capacity(items.len());
            for p in items {
                self.live(&p, &mut batch).await;
            }
            if !self.send(batch).await {
                return;
            }
            if lagged {
                self.scan_all().await;
            }
        }
    }

    /// A new outbox: every incident's cursor at its current version,
    /// synced to the outbox before this returns (the past is not notified).
    pub async fn baseline_now(&mut self) {
        self.scan_all().await;
        self.flush_silent();
        self.baseline = false;
        let _ = ractor::call!(self.hub, |reply| HubMsg::Flush { reply });
    }

    /// Hands a batch to the hub; waits while the hub is full. False when
    /// the hub is gone. Events that notify nobody only move their cursors,
    /// gathered for one `Advance`.
    async fn send(&mut self, batch: Vec<Routed>) -> bool {
        let mut loud = Vec::with_capacity(batch.len());
        for r in batch {
            if r.notifications.is_empty() {
                self.silent.add(r);
            } else {
                loud.push(r);
            }
        }
        if self.silent.cursors.len() >= SILENT_MAX
            || self.silent.due().is_some_and(|d| d <= tokio::time::Instant::now())
        {
            self.flush_silent();
        }
        if loud.is_empty() {
            return true;
        }
        ractor::call!(self.hub, |reply| HubMsg::Ingest { batch: loud, reply }).is_ok()
    }

    fn flush_silent(&mut self) {
        if let Some(msg) = self.silent.take() {
            let _ = self.hub.cast(msg);
        }
    }

    async fn live(&mut self, p: &Published, batch: &mut Vec<Routed>) {
        // The routing of a live event is part of the trace that persisted it.
        let span = tracing::info_span!(
            parent: &p.span,
            "notify.route",
            incident_id = %p.incident,
            version = p.version,
            event = p.event.kind.name(),
        );
        self.live_routed(p, batch).instrument(span).await;
    }

    async fn live_routed(&mut self, p: &Published, batch: &mut Vec<Routed>) {
        let id = p.incident.to_string();
        let cursor = self.cursors.get(&id).copied().unwrap_or(0);
        if p.version <= cursor {
            return;
        }
        if p.version > cursor + 1 || p.summary.version != p.version {
            // The state right after this event: a replayed one one event
            // behind, or the empty one before a new incident's first event.
            let before = self
                .states
                .remove(&id)
                .filter(|s| s.version == cursor)
                .or_else(|| (cursor == 0).then(Incident::default))
                .filter(|_| cursor + 1 == p.version);
            if let Some(mut state) = before {
                apply(&mut state, &p.event);
                batch.push(self.routed(&id, &state, p.version, &p.event, true));
                self.cursors.insert(id.clone(), p.version);
                self.states.insert(id, state);
                return;
            }
            if p.version == cursor + 1 && silent(&p.event.kind) {
                // Notifies nobody whatever the state: no need to read the log for it.
                batch.push(Routed {
                    incident: id.clone(),
                    version: p.version,
                    notifications: Vec::new(),
                    seen: None,
                });
                self.cursors.insert(id, p.version);
                return;
            }
            self.catch_up(p.incident, cursor, p.version, batch).await;
            return;
        }
        self.states.remove(&id);
        batch.push(self.routed(&id, &p.summary, p.version, &p.event, true));
        self.cursors.insert(id, p.version);
    }

    fn routed(&self, id: &str, state: &Incident, version: u64, event: &Event, live: bool) -> Routed {
        Routed {
            incident: id.to_string(),
            version,
            notifications: route(&self.org, state, version, event),
            seen: live.then(tokio::time::Instant::now),
        }
    }

    /// Routes the logged events of `incident` with `from < version <= to`.
    async fn catch_up(&mut self, incident: IncidentId, from: u64, to: u64, batch: &mut Vec<Routed>) {
        let id = incident.to_string();
        let replayed = replay(&self.handle, incident, to, |version, state, event| {
            if version > from {
                batch.push(self.routed(&id, state, version, event, false));
            }
        })
        .await;
        match replayed {
            Ok(state) => {
                self.cursors.insert(id.clone(), to);
                self.states.insert(id, state);
            }
            Err(e) => {
                tracing::error!(incident_id = %id, error = %e, "notifier cannot read the log; retried on the next scan");
            }
        }
    }

    /// Every incident whose log is ahead of our cursor is caught up.
    async fn scan_all(&mut self) {
        let mut after = None;
        loop {
            let page = match self.handle.list(Filter::default(), after, 500).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "notifier cannot list incidents");
                    return;
                }
            };
            let mut batch = Vec::new();
            for s in &page.incidents {
                let id = s.id.to_string();
                let cursor = self.cursors.get(&id).copied().unwrap_or(0);
                if s.version <= cursor {
                    continue;
                }
                if self.baseline {
                    self.cursors.insert(id.clone(), s.version);
                    batch.push(Routed {
                        incident: id,
                        version: s.version,
                        notifications: Vec::new(),
                        seen: None,
                    });
                } else {
                    self.catch_up(s.id, cursor, s.version, &mut batch).await;
                    self.states.remove(&id);
                }
                if batch.len() >= BATCH && !self.send(std::mem::take(&mut batch)).await {
                    return;
                }
            }
            if !self.send(batch).await {
                return;
            }
            match page.next {
                Some(n) => after = Some(n),
                None => return,
            }
        }
    }
}

/// Folds the logged events of `incident` up to version `to`, handing each
/// event to `each` with the state right after it; returns the last state.
async fn replay(
    handle: &Handle,
    incident: IncidentId,
    to: u64,
    mut each: impl FnMut(u64, &Incident, &Event),
) -> Result<Incident, StoreError> {
    let events = handle.store().read_events(incident.to_bytes(), 0, to).await?;
    let mut state = Incident::default();
    for (version, bytes) in events {
        let event = match codec::decode_event(&bytes) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(incident_id = %incident, version, error = %e, "undecodable event skipped by the notifier");
                continue;
            }
        };
        apply(&mut state, &event);
        each(version, &state, &event);
    }
    Ok(state)
}

/// Where the hub gets a notification back when it kept only its target:
/// the logged event routed again (`route` is pure, so the key, the
/// recipients and the text are the ones derived when it was logged).
#[derive(Clone)]
pub struct Source {
    pub handle: Handle,
    pub org: Arc<OrgConfig>,
}

impl Source {
    /// The notifications of event `version` of `incident`.
    pub async fn derive(&self, incident: &str, version: u64) -> Result<Vec<Notification>, String> {
        let id = IncidentId::parse(incident).ok_or_else(|| format!("{incident:?} is not an incident"))?;
        let mut routed = Vec::new();
        replay(&self.handle, id, version, |v, state, event| {
            if v == version {
                routed = route(&self.org, state, v, event);
            }
        })
        .await
        .map_err(|e| format!("cannot read the event log: {e}"))?;
        Ok(routed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routed(incident: &str, version: u64) -> Routed {
        Routed {
            incident: incident.into(),
            version,
            notifications: Vec::new(),
            seen: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn silent_cursors_go_as_one_advance_with_each_incidents_latest_version() {
        let mut silent = Silent::default();
        assert!(silent.due().is_none() && silent.take().is_none());
        let start = tokio::time::Instant::now();
        for (incident, version) in [("a", 1), ("a", 3), ("b", 7), ("a", 2)] {
            silent.add(routed(incident, version));
        }
        assert_eq!(silent.due(), Some(start + SILENT_EVERY));
        let Some(HubMsg::Advance { cursors, events }) = silent.take() else {
            panic!("an advance was due");
        };
        assert_eq!(events, 4);
        assert_eq!(cursors, BTreeMap::from([("a".to_string(), 3), ("b".to_string(), 7)]));
        assert!(silent.due().is_none() && silent.take().is_none());
    }
}
