//! The status page over real incident actors and a real store (temp dir):
//! Statuspage JSON shapes against the fixtures, no internal / executive /
//! drill text anywhere, overrides, Atom through a real XML parser, and
//! maintenance statuses on a paused clock, durable across a restart.

use incidentd_actors::{Clock, Handle, OpenOrg, Options};
use incidentd_domain::{
    Action, Command, ComponentStatus, DataLoss, EntryKind, IncidentId, Severity, Timestamp, UpdateFields, UpdateKind,
};
use incidentd_statuspage::{Catalog, ComponentDef, DocKind, ScheduleRequest, StatusPage, UpdateRequest};
use incidentd_store::{Store, StoreConfig};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const T0: i64 = 1_795_729_200_000; // 2026-11-26T21:40:00Z
const MIN: i64 = 60_000;

fn catalog() -> Catalog {
    let c = |id: &str, name: &str, group: Option<&str>| ComponentDef {
        id: id.into(),
        name: name.into(),
        group: group.map(str::to_string),
        description: Some(format!("{name} for customers")),
    };
    Catalog {
        title: "Test Corp Status".into(),
        components: vec![
            c("payments-api", "Payments API", Some("Checkout")),
            c("checkout-web", "Checkout", Some("Checkout")),
            c("search", "Search", None),
        ],
        services: vec![
            "payments-api".into(),
            "checkout-web".into(),
            "search".into(),
            "k8s".into(),
        ],
    }
}

struct Running {
    handle: Handle,
    store: Store,
    page: StatusPage,
}

async fn start(dir: &Path, at: Timestamp) -> Running {
    let cfg = StoreConfig {
        dir: dir.to_path_buf(),
        snapshot_flush_every: Duration::from_secs(3600),
    };
    let (store, mut recovery) = tokio::task::spawn_blocking(move || Store::open(cfg))
        .await
        .expect("join")
        .expect("store opens");
    let maintenance = incidentd_statuspage::split_recovery(&mut recovery);
    let opts = Options {
        clock: Clock::anchored(at),
        snapshot_every: 4,
    };
    let (handle, _) = Handle::start(store.clone(), recovery, Arc::new(OpenOrg), opts)
        .await
        .expect("actors start");
    let page = StatusPage::start(handle.clone(), catalog(), maintenance)
        .await
        .expect("status page starts");
    Running { handle, store, page }
}

impl Running {
    async fn stop(self) {
        self.page.stop();
        self.handle.shutdown().await;
        self.store.close().await.expect("store closes");
    }

    async fn declare(&self, title: &str, services: &[&str], severity: Severity, drill: bool) -> IncidentId {
        let cmd = Command {
            access: Default::default(),
            by: Some("alice".into()),
            action: Action::Declare {
                id: IncidentId::default(),
                number: 0,
                title: title.into(),
                team: "payments".into(),
                services: services.iter().map(|s| s.to_string()).collect(),
                severity: Some(severity),
                summary: "SECRET-SUMMARY root cause is the ledger".into(),
                commander: None,
                drill,
            },
        };
        self.handle.declare(cmd, None).await.expect("declared").id
    }

    async fn run(&self, id: IncidentId, action: Action) {
        let cmd = Command {
            access: Default::default(),
            by: Some("bob".into()),
            action,
        };
        self.handle
            .execute(id, cmd, None, incidentd_actors::ReplyKind::Incident)
            .await
            .expect("command runs");
    }

    async fn post(&self, id: IncidentId, kind: UpdateKind, fields: UpdateFields) {
        self.run(id, Action::PostUpdate { kind, fields }).await;
    }

    fn doc(&self, kind: DocKind) -> String {
        String::from_utf8(self.page.rendered().doc(kind).body.to_vec()).expect("utf-8")
    }

    fn json(&self, kind: DocKind) -> Value {
        serde_json::from_str(&self.doc(kind)).expect("valid JSON")
    }

    /// Bounded wait (real-time deadline) until the rendered page satisfies `pred`.
    async fn wait_until(&self, what: &str, pred: impl Fn(&Running) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !pred(self) {
            assert!(std::time::Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::task::yield_now().await;
        }
    }

    fn component_status(&self, id: &str) -> String {
        let comps = self.json(DocKind::Components);
        comps["components"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["id"] == id))
            .map(|c| c["status"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    }
}

/// Keeps the runtime busy so a paused clock moves only by `advance`
/// (store appends complete on the store's threads; see incidentd-actors tests).
fn hold_the_clock() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        loop {
            tokio::task::yield_now().await;
        }
    })
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("fixture JSON")
}

/// Same keys at every level and the same JSON types (`null` on either side matches).
fn check_shape(actual: &Value, want: &Value, path: &str) {
    match (actual, want) {
        (_, Value::Null) | (Value::Null, _) => {}
        (Value::Object(a), Value::Object(w)) => {
            let ak: Vec<&String> = a.keys().collect();
            let wk: Vec<&String> = w.keys().collect();
            assert_eq!(ak, wk, "keys of {path}");
            for (k, v) in w {
                check_shape(&a[k], v, &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(w)) => {
            if let Some(w0) = w.first() {
                for (i, x) in a.iter().enumerate() {
                    check_shape(x, w0, &format!("{path}[{i}]"));
                }
            }
        }
        (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Number(_), Value::Number(_)) => {}
        (a, w) => panic!("{path}: {a} is not shaped like {w}"),
    }
}

fn one_of(v: &Value, allowed: &[&str], path: &str) {
    let s = v.as_str().unwrap_or_else(|| panic!("{path} is not a string: {v}"));
    assert!(allowed.contains(&s), "{path} = {s:?}, not one of {allowed:?}");
}

const COMPONENT_STATUSES: &[&str] = &[
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
];
const INCIDENT_STATUSES: &[&str] = &["investigating", "identified", "monitoring", "resolved", "postmortem"];
const IMPACTS: &[&str] = &["none", "minor", "major", "critical", "maintenance"];
const MAINTENANCE_STATUSES: &[&str] = &["scheduled", "in_progress", "verifying", "completed"];

fn check_components(list: &Value, path: &str) {
    for (i, c) in list.as_array().expect("array").iter().enumerate() {
        let want = if c["group"] == true {
            fixture("group.json")
        } else {
            fixture("component.json")
        };
        let p = format!("{path}[{i}]");
        check_shape(c, &want, &p);
        one_of(&c["status"], COMPONENT_STATUSES, &format!("{p}.status"));
    }
}

fn check_incidents(list: &Value, path: &str) {
    for (i, inc) in list.as_array().expect("array").iter().enumerate() {
        let p = format!("{path}[{i}]");
        check_shape(inc, &fixture("incident.json"), &p);
        one_of(&inc["status"], INCIDENT_STATUSES, &format!("{p}.status"));
        one_of(&inc["impact"], IMPACTS, &format!("{p}.impact"));
        for (j, u) in inc["incident_updates"].as_array().expect("updates").iter().enumerate() {
            one_of(
                &u["status"],
                INCIDENT_STATUSES,
                &format!("{p}.incident_updates[{j}].status"),
            );
        }
        check_components(&inc["components"], &format!("{p}.components"));
    }
}

fn check_maintenances(list: &Value, path: &str) {
    for (i, m) in list.as_array().expect("array").iter().enumerate() {
        let p = format!("{path}[{i}]");
        check_shape(m, &fixture("maintenance.json"), &p);
        one_of(&m["status"], MAINTENANCE_STATUSES, &format!("{p}.status"));
        assert_eq!(m["impact"], "maintenance");
        check_components(&m["components"], &format!("{p}.components"));
    }
}

/// Every document, checked against the Statuspage shapes.
fn check_all_shapes(r: &Running) {
    let summary = r.json(DocKind::Summary);
    let keys: Vec<&String> = summary.as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        ["components", "incidents", "page", "scheduled_maintenances", "status"]
    );
    check_shape(&summary["page"], &fixture("page.json"), "summary.page");
    check_shape(&summary["status"], &fixture("status.json"), "summary.status");
    one_of(&summary["status"]["indicator"], IMPACTS, "summary.status.indicator");
    check_components(&summary["components"], "summary.components");
    check_incidents(&summary["incidents"], "summary.incidents");
    check_maintenances(&summary["scheduled_maintenances"], "summary.scheduled_maintenances");

    let status = r.json(DocKind::Status);
    assert_eq!(status.as_object().map(|o| o.len()), Some(2));
    check_shape(&status["page"], &fixture("page.json"), "status.page");
    check_shape(&status["status"], &fixture("status.json"), "status.status");
    check_components(&r.json(DocKind::Components)["components"], "components");
    check_incidents(&r.json(DocKind::Incidents)["incidents"], "incidents");
    check_incidents(&r.json(DocKind::Unresolved)["incidents"], "unresolved");
    check_maintenances(
        &r.json(DocKind::Maintenances)["scheduled_maintenances"],
        "scheduled_maintenances",
    );
}

const ATOM: &str = "http://www.w3.org/2005/Atom";

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name((ATOM, name)))
}

/// Atom (RFC 4287) through a real XML parser: required elements present.
fn check_atom(xml: &str) -> Vec<(String, String)> {
    let doc = roxmltree::Document::parse(xml).expect("well-formed XML");
    let atom = ATOM;
    let feed = doc.root_element();
    assert!(feed.has_tag_name((atom, "feed")), "root is atom:feed");
    for name in ["id", "title", "updated", "author"] {
        assert!(child(feed, name).is_some(), "feed has {name}");
    }
    assert!(
        feed.children()
            .any(|c| c.has_tag_name((atom, "link")) && c.attribute("rel") == Some("self"))
    );
    let mut entries = Vec::new();
    for e in feed.children().filter(|c| c.has_tag_name((atom, "entry"))) {
        for name in ["id", "title", "updated", "content"] {
            assert!(child(e, name).is_some(), "entry has {name}");
        }
        let text = |name: &str| child(e, name).and_then(|n| n.text()).unwrap_or_default().to_string();
        entries.push((text("title"), text("content")));
    }
    entries
}

fn all_docs(r: &Running) -> String {
    DocKind::ALL.iter().map(|k| r.doc(*k)).collect::<Vec<_>>().join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_view_shapes_and_no_leaks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = start(dir.path(), Timestamp(T0)).await;
    check_all_shapes(&r);
    assert_eq!(r.json(DocKind::Status)["status"]["indicator"], "none");

    // A real incident full of internal text, and a drill.
    let id = r
        .declare(
            "SECRET-TITLE ledger primary OOM",
            &["payments-api"],
            Severity::Sev1,
            false,
        )
        .await;
    r.run(
        id,
        Action::SetImpact {
            impact: Some("SECRET-IMPACT ledger writes fail".into()),
            customer_impact_percent: Some(40),
            data_loss: Some(DataLoss::Possible),
            regulatory: None,
        },
    )
    .await;
    r.run(
        id,
        Action::AddEntry {
            kind: EntryKind::Finding,
            text: "SECRET-FINDING pool exhausted".into(),
        },
    )
    .await;
    let internal = UpdateFields {
        current_theory: Some("SECRET-THEORY connection leak".into()),
        ..Default::default()
    };
    r.post(id, UpdateKind::Internal, internal).await;
    let exec = UpdateFields {
        business_impact: Some("SECRET-EXEC revenue at risk".into()),
        ..Default::default()
    };
    r.post(id, UpdateKind::Executive, exec).await;
    // The drill first; the real customer update after it is seen on the feed,
    // so once the page shows the real update it has processed the drill's.
    let mut feed = r.handle.watch_all();
    let drill = r
        .declare("DRILL-TITLE game day", &["search"], Severity::Sev1, true)
        .await;
    let drill_update = UpdateFields {
        customer_symptom: Some("DRILL-SYMPTOM searches fail".into()),
        ..Default::default()
    };
    r.post(drill, UpdateKind::Customer, drill_update).await;
    loop {
        let p = feed.recv().await.expect("feed");
        if p.incident == drill && matches!(p.event.kind, incidentd_domain::EventKind::UpdatePosted { .. }) {
            break;
        }
    }
    let customer = UpdateFields {
        customer_symptom: Some("card payments time out".into()),
        ..Default::default()
    };
    r.post(id, UpdateKind::Customer, customer).await;
    r.wait_until("the customer update is on the page", |r| {
        r.doc(DocKind::Summary).contains("card payments time out")
    })
    .await;
    let comps = r.page.components().await.expect("components");
    assert_eq!(comps.len(), 3);

    assert_eq!(r.component_status("payments-api"), "major_outage");
    assert_eq!(r.component_status("checkout-web"), "operational");
    assert_eq!(
        r.component_status("search"),
        "operational",
        "a drill never touches the page"
    );
    assert_eq!(
        r.component_status("group-checkout"),
        "major_outage",
        "a group shows its worst member"
    );
    let summary = r.json(DocKind::Summary);
    assert_eq!(summary["status"]["indicator"], "critical");
    let incidents = summary["incidents"].as_array().expect("incidents");
    assert_eq!(incidents.len(), 1, "the drill is not listed");
    assert_eq!(incidents[0]["impact"], "critical");
    assert_eq!(incidents[0]["status"], "investigating");
    assert_eq!(incidents[0]["name"], "Major outage: Payments API");
    let updates = incidents[0]["incident_updates"].as_array().expect("updates");
    assert_eq!(updates.len(), 1, "only the customer-facing update");
    check_all_shapes(&r);

    let everything = all_docs(&r);
    for secret in ["SECRET", "DRILL", "searches fail", "ledger", "bob", "alice"] {
        assert!(!everything.contains(secret), "{secret:?} leaked onto the status page");
    }
    let entries = check_atom(&r.doc(DocKind::Atom));
    assert_eq!(entries.len(), 1);
    assert!(entries[0].1.contains("card payments time out"));

    // Mitigating → monitoring, in the public vocabulary.
    r.run(
        id,
        Action::SetStatus {
            status: incidentd_domain::Status::Mitigating,
            note: "SECRET-NOTE rolled back".into(),
        },
    )
    .await;
    r.wait_until("monitoring", |r| {
        r.json(DocKind::Unresolved)["incidents"][0]["status"] == "monitoring"
    })
    .await;
    assert!(!all_docs(&r).contains("SECRET"));
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn override_wins_and_ends_with_the_incident() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = start(dir.path(), Timestamp(T0)).await;
    let id = r.declare("db", &["payments-api"], Severity::Sev1, false).await;
    let c = r
        .page
        .set_component_status(
            id,
            "payments-api".into(),
            ComponentStatus::PartialOutage,
            Some("bob".into()),
            Default::default(),
            None,
        )
        .await
        .expect("override");
    assert_eq!(
        c.status,
        ComponentStatus::PartialOutage,
        "the override wins over the severity"
    );
    assert_eq!(c.worst, Some((id, true)));
    // An override on a component the incident did not name.
    let c = r
        .page
        .set_component_status(
            id,
            "search".into(),
            ComponentStatus::DegradedPerformance,
            None,
            Default::default(),
            None,
        )
        .await
        .expect("override");
    assert_eq!(c.status_str(), "degraded_performance");
    assert_eq!(r.component_status("payments-api"), "partial_outage");
    assert_eq!(r.json(DocKind::Status)["status"]["indicator"], "major");
    let full = r.handle.get(id).await.expect("incident");
    assert!(
        full.timeline
            .iter()
            .any(|e| e.text.contains("payments-api set to partial outage"))
    );

    let err = |e: incidentd_actors::Error| match e {
        incidentd_actors::Error::Domain(d) => (d.kind, d.field),
        other => panic!("unexpected {other}"),
    };
    let unknown = r
        .page
        .set_component_status(
            id,
            "nope".into(),
            ComponentStatus::MajorOutage,
            None,
            Default::default(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err(unknown), (incidentd_domain::ErrorKind::NotFound, Some("service")));
    let hidden = r
        .page
        .set_component_status(
            id,
            "k8s".into(),
            ComponentStatus::MajorOutage,
            None,
            Default::default(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err(hidden),
        (incidentd_domain::ErrorKind::FailedPrecondition, Some("service"))
    );

    r.run(id, Action::Resolve { note: "fixed".into() }).await;
    r.wait_until("recovered", |r| r.component_status("payments-api") == "operational")
        .await;
    assert_eq!(
        r.component_status("search"),
        "operational",
        "the override ended with the incident"
    );
    let incidents = r.json(DocKind::Incidents);
    assert_eq!(incidents["incidents"][0]["status"], "resolved");
    assert!(incidents["incidents"][0]["resolved_at"].is_string());
    assert_eq!(
        r.json(DocKind::Unresolved)["incidents"].as_array().map(Vec::len),
        Some(0)
    );
    check_all_shapes(&r);
    let html = r.doc(DocKind::Html);
    assert!(html.contains("Past incidents"));
    assert!(html.contains("All Systems Operational"));
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn maintenance_statuses_follow_the_clock_and_survive_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = start(dir.path(), Timestamp(T0)).await;
    let _hold = hold_the_clock();
    let req = ScheduleRequest {
        title: "Database upgrade".into(),
        services: vec!["payments-api".into()],
        starts_at: Some(Timestamp(T0 + 60 * MIN)),
        ends_at: Some(Timestamp(T0 + 120 * MIN)),
        body: "Payments may be slow for a few seconds.".into(),
    };
    let m = r
        .page
        .schedule(req.clone(), Some("req-1".into()))
        .await
        .expect("scheduled");
    let again = r.page.schedule(req, Some("req-1".into())).await.expect("retried");
    assert_eq!(again.id, m.id, "a retried request_id gets the first answer");
    let status = |r: &Running| r.json(DocKind::Maintenances)["scheduled_maintenances"][0]["status"].clone();
    assert_eq!(status(&r), "scheduled");
    assert_eq!(
        r.json(DocKind::Maintenances)["scheduled_maintenances"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    check_all_shapes(&r);

    tokio::time::advance(Duration::from_secs(60 * 60)).await;
    r.wait_until("in progress", |r| status(r) == "in_progress").await;
    assert_eq!(r.component_status("payments-api"), "under_maintenance");
    assert_eq!(r.json(DocKind::Status)["status"]["indicator"], "maintenance");
    let id = m.id.expect("id").to_string();
    let upd = UpdateRequest {
        body: Some("Halfway there.".into()),
        ..Default::default()
    };
    r.page.update(id.clone(), upd, None).await.expect("updated");
    r.wait_until("note shown", |r| r.doc(DocKind::Html).contains("Halfway there."))
        .await;

    tokio::time::advance(Duration::from_secs(60 * 60)).await;
    r.wait_until("verifying", |r| status(r) == "verifying").await;
    assert_eq!(r.component_status("payments-api"), "operational");
    tokio::time::advance(Duration::from_secs(15 * 60)).await;
    r.wait_until("completed", |r| status(r) == "completed").await;
    assert_eq!(
        r.json(DocKind::Summary)["scheduled_maintenances"]
            .as_array()
            .map(Vec::len),
        Some(0),
        "summary lists only upcoming and in-progress windows"
    );
    let entries = check_atom(&r.doc(DocKind::Atom));
    assert!(
        entries
            .iter()
            .any(|(t, _)| t.starts_with("Maintenance: Database upgrade"))
    );
    check_all_shapes(&r);

    let bad = r
        .page
        .update("01ARZ3NDEKTSV4RRFFQ69G5FAV".into(), UpdateRequest::default(), None)
        .await
        .unwrap_err();
    assert!(bad.to_string().starts_with("id:"), "{bad}");
    let cancel = UpdateRequest {
        cancel: true,
        ..Default::default()
    };
    let late = r.page.update(id.clone(), cancel, None).await.unwrap_err();
    assert!(late.to_string().contains("already ended"), "{late}");

    // Durable: a new process (same clock time) recovers the window from the log.
    let now = r.page.now();
    r.stop().await;
    let r = start(dir.path(), now).await;
    let list = r.page.maintenances().await.expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].notes.len(), 2);
    assert_eq!(status(&r), "completed");
    assert_eq!(
        r.handle.stats().await.expect("stats").incidents_total,
        0,
        "windows are not incidents"
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_rebuilds_the_view_from_the_store_and_lists_are_capped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = start(dir.path(), Timestamp(T0)).await;
    let first = r.declare("old", &["search"], Severity::Sev3, false).await;
    let symptom = UpdateFields {
        customer_symptom: Some("searches are slow".into()),
        ..Default::default()
    };
    r.post(first, UpdateKind::Customer, symptom).await;
    for i in 0..60 {
        r.declare(&format!("noise {i}"), &["checkout-web"], Severity::Sev4, false)
            .await;
    }
    let now = r.page.now();
    r.stop().await;

    // After a restart the oldest incident is not listed (50 newest are), so its
    // history is not read; it still sets its component's status.
    let r = start(dir.path(), now).await;
    let unresolved = r.json(DocKind::Unresolved);
    assert_eq!(
        unresolved["incidents"].as_array().map(Vec::len),
        Some(50),
        "lists stop at 50"
    );
    assert_eq!(r.component_status("search"), "degraded_performance");
    assert!(!r.doc(DocKind::Summary).contains("searches are slow"));
    // Once it is among the newest listed (the others resolve), its update is read from the store.
    let list = r.handle.list(Default::default(), None, 500).await.expect("list");
    for s in list.incidents.iter().filter(|s| s.id != first) {
        r.run(s.id, Action::Resolve { note: String::new() }).await;
    }
    r.wait_until("the old incident's customer update", |r| {
        r.json(DocKind::Unresolved)["incidents"][0]["incident_updates"][0]["body"]
            .as_str()
            .is_some_and(|b| b.contains("searches are slow"))
    })
    .await;
    assert_eq!(
        r.json(DocKind::Incidents)["incidents"].as_array().map(Vec::len),
        Some(50)
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_only_incidents_stay_off_the_page_until_announced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = start(dir.path(), Timestamp(T0)).await;
    let internal = r.declare("k8s nodes flapping", &["k8s"], Severity::Sev1, false).await;
    let visible = r.declare("search", &["search"], Severity::Sev4, false).await;
    r.wait_until("the page component's incident", |r| {
        r.doc(DocKind::Unresolved).contains(&visible.to_string())
    })
    .await;
    assert!(
        !r.doc(DocKind::Incidents).contains(&internal.to_string()),
        "never announced, not listed"
    );
    assert_eq!(
        r.json(DocKind::Status)["status"]["indicator"],
        "none",
        "SEV-4: operational"
    );
    let announce = UpdateFields {
        customer_symptom: Some("some pages load slowly".into()),
        ..Default::default()
    };
    r.post(internal, UpdateKind::Customer, announce).await;
    r.wait_until("announced", |r| {
        r.doc(DocKind::Unresolved).contains(&internal.to_string())
    })
    .await;
    let unresolved = r.json(DocKind::Unresolved);
    let announced = unresolved["incidents"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["id"] == internal.to_string().as_str()))
        .expect("listed");
    assert_eq!(announced["name"], "Major outage of some services");
    assert_eq!(announced["components"].as_array().map(Vec::len), Some(0));
    check_all_shapes(&r);
    r.stop().await;
}
