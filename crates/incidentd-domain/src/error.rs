//! The one domain error type. The gateway maps `ErrorKind` to gRPC codes and
//! HTTP statuses in one place; `field` names the offending request field.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Missing or malformed field.
    InvalidArgument,
    /// Unknown incident, team, person or service.
    NotFound,
    /// Illegal transition (resolve twice, SME without track, ...).
    FailedPrecondition,
    /// The caller's token lacks a scope or team, or a rule (resolve as
    /// commander) refuses it (issue 8).
    PermissionDenied,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DomainError {
    pub kind: ErrorKind,
    /// Request field the error is about, e.g. `title` or `roster.track`.
    pub field: Option<&'static str>,
    pub message: String,
}

impl DomainError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        DomainError {
            kind: ErrorKind::InvalidArgument,
            field: Some(field),
            message: message.into(),
        }
    }
    pub fn not_found(field: &'static str, message: impl Into<String>) -> Self {
        DomainError {
            kind: ErrorKind::NotFound,
            field: Some(field),
            message: message.into(),
        }
    }
    pub fn permission_denied(message: impl Into<String>) -> Self {
        DomainError {
            kind: ErrorKind::PermissionDenied,
            field: None,
            message: message.into(),
        }
    }
    pub fn precondition(field: Option<&'static str>, message: impl Into<String>) -> Self {
        DomainError {
            kind: ErrorKind::FailedPrecondition,
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}
