//! Chat adapter: incoming webhooks of Slack, Mattermost and Microsoft Teams,
//! the same `Message` rendered for each.
//!
//! * Slack: `{"text": fallback, "blocks": [header, section, fields, context]}`
//!   (Block Kit; `text` is what notifications and old clients show).
//! * Mattermost: `{"username", "text": markdown, "attachments": [{fallback,
//!   color, title, text, fields: [{short, title, value}]}]}` (Slack-style
//!   attachments, which Mattermost's incoming webhooks accept).
//! * Teams: `{"type": "message", "attachments": [{"contentType":
//!   "application/vnd.microsoft.card.adaptive", "contentUrl": null,
//!   "content": AdaptiveCard 1.4 with TextBlocks and a FactSet}]}`.
//!
//! Answers: 2xx delivered; 429 (Slack's rate limit) and 5xx retried after
//! `Retry-After`; other 4xx (revoked hook, bad payload) dead at once.

use crate::message::{DestKind, Message};
use crate::transport::{Job, SendError, SendFuture, SendOk, Transport, reserved_host, send_json};
use incidentd_config::OrgConfig;
use incidentd_domain::Severity;
use serde_json::{Value, json};
use std::sync::Arc;

pub struct Chat {
    pub client: reqwest::Client,
    pub org: Arc<OrgConfig>,
}

/// Slack's header block takes at most 150 characters of plain text.
const SLACK_HEADER_MAX: usize = 150;

fn color(s: Severity) -> &'static str {
    match s {
        Severity::Sev1 => "#d00000",
        Severity::Sev2 => "#e36209",
        Severity::Sev3 => "#dbab09",
        Severity::Sev4 => "#6a737d",
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn body_with_mentions(m: &Message) -> String {
    let mut text = m.mentions.join(" ");
    if !m.body.is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&m.body);
    }
    text
}

pub fn slack(m: &Message) -> Value {
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(&m.headline, SLACK_HEADER_MAX)},
    })];
    let text = body_with_mentions(m);
    if !text.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    let fields: Vec<Value> = m
        .fields
        .iter()
        .take(10)
        .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{v}")}))
        .collect();
    blocks.push(json!({"type": "section", "fields": fields}));
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": format!("{} · {} · version {}", m.reference, m.event, m.version)}],
    }));
    let mut fallback = m.headline.clone();
    if !m.mentions.is_empty() {
        fallback = format!("{fallback} {}", m.mentions.join(" "));
    }
    json!({"text": fallback, "blocks": blocks})
}

pub fn mattermost(m: &Message) -> Value {
    let mut text = format!("#### {}", m.headline);
    if !m.mentions.is_empty() {
        text.push('\n');
        text.push_str(&m.mentions.join(" "));
    }
    let fields: Vec<Value> = m
        .fields
        .iter()
        .map(|(k, v)| json!({"short": true, "title": k, "value": v}))
        .collect();
    json!({
        "username": "incidentd",
        "text": text,
        "attachments": [{
            "fallback": m.headline,
            "color": color(m.severity),
            "title": format!("{} {}", m.reference, m.title),
            "text": m.body,
            "fields": fields,
        }],
    })
}

pub fn teams(m: &Message) -> Value {
    let mut body = vec![json!({
        "type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true, "text": m.headline,
    })];
    let text = body_with_mentions(m);
    if !text.is_empty() {
        body.push(json!({"type": "TextBlock", "wrap": true, "text": text}));
    }
    let facts: Vec<Value> = m.fields.iter().map(|(k, v)| json!({"title": k, "value": v})).collect();
    body.push(json!({"type": "FactSet", "facts": facts}));
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            },
        }],
    })
}

/// The JSON body for a chat destination of `kind`.
pub fn render(kind: DestKind, m: &Message) -> Value {
    match kind {
        DestKind::Mattermost => mattermost(m),
        DestKind::Teams => teams(m),
        _ => slack(m),
    }
}

/// The URL of a URL-addressed destination, refusing reserved hosts.
pub fn destination_url(org: &OrgConfig, id: &str) -> Result<String, SendError> {
    let url = org
        .destination(id)
        .and_then(|d| d.url.clone())
        .ok_or_else(|| SendError::permanent(format!("destination {id:?} has no url in the config")))?;
    if let Some(host) = reserved_host(&url) {
        return Err(SendError::permanent(format!(
            "destination {id:?}: {host} is a reserved documentation host; nothing sent"
        )));
    }
    Ok(url)
}

impl Transport for Chat {
    fn send(&self, job: Job) -> SendFuture {
        let n = job.notification;
        let url = destination_url(&self.org, &n.destination);
        let client = self.client.clone();
        Box::pin(async move {
            let url = url?;
            let body = serde_json::to_vec(&render(n.kind, &n.message)).unwrap_or_default();
            send_json(client.post(url), body).await?;
            Ok(SendOk::default())
        })
    }
}
