//! Routing: which destinations an event reaches. A pure function of the
//! logged event, the incident state after it and the org config, so the
//! outbox can re-derive the notifications of any logged event after a crash
//! and get the same idempotency keys.
//!
//! | event | non-drill destinations |
//! | --- | --- |
//! | declared | team chat (SEV-1/2 mention the team); SEV-1 also stakeholders and `executives` |
//! | severity changed | team chat; an upgrade to SEV-1 also stakeholders and `executives` |
//! | role assigned / handed over | team chat, and mail to that person |
//! | internal update | team chat and stakeholders |
//! | executive update | `executives` |
//! | customer update | status page destinations (if a service is on the page), team chat |
//! | status changed | team chat, the status page (updated only if a customer update opened it); resolution also stakeholders (and `executives` for SEV-1) |
//! | stakeholder notice due | stakeholders and team chat |
//! | reminders and nudges | team chat mentioning the named people, and mail to them |
//! | escalated | the target contact group, team chat |
//!
//! Drills reach only their team's `drill_routes`, whatever the event.

use crate::message::{self, DestKind, Message};
use incidentd_config::{DestinationKind, OrgConfig};
use incidentd_domain::{Event, EventKind, Incident, Recipients, Severity, Status, UpdateKind};
use serde::{Deserialize, Serialize};

/// One notification: one message to one destination.
pub type Notification = Addressed<Message>;

/// Something for one destination, with its idempotency key: a notification
/// (`Addressed<Message>`), or what the outbox stores of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addressed<M> {
    /// Idempotency key: `<incident id>:<version>:<destination>`.
    pub key: String,
    pub incident: String,
    pub version: u64,
    /// A `[[destinations]]` id, `person:<id>` or `contacts:<group>`.
    pub destination: String,
    pub kind: DestKind,
    /// Mail recipients (email destinations only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    pub message: M,
}

/// The executives' contact group (DESIGN.md: SEV-1 notifies them at once).
pub const EXECUTIVES: &str = "executives";

#[derive(Default)]
pub(crate) struct Targets {
    pub(crate) list: Vec<(String, DestKind, Vec<String>)>,
}

impl Targets {
    fn push(&mut self, id: String, kind: DestKind, to: Vec<String>) {
        if !self.list.iter().any(|(d, _, _)| *d == id) {
            self.list.push((id, kind, to));
        }
    }

    pub(crate) fn destination(&mut self, org: &OrgConfig, id: &str) {
        if let Some(d) = org.destination(id) {
            self.push(d.id.clone(), kind_of(d.kind), d.to.clone());
        }
    }

    pub(crate) fn team_chat(&mut self, org: &OrgConfig, team: &str) {
        for id in org.team(team).map(|t| t.chat.as_slice()).unwrap_or_default() {
            self.destination(org, id);
        }
    }

    pub(crate) fn stakeholders(&mut self, org: &OrgConfig, team: &str) {
        for id in org.team(team).map(|t| t.email.as_slice()).unwrap_or_default() {
            self.destination(org, id);
        }
    }

    fn contacts(&mut self, org: &OrgConfig, group: &str) {
        let to = org.contact_emails(group);
        if !to.is_empty() && org.smtp.is_some() {
            self.push(format!("contacts:{group}"), DestKind::Email, to);
        }
    }

    fn person(&mut self, org: &OrgConfig, id: &str) {
        if let (Some(email), Some(_)) = (org.person(id).and_then(|p| p.email.clone()), &org.smtp) {
            self.push(format!("person:{id}"), DestKind::Email, vec![email]);
        }
    }

    fn status_page(&mut self, org: &OrgConfig, incident: &Incident) {
        let on_page = incident
            .services
            .iter()
            .any(|s| org.service(s).is_some_and(|s| s.status_page));
        if on_page {
            for d in org
                .destinations
                .iter()
                .filter(|d| d.kind == DestinationKind::StatusPage)
            {
                self.push(d.id.clone(), DestKind::Statuspage, Vec::new());
            }
        }
    }
}

pub fn kind_of(k: DestinationKind) -> DestKind {
    match k {
        DestinationKind::Slack => DestKind::Slack,
        DestinationKind::Mattermost => DestKind::Mattermost,
        DestinationKind::Teams => DestKind::Teams,
        DestinationKind::Webhook => DestKind::Webhook,
        DestinationKind::Email => DestKind::Email,
        DestinationKind::StatusPage => DestKind::Statuspage,
    }
}

pub(crate) fn handle(org: &OrgConfig, person: &str) -> Option<String> {
    org.person(person).and_then(|p| p.chat.clone())
}

/// Whether events of this kind notify nobody, whatever the incident's state
/// (the feeder routes them without knowing the state).
pub fn silent(kind: &EventKind) -> bool {
    match kind {
        EventKind::Acknowledged
        | EventKind::SmeTrackChanged { .. }
        | EventKind::RoleUnassigned { .. }
        | EventKind::ImpactChanged { .. }
        | EventKind::EntryAdded { .. }
        | EventKind::ReviewUpdated { .. }
        | EventKind::ActionItemCompleted { .. }
        | EventKind::ActionItemDropped { .. }
        | EventKind::AlertAttached { .. }
        | EventKind::AlertAcknowledged { .. }
        | EventKind::AlertResolved { .. } => true,
        EventKind::Declared { .. }
        | EventKind::SeverityChanged { .. }
        | EventKind::RoleAssigned { .. }
        | EventKind::RoleHandedOver { .. }
        | EventKind::StatusChanged { .. }
        | EventKind::UpdatePosted { .. }
        | EventKind::AlertsAllResolved { .. }
        | EventKind::ChecklistMissed { .. }
        | EventKind::UpdateOverdue { .. }
        | EventKind::StakeholderNoticeDue { .. }
        | EventKind::SmeReportOverdue { .. }
        | EventKind::Escalated { .. }
        | EventKind::ReviewOverdue { .. }
        | EventKind::ComponentStatusSet { .. }
        | EventKind::ActionItemAdded { .. }
        | EventKind::ActionItemOverdue { .. }
        | EventKind::DrillStarted { .. }
        | EventKind::DrillInjected { .. } => false,
    }
}

/// The notifications caused by `event` (version `version`) of `incident`,
/// where `incident` is the state right after the event.
pub fn route(org: &OrgConfig, incident: &Incident, version: u64, event: &Event) -> Vec<Notification> {
    if silent(&event.kind) {
        return Vec::new();
    }
    let team = incident.team.as_str();
    let mut t = Targets::default();
    let mut mentions: Vec<String> = Vec::new();
    let people = |t: &mut Targets, mentions: &mut Vec<String>, r: &Recipients| {
        for p in &r.people {
            t.person(org, p);
            mentions.extend(handle(org, p));
        }
        t.team_chat(org, r.team.as_deref().unwrap_or(team));
    };
    match &event.kind {
        EventKind::Declared { severity, .. } => {
            t.team_chat(org, team);
            if *severity <= Severity::Sev2 {
                mentions.extend(org.members(team).filter_map(|p| p.chat.clone()));
            }
            if *severity == Severity::Sev1 {
                t.stakeholders(org, team);
                t.contacts(org, EXECUTIVES);
            }
        }
        EventKind::SeverityChanged { to, from, .. } => {
            t.team_chat(org, team);
            if *to == Severity::Sev1 && *from != Severity::Sev1 {
                mentions.extend(org.members(team).filter_map(|p| p.chat.clone()));
                t.stakeholders(org, team);
                t.contacts(org, EXECUTIVES);
            }
        }
        EventKind::RoleAssigned { person, .. } | EventKind::RoleHandedOver { to: person, .. } => {
            t.team_chat(org, team);
            t.person(org, person);
            mentions.extend(handle(org, person));
        }
        EventKind::UpdatePosted { kind, .. } => match kind {
            UpdateKind::Internal => {
                t.team_chat(org, team);
                t.stakeholders(org, team);
            }
            UpdateKind::Executive => t.contacts(org, EXECUTIVES),
            UpdateKind::Customer => {
                t.status_page(org, incident);
                t.team_chat(org, team);
            }
        },
        EventKind::StatusChanged { to, .. } => {
            t.team_chat(org, team);
            if *to == Status::Resolved {
                t.stakeholders(org, team);
                if incident.severity == Severity::Sev1 {
                    t.contacts(org, EXECUTIVES);
                }
            }
            // The adapter only updates a status page incident that a
            // customer update opened (see `statuspage.rs`).
            t.status_page(org, incident);
        }
        EventKind::StakeholderNoticeDue { notify, .. } => {
            t.stakeholders(org, team);
            people(&mut t, &mut mentions, notify);
        }
        EventKind::ChecklistMissed { notify, .. }
        | EventKind::UpdateOverdue { notify, .. }
        | EventKind::SmeReportOverdue { notify, .. }
        | EventKind::ReviewOverdue { notify, .. } => people(&mut t, &mut mentions, notify),
        EventKind::Escalated { target, .. } => {
            t.contacts(org, target);
            t.team_chat(org, team);
        }
        // The owner hears of their action item, and again when it is overdue.
        EventKind::ActionItemAdded { owner, .. } | EventKind::ActionItemOverdue { owner, .. } => {
            t.person(org, owner);
            mentions.extend(handle(org, owner));
        }
        // Game days: the drill's channel follows the script (drill routes only, below).
        EventKind::DrillStarted { .. } | EventKind::DrillInjected { .. } => t.team_chat(org, team),
        // Every alert of the incident cleared: worth a line in the team's channel.
        EventKind::AlertsAllResolved { .. } => t.team_chat(org, team),
        // The comms lead changed what customers see (issue 5): the team hears of it.
        EventKind::ComponentStatusSet { .. } => t.team_chat(org, team),
        // The `silent` kinds, refused above.
        _ => {}
    }
    if t.list.is_empty() {
        return Vec::new();
    }
    if incident.drill {
        // A drill reaches its drill routes and nothing else.
        t = Targets::default();
        for id in org.team(team).map(|t| t.drill_routes.as_slice()).unwrap_or_default() {
            if org
                .destination(id)
                .is_some_and(|d| d.kind != DestinationKind::StatusPage)
            {
                t.destination(org, id);
            }
        }
    }
    mentions.dedup();
    let msg = message::build(incident, version, event, mentions);
    t.list
        .into_iter()
        .map(|(destination, kind, to)| Notification {
            key: format!("{}:{}:{}", incident.id, version, destination),
            incident: incident.id.to_string(),
            version,
            destination,
            kind,
            to,
            message: msg.clone(),
        })
        .collect()
}
