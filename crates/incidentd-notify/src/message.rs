//! What a notification says, independent of where it goes: every adapter
//! renders the same `Message` in its own wire format (Block Kit, Adaptive
//! Card, mail parts, JSON). Built from the logged event and the incident
//! state after it, so re-deriving it after a crash gives the same text.

use incidentd_domain::{Event, EventKind, Incident, Role, Severity, Status, UpdateKind};
use serde::{Deserialize, Serialize};

/// Kinds of destination, as the config spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestKind {
    Slack,
    Mattermost,
    Teams,
    Webhook,
    Email,
    Statuspage,
}

impl DestKind {
    pub const ALL: [DestKind; 6] = [
        DestKind::Slack,
        DestKind::Mattermost,
        DestKind::Teams,
        DestKind::Webhook,
        DestKind::Email,
        DestKind::Statuspage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DestKind::Slack => "slack",
            DestKind::Mattermost => "mattermost",
            DestKind::Teams => "teams",
            DestKind::Webhook => "webhook",
            DestKind::Email => "email",
            DestKind::Statuspage => "statuspage",
        }
    }

    /// The adapter actor that delivers this kind.
    pub fn adapter(self) -> &'static str {
        match self {
            DestKind::Slack | DestKind::Mattermost | DestKind::Teams => "chat",
            DestKind::Webhook => "webhook",
            DestKind::Email => "email",
            DestKind::Statuspage => "statuspage",
        }
    }
}

/// One rendered notification body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub incident_id: String,
    /// `INC-42`.
    pub reference: String,
    pub title: String,
    pub team: String,
    pub services: Vec<String>,
    pub severity: Severity,
    pub status: Status,
    pub drill: bool,
    pub version: u64,
    /// `EventKind::name`.
    pub event: String,
    /// One line: what happened.
    pub headline: String,
    /// Plain text details (may be several lines; rendered updates verbatim).
    pub body: String,
    /// Label / value pairs shown as fields.
    pub fields: Vec<(String, String)>,
    /// Chat handles to mention (`@alice`).
    pub mentions: Vec<String>,
    /// Event time, milliseconds since the epoch.
    pub at: i64,
    /// The event as logged (the webhook adapter sends it).
    pub event_json: String,
    /// Customer-facing text (status page pushes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_text: Option<String>,
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Investigating => "investigating",
        Status::Identified => "identified",
        Status::Mitigating => "mitigating",
        Status::Resolved => "resolved",
    }
}

/// What happened, in one line and a body, for an event that notifies.
pub(crate) fn describe(incident: &Incident, event: &Event) -> (String, String) {
    let r = incident.reference();
    let t = &incident.title;
    match &event.kind {
        EventKind::Declared {
            severity,
            severity_unclear,
            summary,
            ..
        } => {
            let unclear = if *severity_unclear {
                " (severity unclear: defaulted up)"
            } else {
                ""
            };
            (format!("{r} declared, {severity}{unclear}: {t}"), summary.clone())
        }
        EventKind::SeverityChanged { from, to, reason } => (format!("{r} severity {from} → {to}: {t}"), reason.clone()),
        EventKind::RoleAssigned { role, person, track } => {
            let track = track.as_deref().map(|t| format!(" (track: {t})")).unwrap_or_default();
            (format!("{r}: {person} is now {role}{track}"), String::new())
        }
        EventKind::RoleHandedOver { role, from, to } => {
            (format!("{r}: {role} handed over from {from} to {to}"), String::new())
        }
        EventKind::StatusChanged { to, note, .. } if *to == Status::Resolved => {
            (format!("{r} resolved: {t}"), note.clone())
        }
        EventKind::StatusChanged { from, to, note } => (
            format!("{r} status {} → {}: {t}", status_word(*from), status_word(*to)),
            note.clone(),
        ),
        EventKind::UpdatePosted { kind, rendered, .. } => (format!("{r} {kind} update: {t}"), rendered.clone()),
        EventKind::ChecklistMissed { item, .. } => {
            (format!("{r}: checklist item missed: {}", item.title()), String::new())
        }
        EventKind::UpdateOverdue { due_at, .. } => (
            format!("{r}: internal update overdue (due {})", due_at.hhmm_utc()),
            "Post an internal status update.".into(),
        ),
        EventKind::StakeholderNoticeDue { .. } => (
            format!("{r} stakeholder notice: {t}"),
            format!(
                "{} {}, status {}. {}",
                incident.severity,
                r,
                status_word(incident.status),
                if incident.impact.is_empty() {
                    &incident.summary
                } else {
                    &incident.impact
                }
            ),
        ),
        EventKind::SmeReportOverdue { person, track, .. } => (
            format!("{r}: report-back overdue from {person} (track: {track})"),
            String::new(),
        ),
        EventKind::Escalated {
            rule, target, message, ..
        } => (
            format!("{r} escalated to {target} ({rule}): {t}"),
            message.clone().unwrap_or_default(),
        ),
        EventKind::ReviewOverdue { due_at, .. } => (
            format!("{r}: post-incident review overdue (due {})", due_at.hhmm_utc()),
            String::new(),
        ),
        EventKind::ComponentStatusSet { service, status } => (
            format!("{r} status page: {service} set to {status} (until resolved)"),
            String::new(),
        ),
        other => (format!("{r} {}: {t}", other.name()), String::new()),
    }
}

pub(crate) fn build(incident: &Incident, version: u64, event: &Event, mentions: Vec<String>) -> Message {
    let (headline, body) = describe(incident, event);
    let mut fields = vec![
        ("Severity".to_string(), incident.severity.to_string()),
        ("Status".to_string(), status_word(incident.status).to_string()),
        ("Team".to_string(), incident.team.clone()),
    ];
    if let Some(c) = &incident.roster.commander {
        fields.push((Role::Commander.to_string(), c.clone()));
    }
    if !incident.services.is_empty() {
        fields.push(("Services".to_string(), incident.services.join(", ")));
    }
    let public_text = match &event.kind {
        EventKind::UpdatePosted {
            kind: UpdateKind::Customer,
            rendered,
            ..
        } => Some(rendered.clone()),
        EventKind::StatusChanged { note, .. } => Some(if note.is_empty() {
            format!("This incident is {}.", status_word(incident.status))
        } else {
            note.clone()
        }),
        _ => None,
    };
    Message {
        incident_id: incident.id.to_string(),
        reference: incident.reference(),
        title: incident.title.clone(),
        team: incident.team.clone(),
        services: incident.services.clone(),
        severity: incident.severity,
        status: incident.status,
        drill: incident.drill,
        version,
        event: event.kind.name().to_string(),
        headline: if incident.drill {
            format!("[DRILL] {headline}")
        } else {
            headline
        },
        body,
        fields,
        mentions,
        at: event.at.0,
        event_json: serde_json::to_string(event).unwrap_or_default(),
        public_text,
    }
}

impl Message {
    /// The message as plain text (chat fallback, mail text part).
    pub fn plain(&self) -> String {
        let mut out = self.headline.clone();
        if !self.mentions.is_empty() {
            out.push('\n');
            out.push_str(&self.mentions.join(" "));
        }
        if !self.body.is_empty() {
            out.push_str("\n\n");
            out.push_str(&self.body);
        }
        out.push('\n');
        for (k, v) in &self.fields {
            out.push_str(&format!("\n{k}: {v}"));
        }
        out
    }

    pub fn status_word(&self) -> &'static str {
        status_word(self.status)
    }
}
