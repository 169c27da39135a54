//! Deadlines: a pure function of (incident state, policy). The incident's
//! actor arms one timer for [`next_deadline`] and, when it passes, asks
//! `decide` for a [`crate::Action::Tick`], which calls [`fire`]: every
//! deadline at or before `now` becomes an event. Firing is recorded in the
//! state by `apply` (a miss, a reminder time, an escalation), so the same
//! deadline never fires twice, and one that passed while the process was
//! down fires once, at once, when the actor comes back.
//!
//! Repeating reminders (update cadence, SME report-backs) fall on a fixed
//! grid: the first deadline plus whole periods, the first slot after the
//! last reminder. Lateness never accumulates, and after a long outage one
//! reminder fires and the next keeps the grid.

use crate::event::EventKind;
use crate::model::{ChecklistItemKind, Incident, Phase, Recipients, Severity};
use crate::policy::{EscalationRule, Policy};
use crate::time::Timestamp;

/// What falls due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadlineKind {
    Checklist(ChecklistItemKind),
    StakeholderNotice,
    UpdateOverdue,
    /// Index into the roster's SMEs.
    SmeReport(usize),
    /// Index into the policy's escalation rules.
    Escalation(usize),
    Review,
    /// Index into the review's action items.
    ActionItem(usize),
    /// The drill script's next injection.
    DrillStep(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    pub kind: DeadlineKind,
    pub due_at: Timestamp,
}

/// When a checklist item is due (from declaration).
pub fn checklist_due(state: &Incident, policy: &Policy, item: ChecklistItemKind) -> Timestamp {
    let c = &policy.checklist;
    let after = match item {
        ChecklistItemKind::Acknowledge => c.acknowledge,
        ChecklistItemKind::SeverityAndCommander => c.severity_and_commander,
        ChecklistItemKind::TeamAssembled => c.team_assembled,
        ChecklistItemKind::InvestigationPlan => c.investigation_plan,
    };
    state.declared_at.plus(after)
}

/// When stakeholders must have heard of the incident, while nobody told
/// them yet: the current severity's notice period from when it was set.
pub fn stakeholder_notice_due(state: &Incident, policy: &Policy) -> Option<Timestamp> {
    if state.is_resolved() || state.stakeholders_notified_at.is_some() {
        return None;
    }
    let notice = policy.for_severity(state.severity).stakeholder_notice?;
    Some(state.severity_set_at.plus(notice))
}

/// When the post-incident review is due (resolved incidents only).
pub fn review_due(state: &Incident, policy: &Policy) -> Option<Timestamp> {
    let resolved = state.resolved_at.filter(|_| state.is_resolved())?;
    Some(resolved.plus(policy.review_due))
}

/// The first slot `first + k * every` (k ≥ 0) after the last reminder.
fn next_slot(first: Timestamp, reminded: Option<Timestamp>, every: std::time::Duration) -> Timestamp {
    let Some(last) = reminded.filter(|r| *r >= first) else {
        return first;
    };
    let every_ms = i64::try_from(every.as_millis()).unwrap_or(i64::MAX).max(1);
    let k = (last.0 - first.0) / every_ms + 1;
    Timestamp(first.0.saturating_add(k.saturating_mul(every_ms)))
}

/// When the next "internal update overdue" reminder is due.
fn update_reminder_due(state: &Incident, policy: &Policy) -> Option<Timestamp> {
    let due = policy.next_update_due(state)?;
    let every = policy.for_severity(state.severity).update_every?;
    Some(next_slot(due, state.update_reminded_at, every))
}

/// When the SME at `i` of the roster owes a report-back (or the next nudge).
pub fn sme_report_due(state: &Incident, policy: &Policy, i: usize) -> Option<Timestamp> {
    if state.is_resolved() {
        return None;
    }
    let every = policy.for_severity(state.severity).sme_report_every?;
    let sme = state.roster.smes.get(i)?;
    let anchor = [sme.last_report_at, Some(state.severity_set_at)]
        .into_iter()
        .flatten()
        .fold(sme.assigned_at, Timestamp::max);
    Some(next_slot(anchor.plus(every), sme.nudged_at, every))
}

fn holds(rule: &EscalationRule, p: &Phase) -> bool {
    (rule.severity.is_empty() || rule.severity.contains(&p.severity))
        && !rule.unless_status.contains(&p.status)
        && rule.data_loss.is_none_or(|d| d == p.data_loss)
        && rule.regulatory.is_none_or(|r| r == p.regulatory)
}

/// Since when `rule`'s condition has held without interruption (`None` if
/// it does not hold now).
pub fn holding_since(state: &Incident, rule: &EscalationRule) -> Option<Timestamp> {
    let mut since = None;
    for p in state.phases.iter().rev() {
        if !holds(rule, p) {
            break;
        }
        since = Some(p.at);
    }
    since
}

/// When an escalation rule fires, unless it already did.
pub fn escalation_due(state: &Incident, rule: &EscalationRule) -> Option<Timestamp> {
    if state.is_resolved() || state.escalations.iter().any(|e| e.rule == rule.id) {
        return None;
    }
    Some(holding_since(state, rule)?.plus(rule.after))
}

/// Every pending deadline, in a fixed order (playbook order within a kind).
pub fn deadlines(state: &Incident, policy: &Policy) -> Vec<Deadline> {
    let mut out = Vec::new();
    if !state.is_declared() {
        return out;
    }
    let mut push = |kind, due: Option<Timestamp>| {
        if let Some(due_at) = due {
            out.push(Deadline { kind, due_at });
        }
    };
    if !state.is_resolved() {
        for item in &state.checklist {
            if item.done_at.is_none() && item.missed_at.is_none() {
                push(
                    DeadlineKind::Checklist(item.item),
                    Some(checklist_due(state, policy, item.item)),
                );
            }
        }
    }
    push(DeadlineKind::StakeholderNotice, stakeholder_notice_due(state, policy));
    push(DeadlineKind::UpdateOverdue, update_reminder_due(state, policy));
    for i in 0..state.roster.smes.len() {
        push(DeadlineKind::SmeReport(i), sme_report_due(state, policy, i));
    }
    for (i, rule) in policy.escalations.iter().enumerate() {
        push(DeadlineKind::Escalation(i), escalation_due(state, rule));
    }
    let review = review_due(state, policy)
        .filter(|due| state.review_reminded_at.is_none_or(|r| r < *due) && !state.review.is_written());
    push(DeadlineKind::Review, review);
    if !state.is_resolved()
        && let Some((i, due)) = state.drill_script.as_ref().and_then(|s| s.next())
    {
        push(DeadlineKind::DrillStep(i), Some(due));
    }
    for (i, a) in state.review.action_items.iter().enumerate() {
        if a.is_open() && a.reminded_at.is_none() {
            push(DeadlineKind::ActionItem(i), Some(a.due_at));
        }
    }
    out
}

/// The nearest pending deadline: the one timer an incident's actor arms.
pub fn next_deadline(state: &Incident, policy: &Policy) -> Option<Timestamp> {
    deadlines(state, policy).into_iter().map(|d| d.due_at).min()
}

/// The events for every deadline at or before `now`, oldest first.
pub fn fire(state: &Incident, policy: &Policy, now: Timestamp) -> Vec<EventKind> {
    let mut due: Vec<Deadline> = deadlines(state, policy)
        .into_iter()
        .filter(|d| d.due_at <= now)
        .collect();
    due.sort_by_key(|d| d.due_at); // stable: the fixed order breaks ties
    due.into_iter().filter_map(|d| event_for(state, policy, d)).collect()
}

fn event_for(state: &Incident, policy: &Policy, d: Deadline) -> Option<EventKind> {
    let due_at = d.due_at;
    let roster = &state.roster;
    Some(match d.kind {
        DeadlineKind::Checklist(item) => EventKind::ChecklistMissed {
            item,
            due_at,
            notify: recipients(state, [roster.commander.as_deref()]),
        },
        DeadlineKind::StakeholderNotice => EventKind::StakeholderNoticeDue {
            due_at,
            notify: recipients(state, [roster.comms_lead.as_deref(), roster.commander.as_deref()]),
        },
        DeadlineKind::UpdateOverdue => EventKind::UpdateOverdue {
            due_at,
            notify: recipients(state, [roster.commander.as_deref(), roster.comms_lead.as_deref()]),
        },
        DeadlineKind::SmeReport(i) => {
            let sme = roster.smes.get(i)?;
            EventKind::SmeReportOverdue {
                person: sme.person.clone(),
                track: sme.track.clone(),
                due_at,
                notify: recipients(state, [Some(sme.person.as_str()), roster.commander.as_deref()]),
            }
        }
        DeadlineKind::Escalation(i) => {
            let rule = policy.escalations.get(i)?;
            EventKind::Escalated {
                rule: rule.id.clone(),
                target: rule.notify.clone(),
                message: rule.message.clone(),
                due_at,
            }
        }
        DeadlineKind::Review => EventKind::ReviewOverdue {
            due_at,
            notify: recipients(state, [roster.commander.as_deref()]),
        },
        DeadlineKind::DrillStep(i) => {
            let step = state.drill_script.as_ref()?.steps.get(i)?;
            EventKind::DrillInjected {
                step: i,
                effect: Box::new(crate::drill::effect(state, step)),
            }
        }
        DeadlineKind::ActionItem(i) => {
            let a = state.review.action_items.get(i)?;
            EventKind::ActionItemOverdue {
                number: a.number,
                owner: a.owner.clone(),
                due_at,
            }
        }
    })
}

/// The named people (without repeats), or the team when nobody holds the roles.
fn recipients<'a>(state: &Incident, people: impl IntoIterator<Item = Option<&'a str>>) -> Recipients {
    let mut out: Vec<String> = Vec::new();
    for p in people.into_iter().flatten() {
        if !out.iter().any(|o| o == p) {
            out.push(p.to_string());
        }
    }
    if out.is_empty() {
        Recipients {
            people: out,
            team: Some(state.team.clone()),
        }
    } else {
        Recipients {
            people: out,
            team: None,
        }
    }
}

/// Whether a checklist item's condition holds in `state`.
pub fn satisfied(state: &Incident, item: ChecklistItemKind) -> bool {
    let r = &state.roster;
    match item {
        ChecklistItemKind::Acknowledge => state.acknowledged_at.is_some(),
        ChecklistItemKind::SeverityAndCommander => state.severity_confirmed && r.commander.is_some(),
        ChecklistItemKind::TeamAssembled => {
            r.comms_lead.is_some() && (state.severity > Severity::Sev2 || !r.smes.is_empty())
        }
        ChecklistItemKind::InvestigationPlan => r.smes.iter().any(|s| !s.track.is_empty()),
    }
}

/// The phase the state is in now (what escalation rules test).
pub fn current_phase(state: &Incident, at: Timestamp) -> Phase {
    Phase {
        at,
        severity: state.severity,
        status: state.status,
        data_loss: state.data_loss,
        regulatory: state.regulatory,
    }
}
