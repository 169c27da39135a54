//! Operations: `/metrics` is valid Prometheus text and has exactly the
//! series `deploy/README.md` documents; `incidentd backup` taken while the
//! server takes writes restores every acknowledged change.

use crate::support::{Server, TEST_CONFIG, http_get, workspace_bin, write_config};
use incidentd_proto::v1::{self as pb};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

#[derive(Debug, Default)]
struct Family {
    kind: String,
    help: bool,
    samples: Vec<Sample>,
}

fn is_name(s: &str, colons: bool) -> bool {
    let mut chars = s.chars();
    let first_ok = |c: char| c.is_ascii_alphabetic() || c == '_' || (colons && c == ':');
    chars.next().is_some_and(first_ok) && chars.all(|c| first_ok(c) || c.is_ascii_digit())
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse::<f64>().map_err(|_| format!("bad value {s:?}")),
    }
}

/// `{a="x",b="y\"z"}` → labels, and the rest of the line.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s.strip_prefix('{').ok_or("expected '{'")?;
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without '='")?;
        let name = &rest[..eq];
        if !is_name(name, false) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..].strip_prefix('"').ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    _ => return Err("bad escape in label value".into()),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name:?} twice"));
        }
        rest = &rest[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// The family a sample name belongs to, given the family being read.
fn family_of<'a>(sample: &'a str, current: Option<(&str, &str)>) -> &'a str {
    if let Some((fam, "histogram" | "summary")) = current {
        for suffix in ["_bucket", "_sum", "_count"] {
            if sample.strip_suffix(suffix) == Some(fam) {
                return &sample[..fam.len()];
            }
        }
    }
    sample
}

/// A strict reader of the Prometheus text format (0.0.4): every line is a
/// HELP, a TYPE or a sample; a family's lines are contiguous and its TYPE
/// comes first; no series twice; counters are non-negative; histogram
/// buckets are cumulative and end in `+Inf` == `_count`.
fn parse_exposition(text: &str) -> Result<BTreeMap<String, Family>, String> {
    if !text.ends_with('\n') {
        return Err("the exposition must end with a newline".into());
    }
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut closed: BTreeSet<String> = BTreeSet::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let err = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (word, name, arg) = (parts.next(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if !matches!(word, Some("HELP" | "TYPE")) {
                continue; // a plain comment
            }
            if !is_name(name, true) {
                return Err(err(format!("bad metric name {name:?}")));
            }
            if current.as_deref() != Some(name) {
                if let Some(prev) = current.take() {
                    closed.insert(prev);
                }
                if closed.contains(name) {
                    return Err(err(format!("family {name} is not contiguous")));
                }
                current = Some(name.to_string());
            }
            let fam = families.entry(name.to_string()).or_default();
            if word == Some("HELP") {
                if fam.help {
                    return Err(err("second HELP".into()));
                }
                fam.help = true;
            } else {
                if !fam.kind.is_empty() || !fam.samples.is_empty() {
                    return Err(err("TYPE after samples or twice".into()));
                }
                if !matches!(arg, "counter" | "gauge" | "histogram" | "summary" | "untyped") {
                    return Err(err(format!("unknown type {arg:?}")));
                }
                fam.kind = arg.to_string();
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            return Err(err("neither a comment, a HELP, a TYPE nor a sample".into()));
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| err("no value".into()))?;
        let name = &line[..name_end];
        if !is_name(name, true) {
            return Err(err(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(err)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let mut fields = rest
            .strip_prefix(' ')
            .ok_or_else(|| err("no space before the value".into()))?
            .split(' ');
        let value = parse_value(fields.next().unwrap_or("")).map_err(err)?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().map_err(|_| err("bad timestamp".into()))?;
        }
        if fields.next().is_some() {
            return Err(err("trailing text".into()));
        }
        let cur = current.as_deref().map(|c| (c, families[c].kind.as_str()));
        let fam_name = family_of(name, cur);
        if Some(fam_name) != current.as_deref() {
            return Err(err(format!("sample of {fam_name} outside its family (TYPE first)")));
        }
        let key = format!("{name}{labels:?}");
        if !seen.insert(key) {
            return Err(err("series twice".into()));
        }
        let fam = families.get_mut(fam_name).ok_or_else(|| err("no family".into()))?;
        if fam.kind == "counter" && (value.is_nan() || value < 0.0) {
            return Err(err("negative counter".into()));
        }
        fam.samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    for (name, fam) in &families {
        if fam.kind.is_empty() {
            return Err(format!("{name}: no TYPE"));
        }
        if fam.kind == "histogram" {
            check_histogram(name, fam)?;
        }
    }
    Ok(families)
}

fn check_histogram(name: &str, fam: &Family) -> Result<(), String> {
    let mut series: BTreeMap<BTreeMap<String, String>, Vec<&Sample>> = BTreeMap::new();
    for s in &fam.samples {
        let mut key = s.labels.clone();
        key.remove("le");
        series.entry(key).or_default().push(s);
    }
    for (labels, samples) in series {
        let mut last = (f64::NEG_INFINITY, 0.0);
        let mut inf = None;
        let mut count = None;
        for s in samples {
            if s.name.ends_with("_bucket") {
                let le = parse_value(
                    s.labels
                        .get("le")
                        .ok_or(format!("{name}{labels:?}: bucket without le"))?,
                )?;
                if le <= last.0 || s.value < last.1 {
                    return Err(format!("{name}{labels:?}: buckets not increasing and cumulative"));
                }
                last = (le, s.value);
                if le.is_infinite() {
                    inf = Some(s.value);
                }
            } else if s.name.ends_with("_count") {
                count = Some(s.value);
            }
        }
        if inf.is_none() || inf != count {
            return Err(format!("{name}{labels:?}: +Inf bucket {inf:?} != count {count:?}"));
        }
    }
    Ok(())
}

/// Metric names in the tables of `deploy/README.md` ("| `incidentd_...` |").
pub(super) fn documented_series() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/README.md");
    let text = std::fs::read_to_string(path).expect("read deploy/README.md");
    text.lines()
        .filter_map(|l| l.strip_prefix("| `incidentd_"))
        .filter_map(|l| l.split('`').next())
        .map(|n| format!("incidentd_{n}"))
        .collect()
}

#[test]
fn the_parser_is_strict() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 3\n";
    assert!(parse_exposition(ok).is_ok());
    for bad in [
        "a_total 3\n",                                                                    // no TYPE
        "# TYPE a counter\na 1\na 2\n",                                                   // series twice
        "# TYPE a counter\na -1\n",                                                       // negative counter
        "# TYPE a gauge\na{x=1} 1\n",                                                     // unquoted label
        "# TYPE a gauge\na 1",                                                            // no final newline
        "# TYPE a gauge\n# TYPE b gauge\nb 1\na 1\n",                                     // not contiguous
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", // not cumulative
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 1\n",                       // +Inf != count
    ] {
        assert!(parse_exposition(bad).is_err(), "accepted {bad:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_match_the_documented_series() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), TEST_CONFIG);
    let server = Server::start(&tmp.path().join("data"), &config).await;
    let mut c = server.client().await;
    // A success and a refusal, so the per-RPC series exist.
    declare(&mut c, "Payments down").await;
    let _ = c.get_incident(pb::GetIncidentRequest { id: "nope".into() }).await;

    let (code, body) = http_get(&server.http, "/metrics").await;
    assert_eq!(code, 200);
    let families = parse_exposition(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    let exposed: BTreeSet<String> = families.keys().cloned().collect();
    let documented = documented_series();
    assert_eq!(
        exposed, documented,
        "/metrics and deploy/README.md disagree: document new series there (and drop removed ones)"
    );
    assert!(families.values().all(|f| f.help), "every family has HELP");

    let value = |name: &str, labels: &[(&str, &str)]| {
        let fam = &families[family_of(name, None)];
        fam.samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    };
    assert_eq!(value("incidentd_ready", &[]), Some(1.0));
    assert_eq!(
        value(
            "incidentd_rpc_requests_total",
            &[("method", "DeclareIncident"), ("code", "OK")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            "incidentd_rpc_requests_total",
            &[("method", "GetIncident"), ("code", "INVALID_ARGUMENT")]
        ),
        Some(1.0)
    );
    assert_eq!(value("incidentd_live_incidents", &[("severity", "SEV1")]), Some(1.0));
    assert!(value("incidentd_store_syncs_total", &[]).is_some_and(|v| v >= 1.0));
    server.terminate().await;
}

type Api = pb::incident_service_client::IncidentServiceClient<tonic::transport::Channel>;

async fn declare(c: &mut Api, title: impl Into<String>) -> pb::Incident {
    c.declare_incident(pb::DeclareIncidentRequest {
        title: title.into(),
        team: "payments".into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
}

/// Declares incidents and adds notes until stopped, recording every
/// acknowledged (incident id → version).
async fn keep_writing(mut c: Api, acked: Arc<Mutex<HashMap<String, u64>>>, stop: Arc<AtomicBool>, who: usize) {
    for n in 0..5_000 {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let inc = declare(&mut c, format!("writer {who} incident {n}")).await;
        let entry = c
            .add_timeline_entry(pb::AddTimelineEntryRequest {
                id: inc.id.clone(),
                kind: pb::EntryKind::Note as i32,
                text: format!("note {n}"),
                author: "alice".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        acked.lock().unwrap().insert(inc.id, entry.version);
    }
}

async fn all_incidents(c: &mut Api) -> HashMap<String, pb::Incident> {
    let mut out = HashMap::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_incidents(pb::ListIncidentsRequest {
                page_size: 500,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        out.extend(page.incidents.into_iter().map(|i| (i.id.clone(), i)));
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

async fn timeline(c: &mut Api, id: &str) -> Vec<(u64, String)> {
    let r = c
        .get_timeline(pb::GetTimelineRequest {
            id: id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    r.entries.into_iter().map(|e| (e.version, e.text)).collect()
}

/// `incidentd --data-dir DATA backup DEST`.
async fn run_backup(data: &std::path::Path, dest: &std::path::Path) -> std::process::Output {
    tokio::process::Command::new(workspace_bin("incidentd"))
        .arg("--data-dir")
        .arg(data)
        .arg("backup")
        .arg(dest)
        .output()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_backup_restores_every_acknowledged_change() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), TEST_CONFIG);
    let data = tmp.path().join("data");
    let server = Server::start(&data, &config).await;
    let acked = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for who in 0..2 {
        writers.push(tokio::spawn(keep_writing(
            server.client().await,
            acked.clone(),
            stop.clone(),
            who,
        )));
    }
    // Some history first (bounded wait, polled).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 20 {
        assert!(tokio::time::Instant::now() < deadline, "writers made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Everything acknowledged before the backup starts must be in it.
    let before = acked.lock().unwrap().clone();
    let dest = tmp.path().join("backup");
    let out = run_backup(&data, &dest).await;
    assert!(
        out.status.success(),
        "backup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("records"));
    let during = acked.lock().unwrap().len();
    // Writes go on after the backup; then stop.
    while acked.lock().unwrap().len() < during + 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "writers stopped after the backup"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Release);
    for w in writers {
        w.await.unwrap();
    }

    let restored = Server::start(&dest, &config).await;
    let mut live = server.client().await;
    let mut back = restored.client().await;
    let live_all = all_incidents(&mut live).await;
    let back_all = all_incidents(&mut back).await;
    for (id, version) in &before {
        let b = back_all
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged incident {id} missing from the backup"));
        assert!(
            b.version >= *version,
            "{id}: backup has v{} < acknowledged v{version}",
            b.version
        );
    }
    // The backup is the live history up to a moment: every incident in it is
    // the live one at an earlier or equal version, its timeline a prefix.
    for (id, b) in &back_all {
        let l = &live_all[id];
        assert_eq!((&b.title, b.number), (&l.title, l.number));
        assert!(b.version <= l.version);
        let (tb, tl) = (timeline(&mut back, id).await, timeline(&mut live, id).await);
        assert_eq!(tb[..], tl[..tb.len()], "{id}: backup timeline is not a prefix");
    }
    // The restored server takes writes and numbers on from its history.
    let next = declare(&mut back, "after restore").await;
    assert_eq!(next.number, back_all.values().map(|i| i.number).max().unwrap() + 1);

    // A second backup into the same place is refused, and says why.
    let again = run_backup(&data, &dest).await;
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a store"));
    restored.terminate().await;
    server.terminate().await;
}
