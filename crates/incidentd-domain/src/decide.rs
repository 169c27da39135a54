//! `decide`: validate a command against the current state and return the
//! events it causes. Pure: same (state, command, context) → same result.
//! Nothing here mutates; an error means nothing happened.

use crate::command::{Action, Command, Directory};
use crate::error::DomainError;
use crate::event::{Event, EventKind};
use crate::model::{EntryKind, Incident, Role, Severity, Status, UpdateFields, UpdateKind};
use crate::policy::Policy;
use crate::review::ReviewSections;
use crate::template;
use crate::time::Timestamp;

/// Documented limits (API.md "Limits").
pub mod limits {
    /// Incident titles, in characters.
    pub const TITLE_MAX_CHARS: usize = 200;
    /// SME tracks, in characters.
    pub const TRACK_MAX_CHARS: usize = 200;
    /// Ids of teams, people and services, in bytes.
    pub const ID_MAX_BYTES: usize = 64;
    /// Free text (summary, notes, reasons, update fields), in bytes.
    pub const TEXT_MAX_BYTES: usize = 64 * 1024;
    /// Services named by one incident.
    pub const SERVICES_MAX: usize = 32;
    /// Action items of one incident's review.
    pub const ACTION_ITEMS_MAX: usize = 200;
}

/// Everything `decide` needs besides state and command.
pub struct Ctx<'a> {
    pub now: Timestamp,
    pub policy: &'a Policy,
    pub directory: &'a dyn Directory,
}

pub fn decide(state: &Incident, cmd: &Command, ctx: &Ctx<'_>) -> Result<Vec<Event>, DomainError> {
    if let Some(by) = &cmd.by {
        check_person(ctx, "by", by)?;
    }
    // Alerts may open the incident, so they skip the declared check below.
    if let Action::Alert(intake) = &cmd.action {
        return crate::alert::decide(state, intake, ctx);
    }
    let event = |kind: EventKind| Event {
        at: ctx.now,
        by: cmd.by.clone(),
        kind,
    };

    if let Action::Declare { .. } = &cmd.action {
        if state.is_declared() {
            return Err(DomainError::precondition(
                None,
                format!("incident {} already exists", state.id),
            ));
        }
    } else if !state.is_declared() {
        return Err(DomainError::not_found("id", "no such incident"));
    }
    crate::access::check(&cmd.access, state, &cmd.action)?;

    match &cmd.action {
        Action::Declare {
            id,
            number,
            title,
            team,
            services,
            severity,
            summary,
            commander,
            drill,
        } => {
            let title = title.trim();
            if title.is_empty() {
                return Err(DomainError::invalid("title", "is required"));
            }
            check_chars("title", title, limits::TITLE_MAX_CHARS)?;
            check_text("summary", summary)?;
            if team.is_empty() {
                return Err(DomainError::invalid("team", "is required"));
            }
            check_id("team", team)?;
            if !ctx.directory.has_team(team) {
                return Err(DomainError::not_found("team", format!("unknown team {team:?}")));
            }
            if services.len() > limits::SERVICES_MAX {
                return Err(DomainError::invalid(
                    "services",
                    format!("at most {} services", limits::SERVICES_MAX),
                ));
            }
            let mut seen: Vec<&str> = Vec::with_capacity(services.len());
            for s in services {
                check_id("services", s)?;
                if !ctx.directory.has_service(s) {
                    return Err(DomainError::not_found("services", format!("unknown service {s:?}")));
                }
                if seen.contains(&s.as_str()) {
                    return Err(DomainError::invalid("services", format!("service {s:?} listed twice")));
                }
                seen.push(s);
            }
            if let Some(c) = commander {
                check_person(ctx, "commander", c)?;
            }
            let mut events = vec![event(EventKind::Declared {
                id: *id,
                number: *number,
                title: title.to_string(),
                team: team.clone(),
                services: services.clone(),
                summary: summary.clone(),
                severity: severity.unwrap_or(Severity::Sev1),
                severity_unclear: severity.is_none(),
                drill: *drill,
            })];
            if let Some(c) = commander {
                events.push(event(EventKind::RoleAssigned {
                    role: Role::Commander,
                    person: c.clone(),
                    track: None,
                }));
            }
            Ok(events)
        }
        Action::Acknowledge => {
            ensure_open(state)?;
            if state.acknowledged_at.is_some() {
                // Acknowledging twice is harmless: nothing changes.
                return Ok(vec![]);
            }
            Ok(vec![event(EventKind::Acknowledged)])
        }
        Action::SetSeverity { severity, reason } => {
            ensure_open(state)?;
            let reason = reason.trim();
            if reason.is_empty() {
                return Err(DomainError::invalid(
                    "reason",
                    "is required: every severity change is recorded with its reason",
                ));
            }
            check_text("reason", reason)?;
            if *severity == state.severity && state.severity_confirmed {
                return Ok(vec![]);
            }
            // Same severity while it was the unclear default: a person confirms it.
            Ok(vec![event(EventKind::SeverityChanged {
                from: state.severity,
                to: *severity,
                reason: reason.to_string(),
            })])
        }
        Action::AssignRole { role, person, track } => {
            ensure_open(state)?;
            check_person(ctx, "person", person)?;
            match role {
                Role::Commander | Role::CommsLead => {
                    if track.as_deref().is_some_and(|t| !t.trim().is_empty()) {
                        return Err(DomainError::invalid(
                            "track",
                            format!("only an SME has a track, not the {role}"),
                        ));
                    }
                    let current = if *role == Role::Commander {
                        &state.roster.commander
                    } else {
                        &state.roster.comms_lead
                    };
                    match current {
                        Some(p) if p == person => Ok(vec![]),
                        Some(p) => Ok(vec![event(EventKind::RoleHandedOver {
                            role: *role,
                            from: p.clone(),
                            to: person.clone(),
                        })]),
                        None => Ok(vec![event(EventKind::RoleAssigned {
                            role: *role,
                            person: person.clone(),
                            track: None,
                        })]),
                    }
                }
                Role::Sme => {
                    let track = track.as_deref().map(str::trim).unwrap_or("");
                    if track.is_empty() {
                        return Err(DomainError::precondition(
                            Some("track"),
                            "an SME needs a non-empty track (what to investigate)",
                        ));
                    }
                    check_chars("track", track, limits::TRACK_MAX_CHARS)?;
                    match state.roster.smes.iter().find(|s| &s.person == person) {
                        Some(s) if s.track == track => Ok(vec![]),
                        Some(s) => Ok(vec![event(EventKind::SmeTrackChanged {
                            person: person.clone(),
                            from: s.track.clone(),
                            to: track.to_string(),
                        })]),
                        None => Ok(vec![event(EventKind::RoleAssigned {
                            role: Role::Sme,
                            person: person.clone(),
                            track: Some(track.to_string()),
                        })]),
                    }
                }
            }
        }
        Action::UnassignRole { role, person } => {
            ensure_open(state)?;
            check_id("person", person)?;
            let holds = match role {
                Role::Commander => state.roster.commander.as_deref() == Some(person.as_str()),
                Role::CommsLead => state.roster.comms_lead.as_deref() == Some(person.as_str()),
                Role::Sme => state.roster.smes.iter().any(|s| &s.person == person),
            };
            if !holds {
                return Err(DomainError::precondition(
                    Some("person"),
                    format!("{person} is not the {role} of this incident"),
                ));
            }
            Ok(vec![event(EventKind::RoleUnassigned {
                role: *role,
                person: person.clone(),
            })])
        }
        Action::SetStatus { status, note } => {
            check_text("note", note)?;
            if *status == Status::Resolved {
                return resolve(state, note, &event);
            }
            if *status == state.status {
                return Ok(vec![]);
            }
            Ok(vec![event(EventKind::StatusChanged {
                from: state.status,
                to: *status,
                note: note.trim().to_string(),
            })])
        }
        Action::Resolve { note } => {
            check_text("note", note)?;
            resolve(state, note, &event)
        }
        Action::Tick => Ok(crate::timers::fire(state, ctx.policy, ctx.now)
            .into_iter()
            .map(|kind| Event {
                at: ctx.now,
                by: None,
                kind,
            })
            .collect()),
        Action::SetImpact {
            impact,
            customer_impact_percent,
            data_loss,
            regulatory,
        } => {
            ensure_open(state)?;
            if impact.is_none() && customer_impact_percent.is_none() && data_loss.is_none() && regulatory.is_none() {
                return Err(DomainError::invalid(
                    "impact",
                    "give at least one of impact, customer_impact_percent, data_loss, regulatory",
                ));
            }
            if let Some(i) = impact {
                check_text("impact", i)?;
            }
            if let Some(p) = customer_impact_percent
                && *p > 100
            {
                return Err(DomainError::invalid(
                    "customer_impact_percent",
                    format!("must be 0..=100, got {p}"),
                ));
            }
            // Only what changes is recorded.
            let impact = impact
                .as_ref()
                .map(|s| s.trim().to_string())
                .filter(|s| *s != state.impact);
            let pct = customer_impact_percent.filter(|p| Some(*p) != state.customer_impact_percent);
            let data_loss = data_loss.filter(|d| *d != state.data_loss);
            let regulatory = regulatory.filter(|r| *r != state.regulatory);
            if impact.is_none() && pct.is_none() && data_loss.is_none() && regulatory.is_none() {
                return Ok(vec![]);
            }
            Ok(vec![event(EventKind::ImpactChanged {
                impact,
                customer_impact_percent: pct,
                data_loss,
                regulatory,
            })])
        }
        Action::AddEntry { kind, text } => {
            if *kind == EntryKind::System {
                return Err(DomainError::invalid(
                    "kind",
                    "SYSTEM entries are written by incidentd itself",
                ));
            }
            let text = text.trim();
            if text.is_empty() {
                return Err(DomainError::invalid("text", "is required"));
            }
            check_text("text", text)?;
            Ok(vec![event(EventKind::EntryAdded {
                kind: *kind,
                text: text.to_string(),
            })])
        }
        Action::PostUpdate { kind, fields } => {
            ensure_open(state)?;
            let fields = normalise_fields(fields)?;
            match kind {
                UpdateKind::Internal if fields.current_theory.is_none() && fields.next_steps.is_none() => {
                    return Err(DomainError::invalid(
                        "current_theory",
                        "an internal update needs current_theory or next_steps",
                    ));
                }
                UpdateKind::Customer if fields.customer_symptom.is_none() => {
                    return Err(DomainError::invalid(
                        "customer_symptom",
                        "a customer update needs customer_symptom",
                    ));
                }
                UpdateKind::Executive if fields.business_impact.is_none() => {
                    return Err(DomainError::invalid(
                        "business_impact",
                        "an executive update needs business_impact",
                    ));
                }
                _ => {}
            }
            let cadence = ctx.policy.for_severity(state.severity).update_every;
            let next_in = fields
                .next_update_in_secs
                .map(std::time::Duration::from_secs)
                .or(cadence);
            let next_update_at = next_in.map(|d| ctx.now.plus(d));
            let rendered = template::render(*kind, state, &fields, ctx, next_update_at);
            let was_due_at = match kind {
                UpdateKind::Internal => ctx.policy.next_update_due(state),
                _ => None,
            };
            Ok(vec![event(EventKind::UpdatePosted {
                kind: *kind,
                fields,
                next_update_at,
                rendered,
                was_due_at,
            })])
        }
        Action::SetComponentStatus { service, status } => {
            ensure_open(state)?;
            if service.is_empty() {
                return Err(DomainError::invalid("service", "is required"));
            }
            check_id("service", service)?;
            if !ctx.directory.has_service(service) {
                return Err(DomainError::not_found(
                    "service",
                    format!("unknown service {service:?}"),
                ));
            }
            let current = state.component_overrides.iter().find(|o| &o.service == service);
            if current.is_some_and(|o| o.status == *status) {
                return Ok(vec![]);
            }
            Ok(vec![event(EventKind::ComponentStatusSet {
                service: service.clone(),
                status: *status,
            })])
        }
        Action::UpdateReview { sections } => {
            ensure_reviewable(state)?;
            let mut clean = ReviewSections::default();
            let slots = [
                ("what_happened", &sections.what_happened, &mut clean.what_happened),
                ("root_causes", &sections.root_causes, &mut clean.root_causes),
                (
                    "contributing_factors",
                    &sections.contributing_factors,
                    &mut clean.contributing_factors,
                ),
                ("went_well", &sections.went_well, &mut clean.went_well),
                ("to_improve", &sections.to_improve, &mut clean.to_improve),
            ];
            for (field, given, slot) in slots {
                if let Some(t) = given {
                    check_text(field, t)?;
                    *slot = Some(t.trim().to_string());
                }
            }
            if clean.is_empty() {
                return Err(DomainError::invalid(
                    "root_causes",
                    "give at least one section (what_happened, root_causes, contributing_factors, went_well, to_improve)",
                ));
            }
            Ok(vec![event(EventKind::ReviewUpdated { sections: clean })])
        }
        Action::AddActionItem {
            description,
            owner,
            due_at,
        } => {
            ensure_reviewable(state)?;
            let description = description.trim();
            if description.is_empty() {
                return Err(DomainError::invalid("description", "is required"));
            }
            check_text("description", description)?;
            if owner.is_empty() {
                return Err(DomainError::invalid("owner", "is required (a person of the org)"));
            }
            check_person(ctx, "owner", owner)?;
            if due_at.0 <= 0 {
                return Err(DomainError::invalid("due_at", "is required"));
            }
            if state.review.action_items.len() >= limits::ACTION_ITEMS_MAX {
                return Err(DomainError::precondition(
                    Some("description"),
                    format!("at most {} action items per incident", limits::ACTION_ITEMS_MAX),
                ));
            }
            Ok(vec![event(EventKind::ActionItemAdded {
                number: state.review.action_items.len() as u32 + 1,
                description: description.to_string(),
                owner: owner.clone(),
                due_at: *due_at,
            })])
        }
        Action::StartScript { scenario } => Ok(vec![event(start_script(state, scenario)?)]),
        Action::CompleteActionItem { number } => {
            let item = open_action_item(state, *number)?;
            Ok(vec![event(EventKind::ActionItemCompleted { number: item.number })])
        }
        Action::DropActionItem { number, reason } => {
            let reason = reason.trim();
            if reason.is_empty() {
                return Err(DomainError::invalid("reason", "is required: say why it is dropped"));
            }
            check_text("reason", reason)?;
            let item = open_action_item(state, *number)?;
            Ok(vec![event(EventKind::ActionItemDropped {
                number: item.number,
                reason: reason.to_string(),
            })])
        }
        // Handled before the declared check, above.
        Action::Alert(intake) => crate::alert::decide(state, intake, ctx),
    }
}

fn start_script(state: &Incident, scenario: &crate::drill::Scenario) -> Result<EventKind, DomainError> {
    if !state.drill {
        return Err(DomainError::precondition(
            Some("scenario"),
            "scenarios play only into drill incidents",
        ));
    }
    if state.drill_script.is_some() {
        return Err(DomainError::precondition(
            Some("scenario"),
            "this drill already has a scenario",
        ));
    }
    ensure_open(state)?;
    Ok(EventKind::DrillStarted {
        scenario: scenario.id.clone(),
        title: scenario.title.clone(),
        steps: scenario.steps.clone(),
    })
}

/// A review exists from resolution on.
fn ensure_reviewable(state: &Incident) -> Result<(), DomainError> {
    if !state.is_resolved() {
        return Err(DomainError::precondition(
            None,
            "the review opens when the incident is resolved",
        ));
    }
    Ok(())
}

fn open_action_item(state: &Incident, number: u32) -> Result<&crate::review::ActionItem, DomainError> {
    let item = state
        .review
        .action_items
        .iter()
        .find(|a| a.number == number)
        .ok_or_else(|| DomainError::not_found("action_item_id", format!("no action item {number} on this incident")))?;
    if !item.is_open() {
        return Err(DomainError::precondition(
            Some("action_item_id"),
            format!("action item {number} is already closed"),
        ));
    }
    Ok(item)
}

fn resolve(state: &Incident, note: &str, event: &dyn Fn(EventKind) -> Event) -> Result<Vec<Event>, DomainError> {
    if state.is_resolved() {
        let when = state.resolved_at.map(|t| format!(" at {t}")).unwrap_or_default();
        return Err(DomainError::precondition(
            Some("status"),
            format!("incident is already resolved{when}"),
        ));
    }
    Ok(vec![event(EventKind::StatusChanged {
        from: state.status,
        to: Status::Resolved,
        note: note.trim().to_string(),
    })])
}

fn ensure_open(state: &Incident) -> Result<(), DomainError> {
    if state.is_resolved() {
        return Err(DomainError::precondition(
            Some("status"),
            "incident is resolved; set its status back to investigating to reopen it first",
        ));
    }
    Ok(())
}

fn check_person(ctx: &Ctx<'_>, field: &'static str, id: &str) -> Result<(), DomainError> {
    if id.is_empty() {
        return Err(DomainError::invalid(field, "is required"));
    }
    check_id(field, id)?;
    if !ctx.directory.has_person(id) {
        return Err(DomainError::not_found(field, format!("unknown person {id:?}")));
    }
    Ok(())
}

fn check_id(field: &'static str, id: &str) -> Result<(), DomainError> {
    if id.len() > limits::ID_MAX_BYTES {
        return Err(DomainError::invalid(
            field,
            format!("ids are at most {} bytes", limits::ID_MAX_BYTES),
        ));
    }
    Ok(())
}

fn check_chars(field: &'static str, s: &str, max: usize) -> Result<(), DomainError> {
    if s.len() > max * 4 || s.chars().count() > max {
        return Err(DomainError::invalid(field, format!("at most {max} characters")));
    }
    Ok(())
}

fn check_text(field: &'static str, s: &str) -> Result<(), DomainError> {
    if s.len() > limits::TEXT_MAX_BYTES {
        return Err(DomainError::invalid(
            field,
            format!("at most {} bytes", limits::TEXT_MAX_BYTES),
        ));
    }
    Ok(())
}

/// Trims every field, turns blank into absent, and checks sizes.
fn normalise_fields(f: &UpdateFields) -> Result<UpdateFields, DomainError> {
    fn clean(field: &'static str, v: &Option<String>) -> Result<Option<String>, DomainError> {
        match v.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) => {
                check_text(field, s)?;
                Ok(Some(s.to_string()))
            }
        }
    }
    if let Some(secs) = f.next_update_in_secs
        && !(60..=7 * 24 * 3600).contains(&secs)
    {
        return Err(DomainError::invalid(
            "next_update_in",
            "must be between 1 minute and 7 days",
        ));
    }
    Ok(UpdateFields {
        status_text: clean("status_text", &f.status_text)?,
        impact: clean("impact", &f.impact)?,
        current_theory: clean("current_theory", &f.current_theory)?,
        next_steps: clean("next_steps", &f.next_steps)?,
        next_update_in_secs: f.next_update_in_secs,
        customer_symptom: clean("customer_symptom", &f.customer_symptom)?,
        business_impact: clean("business_impact", &f.business_impact)?,
        estimated_resolution: clean("estimated_resolution", &f.estimated_resolution)?,
    })
}
