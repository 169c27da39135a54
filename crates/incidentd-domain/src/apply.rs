//! `apply`: fold one event into the state. Total and deterministic: it never
//! fails and never reads anything but its arguments, so replaying the log
//! rebuilds exactly the live state. Every event also writes its timeline entry.

use crate::drill::DrillScript;
use crate::event::{Event, EventKind};
use crate::model::{
    ChecklistItem, ChecklistItemKind, ComponentOverride, EntryKind, Escalation, Incident, Recipients, Role, RoleHeld,
    Sme, Status, TimelineEntry, Update, UpdateKind,
};
use crate::review::{ActionItem, ActionItemState};
use crate::timers;

pub fn apply(state: &mut Incident, event: &Event) {
    state.version += 1;
    state.last_event_at = event.at;
    apply_kind(state, event, &event.kind);
    after_event(state, event);
}

/// Folds `kind` (the event's own, or the effect a drill step injects).
fn apply_kind(state: &mut Incident, event: &Event, kind: &EventKind) {
    let version = state.version;
    let by = event.by.clone();
    let system = |state: &mut Incident, text: String| push_entry(state, version, event, EntryKind::System, text);

    match kind {
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
            state.severity_confirmed = !*severity_unclear;
            state.checklist = ChecklistItemKind::ALL
                .iter()
                .map(|&item| ChecklistItem {
                    item,
                    done_at: None,
                    missed_at: None,
                })
                .collect();
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
            if to != from {
                // Clocks that run per severity restart; a confirmation changes nothing.
                state.severity_set_at = event.at;
            }
            state.severity = *to;
            state.severity_confirmed = true;
            let text = match to.cmp(from) {
                std::cmp::Ordering::Less => format!("Severity upgraded from {from} to {to}: {reason}"),
                std::cmp::Ordering::Greater => format!("Severity downgraded from {from} to {to}: {reason}"),
                std::cmp::Ordering::Equal => format!("Severity confirmed as {to}: {reason}"),
            };
            system(state, text);
        }
        EventKind::RoleAssigned { role, person, track } => {
            state.role_history.push(RoleHeld {
                role: *role,
                person: person.clone(),
                at: event.at,
            });
            match role {
                Role::Commander => state.roster.commander = Some(person.clone()),
                Role::CommsLead => state.roster.comms_lead = Some(person.clone()),
                Role::Sme => state.roster.smes.push(Sme {
                    person: person.clone(),
                    track: track.clone().unwrap_or_default(),
                    assigned_at: event.at,
                    last_report_at: None,
                    nudged_at: None,
                }),
            }
            let text = match track {
                Some(t) => format!("{person} assigned as {role} on track: {t}"),
                None => format!("{person} assigned as {role}"),
            };
            system(state, text);
        }
        EventKind::RoleHandedOver { role, from, to } => {
            state.role_history.push(RoleHeld {
                role: *role,
                person: to.clone(),
                at: event.at,
            });
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
                // A new track starts its own report-back clock.
                s.assigned_at = event.at;
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
                // Status page overrides end with the incident.
                state.component_overrides.clear();
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
            was_due_at,
        } => {
            if *kind == UpdateKind::Internal {
                state.last_internal_update_at = Some(event.at);
                state.promised_next_update_at = *next_update_at;
                state.internal_updates += 1;
                if was_due_at.is_none_or(|due| event.at <= due) {
                    state.internal_updates_on_time += 1;
                }
            }
            if matches!(kind, UpdateKind::Internal | UpdateKind::Executive) {
                state.stakeholders_notified_at.get_or_insert(event.at);
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
        EventKind::ChecklistMissed { item, due_at, notify } => {
            if let Some(c) = state.checklist.iter_mut().find(|c| c.item == *item) {
                c.missed_at = Some(event.at);
            }
            let text = format!(
                "Checklist item missed: {} (due {}); nudged {}",
                item.title(),
                due_at.hhmm_utc(),
                who(notify)
            );
            system(state, text);
        }
        EventKind::UpdateOverdue { due_at, notify } => {
            state.update_reminded_at = Some(event.at);
            let text = format!(
                "Internal update overdue (due {}); reminded {}",
                due_at.hhmm_utc(),
                who(notify)
            );
            system(state, text);
        }
        EventKind::StakeholderNoticeDue { due_at, notify } => {
            state.stakeholders_notified_at = Some(event.at);
            let text = format!(
                "Stakeholder notice due {} ({}) and no update posted: automatic notice sent; told {}",
                due_at.hhmm_utc(),
                state.severity,
                who(notify)
            );
            system(state, text);
        }
        EventKind::SmeReportOverdue {
            person,
            track,
            due_at,
            notify,
        } => {
            if let Some(s) = state.roster.smes.iter_mut().find(|s| &s.person == person) {
                s.nudged_at = Some(event.at);
            }
            let text = format!(
                "{person} has not reported back on track \"{track}\" (due {}); nudged {}",
                due_at.hhmm_utc(),
                who(notify)
            );
            system(state, text);
        }
        EventKind::Escalated {
            rule,
            target,
            message,
            due_at: _,
        } => {
            state.escalations.push(Escalation {
                rule: rule.clone(),
                target: target.clone(),
                fired_at: event.at,
                message: message.clone(),
            });
            let text = match message {
                Some(m) => format!("Escalated to {target} (rule {rule}): {m}"),
                None => format!("Escalated to {target} (rule {rule})"),
            };
            system(state, text);
        }
        EventKind::ReviewOverdue { due_at, notify } => {
            state.review_reminded_at = Some(event.at);
            let text = format!("Post-incident review overdue (due {due_at}); reminded {}", who(notify));
            system(state, text);
        }
        EventKind::ComponentStatusSet { service, status } => {
            let at = event.at;
            let entry = ComponentOverride {
                service: service.clone(),
                status: *status,
                at,
                by: by.clone(),
            };
            match state.component_overrides.iter_mut().find(|o| &o.service == service) {
                Some(o) => *o = entry,
                None => state.component_overrides.push(entry),
            }
            system(
                state,
                format!("Status page: {service} set to {status} (until the incident resolves)"),
            );
        }
        EventKind::ReviewUpdated { sections } => {
            state.review.sections.merge(sections);
            state.review.updated_at = Some(event.at);
            state.review.updated_by = by.clone();
            let names: Vec<&str> = sections
                .named()
                .iter()
                .filter(|(_, t)| t.is_some())
                .map(|(n, _)| *n)
                .collect();
            system(state, format!("Review updated: {}", names.join(", ").replace('_', " ")));
        }
        EventKind::ActionItemAdded {
            number,
            description,
            owner,
            due_at,
        } => {
            state.review.action_items.push(ActionItem {
                number: *number,
                description: description.clone(),
                owner: owner.clone(),
                due_at: *due_at,
                created_at: event.at,
                state: ActionItemState::Open,
                reminded_at: None,
            });
            system(
                state,
                format!("Action item #{number} for {owner}, due {due_at}: {description}"),
            );
        }
        EventKind::ActionItemCompleted { number } => {
            if let Some(a) = state.review.action_items.iter_mut().find(|a| a.number == *number) {
                a.state = ActionItemState::Done { at: event.at };
            }
            system(state, format!("Action item #{number} done"));
        }
        EventKind::ActionItemDropped { number, reason } => {
            if let Some(a) = state.review.action_items.iter_mut().find(|a| a.number == *number) {
                a.state = ActionItemState::Dropped {
                    at: event.at,
                    reason: reason.clone(),
                };
            }
            system(state, format!("Action item #{number} dropped: {reason}"));
        }
        EventKind::ActionItemOverdue { number, owner, due_at } => {
            if let Some(a) = state.review.action_items.iter_mut().find(|a| a.number == *number) {
                a.reminded_at = Some(event.at);
            }
            system(
                state,
                format!("Action item #{number} is overdue (due {due_at}); reminded {owner}"),
            );
        }
        EventKind::DrillStarted { scenario, title, steps } => {
            state.drill_script = Some(DrillScript {
                scenario: scenario.clone(),
                started_at: event.at,
                steps: steps.clone(),
                played: 0,
            });
            system(
                state,
                format!(
                    "[DRILL] Scenario \"{title}\" started: {} scripted injections",
                    steps.len()
                ),
            );
        }
        EventKind::DrillInjected { step, effect } => {
            if let Some(script) = &mut state.drill_script {
                script.played = script.played.max(step + 1);
            }
            apply_kind(state, event, effect);
        }
    }
}

/// What every event may change besides its own fields: the phase history
/// escalation rules read, and checklist items the event satisfied.
fn after_event(state: &mut Incident, event: &Event) {
    let phase = timers::current_phase(state, event.at);
    let changed = state.phases.last().is_none_or(|p| {
        (p.severity, p.status, p.data_loss, p.regulatory)
            != (phase.severity, phase.status, phase.data_loss, phase.regulatory)
    });
    if changed {
        state.phases.push(phase);
    }
    for i in 0..state.checklist.len() {
        let item = state.checklist[i].item;
        if state.checklist[i].done_at.is_none() && timers::satisfied(state, item) {
            state.checklist[i].done_at = Some(event.at);
        }
    }
}

fn who(r: &Recipients) -> String {
    match (&r.team, r.people.is_empty()) {
        (Some(team), true) => format!("team {team}"),
        (Some(team), false) => format!("{} and team {team}", r.people.join(", ")),
        (None, _) => r.people.join(", "),
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
