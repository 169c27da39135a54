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

/// A minimal HTTP/1.1 sink: answers every request with `status`, records
/// (delivery key, status answered).
struct Sink {
    url: String,
    status: Arc<AtomicU16>,
    seen: Arc<Mutex<Vec<(String, u16)>>>,
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
                    sn.lock().expect("seen").push((key, code));
                    let reply = format!("HTTP/1.1 {code} X\r\ncontent-length: 2\r\n\r\nok");
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
        for (k, code) in self.seen.lock().expect("seen").iter() {
            if *code == 200 {
                *m.entry(k.clone()).or_default() += 1;
            }
        }
        m
    }
    fn attempts(&self) -> usize {
        self.seen.lock().expect("seen").len()
    }
}

fn config(hook: &str) -> String {
    let base = TEST_CONFIG.replace(
        "id = \"payments\"\nname = \"Payments\"\n",
        "id = \"payments\"\nname = \"Payments\"\nchat = [\"pay-hook\"]\n",
    );
    format!("{base}\n[[destinations]]\nid = \"pay-hook\"\nkind = \"webhook\"\nurl = \"{hook}\"\nsecret = \"s\"\n")
}

/// Polls (bounded) until `f` holds.
async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..600 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn deliveries(server: &Server, incident: &str) -> Vec<pb::Delivery> {
    let mut c = NotificationServiceClient::connect(format!("http://{}", server.grpc))
        .await
        .expect("connect");
    c.list_deliveries(pb::ListDeliveriesRequest {
        incident_id: incident.to_string(),
        ..Default::default()
    })
    .await
    .expect("ListDeliveries")
    .into_inner()
    .deliveries
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
        .declare_incident(pb::DeclareIncidentRequest {
            title: "Card payments failing".into(),
            team: "payments".into(),
            severity: pb::Severity::Sev2 as i32,
            ..Default::default()
        })
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
