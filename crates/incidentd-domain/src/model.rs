//! Incident state: closed enums and the aggregate that `apply` builds.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Incident identifier: a ULID, so ids sort by declaration time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentId(pub ulid::Ulid);

impl IncidentId {
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_bytes()
    }
    pub fn from_bytes(b: [u8; 16]) -> Self {
        IncidentId(ulid::Ulid::from_bytes(b))
    }
    pub fn parse(s: &str) -> Option<Self> {
        ulid::Ulid::from_string(s).ok().map(IncidentId)
    }
}

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Severity decides the response (DESIGN.md §2). Ordered: `Sev1` is the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub enum Severity {
    #[default]
    Sev1,
    Sev2,
    Sev3,
    Sev4,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::Sev1, Severity::Sev2, Severity::Sev3, Severity::Sev4];

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SEV-{}", self.index() + 1)
    }
}

/// Status lifecycle; the order of the variants is the forward direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub enum Status {
    #[default]
    Investigating,
    Identified,
    Mitigating,
    Resolved,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Investigating => "Investigating",
            Status::Identified => "Identified",
            Status::Mitigating => "Mitigating",
            Status::Resolved => "Resolved",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Commander,
    CommsLead,
    Sme,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Commander => "incident commander",
            Role::CommsLead => "communications lead",
            Role::Sme => "subject matter expert",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UpdateKind {
    Internal,
    Customer,
    Executive,
}

impl fmt::Display for UpdateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpdateKind::Internal => "internal",
            UpdateKind::Customer => "customer-facing",
            UpdateKind::Executive => "executive",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum DataLoss {
    #[default]
    None,
    Possible,
    Confirmed,
}

impl fmt::Display for DataLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataLoss::None => "none",
            DataLoss::Possible => "possible",
            DataLoss::Confirmed => "confirmed",
        })
    }
}

/// Kinds of timeline entries. The first four are written by people; `System`
/// entries are generated from events (declaration, severity changes, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryKind {
    Note,
    Finding,
    Action,
    Decision,
    System,
}

/// A subject matter expert on an investigation track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sme {
    pub person: String,
    pub track: String,
    pub assigned_at: Timestamp,
    /// Last finding this SME recorded (resets the report-back clock).
    pub last_report_at: Option<Timestamp>,
    /// Last report-back nudge (the next one is a period later).
    #[serde(default)]
    pub nudged_at: Option<Timestamp>,
}

/// The first-15-minutes checklist items, in playbook order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChecklistItemKind {
    /// Someone acknowledged the incident.
    Acknowledge,
    /// Severity set by a person (not the unclear default) and a commander assigned.
    SeverityAndCommander,
    /// Comms lead assigned, plus at least one SME for SEV-1/2.
    TeamAssembled,
    /// At least one SME on a track.
    InvestigationPlan,
}

impl ChecklistItemKind {
    pub const ALL: [ChecklistItemKind; 4] = [
        ChecklistItemKind::Acknowledge,
        ChecklistItemKind::SeverityAndCommander,
        ChecklistItemKind::TeamAssembled,
        ChecklistItemKind::InvestigationPlan,
    ];

    /// Stable id (API, config keys).
    pub fn id(self) -> &'static str {
        match self {
            ChecklistItemKind::Acknowledge => "acknowledge",
            ChecklistItemKind::SeverityAndCommander => "severity_and_commander",
            ChecklistItemKind::TeamAssembled => "team_assembled",
            ChecklistItemKind::InvestigationPlan => "investigation_plan",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ChecklistItemKind::Acknowledge => "Incident acknowledged",
            ChecklistItemKind::SeverityAndCommander => "Severity set and incident commander assigned",
            ChecklistItemKind::TeamAssembled => "Team assembled (comms lead, SMEs for SEV-1/2)",
            ChecklistItemKind::InvestigationPlan => "Investigation plan (at least one SME track)",
        }
    }
}

/// A checklist item's progress. Its deadline is not stored: it derives from
/// the declaration time and the policy (`timers::checklist_due`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistItem {
    pub item: ChecklistItemKind,
    /// When the event that satisfies it happened (late or not).
    pub done_at: Option<Timestamp>,
    /// When the miss was announced (once).
    pub missed_at: Option<Timestamp>,
}

/// An escalation rule that fired (once per incident per rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    pub rule: String,
    /// Contact group of the org config.
    pub target: String,
    pub fired_at: Timestamp,
    pub message: Option<String>,
}

/// The facts escalation rules test, from one change to the next. Rules
/// measure how long their condition has held from this history, so a
/// severity upgrade starts a rule's clock at the upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    pub at: Timestamp,
    pub severity: Severity,
    pub status: Status,
    pub data_loss: DataLoss,
    pub regulatory: bool,
}

/// Who a reminder, nudge or escalation is for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Recipients {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub people: Vec<String>,
    /// The whole team (when nobody holds the role that should hear it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Roster {
    pub commander: Option<String>,
    pub comms_lead: Option<String>,
    pub smes: Vec<Sme>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// 1-based position in the incident's timeline.
    pub seq: u64,
    /// Version of the event that produced the entry.
    pub version: u64,
    pub at: Timestamp,
    pub kind: EntryKind,
    pub author: Option<String>,
    pub text: String,
}

/// Typed template fields of an update, as the comms lead typed them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UpdateFields {
    pub status_text: Option<String>,
    pub impact: Option<String>,
    pub current_theory: Option<String>,
    pub next_steps: Option<String>,
    /// Seconds until the next update; defaults to the severity's cadence.
    pub next_update_in_secs: Option<u64>,
    pub customer_symptom: Option<String>,
    pub business_impact: Option<String>,
    pub estimated_resolution: Option<String>,
}

/// A posted update: fields plus the text rendered from the playbook template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    /// 1-based position among the incident's updates.
    pub seq: u64,
    pub version: u64,
    pub kind: UpdateKind,
    pub at: Timestamp,
    pub author: Option<String>,
    pub fields: UpdateFields,
    pub next_update_at: Option<Timestamp>,
    pub rendered: String,
}

/// The incident aggregate. `version == 0` means "not declared yet".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    pub number: u64,
    pub title: String,
    pub team: String,
    pub services: Vec<String>,
    pub summary: String,
    pub severity: Severity,
    pub status: Status,
    pub drill: bool,
    pub roster: Roster,
    pub impact: String,
    pub customer_impact_percent: Option<u32>,
    pub data_loss: DataLoss,
    pub regulatory: bool,
    pub declared_at: Timestamp,
    /// When the current severity was set (escalation clocks start here).
    pub severity_set_at: Timestamp,
    pub acknowledged_at: Option<Timestamp>,
    pub acknowledged_by: Option<String>,
    pub mitigated_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub last_internal_update_at: Option<Timestamp>,
    /// When the last internal update promised the next one.
    pub promised_next_update_at: Option<Timestamp>,
    pub timeline: Vec<TimelineEntry>,
    pub updates: Vec<Update>,
    pub version: u64,
    pub last_event_at: Timestamp,
    /// A person set the severity (at declaration or later), as opposed to
    /// the unclear-severity default.
    #[serde(default)]
    pub severity_confirmed: bool,
    #[serde(default)]
    pub checklist: Vec<ChecklistItem>,
    #[serde(default)]
    pub escalations: Vec<Escalation>,
    #[serde(default)]
    pub phases: Vec<Phase>,
    /// Last reminder that an internal update is overdue.
    #[serde(default)]
    pub update_reminded_at: Option<Timestamp>,
    /// First stakeholder notice: an internal or executive update, or the
    /// automatic notice sent at the severity's deadline.
    #[serde(default)]
    pub stakeholders_notified_at: Option<Timestamp>,
    /// Reminder that the post-incident review is overdue.
    #[serde(default)]
    pub review_reminded_at: Option<Timestamp>,
    /// Status page component statuses set by the comms lead while the
    /// incident is open (issue 5); cleared when it resolves.
    #[serde(default)]
    pub component_overrides: Vec<ComponentOverride>,
    /// The post-incident review (from resolution on).
    #[serde(default)]
    pub review: crate::review::Review,
    /// Internal updates posted, and how many of them by their deadline.
    #[serde(default)]
    pub internal_updates: u32,
    #[serde(default)]
    pub internal_updates_on_time: u32,
    /// Alerts attached by alert sources (issue 6), in arrival order.
    #[serde(default)]
    pub alerts: crate::alert::AlertList,
    /// The dedup key (alert group) whose incident this is, if an alert opened it.
    #[serde(default)]
    pub alert_key: Option<String>,
    /// Drills: the scenario's script and how far it has played.
    #[serde(default)]
    pub drill_script: Option<crate::drill::DrillScript>,
    /// Every time someone took a role (role rotation).
    #[serde(default)]
    pub role_history: Vec<RoleHeld>,
}

/// Someone took a role on an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleHeld {
    pub role: Role,
    pub person: String,
    pub at: Timestamp,
}

impl Incident {
    pub fn is_declared(&self) -> bool {
        self.version > 0
    }

    pub fn is_resolved(&self) -> bool {
        self.status == Status::Resolved
    }

    /// Human-friendly reference, e.g. `INC-42`.
    pub fn reference(&self) -> String {
        format!("INC-{}", self.number)
    }
}

/// A status page component's status, in Statuspage's public vocabulary.
/// Ordered: `MajorOutage` is the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentStatus {
    Operational,
    DegradedPerformance,
    PartialOutage,
    MajorOutage,
}

impl ComponentStatus {
    /// What an open incident of this severity does to its components.
    pub fn from_severity(s: Severity) -> ComponentStatus {
        match s {
            Severity::Sev1 => ComponentStatus::MajorOutage,
            Severity::Sev2 => ComponentStatus::PartialOutage,
            Severity::Sev3 => ComponentStatus::DegradedPerformance,
            Severity::Sev4 => ComponentStatus::Operational,
        }
    }

    /// The Statuspage API spelling (`major_outage`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "operational",
            ComponentStatus::DegradedPerformance => "degraded_performance",
            ComponentStatus::PartialOutage => "partial_outage",
            ComponentStatus::MajorOutage => "major_outage",
        }
    }
}

impl fmt::Display for ComponentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ComponentStatus::Operational => "operational",
            ComponentStatus::DegradedPerformance => "degraded performance",
            ComponentStatus::PartialOutage => "partial outage",
            ComponentStatus::MajorOutage => "major outage",
        })
    }
}

/// The comms lead's override of one component's status for one incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentOverride {
    pub service: String,
    pub status: ComponentStatus,
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}
