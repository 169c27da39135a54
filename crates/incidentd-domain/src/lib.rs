//! The incident domain, pure: state, commands, events, `decide`, `apply`,
//! the playbook policy and the update templates.
//!
//! No tokio, tonic, prost or sled here (an invariant, see ARCHITECTURE.md):
//! everything is a function of its arguments, the clock included, which is
//! what makes replay exact and the rules testable without a runtime.

pub mod access;
pub mod alert;
pub mod apply;
pub mod command;
pub mod decide;
pub mod drill;
pub mod error;
pub mod event;
pub mod model;
pub mod policy;
pub mod report;
pub mod review;
pub mod template;
pub mod time;
pub mod timers;

pub use access::{Access, Grant, Scope, Scopes, Teams};
pub use alert::{
    Alert, AlertAction, AlertIntake, AlertList, AlertRules, AlertSignal, AlertStatus, NewIncident, RouteDefaults,
};
pub use apply::{apply, replay};
pub use command::{Action, Command, Directory, OpenDirectory};
pub use decide::{Ctx, decide, limits};
pub use error::{DomainError, ErrorKind};
pub use event::{Event, EventKind};
pub use model::*;
pub use policy::{ChecklistPolicy, EscalationRule, Policy, SeverityPolicy};
pub use time::Timestamp;
