//! Alert ingestion end to end (issue 6) against the real `incidentd` binary:
//! the real Prometheus Alertmanager (Debian `prometheus-alertmanager`) posting
//! its webhook, the captured payloads, PagerDuty Events v2, the gRPC
//! `AlertService`, and an alert storm with a `kill -9` in the middle.

use crate::support::{Server, TEST_CONFIG, write_config};
use incidentd_proto::v1 as pb;
use incidentd_proto::v1::alert_service_client::AlertServiceClient;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const AM_TOKEN: &str = "am-test-token";
const PD_KEY: &str = "pd-test-routing-key-0123456789ab";
const INGEST_TOKEN: &str = "pd-ingest-token";
const AM_BINARY: &str = "/usr/bin/prometheus-alertmanager";
/// Captured Alertmanager 0.25 payloads (copied from the shared fixtures).
const FIRING: &str = include_str!("../../crates/incidentd-gateway/fixtures/alertmanager/firing.json");
const PARTIAL: &str = include_str!("../../crates/incidentd-gateway/fixtures/alertmanager/partially-resolved.json");
const RESOLVED: &str = include_str!("../../crates/incidentd-gateway/fixtures/alertmanager/resolved.json");

fn hex_sha256(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The end-to-end org plus an Alertmanager and a PagerDuty integration.
fn config() -> String {
    format!(
        r#"{TEST_CONFIG}
[[integrations]]
id = "am-test"
kind = "alertmanager"
sha256 = "{am}"
team = "platform"
reopen_window = "30m"

[[integrations]]
id = "pd-test"
kind = "pagerduty"
sha256 = "{pd}"
team = "payments"
auto_mitigate = true

[[tokens]]
id = "pd-ingest"
sha256 = "{tok}"
integration = "pd-test"
scopes = ["ingest"]
"#,
        am = hex_sha256(AM_TOKEN),
        pd = hex_sha256(PD_KEY),
        tok = hex_sha256(INGEST_TOKEN)
    )
}

async fn server(tmp: &Path) -> Server {
    let config = write_config(tmp, &config());
    Server::start(&tmp.join("data"), &config).await
}

/// A minimal HTTP/1.1 POST over a raw socket: status code and body.
async fn http_post(addr: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<(u16, String)> {
    crate::support::http_request("POST", addr, path, headers, body).await
}

async fn post_am(addr: &str, body: &str) -> (u16, String) {
    post_am_raw(addr, body).await.expect("post to incidentd")
}

async fn enqueue(addr: &str, event: &str) -> (u16, String) {
    http_post(addr, "/v2/enqueue", &[], event.as_bytes())
        .await
        .expect("post to incidentd")
}

async fn all_incidents(server: &Server) -> Vec<pb::Incident> {
    let mut c = server.client().await;
    c.list_incidents(pb::ListIncidentsRequest {
        page_size: 500,
        ..Default::default()
    })
    .await
    .expect("list")
    .into_inner()
    .incidents
}

async fn full(server: &Server, id: &str) -> pb::Incident {
    let mut c = server.client().await;
    c.get_incident(pb::GetIncidentRequest { id: id.into() })
        .await
        .expect("get")
        .into_inner()
}

async fn timeline(server: &Server, id: &str) -> Vec<String> {
    let mut c = server.client().await;
    c.get_timeline(pb::GetTimelineRequest {
        id: id.into(),
        page_size: 500,
        ..Default::default()
    })
    .await
    .expect("timeline")
    .into_inner()
    .entries
    .into_iter()
    .map(|e| e.text)
    .collect()
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `secs`.
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn alert_statuses(i: &pb::Incident) -> BTreeMap<String, String> {
    i.alerts.iter().map(|a| (a.key.clone(), a.status.clone())).collect()
}

fn json_field(body: &str, name: &str) -> String {
    let pat = format!("\"{name}\":");
    body.split_once(&pat)
        .map(|(_, rest)| {
            rest.trim_start()
                .trim_start_matches('"')
                .split(['"', ',', '}'])
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}

// ---- the captured payloads and the webhook's edges ------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_webhook_captured_payloads_auth_and_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path()).await;
    let http = server.http.clone();

    // Auth: no token, a wrong token, a PagerDuty routing key.
    let path = "/v1/integrations/alertmanager";
    let (code, body) = http_post(&http, path, &[], FIRING.as_bytes()).await.unwrap();
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("authorization"), "{body}");
    let (code, _) = http_post(&http, path, &[("Authorization", "Bearer nope")], FIRING.as_bytes())
        .await
        .unwrap();
    assert_eq!(code, 401);
    let pd = format!("Bearer {PD_KEY}");
    let (code, _) = http_post(&http, path, &[("Authorization", &pd)], FIRING.as_bytes())
        .await
        .unwrap();
    assert_eq!(code, 403);

    // Bad payloads: 400 naming the problem, nothing created.
    for (payload, field) in [
        ("{\"version\":", "body"),
        ("", "body"),
        (
            &FIRING.replace("\"version\":\"4\"", "\"version\":\"3\"") as &str,
            "version",
        ),
        (&FIRING.replace("\"groupKey\"", "\"group\""), "groupKey"),
        (
            &FIRING.replacen("\"fingerprint\":\"16bfda62961ff554\"", "\"fingerprint\":16", 1),
            "alerts[0].fingerprint",
        ),
    ] {
        let (code, body) = post_am(&http, payload).await;
        assert_eq!(code, 400, "{field}: {body}");
        assert!(body.contains(field), "{body} should name {field}");
    }
    let huge = format!("{{\"version\":\"4\",\"pad\":\"{}\"}}", "x".repeat(5 * 1024 * 1024));
    let (code, body) = post_am(&http, &huge).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("body") && body.contains("larger than"), "{body}");
    assert!(
        all_incidents(&server).await.is_empty(),
        "a refused payload changes nothing"
    );

    // The real payloads: firing → one incident (team and severity from labels), two alerts.
    let (code, body) = post_am(&http, FIRING).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(json_field(&body, "outcome"), "created");
    let id = json_field(&body, "incident_id");
    let inc = full(&server, &id).await;
    assert_eq!(inc.title, "Payments API is not answering");
    assert_eq!(inc.team, "payments");
    assert_eq!(inc.severity, pb::Severity::Sev1 as i32);
    assert_eq!(
        alert_statuses(&inc),
        BTreeMap::from([
            ("16bfda62961ff554".to_string(), "firing".to_string()),
            ("4837bce62db63f3b".to_string(), "firing".to_string())
        ])
    );
    let a = &inc.alerts[0];
    assert_eq!(a.labels.get("instance").map(String::as_str), Some("pay-1:9100"));
    assert_eq!(a.source, "am-test");
    // Alertmanager resends: a duplicate, same incident, nothing new.
    let version = inc.version;
    let (_, body) = post_am(&http, FIRING).await;
    assert_eq!(
        (json_field(&body, "outcome"), json_field(&body, "incident_id")),
        ("deduplicated".into(), id.clone())
    );
    assert_eq!(full(&server, &id).await.version, version);
    // Partially resolved, then resolved (listing only the last alert).
    post_am(&http, PARTIAL).await;
    let inc = full(&server, &id).await;
    assert_eq!(alert_statuses(&inc)["16bfda62961ff554"], "resolved");
    assert_eq!(alert_statuses(&inc)["4837bce62db63f3b"], "firing");
    assert!(inc.alerts[0].ended_at.is_some());
    let (code, _) = post_am(&http, RESOLVED).await;
    assert_eq!(code, 200);
    let inc = full(&server, &id).await;
    assert!(inc.alerts.iter().all(|a| a.status == "resolved"));
    assert_eq!(inc.status, pb::Status::Investigating as i32, "never auto-resolved");
    let texts = timeline(&server, &id).await;
    assert!(texts.iter().any(|t| t.contains("All 2 alert(s)")), "{texts:#?}");
    assert_eq!(all_incidents(&server).await.len(), 1);
    let (code, metrics) = crate::support::http_get(&http, "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("incidentd_alerts_total{outcome=\"created\"} 1"),
        "{metrics}"
    );
    server.terminate().await;
}

// ---- PagerDuty Events v2 -----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_events_v2_enqueue() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path()).await;
    let http = server.http.clone();
    // PagerDuty's documented trigger example, with our routing key.
    let trigger = format!(
        r#"{{"payload":{{"summary":"Example alert on host1.example.com","timestamp":"2015-07-17T08:42:58.315+0000",
           "source":"monitoringtool:cloudvendor:central-region-dc-01:852559987:cluster/api-stats-prod-003",
           "severity":"info","component":"postgres","group":"prod-datapipe","class":"deploy",
           "custom_details":{{"ping time":"1500ms","load avg":0.75}}}},
           "routing_key":"{PD_KEY}","dedup_key":"samplekeyhere",
           "images":[{{"src":"https://www.pagerduty.com/wp-content/uploads/2016/05/pagerduty-logo-green.png","href":"https://example.com/","alt":"Example text"}}],
           "links":[{{"href":"https://example.com/","text":"Link text"}}],
           "event_action":"trigger","client":"Sample Monitoring Service","client_url":"https://monitoring.service.com"}}"#
    );
    let (code, body) = enqueue(&http, &trigger).await;
    assert_eq!(code, 202, "{body}");
    assert!(
        body.contains("\"status\":\"success\"") && body.contains("\"message\":\"Event processed\""),
        "{body}"
    );
    assert_eq!(json_field(&body, "dedup_key"), "samplekeyhere");
    let id = json_field(&body, "incident_id");
    let inc = full(&server, &id).await;
    assert_eq!(inc.team, "payments", "the integration's team");
    assert_eq!(inc.severity, pb::Severity::Sev4 as i32, "info → SEV-4");
    assert_eq!(
        inc.alerts[0].labels.get("component").map(String::as_str),
        Some("postgres")
    );
    assert_eq!(inc.alerts[0].labels.get("load avg").map(String::as_str), Some("0.75"));
    // The same key again: deduplicated into the same incident.
    let (code, body) = enqueue(&http, &trigger).await;
    assert_eq!((code, json_field(&body, "incident_id")), (202, id.clone()));
    // Acknowledge (documented example shape), then resolve.
    let follow = |action: &str, key: &str| {
        format!(r#"{{"routing_key":"{PD_KEY}","dedup_key":"{key}","event_action":"{action}"}}"#)
    };
    let (code, _) = enqueue(&http, &follow("acknowledge", "samplekeyhere")).await;
    assert_eq!(code, 202);
    let inc = full(&server, &id).await;
    assert!(inc.acknowledged_at.is_some());
    assert_eq!(alert_statuses(&inc)["samplekeyhere"], "acknowledged");
    let (code, _) = enqueue(&http, &follow("resolve", "samplekeyhere")).await;
    assert_eq!(code, 202);
    let inc = full(&server, &id).await;
    assert_eq!(alert_statuses(&inc)["samplekeyhere"], "resolved");
    assert_eq!(
        inc.status,
        pb::Status::Mitigating as i32,
        "auto_mitigate = true for pd-test"
    );
    // A follow-up on a key without an open incident is accepted and says it was ignored.
    let (code, body) = enqueue(&http, &follow("resolve", "never-seen")).await;
    assert_eq!(code, 202, "{body}");
    assert!(body.contains("ignored"), "{body}");
    // A trigger without dedup_key gets one generated and returned.
    let keyless = format!(
        r#"{{"routing_key":"{PD_KEY}","event_action":"trigger","payload":{{"summary":"disk full","source":"db-1","severity":"critical","custom_details":{{"team":"platform"}}}}}}"#
    );
    let (code, body) = enqueue(&http, &keyless).await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(json_field(&body, "dedup_key").len(), 26, "{body}");
    let other = full(&server, &json_field(&body, "incident_id")).await;
    assert_eq!(
        (other.team.as_str(), other.severity),
        ("platform", pb::Severity::Sev1 as i32)
    );

    // Invalid events: 400 with every problem named.
    for (event, needles) in [
        ("{", vec!["body"]),
        ("{}", vec!["routing_key", "event_action"]),
        (
            r#"{"routing_key":"nope","event_action":"trigger","payload":{}}"#,
            vec!["routing_key", "payload.summary", "payload.source", "payload.severity"],
        ),
        (
            &format!(r#"{{"routing_key":"{PD_KEY}","event_action":"explode","dedup_key":"k"}}"#) as &str,
            vec!["event_action"],
        ),
        (
            &format!(r#"{{"routing_key":"{PD_KEY}","event_action":"resolve"}}"#),
            vec!["dedup_key"],
        ),
        (
            &format!(
                r#"{{"routing_key":"{PD_KEY}","event_action":"trigger","payload":{{"summary":"s","source":"x","severity":"urgent"}}}}"#
            ),
            vec!["payload.severity"],
        ),
        (
            &format!(
                r#"{{"routing_key":"{PD_KEY}","event_action":"trigger","payload":{{"summary":"{}","source":"x","severity":"info"}}}}"#,
                "s".repeat(1025)
            ),
            vec!["payload.summary"],
        ),
    ] {
        let (code, body) = enqueue(&http, event).await;
        assert_eq!(code, 400, "{event}: {body}");
        assert!(
            body.contains("\"status\":\"invalid event\"") && body.contains("\"errors\""),
            "{body}"
        );
        for n in needles {
            assert!(body.contains(n), "{body} should name {n}");
        }
    }
    assert_eq!(all_incidents(&server).await.len(), 2, "refused events change nothing");
    server.terminate().await;
}

// ---- gRPC AlertService -------------------------------------------------------

fn alert_req(key: &str, action: pb::AlertAction, fp: &str) -> pb::IngestAlertRequest {
    pb::IngestAlertRequest {
        dedup_key: key.into(),
        action: action as i32,
        source: "storm-test".into(),
        summary: format!("{key} is failing"),
        fingerprint: fp.into(),
        routing_key: PD_KEY.into(),
        labels: [("team".to_string(), "payments".to_string())].into(),
        ..Default::default()
    }
}

async fn alert_client(server: &Server) -> AlertServiceClient<tonic::transport::Channel> {
    AlertServiceClient::connect(format!("http://{}", server.grpc))
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_alert_service_semantics() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path()).await;
    let mut c = alert_client(&server).await;
    let r = c
        .ingest_alert(alert_req("db-down", pb::AlertAction::Trigger, ""))
        .await
        .unwrap()
        .into_inner();
    assert!(r.created);
    assert_eq!(r.outcome, pb::IngestOutcome::Created as i32);
    assert_eq!(r.dedup_key, "db-down");
    let again = c
        .ingest_alert(alert_req("db-down", pb::AlertAction::Trigger, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (again.created, again.incident_id.as_str()),
        (false, r.incident_id.as_str())
    );
    // The bearer token of an ingest-scoped [[tokens]] entry works like the routing key.
    let mut ack = tonic::Request::new(pb::IngestAlertRequest {
        routing_key: String::new(),
        ..alert_req("db-down", pb::AlertAction::Acknowledge, "")
    });
    ack.metadata_mut()
        .insert("authorization", format!("Bearer {INGEST_TOKEN}").parse().unwrap());
    c.ingest_alert(ack).await.unwrap();
    assert!(full(&server, &r.incident_id).await.acknowledged_at.is_some());
    c.ingest_alert(alert_req("db-down", pb::AlertAction::Resolve, ""))
        .await
        .unwrap();
    assert_eq!(
        alert_statuses(&full(&server, &r.incident_id).await)["db-down"],
        "resolved"
    );
    // Resolve the incident; a follow-up is ignored and says so.
    let mut ic = server.client().await;
    ic.resolve_incident(pb::ResolveIncidentRequest {
        id: r.incident_id.clone(),
        note: "fixed".into(),
        by: "alice".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let ignored = c
        .ingest_alert(alert_req("db-down", pb::AlertAction::Acknowledge, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ignored.outcome, pb::IngestOutcome::Ignored as i32);
    assert!(ignored.message.contains("resolved"), "{}", ignored.message);
    // Within the reopen window (30 min default) a trigger reopens the same incident.
    let reopened = c
        .ingest_alert(alert_req("db-down", pb::AlertAction::Trigger, "second"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (reopened.created, reopened.incident_id.as_str()),
        (false, r.incident_id.as_str())
    );
    assert_eq!(
        full(&server, &r.incident_id).await.status,
        pb::Status::Investigating as i32
    );

    // Errors name the field.
    use crate::support::assert_status;
    let no_key = pb::IngestAlertRequest {
        routing_key: String::new(),
        ..alert_req("x", pb::AlertAction::Trigger, "")
    };
    assert_status(
        c.ingest_alert(no_key).await,
        tonic::Code::Unauthenticated,
        "routing_key",
    );
    let bad_key = pb::IngestAlertRequest {
        routing_key: "wrong".into(),
        ..alert_req("x", pb::AlertAction::Trigger, "")
    };
    assert_status(
        c.ingest_alert(bad_key).await,
        tonic::Code::Unauthenticated,
        "routing_key",
    );
    let no_action = alert_req("x", pb::AlertAction::Unspecified, "");
    assert_status(c.ingest_alert(no_action).await, tonic::Code::InvalidArgument, "action");
    let no_key = alert_req("", pb::AlertAction::Resolve, "");
    assert_status(c.ingest_alert(no_key).await, tonic::Code::InvalidArgument, "dedup_key");
    let long = alert_req(&"k".repeat(300), pb::AlertAction::Trigger, "");
    assert_status(c.ingest_alert(long).await, tonic::Code::InvalidArgument, "dedup_key");
    let mut labels = alert_req("y", pb::AlertAction::Trigger, "");
    labels.labels = (0..100).map(|i| (format!("l{i}"), "v".to_string())).collect();
    assert_status(c.ingest_alert(labels).await, tonic::Code::InvalidArgument, "labels");

    // The stream counts, and rejects bad items without failing the stream.
    let items = vec![
        alert_req("s1", pb::AlertAction::Trigger, "a"),
        alert_req("s1", pb::AlertAction::Trigger, "b"),
        alert_req("s1", pb::AlertAction::Unspecified, "c"),
        alert_req("s2", pb::AlertAction::Resolve, "z"),
    ];
    let counts = c.ingest_alerts(tokio_stream::iter(items)).await.unwrap().into_inner();
    assert_eq!(
        (
            counts.accepted,
            counts.created,
            counts.deduplicated,
            counts.ignored,
            counts.rejected
        ),
        (3, 1, 1, 1, 1)
    );
    assert_eq!(counts.rejections[0].index, 2);
    assert!(counts.rejections[0].message.contains("action"));
    server.terminate().await;
}

// ---- the real Alertmanager ---------------------------------------------------

struct Alertmanager {
    child: tokio::process::Child,
    addr: String,
}

impl Alertmanager {
    /// Starts the real Alertmanager on a free loopback port with a webhook receiver at `incidentd_http`.
    async fn start(dir: &Path, incidentd_http: &str) -> Alertmanager {
        assert!(
            Path::new(AM_BINARY).exists(),
            "{AM_BINARY} is missing: install Debian's prometheus-alertmanager (.ci/run does)"
        );
        let config = format!(
            r#"global:
  resolve_timeout: 5m
route:
  receiver: incidentd
  group_by: ['alertname', 'service']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: incidentd
    webhook_configs:
      - url: http://{incidentd_http}/v1/integrations/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {AM_TOKEN}
"#
        );
        let config_path: PathBuf = dir.join("alertmanager.yml");
        std::fs::write(&config_path, config).unwrap();
        let storage = dir.join("am-data");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addr = format!("127.0.0.1:{port}");
        let child = tokio::process::Command::new(AM_BINARY)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start alertmanager");
        let am = Alertmanager { child, addr };
        let ready = am.addr.clone();
        eventually(30, "alertmanager /-/ready", || {
            let ready = ready.clone();
            async move {
                matches!(
                    crate::support::http_request("GET", &ready, "/-/ready", &[], b"").await,
                    Ok((200, _))
                )
                .then_some(())
            }
        })
        .await;
        am
    }

    /// Posts alerts to Alertmanager's own API (`POST /api/v2/alerts`).
    async fn post(&self, alerts: &str) {
        let (code, body) = http_post(&self.addr, "/api/v2/alerts", &[], alerts.as_bytes())
            .await
            .expect("post to alertmanager");
        assert_eq!(code, 200, "alertmanager refused the alerts: {body}");
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn rfc3339(ms_ago: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    incidentd_domain::Timestamp(now - ms_ago).to_string()
}

/// One Alertmanager API alert; `resolved` puts `endsAt` in the past.
fn am_alert(name: &str, instance: &str, team: &str, severity: &str, resolved: bool) -> String {
    let ends = if resolved {
        format!(r#","endsAt":"{}""#, rfc3339(1_000))
    } else {
        String::new()
    };
    format!(
        r#"{{"labels":{{"alertname":"{name}","service":"payments-api","instance":"{instance}","team":"{team}","severity":"{severity}"}},
            "annotations":{{"summary":"{name} on payments"}},"startsAt":"{}"{ends},"generatorURL":"http://prometheus.test/graph"}}"#,
        rfc3339(60_000)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_alertmanager_opens_attaches_and_resolves() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path()).await;
    let am = Alertmanager::start(tmp.path(), &server.http).await;

    // Two alerts of one group (alertname + service), and one of another group with an unknown team.
    am.post(&format!(
        "[{},{},{}]",
        am_alert("PaymentsLatency", "pay-1", "payments", "error", false),
        am_alert("PaymentsLatency", "pay-2", "payments", "error", false),
        am_alert("QueueBacklog", "q-1", "no-such-team", "warning", false),
    ))
    .await;
    let srv = &server;
    let incidents = eventually(20, "two incidents with their alerts", move || async move {
        let all = all_incidents(srv).await;
        let mut full_ones = Vec::new();
        for i in &all {
            full_ones.push(full(srv, &i.id).await);
        }
        let alerts: usize = full_ones.iter().map(|i| i.alerts.len()).sum();
        (full_ones.len() == 2 && alerts == 3).then_some(full_ones)
    })
    .await;
    let latency = incidents
        .iter()
        .find(|i| i.title == "PaymentsLatency on payments")
        .expect("latency incident");
    let backlog = incidents
        .iter()
        .find(|i| i.title == "QueueBacklog on payments")
        .expect("backlog incident");
    assert_eq!(
        (latency.team.as_str(), latency.severity),
        ("payments", pb::Severity::Sev2 as i32)
    );
    assert_eq!(latency.services, ["payments-api"]);
    assert_eq!(latency.alerts.len(), 2);
    assert!(
        latency
            .alerts
            .iter()
            .all(|a| a.status == "firing" && a.source == "am-test")
    );
    assert_eq!(
        (backlog.team.as_str(), backlog.severity),
        ("platform", pb::Severity::Sev3 as i32)
    );
    let notes = timeline(&server, &backlog.id).await;
    assert!(
        notes
            .iter()
            .any(|t| t.contains("\"no-such-team\", which is not a configured team")),
        "{notes:#?}"
    );

    // A further alert of the group attaches to the same incident (by fingerprint).
    am.post(&format!(
        "[{}]",
        am_alert("PaymentsLatency", "pay-3", "payments", "error", false)
    ))
    .await;
    let id = latency.id.clone();
    let idr = id.as_str();
    eventually(20, "the third alert attached", move || async move {
        (full(srv, idr).await.alerts.len() == 3).then_some(())
    })
    .await;

    // Resolving two of them in Alertmanager marks them resolved here; the incident stays open.
    am.post(&format!(
        "[{},{}]",
        am_alert("PaymentsLatency", "pay-1", "payments", "error", true),
        am_alert("PaymentsLatency", "pay-2", "payments", "error", true),
    ))
    .await;
    let inc = eventually(20, "two alerts resolved", move || async move {
        let inc = full(srv, idr).await;
        (inc.alerts.iter().filter(|a| a.status == "resolved").count() == 2).then_some(inc)
    })
    .await;
    assert!(
        inc.alerts
            .iter()
            .filter(|a| a.status == "resolved")
            .all(|a| a.ended_at.is_some())
    );
    am.post(&format!(
        "[{}]",
        am_alert("PaymentsLatency", "pay-3", "payments", "error", true)
    ))
    .await;
    eventually(20, "all alerts resolved and noted", move || async move {
        let texts = timeline(srv, idr).await;
        texts.iter().any(|t| t.contains("All 3 alert(s)")).then_some(())
    })
    .await;
    let inc = full(&server, &id).await;
    assert_eq!(
        inc.status,
        pb::Status::Investigating as i32,
        "the commander resolves, not the alerts"
    );
    assert_eq!(all_incidents(&server).await.len(), 2, "one incident per group");
    drop(am);
    server.terminate().await;
}

// ---- the storm -----------------------------------------------------------------

const STORM_GROUPS: usize = 50;
const STORM_PER_GROUP: usize = 200;
/// Alerts per gRPC stream / per Alertmanager notification.
const STORM_CHUNK: usize = 10;

fn storm_key(group: usize) -> String {
    format!("{{}}:{{alertname=\"Storm{group}\", service=\"payments-api\"}}")
}

/// The webhook body of one chunk: alerts `from..from + STORM_CHUNK` of a group.
fn storm_webhook(group: usize, from: usize) -> String {
    let alerts: Vec<String> = (from..from + STORM_CHUNK)
        .map(|n| {
            format!(
                r#"{{"status":"firing","labels":{{"alertname":"Storm{group}","instance":"i{n}","team":"payments","severity":"critical"}},"annotations":{{}},"startsAt":"2026-11-26T18:57:27Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"g{group}-a{n}"}}"#
            )
        })
        .collect();
    format!(
        r#"{{"receiver":"incidentd","status":"firing","alerts":[{}],"groupLabels":{{"alertname":"Storm{group}"}},"commonLabels":{{"alertname":"Storm{group}","team":"payments"}},"commonAnnotations":{{}},"externalURL":"http://am.test","version":"4","groupKey":"{}","truncatedAlerts":0}}"#,
        alerts.join(","),
        storm_key(group).replace('"', "\\\"")
    )
}

#[derive(Clone)]
struct Addrs {
    generation: u64,
    http: String,
    grpc: String,
}

/// 10k alerts over 50 groups from 8 concurrent senders (4 gRPC streams, 4
/// webhook posters, every group fed by both), `kill -9` in the middle: exactly
/// one incident per group and every alert recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_storm_one_incident_per_group_and_no_lost_alert_across_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &config());
    let data = tmp.path().join("data");
    let server = Server::start(&data, &config).await;
    let (tx, rx) = tokio::sync::watch::channel(Addrs {
        generation: 0,
        http: server.http.clone(),
        grpc: server.grpc.clone(),
    });
    // Chunks (group, first alert): even chunks of a group go over gRPC, odd ones over HTTP.
    let mut chunks: Vec<(usize, usize)> = Vec::new();
    for from in (0..STORM_PER_GROUP).step_by(STORM_CHUNK) {
        for group in 0..STORM_GROUPS {
            chunks.push((group, from));
        }
    }
    let total = STORM_GROUPS * STORM_PER_GROUP;
    let acked = Arc::new(AtomicUsize::new(0));
    let senders = 8;
    let mut tasks = Vec::new();
    for s in 0..senders {
        let grpc = s % 2 == 0;
        let mine: Vec<(usize, usize)> = chunks
            .iter()
            .copied()
            .filter(|(group, from)| {
                (from / STORM_CHUNK).is_multiple_of(2) == grpc && (group + from / STORM_CHUNK) % 4 == s / 2
            })
            .collect();
        let rx = rx.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            for (group, from) in mine {
                let deadline = Instant::now() + Duration::from_secs(120);
                loop {
                    let addrs = rx.borrow().clone();
                    let ok = if grpc {
                        send_grpc_chunk(&addrs.grpc, group, from).await
                    } else {
                        matches!(
                            post_am_raw(&addrs.http, &storm_webhook(group, from)).await,
                            Ok((200, _))
                        )
                    };
                    if ok {
                        acked.fetch_add(STORM_CHUNK, Ordering::SeqCst);
                        break;
                    }
                    assert!(Instant::now() < deadline, "chunk ({group}, {from}) never acknowledged");
                    // The server is gone: wait for the restarted one (bounded), then resend.
                    let mut rx = rx.clone();
                    let _ =
                        tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|a| a.generation > addrs.generation))
                            .await;
                }
            }
        }));
    }
    // Kill -9 once about half is acknowledged, restart on the same data dir.
    let counter = &acked;
    let acked_at_kill = eventually(120, "half the storm acknowledged", move || async move {
        let n = counter.load(Ordering::SeqCst);
        (n >= total / 2).then_some(n)
    })
    .await;
    server.kill9().await;
    let server = Server::start(&data, &config).await;
    tx.send(Addrs {
        generation: 1,
        http: server.http.clone(),
        grpc: server.grpc.clone(),
    })
    .unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(acked.load(Ordering::SeqCst), total);
    assert!(acked_at_kill < total, "the kill came in the middle");

    let incidents = all_incidents(&server).await;
    assert_eq!(incidents.len(), STORM_GROUPS, "exactly one incident per group");
    let mut seen = BTreeSet::new();
    for i in &incidents {
        let inc = full(&server, &i.id).await;
        assert_eq!(inc.alerts.len(), STORM_PER_GROUP, "every alert of {}", inc.title);
        for a in &inc.alerts {
            assert!(seen.insert(a.key.clone()), "alert {} recorded twice", a.key);
        }
    }
    assert_eq!(seen.len(), total, "no alert lost");
    server.terminate().await;
}

async fn post_am_raw(addr: &str, body: &str) -> std::io::Result<(u16, String)> {
    let auth = format!("Bearer {AM_TOKEN}");
    http_post(
        addr,
        "/v1/integrations/alertmanager",
        &[("Authorization", &auth)],
        body.as_bytes(),
    )
    .await
}

/// One client stream of `STORM_CHUNK` alerts; true when every one is acknowledged.
async fn send_grpc_chunk(addr: &str, group: usize, from: usize) -> bool {
    let Ok(mut c) = AlertServiceClient::connect(format!("http://{addr}")).await else {
        return false;
    };
    let items: Vec<pb::IngestAlertRequest> = (from..from + STORM_CHUNK)
        .map(|n| alert_req(&storm_key(group), pb::AlertAction::Trigger, &format!("g{group}-a{n}")))
        .collect();
    match c.ingest_alerts(tokio_stream::iter(items)).await {
        Ok(r) => {
            let r = r.into_inner();
            assert_eq!(r.rejected, 0, "{:?}", r.rejections);
            r.accepted == STORM_CHUNK as u64
        }
        Err(_) => false,
    }
}
