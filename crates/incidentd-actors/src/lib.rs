//! Actors: one `IncidentActor` per live incident under an
//! `IncidentSupervisor`, and the `Handle` that the edges call.
//!
//! An actor is a thin shell around the pure domain: decide → persist (the
//! store's durable log) → apply → reply → publish. Because state is rebuilt
//! from the log, a crashed actor is simply started again from the store.

pub mod alerts;
pub mod codec;
pub mod drills;
pub mod error;
pub mod handle;
pub mod incident;
pub mod shared;
pub mod supervisor;

pub use alerts::{Alerts, Ingested, Outcome};
pub use codec::Reply;
pub use error::{Error, Result};
pub use handle::{Handle, Options, Recovered, Watch, WatchItem};
pub use incident::ReplyKind;
pub use shared::{Clock, OpenOrg, OrgView, Published};
pub use supervisor::{Filter, LiveStats, Page};
