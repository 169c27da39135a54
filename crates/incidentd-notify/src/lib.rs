//! Notifications that always arrive: routing of incident events to chat,
//! email, webhooks and status pages; a durable outbox; the notifier hub
//! actor and one adapter actor per destination kind.
//!
//! ```text
//!  event log ──► feeder ──(route: pure)──► Hub actor ──► adapter actors ──► Slack / Mattermost / Teams,
//!  (durable)     cursor per incident        lanes per     (chat, webhook,    webhooks, SMTP, Statuspage
//!                catch-up from the log      destination    email, statuspage)
//!                                               │
//!                                               └─► outbox.log (derived cursors + delivery state, fdatasync)
//! ```
//!
//! **Never lost.** Notifications are a pure function of a logged event, the
//! incident state after it and the org config (`route`), so they need no
//! write on the incident's path: the outbox remembers how far it routed
//! each incident, and on start every logged event after that is routed
//! again. An event that was acknowledged (synced) is therefore always
//! notified, even if the process died a microsecond later.
//!
//! **At least once, keyed.** Each notification's idempotency key is
//! `<incident>:<version>:<destination>`; it travels with every attempt
//! (`X-Incidentd-Delivery`, mail `Message-ID`), so a repeat after a crash
//! between "sent" and "recorded" is recognisable.
//!
//! **Never blocking.** Incident actors only publish to a broadcast channel;
//! the feeder and hub run beside them, the hub never awaits I/O, and when
//! too much is undelivered the hub stops taking events (the feed lags and
//! the feeder catches up from the log later).

pub mod adapter;
pub mod chat;
pub mod digest;
pub mod email;
pub mod feeder;
pub mod hub;
pub mod message;
pub mod metrics;
pub mod outbox;
pub mod policy;
pub mod route;
pub mod statuspage;
pub mod transport;
pub mod webhook;

pub use feeder::Source;
pub use hub::{Hub, HubArgs, HubMsg, NotifyError, Routed};
pub use message::{DestKind, Message};
pub use metrics::Metrics;
pub use outbox::{Delivery, DeliveryState, Folded, Progress};
pub use policy::Settings;
pub use route::{Notification, route};
pub use transport::{Job, SendError, SendFuture, SendOk, Transport};

use incidentd_actors::Handle;
use incidentd_config::OrgConfig;
use incidentd_store::OutboxLog;
use incidentd_store::outbox::Linger;
use ractor::{Actor, ActorRef};
use std::collections::HashMap;
use std::sync::Arc;

/// Handle to the running notifier; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    hub: ActorRef<HubMsg>,
    metrics: Arc<Metrics>,
    outbox: OutboxLog,
}

/// What the notifier needs besides the incident handle.
#[derive(Default)]
pub struct Options {
    pub settings: Settings,
    /// Extra PEM roots trusted for SMTP TLS.
    pub smtp_roots: Vec<Vec<u8>>,
    /// Replaces the wire adapters (tests, benchmarks): adapter name → transport.
    pub transports: Option<HashMap<&'static str, Arc<dyn Transport>>>,
}

/// The real adapters over the org config.
pub fn transports(org: &Arc<OrgConfig>, smtp_roots: &[Vec<u8>]) -> HashMap<&'static str, Arc<dyn Transport>> {
    let client = reqwest::Client::builder()
        .user_agent(concat!("incidentd/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default();
    let mut t: HashMap<&'static str, Arc<dyn Transport>> = HashMap::new();
    t.insert(
        "chat",
        Arc::new(chat::Chat {
            client: client.clone(),
            org: org.clone(),
        }),
    );
    t.insert(
        "webhook",
        Arc::new(webhook::Webhook {
            client: client.clone(),
            org: org.clone(),
        }),
    );
    t.insert("statuspage", Arc::new(statuspage::Statuspage::new(client, org.clone())));
    t.insert("email", Arc::new(email::Email::new(org, smtp_roots)));
    t
}

/// The outbox writer writes every record at once (a killed process loses
/// none) and syncs within this long. Nothing waits on those syncs (a tail
/// lost to power loss is derived again: at least once), so a busy server
/// pays about 50 outbox syncs a second, not one per routed batch beside
/// the event log's.
const OUTBOX_LINGER: std::time::Duration = std::time::Duration::from_millis(20);

impl Notifier {
    /// Opens the outbox in the store's directory (compacting it), starts the
    /// hub and its adapters, and the feeder that catches up from the log and
    /// follows the live feed.
    pub async fn start(handle: Handle, org: Arc<OrgConfig>, opts: Options) -> anyhow::Result<Notifier> {
        let dir = handle.store().dir().to_path_buf();
        let outbox = tokio::task::spawn_blocking(move || {
            let mut folded = None;
            let compact = |records: &[Vec<u8>]| {
                let f = Folded::fold(records);
                let compacted = f.compact();
                folded = Some(f);
                compacted
            };
            let opened = OutboxLog::open_lingering(
                &dir,
                incidentd_store::outbox::FILE,
                compact,
                Linger::SyncWithin(OUTBOX_LINGER),
            );
            opened.map(|(log, rec)| (log, rec, folded.unwrap_or_default()))
        })
        .await?
        .map(|(log, rec, folded)| {
            if rec.truncated_tail_bytes > 0 || folded.undecodable > 0 {
                tracing::warn!(
                    truncated_tail_bytes = rec.truncated_tail_bytes,
                    undecodable = folded.undecodable,
                    "outbox recovered with a damaged tail"
                );
            }
            (log, rec.existed, folded)
        })?;
        let (outbox, existed, folded) = outbox;
        let metrics = Arc::new(Metrics::default());
        let cursors: HashMap<String, u64> = folded.cursors.iter().map(|(k, v)| (k.clone(), *v)).collect();
        tracing::info!(
            deliveries = folded.deliveries.len(),
            incidents = cursors.len(),
            fresh = !existed,
            "outbox recovered"
        );
        let transports = opts.transports.unwrap_or_else(|| transports(&org, &opts.smtp_roots));
        let source = Source {
            handle: handle.clone(),
            org: org.clone(),
        };
        let (hub, _) = Actor::spawn(
            None,
            Hub,
            HubArgs {
                outbox: outbox.clone(),
                folded,
                transports,
                settings: opts.settings,
                clock: handle.clock(),
                metrics: metrics.clone(),
                source: Some(source),
            },
        )
        .await?;
        let cursors_for_digest: HashMap<String, u64> = cursors
            .iter()
            .filter(|(k, _)| k.starts_with("digest/"))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let (digest_handle, digest_org) = (handle.clone(), org.clone());
        let mut feeder = feeder::Feeder {
            handle,
            org,
            hub: hub.clone(),
            cursors,
            baseline: !existed,
            states: HashMap::new(),
            silent: feeder::Silent::default(),
        };
        if !existed {
            // A new outbox on a store that may have history starts at the
            // present, durably before the server is ready: a crash right after
            // the start must not make the next start notify about the past.
            feeder.baseline_now().await;
        }
        tokio::spawn(feeder.run());
        let sent: HashMap<String, u64> = cursors_for_digest;
        tokio::spawn(digest::run(digest_handle, digest_org, hub.clone(), sent));
        Ok(Notifier { hub, metrics, outbox })
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Deliveries of one incident (all incidents: `None`), optionally in one state.
    pub async fn list(
        &self,
        incident: Option<String>,
        state: Option<DeliveryState>,
    ) -> Result<Vec<Delivery>, NotifyError> {
        ractor::call!(self.hub, |reply| HubMsg::List { incident, state, reply }).map_err(|_| NotifyError::Unavailable)
    }

    pub async fn get(&self, key: String) -> Result<Option<Delivery>, NotifyError> {
        ractor::call!(self.hub, |reply| HubMsg::Get { key, reply }).map_err(|_| NotifyError::Unavailable)
    }

    /// Puts a dead delivery back in its destination's queue with a fresh budget.
    pub async fn retry(&self, key: String) -> Result<Delivery, NotifyError> {
        ractor::call!(self.hub, |reply| HubMsg::Retry { key, reply }).map_err(|_| NotifyError::Unavailable)?
    }

    /// Stops the hub (in-flight attempts are abandoned: they are retried
    /// after the next start) and the outbox writer after what is queued.
    pub async fn shutdown(&self) {
        let _ = ractor::call!(self.hub, |reply| HubMsg::Flush { reply });
        self.hub.stop(None);
        self.outbox.close();
    }
}
