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
    /// A deadline may have passed: fire whatever is due at `now` (sent by
    /// the incident's own timer, never by a client).
    Tick,
    /// The comms lead sets a status page component's status for as long as
    /// this incident is open (issue 5).
    SetComponentStatus {
        service: String,
        status: ComponentStatus,
    },
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
