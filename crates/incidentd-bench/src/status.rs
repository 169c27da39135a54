//! `incidentd-bench status`: the public status page under an outage's read
//! load, against baselines served in the same run.
//!
//! 1. A SEV-1 on a status page component with a customer update is open;
//!    meanwhile a responder posts an internal update every 100 ms (so the
//!    page's actor keeps receiving events while it is read).
//! 2. `wrk` (Debian) reads `/status/api/v2/summary.json` and `/status` from
//!    incidentd, then the same bytes from a minimal static server (axum,
//!    the bytes in memory), and incidentd's `/healthz` (no-op). Requests/s,
//!    p99, and the ratio to the static baseline (target ≥ 0.5).
//! 3. Freshness: N customer updates, each with a new text; the time from
//!    sending `PostUpdate` until `summary.json` shows the text (polled on
//!    loopback), p50 / p99 / max, idle and while `wrk` reads the page.

use crate::{Running, start_server};
use incidentd_proto::v1 as pb;
use incidentd_proto::v1::incident_service_client::IncidentServiceClient;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;

const WRK: &str = "/usr/bin/wrk";

struct WrkResult {
    rps: f64,
    p99: String,
}

/// Runs wrk and reads its `Requests/sec` and 99th percentile.
async fn wrk(url: &str, secs: u64, connections: usize) -> anyhow::Result<WrkResult> {
    let out = tokio::process::Command::new(WRK)
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{secs}s"),
            "--latency",
            url,
        ])
        .output()
        .await?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    anyhow::ensure!(out.status.success(), "wrk failed: {text}");
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no Requests/sec in wrk output: {text}"))?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    anyhow::ensure!(!text.contains("Non-2xx"), "wrk saw errors: {text}");
    Ok(WrkResult { rps, p99 })
}

/// One GET on a fresh loopback connection: the body.
async fn get(addr: &std::net::SocketAddr, path: &str) -> anyhow::Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).to_string();
    Ok(text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

/// A minimal static server: the given documents, from memory.
async fn static_server(docs: Vec<(&'static str, String, &'static str)>) -> anyhow::Result<std::net::SocketAddr> {
    let mut app = axum::Router::new();
    for (path, body, ctype) in docs {
        let body = axum::body::Bytes::from(body);
        app = app.route(
            path,
            axum::routing::get(move || {
                let body = body.clone();
                async move { ([(axum::http::header::CONTENT_TYPE, ctype)], body) }
            }),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn customer_update(c: &mut IncidentServiceClient<Channel>, id: &str, symptom: &str) -> anyhow::Result<()> {
    c.post_update(pb::PostUpdateRequest {
        id: id.into(),
        kind: pb::UpdateKind::Customer as i32,
        customer_symptom: symptom.into(),
        by: "bob".into(),
        ..Default::default()
    })
    .await?;
    Ok(())
}

/// Times of `n` customer updates: (sent → visible in summary.json, sent →
/// PostUpdate answered (durable), answered → visible), each sorted.
async fn freshness(
    c: &mut IncidentServiceClient<Channel>,
    http: &std::net::SocketAddr,
    id: &str,
    n: usize,
    tag: &str,
) -> anyhow::Result<[Vec<Duration>; 3]> {
    let mut lat = Vec::with_capacity(n);
    let mut reply = Vec::with_capacity(n);
    let mut after = Vec::with_capacity(n);
    for i in 0..n {
        let text = format!("probe {tag} {i} checkout slow");
        let t0 = Instant::now();
        customer_update(c, id, &text).await?;
        let answered = t0.elapsed();
        let deadline = t0 + Duration::from_secs(10);
        loop {
            if get(http, "/status/api/v2/summary.json").await?.contains(&text) {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "update {i} not visible after 10 s");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let seen = t0.elapsed();
        lat.push(seen);
        reply.push(answered);
        after.push(seen.saturating_sub(answered));
    }
    for v in [&mut lat, &mut reply, &mut after] {
        v.sort();
    }
    Ok([lat, reply, after])
}

fn print_freshness(what: &str, [lat, reply, after]: &[Vec<Duration>; 3]) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "  {what:<34} n={:<4} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        lat.len(),
        ms(pct(lat, 0.50)),
        ms(pct(lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default()),
    );
    println!(
        "  {:<34}        of which PostUpdate answered (durable): p50 {:.2} ms, p99 {:.2} ms; then on the page: p50 {:.2} ms, p99 {:.2} ms",
        "",
        ms(pct(reply, 0.50)),
        ms(pct(reply, 0.99)),
        ms(pct(after, 0.50)),
        ms(pct(after, 0.99)),
    );
}

pub async fn run(secs: u64, connections: usize, probes: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        std::path::Path::new(WRK).exists(),
        "{WRK} is missing: apt-get install wrk"
    );
    let dir = tempfile::tempdir()?;
    let server: Running = start_server(dir.path()).await?;
    let http = server.ready.http;
    let mut c = IncidentServiceClient::connect(format!("http://{}", server.grpc)).await?;
    let inc = c
        .declare_incident(pb::DeclareIncidentRequest {
            title: "Payments API down".into(),
            team: "payments".into(),
            services: vec!["payments-api".into(), "checkout-web".into()],
            severity: pb::Severity::Sev1 as i32,
            by: "alice".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    customer_update(&mut c, &inc.id, "card payments time out").await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !get(&http, "/status/api/v2/summary.json")
        .await?
        .contains("card payments time out")
    {
        anyhow::ensure!(Instant::now() < deadline, "the page never showed the update");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Responders keep working while customers read.
    let chatter = {
        let mut c = c.clone();
        let id = inc.id.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                n += 1;
                let r = c
                    .post_update(pb::PostUpdateRequest {
                        id: id.clone(),
                        kind: pb::UpdateKind::Internal as i32,
                        current_theory: format!("theory {n}"),
                        by: "bob".into(),
                        ..Default::default()
                    })
                    .await;
                if r.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let summary = get(&http, "/status/api/v2/summary.json").await?;
    let page = get(&http, "/status").await?;
    let stat = static_server(vec![
        ("/summary.json", summary.clone(), "application/json"),
        ("/status", page.clone(), "text/html; charset=utf-8"),
    ])
    .await?;

    println!(
        "status page under read load: wrk -t2 -c{connections} -d{secs}s on loopback, a SEV-1 open, an internal update every 100 ms"
    );
    println!(
        "  documents: summary.json {} bytes, /status {} bytes",
        summary.len(),
        page.len()
    );
    let healthz = wrk(&format!("http://{http}/healthz"), secs, connections).await?;
    let rows = [
        ("summary.json", "/status/api/v2/summary.json", "/summary.json"),
        ("/status (HTML)", "/status", "/status"),
    ];
    println!("  {:<34} {:>10}   {:>9}", "what", "req/s", "p99");
    println!(
        "  {:<34} {:>10.0}   {:>9}",
        "incidentd /healthz (no-op)", healthz.rps, healthz.p99
    );
    for (name, ours, theirs) in rows {
        let a = wrk(&format!("http://{http}{ours}"), secs, connections).await?;
        let b = wrk(&format!("http://{stat}{theirs}"), secs, connections).await?;
        println!(
            "  {:<34} {:>10.0}   {:>9}",
            format!("static server {name}"),
            b.rps,
            b.p99
        );
        println!(
            "  {:<34} {:>10.0}   {:>9}   ratio to static {:.2} (target >= 0.5), to /healthz {:.2}",
            format!("incidentd {name}"),
            a.rps,
            a.p99,
            a.rps / b.rps,
            a.rps / healthz.rps
        );
    }

    println!("freshness: PostUpdate (customer) sent -> text visible in summary.json (target p99 < 1 s)");
    let idle = freshness(&mut c, &http, &inc.id, probes, "idle").await?;
    print_freshness("no readers", &idle);
    let url = format!("http://{http}/status");
    let load_secs = secs.max(5) * 3;
    let readers = tokio::spawn(async move { wrk(&url, load_secs, connections).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let busy = freshness(&mut c, &http, &inc.id, probes, "busy").await?;
    print_freshness(&format!("while wrk reads /status (-c{connections})"), &busy);
    if let Ok(Ok(r)) = readers.await {
        println!("  (wrk on /status meanwhile: {:.0} req/s)", r.rps);
    }
    chatter.abort();
    server.stop().await
}
