//! What a caller asks an incident to do. Commands are validated by `decide`;
//! only the events it returns change state.

use crate::model::{
    ComponentStatus, DataLoss, EntryKind, IncidentId, Role, Severity, Status, UpdateFields, UpdateKind,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The acting person (from the request until auth exists, then from the token).
    pub by: Option<String>,
    pub action: Action,
    /// What the caller may do (issue 8): checked by the incident's actor
    /// against the state it owns, before `decide`.
    pub access: crate::access::Access,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `id` and `number` are allocated by the caller (the supervisor).
    Declare {
        id: IncidentId,
        number: u64,
        title: String,
        team: String,
        services: Vec<String>,
        /// `None`: unclear, defaults up to SEV-1 and the timeline says so.
        severity: Option<Severity>,
        summary: String,
        commander: Option<String>,
        drill: bool,
    },
    Acknowledge,
    SetSeverity {
        severity: Severity,
        reason: String,
    },
    AssignRole {
        role: Role,
        person: String,
        /// SME only: what this SME investigates.
        track: Option<String>,
    },
    UnassignRole {
        role: Role,
        person: String,
    },
    SetStatus {
        status: Status,
        note: String,
    },
    SetImpact {
        impact: Option<String>,
        customer_impact_percent: Option<u32>,
        data_loss: Option<DataLoss>,
        regulatory: Option<bool>,
    },
    AddEntry {
        kind: EntryKind,
        text: String,
    },
    PostUpdate {
        kind: UpdateKind,
        fields: UpdateFields,
    },
    Resolve {
        note: String,
    },
    /// One alert notification for one dedup key (issue 6, `alert.rs`): opens
    /// the incident if it is not declared yet (the supervisor fills
    /// `open_as`), else attaches / resolves / reopens.
    Alert(std::sync::Arc<crate::alert::AlertIntake>),
    /// A deadline may have passed: fire whatever is due at `now` (sent by
    /// the incident's own timer, never by a client).
    Tick,
    /// The comms lead sets a status page component's status for as long as
    /// this incident is open (issue 5).
    SetComponentStatus {
        service: String,
        status: ComponentStatus,
    },
    /// Write review sections (resolved incidents only); `None` keeps a section.
    UpdateReview {
        sections: crate::review::ReviewSections,
    },
    AddActionItem {
        description: String,
        owner: String,
        due_at: crate::time::Timestamp,
    },
    CompleteActionItem {
        number: u32,
    },
    DropActionItem {
        number: u32,
        reason: String,
    },
    /// Plays a scenario into a drill incident (right after its declaration).
    StartScript {
        scenario: crate::drill::Scenario,
    },
}

impl Action {
    /// Stable short name, for logs and spans.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Declare { .. } => "declare",
            Action::Acknowledge => "acknowledge",
            Action::SetSeverity { .. } => "set_severity",
            Action::AssignRole { .. } => "assign_role",
            Action::UnassignRole { .. } => "unassign_role",
            Action::SetStatus { .. } => "set_status",
            Action::SetImpact { .. } => "set_impact",
            Action::AddEntry { .. } => "add_entry",
            Action::PostUpdate { .. } => "post_update",
            Action::Resolve { .. } => "resolve",
            Action::Tick => "tick",
            Action::UpdateReview { .. } => "update_review",
            Action::AddActionItem { .. } => "add_action_item",
            Action::CompleteActionItem { .. } => "complete_action_item",
            Action::DropActionItem { .. } => "drop_action_item",
            Action::Alert(_) => "alert",
            Action::StartScript { .. } => "start_script",
            Action::SetComponentStatus { .. } => "set_component_status",
        }
    }
}

/// Who exists in the organisation. The domain asks; the org config answers.
pub trait Directory {
    fn has_team(&self, id: &str) -> bool;
    fn has_person(&self, id: &str) -> bool;
    fn has_service(&self, id: &str) -> bool;
    /// Display name of a service for rendered text; defaults to its id.
    fn service_name(&self, id: &str) -> Option<String> {
        let _ = id;
        None
    }
}

/// A directory that knows everyone: for tests and replays, never for requests.
pub struct OpenDirectory;

impl Directory for OpenDirectory {
    fn has_team(&self, _: &str) -> bool {
        true
    }
    fn has_person(&self, _: &str) -> bool {
        true
    }
    fn has_service(&self, _: &str) -> bool {
        true
    }
}
