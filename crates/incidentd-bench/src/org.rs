//! `incidentd-bench org` (issue 8): a load harness that simulates an
//! organisation against the real `incidentd` binary (release build, its own
//! process, started without `--dev` on `127.0.0.1:0` with a temporary data dir).
//!
//! * The org: `--teams` teams, each with six people (incident commander,
//!   comms lead, a deputy, three SMEs), two services (the first 20 teams' APIs
//!   are status page components) and one person token (the commander's:
//!   read / respond / command on its own team; the config holds only its
//!   SHA-256), plus one admin token (all teams). No destinations and no
//!   `[smtp]`: the notifier routes to nothing. Checklist deadlines are an
//!   hour: the setup declares thousands of incidents within seconds, and the
//!   playbook's 2-15 minutes would make them all fall due in the same second.
//!   Every call carries `authorization: Bearer <its team's token>` and names
//!   the token's person in `by` / `author` (right before and after token
//!   enforcement).
//! * Setup: `--live` incidents declared over the teams (closed loop, measured).
//! * The mixed workload, open loop at `--rate` ops/s for `--duration`: 35%
//!   AddTimelineEntry, 10% PostUpdate internal, 5% PostUpdate customer, 6%
//!   AssignRole SME (a new track), 4% AssignRole comms lead (handover), 3%
//!   SetSeverity, 2% SetStatus, 4% DeclareIncident, 1% ResolveIncident (of
//!   incidents the workload declared, oldest first), 20% ListIncidents (a
//!   team's active incidents, pages of 20, a third of them the next page),
//!   10% GetIncident; `--watches` long-lived WatchIncident / WatchIncidents
//!   streams count events (and WatchIncident checks versions are gap-free,
//!   across restarts too). Latency runs from each operation's scheduled send
//!   time (no coordinated omission); at most `--max-in-flight` operations are
//!   outstanding, later ones wait and their wait counts. Per RPC: p50 / p99 /
//!   max and errors by code; the server's resident memory and CPU; beside a
//!   same-run baseline (no-op `grpc.health.v1` Check, closed loop).
//! * Every acknowledged write goes to an ack log (a file of fixed-size
//!   records: incident, version answered, what to find: a marker `[L<n>]` in
//!   the text it wrote, the update's timeline line, the new comms lead).
//!   Verification reads it back in slices of incidents (bounded memory) and
//!   checks each against `GetIncident` + `GetTimeline`.
//! * `--crash`: each of `--cycles` cycles runs the workload and `kill -9`s
//!   the server after a seeded random delay (30-100% of `--duration`), restarts
//!   it on the same data dir, and verifies every write acknowledged so far.
//!   Requests in flight at the kill may fail; only acknowledged ones count.

use crate::{Stats, cpu_time_of, drive, rss_bytes_of};
use anyhow::Context;
use incidentd_proto::v1 as pb;
use incidentd_proto::v1::incident_service_client::IncidentServiceClient;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Semaphore, watch};
use tokio_stream::StreamExt;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;

#[derive(clap::Args, Debug)]
pub struct OrgArgs {
    /// Teams in the generated org.
    #[arg(long, default_value_t = 200)]
    teams: usize,
    /// Live incidents declared before the workload.
    #[arg(long, default_value_t = 10_000)]
    live: usize,
    /// Target rate of the mixed workload, operations per second (open loop).
    #[arg(long, default_value_t = 5000)]
    rate: u64,
    /// Length of the mixed workload (per cycle with --crash), e.g. "30s".
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// gRPC connections the teams' clients spread over.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Long-lived watch streams (1 in 8 WatchIncidents, the rest WatchIncident).
    #[arg(long, default_value_t = 64)]
    watches: usize,
    /// Operations outstanding at most; later ones wait (and the wait counts in their latency).
    #[arg(long, default_value_t = 4096)]
    max_in_flight: usize,
    /// kill -9 the server under load, restart it, verify every acknowledged write.
    #[arg(long)]
    crash: bool,
    /// Crash cycles (with --crash).
    #[arg(long, default_value_t = 20)]
    cycles: usize,
    /// Seed of the workload and of the kill times.
    #[arg(long, default_value_t = 8)]
    seed: u64,
    /// The incidentd binary; default: `cargo build --release -p incidentd`, then the target dir's.
    #[arg(long)]
    server: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    incidentd_config::parse_duration(s).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------
// The org

const PEOPLE: [&str; 6] = ["ic", "comms", "deputy", "sme1", "sme2", "sme3"];
/// Teams whose API is a status page component.
const ON_STATUS_PAGE: usize = 20;

struct Team {
    id: String,
    auth: AsciiMetadataValue,
}

impl Team {
    fn person(&self, role: &str) -> String {
        format!("{}-{role}", self.id)
    }
    fn api(&self) -> String {
        format!("{}-api", self.id)
    }
}

struct Org {
    teams: Vec<Team>,
    admin: AsciiMetadataValue,
    toml: String,
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn bearer(token: &str) -> anyhow::Result<AsciiMetadataValue> {
    Ok(format!("Bearer {token}").parse()?)
}

fn org(teams: usize, rng: &mut fastrand::Rng) -> anyhow::Result<Org> {
    use std::fmt::Write as _;
    let mut t = String::from(
        "[org]\nname = \"Load Org\"\ndefault_team = \"t000\"\nunclear_severity = \"SEV1\"\n\
         status_page_title = \"Load Org Status\"\n\n\
         [contacts]\nengineering_leadership = [\"leadership@example.com\"]\n\
         executives = [\"exec@example.com\"]\nlegal = [\"legal@example.com\"]\n\n\
         [policy]\nchecklist = { acknowledge = \"1h\", severity_and_commander = \"1h\", \
         team_assembled = \"1h\", investigation_plan = \"1h\" }\n\n\
         [access]\nrate_per_token = 100000\nburst_per_token = 100000\n\n",
    );
    // ^ The verifier reads every acknowledged write back through one admin
    // token: the default per-token limit (200/s) would throttle it. The
    // workload's own tokens stay far below any limit (rate / teams each).
    let mut secret = |who: &str| format!("load-{who}-{:016x}{:016x}", rng.u64(..), rng.u64(..));
    let mut out = Vec::with_capacity(teams);
    for i in 0..teams {
        let id = format!("t{i:03}");
        let token = secret(&id);
        writeln!(t, "[[teams]]\nid = \"{id}\"\nname = \"Team {i}\"\n")?;
        for role in PEOPLE {
            writeln!(
                t,
                "[[people]]\nid = \"{id}-{role}\"\nname = \"{role} of team {i}\"\n\
                 email = \"{id}-{role}@example.com\"\nchat = \"@{id}-{role}\"\nteams = [\"{id}\"]\n"
            )?;
        }
        writeln!(
            t,
            "[[services]]\nid = \"{id}-api\"\nname = \"API {i}\"\nteam = \"{id}\"\ntier = \"core\"\n\
             status_page = {}\ngroup = \"APIs\"\n\n\
             [[services]]\nid = \"{id}-worker\"\nname = \"Worker {i}\"\nteam = \"{id}\"\ntier = \"non-core\"\n",
            i < ON_STATUS_PAGE
        )?;
        writeln!(
            t,
            "[[tokens]]\nid = \"{id}-ic\"\nsha256 = \"{}\"\nperson = \"{id}-ic\"\n\
             scopes = [\"read\", \"respond\", \"command\"]\nteams = [\"{id}\"]\n",
            sha256_hex(&token)
        )?;
        out.push(Team {
            auth: bearer(&token)?,
            id,
        });
    }
    let admin = secret("admin");
    writeln!(
        t,
        "[[people]]\nid = \"org-admin\"\nname = \"Org admin\"\nteams = [\"t000\"]\n\n\
         [[tokens]]\nid = \"org-admin\"\nsha256 = \"{}\"\nperson = \"org-admin\"\n\
         scopes = [\"read\", \"respond\", \"command\", \"admin\"]\nteams = [\"*\"]",
        sha256_hex(&admin)
    )?;
    incidentd_config::OrgConfig::from_toml_str(&t).context("the generated org config")?;
    Ok(Org {
        teams: out,
        admin: bearer(&admin)?,
        toml: t,
    })
}

// ---------------------------------------------------------------------------
// The server process

struct Server {
    child: tokio::process::Child,
    pid: u32,
    grpc: String,
    ready: String,
}

/// `cargo build --release -p incidentd` (unless `--server`), then the binary's path.
fn server_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p);
    }
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = std::process::Command::new(cargo)
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "incidentd",
            "--manifest-path",
            manifest,
        ])
        .status()
        .context("run cargo build")?;
    anyhow::ensure!(built.success(), "cargo build --release -p incidentd failed");
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        // target/<profile>/incidentd-bench → target
        None => std::env::current_exe()?
            .parent()
            .and_then(Path::parent)
            .context("target dir")?
            .to_path_buf(),
    };
    Ok(target.join("release").join("incidentd"))
}

impl Server {
    /// Starts the binary and waits for its `incidentd ready` line.
    async fn start(bin: &Path, dir: &Path) -> anyhow::Result<Server> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))?;
        let mut child = tokio::process::Command::new(bin)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--config")
            .arg(dir.join("org.toml"))
            .args(["--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let pid = child.id().context("no pid")?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let mut grpc = String::new();
        let ready = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(a) = line.strip_prefix("incidentd grpc listening on ") {
                    grpc = a.to_string();
                } else if line.starts_with("incidentd ready") {
                    return anyhow::Ok(line);
                }
            }
            anyhow::bail!(
                "incidentd exited before it was ready (see {})",
                dir.join("server.log").display()
            )
        })
        .await
        .context("incidentd not ready within 120 s")??;
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Server {
            child,
            pid,
            grpc,
            ready,
        })
    }

    async fn kill9(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    async fn terminate(mut self) -> anyhow::Result<()> {
        std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()?;
        self.child.wait().await?;
        Ok(())
    }

    /// The pid as `/proc` names it.
    fn proc(&self) -> String {
        self.pid.to_string()
    }
}

/// One value (kB) of `/proc/<pid>/status`, e.g. `VmHWM`.
fn proc_status_kb(pid: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The connections of one server lifetime.
struct Clients {
    chans: Vec<Channel>,
}

impl Clients {
    async fn connect(addr: &str, n: usize) -> anyhow::Result<Clients> {
        let addr: std::net::SocketAddr = addr.parse()?;
        Ok(Clients {
            chans: crate::channels(addr, n.max(1)).await?,
        })
    }
    fn incidents(&self, team: usize) -> IncidentServiceClient<Channel> {
        IncidentServiceClient::new(self.chans[team % self.chans.len()].clone())
    }
}

/// A request with its bearer token and a deadline.
fn req<T>(msg: T, auth: &AsciiMetadataValue) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert("authorization", auth.clone());
    r.set_timeout(Duration::from_secs(10));
    r
}

// ---------------------------------------------------------------------------
// Latency histograms: fixed memory whatever the run's length.

/// Exact below 64 µs, then 64 buckets per power of two (under 1.6% error).
struct Hist {
    counts: Vec<u64>,
    n: u64,
    max: u64,
}

const SUB: u64 = 64;

impl Hist {
    fn new() -> Hist {
        Hist {
            counts: vec![0; 64 * 59],
            n: 0,
            max: 0,
        }
    }
    fn bucket(us: u64) -> usize {
        if us < SUB {
            return us as usize;
        }
        let p = 63 - u64::from(us.leading_zeros());
        let shift = p - 6;
        ((p - 5) * SUB + ((us >> shift) - SUB)) as usize
    }
    /// The largest value of bucket `i`.
    fn upper(i: usize) -> u64 {
        let i = i as u64;
        if i < SUB {
            return i;
        }
        let (g, sub) = (i / SUB, i % SUB);
        ((SUB + sub + 1) << (g - 1)) - 1
    }
    fn record(&mut self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX >> 1)) as u64;
        self.counts[Self::bucket(us)] += 1;
        self.n += 1;
        self.max = self.max.max(us);
    }
    fn merge(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.n += o.n;
        self.max = self.max.max(o.max);
    }
    fn pct_ms(&self, p: f64) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let rank = ((self.n as f64 * p).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::upper(i).min(self.max) as f64 / 1e3;
            }
        }
        self.max as f64 / 1e3
    }
}

/// Latencies of successful calls and errors by code, per RPC.
#[derive(Default)]
struct Recorder {
    lat: Mutex<BTreeMap<&'static str, Hist>>,
    errors: Mutex<BTreeMap<(&'static str, String), u64>>,
}

impl Recorder {
    fn ok(&self, rpc: &'static str, d: Duration) {
        if let Ok(mut m) = self.lat.lock() {
            m.entry(rpc).or_insert_with(Hist::new).record(d);
        }
    }
    fn err(&self, rpc: &'static str, s: &tonic::Status) {
        if let Ok(mut m) = self.errors.lock() {
            *m.entry((rpc, format!("{:?}", s.code()))).or_default() += 1;
        }
    }
    fn completed(&self) -> (u64, u64) {
        let ok = self.lat.lock().map(|m| m.values().map(|h| h.n).sum()).unwrap_or(0);
        let err = self.errors.lock().map(|m| m.values().sum()).unwrap_or(0);
        (ok, err)
    }
    fn print(&self, target_ms: f64) {
        let Ok(lat) = self.lat.lock() else { return };
        let errors = self.errors.lock().map(|m| m.clone()).unwrap_or_default();
        println!(
            "  {:<26} {:>8} {:>7} {:>9} {:>9} {:>9}",
            "RPC", "ok", "errors", "p50 ms", "p99 ms", "max ms"
        );
        let mut mutating = Hist::new();
        let row = |name: &str, h: &Hist, errs: u64| {
            println!(
                "  {name:<26} {:>8} {errs:>7} {:>9.2} {:>9.2} {:>9.2}",
                h.n,
                h.pct_ms(0.5),
                h.pct_ms(0.99),
                h.max as f64 / 1e3
            );
        };
        for op in Op::ALL {
            let name = op.rpc();
            let errs = errors.iter().filter(|((r, _), _)| *r == name).map(|(_, n)| n).sum();
            let empty = Hist::new();
            let h = lat.get(name).unwrap_or(&empty);
            if op.mutating() {
                mutating.merge(h);
            }
            row(name, h, errs);
        }
        let errs: u64 = errors
            .iter()
            .filter(|((r, _), _)| Op::ALL.iter().any(|o| o.mutating() && o.rpc() == *r))
            .map(|(_, n)| n)
            .sum();
        row("all mutating RPCs", &mutating, errs);
        if errors.is_empty() {
            println!("  errors by code: none");
        } else {
            let list: Vec<String> = errors.iter().map(|((r, c), n)| format!("{r} {c} x{n}")).collect();
            println!("  errors by code: {}", list.join(", "));
        }
        let p99 = mutating.pct_ms(0.99);
        println!(
            "  mutating p99 {p99:.2} ms: target < {target_ms:.0} ms {}",
            if p99 < target_ms { "met" } else { "MISSED" }
        );
    }
    fn mutating_p99_ms(&self) -> f64 {
        let mut all = Hist::new();
        if let Ok(m) = self.lat.lock() {
            for op in Op::ALL.iter().filter(|o| o.mutating()) {
                if let Some(h) = m.get(op.rpc()) {
                    all.merge(h);
                }
            }
        }
        all.pct_ms(0.99)
    }
}

// ---------------------------------------------------------------------------
// Incidents the harness knows, and its log of acknowledgements

/// One incident and what the harness last saw of it (to pick changes that change something).
struct Slot {
    id: String,
    team: usize,
    severity: AtomicU8,
    status: AtomicU8,
    /// 0 none, 1 the team's comms lead, 2 its deputy.
    comms: AtomicU8,
    resolved: AtomicBool,
    /// A state-changing call is in flight.
    busy: AtomicBool,
    /// A state-changing call failed: state unknown until the next verification.
    dirty: AtomicBool,
}

impl Slot {
    fn new(inc: &pb::Incident, team: usize) -> Slot {
        let s = Slot {
            id: inc.id.clone(),
            team,
            severity: AtomicU8::new(0),
            status: AtomicU8::new(0),
            comms: AtomicU8::new(0),
            resolved: AtomicBool::new(false),
            busy: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
        };
        s.saw(inc);
        s
    }
    fn saw(&self, inc: &pb::Incident) {
        self.severity.store(inc.severity as u8, Ordering::Relaxed);
        self.status.store(inc.status as u8, Ordering::Relaxed);
        let comms = inc.roster.as_ref().map(|r| r.comms_lead.as_str()).unwrap_or("");
        let who = if comms.ends_with("-comms") {
            1
        } else if comms.ends_with("-deputy") {
            2
        } else {
            0
        };
        self.comms.store(who, Ordering::Relaxed);
        self.resolved
            .store(inc.status == pb::Status::Resolved as i32, Ordering::Relaxed);
    }
    fn open(&self) -> bool {
        !self.resolved.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
struct Pool {
    slots: RwLock<Vec<Arc<Slot>>>,
    /// Incidents the workload declared, oldest first: what it resolves.
    fresh: Mutex<VecDeque<u32>>,
}

impl Pool {
    fn push(&self, slot: Slot, fresh: bool) -> u32 {
        let i = self
            .slots
            .write()
            .map(|mut v| {
                v.push(Arc::new(slot));
                v.len() as u32 - 1
            })
            .unwrap_or(0);
        if fresh && let Ok(mut f) = self.fresh.lock() {
            f.push_back(i);
        }
        i
    }
    fn len(&self) -> usize {
        self.slots.read().map(|v| v.len()).unwrap_or(0)
    }
    fn get(&self, i: u32) -> Option<Arc<Slot>> {
        self.slots.read().ok()?.get(i as usize).cloned()
    }
    /// A random open incident (any, if `state` is false; else one with no state change in flight).
    fn pick(&self, rng: &mut fastrand::Rng, state: bool) -> Option<(u32, Arc<Slot>)> {
        let v = self.slots.read().ok()?;
        for _ in 0..8 {
            let i = rng.usize(..v.len().max(1));
            let s = v.get(i)?;
            if !s.open() || (state && s.dirty.load(Ordering::Relaxed)) {
                continue;
            }
            if state && s.busy.swap(true, Ordering::AcqRel) {
                continue;
            }
            return Some((i as u32, s.clone()));
        }
        None
    }
    /// The oldest incident the workload declared and has not resolved, claimed.
    fn pick_fresh(&self) -> Option<(u32, Arc<Slot>)> {
        let mut f = self.fresh.lock().ok()?;
        for _ in 0..f.len() {
            let i = f.pop_front()?;
            let s = self.get(i)?;
            if s.open() && !s.dirty.load(Ordering::Relaxed) && !s.busy.swap(true, Ordering::AcqRel) {
                return Some((i, s));
            }
            if s.open() {
                f.push_back(i);
            }
        }
        None
    }
}

/// What an acknowledged write must have left in the incident's timeline.
#[derive(Clone, Copy, Debug)]
enum Check {
    /// AddTimelineEntry: entry `seq` carries marker `[L<n>]`.
    Entry { seq: u64, marker: u64 },
    /// PostUpdate: the entry of version `version` reads "<Kind> update #<seq> posted".
    Update { seq: u64, customer: bool },
    /// Declare, SME track, severity reason, status or resolution note: marker `[L<n>]` somewhere.
    Marker(u64),
    /// AssignRole comms lead: an entry up to its version names the person as comms lead.
    Comms { deputy: bool },
}

#[derive(Clone, Copy, Debug)]
struct Ack {
    slot: u32,
    version: u64,
    check: Check,
}

const ACK_BYTES: usize = 32;

impl Ack {
    fn encode(&self) -> [u8; ACK_BYTES] {
        let (tag, a, b) = match self.check {
            Check::Entry { seq, marker } => (0u32, seq, marker),
            Check::Update { seq, customer } => (1, seq, u64::from(customer)),
            Check::Marker(m) => (2, m, 0),
            Check::Comms { deputy } => (3, u64::from(deputy), 0),
        };
        let mut out = [0u8; ACK_BYTES];
        out[0..4].copy_from_slice(&self.slot.to_le_bytes());
        out[4..8].copy_from_slice(&tag.to_le_bytes());
        out[8..16].copy_from_slice(&self.version.to_le_bytes());
        out[16..24].copy_from_slice(&a.to_le_bytes());
        out[24..32].copy_from_slice(&b.to_le_bytes());
        out
    }
    fn decode(r: &[u8]) -> Option<Ack> {
        let u32_at = |i: usize| Some(u32::from_le_bytes(r.get(i..i + 4)?.try_into().ok()?));
        let u64_at = |i: usize| Some(u64::from_le_bytes(r.get(i..i + 8)?.try_into().ok()?));
        let (a, b) = (u64_at(16)?, u64_at(24)?);
        let check = match u32_at(4)? {
            0 => Check::Entry { seq: a, marker: b },
            1 => Check::Update {
                seq: a,
                customer: b == 1,
            },
            2 => Check::Marker(a),
            _ => Check::Comms { deputy: a == 1 },
        };
        Some(Ack {
            slot: u32_at(0)?,
            version: u64_at(8)?,
            check,
        })
    }
}

/// The harness's own log of acknowledged writes: a file, so its memory stays flat.
struct AckLog {
    path: PathBuf,
    out: Mutex<std::io::BufWriter<std::fs::File>>,
    count: AtomicU64,
}

impl AckLog {
    fn create(path: PathBuf) -> anyhow::Result<AckLog> {
        let f = std::fs::File::create(&path)?;
        Ok(AckLog {
            path,
            out: Mutex::new(std::io::BufWriter::new(f)),
            count: AtomicU64::new(0),
        })
    }
    fn record(&self, ack: Ack) {
        if let Ok(mut w) = self.out.lock()
            && w.write_all(&ack.encode()).is_ok()
        {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
    }
    /// The acks of slots `lo..hi`, per slot.
    fn read_slice(&self, lo: usize, hi: usize) -> anyhow::Result<Vec<Vec<Ack>>> {
        self.out
            .lock()
            .map_err(|_| anyhow::anyhow!("ack log poisoned"))?
            .flush()?;
        let mut out = vec![Vec::new(); hi - lo];
        let mut r = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&self.path)?);
        let mut rec = [0u8; ACK_BYTES];
        while r.read_exact(&mut rec).is_ok() {
            if let Some(a) = Ack::decode(&rec)
                && (lo..hi).contains(&(a.slot as usize))
            {
                out[a.slot as usize - lo].push(a);
            }
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// The workload

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Entry,
    Internal,
    Customer,
    Sme,
    Comms,
    Severity,
    Status,
    Declare,
    Resolve,
    List,
    Get,
}

impl Op {
    const ALL: [Op; 11] = [
        Op::Entry,
        Op::Internal,
        Op::Customer,
        Op::Sme,
        Op::Comms,
        Op::Severity,
        Op::Status,
        Op::Declare,
        Op::Resolve,
        Op::List,
        Op::Get,
    ];
    /// Share of the mix, percent.
    fn weight(self) -> u32 {
        match self {
            Op::Entry => 35,
            Op::Internal => 10,
            Op::Customer => 5,
            Op::Sme => 6,
            Op::Comms => 4,
            Op::Severity => 3,
            Op::Status => 2,
            Op::Declare => 4,
            Op::Resolve => 1,
            Op::List => 20,
            Op::Get => 10,
        }
    }
    fn rpc(self) -> &'static str {
        match self {
            Op::Entry => "AddTimelineEntry",
            Op::Internal => "PostUpdate (internal)",
            Op::Customer => "PostUpdate (customer)",
            Op::Sme => "AssignRole (SME)",
            Op::Comms => "AssignRole (comms lead)",
            Op::Severity => "SetSeverity",
            Op::Status => "SetStatus",
            Op::Declare => "DeclareIncident",
            Op::Resolve => "ResolveIncident",
            Op::List => "ListIncidents",
            Op::Get => "GetIncident",
        }
    }
    fn mutating(self) -> bool {
        !matches!(self, Op::List | Op::Get)
    }
    /// Changes severity, status or roster: one at a time per incident, so each changes something.
    fn changes_state(self) -> bool {
        matches!(self, Op::Comms | Op::Severity | Op::Status | Op::Resolve)
    }
    fn draw(rng: &mut fastrand::Rng) -> Op {
        let mut x = rng.u32(..100);
        for op in Op::ALL {
            if x < op.weight() {
                return op;
            }
            x -= op.weight();
        }
        Op::Get
    }
}

struct Ctx {
    org: Org,
    pool: Pool,
    acks: AckLog,
    rec: Recorder,
    marker: AtomicU64,
    /// Per team: the next page token of its last list.
    pages: Vec<Mutex<String>>,
}

impl Ctx {
    fn marker(&self) -> u64 {
        self.marker.fetch_add(1, Ordering::Relaxed)
    }
}

fn severity_of(x: u32) -> pb::Severity {
    match x % 20 {
        0 => pb::Severity::Sev1,
        1..=4 => pb::Severity::Sev2,
        5..=13 => pb::Severity::Sev3,
        _ => pb::Severity::Sev4,
    }
}

/// Declares an incident of `team` (marker in the title) and logs the ack.
async fn declare(ctx: &Ctx, cl: &Clients, team: usize, x: u32, fresh: bool) -> Result<(), tonic::Status> {
    let t = &ctx.org.teams[team];
    let n = ctx.marker();
    let inc = cl
        .incidents(team)
        .declare_incident(req(
            pb::DeclareIncidentRequest {
                title: format!("[L{n}] {} elevated error rate", t.api()),
                team: t.id.clone(),
                services: vec![t.api()],
                severity: severity_of(x) as i32,
                summary: "5xx on checkout calls since 10:02".into(),
                commander: t.person("ic"),
                by: t.person("ic"),
                ..Default::default()
            },
            &t.auth,
        ))
        .await?
        .into_inner();
    let version = inc.version;
    let slot = ctx.pool.push(Slot::new(&inc, team), fresh);
    ctx.acks.record(Ack {
        slot,
        version,
        check: Check::Marker(n),
    });
    Ok(())
}

/// One scheduled operation, its target chosen by the scheduler.
struct Plan {
    op: Op,
    target: Option<(u32, Arc<Slot>)>,
    team: usize,
    x: u32,
}

async fn execute(ctx: &Ctx, cl: &Clients, plan: &Plan) -> Result<(), tonic::Status> {
    let Some((slot, s)) = &plan.target else {
        return match plan.op {
            Op::Declare => declare(ctx, cl, plan.team, plan.x, true).await,
            _ => list(ctx, cl, plan.team, plan.x).await,
        };
    };
    let t = &ctx.org.teams[s.team];
    let ic = t.person("ic");
    let mut c = cl.incidents(s.team);
    let id = s.id.clone();
    let n = ctx.marker();
    let svc = t.api();
    let ack = |version, check| {
        ctx.acks.record(Ack {
            slot: *slot,
            version,
            check,
        })
    };
    let (inc, check) = match plan.op {
        Op::Entry => {
            let kinds = [
                pb::EntryKind::Note,
                pb::EntryKind::Finding,
                pb::EntryKind::Action,
                pb::EntryKind::Decision,
            ];
            let e = c
                .add_timeline_entry(req(
                    pb::AddTimelineEntryRequest {
                        id,
                        kind: kinds[plan.x as usize % 4] as i32,
                        text: format!(
                            "[L{n}] p99 of {svc} up 3x since deploy {}; error budget burning",
                            plan.x
                        ),
                        author: ic,
                        ..Default::default()
                    },
                    &t.auth,
                ))
                .await?
                .into_inner();
            ack(e.version, Check::Entry { seq: e.seq, marker: n });
            return Ok(());
        }
        Op::Internal | Op::Customer => {
            let customer = plan.op == Op::Customer;
            let mut r = pb::PostUpdateRequest {
                id,
                by: ic,
                ..Default::default()
            };
            if customer {
                r.kind = pb::UpdateKind::Customer as i32;
                r.customer_symptom = format!("[L{n}] Some payments fail or take longer than usual");
            } else {
                r.kind = pb::UpdateKind::Internal as i32;
                r.current_theory = format!("[L{n}] connection pool exhaustion on {svc}'s database");
                r.next_steps = "roll back the 10:00 deploy; watch the pool".into();
            }
            let u = c.post_update(req(r, &t.auth)).await?.into_inner();
            ack(u.version, Check::Update { seq: u.seq, customer });
            return Ok(());
        }
        Op::Sme => {
            let r = pb::AssignRoleRequest {
                id,
                role: pb::Role::Sme as i32,
                person: t.person(PEOPLE[3 + plan.x as usize % 3]),
                track: format!("[L{n}] {svc} latency"),
                by: ic,
                ..Default::default()
            };
            (c.assign_role(req(r, &t.auth)).await?, Check::Marker(n))
        }
        Op::Comms => {
            let deputy = s.comms.load(Ordering::Relaxed) == 1;
            let r = pb::AssignRoleRequest {
                id,
                role: pb::Role::CommsLead as i32,
                person: t.person(if deputy { "deputy" } else { "comms" }),
                by: ic,
                ..Default::default()
            };
            (c.assign_role(req(r, &t.auth)).await?, Check::Comms { deputy })
        }
        Op::Severity => {
            let now = u32::from(s.severity.load(Ordering::Relaxed)).clamp(1, 4);
            let to = (now + plan.x % 3) % 4 + 1; // any of the other three
            let r = pb::SetSeverityRequest {
                id,
                severity: to as i32,
                reason: format!("[L{n}] blast radius re-assessed"),
                by: ic,
                ..Default::default()
            };
            (c.set_severity(req(r, &t.auth)).await?, Check::Marker(n))
        }
        Op::Status => {
            let to = match pb::Status::try_from(i32::from(s.status.load(Ordering::Relaxed))) {
                Ok(pb::Status::Investigating) => pb::Status::Identified,
                Ok(pb::Status::Identified) => pb::Status::Mitigating,
                _ => pb::Status::Investigating,
            };
            let r = pb::SetStatusRequest {
                id,
                status: to as i32,
                note: format!("[L{n}] status per the commander"),
                by: ic,
                ..Default::default()
            };
            (c.set_status(req(r, &t.auth)).await?, Check::Marker(n))
        }
        Op::Resolve => {
            let r = pb::ResolveIncidentRequest {
                id,
                note: format!("[L{n}] rolled back; error rate normal for 30 min"),
                by: ic,
                ..Default::default()
            };
            (c.resolve_incident(req(r, &t.auth)).await?, Check::Marker(n))
        }
        Op::Get | Op::List | Op::Declare => {
            c.get_incident(req(pb::GetIncidentRequest { id }, &t.auth)).await?;
            return Ok(());
        }
    };
    // Answered with the incident: note its state, log the ack.
    let inc = inc.into_inner();
    s.saw(&inc);
    ack(inc.version, check);
    Ok(())
}

/// A team's active incidents, a page of 20 (a third of the time the page after its last list).
async fn list(ctx: &Ctx, cl: &Clients, team: usize, x: u32) -> Result<(), tonic::Status> {
    let t = &ctx.org.teams[team];
    let page_token = if x.is_multiple_of(3) {
        ctx.pages[team].lock().map(|p| p.clone()).unwrap_or_default()
    } else {
        String::new()
    };
    let r = cl
        .incidents(team)
        .list_incidents(req(
            pb::ListIncidentsRequest {
                team: t.id.clone(),
                active_only: true,
                page_size: 20,
                page_token,
                ..Default::default()
            },
            &t.auth,
        ))
        .await?
        .into_inner();
    if let Ok(mut p) = ctx.pages[team].lock() {
        *p = r.next_page_token;
    }
    Ok(())
}

/// The scheduler's choice of the next operation and its target.
fn plan(ctx: &Ctx, rng: &mut fastrand::Rng) -> Plan {
    let mut op = Op::draw(rng);
    let team = rng.usize(..ctx.org.teams.len());
    let x = rng.u32(..);
    let target = match op {
        Op::Declare | Op::List => None,
        Op::Resolve => ctx.pool.pick_fresh(),
        _ => ctx.pool.pick(rng, op.changes_state()),
    };
    if target.is_none() && !matches!(op, Op::Declare | Op::List) {
        // Nothing to resolve yet, or no free incident: a read instead.
        op = Op::List;
    }
    Plan { op, target, team, x }
}

struct Offered {
    scheduled: u64,
    elapsed: Duration,
    /// Ops that could not start on time for want of a free in-flight slot.
    late_start: u64,
}

/// Open loop: operation k is due at start + k/rate; it runs as soon as it is
/// due and one of `max_in_flight` permits is free, and its latency counts
/// from when it was due. Stops scheduling at `until`; returns with the last
/// operations possibly still in flight (`inflight` holds their permits).
async fn open_loop(
    ctx: &Arc<Ctx>,
    cl: &Arc<Clients>,
    rate: u64,
    until: Duration,
    inflight: &Arc<Semaphore>,
    rng: &mut fastrand::Rng,
) -> Offered {
    let period = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let start = Instant::now();
    let (mut k, mut late_start) = (0u64, 0u64);
    loop {
        let due = start + period.mul_f64(k as f64);
        if due - start >= until {
            break;
        }
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        let permit = match inflight.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                late_start += 1;
                match inflight.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => break,
                }
            }
        };
        run_one(ctx, cl, plan(ctx, rng), due, permit);
        k += 1;
    }
    Offered {
        scheduled: k,
        elapsed: start.elapsed(),
        late_start,
    }
}

fn run_one(ctx: &Arc<Ctx>, cl: &Arc<Clients>, p: Plan, due: Instant, permit: tokio::sync::OwnedSemaphorePermit) {
    let (ctx, cl) = (ctx.clone(), cl.clone());
    tokio::spawn(async move {
        let r = execute(&ctx, &cl, &p).await;
        match &r {
            Ok(()) => ctx.rec.ok(p.op.rpc(), due.elapsed()),
            Err(s) => ctx.rec.err(p.op.rpc(), s),
        }
        if let Some((_, s)) = &p.target
            && p.op.changes_state()
        {
            if r.is_err() {
                s.dirty.store(true, Ordering::Relaxed);
            }
            s.busy.store(false, Ordering::Release);
        }
        drop(permit);
    });
}

/// Waits for every operation in flight.
async fn drain(inflight: &Arc<Semaphore>, max: usize) -> anyhow::Result<()> {
    let all = inflight.acquire_many(max as u32).await?;
    drop(all);
    Ok(())
}

// ---------------------------------------------------------------------------
// Watches

#[derive(Default)]
struct WatchCounts {
    one_events: AtomicU64,
    many_events: AtomicU64,
    gaps: AtomicU64,
    regressions: AtomicU64,
    reconnects: AtomicU64,
}

type ClientsRx = watch::Receiver<Option<Arc<Clients>>>;

async fn current(rx: &mut ClientsRx) -> Option<Arc<Clients>> {
    rx.wait_for(Option::is_some).await.ok()?.clone()
}

/// WatchIncident on one incident, resumed after every restart from the last
/// version seen: versions must come without gaps, and never go back.
async fn watch_one(ctx: Arc<Ctx>, mut rx: ClientsRx, slot: Arc<Slot>, counts: Arc<WatchCounts>) {
    let auth = ctx.org.teams[slot.team].auth.clone();
    let mut last = 0u64;
    loop {
        let Some(cl) = current(&mut rx).await else { return };
        let mut c = cl.incidents(slot.team);
        if last > 0 {
            counts.reconnects.fetch_add(1, Ordering::Relaxed);
            if let Ok(inc) = c
                .get_incident(req(pb::GetIncidentRequest { id: slot.id.clone() }, &auth))
                .await
                && inc.get_ref().version < last
            {
                counts.regressions.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut r = tonic::Request::new(pb::WatchIncidentRequest {
            id: slot.id.clone(),
            from_version: last,
        });
        r.metadata_mut().insert("authorization", auth.clone());
        if let Ok(s) = c.watch_incident(r).await {
            let mut s = s.into_inner();
            while let Some(Ok(ev)) = s.next().await {
                if ev.version != last + 1 {
                    counts.gaps.fetch_add(1, Ordering::Relaxed);
                }
                last = last.max(ev.version);
                counts.one_events.fetch_add(1, Ordering::Relaxed);
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), rx.changed()).await;
    }
}

/// WatchIncidents on a team (or, without a team, the whole org): counts events.
async fn watch_many(ctx: Arc<Ctx>, mut rx: ClientsRx, team: Option<usize>, counts: Arc<WatchCounts>) {
    let auth = team.map_or(ctx.org.admin.clone(), |t| ctx.org.teams[t].auth.clone());
    loop {
        let Some(cl) = current(&mut rx).await else { return };
        let mut r = tonic::Request::new(pb::WatchIncidentsRequest {
            team: team.map(|t| ctx.org.teams[t].id.clone()).unwrap_or_default(),
            ..Default::default()
        });
        r.metadata_mut().insert("authorization", auth.clone());
        if let Ok(s) = cl.incidents(team.unwrap_or(0)).watch_incidents(r).await {
            let mut s = s.into_inner();
            while let Some(Ok(_)) = s.next().await {
                counts.many_events.fetch_add(1, Ordering::Relaxed);
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), rx.changed()).await;
    }
}

fn start_watches(
    ctx: &Arc<Ctx>,
    rx: &ClientsRx,
    n: usize,
    rng: &mut fastrand::Rng,
) -> (Arc<WatchCounts>, Vec<tokio::task::JoinHandle<()>>, usize) {
    let counts = Arc::new(WatchCounts::default());
    let mut tasks = Vec::new();
    let many = n.div_ceil(8);
    for w in 0..n {
        let (ctx2, rx2, c) = (ctx.clone(), rx.clone(), counts.clone());
        if w < many {
            // The first watches the whole org (admin token), the others a team each.
            let team = (w > 0).then(|| rng.usize(..ctx.org.teams.len()));
            tasks.push(tokio::spawn(watch_many(ctx2, rx2, team, c)));
        } else if let Some((_, slot)) = ctx.pool.pick(rng, false) {
            tasks.push(tokio::spawn(watch_one(ctx2, rx2, slot, c)));
        }
    }
    (counts, tasks, many)
}

// ---------------------------------------------------------------------------
// Verification

#[derive(Default)]
struct Verified {
    acks: AtomicU64,
    ok: AtomicU64,
    lost: AtomicU64,
    examples: Mutex<Vec<String>>,
}

impl Verified {
    fn lose(&self, what: String) {
        self.lost.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut e) = self.examples.lock()
            && e.len() < 5
        {
            e.push(what);
        }
    }
}

/// Markers `[L<n>]` in a text.
fn markers(text: &str, into: &mut HashSet<u64>) {
    for part in text.split("[L").skip(1) {
        if let Some((n, _)) = part.split_once(']')
            && let Ok(n) = n.parse()
        {
            into.insert(n);
        }
    }
}

fn holds(check: Check, version: u64, team: &Team, timeline: &[pb::TimelineEntry], found: &HashSet<u64>) -> bool {
    match check {
        Check::Entry { seq, marker } => timeline
            .get(seq.saturating_sub(1) as usize)
            .is_some_and(|e| e.text.starts_with(&format!("[L{marker}]"))),
        Check::Update { seq, customer } => {
            let kind = if customer { "Customer-facing" } else { "Internal" };
            let line = format!("{kind} update #{seq} posted");
            timeline.iter().any(|e| e.version == version && e.text == line)
        }
        Check::Marker(m) => found.contains(&m),
        Check::Comms { deputy } => {
            let p = team.person(if deputy { "deputy" } else { "comms" });
            // A deadline falling due right after the command may add versions before the reply.
            timeline.iter().any(|e| {
                e.version <= version
                    && e.version + 4 > version
                    && (e.text.starts_with(&format!("{p} assigned as communications lead"))
                        || (e.text.starts_with("communications lead handed over")
                            && e.text.ends_with(&format!(" to {p}"))))
            })
        }
    }
}

/// Checks one incident's acks against the server; refreshes what the harness knows of it.
async fn verify_slot(ctx: &Ctx, cl: &Clients, slot: u32, acks: &[Ack], v: &Verified) -> anyhow::Result<()> {
    let Some(s) = ctx.pool.get(slot) else { return Ok(()) };
    let team = &ctx.org.teams[s.team];
    let mut c = cl.incidents(s.team);
    v.acks.fetch_add(acks.len() as u64, Ordering::Relaxed);
    let inc = match c
        .get_incident(req(pb::GetIncidentRequest { id: s.id.clone() }, &ctx.org.admin))
        .await
    {
        Ok(i) => i.into_inner(),
        Err(e) if e.code() == tonic::Code::NotFound => {
            for a in acks {
                v.lose(format!("{}: incident missing ({a:?})", s.id));
            }
            return Ok(());
        }
        Err(e) => return Err(e).context("GetIncident while verifying"),
    };
    let mut timeline = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = c
            .get_timeline(req(
                pb::GetTimelineRequest {
                    id: s.id.clone(),
                    page_size: 500,
                    page_token,
                },
                &ctx.org.admin,
            ))
            .await
            .context("GetTimeline while verifying")?
            .into_inner();
        timeline.extend(page.entries);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let mut found = HashSet::new();
    for e in &timeline {
        markers(&e.text, &mut found);
    }
    for a in acks {
        if a.version <= inc.version && holds(a.check, a.version, team, &timeline, &found) {
            v.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            v.lose(format!(
                "{} (version {} now): acked version {} {:?} not found",
                s.id, inc.version, a.version, a.check
            ));
        }
    }
    s.saw(&inc);
    s.dirty.store(false, Ordering::Relaxed);
    Ok(())
}

/// Every ack so far, in slices of incidents (bounded memory).
async fn verify_all(ctx: &Arc<Ctx>, cl: &Arc<Clients>) -> anyhow::Result<(Verified, Duration)> {
    const SLICE: usize = 4096;
    let started = Instant::now();
    let v = Arc::new(Verified::default());
    let n = ctx.pool.len();
    for lo in (0..n).step_by(SLICE) {
        let hi = (lo + SLICE).min(n);
        let acks = Arc::new(ctx.acks.read_slice(lo, hi)?);
        let (ctx, cl, v) = (ctx.clone(), cl.clone(), v.clone());
        drive(32, hi - lo, move |i| {
            let (ctx, cl, v, acks) = (ctx.clone(), cl.clone(), v.clone(), acks.clone());
            async move { verify_slot(&ctx, &cl, (lo + i) as u32, &acks[i], &v).await }
        })
        .await?;
    }
    let v = Arc::try_unwrap(v).map_err(|_| anyhow::anyhow!("verification still running"))?;
    Ok((v, started.elapsed()))
}

fn print_verified(v: &Verified, took: Duration) {
    println!(
        "  acknowledged writes checked {}: present {}, lost {} ({:.1} s)",
        v.acks.load(Ordering::Relaxed),
        v.ok.load(Ordering::Relaxed),
        v.lost.load(Ordering::Relaxed),
        took.as_secs_f64()
    );
    for e in v.examples.lock().map(|e| e.clone()).unwrap_or_default() {
        println!("    lost: {e}");
    }
}

// ---------------------------------------------------------------------------
// The run

pub async fn run(a: OrgArgs) -> anyhow::Result<()> {
    let mut rng = fastrand::Rng::with_seed(a.seed);
    let bin = server_binary(a.server.clone())?;
    let tmp = tempfile::tempdir()?;
    let org = org(a.teams, &mut rng)?;
    std::fs::write(tmp.path().join("org.toml"), &org.toml)?;
    println!(
        "incidentd-bench org: {} teams ({} people, {} services, {} tokens), {} live incidents, {} ops/s for {:.0} s{}, {} connections, {} watches, seed {}",
        a.teams,
        a.teams * PEOPLE.len() + 1,
        a.teams * 2,
        a.teams + 1,
        a.live,
        a.rate,
        a.duration.as_secs_f64(),
        if a.crash {
            format!(" per cycle, kill -9 in each of {} cycles", a.cycles)
        } else {
            String::new()
        },
        a.clients,
        a.watches,
        a.seed
    );
    println!("  load average at start: {}", loadavg());
    let mut server = Server::start(&bin, tmp.path()).await?;
    println!("  server {} pid {}: {}", bin.display(), server.pid, server.ready);
    let teams = org.teams.len();
    let ctx = Arc::new(Ctx {
        org,
        pool: Pool::default(),
        acks: AckLog::create(tmp.path().join("acks.bin"))?,
        rec: Recorder::default(),
        marker: AtomicU64::new(1),
        pages: (0..teams).map(|_| Mutex::new(String::new())).collect(),
    });
    let mut cl = Arc::new(Clients::connect(&server.grpc, a.clients).await?);

    // Setup: the live incidents, closed loop.
    let (c2, cl2) = (ctx.clone(), cl.clone());
    let setup = drive(64, a.live, move |i| {
        let (ctx, cl) = (c2.clone(), cl2.clone());
        async move { Ok(declare(&ctx, &cl, i % teams, i as u32, false).await?) }
    })
    .await?;
    println!(
        "{}",
        setup.line(&format!("setup: {} DeclareIncident (64 in flight)", a.live))
    );

    // Baseline: a no-op tonic RPC, closed loop, same server and connections.
    let baseline = health_baseline(&cl, &ctx.org.admin).await?;
    println!("{}", baseline.line("baseline: grpc.health.v1 Check (64 in flight)"));

    let (tx, rx) = watch::channel(Some(cl.clone()));
    let (watches, watch_tasks, many) = start_watches(&ctx, &rx, a.watches, &mut rng);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let inflight = Arc::new(Semaphore::new(a.max_in_flight));

    if !a.crash {
        let (cpu0, mine0) = (cpu_time_of(&server.proc()), cpu_time_of("self"));
        let offered = open_loop(&ctx, &cl, a.rate, a.duration, &inflight, &mut rng).await;
        drain(&inflight, a.max_in_flight).await?;
        let wall = offered.elapsed.max(Duration::from_millis(1));
        let (cpu, mine) = (cpu_time_of(&server.proc()) - cpu0, cpu_time_of("self") - mine0);
        let rss = rss_bytes_of(&server.proc());
        let hwm = proc_status_kb(&server.proc(), "VmHWM");
        let (ok, err) = ctx.rec.completed();
        let achieved = (ok + err) as f64 / wall.as_secs_f64();
        println!(
            "mixed workload: {} ops scheduled over {:.1} s: {:.0} ops/s completed ({:.0} ok/s), target {} ({:.2} of target); {} started late for want of an in-flight slot",
            offered.scheduled,
            wall.as_secs_f64(),
            achieved,
            ok as f64 / wall.as_secs_f64(),
            a.rate,
            achieved / a.rate as f64,
            offered.late_start
        );
        ctx.rec.print(50.0);
        println!(
            "  server: CPU {:.0}% of one core ({:.1} s user+sys over {:.1} s), RSS {} MB (peak {} MB); harness CPU {:.0}%",
            cpu.as_secs_f64() / wall.as_secs_f64() * 100.0,
            cpu.as_secs_f64(),
            wall.as_secs_f64(),
            rss >> 20,
            hwm >> 10,
            mine.as_secs_f64() / wall.as_secs_f64() * 100.0
        );
        print_watches(&watches, a.watches, many);
        println!(
            "  ratios: completed ops/s / no-op Check max rate = {:.2}; mutating p99 / no-op Check p99 = {:.1}",
            achieved / baseline.rate(),
            ctx.rec.mutating_p99_ms() / (baseline.pct(0.99).as_secs_f64() * 1e3).max(1e-6)
        );
        let (v, took) = verify_all(&ctx, &cl).await?;
        print_verified(&v, took);
    } else {
        let mut recoveries = Vec::new();
        let (mut lost_any, mut ops, mut loaded) = (0, 0, Duration::ZERO);
        for cycle in 1..=a.cycles {
            let kill_after = a.duration.mul_f64(0.3 + 0.7 * rng.f64());
            let acked0 = ctx.acks.count.load(Ordering::Relaxed);
            let (_, err0) = ctx.rec.completed();
            let offered = open_loop(&ctx, &cl, a.rate, kill_after, &inflight, &mut rng).await;
            let killed = Instant::now();
            ops += offered.scheduled;
            loaded += offered.elapsed;
            tx.send_replace(None);
            server.kill9().await?;
            drain(&inflight, a.max_in_flight).await?;
            let (_, err1) = ctx.rec.completed();
            let spawned = Instant::now();
            server = Server::start(&bin, tmp.path()).await?;
            let ready = spawned.elapsed();
            let down = killed.elapsed();
            recoveries.push(ready);
            cl = Arc::new(Clients::connect(&server.grpc, a.clients).await?);
            let (v, took) = verify_all(&ctx, &cl).await?;
            let lost = v.lost.load(Ordering::Relaxed);
            lost_any += lost;
            println!(
                "cycle {cycle:>2}: kill -9 after {:.2} s ({} ops, {} writes acked, {} failed); restart ready in {:.2} s {}, down {:.2} s; checked {} acks: lost {} ({:.1} s)",
                offered.elapsed.as_secs_f64(),
                offered.scheduled,
                ctx.acks.count.load(Ordering::Relaxed) - acked0,
                err1 - err0,
                ready.as_secs_f64(),
                server.ready.trim_start_matches("incidentd ready "),
                down.as_secs_f64(),
                v.acks.load(Ordering::Relaxed),
                lost,
                took.as_secs_f64()
            );
            for e in v.examples.lock().map(|e| e.clone()).unwrap_or_default() {
                println!("    lost: {e}");
            }
            tx.send_replace(Some(cl.clone()));
        }
        recoveries.sort();
        let total = ctx.acks.count.load(Ordering::Relaxed);
        println!(
            "crash totals over {} cycles: {} writes acknowledged, lost (summed over cycle checks) {}; restart to ready p50 {:.2} s, max {:.2} s",
            a.cycles,
            total,
            lost_any,
            recoveries.get(recoveries.len() / 2).map_or(0.0, Duration::as_secs_f64),
            recoveries.last().map_or(0.0, Duration::as_secs_f64)
        );
        println!(
            "  under load {:.1} s in all: {} ops scheduled, {:.0} ops/s (target {})",
            loaded.as_secs_f64(),
            ops,
            ops as f64 / loaded.as_secs_f64().max(1e-3),
            a.rate
        );
        println!("  per RPC over all cycles (acknowledged calls; failures at the kills counted as errors):");
        ctx.rec.print(50.0);
        print_watches(&watches, a.watches, many);
        let rss = rss_bytes_of(&server.proc());
        println!("  server after the last restart + verification: RSS {} MB", rss >> 20);
        let (v, took) = verify_all(&ctx, &cl).await?;
        println!("final check of every acknowledged write:");
        print_verified(&v, took);
    }
    for t in watch_tasks {
        t.abort();
    }
    tx.send_replace(None);
    server.terminate().await?;
    println!(
        "  harness peak RSS {} MB; load average at end: {}",
        proc_status_kb("self", "VmHWM") >> 10,
        loadavg()
    );
    Ok(())
}

async fn health_baseline(cl: &Clients, auth: &AsciiMetadataValue) -> anyhow::Result<Stats> {
    let health: Arc<Vec<_>> = Arc::new(
        cl.chans
            .iter()
            .cloned()
            .map(tonic_health::pb::health_client::HealthClient::new)
            .collect(),
    );
    let mut out = None;
    for requests in [5_000, 40_000] {
        let (h, auth) = (health.clone(), auth.clone());
        out = Some(
            drive(64, requests, move |i| {
                let mut c = h[i % h.len()].clone();
                let r = req(tonic_health::pb::HealthCheckRequest { service: String::new() }, &auth);
                async move {
                    c.check(r).await?;
                    Ok(())
                }
            })
            .await?,
        );
    }
    out.context("no baseline")
}

fn print_watches(w: &WatchCounts, n: usize, many: usize) {
    println!(
        "  watches: {} WatchIncident streams got {} events ({} version gaps, {} regressions after restarts, {} resumes); {} WatchIncidents streams got {} events",
        n.saturating_sub(many),
        w.one_events.load(Ordering::Relaxed),
        w.gaps.load(Ordering::Relaxed),
        w.regressions.load(Ordering::Relaxed),
        w.reconnects.load(Ordering::Relaxed),
        many,
        w.many_events.load(Ordering::Relaxed)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_bound_their_values() {
        for us in [0u64, 1, 63, 64, 65, 127, 128, 1000, 49_999, 1 << 40] {
            let b = Hist::bucket(us);
            assert!(Hist::upper(b) >= us, "{us}");
            assert!(b == 0 || Hist::upper(b - 1) < us, "{us}");
        }
        let mut h = Hist::new();
        for ms in 1..=100 {
            h.record(Duration::from_millis(ms));
        }
        assert!((h.pct_ms(0.5) - 50.0).abs() < 1.0);
        assert!((h.pct_ms(0.99) - 99.0).abs() < 1.6);
        assert_eq!(h.pct_ms(1.0), 100.0);
    }

    #[test]
    fn acks_round_trip() {
        for check in [
            Check::Entry { seq: 7, marker: 99 },
            Check::Update { seq: 3, customer: true },
            Check::Marker(12),
            Check::Comms { deputy: true },
        ] {
            let a = Ack {
                slot: 5,
                version: 42,
                check,
            };
            let b = Ack::decode(&a.encode()).expect("decodes");
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
    }

    fn entry(version: u64, text: &str) -> pb::TimelineEntry {
        pb::TimelineEntry {
            version,
            text: text.into(),
            ..Default::default()
        }
    }

    #[test]
    fn checks_find_what_was_written_and_only_that() {
        let team = Team {
            id: "t001".into(),
            auth: bearer("x").expect("token"),
        };
        let timeline = [
            entry(
                1,
                "INC-1 declared: [L1] t001-api elevated error rate (SEV-3, team t001)",
            ),
            entry(2, "[L5] p99 of t001-api up 3x"),
            entry(3, "Internal update #1 posted"),
            entry(4, "communications lead handed over from t001-comms to t001-deputy"),
            entry(5, "t001-sme1 moved from track \"[L6] a\" to \"[L9] b\""),
        ];
        let mut found = HashSet::new();
        for e in &timeline {
            markers(&e.text, &mut found);
        }
        assert_eq!(found, HashSet::from([1, 5, 6, 9]));
        let ok = |c, v| holds(c, v, &team, &timeline, &found);
        assert!(ok(Check::Marker(9), 5));
        assert!(!ok(Check::Marker(7), 5));
        assert!(ok(Check::Entry { seq: 2, marker: 5 }, 2));
        assert!(!ok(Check::Entry { seq: 2, marker: 6 }, 2));
        assert!(ok(
            Check::Update {
                seq: 1,
                customer: false
            },
            3
        ));
        assert!(!ok(Check::Update { seq: 1, customer: true }, 3));
        assert!(!ok(
            Check::Update {
                seq: 2,
                customer: false
            },
            3
        ));
        assert!(ok(Check::Comms { deputy: true }, 4));
        assert!(!ok(Check::Comms { deputy: false }, 4));
        assert!(!ok(Check::Comms { deputy: true }, 9));
    }
}
