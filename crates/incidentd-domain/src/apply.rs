//! `apply`: fold one event into the state. Total and deterministic: it never
//! fails and never reads anything but its arguments, so replaying the log
//! rebuilds exactly the live state. Every event also writes its timeline entry.

use crate::event::{Event, EventKind};
use crate::model::{EntryKind, Incident, Role, Sme, Status, TimelineEntry, Update, UpdateKind};

pub fn apply(state: &mut Incident, event: &Event) {
    state.version += 1;
    state.last_event_at = event.at;
    let version = state.version;
    let by = event.by.clone();
    let system = |state: &mut Incident, text: String| push_entry(state, version, event, EntryKind::System, text);

    match &event.kind {
        EventKind::Declared {
            id,
            number,
            title,
            team,
            services,
            summary,
            severity,
            severity_unclear,
            drill,
        } => {
            state.id = *id;
            state.number = *number;
            state.title = title.clone();
            state.team = team.clone();
            state.services = services.clone();
            state.summary = summary.clone();
            state.severity = *severity;
            state.status = Status::Investigating;
            state.drill = *drill;
            state.declared_at = event.at;
            state.severity_set_at = event.at;
            let drill = if *drill { " [DRILL]" } else { "" };
            let text = format!("INC-{number} declared{drill}: {title} ({severity}, team {team})");
            system(state, text);
            if *severity_unclear {
                system(
                    state,
                    format!(
                        "Severity was unclear at declaration: treated as {severity} until someone sets it (the playbook defaults up)"
                    ),
                );
            }
        }
        EventKind::Acknowledged => {
            state.acknowledged_at = Some(event.at);
            state.acknowledged_by = by.clone();
            let who = by.as_deref().unwrap_or("someone");
            system(state, format!("Acknowledged by {who}"));
        }
        EventKind::SeverityChanged { from, to, reason } => {
            state.severity = *to;
            state.severity_set_at = event.at;
            let direction = if to < from { "upgraded" } else { "downgraded" };
            system(state, format!("Severity {direction} from {from} to {to}: {reason}"));
        }
        EventKind::RoleAssigned { role, person, track } => {
            match role {
                Role::Commander => state.roster.commander = Some(person.clone()),
                Role::CommsLead => state.roster.comms_lead = Some(person.clone()),
                Role::Sme => state.roster.smes.push(Sme {
                    person: person.clone(),
                    track: track.clone().unwrap_or_default(),
                    assigned_at: event.at,
                    last_report_at: None,
                }),
            }
            let text = match track {
                Some(t) => format!("{person} assigned as {role} on track: {t}"),
                None => format!("{person} assigned as {role}"),
            };
            system(state, text);
        }
        EventKind::RoleHandedOver { role, from, to } => {
            match role {
                Role::Commander => state.roster.commander = Some(to.clone()),
                Role::CommsLead => state.roster.comms_lead = Some(to.clone()),
                Role::Sme => {}
            }
            system(state, format!("{role} handed over from {from} to {to}"));
        }
        EventKind::SmeTrackChanged { person, from, to } => {
            if let Some(s) = state.roster.smes.iter_mut().find(|s| &s.person == person) {
                s.track = to.clone();
            }
            system(state, format!("{person} moved from track \"{from}\" to \"{to}\""));
        }
        EventKind::RoleUnassigned { role, person } => {
            match role {
                Role::Commander => state.roster.commander = None,
                Role::CommsLead => state.roster.comms_lead = None,
                Role::Sme => state.roster.smes.retain(|s| &s.person != person),
            }
            system(state, format!("{person} is no longer {role}"));
        }
        EventKind::StatusChanged { from, to, note } => {
            state.status = *to;
            if *to >= Status::Mitigating && state.mitigated_at.is_none() {
                state.mitigated_at = Some(event.at);
            }
            if *to == Status::Resolved {
                state.resolved_at = Some(event.at);
            } else if *from == Status::Resolved {
                state.resolved_at = None;
            }
            let verb = match (from, to) {
                (Status::Resolved, _) => format!("Reopened: status back from {from} to {to}"),
                (_, Status::Resolved) => "Resolved".to_string(),
                _ if to < from => format!("Status moved back from {from} to {to}"),
                _ => format!("Status changed from {from} to {to}"),
            };
            let text = if note.is_empty() {
                verb
            } else {
                format!("{verb}: {note}")
            };
            system(state, text);
        }
        EventKind::ImpactChanged {
            impact,
            customer_impact_percent,
            data_loss,
            regulatory,
        } => {
            let mut parts = Vec::new();
            if let Some(i) = impact {
                state.impact = i.clone();
                parts.push(format!("impact: {i}"));
            }
            if let Some(p) = customer_impact_percent {
                state.customer_impact_percent = Some(*p);
                parts.push(format!("{p}% of customers affected"));
            }
            if let Some(d) = data_loss {
                state.data_loss = *d;
                parts.push(format!("data loss: {d}"));
            }
            if let Some(r) = regulatory {
                state.regulatory = *r;
                parts.push(if *r {
                    "regulatory implications flagged".into()
                } else {
                    "regulatory flag cleared".into()
                });
            }
            system(state, format!("Impact updated: {}", parts.join("; ")));
        }
        EventKind::EntryAdded { kind, text } => {
            if *kind == EntryKind::Finding
                && let Some(by) = &by
                && let Some(s) = state.roster.smes.iter_mut().find(|s| &s.person == by)
            {
                s.last_report_at = Some(event.at);
            }
            push_entry(state, version, event, *kind, text.clone());
        }
        EventKind::UpdatePosted {
            kind,
            fields,
            next_update_at,
            rendered,
        } => {
            if *kind == UpdateKind::Internal {
                state.last_internal_update_at = Some(event.at);
                state.promised_next_update_at = *next_update_at;
            }
            let seq = state.updates.len() as u64 + 1;
            state.updates.push(Update {
                seq,
                version,
                kind: *kind,
                at: event.at,
                author: by.clone(),
                fields: fields.clone(),
                next_update_at: *next_update_at,
                rendered: rendered.clone(),
            });
            system(state, format!("{} update #{seq} posted", capitalise(&kind.to_string())));
        }
        EventKind::AlertAttached { .. }
        | EventKind::AlertAcknowledged { .. }
        | EventKind::AlertResolved { .. }
        | EventKind::AlertsAllResolved { .. } => {
            let text = crate::alert::apply(state, &event.kind)
                .unwrap_or_else(|| format!("Alert event: {}", event.kind.name()));
            system(state, text);
        }
    }
}

/// Rebuilds an incident from its events (the replay half of the invariant "replay == live").
pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Incident {
    let mut state = Incident::default();
    for e in events {
        apply(&mut state, e);
    }
    state
}

fn push_entry(state: &mut Incident, version: u64, event: &Event, kind: EntryKind, text: String) {
    let seq = state.timeline.len() as u64 + 1;
    state.timeline.push(TimelineEntry {
        seq,
        version,
        at: event.at,
        kind,
        author: event.by.clone(),
        text,
    });
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
