//! The playbook's three communication templates, rendered from incident
//! state plus the fields the comms lead typed. What the comms lead did not
//! type is filled from state (status, impact, affected services), so an
//! update is always complete. The rendered text is stored in the event.

use crate::decide::Ctx;
use crate::model::{Incident, UpdateFields, UpdateKind};
use crate::time::{Timestamp, human_duration};
use std::fmt::Write;

pub fn render(kind: UpdateKind, s: &Incident, f: &UpdateFields, ctx: &Ctx<'_>, next_at: Option<Timestamp>) -> String {
    match kind {
        UpdateKind::Internal => internal(s, f, ctx.now, next_at),
        UpdateKind::Customer => customer(s, f, ctx, next_at),
        UpdateKind::Executive => executive(s, f),
    }
}

fn drill_prefix(s: &Incident) -> &'static str {
    if s.drill { "[DRILL] " } else { "" }
}

fn impact_line(s: &Incident, f: &UpdateFields) -> String {
    let text = f.impact.clone().unwrap_or_else(|| {
        if s.impact.is_empty() {
            "being assessed".to_string()
        } else {
            s.impact.clone()
        }
    });
    match s.customer_impact_percent {
        Some(p) => format!("{text} (~{p}% of customers)"),
        None => text,
    }
}

fn next_update_line(now: Timestamp, next_at: Option<Timestamp>) -> String {
    match next_at {
        Some(t) => format!("{} (in {})", t.hhmm_utc(), human_duration(t.since(now))),
        None => "when there is news".to_string(),
    }
}

fn internal(s: &Incident, f: &UpdateFields, now: Timestamp, next_at: Option<Timestamp>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}[{}] {} — internal status update",
        drill_prefix(s),
        s.reference(),
        s.title
    );
    let _ = writeln!(out, "Severity: {}", s.severity);
    let status = f.status_text.clone().unwrap_or_else(|| s.status.to_string());
    let _ = writeln!(out, "Status: {status}");
    let ic = s.roster.commander.as_deref().unwrap_or("unassigned");
    let cl = s.roster.comms_lead.as_deref().unwrap_or("unassigned");
    let _ = writeln!(out, "Commander: {ic} | Comms lead: {cl}");
    let _ = writeln!(out, "Impact: {}", impact_line(s, f));
    let _ = writeln!(
        out,
        "Current theory: {}",
        f.current_theory.as_deref().unwrap_or("none yet")
    );
    let _ = writeln!(
        out,
        "Next steps: {}",
        f.next_steps.as_deref().unwrap_or("to be decided")
    );
    let _ = write!(out, "Next update: {}", next_update_line(now, next_at));
    out
}

fn customer(s: &Incident, f: &UpdateFields, ctx: &Ctx<'_>, next_at: Option<Timestamp>) -> String {
    let names: Vec<String> = s
        .services
        .iter()
        .map(|id| ctx.directory.service_name(id).unwrap_or_else(|| id.clone()))
        .collect();
    let affected = if names.is_empty() {
        "some of our services".to_string()
    } else {
        names.join(", ")
    };
    let who = match s.customer_impact_percent {
        Some(p) => format!("About {p}% of customers"),
        None => "Some customers".to_string(),
    };
    let symptom = f.customer_symptom.as_deref().unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}We are experiencing an issue affecting {affected}.",
        drill_prefix(s)
    );
    let _ = writeln!(out, "{who} may see: {symptom}");
    let state = match s.status {
        crate::model::Status::Investigating => "Our engineers are investigating.",
        crate::model::Status::Identified => "We have identified the cause and are working on a fix.",
        crate::model::Status::Mitigating => "A fix is being applied and we are monitoring the results.",
        crate::model::Status::Resolved => "The issue has been resolved.",
    };
    let _ = writeln!(out, "{state}");
    match next_at {
        Some(t) => {
            let _ = write!(out, "Next update by {}.", t.hhmm_utc());
        }
        None => {
            let _ = write!(out, "We will post another update as soon as we know more.");
        }
    }
    out
}

fn executive(s: &Incident, f: &UpdateFields) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}[{}] {} — executive update ({})",
        drill_prefix(s),
        s.reference(),
        s.title,
        s.severity
    );
    let happening = if s.summary.is_empty() {
        s.title.clone()
    } else {
        s.summary.clone()
    };
    let _ = writeln!(out, "What is happening: {happening}");
    let _ = writeln!(out, "Customer impact: {}", impact_line(s, f));
    let _ = writeln!(
        out,
        "Business impact: {}",
        f.business_impact.as_deref().unwrap_or_default()
    );
    let status = f.status_text.clone().unwrap_or_else(|| s.status.to_string());
    let _ = writeln!(out, "Current status: {status}");
    let _ = write!(
        out,
        "Estimated resolution: {}",
        f.estimated_resolution.as_deref().unwrap_or("investigating")
    );
    out
}
