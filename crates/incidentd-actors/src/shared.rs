//! What every actor shares: the store, the org view, the event feed, the
//! clock and counters. Read-only or internally synchronised; no actor state
//! lives here.

use incidentd_domain::{Directory, Event, Incident, IncidentId, Policy, Timestamp};
use incidentd_store::Store;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tokio::sync::broadcast;

/// The organisation as the actors need it: who exists, and the policy of a team.
/// Implemented over the org config by the server; swappable on reload.
pub trait OrgView: Directory + Send + Sync + 'static {
    fn policy(&self, team: &str) -> Arc<Policy>;
    /// The org's default team (`[org] default_team`): where a declaration
    /// that names no team lands.
    fn default_team(&self) -> Option<String> {
        None
    }
    /// Ids and names of the org's people (the blameless check looks for
    /// them as the subject of a failure).
    fn people(&self) -> Vec<String> {
        Vec::new()
    }
    /// The blameless check's wording rules.
    fn blame_rules(&self) -> Vec<incidentd_domain::review::BlameRule> {
        incidentd_domain::review::default_blame_rules()
    }
    /// Game-day scenarios (built-in ones, plus the org's scenario files).
    fn scenarios(&self) -> Vec<incidentd_domain::drill::Scenario> {
        incidentd_domain::drill::builtin_scenarios()
    }
    /// Ids of a team's people.
    fn team_members(&self, team: &str) -> Vec<String> {
        let _ = team;
        Vec::new()
    }
}

/// An org that knows every team, person and service, with the playbook
/// policy: for tests and benchmarks, never for requests.
pub struct OpenOrg;

impl Directory for OpenOrg {
    fn has_team(&self, _: &str) -> bool {
        true
    }
    fn has_person(&self, _: &str) -> bool {
        true
    }
    fn has_service(&self, _: &str) -> bool {
        true
    }
}

impl OrgView for OpenOrg {
    fn policy(&self, _team: &str) -> Arc<Policy> {
        Arc::new(Policy::playbook())
    }
}

/// Wall-clock time derived from tokio's clock, so a paused test clock drives it.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base_wall_ms: i64,
    base: tokio::time::Instant,
}

impl Clock {
    /// Anchors tokio's monotonic clock to the system wall clock, now.
    pub fn system() -> Clock {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Clock::anchored(Timestamp(wall))
    }

    /// Anchors tokio's clock to a given wall time (tests).
    pub fn anchored(at: Timestamp) -> Clock {
        Clock {
            base_wall_ms: at.0,
            base: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> Timestamp {
        Timestamp(self.base_wall_ms + self.base.elapsed().as_millis() as i64)
    }

    /// The tokio instant at which wall time `t` is reached.
    pub fn instant_at(&self, t: Timestamp) -> tokio::time::Instant {
        let ms = u64::try_from(t.0 - self.base_wall_ms).unwrap_or(0);
        self.base + std::time::Duration::from_millis(ms)
    }
}

/// A one-shot timer: sends `msg()` to `to` when wall time `due` comes, on
/// tokio's clock (so a paused test clock drives it). Dropping it disarms it.
/// The message is made when it is sent: a waiting timer task (one per live
/// incident) does not hold a whole actor message.
pub(crate) struct Timer {
    due: Timestamp,
    task: tokio::task::JoinHandle<()>,
}

impl Timer {
    pub(crate) fn start<M: ractor::Message>(
        clock: &Clock,
        due: Timestamp,
        to: ractor::ActorRef<M>,
        msg: fn() -> M,
    ) -> Timer {
        let at = clock.instant_at(due);
        let task = tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let _ = to.cast(msg());
        });
        Timer { due, task }
    }

    pub(crate) fn due(&self) -> Timestamp {
        self.due
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One persisted event, as published to watchers after it is durable.
#[derive(Debug, Clone)]
pub struct Published {
    pub incident: IncidentId,
    pub version: u64,
    pub event: Event,
    /// The stored JSON of the event.
    pub json: Arc<str>,
    /// The incident after the event, without timeline (for filtering).
    pub summary: Arc<Incident>,
    /// The span that persisted it (`incident.execute` or `incident.tick`):
    /// consumers such as the notifier trace their work as its children.
    pub span: tracing::Span,
}

#[derive(Debug, Default)]
pub struct Counters {
    pub actor_restarts: AtomicU64,
    pub actors_spawned: AtomicU64,
    pub actors_retired: AtomicU64,
    pub events_persisted: AtomicU64,
}

pub struct Shared {
    pub store: Store,
    pub org: std::sync::RwLock<Arc<dyn OrgView>>,
    pub feed: broadcast::Sender<Arc<Published>>,
    pub clock: Clock,
    pub counters: Counters,
    /// Snapshot an incident every this many events (and on resolution).
    pub snapshot_every: u64,
    /// The drill calendar, once started.
    pub calendar: std::sync::OnceLock<ractor::ActorRef<crate::drills::CalendarMsg>>,
    /// Drills whose reminder is due (after it is durable in `drills.log`).
    pub drill_reminders: broadcast::Sender<crate::drills::ScheduledDrill>,
}

impl Shared {
    pub fn org(&self) -> Arc<dyn OrgView> {
        match self.org.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn set_org(&self, org: Arc<dyn OrgView>) {
        match self.org.write() {
            Ok(mut g) => *g = org,
            Err(poisoned) => *poisoned.into_inner() = org,
        }
    }
}
