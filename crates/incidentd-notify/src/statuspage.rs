//! Atlassian Statuspage push (REST API v1, `Authorization: OAuth <api_key>`).
//!
//! * The first customer-facing update of an incident creates a Statuspage
//!   incident: `POST {url}/v1/pages/{page_id}/incidents` with
//!   `{"incident": {"name", "status", "body", "component_ids", "components"}}`;
//!   the answer's `id` is remembered (durably, in the outbox) for the
//!   incident.
//! * Later customer updates and status changes update it:
//!   `PATCH {url}/v1/pages/{page_id}/incidents/{id}` with the same shape.
//!   A status change of an incident that never reached the page sends
//!   nothing (delivered, with a note).
//! * Status mapping: investigating → `investigating`, identified →
//!   `identified`, mitigating → `monitoring`, resolved → `resolved`.
//! * Components: the incident's services shown on the page, matched by name
//!   against `GET {url}/v1/pages/{page_id}/components` (fetched once per
//!   destination); their status follows severity (SEV-1 `major_outage`,
//!   SEV-2 `partial_outage`, SEV-3/4 `degraded_performance`) and is
//!   `operational` once resolved.
//! * At most one request per second per destination (the hub's rate limit,
//!   `statuspage_interval`); `429` is retried after `Retry-After`.

use crate::chat::destination_url;
use crate::route::Notification;
use crate::transport::{Job, SendError, SendFuture, SendOk, Transport, request_error, send_json};
use incidentd_config::OrgConfig;
use incidentd_domain::{Severity, Status};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct Statuspage {
    pub client: reqwest::Client,
    pub org: Arc<OrgConfig>,
    /// Component ids by name, per destination.
    components: Arc<Mutex<HashMap<String, Components>>>,
}

type Components = Arc<HashMap<String, String>>;

fn cached(cache: &Mutex<HashMap<String, Components>>, dest: &str) -> Option<Components> {
    match cache.lock() {
        Ok(g) => g.get(dest).cloned(),
        Err(p) => p.into_inner().get(dest).cloned(),
    }
}

fn remember(cache: &Mutex<HashMap<String, Components>>, dest: &str, c: Components) {
    match cache.lock() {
        Ok(mut g) => g.insert(dest.to_string(), c),
        Err(p) => p.into_inner().insert(dest.to_string(), c),
    };
}

impl Statuspage {
    pub fn new(client: reqwest::Client, org: Arc<OrgConfig>) -> Statuspage {
        Statuspage {
            client,
            org,
            components: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

pub fn status(s: Status) -> &'static str {
    match s {
        Status::Investigating => "investigating",
        Status::Identified => "identified",
        Status::Mitigating => "monitoring",
        Status::Resolved => "resolved",
    }
}

pub fn component_status(severity: Severity, s: Status) -> &'static str {
    match (s, severity) {
        (Status::Resolved, _) => "operational",
        (_, Severity::Sev1) => "major_outage",
        (_, Severity::Sev2) => "partial_outage",
        _ => "degraded_performance",
    }
}

/// The `{"incident": {...}}` body; `name` only when creating.
pub fn body(n: &Notification, component_ids: &[String], create: bool) -> Value {
    let m = &n.message;
    let mut inc = Map::new();
    if create {
        inc.insert("name".into(), json!(m.title));
    }
    inc.insert("status".into(), json!(status(m.status)));
    if let Some(text) = &m.public_text {
        inc.insert("body".into(), json!(text));
    }
    let cstatus = component_status(m.severity, m.status);
    let components: Map<String, Value> = component_ids.iter().map(|id| (id.clone(), json!(cstatus))).collect();
    inc.insert("component_ids".into(), json!(component_ids));
    inc.insert("components".into(), Value::Object(components));
    json!({ "incident": inc })
}

struct Target {
    base: String,
    page_id: String,
    auth: String,
}

fn target(org: &OrgConfig, id: &str) -> Result<Target, SendError> {
    let url = destination_url(org, id)?;
    let d = org
        .destination(id)
        .ok_or_else(|| SendError::permanent(format!("destination {id:?} is not configured")))?;
    let page_id = d
        .page_id
        .clone()
        .ok_or_else(|| SendError::permanent(format!("destination {id:?} has no page_id")))?;
    let key = d
        .api_key
        .as_ref()
        .ok_or_else(|| SendError::permanent(format!("destination {id:?} has no api_key")))?;
    Ok(Target {
        base: url.trim_end_matches('/').to_string(),
        page_id,
        auth: format!("OAuth {}", key.expose()),
    })
}

impl Transport for Statuspage {
    fn send(&self, job: Job) -> SendFuture {
        let n = job.notification;
        let target = target(&self.org, &n.destination);
        let cache = self.components.clone();
        let names: Vec<String> = n
            .message
            .services
            .iter()
            .filter_map(|s| self.org.service(s))
            .filter(|s| s.status_page)
            .map(|s| s.name.clone())
            .collect();
        let client = self.client.clone();
        Box::pin(async move {
            let t = target?;
            let create = job.remote_id.is_none();
            if create && n.message.event != "update_posted" {
                return Ok(SendOk {
                    remote_id: None,
                    note: Some("no status page incident to update; nothing sent".into()),
                });
            }
            let components = match cached(&cache, &n.destination) {
                Some(c) => c,
                None => {
                    let c = Arc::new(fetch_components(&client, &t).await?);
                    remember(&cache, &n.destination, c.clone());
                    c
                }
            };
            let ids: Vec<String> = names.iter().filter_map(|name| components.get(name).cloned()).collect();
            let body = serde_json::to_vec(&body(&n, &ids, create)).unwrap_or_default();
            let incidents = format!("{}/v1/pages/{}/incidents", t.base, t.page_id);
            let req = match &job.remote_id {
                None => client.post(incidents),
                Some(id) => client.patch(format!("{incidents}/{id}")),
            };
            let answer = send_json(req.header(reqwest::header::AUTHORIZATION, &t.auth), body).await?;
            let remote_id = match job.remote_id {
                Some(id) => Some(id),
                None => serde_json::from_str::<Value>(&answer)
                    .ok()
                    .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string)),
            };
            Ok(SendOk { remote_id, note: None })
        })
    }
}

async fn fetch_components(client: &reqwest::Client, t: &Target) -> Result<HashMap<String, String>, SendError> {
    let url = format!("{}/v1/pages/{}/components", t.base, t.page_id);
    let resp = client
        .get(url)
        .header(reqwest::header::AUTHORIZATION, &t.auth)
        .send()
        .await
        .map_err(request_error)?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    crate::transport::classify(status, &headers, &text)?;
    let list: Vec<Value> = serde_json::from_str(&text)
        .map_err(|e| SendError::transient(format!("components answer is not a JSON list: {e}")))?;
    Ok(list
        .iter()
        .filter_map(|c| Some((c.get("name")?.as_str()?.to_string(), c.get("id")?.as_str()?.to_string())))
        .collect())
}
