//! Alerts as part of the incident aggregate (issue 6): what an alert source
//! (Alertmanager, a PagerDuty-style tool, the gRPC `AlertService`) asks, how
//! its labels route to a team, service and severity, and which events an
//! alert notification causes on an incident.
//!
//! One incident per dedup key (an Alertmanager `groupKey` or a PagerDuty
//! `dedup_key`); inside it, alerts are told apart by fingerprint. Which
//! incident a key maps to is the ingestion router's business (actors crate);
//! everything decided here is a pure function of (incident, intake, now):
//!
//! * undeclared incident + a trigger → `Declared` (through the ordinary
//!   declaration rules, so every declaration looks alike) + routing notes +
//!   `AlertAttached` per alert;
//! * open incident → new fingerprints attach, known firing ones are
//!   duplicates (no event), resolutions resolve; when the last alert
//!   resolves, `AlertsAllResolved`, then `auto_mitigate` / `auto_resolve`
//!   if the route says so (never resolved otherwise: the commander decides);
//! * resolved incident + a trigger within the reopen window → reopened
//!   (`StatusChanged` back to investigating) and attached; outside the window
//!   → the `closed` refusal, on which the router opens a new incident;
//! * resolved incident + only follow-ups (acknowledge / resolve) → the
//!   `ignored` refusal, which the edges report as "ignored" (not an error).

use crate::command::{Action, Command, Directory};
use crate::decide::Ctx;
use crate::error::{DomainError, ErrorKind};
use crate::event::{Event, EventKind};
use crate::model::{Incident, IncidentId, Severity, Status};
use crate::time::{Timestamp, human_duration};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Documented limits of alert input (README "Limits").
pub mod limits {
    /// Dedup keys and fingerprints, in bytes (PagerDuty's dedup_key limit).
    pub const KEY_MAX_BYTES: usize = 255;
    /// Labels per alert.
    pub const LABELS_MAX: usize = 64;
    /// A label name, in bytes.
    pub const LABEL_NAME_MAX_BYTES: usize = 128;
    /// A label value, in bytes.
    pub const LABEL_VALUE_MAX_BYTES: usize = 4096;
    /// Alert summaries, in characters (PagerDuty's payload.summary limit).
    pub const SUMMARY_MAX_CHARS: usize = 1024;
    /// Source / integration names, in bytes.
    pub const SOURCE_MAX_BYTES: usize = 255;
    /// Alerts in one notification.
    pub const SIGNALS_MAX: usize = 1000;
    /// Alerts one incident holds; a notification that would exceed it is refused.
    pub const ALERTS_PER_INCIDENT_MAX: usize = 10_000;
}

/// Field named by the `closed` / `ignored` refusals.
pub const KEY_FIELD: &str = "dedup_key";
const CLOSED_PREFIX: &str = "closed: ";
const IGNORED_PREFIX: &str = "ignored: ";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlertStatus {
    Firing,
    Acknowledged,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// One alert of an incident (`Incident.alerts[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Alertmanager fingerprint, or the dedup key for single-alert sources.
    pub fingerprint: String,
    pub status: AlertStatus,
    pub labels: BTreeMap<String, String>,
    pub summary: String,
    /// The integration it came through.
    pub source: String,
    pub started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
}

/// An incident's alerts in arrival order, one per fingerprint, indexed by
/// fingerprint once there are more than [`INDEX_FROM`]: looking one up,
/// attaching and changing a status cost the same however many alerts a storm
/// attached, and the usual incident with a handful of alerts carries no
/// index (a scan of a few is as fast, and every live incident is smaller).
/// Serialized as the plain list; the index and the unresolved count are
/// rebuilt when it is read.
#[derive(Clone, Default)]
pub struct AlertList {
    list: Vec<Alert>,
    /// Empty while the list has at most `INDEX_FROM` alerts.
    by_fingerprint: HashMap<String, usize>,
    unresolved: usize,
}

/// Lists up to this long are scanned instead of indexed.
const INDEX_FROM: usize = 8;

impl AlertList {
    pub fn get(&self, fingerprint: &str) -> Option<&Alert> {
        self.position(fingerprint).and_then(|i| self.list.get(i))
    }

    fn position(&self, fingerprint: &str) -> Option<usize> {
        if self.list.len() <= INDEX_FROM {
            self.list.iter().position(|a| a.fingerprint == fingerprint)
        } else {
            self.by_fingerprint.get(fingerprint).copied()
        }
    }

    /// Alerts not resolved.
    pub fn unresolved(&self) -> usize {
        self.unresolved
    }

    /// Adds the alert, or replaces the one with its fingerprint (keeping its place).
    pub fn upsert(&mut self, alert: Alert) {
        self.unresolved += usize::from(alert.status != AlertStatus::Resolved);
        match self.position(&alert.fingerprint) {
            Some(i) => {
                let old = std::mem::replace(&mut self.list[i], alert);
                self.unresolved -= usize::from(old.status != AlertStatus::Resolved);
            }
            None => {
                if self.list.is_empty() {
                    // Most incidents hold one alert: room for exactly one, not four.
                    self.list.reserve_exact(1);
                }
                self.list.push(alert);
                let len = self.list.len();
                if len == INDEX_FROM + 1 {
                    self.by_fingerprint = self
                        .list
                        .iter()
                        .enumerate()
                        .map(|(i, a)| (a.fingerprint.clone(), i))
                        .collect();
                } else if len > INDEX_FROM + 1 {
                    self.by_fingerprint
                        .insert(self.list[len - 1].fingerprint.clone(), len - 1);
                }
            }
        }
    }

    /// Changes the alert with this fingerprint, if there is one (not its fingerprint).
    pub fn update(&mut self, fingerprint: &str, change: impl FnOnce(&mut Alert)) -> Option<&Alert> {
        let i = self.position(fingerprint)?;
        let a = self.list.get_mut(i)?;
        let was = a.status != AlertStatus::Resolved;
        let key = std::mem::take(&mut a.fingerprint);
        change(a);
        a.fingerprint = key;
        let is = a.status != AlertStatus::Resolved;
        self.unresolved = self.unresolved + usize::from(is) - usize::from(was);
        Some(a)
    }
}

impl std::ops::Deref for AlertList {
    type Target = [Alert];
    fn deref(&self) -> &[Alert] {
        &self.list
    }
}

impl FromIterator<Alert> for AlertList {
    fn from_iter<I: IntoIterator<Item = Alert>>(iter: I) -> Self {
        let mut out = AlertList::default();
        for a in iter {
            out.upsert(a);
        }
        out
    }
}

impl PartialEq for AlertList {
    fn eq(&self, other: &Self) -> bool {
        self.list == other.list
    }
}

impl Eq for AlertList {}

impl std::fmt::Debug for AlertList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.list.fmt(f)
    }
}

impl Serialize for AlertList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.list.serialize(s)
    }
}

impl<'de> Deserialize<'de> for AlertList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Alert>::deserialize(d)?.into_iter().collect())
    }
}

/// What a source says about one alert (PagerDuty's event_action).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlertAction {
    Trigger,
    Acknowledge,
    Resolve,
}

/// One alert of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSignal {
    pub action: AlertAction,
    pub fingerprint: String,
    pub labels: BTreeMap<String, String>,
    pub summary: String,
    /// `None`: now.
    pub started_at: Option<Timestamp>,
    /// `None`: now (resolutions only).
    pub ended_at: Option<Timestamp>,
}

/// Per-integration behaviour (`[[integrations]]` of the org config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRules {
    /// A key firing again within this long after resolution reopens its incident.
    pub reopen_window: Duration,
    /// All alerts resolved → status mitigating.
    pub auto_mitigate: bool,
    /// All alerts resolved → incident resolved (off unless configured).
    pub auto_resolve: bool,
}

impl Default for AlertRules {
    fn default() -> Self {
        AlertRules {
            reopen_window: Duration::from_secs(30 * 60),
            auto_mitigate: false,
            auto_resolve: false,
        }
    }
}

/// Where alerts land when their labels say nothing usable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteDefaults {
    /// The integration's team (`[[integrations]] team`): alerts without a team label.
    pub integration_team: String,
    /// `org.default_team`: alerts naming an unknown team.
    pub default_team: String,
    /// `org.unclear_severity`.
    pub unclear_severity: Severity,
}

/// Id and number of the incident a first notification opens; the supervisor fills them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NewIncident {
    pub id: IncidentId,
    pub number: u64,
}

/// One notification of an alert source for one dedup key: the command of `Action::Alert`.
/// The edges fill what the source said; `source`, `defaults` and `rules` come
/// from the integration, `open_as` from the supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlertIntake {
    /// The dedup key (Alertmanager groupKey / PagerDuty dedup_key): one incident per key.
    pub key: String,
    /// Integration id; also the author of the events.
    pub source: String,
    pub signals: Vec<AlertSignal>,
    /// Incident title if this opens one (summary annotation, alert name, ...).
    pub title: String,
    /// Incident summary if this opens one.
    pub summary: String,
    /// Labels that route (Alertmanager commonLabels, PagerDuty details).
    pub labels: BTreeMap<String, String>,
    /// Explicit routing fields (gRPC `team`, `service`, `severity`); override labels.
    pub team: Option<String>,
    pub service: Option<String>,
    pub severity: Option<Severity>,
    pub defaults: RouteDefaults,
    pub rules: AlertRules,
    pub open_as: NewIncident,
}

impl AlertIntake {
    pub fn has_trigger(&self) -> bool {
        self.signals.iter().any(|s| s.action == AlertAction::Trigger)
    }
}

/// Team, services and severity of a new incident, and the notes explaining defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub team: String,
    pub services: Vec<String>,
    /// `None`: unclear, use the org's unclear severity.
    pub severity: Option<Severity>,
    pub notes: Vec<String>,
}

/// Severity named by a label value: `sev1`..`sev4` (also `SEV-2`, `p1`..`p4`).
pub fn parse_incident_severity(v: &str) -> Option<Severity> {
    let v = v.trim().to_ascii_lowercase().replace(['-', '_', ' '], "");
    match v.as_str() {
        "sev1" | "p1" | "1" => Some(Severity::Sev1),
        "sev2" | "p2" | "2" => Some(Severity::Sev2),
        "sev3" | "p3" | "3" => Some(Severity::Sev3),
        "sev4" | "p4" | "4" => Some(Severity::Sev4),
        _ => None,
    }
}

/// Monitoring severity words (Prometheus rules, PagerDuty payload.severity).
pub fn parse_monitoring_severity(v: &str) -> Option<Severity> {
    match v.trim().to_ascii_lowercase().as_str() {
        "critical" => Some(Severity::Sev1),
        "error" => Some(Severity::Sev2),
        "warning" => Some(Severity::Sev3),
        "info" => Some(Severity::Sev4),
        _ => None,
    }
}

/// Routing from labels (CONFIG.md `[[integrations]]`, issue 6): never refuses.
///
/// * team: explicit field, else label `team`; a known team is used; an
///   unknown one goes to the org's default team, a missing one to the
///   integration's team; both with a note.
/// * service: explicit field, else label `service`, when it is a configured
///   service; an unknown one is noted and left out.
/// * severity: explicit field, else label `incident_severity` (`sev1`..`sev4`),
///   else label `severity` (`critical`, `error`, `warning`, `info`), else
///   unclear (the org's unclear severity, noted).
pub fn route(intake: &AlertIntake, directory: &dyn Directory) -> Routed {
    let mut notes = Vec::new();
    let label = |name: &str| intake.labels.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let team_asked = intake
        .team
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .or(label("team"));
    let team = match team_asked {
        Some(t) if directory.has_team(t) => t.to_string(),
        Some(t) => {
            let to = &intake.defaults.default_team;
            notes.push(format!(
                "Alert names team {t:?}, which is not a configured team: routed to {to} (org default team)"
            ));
            to.clone()
        }
        None => {
            let to = &intake.defaults.integration_team;
            notes.push(format!(
                "Alert names no team: routed to {to} (default of integration {})",
                intake.source
            ));
            to.clone()
        }
    };
    let service_asked = intake
        .service
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .or(label("service"));
    let services = match service_asked {
        Some(s) if directory.has_service(s) => vec![s.to_string()],
        Some(s) => {
            notes.push(format!(
                "Alert names service {s:?}, which is not a configured service: no service recorded"
            ));
            Vec::new()
        }
        None => Vec::new(),
    };
    let severity = match intake.severity {
        Some(s) => Some(s),
        None => {
            let from_incident_label = label("incident_severity").map(|v| (v, parse_incident_severity(v)));
            match from_incident_label {
                Some((_, Some(s))) => Some(s),
                other => {
                    if let Some((v, None)) = other {
                        notes.push(format!("Label incident_severity={v:?} is not sev1..sev4: ignored"));
                    }
                    match label("severity").map(|v| (v, parse_monitoring_severity(v))) {
                        Some((_, Some(s))) => Some(s),
                        Some((v, None)) => {
                            notes.push(format!(
                                "Label severity={v:?} is not critical, error, warning or info: severity unclear"
                            ));
                            None
                        }
                        None => None,
                    }
                }
            }
        }
    };
    Routed {
        team,
        services,
        severity,
        notes,
    }
}

/// True if `e` is the refusal "this key's incident is resolved and outside its
/// reopen window": the router then opens a new incident for the key.
pub fn is_closed(e: &DomainError) -> bool {
    e.kind == ErrorKind::FailedPrecondition && e.field == Some(KEY_FIELD) && e.message.starts_with(CLOSED_PREFIX)
}

/// True if `e` is the refusal "follow-up on a closed key": reported as ignored.
pub fn is_ignored(e: &DomainError) -> bool {
    e.kind == ErrorKind::FailedPrecondition && e.field == Some(KEY_FIELD) && e.message.starts_with(IGNORED_PREFIX)
}

fn ignored(message: String) -> DomainError {
    DomainError::precondition(Some(KEY_FIELD), format!("{IGNORED_PREFIX}{message}"))
}

fn closed(message: String) -> DomainError {
    DomainError::precondition(Some(KEY_FIELD), format!("{CLOSED_PREFIX}{message}"))
}

/// Checks every size limit of an intake; the edges check too, this is the authority.
pub fn validate(intake: &AlertIntake) -> Result<(), DomainError> {
    let key = intake.key.trim();
    if key.is_empty() {
        return Err(DomainError::invalid(KEY_FIELD, "is required"));
    }
    if intake.key.len() > limits::KEY_MAX_BYTES {
        return Err(DomainError::invalid(
            KEY_FIELD,
            format!("at most {} bytes", limits::KEY_MAX_BYTES),
        ));
    }
    if intake.source.is_empty() || intake.source.len() > limits::SOURCE_MAX_BYTES {
        return Err(DomainError::invalid(
            "source",
            format!("is required, at most {} bytes", limits::SOURCE_MAX_BYTES),
        ));
    }
    if intake.signals.is_empty() {
        return Err(DomainError::invalid("alerts", "at least one alert is required"));
    }
    if intake.signals.len() > limits::SIGNALS_MAX {
        return Err(DomainError::invalid(
            "alerts",
            format!("at most {} alerts per notification", limits::SIGNALS_MAX),
        ));
    }
    check_labels("labels", &intake.labels)?;
    for s in &intake.signals {
        if s.fingerprint.is_empty() {
            return Err(DomainError::invalid("fingerprint", "is required"));
        }
        if s.fingerprint.len() > limits::KEY_MAX_BYTES {
            return Err(DomainError::invalid(
                "fingerprint",
                format!("at most {} bytes", limits::KEY_MAX_BYTES),
            ));
        }
        if s.summary.len() > limits::SUMMARY_MAX_CHARS * 4 || s.summary.chars().count() > limits::SUMMARY_MAX_CHARS {
            return Err(DomainError::invalid(
                "summary",
                format!("at most {} characters", limits::SUMMARY_MAX_CHARS),
            ));
        }
        check_labels("labels", &s.labels)?;
    }
    Ok(())
}

fn check_labels(field: &'static str, labels: &BTreeMap<String, String>) -> Result<(), DomainError> {
    if labels.len() > limits::LABELS_MAX {
        return Err(DomainError::invalid(
            field,
            format!("at most {} labels", limits::LABELS_MAX),
        ));
    }
    for (k, v) in labels {
        if k.is_empty() || k.len() > limits::LABEL_NAME_MAX_BYTES {
            return Err(DomainError::invalid(
                field,
                format!("label names are 1..={} bytes", limits::LABEL_NAME_MAX_BYTES),
            ));
        }
        if v.len() > limits::LABEL_VALUE_MAX_BYTES {
            return Err(DomainError::invalid(
                field,
                format!(
                    "label {k:?}: values are at most {} bytes",
                    limits::LABEL_VALUE_MAX_BYTES
                ),
            ));
        }
    }
    Ok(())
}

/// The events one alert notification causes (see the module docs).
pub fn decide(state: &Incident, intake: &AlertIntake, ctx: &Ctx<'_>) -> Result<Vec<Event>, DomainError> {
    validate(intake)?;
    let by = Some(intake.source.clone());
    let event = |kind: EventKind| Event {
        at: ctx.now,
        by: by.clone(),
        kind,
    };
    let mut events = Vec::new();
    let mut status = state.status;

    if !state.is_declared() {
        if !intake.has_trigger() {
            return Err(ignored(format!("no open incident for dedup key {:?}", intake.key)));
        }
        let routed = route(intake, ctx.directory);
        let (severity, unclear_note) = match routed.severity {
            Some(s) => (Some(s), None),
            // The playbook's own default (SEV-1) says so on the timeline by itself.
            None if intake.defaults.unclear_severity == Severity::Sev1 => (None, None),
            None => (
                Some(intake.defaults.unclear_severity),
                Some(format!(
                    "Severity was unclear in the alert: treated as {} (the org's unclear severity) until someone sets it",
                    intake.defaults.unclear_severity
                )),
            ),
        };
        let declare = Command {
            access: Default::default(),
            by: None,
            action: Action::Declare {
                id: intake.open_as.id,
                number: intake.open_as.number,
                title: title_of(intake),
                team: routed.team.clone(),
                services: routed.services.clone(),
                severity,
                summary: truncate_bytes(&intake.summary, crate::decide::limits::TEXT_MAX_BYTES),
                commander: None,
                drill: false,
            },
        };
        for mut e in crate::decide::decide(state, &declare, ctx)? {
            e.by = by.clone();
            events.push(e);
        }
        for note in routed.notes.into_iter().chain(unclear_note) {
            events.push(event(EventKind::EntryAdded {
                kind: crate::model::EntryKind::System,
                text: note,
            }));
        }
        status = Status::Investigating;
    } else if state.is_resolved() {
        let resolved_at = state.resolved_at.unwrap_or(state.last_event_at);
        if !intake.has_trigger() {
            return Err(ignored(format!(
                "{} is resolved; follow-ups on a closed key change nothing",
                state.reference()
            )));
        }
        if ctx.now.since(resolved_at) > intake.rules.reopen_window {
            return Err(closed(format!(
                "{} was resolved at {resolved_at}, outside the reopen window of {}",
                state.reference(),
                human_duration(intake.rules.reopen_window)
            )));
        }
        events.push(event(EventKind::StatusChanged {
            from: Status::Resolved,
            to: Status::Investigating,
            note: format!(
                "alert group fired again within the reopen window ({})",
                human_duration(intake.rules.reopen_window)
            ),
        }));
        status = Status::Investigating;
    }

    // The alerts as this notification leaves them.
    let mut view = View::new(&state.alerts);
    let mut resolved_some = false;
    let mut acknowledged = state.acknowledged_at.is_some();
    for s in &intake.signals {
        let known = view.get(&s.fingerprint);
        match (s.action, known) {
            (AlertAction::Trigger, None | Some(AlertStatus::Resolved)) => {
                events.push(event(EventKind::AlertAttached {
                    key: intake.key.clone(),
                    alert: alert_of(intake, s, AlertStatus::Firing, ctx.now),
                }));
                view.set(&s.fingerprint, known, AlertStatus::Firing);
            }
            (AlertAction::Trigger, Some(_)) => {} // a duplicate: already firing
            (AlertAction::Acknowledge, known) => {
                if known == Some(AlertStatus::Firing) {
                    events.push(event(EventKind::AlertAcknowledged {
                        fingerprint: s.fingerprint.clone(),
                    }));
                    view.set(&s.fingerprint, known, AlertStatus::Acknowledged);
                }
                if !acknowledged && known.is_some_and(|k| k != AlertStatus::Resolved) {
                    events.push(event(EventKind::Acknowledged));
                    acknowledged = true;
                }
            }
            (AlertAction::Resolve, Some(AlertStatus::Firing | AlertStatus::Acknowledged)) => {
                events.push(event(EventKind::AlertResolved {
                    fingerprint: s.fingerprint.clone(),
                    ended_at: s.ended_at.unwrap_or(ctx.now),
                }));
                view.set(&s.fingerprint, known, AlertStatus::Resolved);
                resolved_some = true;
            }
            (AlertAction::Resolve, Some(AlertStatus::Resolved)) => {}
            (AlertAction::Resolve, None) => {
                // Fired and resolved between two notifications: still recorded.
                events.push(event(EventKind::AlertAttached {
                    key: intake.key.clone(),
                    alert: alert_of(intake, s, AlertStatus::Resolved, ctx.now),
                }));
                view.set(&s.fingerprint, known, AlertStatus::Resolved);
            }
        }
    }
    if view.total > limits::ALERTS_PER_INCIDENT_MAX {
        return Err(DomainError::precondition(
            Some("alerts"),
            format!(
                "an incident holds at most {} alerts; {} has {}",
                limits::ALERTS_PER_INCIDENT_MAX,
                state.reference(),
                state.alerts.len()
            ),
        ));
    }
    if resolved_some && view.unresolved == 0 {
        events.push(event(EventKind::AlertsAllResolved {
            count: view.total as u64,
        }));
        if intake.rules.auto_resolve {
            events.push(event(EventKind::StatusChanged {
                from: status,
                to: Status::Resolved,
                note: "all alerts resolved (the integration resolves automatically)".into(),
            }));
        } else if intake.rules.auto_mitigate && status < Status::Mitigating {
            events.push(event(EventKind::StatusChanged {
                from: status,
                to: Status::Mitigating,
                note: "all alerts resolved (auto_mitigate)".into(),
            }));
        }
    }
    Ok(events)
}

/// Fingerprint → status of the incident's alerts as a notification changes
/// them, without copying them.
struct View<'a> {
    alerts: &'a AlertList,
    changed: Vec<(&'a str, AlertStatus)>,
    total: usize,
    unresolved: usize,
}

impl<'a> View<'a> {
    fn new(alerts: &'a AlertList) -> View<'a> {
        View {
            alerts,
            changed: Vec::new(),
            total: alerts.len(),
            unresolved: alerts.unresolved(),
        }
    }

    fn get(&self, fingerprint: &str) -> Option<AlertStatus> {
        if let Some((_, s)) = self.changed.iter().rev().find(|(f, _)| *f == fingerprint) {
            return Some(*s);
        }
        self.alerts.get(fingerprint).map(|a| a.status)
    }

    /// Records `fingerprint` going from `was` to `now`.
    fn set(&mut self, fingerprint: &'a str, was: Option<AlertStatus>, now: AlertStatus) {
        let unresolved = |s: Option<AlertStatus>| usize::from(s.is_some_and(|s| s != AlertStatus::Resolved));
        self.total += usize::from(was.is_none());
        self.unresolved = self.unresolved + unresolved(Some(now)) - unresolved(was);
        self.changed.push((fingerprint, now));
    }
}

fn alert_of(intake: &AlertIntake, s: &AlertSignal, status: AlertStatus, now: Timestamp) -> Alert {
    Alert {
        fingerprint: s.fingerprint.clone(),
        status,
        labels: s.labels.clone(),
        summary: s.summary.clone(),
        source: intake.source.clone(),
        started_at: s.started_at.unwrap_or(now),
        ended_at: match status {
            AlertStatus::Resolved => Some(s.ended_at.unwrap_or(now)),
            _ => None,
        },
    }
}

/// The incident title: the intake's, else the key; trimmed to the title limit.
fn title_of(intake: &AlertIntake) -> String {
    let t = intake.title.trim();
    let t = if t.is_empty() { intake.key.trim() } else { t };
    let max = crate::decide::limits::TITLE_MAX_CHARS;
    if t.chars().count() <= max {
        t.to_string()
    } else {
        let mut s: String = t.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Folds the alert events into the incident (called by `apply`); returns the timeline text.
pub(crate) fn apply(state: &mut Incident, kind: &EventKind) -> Option<String> {
    match kind {
        EventKind::AlertAttached { key, alert } => {
            state.alert_key = Some(key.clone());
            let name = display_name(alert);
            let text = match (alert.status, state.alerts.get(&alert.fingerprint)) {
                (AlertStatus::Resolved, _) => format!("Alert fired and resolved: {name} [{}]", alert.fingerprint),
                (_, Some(_)) => format!("Alert firing again: {name} [{}]", alert.fingerprint),
                (_, None) => format!("Alert firing: {name} [{}]", alert.fingerprint),
            };
            state.alerts.upsert(alert.clone());
            Some(text)
        }
        EventKind::AlertAcknowledged { fingerprint } => {
            let a = state
                .alerts
                .update(fingerprint, |a| a.status = AlertStatus::Acknowledged)?;
            Some(format!("Alert acknowledged: {} [{fingerprint}]", display_name(a)))
        }
        EventKind::AlertResolved { fingerprint, ended_at } => {
            let a = state.alerts.update(fingerprint, |a| {
                a.status = AlertStatus::Resolved;
                a.ended_at = Some(*ended_at);
            })?;
            Some(format!("Alert resolved: {} [{fingerprint}]", display_name(a)))
        }
        EventKind::AlertsAllResolved { count } => Some(format!(
            "All {count} alert(s) of this incident are resolved; resolving the incident is the commander's call"
        )),
        _ => None,
    }
}

fn display_name(a: &Alert) -> String {
    if !a.summary.is_empty() {
        return a.summary.clone();
    }
    a.labels
        .get("alertname")
        .cloned()
        .unwrap_or_else(|| a.fingerprint.clone())
}

#[cfg(test)]
mod tests {
    use super::{Alert, AlertList, AlertStatus, INDEX_FROM};
    use crate::time::Timestamp;

    fn alert(fp: &str, status: AlertStatus) -> Alert {
        Alert {
            fingerprint: fp.into(),
            status,
            labels: Default::default(),
            summary: format!("alert {fp}"),
            source: "test".into(),
            started_at: Timestamp(1),
            ended_at: None,
        }
    }

    #[test]
    fn alert_list_finds_every_alert_before_and_after_it_grows_an_index() {
        let mut l = AlertList::default();
        for n in 0..(INDEX_FROM * 3) {
            l.upsert(alert(&format!("f{n}"), AlertStatus::Firing));
            // Every alert so far, first and last included, is found; a stranger is not.
            for m in [0, n / 2, n] {
                assert_eq!(
                    l.get(&format!("f{m}")).map(|a| a.fingerprint.as_str()),
                    Some(format!("f{m}").as_str())
                );
            }
            assert!(l.get("stranger").is_none());
        }
        // Replacing and changing still hit the right alert with the index in use.
        l.upsert(alert("f3", AlertStatus::Resolved));
        l.update(&format!("f{}", INDEX_FROM * 2), |a| a.status = AlertStatus::Resolved);
        assert_eq!((l.len(), l.unresolved()), (INDEX_FROM * 3, INDEX_FROM * 3 - 2));
        assert_eq!(l[3].status, AlertStatus::Resolved);
        assert_eq!(l[INDEX_FROM * 2].status, AlertStatus::Resolved);
        // The same list read back (serialized as the plain list) finds the same alerts.
        let back: AlertList = l.iter().cloned().collect();
        assert_eq!(back, l);
        assert_eq!(back.get("f20").map(|a| a.status), Some(AlertStatus::Firing));
    }

    #[test]
    fn alert_list_indexes_by_fingerprint_and_counts_unresolved() {
        let mut l = AlertList::default();
        l.upsert(alert("a", AlertStatus::Firing));
        l.upsert(alert("b", AlertStatus::Firing));
        l.upsert(alert("c", AlertStatus::Resolved));
        assert_eq!((l.len(), l.unresolved()), (3, 2));
        l.upsert(alert("a", AlertStatus::Resolved)); // replaced in place
        assert_eq!((l.len(), l.unresolved()), (3, 1));
        assert_eq!(l[0].status, AlertStatus::Resolved);
        l.update("b", |a| a.status = AlertStatus::Acknowledged);
        assert_eq!(l.unresolved(), 1);
        l.update("b", |a| a.status = AlertStatus::Resolved);
        assert_eq!(l.unresolved(), 0);
        // A change cannot move an alert to another fingerprint.
        l.update("c", |a| a.fingerprint = "z".into());
        assert!(l.get("c").is_some() && l.get("z").is_none());
        assert!(l.update("nope", |a| a.status = AlertStatus::Firing).is_none());
        assert_eq!(l.unresolved(), 0);
    }

    #[test]
    fn alert_list_serializes_as_the_plain_list() {
        let list = vec![alert("a", AlertStatus::Firing), alert("b", AlertStatus::Resolved)];
        let l: AlertList = list.iter().cloned().collect();
        let json = serde_json::to_string(&l).unwrap_or_default();
        assert_eq!(json, serde_json::to_string(&list).unwrap_or_default());
        let back: AlertList = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back, l);
        assert_eq!(
            (back.unresolved(), back.get("b").map(|a| a.status)),
            (1, Some(AlertStatus::Resolved))
        );
    }
}
