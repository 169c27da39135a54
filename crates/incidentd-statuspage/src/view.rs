//! The public view: what customers may see, and nothing else.
//!
//! An incident enters the view through [`PublicIncident::from_incident`],
//! which copies only public facts: affected components, severity (as
//! impact), status (in the public vocabulary), times, the comms lead's
//! component overrides, and the rendered text of customer-facing updates.
//! The incident's title, summary, impact text, roster, timeline and its
//! internal and executive updates are never copied, so no renderer can leak
//! them; drills are never admitted at all.

use crate::maintenance::{Maintenance, MaintenanceStatus};
use incidentd_domain::{ComponentStatus, Incident, IncidentId, Severity, Status, Timestamp, UpdateKind};
use std::collections::BTreeMap;
use std::time::Duration;

/// History the page shows (past incidents, availability bars).
pub const HISTORY_DAYS: i64 = 90;
/// Incidents listed per section (active, past), as Statuspage lists 50.
pub const SHOWN_MAX: usize = 50;
const DAY_MS: i64 = 86_400_000;

/// A status page component (a `[[services]]` entry with `status_page = true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentDef {
    pub id: String,
    pub name: String,
    pub group: Option<String>,
    pub description: Option<String>,
}

/// What the page is built from besides state: the org's title and components
/// in display order, and every service id the org knows.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub title: String,
    pub components: Vec<ComponentDef>,
    /// Every known service id, on the page or not.
    pub services: Vec<String>,
}

impl Catalog {
    pub fn component(&self, id: &str) -> Option<&ComponentDef> {
        self.components.iter().find(|c| c.id == id)
    }

    /// `Some(true)` on the page, `Some(false)` a known service that is not, `None` unknown.
    pub fn is_component(&self, id: &str) -> Option<bool> {
        if self.component(id).is_some() {
            Some(true)
        } else if self.services.iter().any(|s| s == id) {
            Some(false)
        } else {
            None
        }
    }

    /// Stable page id (Statuspage's `page.id`), from the title.
    pub fn page_id(&self) -> String {
        let slug: String = self
            .title
            .chars()
            .filter_map(|c| {
                if c.is_ascii_alphanumeric() {
                    Some(c.to_ascii_lowercase())
                } else if c.is_whitespace() || c == '-' {
                    Some('-')
                } else {
                    None
                }
            })
            .collect();
        let slug = slug.trim_matches('-').to_string();
        if slug.is_empty() { "status".into() } else { slug }
    }
}

/// Incident status in the public vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PublicStatus {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

impl PublicStatus {
    pub fn from_status(s: Status) -> PublicStatus {
        match s {
            Status::Investigating => PublicStatus::Investigating,
            Status::Identified => PublicStatus::Identified,
            Status::Mitigating => PublicStatus::Monitoring,
            Status::Resolved => PublicStatus::Resolved,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PublicStatus::Investigating => "investigating",
            PublicStatus::Identified => "identified",
            PublicStatus::Monitoring => "monitoring",
            PublicStatus::Resolved => "resolved",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            PublicStatus::Investigating => "Investigating",
            PublicStatus::Identified => "Identified",
            PublicStatus::Monitoring => "Monitoring",
            PublicStatus::Resolved => "Resolved",
        }
    }
}

/// Statuspage's incident impact, from severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Impact {
    None,
    Minor,
    Major,
    Critical,
}

impl Impact {
    pub fn from_severity(s: Severity) -> Impact {
        match s {
            Severity::Sev1 => Impact::Critical,
            Severity::Sev2 => Impact::Major,
            Severity::Sev3 => Impact::Minor,
            Severity::Sev4 => Impact::None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Impact::None => "none",
            Impact::Minor => "minor",
            Impact::Major => "major",
            Impact::Critical => "critical",
        }
    }
}

/// A customer-facing update, as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUpdate {
    pub seq: u64,
    pub at: Timestamp,
    /// The incident's public status when the update was posted.
    pub status: PublicStatus,
    pub body: String,
}

/// A stretch of an incident's life with one severity and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: Timestamp,
    /// `None`: still going.
    pub until: Option<Timestamp>,
    pub severity: Severity,
}

/// An incident as the public may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicIncident {
    pub id: IncidentId,
    /// Version of the incident this view was built from.
    pub version: u64,
    pub components: Vec<String>,
    pub severity: Severity,
    pub status: PublicStatus,
    pub declared_at: Timestamp,
    pub monitoring_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    /// Last change customers can see (status, severity, update).
    pub updated_at: Timestamp,
    pub overrides: Vec<(String, ComponentStatus)>,
    pub updates: Vec<PublicUpdate>,
    /// Unresolved stretches by severity (availability history).
    pub spans: Vec<Span>,
    /// `updates` holds every customer update (false when built from a
    /// summary of an incident seen mid-way; loaded before it is shown).
    pub complete: bool,
}

impl PublicIncident {
    /// The public part of a full incident (updates included); `None` for drills.
    pub fn from_incident(i: &Incident) -> Option<PublicIncident> {
        if i.drill || !i.is_declared() {
            return None;
        }
        let updates = i
            .updates
            .iter()
            .filter(|u| u.kind == UpdateKind::Customer)
            .enumerate()
            .map(|(n, u)| PublicUpdate {
                seq: n as u64 + 1,
                at: u.at,
                status: PublicStatus::from_status(status_at(i, u.at)),
                body: u.rendered.clone(),
            })
            .collect();
        let mut p = PublicIncident::from_summary(i, Vec::new());
        p.updates = updates;
        p.complete = true;
        p.refresh_updated_at();
        Some(p)
    }

    /// The public part of a summary (no updates in it); updates are kept
    /// from `updates`, and the result is not `complete` unless the caller knows.
    pub fn from_summary(i: &Incident, updates: Vec<PublicUpdate>) -> PublicIncident {
        let mut p = PublicIncident {
            id: i.id,
            version: i.version,
            components: i.services.clone(),
            severity: i.severity,
            status: PublicStatus::from_status(i.status),
            declared_at: i.declared_at,
            monitoring_at: i.mitigated_at,
            resolved_at: i.resolved_at.filter(|_| i.is_resolved()),
            updated_at: i.declared_at,
            overrides: i
                .component_overrides
                .iter()
                .map(|o| (o.service.clone(), o.status))
                .collect(),
            updates,
            spans: spans(i),
            complete: false,
        };
        p.refresh_updated_at();
        p
    }

    fn refresh_updated_at(&mut self) {
        let phase_change = self.spans.last().map(|s| s.from).unwrap_or(self.declared_at);
        self.updated_at = [
            Some(self.declared_at),
            Some(phase_change),
            self.monitoring_at,
            self.resolved_at,
            self.updates.last().map(|u| u.at),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(self.declared_at);
    }

    pub fn is_resolved(&self) -> bool {
        self.status == PublicStatus::Resolved
    }

    pub fn impact(&self) -> Impact {
        Impact::from_severity(self.severity)
    }

    /// The status this open incident gives a component, if it affects it.
    pub fn component_status(&self, component: &str) -> Option<ComponentStatus> {
        if self.is_resolved() {
            return None;
        }
        if let Some((_, s)) = self.overrides.iter().find(|(c, _)| c == component) {
            return Some(*s);
        }
        self.components
            .iter()
            .any(|c| c == component)
            .then(|| ComponentStatus::from_severity(self.severity))
    }

    /// Whether customers hear of it: it touches a component of the page, or
    /// the comms lead posted a customer-facing update. An incident of
    /// internal services only, never announced, stays off the page.
    pub fn is_public(&self, catalog: &Catalog) -> bool {
        !self.updates.is_empty()
            || self
                .components
                .iter()
                .chain(self.overrides.iter().map(|(c, _)| c))
                .any(|c| catalog.component(c).is_some())
    }

    /// Every component this incident names or overrides.
    pub fn affected(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.components.iter().map(String::as_str).collect();
        for (c, _) in &self.overrides {
            if !out.contains(&c.as_str()) {
                out.push(c);
            }
        }
        out
    }

    /// The public name: built from component names and impact, never from
    /// the internal title.
    pub fn name(&self, catalog: &Catalog) -> String {
        let names: Vec<&str> = self
            .affected()
            .into_iter()
            .filter_map(|c| catalog.component(c).map(|d| d.name.as_str()))
            .collect();
        let what = match self.impact() {
            Impact::Critical => "Major outage",
            Impact::Major => "Partial outage",
            Impact::Minor => "Degraded performance",
            Impact::None => "Minor issue",
        };
        if names.is_empty() {
            format!("{what} of some services")
        } else {
            format!("{what}: {}", names.join(", "))
        }
    }
}

/// The incident's status at `at`, from its phase history.
fn status_at(i: &Incident, at: Timestamp) -> Status {
    i.phases
        .iter()
        .rev()
        .find(|p| p.at <= at)
        .map(|p| p.status)
        .unwrap_or(i.status)
}

/// Unresolved stretches by severity, from the phase history.
fn spans(i: &Incident) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for p in &i.phases {
        if let Some(last) = out.last_mut()
            && last.until.is_none()
        {
            last.until = Some(p.at);
        }
        if p.status != Status::Resolved {
            out.push(Span {
                from: p.at,
                until: None,
                severity: p.severity,
            });
        }
    }
    out.retain(|s| s.until.is_none_or(|u| u > s.from));
    out
}

/// A component's status now, and which incidents set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentState {
    pub def: ComponentDef,
    pub position: usize,
    pub status: ComponentStatus,
    pub under_maintenance: bool,
    /// (incident, override) of the worst open incident on this component.
    pub worst: Option<(IncidentId, bool)>,
    pub updated_at: Timestamp,
}

impl ComponentState {
    /// Statuspage's component status string (`under_maintenance` included).
    pub fn status_str(&self) -> &'static str {
        if self.status == ComponentStatus::Operational && self.under_maintenance {
            "under_maintenance"
        } else {
            self.status.as_str()
        }
    }

    pub fn label(&self) -> &'static str {
        match self.status_str() {
            "under_maintenance" => "Under maintenance",
            "degraded_performance" => "Degraded performance",
            "partial_outage" => "Partial outage",
            "major_outage" => "Major outage",
            _ => "Operational",
        }
    }
}

/// One day of a component's availability bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day {
    /// Midnight UTC starting the day.
    pub start: Timestamp,
    pub worst: ComponentStatus,
    /// Minutes of major / partial outage / degraded performance.
    pub major_min: u32,
    pub partial_min: u32,
    pub degraded_min: u32,
}

/// Everything the renderers need, computed once per change.
pub struct PageModel<'a> {
    pub catalog: &'a Catalog,
    pub now: Timestamp,
    /// When the public view last changed.
    pub updated_at: Timestamp,
    pub components: Vec<ComponentState>,
    /// Open incidents, newest first.
    pub active: Vec<&'a PublicIncident>,
    /// Resolved incidents of the last 90 days, newest first.
    pub past: Vec<&'a PublicIncident>,
    /// Windows that are not cancelled, by start.
    pub maintenances: Vec<&'a Maintenance>,
    pub bars: Vec<Vec<Day>>,
}

impl<'a> PageModel<'a> {
    pub fn build(
        catalog: &'a Catalog,
        incidents: &'a BTreeMap<IncidentId, PublicIncident>,
        maintenances: &'a BTreeMap<crate::MaintenanceId, Maintenance>,
        now: Timestamp,
        started: Timestamp,
    ) -> PageModel<'a> {
        let horizon = Timestamp(now.0 - HISTORY_DAYS * DAY_MS);
        let public = incidents.values().filter(|i| i.is_public(catalog));
        let mut active: Vec<&PublicIncident> = public.clone().filter(|i| !i.is_resolved()).collect();
        active.sort_by_key(|i| std::cmp::Reverse(i.declared_at));
        let mut past: Vec<&PublicIncident> = public.filter(|i| i.resolved_at.is_some_and(|r| r >= horizon)).collect();
        past.sort_by_key(|i| std::cmp::Reverse(i.declared_at));
        let mut maint: Vec<&Maintenance> = maintenances
            .values()
            .filter(|m| m.cancelled_at.is_none())
            .filter(|m| m.ends_at >= horizon)
            .collect();
        maint.sort_by_key(|m| (m.starts_at, m.id));
        let in_maintenance = |c: &str| {
            maint
                .iter()
                .any(|m| m.status_at(now) == MaintenanceStatus::InProgress && m.services.iter().any(|s| s == c))
        };
        // The last time anything touching each component changed (one pass).
        let mut touched: BTreeMap<&str, Timestamp> = BTreeMap::new();
        let mut touch = |c: &'a str, t: Timestamp| {
            let e = touched.entry(c).or_insert(t);
            *e = (*e).max(t);
        };
        for i in incidents.values() {
            let t = i.resolved_at.unwrap_or(i.updated_at);
            for c in &i.components {
                touch(c, t);
            }
            for (c, _) in &i.overrides {
                touch(c, t);
            }
        }
        for m in &maint {
            for c in &m.services {
                touch(c, m.status_since(now));
            }
        }
        let components: Vec<ComponentState> = catalog
            .components
            .iter()
            .enumerate()
            .map(|(position, def)| {
                let mut st = ComponentState {
                    def: def.clone(),
                    position: position + 1,
                    status: ComponentStatus::Operational,
                    under_maintenance: in_maintenance(&def.id),
                    worst: None,
                    updated_at: touched.get(def.id.as_str()).copied().unwrap_or(started).max(started),
                };
                for i in &active {
                    if let Some(s) = i.component_status(&def.id)
                        && (st.worst.is_none() || s > st.status)
                    {
                        st.status = s;
                        st.worst = Some((i.id, i.overrides.iter().any(|(c, _)| *c == def.id)));
                    }
                }
                st
            })
            .collect();
        let bars = catalog
            .components
            .iter()
            .map(|c| availability(&c.id, incidents.values(), now))
            .collect();
        let updated_at = components
            .iter()
            .map(|c| c.updated_at)
            .chain(
                incidents
                    .values()
                    .filter(|i| i.is_public(catalog))
                    .map(|i| i.updated_at),
            )
            .chain(maint.iter().map(|m| m.status_since(now)))
            .max()
            .unwrap_or(started);
        active.truncate(SHOWN_MAX);
        past.truncate(SHOWN_MAX);
        PageModel {
            catalog,
            now,
            updated_at,
            components,
            active,
            past,
            maintenances: maint,
            bars,
        }
    }

    /// The worst component status (page indicator).
    pub fn worst(&self) -> ComponentStatus {
        self.components
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(ComponentStatus::Operational)
    }

    pub fn any_maintenance(&self) -> bool {
        self.components.iter().any(|c| c.under_maintenance)
    }

    /// Statuspage's `status.indicator` and `status.description`.
    pub fn indicator(&self) -> (&'static str, &'static str) {
        match self.worst() {
            ComponentStatus::MajorOutage => ("critical", "Major System Outage"),
            ComponentStatus::PartialOutage => ("major", "Partial System Outage"),
            ComponentStatus::DegradedPerformance => ("minor", "Minor Service Outage"),
            ComponentStatus::Operational if self.any_maintenance() => ("maintenance", "Service Under Maintenance"),
            ComponentStatus::Operational => ("none", "All Systems Operational"),
        }
    }
}

/// Midnight UTC of the day holding `t`.
pub fn day_start(t: Timestamp) -> Timestamp {
    Timestamp(t.0.div_euclid(DAY_MS) * DAY_MS)
}

/// 90 days of one component, oldest first, from its incidents' severity spans.
pub fn availability<'a>(
    component: &str,
    incidents: impl Iterator<Item = &'a PublicIncident>,
    now: Timestamp,
) -> Vec<Day> {
    let today = day_start(now);
    let first = Timestamp(today.0 - (HISTORY_DAYS - 1) * DAY_MS);
    let mut days: Vec<Day> = (0..HISTORY_DAYS)
        .map(|d| Day {
            start: Timestamp(first.0 + d * DAY_MS),
            worst: ComponentStatus::Operational,
            major_min: 0,
            partial_min: 0,
            degraded_min: 0,
        })
        .collect();
    for i in incidents {
        if !i.components.iter().any(|c| c == component) {
            continue;
        }
        for s in &i.spans {
            let status = ComponentStatus::from_severity(s.severity);
            if status == ComponentStatus::Operational {
                continue;
            }
            let from = s.from.max(first);
            let until = s.until.unwrap_or(now).min(now);
            let mut t = from;
            while t < until {
                let idx = ((day_start(t).0 - first.0) / DAY_MS) as usize;
                let end = Timestamp(day_start(t).0 + DAY_MS).min(until);
                if let Some(day) = days.get_mut(idx) {
                    let min = u32::try_from(end.since(t).as_secs().div_ceil(60)).unwrap_or(u32::MAX);
                    match status {
                        ComponentStatus::MajorOutage => day.major_min = day.major_min.saturating_add(min),
                        ComponentStatus::PartialOutage => day.partial_min = day.partial_min.saturating_add(min),
                        _ => day.degraded_min = day.degraded_min.saturating_add(min),
                    }
                    day.worst = day.worst.max(status);
                }
                t = end;
            }
        }
    }
    days
}

/// Statuspage's uptime figure: major outage counts fully, partial outage at
/// 30 %, degraded performance not at all; over the days shown (today so far).
pub fn uptime_percent(days: &[Day], now: Timestamp) -> f64 {
    let Some(first) = days.first() else {
        return 100.0;
    };
    let total_min = now.since(first.start).as_secs_f64() / 60.0;
    if total_min <= 0.0 {
        return 100.0;
    }
    let down: f64 = days
        .iter()
        .map(|d| f64::from(d.major_min) + 0.3 * f64::from(d.partial_min))
        .sum();
    (100.0 * (1.0 - down / total_min)).clamp(0.0, 100.0)
}

/// A duration as customers read it: `23 min`, `2 h 5 min`.
pub fn minutes_text(min: u32) -> String {
    incidentd_domain::time::human_duration(Duration::from_secs(u64::from(min) * 60))
}

/// The incidents the page may list (the newest `SHOWN_MAX` open and
/// resolved ones that are public, or not fully loaded yet: loading tells).
pub fn shown(incidents: &BTreeMap<IncidentId, PublicIncident>, catalog: &Catalog) -> Vec<IncidentId> {
    let candidates = incidents.values().filter(|i| !i.complete || i.is_public(catalog));
    let mut open: Vec<&PublicIncident> = candidates.clone().filter(|i| !i.is_resolved()).collect();
    let mut done: Vec<&PublicIncident> = candidates.filter(|i| i.is_resolved()).collect();
    open.sort_by_key(|i| std::cmp::Reverse(i.declared_at));
    done.sort_by_key(|i| std::cmp::Reverse(i.declared_at));
    open.iter()
        .take(SHOWN_MAX)
        .chain(done.iter().take(SHOWN_MAX))
        .map(|i| i.id)
        .collect()
}
