//! `incidentd-bench notify`: events through the notifier hub to a local
//! HTTP sink (issue 4: p99 < 100 ms at 1k events/s).
//!
//! The server runs in process with `lanes` teams, each with one signed
//! webhook destination on a sink at `127.0.0.1:0` (webhooks have no rate
//! limit; chat webhooks would be held to 1 message/s by design). Each event
//! is a durable `PostUpdate` (internal) over gRPC, which routes to exactly
//! one webhook; its text carries a token that the sink reads back, so each
//! request at the sink is matched to the RPC that caused it.
//!
//! Measured: (1) at a steady `rate` events/s (open loop), event→adapter-call
//! latency: from the RPC's acknowledgement (the event is durable and
//! published) to the sink reading the request, p50/p99/max; (2) the maximum
//! rate: `clients` closed-loop callers, events/s acknowledged and
//! deliveries/s at the sink. Baselines in the same run: the same sink hit
//! directly by a plain HTTP/1.1 client (keep-alive, one connection per lane,
//! a body of the same size) at the same rate and flat out, and the RPC alone.

use crate::{Stats, channels, start_server_with};
use incidentd_proto::v1 as pb;
use incidentd_proto::v1::incident_service_client::IncidentServiceClient;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

pub struct NotifyArgs {
    pub rate: u64,
    pub secs: u64,
    pub lanes: usize,
    pub incidents: usize,
    pub clients: usize,
    pub max_events: usize,
}

/// Token → when the sink read the request carrying it.
#[derive(Clone, Default)]
struct Sink {
    seen: Arc<Mutex<HashMap<u64, Instant>>>,
}

fn token(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let at = text.find("BENCH")? + 5;
    let digits: String = text[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl Sink {
    async fn start() -> anyhow::Result<(Sink, String)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let sink = Sink::default();
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(serve(tcp, s.clone()));
            }
        });
        Ok((sink, addr))
    }

    fn count(&self) -> usize {
        self.seen.lock().map(|m| m.len()).unwrap_or(0)
    }

    fn at(&self, token: u64) -> Option<Instant> {
        self.seen.lock().ok()?.get(&token).copied()
    }

    async fn wait_for(&self, n: usize, deadline: Duration) -> anyhow::Result<()> {
        let end = Instant::now() + deadline;
        while self.count() < n {
            anyhow::ensure!(
                Instant::now() < end,
                "sink got {} of {n} requests in {deadline:?}",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }
}

async fn serve(tcp: TcpStream, sink: Sink) {
    let mut io = BufReader::new(tcp);
    let mut line = String::new();
    loop {
        line.clear();
        if io.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0usize;
        loop {
            line.clear();
            if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let h = line.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        if io.read_exact(&mut body).await.is_err() {
            return;
        }
        let now = Instant::now();
        if let (Some(t), Ok(mut seen)) = (token(&body), sink.seen.lock()) {
            seen.entry(t).or_insert(now);
        }
        if io
            .get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await
            .is_err()
        {
            return;
        }
    }
}

fn config(lanes: usize, sink: &str) -> anyhow::Result<incidentd_config::OrgConfig> {
    let mut text = String::from(
        "[org]\nname = \"Bench\"\ndefault_team = \"t0\"\nunclear_severity = \"SEV1\"\n\n\
         [[people]]\nid = \"alice\"\nname = \"Alice\"\nteams = [\"t0\"]\n\n",
    );
    for i in 0..lanes {
        text.push_str(&format!(
            "[[teams]]\nid = \"t{i}\"\nname = \"Team {i}\"\nchat = [\"hook-{i}\"]\n\n\
             [[destinations]]\nid = \"hook-{i}\"\nkind = \"webhook\"\nurl = \"http://{sink}/hook-{i}\"\nsecret = \"s\"\n\n"
        ));
    }
    Ok(incidentd_config::OrgConfig::from_toml_str(&text)?)
}

fn update(id: &str, token: u64) -> pb::PostUpdateRequest {
    pb::PostUpdateRequest {
        id: id.to_string(),
        kind: pb::UpdateKind::Internal as i32,
        current_theory: format!("BENCH{token} connection pool exhausted on the ledger database"),
        next_steps: "roll back the ledger deploy".into(),
        by: "alice".into(),
        ..Default::default()
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn stats(mut lat: Vec<Duration>, elapsed: Duration) -> Stats {
    lat.sort();
    Stats {
        n: lat.len(),
        elapsed,
        lat,
    }
}

fn line(name: &str, s: &Stats) {
    println!(
        "  {name:<44} n={:<6} p50 {:>9}  p99 {:>9}  max {:>9}",
        s.n,
        ms(s.pct(0.50)),
        ms(s.pct(0.99)),
        ms(s.lat.last().copied().unwrap_or_default())
    );
}

/// Plain HTTP/1.1 POSTs of `body` to the sink on keep-alive connections.
struct Direct {
    conns: Vec<tokio::sync::Mutex<BufReader<TcpStream>>>,
    addr: String,
}

impl Direct {
    async fn connect(addr: &str, n: usize) -> anyhow::Result<Direct> {
        let mut conns = Vec::new();
        for _ in 0..n {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            conns.push(tokio::sync::Mutex::new(BufReader::new(tcp)));
        }
        Ok(Direct {
            conns,
            addr: addr.to_string(),
        })
    }

    async fn post(&self, lane: usize, body: &[u8]) -> anyhow::Result<()> {
        let mut io = self.conns[lane % self.conns.len()].lock().await;
        let head = format!(
            "POST /direct-{lane} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        io.get_mut().write_all(head.as_bytes()).await?;
        io.get_mut().write_all(body).await?;
        let mut line = String::new();
        loop {
            line.clear();
            anyhow::ensure!(io.read_line(&mut line).await? > 0, "sink closed");
            if line == "\r\n" {
                break;
            }
        }
        let mut ok = [0u8; 2];
        io.read_exact(&mut ok).await?;
        Ok(())
    }
}

/// A body the size of the notifier's webhook requests, with a token.
fn direct_body(token: u64) -> Vec<u8> {
    let filler = "x".repeat(900);
    format!("{{\"text\":\"BENCH{token} {filler}\"}}").into_bytes()
}

pub async fn run(a: NotifyArgs) -> anyhow::Result<()> {
    let (sink, addr) = Sink::start().await?;
    let dir = tempfile::tempdir()?;
    let server = start_server_with(dir.path(), config(a.lanes, &addr)?).await?;
    let chans = channels(server.grpc, 4).await?;
    let client = |i: usize| IncidentServiceClient::new(chans[i % chans.len()].clone());
    println!(
        "notify: {} webhook lanes, {} incidents, {} events/s for {} s; max rate: {} clients, {} events",
        a.lanes, a.incidents, a.rate, a.secs, a.clients, a.max_events
    );

    // Incidents spread over the lanes (SEV-4: the declaration goes to the team's hook only).
    let mut ids = Vec::new();
    for i in 0..a.incidents {
        let inc = client(i)
            .declare_incident(pb::DeclareIncidentRequest {
                title: format!("notify bench {i}"),
                team: format!("t{}", i % a.lanes),
                severity: pb::Severity::Sev4 as i32,
                by: "alice".into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        ids.push(inc.id);
    }
    let ids = Arc::new(ids);
    // Warm-up: one update per incident, all delivered.
    for (i, id) in ids.iter().enumerate() {
        client(i).post_update(update(id, 1_000_000 + i as u64)).await?;
    }
    sink.wait_for(a.incidents, Duration::from_secs(60)).await?;

    // (1) Steady rate, open loop.
    let total = (a.rate * a.secs) as usize;
    let period = Duration::from_secs_f64(1.0 / a.rate as f64);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for n in 0..total {
        tokio::time::sleep_until((start + period * n as u32).into()).await;
        let mut c = client(n);
        let id = ids[n % ids.len()].clone();
        let token = n as u64;
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            c.post_update(update(&id, token))
                .await
                .map(|_| (token, sent, Instant::now()))
        }));
    }
    let mut acks = Vec::with_capacity(total);
    for t in tasks {
        acks.push(t.await??);
    }
    let offered = start.elapsed();
    sink.wait_for(a.incidents + total, Duration::from_secs(120)).await?;
    let (mut rpc, mut to_sink, mut e2e) = (Vec::new(), Vec::new(), Vec::new());
    for (token, sent, acked) in &acks {
        let at = sink
            .at(*token)
            .ok_or_else(|| anyhow::anyhow!("token {token} never reached the sink"))?;
        rpc.push(*acked - *sent);
        to_sink.push(at.saturating_duration_since(*acked));
        e2e.push(at - *sent);
    }
    // Baseline: the same sink, directly, at the same rate.
    let direct = Arc::new(Direct::connect(&addr, a.lanes).await?);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for n in 0..total {
        tokio::time::sleep_until((start + period * n as u32).into()).await;
        let d = direct.clone();
        let lanes = a.lanes;
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            d.post(n % lanes, &direct_body(2_000_000 + n as u64))
                .await
                .map(|_| sent.elapsed())
        }));
    }
    let mut direct_lat = Vec::with_capacity(total);
    for t in tasks {
        direct_lat.push(t.await??);
    }
    let (rpc, to_sink, e2e, direct_s) = (
        stats(rpc, offered),
        stats(to_sink, offered),
        stats(e2e, offered),
        stats(direct_lat, start.elapsed()),
    );
    println!("(1) steady {} events/s over {:.1} s:", a.rate, offered.as_secs_f64());
    line("event -> adapter call (ack -> sink read)", &to_sink);
    line("RPC issued -> sink read (incl. fdatasync)", &e2e);
    line("baseline: PostUpdate RPC alone", &rpc);
    line("baseline: same sink, plain HTTP client", &direct_s);
    println!(
        "  ratio p99 event->adapter / plain HTTP: {:.1}x; target p99 < 100 ms: {}",
        to_sink.pct(0.99).as_secs_f64() / direct_s.pct(0.99).as_secs_f64().max(1e-9),
        if to_sink.pct(0.99) < Duration::from_millis(100) {
            "met"
        } else {
            "MISSED"
        }
    );

    // (2) Maximum rate: closed-loop callers.
    let before = sink.count();
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..a.clients {
        let mut c = client(w);
        let ids = ids.clone();
        let counter = counter.clone();
        let max = a.max_events;
        tasks.push(tokio::spawn(async move {
            loop {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= max {
                    return Ok::<(), tonic::Status>(());
                }
                c.post_update(update(&ids[n % ids.len()], 3_000_000 + n as u64)).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let acked = start.elapsed();
    sink.wait_for(before + a.max_events, Duration::from_secs(300)).await?;
    let drained = start.elapsed();
    // Baseline: the plain client flat out, one request in flight per lane.
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let dstart = Instant::now();
    let mut tasks = Vec::new();
    for lane in 0..a.lanes {
        let (d, counter, max) = (direct.clone(), counter.clone(), a.max_events);
        tasks.push(tokio::spawn(async move {
            loop {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= max {
                    return Ok::<(), anyhow::Error>(());
                }
                d.post(lane, &direct_body(4_000_000 + n as u64)).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let direct_max = a.max_events as f64 / dstart.elapsed().as_secs_f64();
    let events = a.max_events as f64 / acked.as_secs_f64();
    let delivered = a.max_events as f64 / drained.as_secs_f64();
    println!("(2) max rate, {} callers, {} events:", a.clients, a.max_events);
    println!("  events acknowledged (durable)                {events:>9.0} /s");
    println!("  delivered to the sink through the hub        {delivered:>9.0} /s");
    println!(
        "  baseline: plain HTTP client, {} connections   {direct_max:>9.0} /s",
        a.lanes
    );
    println!(
        "  ratio delivered / acknowledged: {:.2}; delivered / plain HTTP: {:.2}",
        delivered / events,
        delivered / direct_max
    );
    server.stop().await
}
