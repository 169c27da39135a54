//! The one place errors become gRPC statuses and HTTP status codes
//! (API.md "Errors"). Messages name the offending field.

use incidentd_actors::Error;
use incidentd_domain::ErrorKind;
use tonic::{Code, Status};

pub fn code_of(e: &Error) -> Code {
    match e {
        Error::Domain(d) => match d.kind {
            ErrorKind::InvalidArgument => Code::InvalidArgument,
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::FailedPrecondition => Code::FailedPrecondition,
            ErrorKind::PermissionDenied => Code::PermissionDenied,
        },
        Error::IncidentNotFound(_) => Code::NotFound,
        Error::Storage(_) | Error::ShuttingDown => Code::Unavailable,
        Error::Overloaded(_) => Code::ResourceExhausted,
        Error::Internal(_) => Code::Internal,
    }
}

pub fn status(e: Error) -> Status {
    let code = code_of(&e);
    let msg = match &e {
        Error::IncidentNotFound(id) => format!("id: incident {id} not found"),
        other => other.to_string(),
    };
    Status::new(code, msg)
}

/// A domain refusal met at the edge (access checks before a command is sent).
pub fn domain_status(e: incidentd_domain::DomainError) -> Status {
    status(Error::Domain(e))
}

/// The HTTP status of a gRPC code (API.md "Errors"), for HTTP endpoints that take requests.
pub fn http_status(code: Code) -> axum::http::StatusCode {
    use axum::http::StatusCode as S;
    match code {
        Code::Ok => S::OK,
        Code::InvalidArgument | Code::OutOfRange => S::BAD_REQUEST,
        Code::NotFound => S::NOT_FOUND,
        Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => S::CONFLICT,
        Code::Unauthenticated => S::UNAUTHORIZED,
        Code::PermissionDenied => S::FORBIDDEN,
        Code::ResourceExhausted => S::TOO_MANY_REQUESTS,
        Code::Unavailable => S::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => S::GATEWAY_TIMEOUT,
        _ => S::INTERNAL_SERVER_ERROR,
    }
}

/// A bad request field: `INVALID_ARGUMENT` naming it.
pub fn invalid(field: &str, msg: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {msg}"))
}

/// Notifier errors (`NotificationService`).
pub fn notify_status(e: incidentd_notify::NotifyError) -> Status {
    use incidentd_notify::NotifyError;
    let code = match &e {
        NotifyError::NotFound(_) => Code::NotFound,
        NotifyError::NotDead(..) => Code::FailedPrecondition,
        NotifyError::Unavailable => Code::Unavailable,
    };
    Status::new(code, e.to_string())
}
