//! Human output: aligned tables, relative times ("5m ago", "in 10m") next to
//! UTC timestamps, and colours for severity and status when writing to a
//! terminal (or `--color always`; `NO_COLOR` turns them off).

use incidentd_domain::{self as d, EventKind, Timestamp};
use incidentd_proto::v1 as pb;
use std::fmt::Write;

mod admin;
mod after;
pub use admin::{audit, created_token, reloaded, revoked_token, tokens};
pub use after::{action_items, deliveries, drills, report, review, rotation, scenarios};

/// ANSI styling, or none.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub on: bool,
}

impl Style {
    fn paint(self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub fn bold(self, s: &str) -> String {
        self.paint("1", s)
    }
    pub fn dim(self, s: &str) -> String {
        self.paint("2", s)
    }
    pub fn severity(self, v: i32) -> String {
        let (code, text) = match pb::Severity::try_from(v) {
            Ok(pb::Severity::Sev1) => ("1;31", "SEV-1"),
            Ok(pb::Severity::Sev2) => ("31", "SEV-2"),
            Ok(pb::Severity::Sev3) => ("33", "SEV-3"),
            Ok(pb::Severity::Sev4) => ("0", "SEV-4"),
            _ => ("0", "?"),
        };
        self.paint(code, text)
    }
    pub fn status(self, v: i32) -> String {
        let (code, text) = match pb::Status::try_from(v) {
            Ok(pb::Status::Investigating) => ("31", "investigating"),
            Ok(pb::Status::Identified) => ("33", "identified"),
            Ok(pb::Status::Mitigating) => ("36", "mitigating"),
            Ok(pb::Status::Resolved) => ("32", "resolved"),
            _ => ("0", "?"),
        };
        self.paint(code, text)
    }
}

pub fn timestamp(t: &prost_types::Timestamp) -> Timestamp {
    Timestamp(t.seconds.saturating_mul(1000) + i64::from(t.nanos / 1_000_000))
}

pub fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp(ms)
}

/// "just now", "42s ago", "5m ago", "2h 3m ago", "3d ago"; "in 10m" for the future.
pub fn relative(t: Timestamp, now: Timestamp) -> String {
    let delta = (now.0 - t.0) / 1000;
    let s = delta.unsigned_abs();
    if s < 5 {
        return "just now".into();
    }
    let span = match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 if (s % 3600) / 60 == 0 => format!("{}h", s / 3600),
        3600..86_400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d", s / 86_400),
    };
    if delta >= 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

/// `2026-11-27T03:41:12Z (5m ago)`, or `-`.
fn when(t: &Option<prost_types::Timestamp>, now: Timestamp) -> String {
    match t {
        Some(t) => {
            let t = timestamp(t);
            format!("{t} ({})", relative(t, now))
        }
        None => "-".into(),
    }
}

fn dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

fn width(s: &str) -> usize {
    // Escape sequences take no room on screen.
    let mut n = 0;
    let mut esc = false;
    for c in s.chars() {
        match (esc, c) {
            (false, '\x1b') => esc = true,
            (true, 'm') => esc = false,
            (true, _) => {}
            (false, _) => n += 1,
        }
    }
    n
}

/// Columns padded to their widest cell; the last one is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>], style: Style) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(width(c));
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let last = cells.len().saturating_sub(1);
        for (i, c) in cells.iter().enumerate() {
            out.push_str(c);
            if i < last {
                out.push_str(&" ".repeat(widths[i] - width(c) + 2));
            }
        }
        out.push('\n');
    };
    line(header.iter().map(|h| style.bold(h)).collect(), &mut out);
    for r in rows {
        line(r.clone(), &mut out);
    }
    out
}

pub fn incident_list(list: &[pb::Incident], style: Style) -> String {
    if list.is_empty() {
        return "no incidents\n".into();
    }
    let now = now();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|i| {
            let roster = i.roster.clone().unwrap_or_default();
            let title = if i.drill {
                format!("[drill] {}", i.title)
            } else {
                i.title.clone()
            };
            vec![
                style.bold(&i.reference),
                style.severity(i.severity),
                style.status(i.status),
                i.team.clone(),
                i.declared_at
                    .as_ref()
                    .map_or("-".into(), |t| relative(timestamp(t), now)),
                dash(&roster.commander).to_string(),
                title,
            ]
        })
        .collect();
    table(
        &["INCIDENT", "SEV", "STATUS", "TEAM", "DECLARED", "COMMANDER", "TITLE"],
        &rows,
        style,
    )
}

pub fn incident(i: &pb::Incident, style: Style) -> String {
    let now = now();
    let roster = i.roster.clone().unwrap_or_default();
    let mut out = String::new();
    let drill = if i.drill { "  [drill]" } else { "" };
    let _ = writeln!(out, "{}  {}{drill}", style.bold(&i.reference), style.bold(&i.title));
    let mut kv = |k: &str, v: String| {
        let _ = writeln!(out, "  {:<14}{v}", style.dim(k));
    };
    kv("severity", style.severity(i.severity));
    kv("status", style.status(i.status));
    kv("team", i.team.clone());
    kv("services", dash(&i.services.join(", ")).to_string());
    if !i.summary.is_empty() {
        kv("summary", i.summary.clone());
    }
    kv("commander", dash(&roster.commander).to_string());
    kv("comms lead", dash(&roster.comms_lead).to_string());
    for s in &roster.smes {
        kv("sme", format!("{} — {}", s.person, s.track));
    }
    if !i.impact.is_empty() || i.customer_impact_known {
        let pct = if i.customer_impact_known {
            format!(" ({}% of customers)", i.customer_impact_percent)
        } else {
            String::new()
        };
        kv("impact", format!("{}{pct}", dash(&i.impact)));
    }
    kv("declared", when(&i.declared_at, now));
    let by = if i.acknowledged_by.is_empty() {
        String::new()
    } else {
        format!(" by {}", i.acknowledged_by)
    };
    let acked = match &i.acknowledged_at {
        Some(_) => format!("{}{by}", when(&i.acknowledged_at, now)),
        None => "not yet".into(),
    };
    kv("acknowledged", acked);
    if i.mitigated_at.is_some() {
        kv("mitigated", when(&i.mitigated_at, now));
    }
    if i.resolved_at.is_some() {
        kv("resolved", when(&i.resolved_at, now));
    }
    if i.next_update_due.is_some() {
        kv("next update", when(&i.next_update_due, now));
    }
    for c in &i.checklist {
        let state = match (&c.done_at, c.missed) {
            (Some(_), _) => "done".to_string(),
            (None, true) => "MISSED".to_string(),
            (None, false) => format!("due {}", when(&c.due_at, now)),
        };
        kv("checklist", format!("{}: {state}", c.title));
    }
    for e in &i.escalations {
        kv(
            "escalated",
            format!("{} → {} {}", e.rule, e.target, when(&e.fired_at, now)),
        );
    }
    kv("id", format!("{}  (version {})", i.id, i.version));
    out
}

pub fn timeline(entries: &[pb::TimelineEntry], style: Style) -> String {
    let now = now();
    let mut out = String::new();
    for e in entries {
        let kind = pb::EntryKind::try_from(e.kind).map_or("?", |k| k.as_str_name());
        let at = e.at.as_ref().map(timestamp).unwrap_or_default();
        let _ = writeln!(
            out,
            "{}  {:<8}  {}",
            style.dim(&format!("{at} {:>10}", relative(at, now))),
            kind.to_ascii_lowercase(),
            e.author,
        );
        for line in e.text.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    if out.is_empty() {
        out.push_str("no timeline entries\n");
    }
    out
}

/// One line per watched event.
pub fn event(e: &pb::IncidentEvent, style: Style) -> String {
    let at = e.at.as_ref().map(timestamp).unwrap_or_default();
    let by = if e.by.is_empty() {
        String::new()
    } else {
        format!(" by {}", e.by)
    };
    let what = match serde_json::from_str::<d::Event>(&e.json) {
        Ok(ev) => describe(&ev.kind),
        Err(_) => String::new(),
    };
    format!(
        "{}  {} v{:<3} {}{by}{}\n",
        style.dim(&format!("{at} {:>10}", relative(at, now()))),
        style.bold(&format!("INC-{}", e.number)),
        e.version,
        e.r#type,
        if what.is_empty() { what } else { format!(": {what}") },
    )
}

fn sev(s: d::Severity) -> String {
    let n = match s {
        d::Severity::Sev1 => 1,
        d::Severity::Sev2 => 2,
        d::Severity::Sev3 => 3,
        d::Severity::Sev4 => 4,
    };
    format!("SEV-{n}")
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

fn describe(k: &EventKind) -> String {
    let because = |r: &str| if r.is_empty() { String::new() } else { format!(" ({r})") };
    match k {
        EventKind::Declared {
            title, team, severity, ..
        } => format!("{title} [{team}, {}]", sev(*severity)),
        EventKind::Acknowledged => String::new(),
        EventKind::SeverityChanged { from, to, reason } => format!("{} → {}{}", sev(*from), sev(*to), because(reason)),
        EventKind::RoleAssigned { role, person, track } => match track {
            Some(t) => format!("{person} as {role} on {t}"),
            None => format!("{person} as {role}"),
        },
        EventKind::RoleHandedOver { role, from, to } => format!("{role}: {from} → {to}"),
        EventKind::SmeTrackChanged { person, to, .. } => format!("{person} now on {to}"),
        EventKind::RoleUnassigned { role, person } => format!("{person} no longer {role}"),
        EventKind::StatusChanged { from, to, note } => format!("{from:?} → {to:?}{}", because(note)).to_lowercase(),
        EventKind::ImpactChanged {
            impact,
            customer_impact_percent,
            ..
        } => {
            let pct = customer_impact_percent
                .map(|p| format!(" ({p}% of customers)"))
                .unwrap_or_default();
            format!("{}{pct}", impact.as_deref().unwrap_or(""))
        }
        EventKind::EntryAdded { kind, text } => format!("{kind:?}: {}", first_line(text)).to_lowercase(),
        EventKind::UpdatePosted { kind, .. } => format!("{kind:?} update").to_lowercase(),
        EventKind::ChecklistMissed { item, notify, .. } => format!("missed: {} → {}", item.title(), to(notify)),
        EventKind::UpdateOverdue { notify, .. } => format!("internal update overdue → {}", to(notify)),
        EventKind::StakeholderNoticeDue { .. } => "automatic stakeholder notice sent".to_string(),
        EventKind::SmeReportOverdue {
            person, track, notify, ..
        } => format!("{person} owes a report on {track} → {}", to(notify)),
        EventKind::Escalated {
            rule, target, message, ..
        } => {
            format!(
                "escalated to {target} ({rule}){}",
                because(message.as_deref().unwrap_or(""))
            )
        }
        EventKind::ReviewOverdue { notify, .. } => format!("review overdue → {}", to(notify)),
        EventKind::ComponentStatusSet { service, status } => format!("status page: {service} {status}"),
        EventKind::AlertAttached { alert, .. } => {
            let what = if alert.summary.is_empty() {
                &alert.fingerprint
            } else {
                &alert.summary
            };
            format!("alert {}: {}", alert.status.as_str(), first_line(what))
        }
        EventKind::AlertAcknowledged { fingerprint } => format!("alert acknowledged: {fingerprint}"),
        EventKind::AlertResolved { fingerprint, .. } => format!("alert resolved: {fingerprint}"),
        EventKind::AlertsAllResolved { count } => format!("all {count} alert(s) resolved"),
        EventKind::ReviewUpdated { sections } => {
            let names: Vec<&str> = sections
                .named()
                .iter()
                .filter(|(_, t)| t.is_some())
                .map(|(n, _)| *n)
                .collect();
            format!("review: {}", names.join(", ").replace('_', " "))
        }
        EventKind::ActionItemAdded {
            number,
            description,
            owner,
            ..
        } => format!("action #{number} for {owner}: {}", first_line(description)),
        EventKind::ActionItemCompleted { number } => format!("action #{number} done"),
        EventKind::ActionItemDropped { number, reason } => format!("action #{number} dropped{}", because(reason)),
        EventKind::ActionItemOverdue { number, owner, .. } => format!("action #{number} overdue → {owner}"),
        EventKind::DrillStarted { title, steps, .. } => format!("drill \"{title}\" ({} injections)", steps.len()),
        EventKind::DrillInjected { step, effect } => format!("drill step {}: {}", step + 1, describe(effect)),
    }
}

/// Who a reminder or nudge went to.
fn to(r: &d::Recipients) -> String {
    let mut who = r.people.join(", ");
    if let Some(team) = &r.team {
        if !who.is_empty() {
            who.push_str(", ");
        }
        who.push_str("team ");
        who.push_str(team);
    }
    who
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        let now = Timestamp(10_000_000);
        let ago = |s: i64| relative(Timestamp(now.0 - s * 1000), now);
        assert_eq!(ago(2), "just now");
        assert_eq!(ago(42), "42s ago");
        assert_eq!(ago(300), "5m ago");
        assert_eq!(ago(7200), "2h ago");
        assert_eq!(ago(7380), "2h 3m ago");
        assert_eq!(ago(3 * 86_400), "3d ago");
        assert_eq!(ago(-600), "in 10m");
    }

    #[test]
    fn events_read_as_sentences() {
        let assigned = EventKind::RoleAssigned {
            role: d::Role::Sme,
            person: "dave".into(),
            track: Some("login pods".into()),
        };
        assert_eq!(describe(&assigned), "dave as subject matter expert on login pods");
        let down = EventKind::SeverityChanged {
            from: d::Severity::Sev1,
            to: d::Severity::Sev2,
            reason: "retries work".into(),
        };
        assert_eq!(describe(&down), "SEV-1 → SEV-2 (retries work)");
    }

    #[test]
    fn tables_align_despite_colours() {
        let style = Style { on: true };
        let rows = vec![vec![style.severity(1), "a".into()], vec![style.severity(4), "b".into()]];
        let t = table(&["SEV", "X"], &rows, Style { on: false });
        let cols: Vec<usize> = t.lines().map(|l| width(l).saturating_sub(1)).collect();
        assert!(cols.iter().all(|c| *c == cols[0]), "{t:?}");
    }
}
