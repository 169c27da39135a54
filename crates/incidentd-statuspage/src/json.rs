//! Statuspage-shaped JSON (Atlassian Statuspage public API v2): the field
//! names and enum values existing widgets and monitors read. Built from the
//! [`PageModel`] only, so it holds public data only.

use crate::maintenance::{Maintenance, MaintenanceStatus};
use crate::view::{ComponentState, PageModel, PublicIncident};
use incidentd_domain::{ComponentStatus, Timestamp};
use serde_json::{Value, json};

/// Incidents in `incidents.json` and scheduled maintenances in `scheduled-maintenances.json`.
const LIST_MAX: usize = 50;

/// ISO 8601 with milliseconds, UTC: `2026-11-27T04:26:01.123Z`.
pub fn iso(t: Timestamp) -> String {
    let s = t.to_string();
    let base = s.strip_suffix('Z').unwrap_or(&s);
    format!("{base}.{:03}Z", t.0.rem_euclid(1000))
}

fn opt(t: Option<Timestamp>) -> Value {
    t.map(|t| Value::String(iso(t))).unwrap_or(Value::Null)
}

pub struct Json<'a> {
    m: &'a PageModel<'a>,
    page_id: String,
    started: Timestamp,
}

impl<'a> Json<'a> {
    pub fn new(m: &'a PageModel<'a>, started: Timestamp) -> Json<'a> {
        Json {
            m,
            page_id: m.catalog.page_id(),
            started,
        }
    }

    fn page(&self) -> Value {
        json!({
            "id": self.page_id,
            "name": self.m.catalog.title,
            "url": "/status",
            "time_zone": "Etc/UTC",
            "updated_at": iso(self.m.updated_at),
        })
    }

    fn status(&self) -> Value {
        let (indicator, description) = self.m.indicator();
        json!({ "indicator": indicator, "description": description })
    }

    fn component(&self, c: &ComponentState, group_id: Option<&str>) -> Value {
        json!({
            "id": c.def.id,
            "name": c.def.name,
            "status": c.status_str(),
            "created_at": iso(self.started),
            "updated_at": iso(c.updated_at),
            "position": c.position,
            "description": c.def.description,
            "showcase": true,
            "start_date": Value::Null,
            "group_id": group_id,
            "page_id": self.page_id,
            "group": false,
            "only_show_if_degraded": false,
        })
    }

    /// Components, each group as a component with `group: true` and its
    /// members' ids, before its members (Statuspage's layout).
    pub fn components(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut groups_done: Vec<&str> = Vec::new();
        for c in &self.m.components {
            match c.def.group.as_deref() {
                None => out.push(self.component(c, None)),
                Some(g) if groups_done.contains(&g) => {}
                Some(g) => {
                    groups_done.push(g);
                    let members: Vec<&ComponentState> = self
                        .m
                        .components
                        .iter()
                        .filter(|m| m.def.group.as_deref() == Some(g))
                        .collect();
                    let gid = group_id(g);
                    let worst = members
                        .iter()
                        .max_by_key(|m| (m.status, m.under_maintenance))
                        .map(|m| m.status_str())
                        .unwrap_or(ComponentStatus::Operational.as_str());
                    let updated = members.iter().map(|m| m.updated_at).max().unwrap_or(self.started);
                    out.push(json!({
                        "id": gid,
                        "name": g,
                        "status": worst,
                        "created_at": iso(self.started),
                        "updated_at": iso(updated),
                        "position": c.position,
                        "description": Value::Null,
                        "showcase": false,
                        "start_date": Value::Null,
                        "group_id": Value::Null,
                        "page_id": self.page_id,
                        "group": true,
                        "only_show_if_degraded": false,
                        "components": members.iter().map(|m| m.def.id.clone()).collect::<Vec<_>>(),
                    }));
                    for m in members {
                        out.push(self.component(m, Some(&gid)));
                    }
                }
            }
        }
        out
    }

    fn affected_components(&self, ids: &[&str]) -> Vec<Value> {
        self.m
            .components
            .iter()
            .filter(|c| ids.contains(&c.def.id.as_str()))
            .map(|c| self.component(c, c.def.group.as_deref().map(group_id).as_deref()))
            .collect()
    }

    pub fn incident(&self, i: &PublicIncident) -> Value {
        let id = i.id.to_string();
        let affected = i.affected();
        let comp_now: Vec<Value> = affected
            .iter()
            .filter_map(|c| self.m.catalog.component(c))
            .map(|c| {
                let new = i
                    .component_status(&c.id)
                    .unwrap_or(ComponentStatus::Operational)
                    .as_str();
                json!({ "code": c.id, "name": c.name, "old_status": "operational", "new_status": new })
            })
            .collect();
        let updates: Vec<Value> = i
            .updates
            .iter()
            .rev()
            .map(|u| {
                json!({
                    "id": format!("{id}-{}", u.seq),
                    "status": u.status.as_str(),
                    "body": u.body,
                    "incident_id": id,
                    "created_at": iso(u.at),
                    "updated_at": iso(u.at),
                    "display_at": iso(u.at),
                    "affected_components": comp_now,
                    "deliver_notifications": true,
                    "custom_tweet": Value::Null,
                    "tweet_id": Value::Null,
                })
            })
            .collect();
        json!({
            "id": id,
            "name": i.name(self.m.catalog),
            "status": i.status.as_str(),
            "created_at": iso(i.declared_at),
            "updated_at": iso(i.updated_at),
            "monitoring_at": opt(i.monitoring_at),
            "resolved_at": opt(i.resolved_at),
            "impact": i.impact().as_str(),
            "shortlink": format!("/status#incident-{id}"),
            "started_at": iso(i.declared_at),
            "page_id": self.page_id,
            "incident_updates": updates,
            "components": self.affected_components(&affected),
        })
    }

    pub fn maintenance(&self, m: &Maintenance) -> Value {
        let id = m.id.map(|i| i.to_string()).unwrap_or_default();
        let now = self.m.now;
        let status = m.status_at(now);
        let services: Vec<&str> = m.services.iter().map(String::as_str).collect();
        let updates: Vec<Value> = m
            .notes
            .iter()
            .rev()
            .map(|n| {
                json!({
                    "id": format!("{id}-{}", n.seq),
                    "status": m.status_at(n.at).as_str(),
                    "body": n.body,
                    "incident_id": id,
                    "created_at": iso(n.at),
                    "updated_at": iso(n.at),
                    "display_at": iso(n.at),
                    "affected_components": Value::Array(Vec::new()),
                    "deliver_notifications": true,
                    "custom_tweet": Value::Null,
                    "tweet_id": Value::Null,
                })
            })
            .collect();
        let since = |s: MaintenanceStatus, t: Timestamp| if status >= s { opt(Some(t)) } else { Value::Null };
        json!({
            "id": id,
            "name": m.title,
            "status": status.as_str(),
            "created_at": iso(m.created_at),
            "updated_at": iso(m.status_since(now)),
            "monitoring_at": since(MaintenanceStatus::Verifying, m.ends_at),
            "resolved_at": since(MaintenanceStatus::Completed, m.ends_at.plus(crate::maintenance::VERIFY_FOR)),
            "impact": "maintenance",
            "shortlink": format!("/status#maintenance-{id}"),
            "started_at": iso(m.starts_at),
            "page_id": self.page_id,
            "incident_updates": updates,
            "components": self.affected_components(&services),
            "scheduled_for": iso(m.starts_at),
            "scheduled_until": iso(m.ends_at),
        })
    }

    fn incidents_of<'b>(&self, list: impl Iterator<Item = &'b PublicIncident>) -> Vec<Value> {
        list.take(LIST_MAX).map(|i| self.incident(i)).collect()
    }

    fn open_maintenances(&self) -> Vec<Value> {
        self.m
            .maintenances
            .iter()
            .filter(|m| m.status_at(self.m.now) != MaintenanceStatus::Completed)
            .map(|m| self.maintenance(m))
            .collect()
    }

    pub fn summary(&self) -> Value {
        json!({
            "page": self.page(),
            "components": self.components(),
            "incidents": self.incidents_of(self.m.active.iter().copied()),
            "scheduled_maintenances": self.open_maintenances(),
            "status": self.status(),
        })
    }

    pub fn status_doc(&self) -> Value {
        json!({ "page": self.page(), "status": self.status() })
    }

    pub fn components_doc(&self) -> Value {
        json!({ "page": self.page(), "components": self.components() })
    }

    /// Unresolved and recent incidents, newest first.
    pub fn incidents_doc(&self) -> Value {
        let mut all: Vec<&PublicIncident> = self.m.active.iter().chain(self.m.past.iter()).copied().collect();
        all.sort_by_key(|i| std::cmp::Reverse(i.declared_at));
        json!({ "page": self.page(), "incidents": self.incidents_of(all.into_iter()) })
    }

    pub fn unresolved_doc(&self) -> Value {
        json!({ "page": self.page(), "incidents": self.incidents_of(self.m.active.iter().copied()) })
    }

    /// Every window that is not cancelled (the latest 50), newest start first.
    pub fn maintenances_doc(&self) -> Value {
        let list: Vec<Value> = self
            .m
            .maintenances
            .iter()
            .rev()
            .take(LIST_MAX)
            .map(|m| self.maintenance(m))
            .collect();
        json!({ "page": self.page(), "scheduled_maintenances": list })
    }
}

/// Id of a component group: `group-` and the name's slug.
pub fn group_id(name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("group-{slug}")
}
