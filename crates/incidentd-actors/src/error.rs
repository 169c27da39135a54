//! Errors that reach the edges. The gateway maps each variant to a gRPC code
//! and HTTP status in one place.

use incidentd_domain::DomainError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The command was refused by the domain rules; nothing changed.
    #[error("{0}")]
    Domain(#[from] DomainError),
    #[error("incident {0} not found")]
    IncidentNotFound(String),
    /// Storage failed; the change was not acknowledged.
    #[error("storage unavailable: {0}")]
    Storage(String),
    /// Too much queued work; retry later.
    #[error("overloaded: {0}")]
    Overloaded(String),
    #[error("shutting down")]
    ShuttingDown,
    /// The incident's actor failed while handling the call (it is restarted from the store).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<incidentd_store::StoreError> for Error {
    fn from(e: incidentd_store::StoreError) -> Self {
        match e {
            incidentd_store::StoreError::Closed => Error::ShuttingDown,
            other => Error::Storage(other.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
