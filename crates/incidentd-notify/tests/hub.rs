//! The hub on a paused clock with a scripted transport: backoff, Retry-After,
//! rate limits, circuit breaker, dead letter, retry of dead deliveries.
//! Every wait is on the transport's call channel (tokio auto-advances the
//! paused clock to the hub's next timer), never a sleep.

use incidentd_actors::Clock;
use incidentd_domain::{Severity, Status};
use incidentd_notify::{
    DeliveryState, DestKind, Folded, Hub, HubArgs, HubMsg, Job, Message, Metrics, Notification, Routed, SendError,
    SendFuture, SendOk, Settings, Source, Transport,
};
use incidentd_store::OutboxLog;
use ractor::{Actor, ActorRef};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Answers from a script (then success) and reports every call.
struct Scripted {
    script: Mutex<VecDeque<Result<SendOk, SendError>>>,
    calls: mpsc::UnboundedSender<(Instant, Notification, u32)>,
}

impl Transport for Scripted {
    fn send(&self, job: Job) -> SendFuture {
        let answer = match self.script.lock() {
            Ok(mut s) => s.pop_front(),
            Err(p) => p.into_inner().pop_front(),
        }
        .unwrap_or(Ok(SendOk::default()));
        let _ = self.calls.send((Instant::now(), job.notification, job.attempt));
        Box::pin(async move { answer })
    }
}

struct Rig {
    hub: ActorRef<HubMsg>,
    calls: mpsc::UnboundedReceiver<(Instant, Notification, u32)>,
    start: Instant,
    _dir: tempfile::TempDir,
}

impl Rig {
    async fn new(settings: Settings, script: Vec<Result<SendOk, SendError>>) -> Rig {
        Rig::with_source(settings, script, None).await
    }

    /// A hub that derives messages it did not keep from `source`.
    async fn with_source(settings: Settings, script: Vec<Result<SendOk, SendError>>, source: Option<Source>) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let (outbox, _) = OutboxLog::open(dir.path(), |r| r.to_vec()).expect("outbox");
        let (tx, calls) = mpsc::unbounded_channel();
        let t: Arc<dyn Transport> = Arc::new(Scripted {
            script: Mutex::new(script.into()),
            calls: tx,
        });
        let transports = HashMap::from([("chat", t.clone()), ("webhook", t)]);
        let (hub, _) = Actor::spawn(
            None,
            Hub,
            HubArgs {
                outbox,
                folded: Folded::default(),
                transports,
                settings,
                clock: Clock::system(),
                metrics: Arc::new(Metrics::default()),
                source,
            },
        )
        .await
        .expect("hub");
        Rig {
            hub,
            calls,
            start: Instant::now(),
            _dir: dir,
        }
    }

    async fn ingest(&self, notes: Vec<Notification>) {
        let batch = vec![Routed {
            incident: "inc".into(),
            version: notes.first().map(|n| n.version).unwrap_or(1),
            notifications: notes,
            seen: None,
        }];
        ractor::call!(self.hub, |reply| HubMsg::Ingest { batch, reply }).expect("ingest");
    }

    /// The next call: (seconds since start, key, attempt).
    async fn call(&mut self) -> (u64, String, u32) {
        let (at, n, attempt) = self.sent().await;
        (at.duration_since(self.start).as_secs(), n.key, attempt)
    }

    /// The next call, with the notification it sent.
    async fn sent(&mut self) -> (Instant, Notification, u32) {
        tokio::time::timeout(Duration::from_secs(3600), self.calls.recv())
            .await
            .expect("a call within an hour")
            .expect("transport alive")
    }

    async fn state(&self, key: &str) -> (DeliveryState, u32, Option<String>) {
        let d = ractor::call!(self.hub, |reply| HubMsg::Get {
            key: key.to_string(),
            reply
        })
        .expect("get")
        .expect("delivery exists");
        (d.progress.state, d.progress.attempts, d.progress.last_error)
    }

    /// Lets the hub process what is queued (outcomes) without moving the clock far.
    async fn settle(&self) {
        let _ = ractor::call!(self.hub, |reply| HubMsg::List {
            incident: None,
            state: None,
            reply
        });
    }
}

fn note(dest: &str, kind: DestKind, version: u64) -> Notification {
    Notification {
        key: format!("inc:{version}:{dest}"),
        incident: "inc".into(),
        version,
        destination: dest.into(),
        kind,
        to: Vec::new(),
        message: Message {
            incident_id: "inc".into(),
            reference: "INC-1".into(),
            title: "t".into(),
            team: "payments".into(),
            services: Vec::new(),
            severity: Severity::Sev1,
            status: Status::Investigating,
            drill: false,
            version,
            event: "declared".into(),
            headline: "h".into(),
            body: String::new(),
            fields: Vec::new(),
            mentions: Vec::new(),
            at: 0,
            event_json: "{}".into(),
            public_text: None,
        },
    }
}

fn settings() -> Settings {
    Settings {
        jitter: 0.0,
        breaker_failures: 100,
        ..Settings::default()
    }
}

fn fail() -> Result<SendOk, SendError> {
    Err(SendError::transient("HTTP 503: down"))
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_then_deliver() {
    let mut rig = Rig::new(settings(), vec![fail(), fail(), fail()]).await;
    rig.ingest(vec![note("hook", DestKind::Webhook, 1)]).await;
    let mut times = Vec::new();
    for attempt in 1..=4 {
        let (t, _, a) = rig.call().await;
        assert_eq!(a, attempt);
        times.push(t);
    }
    assert_eq!(times, [0, 1, 3, 7], "1 s, 2 s, 4 s between attempts");
    rig.settle().await;
    assert_eq!(rig.state("inc:1:hook").await, (DeliveryState::Delivered, 4, None));
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_instead_of_the_backoff() {
    let limited = Err(SendError {
        message: "HTTP 429: rate_limited".into(),
        retry_after: Some(Duration::from_secs(7)),
        permanent: false,
    });
    let mut rig = Rig::new(settings(), vec![limited]).await;
    rig.ingest(vec![note("chat", DestKind::Slack, 1)]).await;
    assert_eq!(rig.call().await.0, 0);
    rig.settle().await;
    let (state, attempts, err) = rig.state("inc:1:chat").await;
    assert_eq!((state, attempts), (DeliveryState::Retrying, 1));
    assert_eq!(err.as_deref(), Some("HTTP 429: rate_limited"));
    assert_eq!(rig.call().await.0, 7, "not 1 s (backoff): the 7 s of Retry-After");
}

#[tokio::test(start_paused = true)]
async fn chat_destinations_get_at_most_one_message_per_second() {
    let mut rig = Rig::new(settings(), vec![]).await;
    rig.ingest((1..=3).map(|v| note("chat", DestKind::Slack, v)).collect())
        .await;
    // A webhook destination is not held back by the chat's limit.
    rig.ingest(vec![note("hook", DestKind::Webhook, 9)]).await;
    let mut chat = Vec::new();
    let mut hook = Vec::new();
    for _ in 0..4 {
        let (t, key, _) = rig.call().await;
        if key.ends_with(":chat") {
            chat.push((t, key));
        } else {
            hook.push(t);
        }
    }
    assert_eq!(
        chat,
        [
            (0, "inc:1:chat".into()),
            (1, "inc:2:chat".into()),
            (2, "inc:3:chat".into())
        ],
        "in order, one per second"
    );
    assert_eq!(hook, [0]);
}

#[tokio::test(start_paused = true)]
async fn the_circuit_opens_after_consecutive_failures_and_tries_again_after_cooldown() {
    let s = Settings {
        breaker_failures: 2,
        breaker_cooldown: Duration::from_secs(60),
        ..settings()
    };
    let mut rig = Rig::new(s, vec![fail(), fail(), fail()]).await;
    rig.ingest(vec![note("hook", DestKind::Webhook, 1)]).await;
    let mut times = Vec::new();
    for _ in 0..4 {
        times.push(rig.call().await.0);
    }
    // Fail at 0 and 1 (circuit opens for 60 s), half-open trial at 61 fails
    // (open again), the next trial at 121 succeeds.
    assert_eq!(times, [0, 1, 61, 121]);
    rig.settle().await;
    assert_eq!(rig.state("inc:1:hook").await.0, DeliveryState::Delivered);
}

#[tokio::test(start_paused = true)]
async fn the_retry_budget_ends_in_dead_letter_and_a_retry_revives_it() {
    let s = Settings {
        max_attempts: 3,
        ..settings()
    };
    let mut rig = Rig::new(s, vec![fail(), fail(), fail()]).await;
    rig.ingest(vec![
        note("hook", DestKind::Webhook, 1),
        note("hook", DestKind::Webhook, 2),
    ])
    .await;
    let calls: Vec<(u64, String, u32)> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(rig.call().await);
        }
        v
    };
    assert_eq!(
        calls,
        [
            (0, "inc:1:hook".into(), 1),
            (1, "inc:1:hook".into(), 2),
            (3, "inc:1:hook".into(), 3),
            (3, "inc:2:hook".into(), 1),
        ],
        "the head dies after its budget, then the next message goes"
    );
    rig.settle().await;
    let (state, attempts, err) = rig.state("inc:1:hook").await;
    assert_eq!((state, attempts), (DeliveryState::Dead, 3));
    assert_eq!(err.as_deref(), Some("HTTP 503: down"));
    let dead = ractor::call!(rig.hub, |reply| HubMsg::List {
        incident: Some("inc".into()),
        state: Some(DeliveryState::Dead),
        reply
    })
    .expect("list");
    assert_eq!(dead.len(), 1);

    let revived = ractor::call!(rig.hub, |reply| HubMsg::Retry {
        key: "inc:1:hook".into(),
        reply
    })
    .expect("retry call")
    .expect("dead deliveries can be retried");
    assert_eq!(revived.progress.state, DeliveryState::Pending);
    assert_eq!(rig.call().await.1, "inc:1:hook");
    rig.settle().await;
    assert_eq!(rig.state("inc:1:hook").await.0, DeliveryState::Delivered);
    let again = ractor::call!(rig.hub, |reply| HubMsg::Retry {
        key: "inc:1:hook".into(),
        reply
    })
    .expect("retry call");
    assert!(again.is_err(), "only dead deliveries can be retried: {again:?}");
}

#[tokio::test(start_paused = true)]
async fn a_permanent_refusal_is_dead_at_once() {
    let mut rig = Rig::new(settings(), vec![Err(SendError::permanent("HTTP 404: no_service"))]).await;
    rig.ingest(vec![note("chat", DestKind::Slack, 1)]).await;
    rig.call().await;
    rig.settle().await;
    assert_eq!(
        rig.state("inc:1:chat").await,
        (DeliveryState::Dead, 1, Some("HTTP 404: no_service".into()))
    );
}

#[tokio::test(start_paused = true)]
async fn the_same_key_routed_twice_is_one_delivery() {
    let mut rig = Rig::new(settings(), vec![]).await;
    rig.ingest(vec![note("hook", DestKind::Webhook, 1)]).await;
    rig.ingest(vec![note("hook", DestKind::Webhook, 1)]).await;
    rig.ingest(vec![note("hook", DestKind::Webhook, 2)]).await;
    assert_eq!(rig.call().await.1, "inc:1:hook");
    assert_eq!(rig.call().await.1, "inc:2:hook");
    rig.settle().await;
    assert!(rig.calls.try_recv().is_err(), "no third call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_not_kept_is_derived_again_from_the_log_exactly() {
    use incidentd_actors::{Handle, OpenOrg, Options};
    use incidentd_domain::{Action, Command, IncidentId};
    use incidentd_notify::route;

    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = incidentd_store::StoreConfig {
        dir: dir.path().join("data"),
        snapshot_flush_every: Duration::from_secs(3600),
    };
    let (store, recovery) = tokio::task::spawn_blocking(move || incidentd_store::Store::open(cfg))
        .await
        .expect("join")
        .expect("store");
    let (handle, _) = Handle::start(store, recovery, Arc::new(OpenOrg), Options::default())
        .await
        .expect("actors");
    let org = Arc::new(
        incidentd_config::OrgConfig::from_toml_str(
            "[org]\nname = \"E\"\ndefault_team = \"payments\"\n\n[[teams]]\nid = \"payments\"\nchat = [\"pay-hook\"]\n\n\
             [[destinations]]\nid = \"pay-hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"s\"\n",
        )
        .expect("config"),
    );

    // Four events that reach the team's webhook, routed as the feeder would.
    let mut feed = handle.watch_all();
    let by = |action| Command {
        access: Default::default(),
        by: Some("alice".into()),
        action,
    };
    let inc = handle
        .declare(
            by(Action::Declare {
                id: IncidentId::default(),
                number: 0,
                title: "Card payments failing".into(),
                team: "payments".into(),
                services: vec![],
                severity: Some(Severity::Sev3),
                summary: "checkout returns 502".into(),
                commander: None,
                drill: false,
            }),
            None,
        )
        .await
        .expect("declare");
    let severity = Action::SetSeverity {
        severity: Severity::Sev2,
        reason: "more merchants".into(),
    };
    let identified = Action::SetStatus {
        status: Status::Identified,
        note: "pool exhausted".into(),
    };
    let mitigating = Action::SetStatus {
        status: Status::Mitigating,
        note: String::new(),
    };
    for action in [severity, identified, mitigating] {
        handle
            .execute_incident(inc.id, by(action), None)
            .await
            .expect("command");
    }
    let mut batch = Vec::new();
    let mut expected = Vec::new();
    while batch.len() < 4 {
        let p = feed.recv().await.expect("feed");
        let notifications = route(&org, &p.summary, p.version, &p.event);
        expected.extend(notifications.clone());
        batch.push(Routed {
            incident: p.incident.to_string(),
            version: p.version,
            notifications,
            seen: None,
        });
    }
    assert_eq!(expected.len(), 4, "{expected:?}");

    // The hub keeps one message per lane: the other three come from the
    // log. The first is refused for good (dead: its message is dropped).
    let settings = Settings {
        payload_window: 1,
        ..settings()
    };
    let source = Source {
        handle: handle.clone(),
        org,
    };
    let mut rig = Rig::with_source(
        settings,
        vec![Err(SendError::permanent("HTTP 404: gone"))],
        Some(source),
    )
    .await;
    ractor::call!(rig.hub, |reply| HubMsg::Ingest { batch, reply }).expect("ingest");
    for want in &expected {
        assert_eq!(
            &rig.sent().await.1,
            want,
            "sent in lane order, the same message as routed live"
        );
    }
    // The dead letter, retried, is derived again too.
    let dead = &expected[0].key;
    let revived = ractor::call!(rig.hub, |reply| HubMsg::Retry {
        key: dead.clone(),
        reply
    })
    .expect("retry call")
    .expect("dead deliveries can be retried");
    assert_eq!(revived.headline, expected[0].message.headline);
    assert_eq!(&rig.sent().await.1, &expected[0]);
    rig.hub.stop(None);
    handle.shutdown().await;
}
