//! Events: the only thing that changes an incident, the unit of the durable
//! log, and what watchers receive. Stored as JSON; new variants and optional
//! fields may be added, existing ones never change meaning.

use crate::model::{
    ChecklistItemKind, ComponentStatus, DataLoss, EntryKind, IncidentId, Recipients, Role, Severity, Status,
    UpdateFields, UpdateKind,
};
use crate::review::ReviewSections;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    Declared {
        id: IncidentId,
        number: u64,
        title: String,
        team: String,
        services: Vec<String>,
        summary: String,
        severity: Severity,
        /// No severity was given: the playbook defaulted it up.
        severity_unclear: bool,
        drill: bool,
    },
    Acknowledged,
    SeverityChanged {
        from: Severity,
        to: Severity,
        reason: String,
    },
    RoleAssigned {
        role: Role,
        person: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        track: Option<String>,
    },
    /// Commander or comms lead hand-over: one event naming both people.
    RoleHandedOver {
        role: Role,
        from: String,
        to: String,
    },
    SmeTrackChanged {
        person: String,
        from: String,
        to: String,
    },
    RoleUnassigned {
        role: Role,
        person: String,
    },
    /// Forward, backward (recorded as such) or to/from `Resolved`.
    StatusChanged {
        from: Status,
        to: Status,
        note: String,
    },
    ImpactChanged {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        impact: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        customer_impact_percent: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data_loss: Option<DataLoss>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        regulatory: Option<bool>,
    },
    EntryAdded {
        kind: EntryKind,
        text: String,
    },
    /// The rendered text is stored: a template change never rewrites history.
    UpdatePosted {
        kind: UpdateKind,
        fields: UpdateFields,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_update_at: Option<Timestamp>,
        rendered: String,
        /// Internal updates: when this one was due (cadence adherence).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        was_due_at: Option<Timestamp>,
    },
    /// An alert joined the incident (new fingerprint, or a resolved one firing
    /// again). `key` is the incident's dedup key: the dedup index is rebuilt
    /// from these on recovery.
    AlertAttached {
        key: String,
        alert: crate::alert::Alert,
    },
    AlertAcknowledged {
        fingerprint: String,
    },
    AlertResolved {
        fingerprint: String,
        ended_at: Timestamp,
    },
    /// The last unresolved alert of the incident resolved.
    AlertsAllResolved {
        count: u64,
    },
    // Timer events: decided when a deadline passes (`timers::fire`), so a
    // deadline that fired is in the log and never fires twice.
    /// A first-15-minutes item was not done by its deadline.
    ChecklistMissed {
        item: ChecklistItemKind,
        due_at: Timestamp,
        notify: Recipients,
    },
    /// No internal update by `due_at`; repeats every cadence period.
    UpdateOverdue {
        due_at: Timestamp,
        notify: Recipients,
    },
    /// Nobody told stakeholders by the severity's deadline: the automatic
    /// notice (current state, routed by the notifiers) goes out.
    StakeholderNoticeDue {
        due_at: Timestamp,
        notify: Recipients,
    },
    /// An SME's track has not reported back for a period.
    SmeReportOverdue {
        person: String,
        track: String,
        due_at: Timestamp,
        notify: Recipients,
    },
    /// An escalation rule's condition held for its `after` (once per rule).
    Escalated {
        rule: String,
        target: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        due_at: Timestamp,
    },
    /// The post-incident review is past due.
    ReviewOverdue {
        due_at: Timestamp,
        notify: Recipients,
    },
    /// The comms lead set a status page component's status (an override
    /// that lasts while the incident is open).
    ComponentStatusSet {
        service: String,
        status: ComponentStatus,
    },
    // The review (from resolution on).
    /// Sections written or rewritten (only the ones set).
    ReviewUpdated {
        sections: ReviewSections,
    },
    ActionItemAdded {
        number: u32,
        description: String,
        owner: String,
        due_at: Timestamp,
    },
    ActionItemCompleted {
        number: u32,
    },
    ActionItemDropped {
        number: u32,
        reason: String,
    },
    /// An open action item passed its due date (reminder to its owner, once).
    ActionItemOverdue {
        number: u32,
        owner: String,
        due_at: Timestamp,
    },
    /// A game day's scenario starts playing into this (drill) incident.
    DrillStarted {
        scenario: String,
        title: String,
        steps: Vec<crate::drill::Step>,
    },
    /// A scripted injection played (its effect is an ordinary event).
    DrillInjected {
        step: usize,
        effect: Box<EventKind>,
    },
}

impl EventKind {
    /// Stable short name, used in metrics, logs and the watch stream.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Declared { .. } => "declared",
            EventKind::Acknowledged => "acknowledged",
            EventKind::SeverityChanged { .. } => "severity_changed",
            EventKind::RoleAssigned { .. } => "role_assigned",
            EventKind::RoleHandedOver { .. } => "role_handed_over",
            EventKind::SmeTrackChanged { .. } => "sme_track_changed",
            EventKind::RoleUnassigned { .. } => "role_unassigned",
            EventKind::StatusChanged { .. } => "status_changed",
            EventKind::ImpactChanged { .. } => "impact_changed",
            EventKind::EntryAdded { .. } => "entry_added",
            EventKind::UpdatePosted { .. } => "update_posted",
            EventKind::AlertAttached { .. } => "alert_attached",
            EventKind::AlertAcknowledged { .. } => "alert_acknowledged",
            EventKind::AlertResolved { .. } => "alert_resolved",
            EventKind::AlertsAllResolved { .. } => "alerts_all_resolved",
            EventKind::ChecklistMissed { .. } => "checklist_missed",
            EventKind::UpdateOverdue { .. } => "update_overdue",
            EventKind::StakeholderNoticeDue { .. } => "stakeholder_notice_due",
            EventKind::SmeReportOverdue { .. } => "sme_report_overdue",
            EventKind::Escalated { .. } => "escalated",
            EventKind::ReviewOverdue { .. } => "review_overdue",
            EventKind::ComponentStatusSet { .. } => "component_status_set",
            EventKind::ReviewUpdated { .. } => "review_updated",
            EventKind::ActionItemAdded { .. } => "action_item_added",
            EventKind::ActionItemCompleted { .. } => "action_item_completed",
            EventKind::ActionItemDropped { .. } => "action_item_dropped",
            EventKind::ActionItemOverdue { .. } => "action_item_overdue",
            EventKind::DrillStarted { .. } => "drill_started",
            EventKind::DrillInjected { .. } => "drill_injected",
        }
    }
}
