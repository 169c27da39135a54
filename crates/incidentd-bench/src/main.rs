//! `incidentd-bench`: measures incidentd against baselines taken in the same
//! run on the same machine, and prints ratios.
//!
//! `cargo run --release -p incidentd-bench -- core` measures:
//! (a) a no-op tonic unary RPC (grpc.health.v1 Check) on loopback: the baseline;
//! (b) `AddTimelineEntry`, acknowledged-means-durable, N clients over M incidents,
//!     beside (b0) raw log appends + fdatasync with the batch sizes (b) produced;
//! (c) `DeclareIncident`;
//! (d) L live incidents: resident memory per incident and recovery time after restart.
//!
//! `cargo run --release -p incidentd-bench -- timers` measures timers: see `timers.rs`.
//!
//! `cargo run --release -p incidentd-bench -- notify` measures the notifier: see `notify.rs`.
//! `cargo run --release -p incidentd-bench -- status` measures the public status page: see `status.rs`.
//! `cargo run --release -p incidentd-bench -- org [--crash]` is the load harness of an organisation: see `org.rs`.

mod status;
mod timers;

mod alerts;

mod notify;

mod org;

use anyhow::Context;
use clap::Parser;
use incidentd_proto::v1 as pb;
use incidentd_proto::v1::incident_service_client::IncidentServiceClient;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// mimalloc instead of glibc malloc: the server allocates many small,
/// short-lived buffers per request (protobuf, JSON, events); glibc's
/// allocator took ~20 % of the CPU samples under the org load harness.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "incidentd benchmarks (ratios against same-run baselines)")]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// Incident core: no-op RPC baseline, durable timeline entries, declarations, 100k live incidents.
    Core {
        /// Concurrent requests in flight.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// gRPC connections the clients share.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Incidents the timeline entries spread over.
        #[arg(long, default_value_t = 1000)]
        incidents: usize,
        /// Requests per measured phase.
        #[arg(long, default_value_t = 40_000)]
        requests: usize,
        /// Live incidents for the memory / recovery phase (0 skips it).
        #[arg(long, default_value_t = 100_000)]
        live: usize,
    },
    /// Alert ingest (issue 6): /v2/enqueue, the Alertmanager webhook and IngestAlerts, durable,
    /// beside the real Alertmanager's own POST /api/v2/alerts in the same run.
    Alerts {
        /// Alerts per measured phase.
        #[arg(long, default_value_t = 20_000)]
        alerts: usize,
        /// HTTP connections (one request in flight each).
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Concurrent IngestAlerts streams.
        #[arg(long, default_value_t = 8)]
        streams: usize,
        /// Alerts per stream call and per batched Alertmanager request.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Alert groups (dedup keys) the attaching phases spread over.
        #[arg(long, default_value_t = 50)]
        groups: usize,
        /// Run only these phases (1 2 3 for r1 r2 r3, e f w s n; e.g. `--only ew`
        /// to profile one path). Ratios print only when both sides ran.
        #[arg(long, default_value = "123efwsn")]
        only: String,
        /// Rounds (Alertmanager and incidentd take turns); medians are reported.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Notifier (issue 4): events/s through the hub to a local HTTP sink and event→adapter-call
    /// latency at a steady rate, beside a plain HTTP client hitting the same sink.
    Notify {
        /// Events per second in the steady phase.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        /// Length of the steady phase.
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// Teams, each with one webhook destination (one delivery lane each).
        #[arg(long, default_value_t = 8)]
        lanes: usize,
        /// Incidents the events spread over.
        #[arg(long, default_value_t = 64)]
        incidents: usize,
        /// Closed-loop callers in the max-rate phase.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Events in the max-rate phase.
        #[arg(long, default_value_t = 20_000)]
        max_events: usize,
    },
    /// Timers: idle cost of many armed incidents, lateness of a burst of deadlines.
    Timers {
        /// Live incidents with an armed timer (deadlines an hour away).
        #[arg(long, default_value_t = 100_000)]
        live: usize,
        /// Deadlines that fall due together.
        #[arg(long, default_value_t = 10_000)]
        burst: usize,
        /// Seconds of idle time to measure CPU over.
        #[arg(long, default_value_t = 10)]
        idle_secs: u64,
        #[arg(long, default_value_t = 64)]
        clients: usize,
        #[arg(long, default_value_t = 4)]
        connections: usize,
    },
    /// Status page: wrk on summary.json and /status beside a static server; PostUpdate → visible.
    Status {
        /// Seconds per wrk run.
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// wrk connections.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Customer updates timed from PostUpdate to visible.
        #[arg(long, default_value_t = 200)]
        probes: usize,
    },
    /// Load harness (issue 8): an organisation's mixed workload against the real binary, open loop;
    /// with --crash, kill -9 under load, restart, and check every acknowledged write.
    Org(org::OrgArgs),
}

struct Stats {
    n: usize,
    elapsed: Duration,
    lat: Vec<Duration>,
}

impl Stats {
    fn rate(&self) -> f64 {
        self.n as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&self, p: f64) -> Duration {
        if self.lat.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.lat.len() as f64 - 1.0) * p).round() as usize;
        self.lat[i]
    }
    fn line(&self, name: &str) -> String {
        format!(
            "{name:<44} {:>9.0} req/s   p50 {:>8.2} ms   p99 {:>8.2} ms",
            self.rate(),
            self.pct(0.50).as_secs_f64() * 1e3,
            self.pct(0.99).as_secs_f64() * 1e3
        )
    }
}

/// Runs `total` calls of `call(i)` with `clients` in flight; returns throughput and latencies.
async fn drive<F, Fut>(clients: usize, total: usize, call: F) -> anyhow::Result<Stats>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let call = Arc::new(call);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let call = call.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                call(i).await?;
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut lat = Vec::with_capacity(total);
    for t in tasks {
        lat.extend(t.await??);
    }
    let elapsed = started.elapsed();
    lat.sort();
    Ok(Stats { n: total, elapsed, lat })
}

fn rss_bytes() -> u64 {
    rss_bytes_of("self")
}

/// Resident memory of a process (`"self"` or a pid), from `/proc/<p>/statm`.
fn rss_bytes_of(process: &str) -> u64 {
    let statm = std::fs::read_to_string(format!("/proc/{process}/statm")).unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// User + system CPU time of a process (`"self"` or a pid).
fn cpu_time_of(process: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after ')':
    // state, ppid, pgrp, session, tty_nr, tpgid (-1 without a terminal), flags,
    // minflt, cminflt, majflt, cmajflt, utime, stime.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let ticks = field(11) + field(12);
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

struct Running {
    grpc: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
    ready: incidentd::Ready,
}

async fn start_server(dir: &std::path::Path) -> anyhow::Result<Running> {
    start_server_with(dir, incidentd_config::OrgConfig::demo()).await
}

async fn start_server_with(dir: &std::path::Path, config: incidentd_config::OrgConfig) -> anyhow::Result<Running> {
    let http = TcpListener::bind("127.0.0.1:0").await?;
    let grpc = TcpListener::bind("127.0.0.1:0").await?;
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let dir = dir.to_path_buf();
    let done = tokio::spawn(async move {
        incidentd::serve(
            http,
            grpc,
            &dir,
            config,
            async {
                let _ = stop_rx.await;
            },
            Some(ready_tx),
        )
        .await
    });
    let ready = ready_rx.await.context("server did not become ready")?;
    Ok(Running {
        grpc: ready.grpc,
        stop,
        done,
        ready,
    })
}

impl Running {
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.done.await?
    }
}

async fn channels(addr: std::net::SocketAddr, n: usize) -> anyhow::Result<Vec<Channel>> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(Channel::from_shared(format!("http://{addr}"))?.connect().await?);
    }
    Ok(out)
}

fn declare_req(i: usize) -> pb::DeclareIncidentRequest {
    pb::DeclareIncidentRequest {
        title: format!("bench incident {i}"),
        team: "payments".into(),
        services: vec!["payments-api".into()],
        severity: pb::Severity::Sev2 as i32,
        by: "alice".into(),
        ..Default::default()
    }
}

async fn core(
    clients: usize,
    connections: usize,
    incidents: usize,
    requests: usize,
    live: usize,
) -> anyhow::Result<()> {
    println!(
        "incidentd core benchmark: {clients} in flight over {connections} connections, {requests} requests per phase"
    );
    let tmp = tempfile::tempdir()?;
    let server = start_server(&tmp.path().join("data")).await?;
    let chans = channels(server.grpc, connections).await?;

    // (a) baseline: a no-op unary RPC through the same tonic server.
    let health: Vec<_> = chans
        .iter()
        .cloned()
        .map(tonic_health::pb::health_client::HealthClient::new)
        .collect();
    let health = Arc::new(health);
    let warm = health.clone();
    drive(clients, requests / 4, move |i| {
        let mut c = warm[i % warm.len()].clone();
        async move {
            c.check(tonic_health::pb::HealthCheckRequest { service: String::new() })
                .await?;
            Ok(())
        }
    })
    .await?;
    let h = health.clone();
    let a = drive(clients, requests, move |i| {
        let mut c = h[i % h.len()].clone();
        async move {
            c.check(tonic_health::pb::HealthCheckRequest { service: String::new() })
                .await?;
            Ok(())
        }
    })
    .await?;

    // (c) DeclareIncident (also creates the incidents (b) writes to).
    let clients_pb: Arc<Vec<IncidentServiceClient<Channel>>> =
        Arc::new(chans.iter().cloned().map(IncidentServiceClient::new).collect());
    let ids = Arc::new(std::sync::Mutex::new(Vec::with_capacity(incidents)));
    let (cl, ids2) = (clients_pb.clone(), ids.clone());
    let declares = requests.max(incidents);
    let c = drive(clients, declares, move |i| {
        let mut c = cl[i % cl.len()].clone();
        let ids = ids2.clone();
        async move {
            let inc = c.declare_incident(declare_req(i)).await?.into_inner();
            if let Ok(mut g) = ids.lock()
                && g.len() < incidents
            {
                g.push(inc.id);
            }
            Ok(())
        }
    })
    .await?;
    let ids: Arc<Vec<String>> = Arc::new(ids.lock().map(|g| g.clone()).unwrap_or_default());

    // (b) AddTimelineEntry, durable acks, spread over the incidents.
    let before = server_store_stats(&server);
    let (cl, ids2) = (clients_pb.clone(), ids.clone());
    let b = drive(clients, requests, move |i| {
        let mut c = cl[i % cl.len()].clone();
        let id = ids2[i % ids2.len()].clone();
        async move {
            c.add_timeline_entry(pb::AddTimelineEntryRequest {
                id,
                kind: pb::EntryKind::Note as i32,
                text: format!("bench note {i}: observed error rate 12% on payments-api"),
                author: "alice".into(),
                ..Default::default()
            })
            .await?;
            Ok(())
        }
    })
    .await?;
    let after = server_store_stats(&server);
    let syncs = after.syncs.saturating_sub(before.syncs).max(1);
    let appends = after.appends.saturating_sub(before.appends);
    let batch = (appends as f64 / syncs as f64).max(1.0);
    let bytes_per_append = (after.bytes.saturating_sub(before.bytes) as f64 / appends.max(1) as f64).max(1.0);

    // (b0) raw append + fdatasync, same record size and batch size, no framing or sled.
    let raw_path = tmp.path().join("raw.log");
    let raw_batches = (requests as f64 / batch).ceil() as usize;
    let raw_elapsed = incidentd_store::raw::append_and_sync_batches(
        &raw_path,
        bytes_per_append as usize,
        batch.round() as usize,
        raw_batches,
    )?;
    let raw_rate = (raw_batches as f64 * batch.round()) / raw_elapsed.as_secs_f64();

    println!();
    println!("{}", a.line("(a) no-op tonic RPC (baseline)"));
    println!("{}", b.line("(b) AddTimelineEntry, durable"));
    println!(
        "{:<44} {:>9.0} appends/s  ({:.1} appends per fdatasync, {:.0} B each)",
        "(b0) raw log append + fdatasync, same batches", raw_rate, batch, bytes_per_append
    );
    println!("{}", c.line("(c) DeclareIncident, durable"));
    println!();
    println!(
        "(b)/(a)  = {:.2}   (target >= 0.3; p99 target < 20 ms)",
        b.rate() / a.rate()
    );
    println!("(b)/(b0) = {:.2}", b.rate() / raw_rate);
    println!("(c)/(a)  = {:.2}", c.rate() / a.rate());
    drop(chans);
    server.stop().await?;

    if live > 0 {
        live_incidents(live, clients, connections).await?;
    }
    Ok(())
}

fn server_store_stats(r: &Running) -> incidentd_store::StoreStats {
    r.ready.store.stats()
}

async fn live_incidents(live: usize, clients: usize, connections: usize) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("data");
    let rss0 = rss_bytes();
    let server = start_server(&dir).await?;
    let chans = channels(server.grpc, connections).await?;
    let cl: Arc<Vec<IncidentServiceClient<Channel>>> =
        Arc::new(chans.iter().cloned().map(IncidentServiceClient::new).collect());
    let d = drive(clients, live, move |i| {
        let mut c = cl[i % cl.len()].clone();
        async move {
            c.declare_incident(declare_req(i)).await?;
            Ok(())
        }
    })
    .await?;
    drop(chans);
    let rss1 = rss_bytes();
    server.stop().await?;
    let restarted = start_server(&dir).await?;
    let rec = restarted.ready.clone();
    let rss2 = rss_bytes();
    restarted.stop().await?;
    println!();
    println!("{}", d.line(&format!("(d) {live} declarations")));
    println!(
        "(d) resident memory: {:.1} KB per live incident ({} MB for {live}; target <= 16 KB)",
        (rss1.saturating_sub(rss0)) as f64 / live as f64 / 1024.0,
        rss1.saturating_sub(rss0) / (1 << 20)
    );
    println!(
        "(d) recovery after restart: {:.2} s for {} incidents ({} live); target < 3 s; resident after recovery {} MB",
        rec.recovery.as_secs_f64(),
        rec.incidents,
        rec.live,
        rss2 / (1 << 20)
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match args.what {
        What::Core {
            clients,
            connections,
            incidents,
            requests,
            live,
        } => rt.block_on(core(clients, connections, incidents, requests, live)),
        What::Alerts {
            alerts,
            clients,
            streams,
            batch,
            groups,
            only,
            rounds,
        } => rt.block_on(alerts::run(alerts::AlertArgs {
            alerts,
            clients,
            streams,
            batch,
            groups,
            only,
            rounds,
        })),
        What::Notify {
            rate,
            secs,
            lanes,
            incidents,
            clients,
            max_events,
        } => rt.block_on(notify::run(notify::NotifyArgs {
            rate,
            secs,
            lanes,
            incidents,
            clients,
            max_events,
        })),
        What::Timers {
            live,
            burst,
            idle_secs,
            clients,
            connections,
        } => rt.block_on(timers::run(live, burst, idle_secs, clients, connections)),
        What::Status {
            secs,
            connections,
            probes,
        } => rt.block_on(status::run(secs, connections, probes)),
        What::Org(a) => rt.block_on(org::run(a)),
    }
}
