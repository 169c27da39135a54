//! Notifications end to end through the real binary: events reach a webhook
//! sink on 127.0.0.1:0, and a `kill -9` while deliveries are pending loses
//! none: after the restart each is delivered exactly once per idempotency key.

use crate::support::{Server, TEST_CONFIG, write_config};
use incidentd_proto::v1 as pb;
use incidentd_proto::v1::notification_service_client::NotificationServiceClient;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A minimal HTTP/1.1 sink: answers every request with `status` (a JSON
/// body: `[]` to a GET, else `{"id": ...}`, what Statuspage answers) and
/// records it.
struct Sink {
    url: String,
    status: Arc<AtomicU16>,
    seen: Arc<Mutex<Vec<Request>>>,
}

/// One recorded request.
#[derive(Debug, Clone)]
struct Request {
    /// `POST /path HTTP/1.1`
    line: String,
    /// `X-Incidentd-Delivery` (webhooks only).
    key: String,
    code: u16,
    body: String,
}

impl Request {
    fn path(&self) -> &str {
        self.line.split(' ').nth(1).unwrap_or("")
    }
}

async fn sink() -> Sink {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let status = Arc::new(AtomicU16::new(200));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (st, sn) = (status.clone(), seen.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (st, sn) = (st.clone(), sn.clone());
            tokio::spawn(async move {
                let mut io = BufReader::new(tcp);
                loop {
                    let mut line = String::new();
                    if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let (mut len, mut key) = (0usize, String::new());
                    loop {
                        let mut h = String::new();
                        if io.read_line(&mut h).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            match k.to_ascii_lowercase().as_str() {
                                "content-length" => len = v.trim().parse().unwrap_or(0),
                                "x-incidentd-delivery" => key = v.trim().to_string(),
                                _ => {}
                            }
                        }
                    }
                    let mut body = vec![0; len];
                    if io.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let code = st.load(Ordering::SeqCst);
                    let answer = if line.starts_with("GET ") {
                        "[]"
                    } else {
                        r#"{"id":"sp-1"}"#
                    };
                    sn.lock().expect("seen").push(Request {
                        line: line.trim_end().to_string(),
                        key,
                        code,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    let reply = format!(
                        "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if io.get_mut().write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Sink { url, status, seen }
}

impl Sink {
    fn delivered(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for r in self.seen.lock().expect("seen").iter() {
            if r.code == 200 {
                *m.entry(r.key.clone()).or_default() += 1;
            }
        }
        m
    }
    fn attempts(&self) -> usize {
        self.seen.lock().expect("seen").len()
    }
    fn requests(&self) -> Vec<Request> {
        self.seen.lock().expect("seen").clone()
    }
}

fn config(hook: &str) -> String {
    let base = TEST_CONFIG.replace(
        "id = \"payments\"\nname = \"Payments\"\n",
        "id = \"payments\"\nname = \"Payments\"\nchat = [\"pay-hook\"]\n",
    );
    format!("{base}\n[[destinations]]\nid = \"pay-hook\"\nkind = \"webhook\"\nurl = \"{hook}\"\nsecret = \"s\"\n")
}

/// A SEV-2 of the payments team (the team routed to the sink).
fn payments_sev2(title: &str) -> pb::DeclareIncidentRequest {
    pb::DeclareIncidentRequest {
        title: title.into(),
        team: "payments".into(),
        severity: pb::Severity::Sev2 as i32,
        ..Default::default()
    }
}

/// Polls every 20 ms until `f` holds; fails after 30 s.
pub(crate) async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Every delivery of `incident` (all incidents: ""), through all pages.
pub(crate) async fn deliveries(server: &Server, incident: &str) -> Vec<pb::Delivery> {
    let mut c = NotificationServiceClient::connect(format!("http://{}", server.grpc))
        .await
        .expect("connect");
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = c
            .list_deliveries(pb::ListDeliveriesRequest {
                incident_id: incident.to_string(),
                page_size: 500,
                page_token,
                ..Default::default()
            })
            .await
            .expect("ListDeliveries")
            .into_inner();
        out.extend(page.deliveries);
        if page.next_page_token.is_empty() {
            return out;
        }
        page_token = page.next_page_token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_deliveries_survive_kill_9_and_arrive_once_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = sink().await;
    hook.status.store(503, Ordering::SeqCst);
    let cfg = write_config(dir.path(), &config(&hook.url));
    let data = dir.path().join("data");
    let server = Server::start(&data, &cfg).await;
    let mut c = server.client().await;
    let inc = c
        .declare_incident(payments_sev2("Card payments failing"))
        .await
        .expect("declare")
        .into_inner();
    c.post_update(pb::PostUpdateRequest {
        id: inc.id.clone(),
        kind: pb::UpdateKind::Internal as i32,
        current_theory: "connection pool exhausted".into(),
        ..Default::default()
    })
    .await
    .expect("update");
    // The sink is down: the first delivery is being retried.
    until("a refused attempt", async || hook.attempts() >= 1).await;
    let before = deliveries(&server, &inc.id).await;
    assert_eq!(before.len(), 2, "{before:?}");
    assert!(before.iter().all(|d| d.state != pb::DeliveryState::Delivered as i32));
    server.kill9().await;

    hook.status.store(200, Ordering::SeqCst);
    let server = Server::start(&data, &cfg).await;
    until("both delivered", async || {
        let ds = deliveries(&server, &inc.id).await;
        ds.len() == 2 && ds.iter().all(|d| d.state == pb::DeliveryState::Delivered as i32)
    })
    .await;
    let got = hook.delivered();
    let keys: Vec<String> = before.iter().map(|d| d.idempotency_key.clone()).collect();
    for k in &keys {
        assert_eq!(got.get(k), Some(&1), "{k} delivered exactly once: {got:?}");
    }
    assert_eq!(got.len(), 2, "{got:?}");
    let after = deliveries(&server, &inc.id).await;
    let first = after.iter().find(|d| d.version == 1).expect("declaration delivery");
    assert!(first.attempts >= 2, "attempted before and after the crash: {first:?}");
    assert_eq!(first.destination, "pay-hook");
    assert_eq!(first.kind, "webhook");
    server.terminate().await;
}

/// A data dir whose outbox is new (lost, or older than notifications)
/// starts at the present: the past is not notified, neither at that start
/// nor after a `kill -9` right after it (the start-up cursors are synced
/// before the server is ready), and what happens next is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_outbox_starts_at_the_present_even_after_a_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = sink().await;
    let cfg = write_config(dir.path(), &config(&hook.url));
    let data = dir.path().join("data");
    // Declares a SEV-2 of payments and waits until the sink has `delivered` deliveries.
    let declare_delivered = async |server: &Server, title: &str, delivered: usize| {
        let inc = server
            .client()
            .await
            .declare_incident(payments_sev2(title))
            .await
            .expect("declare")
            .into_inner();
        until(title, async || hook.delivered().len() == delivered).await;
        inc
    };
    let server = Server::start(&data, &cfg).await;
    let old = declare_delivered(&server, "Card payments failing", 1).await;
    assert_eq!(server.terminate().await.code(), Some(0));

    std::fs::remove_file(data.join("outbox.log")).expect("remove the outbox");
    Server::start(&data, &cfg).await.kill9().await;
    let server = Server::start(&data, &cfg).await;
    let new = declare_delivered(&server, "Refunds stuck", 2).await;
    assert!(
        deliveries(&server, &old.id).await.is_empty(),
        "the past was notified again"
    );
    assert_eq!(deliveries(&server, &new.id).await.len(), 1);
    assert!(hook.delivered().values().all(|n| *n == 1), "{:?}", hook.delivered());
    server.terminate().await;
}

/// The payments team with every kind of route: team chat, stakeholder mail
/// (and `executives` by mail), a status page, and a drill channel.
fn drill_config(sink: &str, smtp_port: u16) -> String {
    let base = crate::notify_fault::config(smtp_port).replace(
        "id = \"payments\"\nname = \"Payments\"\n",
        "id = \"payments\"\nname = \"Payments\"\nchat = [\"pay-chat\"]\ndrill_routes = [\"drills-chat\"]\n",
    );
    format!(
        "{base}\n[[destinations]]\nid = \"pay-chat\"\nkind = \"slack\"\nurl = \"{sink}/team-chat\"\n\n\
         [[destinations]]\nid = \"drills-chat\"\nkind = \"slack\"\nurl = \"{sink}/drills\"\n\n\
         [[destinations]]\nid = \"status\"\nkind = \"statuspage\"\nurl = \"{sink}/status\"\npage_id = \"page1\"\napi_key = \"k\"\n"
    )
}

/// A SEV-1 on the status page with every kind of update, resolved.
async fn run_sev1(c: &mut crate::notify_fault::Client, title: &str, drill: bool) -> String {
    let inc = c
        .declare_incident(pb::DeclareIncidentRequest {
            title: title.into(),
            team: "payments".into(),
            services: vec!["payments-api".into()],
            severity: pb::Severity::Sev1 as i32,
            drill,
            by: "alice".into(),
            ..Default::default()
        })
        .await
        .expect("declare")
        .into_inner();
    let id = inc.id;
    for (role, person) in [(pb::Role::Commander, "alice"), (pb::Role::CommsLead, "bob")] {
        c.assign_role(pb::AssignRoleRequest {
            id: id.clone(),
            role: role as i32,
            person: person.into(),
            by: "alice".into(),
            ..Default::default()
        })
        .await
        .expect("assign");
    }
    for (kind, req) in [
        (
            pb::UpdateKind::Internal,
            pb::PostUpdateRequest {
                current_theory: "connection pool exhausted".into(),
                ..Default::default()
            },
        ),
        (
            pb::UpdateKind::Executive,
            pb::PostUpdateRequest {
                business_impact: "checkout revenue stopped".into(),
                ..Default::default()
            },
        ),
        (
            pb::UpdateKind::Customer,
            pb::PostUpdateRequest {
                customer_symptom: "card payments time out".into(),
                ..Default::default()
            },
        ),
    ] {
        c.post_update(pb::PostUpdateRequest {
            id: id.clone(),
            kind: kind as i32,
            by: "bob".into(),
            ..req
        })
        .await
        .expect("update");
    }
    c.set_status(pb::SetStatusRequest {
        id: id.clone(),
        status: pb::Status::Mitigating as i32,
        note: "rolled back".into(),
        by: "alice".into(),
        ..Default::default()
    })
    .await
    .expect("mitigating");
    c.resolve_incident(pb::ResolveIncidentRequest {
        id: id.clone(),
        note: "payments flowing".into(),
        by: "alice".into(),
        ..Default::default()
    })
    .await
    .expect("resolve");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_reaches_only_the_drill_routes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let http = sink().await;
    let base = http.url.trim_end_matches("/hook").to_string();
    let smtp = crate::notify_fault::Smtp::running();
    let cfg = write_config(dir.path(), &drill_config(&base, smtp.port));
    let env = [("INCIDENTD_NOTIFY_CHAT_INTERVAL", "10ms")];
    let server = Server::start_with_env(&dir.path().join("data"), &cfg, &env).await;
    let mut c = server.client().await;

    // The drill first, then the same incident for real: once the real one's
    // notifications have arrived everywhere, anything the drill had sent to
    // those routes would have arrived before them (one FIFO lane per route).
    let drill = run_sev1(&mut c, "Game day: ledger outage", true).await;
    let real = run_sev1(&mut c, "Ledger outage", false).await;
    until("every delivery done", async || {
        let ds = deliveries(&server, "").await;
        !ds.is_empty() && crate::notify_fault::delivered(&ds)
    })
    .await;

    let drill_ds = deliveries(&server, &drill).await;
    assert!(drill_ds.len() >= 5, "the drill notified its channel: {drill_ds:?}");
    for d in &drill_ds {
        assert_eq!(
            (d.destination.as_str(), d.kind.as_str()),
            ("drills-chat", "slack"),
            "{d:?}"
        );
    }
    let real_ds = deliveries(&server, &real).await;
    let real_dests: std::collections::BTreeSet<&str> = real_ds.iter().map(|d| d.destination.as_str()).collect();
    for want in [
        "pay-chat",
        "pay-stakeholders",
        "contacts:executives",
        "status",
        "person:alice",
    ] {
        assert!(
            real_dests.contains(want),
            "the real incident reached {want}: {real_dests:?}"
        );
    }
    assert!(!real_dests.contains("drills-chat"), "{real_dests:?}");

    // What the routes received: the drill channel only the drill's messages,
    // every other route only the real incident's.
    let reqs = http.requests();
    let drills: Vec<&Request> = reqs.iter().filter(|r| r.path() == "/drills").collect();
    assert_eq!(drills.len(), drill_ds.len(), "one request per drill delivery");
    for r in &drills {
        assert!(r.body.contains("[DRILL]"), "{}", r.body);
    }
    let others: Vec<&Request> = reqs.iter().filter(|r| r.path() != "/drills").collect();
    assert!(others.iter().any(|r| r.path() == "/team-chat"));
    assert!(
        others
            .iter()
            .any(|r| r.path().starts_with("/status/v1/pages/page1/incidents"))
    );
    for r in &others {
        let drill_like = r.body.contains("Game day") || r.body.contains("[DRILL]");
        assert!(!drill_like, "a drill reached {}: {}", r.line, r.body);
    }
    let mails = smtp.mails();
    assert!(
        mails.iter().any(|m| m.rcpt == ["ceo@example.com"]),
        "executives heard of the real one"
    );
    assert!(mails.iter().any(|m| m.rcpt == ["payments-stakeholders@example.com"]));
    for m in &mails {
        assert!(
            !m.header("X-Incidentd-Delivery").starts_with(&drill),
            "a drill mail: {m:?}"
        );
        assert!(
            !m.data.contains("Game day") && !m.header("Subject").contains("DRILL"),
            "a drill mail: {m:?}"
        );
    }
    server.terminate().await;
}
