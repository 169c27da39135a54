//! `incidentd-bench timers`: what armed timers cost and how late they fire.
//!
//! 1. L live incidents are declared (team payments, every deadline an hour
//!    away), each incident actor arming its one timer: resident memory per
//!    incident, then process CPU over an idle window.
//! 2. B incidents of team data are declared as fast as the server takes
//!    them, with a 10 s acknowledgement deadline, so B deadlines fall due
//!    within about one second. A `WatchIncidents` stream receives the B
//!    `checklist_missed` events. Lateness is measured twice: when the actor
//!    decided (event time − due time) and when the durable event reached the
//!    watcher (arrival − due time).
//! 3. Baseline, same run: B bare tokio tasks sleeping until the same due
//!    times (what the runtime's timer wheel alone gives).

use crate::{Running, channels, cpu_time_of, drive, rss_bytes, start_server_with};
use incidentd_proto::v1 as pb;
use incidentd_proto::v1::incident_service_client::IncidentServiceClient;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

/// The acknowledgement deadline of the burst team.
const BURST_AFTER_SECS: i64 = 10;

fn bench_config() -> anyhow::Result<incidentd_config::OrgConfig> {
    let demo = incidentd_config::DEMO_TOML;
    let marker = "# Per-team policy overrides are merged over [policy], e.g.:\n";
    anyhow::ensure!(demo.contains(marker), "demo config changed: no team policy marker");
    let data_policy = format!(
        "[teams.policy]\nchecklist = {{ acknowledge = \"{BURST_AFTER_SECS}s\", severity_and_commander = \"1h\", team_assembled = \"1h\", investigation_plan = \"1h\" }}\n"
    );
    let text = format!(
        "{}\n[policy]\nchecklist = {{ acknowledge = \"1h\", severity_and_commander = \"1h\", team_assembled = \"1h\", investigation_plan = \"1h\" }}\n",
        demo.replacen(marker, &data_policy, 1)
    );
    Ok(incidentd_config::OrgConfig::from_toml_str(&text)?)
}

fn declare(i: usize, team: &str) -> pb::DeclareIncidentRequest {
    pb::DeclareIncidentRequest {
        title: format!("timer bench incident {i}"),
        team: team.into(),
        severity: pb::Severity::Sev3 as i32,
        by: "alice".into(),
        ..Default::default()
    }
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

struct Lateness(Vec<i64>);

impl Lateness {
    fn pct(&self, p: f64) -> i64 {
        let mut v = self.0.clone();
        v.sort_unstable();
        v.get(((v.len().saturating_sub(1)) as f64 * p).round() as usize)
            .copied()
            .unwrap_or(0)
    }
    fn line(&self, name: &str) -> String {
        format!(
            "{name:<52} p50 {:>5} ms   p99 {:>5} ms   max {:>5} ms",
            self.pct(0.5),
            self.pct(0.99),
            self.pct(1.0)
        )
    }
}

pub async fn run(live: usize, burst: usize, idle_secs: u64, clients: usize, connections: usize) -> anyhow::Result<()> {
    println!("incidentd timer benchmark: {live} live incidents with armed timers, {burst} deadlines due together");
    let tmp = tempfile::tempdir()?;
    let rss0 = rss_bytes();
    let server: Running = start_server_with(&tmp.path().join("data"), bench_config()?).await?;
    let chans = channels(server.grpc, connections).await?;
    let cl: Arc<Vec<IncidentServiceClient<Channel>>> =
        Arc::new(chans.iter().cloned().map(IncidentServiceClient::new).collect());

    // 1. Live incidents, each with its timer armed an hour out.
    let c = cl.clone();
    let d = drive(clients, live, move |i| {
        let mut c = c[i % c.len()].clone();
        async move {
            c.declare_incident(declare(i, "payments")).await?;
            Ok(())
        }
    })
    .await?;
    let rss1 = rss_bytes();
    let cpu0 = cpu_time_of("self");
    let idle_started = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let idle_cpu = (cpu_time_of("self") - cpu0).as_secs_f64() / idle_started.elapsed().as_secs_f64();

    // 2. The burst: B deadlines within about a second, watched over gRPC.
    let mut watcher = cl[0].clone();
    let mut stream = watcher
        .watch_incidents(pb::WatchIncidentsRequest {
            team: "data".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let c = cl.clone();
    let dues = Arc::new(std::sync::Mutex::new(Vec::with_capacity(burst)));
    let dues2 = dues.clone();
    drive(clients, burst, move |i| {
        let mut c = c[i % c.len()].clone();
        let dues = dues2.clone();
        async move {
            let inc = c.declare_incident(declare(i, "data")).await?.into_inner();
            let declared = inc
                .declared_at
                .map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000);
            if let Ok(mut g) = dues.lock() {
                g.push(declared + BURST_AFTER_SECS * 1000);
            }
            Ok(())
        }
    })
    .await?;
    let dues: Vec<i64> = dues.lock().map(|g| g.clone()).unwrap_or_default();
    let (first_due, last_due) = (
        dues.iter().copied().min().unwrap_or(0),
        dues.iter().copied().max().unwrap_or(0),
    );
    anyhow::ensure!(
        wall_ms() < first_due,
        "declaring the burst took longer than its deadline; use a smaller --burst"
    );
    let mut decided = Vec::with_capacity(burst);
    let mut delivered = Vec::with_capacity(burst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(BURST_AFTER_SECS as u64 + 60);
    while delivered.len() < burst {
        let ev = tokio::time::timeout_at(deadline, stream.next())
            .await
            .map_err(|_| anyhow::anyhow!("only {} of {burst} deadlines fired in time", delivered.len()))?
            .ok_or_else(|| anyhow::anyhow!("watch stream ended"))??;
        let arrived = wall_ms();
        if ev.r#type != "checklist_missed" {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&ev.json)?;
        let due = v["due_at"].as_i64().unwrap_or(0);
        let at = ev.at.map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000);
        decided.push(at - due);
        delivered.push(arrived - due);
    }
    drop(stream);
    drop(chans);
    server.stop().await?;

    // 3. Baseline: bare tokio timers at the same due times.
    let base_start = wall_ms();
    let offset = base_start + 2_000 - first_due;
    let mut tasks = Vec::with_capacity(dues.len());
    for due in &dues {
        let due = due + offset;
        tasks.push(tokio::spawn(async move {
            let wait = (due - wall_ms()).max(0) as u64;
            tokio::time::sleep(Duration::from_millis(wait)).await;
            wall_ms() - due
        }));
    }
    let mut bare = Vec::with_capacity(tasks.len());
    for t in tasks {
        bare.push(t.await?);
    }

    let (decided, delivered, bare) = (Lateness(decided), Lateness(delivered), Lateness(bare));
    println!();
    println!("{}", d.line(&format!("{live} declarations (timers armed)")));
    println!(
        "resident memory: {:.1} KB per live incident with its timer ({} MB for {live})",
        rss1.saturating_sub(rss0) as f64 / live.max(1) as f64 / 1024.0,
        rss1.saturating_sub(rss0) / (1 << 20)
    );
    println!(
        "idle CPU with {live} armed timers: {:.2} % of one core over {idle_secs} s (target < 2 %)",
        idle_cpu * 100.0
    );
    println!(
        "burst: {burst} deadlines due within {:.2} s",
        (last_due - first_due) as f64 / 1000.0
    );
    println!("{}", bare.line("(t0) bare tokio timers, same due times (baseline)"));
    println!("{}", decided.line("(t1) incident actors: deadline fired (decided)"));
    println!("{}", delivered.line("(t2) event durable and at a gRPC watcher"));
    println!(
        "(t2) p99 = {} ms (target < 100 ms); (t2) p99 − (t0) p99 = {} ms",
        delivered.pct(0.99),
        delivered.pct(0.99) - bare.pct(0.99)
    );
    Ok(())
}
