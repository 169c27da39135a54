//! `incidentd-bench alerts` (issue 6): alert ingest rates of incidentd, with
//! durable acknowledgements, beside the real Prometheus Alertmanager's own
//! ingest (`POST /api/v2/alerts`, in memory) measured in the same run on the
//! same machine, and the ratios.
//!
//! * (r1) Alertmanager `POST /api/v2/alerts`, one alert per request;
//! * (r2) the same, `--batch` alerts per request;
//! * (r3) the same as (r1), every alert in a new group of its own (Alertmanager
//!   creates an aggregation group per alert): the like-for-like baseline of (e);
//! * (e)  `POST /v2/enqueue` (PagerDuty Events v2), one event per request, each
//!   with its own dedup key: every event opens a new incident;
//! * (f)  `POST /v2/enqueue` flapping over `--groups` dedup keys: triggers and
//!   resolves alternate per key, so every event changes an incident;
//! * (w)  `POST /v1/integrations/alertmanager`, one new alert per notification
//!   over `--groups` groups: every notification attaches an alert;
//! * (s)  gRPC `IngestAlerts`, `--streams` client streams of `--batch` alerts
//!   over `--groups` groups: every alert attaches.
//!
//! * (n)  as (e), with the demo org's notification destinations: every
//!   incident also fans out to its team's chat, webhook and stakeholder mail
//!   (informational; the demo's destinations are unreachable, so each
//!   notification fails or is retried).
//!
//! HTTP clients keep one connection each (HTTP/1.1 keep-alive), `--clients` of them.
//!
//! What is compared: ingest. Alertmanager runs with a receiver that sends
//! nowhere (and would notify only after `group_wait`), so incidentd runs the
//! demo org without notification destinations in (e) (f) (w) (s); the
//! notifier's own throughput is what `incidentd-bench notify` measures, and
//! (n) shows what notifying costs on top of (e).
//!
//! Alertmanager's own rate swings by a third from run to run on a small VM,
//! so the bench runs `--rounds` rounds, Alertmanager and incidentd taking
//! turns (each from scratch), and reports each phase's median with the range,
//! and ratios of medians with the range of the per-round ratios.

use crate::{Stats, channels, drive, start_server_with};
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use incidentd_proto::v1 as pb;
use incidentd_proto::v1::alert_service_client::AlertServiceClient;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const AM_BINARY: &str = "/usr/bin/prometheus-alertmanager";
/// The demo org's documented placeholder secrets (`crates/incidentd-config/src/demo.toml`).
const DEMO_AM_TOKEN: &str = "demo-alertmanager-token";
const DEMO_PD_KEY: &str = "demo-pagerduty-routing-key";

pub struct AlertArgs {
    pub alerts: usize,
    pub clients: usize,
    pub streams: usize,
    pub batch: usize,
    pub groups: usize,
    /// Phases to run: `1` `2` `3` (r1 r2 r3), `e`, `f`, `w`, `s`, `n`.
    pub only: String,
    /// Rounds; each phase's median is reported.
    pub rounds: usize,
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    host: String,
    send: SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: &str) -> anyhow::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            host: addr.to_string(),
            send,
        })
    }

    async fn request(&mut self, method: &str, path: &str, auth: Option<&str>, body: Bytes) -> anyhow::Result<u16> {
        self.send.ready().await?;
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.host)
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(a) = auth {
            req = req.header(hyper::header::AUTHORIZATION, a);
        }
        let resp = self.send.send_request(req.body(Full::new(body))?).await?;
        let status = resp.status().as_u16();
        resp.into_body().collect().await?;
        Ok(status)
    }
}

/// `clients` keep-alive connections with one request in flight each, `total` requests `make(i)`.
async fn drive_http<F>(addr: &str, clients: usize, total: usize, auth: Option<&str>, make: F) -> anyhow::Result<Stats>
where
    F: Fn(usize) -> (&'static str, Bytes) + Send + Sync + 'static,
{
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(Conn::open(addr).await?);
    }
    // As many connections as callers in flight: the pool is never empty when one is taken.
    let pool = Arc::new(std::sync::Mutex::new(conns));
    let auth: Option<Arc<str>> = auth.map(Arc::from);
    drive(clients, total, move |i| {
        let (pool, auth) = (pool.clone(), auth.clone());
        let (path, body) = make(i);
        async move {
            let taken = pool.lock().ok().and_then(|mut p| p.pop());
            let mut conn = taken.context("connection pool empty")?;
            let code = conn.request("POST", path, auth.as_deref(), body).await?;
            if let Ok(mut p) = pool.lock() {
                p.push(conn);
            }
            anyhow::ensure!((200..300).contains(&code), "{path} answered {code}");
            Ok(())
        }
    })
    .await
}

/// The real Alertmanager with a receiver that sends nowhere (ingest only).
struct Alertmanager {
    child: tokio::process::Child,
    addr: String,
}

impl Alertmanager {
    async fn start(dir: &Path) -> anyhow::Result<Alertmanager> {
        anyhow::ensure!(
            Path::new(AM_BINARY).exists(),
            "{AM_BINARY} is missing: apt-get install prometheus-alertmanager"
        );
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: blackhole\n  group_by: ['alertname']\n  group_wait: 30s\n  group_interval: 5m\nreceivers:\n  - name: blackhole\n",
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = format!("127.0.0.1:{port}");
        let child = tokio::process::Command::new(AM_BINARY)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("start alertmanager")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut c) = Conn::open(&addr).await
                && let Ok(200) = c.request("GET", "/-/ready", None, Bytes::new()).await
            {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "alertmanager not ready after 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Alertmanager { child, addr })
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn am_api_alert(n: usize, groups: usize) -> String {
    format!(
        r#"{{"labels":{{"alertname":"Bench{}","instance":"i{n}","severity":"critical","team":"payments"}},"annotations":{{"summary":"bench alert {n}"}},"generatorURL":"http://bench.test/"}}"#,
        n % groups
    )
}

fn am_webhook(n: usize, groups: usize) -> String {
    let g = n % groups;
    format!(
        r#"{{"receiver":"incidentd","status":"firing","alerts":[{{"status":"firing","labels":{{"alertname":"Bench{g}","instance":"i{n}","severity":"critical","team":"payments"}},"annotations":{{"summary":"bench alert {n}"}},"startsAt":"2026-11-26T18:57:27Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"w{n}"}}],"groupLabels":{{"alertname":"Bench{g}"}},"commonLabels":{{"alertname":"Bench{g}","team":"payments"}},"commonAnnotations":{{}},"externalURL":"http://bench.test","version":"4","groupKey":"{{}}:{{alertname=\"Bench{g}\"}}","truncatedAlerts":0}}"#
    )
}

fn pd_event(action: &str, key: &str) -> String {
    format!(
        r#"{{"routing_key":"{DEMO_PD_KEY}","event_action":"{action}","dedup_key":"{key}","payload":{{"summary":"bench alert {key}","source":"bench","severity":"critical"}}}}"#
    )
}

/// One measured phase: its name, alerts per request, and one result per round
/// (the rate in alerts/s, p50 and p99 per request, and fdatasyncs).
struct Phase {
    name: String,
    per: usize,
    rounds: Vec<(f64, Duration, Duration, Option<u64>)>,
}

impl Phase {
    fn new(name: impl Into<String>, per: usize) -> Phase {
        Phase {
            name: name.into(),
            per,
            rounds: Vec::new(),
        }
    }

    fn push(&mut self, s: &Stats, syncs: Option<u64>) {
        self.rounds
            .push((s.rate() * self.per as f64, s.pct(0.50), s.pct(0.99), syncs));
    }

    /// The round with the median rate.
    fn median(&self) -> Option<&(f64, Duration, Duration, Option<u64>)> {
        let mut sorted: Vec<_> = self.rounds.iter().collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        sorted.get(sorted.len() / 2).copied()
    }

    fn rate(&self) -> Option<f64> {
        self.median().map(|m| m.0)
    }

    fn print(&self) {
        let Some((rate, p50, p99, syncs)) = self.median() else {
            return;
        };
        let lo = self.rounds.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
        let hi = self.rounds.iter().map(|r| r.0).fold(0.0, f64::max);
        let syncs = syncs.map(|n| format!("   {n} fdatasyncs")).unwrap_or_default();
        println!(
            "{:<64} {rate:>9.0} alerts/s ({lo:.0}..{hi:.0})   p50 {:>7.2} ms   p99 {:>7.2} ms (per request){syncs}",
            self.name,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
}

/// `ours / theirs` of the medians, with the per-round ratios' range.
fn ratio(label: &str, ours: &Phase, theirs: &Phase, note: &str) {
    let (Some(a), Some(b)) = (ours.rate(), theirs.rate()) else {
        return;
    };
    let per_round: Vec<f64> = ours.rounds.iter().zip(&theirs.rounds).map(|(x, y)| x.0 / y.0).collect();
    let lo = per_round.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = per_round.iter().copied().fold(0.0, f64::max);
    println!("{label} = {:.2}   (rounds {lo:.2}..{hi:.2}){note}", a / b);
}

pub async fn run(a: AlertArgs) -> anyhow::Result<()> {
    let AlertArgs {
        alerts,
        clients,
        streams,
        batch,
        groups,
        only,
        rounds,
    } = a;
    anyhow::ensure!(
        batch > 0 && groups > 0 && clients > 0 && streams > 0 && rounds > 0,
        "sizes must be positive"
    );
    let want = |c: char| only.contains(c);
    println!(
        "incidentd alert ingest benchmark: {alerts} alerts per phase, {clients} HTTP connections, {streams} gRPC streams, batches of {batch}, {groups} groups, {rounds} rounds (Alertmanager and incidentd take turns; medians)"
    );
    let requests = alerts.div_ceil(batch);
    let mut r1 = Phase::new("(r1) Alertmanager POST /api/v2/alerts, 1 alert/request (memory)", 1);
    let mut r2 = Phase::new(
        format!("(r2) Alertmanager POST /api/v2/alerts, {batch} alerts/request"),
        batch,
    );
    let mut r3 = Phase::new("(r3) Alertmanager, 1 alert/request, a new group each (memory)", 1);
    let mut e = Phase::new("(e)  incidentd POST /v2/enqueue, new incident each, durable", 1);
    let mut f = Phase::new(
        format!("(f)  incidentd POST /v2/enqueue, flapping over {groups} keys, durable"),
        1,
    );
    let mut n = Phase::new("(n)  as (e), with the demo org's notification destinations", 1);
    let mut w = Phase::new("(w)  incidentd Alertmanager webhook, 1 new alert each, durable", 1);
    let mut s = Phase::new(
        format!("(s)  incidentd IngestAlerts, {streams} streams x {batch}, durable"),
        batch,
    );

    for _ in 0..rounds {
        // Each round starts both from scratch, so no round inherits another's state.
        let tmp = tempfile::tempdir()?;
        if want('1') || want('2') || want('3') {
            // Baseline: the real Alertmanager's own ingest, in memory.
            let am = Alertmanager::start(tmp.path()).await?;
            if want('1') {
                let st = drive_http(&am.addr, clients, alerts, None, move |i| {
                    ("/api/v2/alerts", Bytes::from(format!("[{}]", am_api_alert(i, groups))))
                })
                .await?;
                r1.push(&st, None);
            }
            if want('2') {
                let st = drive_http(&am.addr, clients, requests, None, move |i| {
                    let body: Vec<String> = (i * batch..(i + 1) * batch)
                        .map(|n| am_api_alert(alerts + n, groups))
                        .collect();
                    ("/api/v2/alerts", Bytes::from(format!("[{}]", body.join(","))))
                })
                .await?;
                r2.push(&st, None);
            }
            if want('3') {
                let st = drive_http(&am.addr, clients, alerts, None, move |i| {
                    // `usize::MAX` groups: every alertname is new.
                    let alert = am_api_alert(2 * alerts + i, usize::MAX);
                    ("/api/v2/alerts", Bytes::from(format!("[{alert}]")))
                })
                .await?;
                r3.push(&st, None);
            }
        }
        if want('e') || want('f') || want('w') || want('s') {
            let server = start_server_with(&tmp.path().join("data"), ingest_org()).await?;
            let http = server.ready.http.to_string();
            let syncs = || server.ready.store.stats().syncs;
            if want('e') {
                let before = syncs();
                let st = drive_http(&http, clients, alerts, None, |i| {
                    ("/v2/enqueue", Bytes::from(pd_event("trigger", &format!("bench-{i}"))))
                })
                .await?;
                e.push(&st, Some(syncs() - before));
            }
            if want('f') {
                let before = syncs();
                let st = drive_http(&http, clients, alerts, None, move |i| {
                    let action = if (i / groups).is_multiple_of(2) {
                        "trigger"
                    } else {
                        "resolve"
                    };
                    (
                        "/v2/enqueue",
                        Bytes::from(pd_event(action, &format!("flap-{}", i % groups))),
                    )
                })
                .await?;
                f.push(&st, Some(syncs() - before));
            }
            if want('w') {
                let before = syncs();
                let auth = format!("Bearer {DEMO_AM_TOKEN}");
                let st = drive_http(&http, clients, alerts, Some(&auth), move |i| {
                    ("/v1/integrations/alertmanager", Bytes::from(am_webhook(i, groups)))
                })
                .await?;
                w.push(&st, Some(syncs() - before));
            }
            if want('s') {
                let before = syncs();
                let st = ingest_streams(server.grpc, streams, requests, batch, groups).await?;
                s.push(&st, Some(syncs() - before));
            }
            server.stop().await?;
        }
        if want('n') {
            let server = start_server_with(&tmp.path().join("notifying"), incidentd_config::OrgConfig::demo()).await?;
            let before = server.ready.store.stats().syncs;
            let st = drive_http(&server.ready.http.to_string(), clients, alerts, None, |i| {
                ("/v2/enqueue", Bytes::from(pd_event("trigger", &format!("bench-{i}"))))
            })
            .await?;
            n.push(&st, Some(server.ready.store.stats().syncs - before));
            server.stop().await?;
        }
    }

    println!();
    for p in [&r1, &r2, &r3, &e, &f, &w, &s, &n] {
        p.print();
    }
    println!();
    ratio(
        "(f)/(r1)",
        &f,
        &r1,
        "   target >= 1: alerts into existing groups, one per request each side",
    );
    ratio("(w)/(r1)", &w, &r1, "   target >= 1: the same, through the webhook");
    ratio(
        "(e)/(r3)",
        &e,
        &r3,
        "   target >= 1: a new incident per alert against a new group per alert",
    );
    ratio("(s)/(r2)", &s, &r2, "   target >= 1: batched each side");
    ratio(
        "(e)/(r1)",
        &e,
        &r1,
        "   (informational: a new incident per alert against alerts into existing groups)",
    );
    ratio("(s)/(r1)", &s, &r1, "");
    ratio("(n)/(e)", &n, &e, "   what notifying costs (informational)");
    Ok(())
}

/// The demo org without notification destinations: ingest only, as
/// Alertmanager's receiver that sends nowhere.
fn ingest_org() -> incidentd_config::OrgConfig {
    let mut org = incidentd_config::OrgConfig::demo();
    org.destinations.clear();
    org.smtp = None;
    for team in &mut org.teams {
        team.chat.clear();
        team.email.clear();
        team.drill_routes.clear();
    }
    org
}

/// gRPC IngestAlerts: `streams` streams, each sending calls of `batch` alerts,
/// `requests` calls in all.
async fn ingest_streams(
    grpc: std::net::SocketAddr,
    streams: usize,
    requests: usize,
    batch: usize,
    groups: usize,
) -> anyhow::Result<Stats> {
    let chans = channels(grpc, streams).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for ch in chans {
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = AlertServiceClient::new(ch);
            let mut lat = Vec::new();
            loop {
                let chunk = next.fetch_add(1, Ordering::Relaxed);
                if chunk >= requests {
                    break;
                }
                let items: Vec<pb::IngestAlertRequest> = (chunk * batch..(chunk + 1) * batch)
                    .map(|n| pb::IngestAlertRequest {
                        dedup_key: format!("bench-stream-group-{}", n % groups),
                        fingerprint: format!("s{n}"),
                        action: pb::AlertAction::Trigger as i32,
                        summary: format!("bench alert {n}"),
                        source: "bench".into(),
                        routing_key: DEMO_PD_KEY.into(),
                        labels: [("team".to_string(), "payments".to_string())].into(),
                        ..Default::default()
                    })
                    .collect();
                let t = Instant::now();
                let r = c.ingest_alerts(tokio_stream::iter(items)).await?.into_inner();
                anyhow::ensure!(r.accepted == batch as u64, "stream accepted {} of {batch}", r.accepted);
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    lat.sort();
    Ok(Stats {
        n: requests,
        elapsed: started.elapsed(),
        lat,
    })
}
