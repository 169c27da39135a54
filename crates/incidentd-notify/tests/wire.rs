//! Each adapter against a recording sink on 127.0.0.1:0, checked field by
//! field on its documented wire format: Slack Block Kit, Mattermost,
//! Teams Adaptive Card, the signed webhook, Statuspage's REST API, and
//! SMTP (plain, STARTTLS, implicit TLS, AUTH) with a real SMTP server.

mod smtp;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use incidentd_config::OrgConfig;
use incidentd_domain::{Event, EventKind, Incident, IncidentId, Severity, Status, Timestamp, UpdateFields, UpdateKind};
use incidentd_notify::route::silent;
use incidentd_notify::{Job, Notification, Transport, route};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
struct Hit {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// Records every request; answers from a script of (status, headers, body), then 200.
struct Sink {
    url: String,
    hits: mpsc::UnboundedReceiver<Hit>,
}

type Answer = (u16, Vec<(&'static str, String)>, String);

async fn sink(script: Vec<Answer>) -> Sink {
    let (tx, hits) = mpsc::unbounded_channel();
    let script = Arc::new(Mutex::new(std::collections::VecDeque::from(script)));
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let tx = tx.clone();
        let script = script.clone();
        async move {
            let _ = tx.send(Hit {
                method,
                path: uri.path().to_string(),
                headers,
                body: body.to_vec(),
            });
            let (status, hdrs, body) = script
                .lock()
                .expect("script")
                .pop_front()
                .unwrap_or((200, vec![], "ok".into()));
            let mut resp = axum::response::Response::new(axum::body::Body::from(body));
            *resp.status_mut() = StatusCode::from_u16(status).expect("status");
            for (k, v) in hdrs {
                resp.headers_mut().insert(k, v.parse().expect("header value"));
            }
            resp
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Sink { url, hits }
}

impl Sink {
    async fn hit(&mut self) -> Hit {
        tokio::time::timeout(Duration::from_secs(10), self.hits.recv())
            .await
            .expect("a request within 10 s")
            .expect("sink alive")
    }
}

fn org(sink: &str, smtp: &str) -> Arc<OrgConfig> {
    let text = format!(
        r#"
[org]
name = "Example Corp"
default_team = "payments"

[[teams]]
id = "payments"
chat = ["pay-slack", "pay-mm", "pay-teams", "pay-hook"]
email = ["pay-mail"]
drill_routes = ["drills"]

[[people]]
id = "alice"
name = "Alice Moreau"
email = "alice@example.com"
chat = "@alice"
teams = ["payments"]

[[services]]
id = "payments-api"
name = "Payments API"
team = "payments"
tier = "core"
status_page = true

[contacts]
executives = ["ceo@example.com"]

[[destinations]]
id = "pay-slack"
kind = "slack"
url = "{sink}/slack"

[[destinations]]
id = "pay-mm"
kind = "mattermost"
url = "{sink}/mm"

[[destinations]]
id = "pay-teams"
kind = "teams"
url = "{sink}/teams"

[[destinations]]
id = "pay-hook"
kind = "webhook"
url = "{sink}/hook"
secret = "s3cret"

[[destinations]]
id = "drills"
kind = "slack"
url = "{sink}/drills"

[[destinations]]
id = "pay-mail"
kind = "email"
to = ["payments-stakeholders@example.com", "support@example.com"]

[[destinations]]
id = "page"
kind = "statuspage"
url = "{sink}"
page_id = "pg1"
api_key = "k3y"

{smtp}
"#
    );
    Arc::new(OrgConfig::from_toml_str(&text).unwrap_or_else(|e| panic!("test config: {e}")))
}

const SMTP_NONE: &str = "[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"none\"\nfrom = \"incidentd@example.com\"";

fn incident(drill: bool) -> Incident {
    let declared = Event {
        at: Timestamp(1_764_200_000_000),
        by: Some("alice".into()),
        kind: EventKind::Declared {
            id: IncidentId::parse("01KB0000000000000000000000").expect("id"),
            number: 42,
            title: "Card payments failing".into(),
            team: "payments".into(),
            services: vec!["payments-api".into()],
            summary: "checkout returns 502".into(),
            severity: Severity::Sev1,
            severity_unclear: false,
            drill,
        },
    };
    incidentd_domain::replay([&declared])
}

fn declared_event(i: &Incident) -> Event {
    Event {
        at: i.declared_at,
        by: Some("alice".into()),
        kind: EventKind::Declared {
            id: i.id,
            number: i.number,
            title: i.title.clone(),
            team: i.team.clone(),
            services: i.services.clone(),
            summary: i.summary.clone(),
            severity: i.severity,
            severity_unclear: false,
            drill: i.drill,
        },
    }
}

fn find<'a>(notes: &'a [Notification], dest: &str) -> &'a Notification {
    notes
        .iter()
        .find(|n| n.destination == dest)
        .unwrap_or_else(|| panic!("no notification for {dest}: {notes:?}"))
}

fn job(n: &Notification) -> Job {
    Job {
        notification: n.clone(),
        attempt: 1,
        remote_id: None,
    }
}

#[test]
fn a_sev1_declaration_reaches_team_chat_stakeholders_and_executives() {
    let org = org("http://127.0.0.1:9", SMTP_NONE);
    let i = incident(false);
    let notes = route(&org, &i, 1, &declared_event(&i));
    let mut dests: Vec<&str> = notes.iter().map(|n| n.destination.as_str()).collect();
    dests.sort();
    assert_eq!(
        dests,
        [
            "contacts:executives",
            "pay-hook",
            "pay-mail",
            "pay-mm",
            "pay-slack",
            "pay-teams"
        ]
    );
    let n = find(&notes, "pay-slack");
    assert_eq!(n.key, format!("{}:1:pay-slack", i.id));
    assert_eq!(n.message.mentions, ["@alice"], "SEV-1 pages the team");
    assert_eq!(find(&notes, "contacts:executives").to, ["ceo@example.com"]);
}

#[test]
fn silent_kinds_route_to_nobody_even_on_a_sev1() {
    let org = org("http://127.0.0.1:9", SMTP_NONE);
    let i = incident(false);
    let declared = declared_event(&i);
    assert!(!silent(&declared.kind));
    let note = Event {
        kind: EventKind::EntryAdded {
            kind: incidentd_domain::EntryKind::System,
            text: "routed by labels".into(),
        },
        ..declared
    };
    assert!(silent(&note.kind));
    assert!(route(&org, &i, 2, &note).is_empty());
}

#[test]
fn a_drill_reaches_only_its_drill_routes() {
    let org = org("http://127.0.0.1:9", SMTP_NONE);
    let i = incident(true);
    let mut all = route(&org, &i, 1, &declared_event(&i));
    let customer = Event {
        at: i.declared_at,
        by: None,
        kind: EventKind::UpdatePosted {
            kind: UpdateKind::Customer,
            fields: UpdateFields::default(),
            next_update_at: None,
            rendered: "We are investigating.".into(),
            was_due_at: None,
        },
    };
    all.extend(route(&org, &i, 2, &customer));
    let dests: Vec<&str> = all.iter().map(|n| n.destination.as_str()).collect();
    assert_eq!(dests, ["drills", "drills"]);
    assert!(all.iter().all(|n| n.message.headline.starts_with("[DRILL]")));
}

#[tokio::test]
async fn slack_mattermost_and_teams_get_the_same_message_in_their_formats() {
    let mut s = sink(vec![]).await;
    let org = org(&s.url, SMTP_NONE);
    let chat = incidentd_notify::chat::Chat {
        client: reqwest::Client::new(),
        org: org.clone(),
    };
    let i = incident(false);
    let notes = route(&org, &i, 1, &declared_event(&i));
    let headline = "INC-42 declared, SEV-1: Card payments failing";

    chat.send(job(find(&notes, "pay-slack"))).await.expect("slack accepted");
    let hit = s.hit().await;
    assert_eq!((hit.method.as_str(), hit.path.as_str()), ("POST", "/slack"));
    assert_eq!(hit.header("content-type"), "application/json");
    let b = hit.json();
    assert_eq!(b["text"], format!("{headline} @alice"), "text fallback");
    assert_eq!(
        b["blocks"][0],
        json!({"type": "header", "text": {"type": "plain_text", "text": headline}})
    );
    assert_eq!(b["blocks"][1]["text"]["type"], "mrkdwn");
    assert_eq!(b["blocks"][1]["text"]["text"], "@alice\ncheckout returns 502");
    assert_eq!(
        b["blocks"][2]["fields"][0],
        json!({"type": "mrkdwn", "text": "*Severity*\nSEV-1"})
    );
    assert_eq!(b["blocks"][3]["type"], "context");

    chat.send(job(find(&notes, "pay-mm")))
        .await
        .expect("mattermost accepted");
    let b = s.hit().await.json();
    assert_eq!(b["text"], format!("#### {headline}\n@alice"));
    let a = &b["attachments"][0];
    assert_eq!(a["fallback"], headline);
    assert_eq!(a["title"], "INC-42 Card payments failing");
    assert_eq!(a["text"], "checkout returns 502");
    assert_eq!(
        a["fields"][0],
        json!({"short": true, "title": "Severity", "value": "SEV-1"})
    );

    chat.send(job(find(&notes, "pay-teams"))).await.expect("teams accepted");
    let b = s.hit().await.json();
    assert_eq!(b["type"], "message");
    let att = &b["attachments"][0];
    assert_eq!(att["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(att["contentUrl"], Value::Null);
    let card = &att["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["$schema"], "http://adaptivecards.io/schemas/adaptive-card.json");
    assert_eq!(card["body"][0]["text"], headline);
    assert_eq!(card["body"][2]["type"], "FactSet");
    assert_eq!(
        card["body"][2]["facts"][0],
        json!({"title": "Severity", "value": "SEV-1"})
    );
}

#[tokio::test]
async fn chat_answers_429_with_retry_after_and_4xx_as_permanent() {
    let mut s = sink(vec![
        (429, vec![("retry-after", "7".into())], "rate_limited".into()),
        (404, vec![], "no_service".into()),
    ])
    .await;
    let org = org(&s.url, SMTP_NONE);
    let chat = incidentd_notify::chat::Chat {
        client: reqwest::Client::new(),
        org: org.clone(),
    };
    let i = incident(false);
    let notes = route(&org, &i, 1, &declared_event(&i));
    let e = chat.send(job(find(&notes, "pay-slack"))).await.expect_err("429");
    assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
    assert!(!e.permanent);
    assert_eq!(e.message, "HTTP 429: rate_limited");
    let e = chat.send(job(find(&notes, "pay-slack"))).await.expect_err("404");
    assert!(e.permanent, "a revoked hook is not retried");
    s.hit().await;
}

#[tokio::test]
async fn the_webhook_is_signed_and_carries_its_idempotency_key() {
    let mut s = sink(vec![]).await;
    let org = org(&s.url, SMTP_NONE);
    let hook = incidentd_notify::webhook::Webhook {
        client: reqwest::Client::new(),
        org: org.clone(),
    };
    let i = incident(false);
    let notes = route(&org, &i, 1, &declared_event(&i));
    let n = find(&notes, "pay-hook");
    hook.send(job(n)).await.expect("accepted");
    let hit = s.hit().await;
    assert_eq!(hit.path, "/hook");
    assert_eq!(hit.header("x-incidentd-delivery"), n.key);
    assert_eq!(hit.header("x-incidentd-event"), "declared");
    assert_eq!(
        hit.header("x-incidentd-signature"),
        incidentd_notify::webhook::signature(b"s3cret", &hit.body),
        "HMAC-SHA256 of the raw body with the shared secret"
    );
    let b = hit.json();
    assert_eq!(b["id"], n.key.as_str());
    assert_eq!(b["type"], "declared");
    assert_eq!(b["timestamp"].to_string(), hit.header("x-incidentd-timestamp"));
    assert_eq!(b["incident"]["reference"], "INC-42");
    assert_eq!(b["incident"]["severity"], "SEV1");
    assert_eq!(b["incident"]["status"], "investigating");
    assert_eq!(b["version"], 1);
    assert_eq!(b["event"]["type"], "declared");
    assert_eq!(b["event"]["title"], "Card payments failing");
}

#[tokio::test]
async fn statuspage_creates_then_updates_with_mapped_status_and_components() {
    let mut s = sink(vec![
        (
            200,
            vec![],
            r#"[{"id":"cmp1","name":"Payments API"},{"id":"cmp2","name":"Other"}]"#.into(),
        ),
        (201, vec![], r#"{"id":"sp-inc-1","status":"investigating"}"#.into()),
    ])
    .await;
    let org = org(&s.url, SMTP_NONE);
    let sp = incidentd_notify::statuspage::Statuspage::new(reqwest::Client::new(), org.clone());
    let mut i = incident(false);
    // A status change before any customer update sends nothing.
    let mitigating = Event {
        at: i.declared_at,
        by: None,
        kind: EventKind::StatusChanged {
            from: Status::Investigating,
            to: Status::Mitigating,
            note: "rolled back".into(),
        },
    };
    incidentd_domain::apply(&mut i, &mitigating);
    let early = route(&org, &i, 2, &mitigating);
    let ok = sp.send(job(find(&early, "page"))).await.expect("skipped");
    assert!(ok.note.is_some() && ok.remote_id.is_none());

    let customer = Event {
        at: i.declared_at,
        by: None,
        kind: EventKind::UpdatePosted {
            kind: UpdateKind::Customer,
            fields: UpdateFields::default(),
            next_update_at: None,
            rendered: "Card payments fail for some customers.".into(),
            was_due_at: None,
        },
    };
    incidentd_domain::apply(&mut i, &customer);
    let notes = route(&org, &i, 3, &customer);
    let ok = sp.send(job(find(&notes, "page"))).await.expect("created");
    assert_eq!(ok.remote_id.as_deref(), Some("sp-inc-1"));
    let list = s.hit().await;
    assert_eq!(
        (list.method.as_str(), list.path.as_str()),
        ("GET", "/v1/pages/pg1/components")
    );
    assert_eq!(list.header("authorization"), "OAuth k3y");
    let create = s.hit().await;
    assert_eq!(
        (create.method.as_str(), create.path.as_str()),
        ("POST", "/v1/pages/pg1/incidents")
    );
    assert_eq!(create.header("authorization"), "OAuth k3y");
    assert_eq!(
        create.json(),
        json!({"incident": {
            "name": "Card payments failing",
            "status": "monitoring",
            "body": "Card payments fail for some customers.",
            "component_ids": ["cmp1"],
            "components": {"cmp1": "major_outage"},
        }})
    );

    let resolved = Event {
        at: i.declared_at,
        by: None,
        kind: EventKind::StatusChanged {
            from: Status::Mitigating,
            to: Status::Resolved,
            note: "payments flowing".into(),
        },
    };
    incidentd_domain::apply(&mut i, &resolved);
    let notes = route(&org, &i, 4, &resolved);
    let mut j = job(find(&notes, "page"));
    j.remote_id = Some("sp-inc-1".into());
    sp.send(j).await.expect("updated");
    let update = s.hit().await;
    assert_eq!(
        (update.method.as_str(), update.path.as_str()),
        ("PATCH", "/v1/pages/pg1/incidents/sp-inc-1")
    );
    assert_eq!(
        update.json(),
        json!({"incident": {
            "status": "resolved",
            "body": "payments flowing",
            "component_ids": ["cmp1"],
            "components": {"cmp1": "operational"},
        }})
    );
}

async fn mail_roundtrip(tls: &str, auth: bool) {
    let server = smtp::start(tls).await;
    let mut smtp_cfg = format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"{tls}\"\nfrom = \"incidentd@example.com\"",
        server.port
    );
    if auth {
        smtp_cfg.push_str("\nusername = \"notifier\"\npassword = \"pw\"");
    }
    let org = org("http://127.0.0.1:9", &smtp_cfg);
    let email = incidentd_notify::email::Email::new(&org, &[smtp::CA.to_vec()]);
    let mut i = incident(false);
    let declared = route(&org, &i, 1, &declared_event(&i));
    email
        .send(job(find(&declared, "pay-mail")))
        .await
        .unwrap_or_else(|e| panic!("{tls}: {e:?}"));
    let update = Event {
        at: i.declared_at,
        by: Some("bob".into()),
        kind: EventKind::UpdatePosted {
            kind: UpdateKind::Internal,
            fields: UpdateFields::default(),
            next_update_at: None,
            rendered: "Theory: <pool> exhausted & retrying".into(),
            was_due_at: None,
        },
    };
    incidentd_domain::apply(&mut i, &update);
    let updated = route(&org, &i, 2, &update);
    email.send(job(find(&updated, "pay-mail"))).await.expect("second mail");
    let mut rx = server.mails;
    let first = rx.recv().await.expect("first mail");
    let second = rx.recv().await.expect("second mail");
    assert_eq!(first.tls, tls != "none", "{tls}");
    assert_eq!(first.auth.as_deref(), auth.then_some("notifier:pw"));
    assert_eq!(first.from, "incidentd@example.com");
    assert_eq!(first.rcpt, ["payments-stakeholders@example.com", "support@example.com"]);
    let root = format!("<{}@example.com>", i.id);
    assert_eq!(first.header("Message-ID"), root);
    assert_eq!(first.header("In-Reply-To"), "");
    assert_eq!(first.header("Subject"), "[INC-42] Card payments failing");
    assert_eq!(first.header("X-Incidentd-Delivery"), format!("{}:1:pay-mail", i.id));
    assert!(first.header("Content-Type").starts_with("multipart/alternative"));
    assert!(first.data.contains("Content-Type: text/plain"));
    assert!(first.data.contains("Content-Type: text/html"));
    assert!(first.data.contains("checkout returns 502"));
    assert_eq!(
        second.header("Message-ID"),
        format!("<{}.2.pay-mail@example.com>", i.id)
    );
    assert_eq!(second.header("In-Reply-To"), root, "one incident, one thread");
    assert_eq!(second.header("References"), root);
    assert_eq!(second.header("Subject"), "[INC-42] Card payments failing");
    assert!(
        second.data.contains("Theory: <pool> exhausted & retrying"),
        "text part verbatim"
    );
    let html = incidentd_notify::email::html(&find(&updated, "pay-mail").message);
    assert!(
        html.contains("Theory: &lt;pool&gt; exhausted &amp; retrying"),
        "HTML part escaped"
    );
}

#[tokio::test]
async fn email_over_plain_smtp() {
    mail_roundtrip("none", false).await;
}

#[tokio::test]
async fn email_over_starttls_with_auth() {
    mail_roundtrip("starttls", true).await;
}

#[tokio::test]
async fn email_over_implicit_tls_with_auth() {
    mail_roundtrip("implicit", true).await;
}
