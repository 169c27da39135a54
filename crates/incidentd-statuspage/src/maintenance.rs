//! Maintenance windows, pure: the aggregate, its events, validation and the
//! status that its times imply. No clock and no storage here; `page.rs`
//! persists the events and arms the timers.
//!
//! A window is its own aggregate in the incident log: a 16-byte key that
//! starts with [`KEY_PREFIX`] (a ULID would need a timestamp past the year
//! 10000 to collide with it), versions from 1, one event per change. The
//! status is never stored: it is a function of the window's times and now,
//! so a restart (or a paused test clock) lands on the right status.

use incidentd_domain::{DomainError, Timestamp, limits};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// First two bytes of every maintenance window key in the log.
pub const KEY_PREFIX: [u8; 2] = [0xFF, b'M'];

/// After its end a window is `verifying` this long, then `completed`.
pub const VERIFY_FOR: Duration = Duration::from_secs(15 * 60);

/// A maintenance window id: 16 bytes, shown as a 26-character ULID string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MaintenanceId(pub [u8; 16]);

impl MaintenanceId {
    /// A fresh id: a new ULID with the maintenance prefix in front.
    pub fn generate() -> MaintenanceId {
        let mut b = ulid::Ulid::generate().to_bytes();
        b[..2].copy_from_slice(&KEY_PREFIX);
        MaintenanceId(b)
    }

    pub fn parse(s: &str) -> Option<MaintenanceId> {
        let b = ulid::Ulid::from_string(s.trim()).ok()?.to_bytes();
        Self::is_key(&b).then_some(MaintenanceId(b))
    }

    /// Whether a log key belongs to a maintenance window (not an incident).
    pub fn is_key(key: &[u8; 16]) -> bool {
        key[..2] == KEY_PREFIX
    }
}

impl std::fmt::Display for MaintenanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        ulid::Ulid::from_bytes(self.0).fmt(f)
    }
}

/// Statuspage's maintenance statuses, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceStatus {
    Scheduled,
    InProgress,
    Verifying,
    Completed,
}

impl MaintenanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MaintenanceStatus::Scheduled => "scheduled",
            MaintenanceStatus::InProgress => "in_progress",
            MaintenanceStatus::Verifying => "verifying",
            MaintenanceStatus::Completed => "completed",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            MaintenanceStatus::Scheduled => "Scheduled",
            MaintenanceStatus::InProgress => "In progress",
            MaintenanceStatus::Verifying => "Verifying",
            MaintenanceStatus::Completed => "Completed",
        }
    }
}

/// One stored change of a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceEvent {
    pub at: Timestamp,
    #[serde(flatten)]
    pub kind: MaintenanceEventKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MaintenanceEventKind {
    MaintenanceScheduled {
        id: MaintenanceId,
        title: String,
        services: Vec<String>,
        starts_at: Timestamp,
        ends_at: Timestamp,
        body: String,
    },
    MaintenanceUpdated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        starts_at: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ends_at: Option<Timestamp>,
    },
    MaintenanceCancelled {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
    },
}

/// A posted message of a window (what customers read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceNote {
    pub seq: u64,
    pub at: Timestamp,
    pub body: String,
}

/// The window, folded from its events.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Maintenance {
    pub id: Option<MaintenanceId>,
    pub title: String,
    pub services: Vec<String>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub notes: Vec<MaintenanceNote>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub cancelled_at: Option<Timestamp>,
    pub version: u64,
}

impl Maintenance {
    pub fn apply(&mut self, e: &MaintenanceEvent) {
        self.version += 1;
        self.updated_at = e.at;
        let note = |m: &mut Maintenance, body: &Option<String>| {
            if let Some(b) = body.as_ref().filter(|b| !b.is_empty()) {
                let seq = m.notes.len() as u64 + 1;
                m.notes.push(MaintenanceNote {
                    seq,
                    at: e.at,
                    body: b.clone(),
                });
            }
        };
        match &e.kind {
            MaintenanceEventKind::MaintenanceScheduled {
                id,
                title,
                services,
                starts_at,
                ends_at,
                body,
            } => {
                self.id = Some(*id);
                self.title = title.clone();
                self.services = services.clone();
                self.starts_at = *starts_at;
                self.ends_at = *ends_at;
                self.created_at = e.at;
                note(self, &Some(body.clone()));
            }
            MaintenanceEventKind::MaintenanceUpdated {
                body,
                starts_at,
                ends_at,
            } => {
                if let Some(s) = starts_at {
                    self.starts_at = *s;
                }
                if let Some(t) = ends_at {
                    self.ends_at = *t;
                }
                note(self, body);
            }
            MaintenanceEventKind::MaintenanceCancelled { body } => {
                self.cancelled_at = Some(e.at);
                note(self, body);
            }
        }
    }

    /// The status the window's times give at `now`.
    pub fn status_at(&self, now: Timestamp) -> MaintenanceStatus {
        if now < self.starts_at {
            MaintenanceStatus::Scheduled
        } else if now < self.ends_at {
            MaintenanceStatus::InProgress
        } else if now < self.ends_at.plus(VERIFY_FOR) {
            MaintenanceStatus::Verifying
        } else {
            MaintenanceStatus::Completed
        }
    }

    /// When the status changes next after `now` (none once completed or cancelled).
    pub fn next_change(&self, now: Timestamp) -> Option<Timestamp> {
        if self.cancelled_at.is_some() {
            return None;
        }
        [self.starts_at, self.ends_at, self.ends_at.plus(VERIFY_FOR)]
            .into_iter()
            .find(|t| *t > now)
    }

    /// When a status-changing time has passed: the moment it changed.
    pub fn status_since(&self, now: Timestamp) -> Timestamp {
        let since = match self.status_at(now) {
            MaintenanceStatus::Scheduled => self.created_at,
            MaintenanceStatus::InProgress => self.starts_at,
            MaintenanceStatus::Verifying => self.ends_at,
            MaintenanceStatus::Completed => self.ends_at.plus(VERIFY_FOR),
        };
        since.max(self.updated_at.min(now))
    }
}

/// What `ScheduleMaintenance` asks for (validated by [`schedule`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRequest {
    pub title: String,
    pub services: Vec<String>,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    pub body: String,
}

/// What `UpdateMaintenance` asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateRequest {
    pub body: Option<String>,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    pub cancel: bool,
}

/// Validates a new window; `is_component` says whether a service is on the page.
pub fn schedule(
    req: &ScheduleRequest,
    id: MaintenanceId,
    now: Timestamp,
    is_component: &dyn Fn(&str) -> Option<bool>,
) -> Result<MaintenanceEvent, DomainError> {
    let title = req.title.trim();
    if title.is_empty() {
        return Err(DomainError::invalid("title", "is required"));
    }
    if title.chars().count() > limits::TITLE_MAX_CHARS {
        return Err(DomainError::invalid(
            "title",
            format!("at most {} characters", limits::TITLE_MAX_CHARS),
        ));
    }
    check_body(&req.body)?;
    if req.services.is_empty() {
        return Err(DomainError::invalid(
            "services",
            "name at least one status page component",
        ));
    }
    if req.services.len() > limits::SERVICES_MAX {
        return Err(DomainError::invalid(
            "services",
            format!("at most {} services", limits::SERVICES_MAX),
        ));
    }
    let mut services: Vec<String> = Vec::with_capacity(req.services.len());
    for s in &req.services {
        match is_component(s) {
            None => return Err(DomainError::not_found("services", format!("unknown service {s:?}"))),
            Some(false) => {
                return Err(DomainError::precondition(
                    Some("services"),
                    format!("service {s:?} is not on the status page (status_page = false)"),
                ));
            }
            Some(true) => {}
        }
        if services.contains(s) {
            return Err(DomainError::invalid("services", format!("service {s:?} listed twice")));
        }
        services.push(s.clone());
    }
    let starts_at = req
        .starts_at
        .ok_or_else(|| DomainError::invalid("starts_at", "is required"))?;
    let ends_at = req
        .ends_at
        .ok_or_else(|| DomainError::invalid("ends_at", "is required"))?;
    check_times(starts_at, ends_at, now)?;
    Ok(MaintenanceEvent {
        at: now,
        kind: MaintenanceEventKind::MaintenanceScheduled {
            id,
            title: title.to_string(),
            services,
            starts_at,
            ends_at,
            body: req.body.trim().to_string(),
        },
    })
}

/// Validates a change of an existing window; `None` when nothing changes.
pub fn update(m: &Maintenance, req: &UpdateRequest, now: Timestamp) -> Result<Option<MaintenanceEvent>, DomainError> {
    if m.cancelled_at.is_some() {
        return Err(DomainError::precondition(None, "the maintenance window is cancelled"));
    }
    let body = req.body.as_deref().map(str::trim).filter(|b| !b.is_empty());
    if let Some(b) = body {
        check_body(b)?;
    }
    let body = body.map(str::to_string);
    if req.cancel {
        if m.status_at(now) >= MaintenanceStatus::Verifying {
            return Err(DomainError::precondition(
                Some("cancel"),
                "the maintenance window has already ended",
            ));
        }
        return Ok(Some(MaintenanceEvent {
            at: now,
            kind: MaintenanceEventKind::MaintenanceCancelled { body },
        }));
    }
    let starts_at = req.starts_at.filter(|s| *s != m.starts_at);
    let ends_at = req.ends_at.filter(|e| *e != m.ends_at);
    if starts_at.is_some() && m.status_at(now) != MaintenanceStatus::Scheduled {
        return Err(DomainError::precondition(
            Some("starts_at"),
            "the maintenance window has already started",
        ));
    }
    if starts_at.is_some() || ends_at.is_some() {
        let (s, e) = (starts_at.unwrap_or(m.starts_at), ends_at.unwrap_or(m.ends_at));
        if e <= s {
            return Err(DomainError::invalid("ends_at", "must be after starts_at"));
        }
        if ends_at.is_some() && e <= now {
            return Err(DomainError::invalid("ends_at", "must be in the future"));
        }
    }
    if body.is_none() && starts_at.is_none() && ends_at.is_none() {
        return Ok(None);
    }
    Ok(Some(MaintenanceEvent {
        at: now,
        kind: MaintenanceEventKind::MaintenanceUpdated {
            body,
            starts_at,
            ends_at,
        },
    }))
}

fn check_body(body: &str) -> Result<(), DomainError> {
    if body.len() > limits::TEXT_MAX_BYTES {
        return Err(DomainError::invalid(
            "body",
            format!("at most {} bytes", limits::TEXT_MAX_BYTES),
        ));
    }
    Ok(())
}

fn check_times(starts_at: Timestamp, ends_at: Timestamp, now: Timestamp) -> Result<(), DomainError> {
    if ends_at <= starts_at {
        return Err(DomainError::invalid("ends_at", "must be after starts_at"));
    }
    if ends_at <= now {
        return Err(DomainError::invalid("ends_at", "must be in the future"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_729_200_000;
    const MIN: i64 = 60_000;

    fn window(start: i64, end: i64) -> Maintenance {
        let req = ScheduleRequest {
            title: "Database upgrade".into(),
            services: vec!["payments-api".into()],
            starts_at: Some(Timestamp(T0 + start * MIN)),
            ends_at: Some(Timestamp(T0 + end * MIN)),
            body: "We will upgrade the database.".into(),
        };
        let e = schedule(&req, MaintenanceId::generate(), Timestamp(T0), &|s| {
            Some(s == "payments-api")
        })
        .unwrap();
        let mut m = Maintenance::default();
        m.apply(&e);
        m
    }

    #[test]
    fn status_follows_the_times() {
        let m = window(60, 120);
        let at = |min: i64| m.status_at(Timestamp(T0 + min * MIN));
        assert_eq!(at(0), MaintenanceStatus::Scheduled);
        assert_eq!(at(60), MaintenanceStatus::InProgress);
        assert_eq!(at(120), MaintenanceStatus::Verifying);
        assert_eq!(at(135), MaintenanceStatus::Completed);
        assert_eq!(m.next_change(Timestamp(T0)), Some(Timestamp(T0 + 60 * MIN)));
        assert_eq!(
            m.next_change(Timestamp(T0 + 130 * MIN)),
            Some(Timestamp(T0 + 135 * MIN))
        );
        assert_eq!(m.next_change(Timestamp(T0 + 135 * MIN)), None);
    }

    #[test]
    fn bad_requests_name_the_field() {
        let ok = ScheduleRequest {
            title: "x".into(),
            services: vec!["payments-api".into()],
            starts_at: Some(Timestamp(T0)),
            ends_at: Some(Timestamp(T0 + MIN)),
            body: String::new(),
        };
        let comp = |s: &str| match s {
            "payments-api" => Some(true),
            "k8s" => Some(false),
            _ => None,
        };
        let check = |req: ScheduleRequest, field: &str| {
            let e = schedule(&req, MaintenanceId::generate(), Timestamp(T0), &comp).unwrap_err();
            assert_eq!(e.field, Some(field), "{e}");
        };
        check(
            ScheduleRequest {
                title: " ".into(),
                ..ok.clone()
            },
            "title",
        );
        check(
            ScheduleRequest {
                services: vec![],
                ..ok.clone()
            },
            "services",
        );
        check(
            ScheduleRequest {
                services: vec!["nope".into()],
                ..ok.clone()
            },
            "services",
        );
        check(
            ScheduleRequest {
                services: vec!["k8s".into()],
                ..ok.clone()
            },
            "services",
        );
        check(
            ScheduleRequest {
                starts_at: None,
                ..ok.clone()
            },
            "starts_at",
        );
        check(
            ScheduleRequest {
                ends_at: Some(Timestamp(T0)),
                ..ok.clone()
            },
            "ends_at",
        );
        check(
            ScheduleRequest {
                body: "x".repeat(limits::TEXT_MAX_BYTES + 1),
                ..ok
            },
            "body",
        );
    }

    #[test]
    fn updates_and_cancellation() {
        let m = window(60, 120);
        let now = Timestamp(T0 + 70 * MIN);
        let started = update(
            &m,
            &UpdateRequest {
                starts_at: Some(Timestamp(T0)),
                ..Default::default()
            },
            now,
        );
        assert_eq!(started.unwrap_err().field, Some("starts_at"));
        assert_eq!(update(&m, &UpdateRequest::default(), now).unwrap(), None);
        let mut m2 = m.clone();
        let e = update(
            &m,
            &UpdateRequest {
                body: Some("halfway".into()),
                ends_at: Some(Timestamp(T0 + 180 * MIN)),
                ..Default::default()
            },
            now,
        )
        .unwrap()
        .unwrap();
        m2.apply(&e);
        assert_eq!(m2.notes.len(), 2);
        assert_eq!(m2.ends_at, Timestamp(T0 + 180 * MIN));
        let c = update(
            &m2,
            &UpdateRequest {
                cancel: true,
                ..Default::default()
            },
            now,
        )
        .unwrap()
        .unwrap();
        m2.apply(&c);
        assert!(m2.cancelled_at.is_some());
        assert!(
            update(
                &m2,
                &UpdateRequest {
                    body: Some("x".into()),
                    ..Default::default()
                },
                now
            )
            .is_err()
        );
    }

    #[test]
    fn ids_are_recognisable_log_keys() {
        let id = MaintenanceId::generate();
        assert!(MaintenanceId::is_key(&id.0));
        assert_eq!(MaintenanceId::parse(&id.to_string()), Some(id));
        let incident = ulid::Ulid::generate();
        assert!(!MaintenanceId::is_key(&incident.to_bytes()));
        assert_eq!(MaintenanceId::parse(&incident.to_string()), None);
    }
}
