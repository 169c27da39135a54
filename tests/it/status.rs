//! The public status page (issue 5) end to end: the real `incidentd`
//! binary and real headless Chromium (Debian `chromium`, installed by
//! `.ci/run`). A SEV-1 with a customer update shows as a major outage with
//! the update's text and none of the internal text; a screenshot is saved
//! as an artifact; resolving the incident recovers the open page in place
//! (live refresh, no reload). Also: conditional GETs, the Atom feed through
//! an XML parser, StatusPageService errors, and maintenance windows that
//! survive `kill -9`.

use crate::support::{Server, TEST_CONFIG, assert_status, write_config};
use incidentd_proto::v1 as pb;
use incidentd_proto::v1::status_page_service_client::StatusPageServiceClient;
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

/// A GET over a raw socket: status code, raw response headers, body.
async fn get(addr: &str, path: &str, extra: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect http");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).to_string();
    let code = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (code, head.to_ascii_lowercase(), body.to_string())
}

fn header(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_default()
        .to_string()
}

/// The status page loads just after readiness (503 / UNAVAILABLE until then).
async fn page_loaded(server: &Server) {
    wait_for_body(&server.http, "/status/api/v2/status.json", "the status page", |_| true).await;
}

/// Polls `path` until its body satisfies `pred` (bounded).
async fn wait_for_body(addr: &str, path: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (code, _, body) = get(addr, path, "").await;
        if code == 200 && pred(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last body: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn artifacts_dir() -> std::path::PathBuf {
    let dir = crate::support::workspace_bin("incidentd")
        .parent()
        .expect("target dir")
        .join("artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

fn chromium_flags(profile: &std::path::Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

fn require_chromium() {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium (.ci/run does)"
    );
}

/// A screenshot by Chromium's command line, at a phone's width. Chromium
/// exits 0 even when the page failed, so the file is checked.
fn screenshot(url: &str, out: &std::path::Path) {
    let profile = tempfile::tempdir().expect("profile dir");
    let status = std::process::Command::new(CHROMIUM)
        .args(chromium_flags(profile.path()))
        .arg("--window-size=412,1400")
        .arg(format!("--screenshot={}", out.display()))
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run chromium");
    assert!(status.success(), "chromium --screenshot failed: {status:?}");
    let png = std::fs::read(out).expect("screenshot written");
    assert!(png.len() > 1000 && png.starts_with(b"\x89PNG"), "not a PNG screenshot");
}

/// Headless Chromium driven over the DevTools protocol on a pipe
/// (`--remote-debugging-pipe`: fd 3 in, fd 4 out, NUL-separated JSON).
mod cdp {
    use serde_json::{Value, json};
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::os::unix::process::CommandExt;
    use std::time::{Duration, Instant};

    pub struct Browser {
        child: std::process::Child,
        pipe: UnixStream,
        buf: Vec<u8>,
        next_id: u64,
        session: String,
        _profile: tempfile::TempDir,
    }

    impl Browser {
        /// Starts Chromium and opens `url` in a new tab.
        pub fn open(url: &str) -> Browser {
            let profile = tempfile::tempdir().expect("profile dir");
            let (ours, theirs) = UnixStream::pair().expect("socketpair");
            let fd = theirs.as_raw_fd();
            let mut cmd = std::process::Command::new(super::CHROMIUM);
            cmd.args(super::chromium_flags(profile.path()))
                .arg("--remote-debugging-pipe")
                .arg("about:blank")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            // SAFETY: only dup2 (async-signal-safe) runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::dup2(fd, 3) < 0 || libc::dup2(fd, 4) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = cmd.spawn().expect("start chromium");
            drop(theirs);
            ours.set_read_timeout(Some(Duration::from_millis(500)))
                .expect("timeout");
            let mut b = Browser {
                child,
                pipe: ours,
                buf: Vec::new(),
                next_id: 0,
                session: String::new(),
                _profile: profile,
            };
            let target = b.call(None, "Target.createTarget", json!({ "url": url }));
            let target_id = target["targetId"].as_str().expect("targetId").to_string();
            let attached = b.call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            );
            b.session = attached["sessionId"].as_str().expect("sessionId").to_string();
            b
        }

        fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
            self.next_id += 1;
            let id = self.next_id;
            let mut msg = json!({ "id": id, "method": method, "params": params });
            if let Some(s) = session {
                msg["sessionId"] = json!(s);
            }
            let mut bytes = serde_json::to_vec(&msg).expect("json");
            bytes.push(0);
            self.pipe.write_all(&bytes).expect("write to chromium");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                while let Some(end) = self.buf.iter().position(|b| *b == 0) {
                    let frame: Vec<u8> = self.buf.drain(..=end).collect();
                    let v: Value = serde_json::from_slice(&frame[..end]).expect("CDP JSON");
                    if v["id"] == id {
                        assert!(v.get("error").is_none(), "{method} failed: {v}");
                        return v["result"].clone();
                    }
                }
                assert!(Instant::now() < deadline, "no answer to {method} from chromium");
                let mut chunk = [0u8; 65536];
                match self.pipe.read(&mut chunk) {
                    Ok(0) => panic!("chromium closed the DevTools pipe"),
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    Err(e) => panic!("reading from chromium: {e}"),
                }
            }
        }

        /// Evaluates a JavaScript expression in the page; its value as JSON.
        pub fn eval(&mut self, expression: &str) -> Value {
            let session = self.session.clone();
            let r = self.call(
                Some(&session),
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            );
            r["result"]["value"].clone()
        }

        /// Evaluates until the value satisfies `pred` (bounded).
        pub fn wait_for(&mut self, what: &str, expression: &str, pred: impl Fn(&Value) -> bool) -> Value {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let v = self.eval(expression);
                if pred(&v) {
                    return v;
                }
                assert!(
                    Instant::now() < deadline,
                    "timed out waiting for {what}; last value {v}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    impl Drop for Browser {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What the test reads from the page's DOM.
const PAGE_FACTS: &str = r#"JSON.stringify({
  ready: document.readyState,
  lang: document.documentElement.lang,
  viewport: !!document.querySelector('meta[name="viewport"]'),
  header: document.querySelectorAll('header').length,
  main: document.querySelectorAll('main').length,
  footer: document.querySelectorAll('footer').length,
  h1: Array.from(document.querySelectorAll('h1')).map(h => h.textContent),
  h2: Array.from(document.querySelectorAll('h2')).map(h => h.textContent),
  indicator: (document.querySelector('[data-indicator]') || {dataset: {}}).dataset.indicator,
  component: (document.querySelector('[data-component="payments-api"]') || {dataset: {}}).dataset.status,
  bars: document.querySelectorAll('[data-component="payments-api"] .bars span').length,
  barsLabel: (document.querySelector('[data-component="payments-api"] .bars') || {getAttribute: () => ''}).getAttribute('aria-label'),
  text: document.body.innerText,
  marker: window.__sameDocument || null
})"#;

fn facts(b: &mut cdp::Browser) -> serde_json::Value {
    let s = b.eval(PAGE_FACTS);
    serde_json::from_str(s.as_str().expect("facts string")).expect("facts JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_in_real_chromium() {
    require_chromium();
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = write_config(tmp.path(), TEST_CONFIG);
    let server = Server::start(&tmp.path().join("data"), &config).await;
    let mut c = server.client().await;
    let inc = c
        .declare_incident(pb::DeclareIncidentRequest {
            title: "SECRET-TITLE ledger primary out of memory".into(),
            team: "payments".into(),
            services: vec!["payments-api".into()],
            severity: pb::Severity::Sev1 as i32,
            summary: "SECRET-SUMMARY".into(),
            by: "alice".into(),
            ..Default::default()
        })
        .await
        .expect("declare")
        .into_inner();
    c.post_update(pb::PostUpdateRequest {
        id: inc.id.clone(),
        kind: pb::UpdateKind::Internal as i32,
        current_theory: "SECRET-THEORY connection leak in the ledger".into(),
        by: "bob".into(),
        ..Default::default()
    })
    .await
    .expect("internal update");
    c.post_update(pb::PostUpdateRequest {
        id: inc.id.clone(),
        kind: pb::UpdateKind::Customer as i32,
        customer_symptom: "card payments time out".into(),
        by: "bob".into(),
        ..Default::default()
    })
    .await
    .expect("customer update");
    wait_for_body(
        &server.http,
        "/status/api/v2/summary.json",
        "the customer update",
        |b| b.contains("card payments time out"),
    )
    .await;

    let url = format!("http://{}/status", server.http);
    let shot = artifacts_dir().join("status-page-sev1.png");
    tokio::task::block_in_place(|| screenshot(&url, &shot));

    let mut browser = tokio::task::block_in_place(|| cdp::Browser::open(&url));
    let page = tokio::task::block_in_place(|| {
        browser.wait_for(
            "the page to load",
            "document.readyState === 'complete' && !!document.getElementById('main')",
            |v| v == true,
        );
        facts(&mut browser)
    });
    assert_eq!(page["lang"], "en");
    assert_eq!(page["viewport"], true, "mobile viewport");
    assert_eq!(
        (&page["header"], &page["main"], &page["footer"]),
        (&1.into(), &1.into(), &1.into())
    );
    assert_eq!(page["h1"], serde_json::json!(["Test Corp Status"]));
    let h2: Vec<&str> = page["h2"]
        .as_array()
        .expect("h2")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for section in [
        "Active incidents",
        "Scheduled maintenance",
        "Components",
        "Past incidents (90 days)",
    ] {
        assert!(h2.contains(&section), "heading {section:?} in {h2:?}");
    }
    assert_eq!(page["indicator"], "critical");
    assert_eq!(page["component"], "major_outage");
    assert_eq!(page["bars"], 90, "90-day availability bar");
    assert!(
        page["barsLabel"]
            .as_str()
            .unwrap_or_default()
            .contains("uptime over the last 90 days")
    );
    let text = page["text"].as_str().expect("text");
    assert!(text.contains("card payments time out"), "{text}");
    assert!(text.contains("Major outage"), "{text}");
    for secret in ["SECRET", "connection leak", "bob", "alice"] {
        assert!(!text.contains(secret), "{secret:?} is on the public page");
    }

    // Resolve: the open page recovers in place (no reload: the marker survives).
    tokio::task::block_in_place(|| browser.eval("window.__sameDocument = 42"));
    c.resolve_incident(pb::ResolveIncidentRequest {
        id: inc.id.clone(),
        note: "SECRET-NOTE rolled back".into(),
        by: "alice".into(),
        ..Default::default()
    })
    .await
    .expect("resolve");
    let after = tokio::task::block_in_place(|| {
        browser.wait_for(
            "the page to show the recovery",
            "(document.querySelector('[data-component=\"payments-api\"]') || {dataset: {}}).dataset.status",
            |v| v == "operational",
        );
        facts(&mut browser)
    });
    assert_eq!(after["marker"], 42, "live refresh, not a reload");
    assert_eq!(after["indicator"], "none");
    let text = after["text"].as_str().expect("text");
    assert!(text.contains("All Systems Operational"));
    assert!(
        text.contains("card payments time out"),
        "the resolved incident is in the history"
    );
    assert!(!text.contains("SECRET"));
    tokio::task::block_in_place(|| screenshot(&url, &artifacts_dir().join("status-page-resolved.png")));
    drop(browser);

    // Conditional GET: the ETag revalidates to 304 with no body.
    let (code, head, body) = get(&server.http, "/status/api/v2/summary.json", "").await;
    assert_eq!(code, 200);
    let etag = header(&head, "etag");
    assert!(etag.starts_with('"'), "{head}");
    assert!(header(&head, "cache-control").contains("max-age"));
    assert!(!header(&head, "last-modified").is_empty());
    let summary: serde_json::Value = serde_json::from_str(&body).expect("summary JSON");
    assert_eq!(summary["status"]["indicator"], "none");
    let (code, _, body) = get(
        &server.http,
        "/status/api/v2/summary.json",
        &format!("If-None-Match: {etag}\r\n"),
    )
    .await;
    assert_eq!((code, body.as_str()), (304, ""));
    for path in [
        "/status/api/v2/status.json",
        "/status/api/v2/components.json",
        "/status/api/v2/incidents.json",
        "/status/api/v2/incidents/unresolved.json",
        "/status/api/v2/scheduled-maintenances.json",
    ] {
        let (code, head, body) = get(&server.http, path, "").await;
        assert_eq!(code, 200, "{path}");
        assert!(head.contains("content-type: application/json"), "{path}");
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON");
        assert!(!body.contains("SECRET"), "{path}");
    }
    let (code, head, atom) = get(&server.http, "/status/feed.atom", "").await;
    assert_eq!(code, 200);
    assert!(head.contains("content-type: application/atom+xml"));
    let doc = roxmltree::Document::parse(&atom).expect("Atom is well-formed XML");
    let entries: Vec<_> = doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name(("http://www.w3.org/2005/Atom", "entry")))
        .collect();
    assert_eq!(entries.len(), 1, "one customer update");
    assert!(!atom.contains("SECRET"));
    server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_service_errors_and_durable_maintenance() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = write_config(tmp.path(), TEST_CONFIG);
    let data = tmp.path().join("data");
    let server = Server::start(&data, &config).await;
    page_loaded(&server).await;
    let mut sp = StatusPageServiceClient::connect(format!("http://{}", server.grpc))
        .await
        .expect("connect");
    let comps = sp
        .list_components(pb::ListComponentsRequest {})
        .await
        .expect("list")
        .into_inner()
        .components;
    assert_eq!(comps.len(), 1);
    assert_eq!(
        (comps[0].service.as_str(), comps[0].group.as_str(), comps[0].status),
        ("payments-api", "Checkout", pb::ComponentStatus::Operational as i32)
    );

    let set = |incident_id: &str, service: &str, status: pb::ComponentStatus| pb::SetComponentStatusRequest {
        incident_id: incident_id.into(),
        service: service.into(),
        status: status as i32,
        by: "bob".into(),
        request_id: String::new(),
    };
    let r = sp
        .set_component_status(set("nope", "payments-api", pb::ComponentStatus::MajorOutage))
        .await;
    assert_status(r, tonic::Code::InvalidArgument, "incident_id");
    let mut c = server.client().await;
    let inc = c
        .declare_incident(pb::DeclareIncidentRequest {
            title: "Checkout slow".into(),
            team: "payments".into(),
            services: vec!["payments-api".into()],
            severity: pb::Severity::Sev3 as i32,
            ..Default::default()
        })
        .await
        .expect("declare")
        .into_inner();
    let r = sp
        .set_component_status(set(&inc.id, "nope", pb::ComponentStatus::MajorOutage))
        .await;
    assert_status(r, tonic::Code::NotFound, "service");
    let r = sp
        .set_component_status(set(&inc.id, "payments-api", pb::ComponentStatus::Unspecified))
        .await;
    assert_status(r, tonic::Code::InvalidArgument, "status");
    let comp = sp
        .set_component_status(set(&inc.id, "payments-api", pb::ComponentStatus::PartialOutage))
        .await
        .expect("override")
        .into_inner();
    assert_eq!(comp.status, pb::ComponentStatus::PartialOutage as i32);
    assert_eq!(comp.r#override.map(|o| o.incident_id), Some(inc.id.clone()));
    wait_for_body(&server.http, "/status/api/v2/components.json", "the override", |b| {
        b.contains("partial_outage")
    })
    .await;

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let at = |secs: i64| {
        Some(prost_types::Timestamp {
            seconds: secs,
            nanos: 0,
        })
    };
    let schedule = |title: &str, start: i64, end: i64| pb::ScheduleMaintenanceRequest {
        title: title.into(),
        services: vec!["payments-api".into()],
        starts_at: at(start),
        ends_at: at(end),
        body: "Card payments may pause for a minute.".into(),
        request_id: String::new(),
    };
    let r = sp.schedule_maintenance(schedule("", now + 3600, now + 7200)).await;
    assert_status(r, tonic::Code::InvalidArgument, "title");
    let r = sp
        .schedule_maintenance(schedule("Upgrade", now + 7200, now + 3600))
        .await;
    assert_status(r, tonic::Code::InvalidArgument, "ends_at");
    let r = sp
        .schedule_maintenance(pb::ScheduleMaintenanceRequest {
            services: vec!["ghost".into()],
            ..schedule("Upgrade", now + 3600, now + 7200)
        })
        .await;
    assert_status(r, tonic::Code::NotFound, "services");
    let m = sp
        .schedule_maintenance(schedule("Ledger database upgrade", now + 3600, now + 7200))
        .await
        .expect("scheduled")
        .into_inner();
    assert_eq!(m.status, pb::MaintenanceStatus::Scheduled as i32);
    let r = sp
        .update_maintenance(pb::UpdateMaintenanceRequest {
            id: "not-an-id".into(),
            ..Default::default()
        })
        .await;
    assert_status(r, tonic::Code::InvalidArgument, "id");
    wait_for_body(
        &server.http,
        "/status/api/v2/scheduled-maintenances.json",
        "the window",
        |b| b.contains("Ledger database upgrade"),
    )
    .await;

    // Acknowledged means durable: kill -9, restart, the window is back.
    server.kill9().await;
    let server = Server::start(&data, &config).await;
    page_loaded(&server).await;
    let mut sp = StatusPageServiceClient::connect(format!("http://{}", server.grpc))
        .await
        .expect("connect");
    let list = sp
        .list_maintenances(pb::ListMaintenancesRequest::default())
        .await
        .expect("list")
        .into_inner()
        .maintenances;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, m.id);
    let body = wait_for_body(&server.http, "/status/api/v2/summary.json", "the window", |b| {
        b.contains("Ledger database upgrade")
    })
    .await;
    assert!(body.contains("partial_outage"), "the override survived too");
    let cancelled = sp
        .update_maintenance(pb::UpdateMaintenanceRequest {
            id: m.id.clone(),
            cancel: true,
            body: "Postponed.".into(),
            ..Default::default()
        })
        .await
        .expect("cancel")
        .into_inner();
    assert!(cancelled.cancelled);
    wait_for_body(&server.http, "/status/api/v2/summary.json", "the window gone", |b| {
        !b.contains("Ledger database upgrade")
    })
    .await;
    server.terminate().await;
}
