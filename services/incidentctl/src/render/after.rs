//! Human output after the incident and around it: reviews, action items,
//! reports, drills, notification deliveries.

use super::{Style, dash, now, relative, table, timestamp, when};
use incidentd_domain::Timestamp;
use incidentd_proto::v1 as pb;
use std::fmt::Write;

/// `42s`, `5m`, `2h 3m`, `3d 4h`; `-` when unknown.
pub fn span(d: &Option<prost_types::Duration>) -> String {
    let Some(d) = d else { return "-".into() };
    let s = d.seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 if (s % 3600) / 60 == 0 => format!("{}h", s / 3600),
        3600..86_400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ if (s % 86_400) / 3600 == 0 => format!("{}d", s / 86_400),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// `2026-12-31 (in 34d)`.
fn day(t: &Option<prost_types::Timestamp>, now: Timestamp) -> String {
    match t {
        Some(t) => {
            let t = timestamp(t);
            format!("{} ({})", &t.to_string()[..10], relative(t, now))
        }
        None => "-".into(),
    }
}

fn heading(out: &mut String, style: Style, title: &str) {
    let _ = writeln!(out, "\n{}", style.bold(title));
}

/// Text indented under its heading; `(not written yet)` when empty.
fn block(out: &mut String, style: Style, text: &str) {
    if text.trim().is_empty() {
        let _ = writeln!(out, "  {}", style.dim("(not written yet)"));
    }
    for line in text.lines() {
        let _ = writeln!(out, "  {line}");
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

pub fn review(r: &pb::Review, style: Style) -> String {
    let now = now();
    let mut out = String::new();
    let drill = if r.drill { "  [drill]" } else { "" };
    let _ = writeln!(
        out,
        "{}  {}{drill}",
        style.bold(&r.reference),
        style.bold(&format!("Review: {}", r.title))
    );
    let _ = writeln!(out, "  {:<14}{}", style.dim("due"), when(&r.due_at, now));
    if r.updated_at.is_some() {
        let by = if r.updated_by.is_empty() {
            String::new()
        } else {
            format!(" by {}", r.updated_by)
        };
        let _ = writeln!(out, "  {:<14}{}{by}", style.dim("updated"), when(&r.updated_at, now));
    }

    heading(&mut out, style, "Timeline");
    let rows: Vec<Vec<String>> = r
        .timeline
        .iter()
        .map(|m| {
            vec![
                m.at.as_ref().map_or("-".into(), |t| timestamp(t).to_string()),
                format!("+{}", span(&m.since_declared)),
                format!("+{}", span(&m.since_previous)),
                m.text.clone(),
            ]
        })
        .collect();
    out.push_str(&indent(&table(
        &["AT", "SINCE DECLARED", "SINCE PREVIOUS", "WHAT"],
        &rows,
        style,
    )));

    for (title, text) in [
        ("What happened", &r.what_happened),
        ("Root causes", &r.root_causes),
        ("Contributing factors", &r.contributing_factors),
        ("What went well", &r.went_well),
        ("What to improve", &r.to_improve),
    ] {
        heading(&mut out, style, title);
        block(&mut out, style, text);
    }

    heading(&mut out, style, "Action items");
    if r.action_items.is_empty() {
        let _ = writeln!(out, "  {}", style.dim("(none yet: incidentctl action add ...)"));
    } else {
        out.push_str(&indent(&action_items(&r.action_items, style)));
    }

    if !r.blame_findings.is_empty() {
        heading(
            &mut out,
            style,
            &format!(
                "Blameless check: {} finding(s) (a warning, nothing is blocked)",
                r.blame_findings.len()
            ),
        );
        for f in &r.blame_findings {
            let section = f.section.replace('_', " ");
            let _ = writeln!(out, "  {section}: \"{}\"  [{}]", f.sentence, f.rule);
            let _ = writeln!(out, "    → {}", f.suggestion);
        }
    }
    out
}

/// `INC-42/1`.
pub fn item_name(a: &pb::ActionItem) -> String {
    format!("{}/{}", a.incident_reference, a.number)
}

fn item_state(a: &pb::ActionItem, style: Style) -> String {
    match a.state.as_str() {
        "open" if a.overdue => style.paint("1;31", "OVERDUE"),
        "open" => style.paint("33", "open"),
        "done" => style.paint("32", "done"),
        other => other.to_string(),
    }
}

pub fn action_items(items: &[pb::ActionItem], style: Style) -> String {
    if items.is_empty() {
        return "no action items\n".into();
    }
    let now = now();
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|a| {
            let mut what = a.description.clone();
            if !a.drop_reason.is_empty() {
                let _ = write!(what, " (dropped: {})", a.drop_reason);
            }
            vec![
                style.bold(&item_name(a)),
                item_state(a, style),
                a.owner.clone(),
                day(&a.due_at, now),
                a.team.clone(),
                what,
            ]
        })
        .collect();
    table(&["ITEM", "STATE", "OWNER", "DUE", "TEAM", "DESCRIPTION"], &rows, style)
}

fn ratio(r: &Option<pb::RatioStat>) -> String {
    match r {
        Some(r) if r.total > 0 => format!("{}/{} on time ({:.0}%)", r.hits, r.total, r.share * 100.0),
        _ => "-".into(),
    }
}

fn median_p90(s: &Option<pb::DurationStats>) -> [String; 2] {
    match s {
        Some(s) if s.count > 0 => [span(&s.median), span(&s.p90)],
        _ => ["-".into(), "-".into()],
    }
}

pub fn report(r: &pb::Report, style: Style) -> String {
    let mut out = String::new();
    let scope = if r.team.is_empty() {
        "the org".to_string()
    } else {
        format!("team {}", r.team)
    };
    let at = |t: &Option<prost_types::Timestamp>| match t {
        Some(t) if t.seconds > 0 => timestamp(t).to_string(),
        _ => "the beginning".into(),
    };
    let _ = writeln!(
        out,
        "{}  {} → {}",
        style.bold(&format!("Report for {scope}")),
        at(&r.since),
        at(&r.until)
    );
    let _ = writeln!(out, "{} incident(s), drills not counted\n", r.incidents);
    let rows: Vec<Vec<String>> = r
        .by_severity
        .iter()
        .map(|s| {
            let mut row = vec![style.severity(s.severity), s.count.to_string()];
            for stat in [&s.time_to_acknowledge, &s.time_to_mitigate, &s.time_to_resolve] {
                row.extend(median_p90(stat));
            }
            row
        })
        .collect();
    out.push_str(&table(
        &["SEV", "COUNT", "MTTA", "MTTA P90", "TTM", "TTM P90", "MTTR", "MTTR P90"],
        &rows,
        style,
    ));
    out.push('\n');
    let mut kv = |k: &str, v: String| {
        let _ = writeln!(out, "{:<18}{v}", style.dim(k));
    };
    kv("update cadence", ratio(&r.update_cadence));
    kv("first 15 minutes", ratio(&r.checklist));
    let esc: Vec<String> = r
        .escalations
        .iter()
        .map(|e| format!("{} ×{}", e.rule, e.count))
        .collect();
    kv("escalations", dash(&esc.join(", ")).to_string());
    let a = r.action_items.unwrap_or_default();
    let [close, close90] = median_p90(&a.time_to_close);
    kv(
        "action items",
        format!(
            "{} created, {} done, {} dropped, {} open ({} overdue); completion {:.0}%; time to close {close} (p90 {close90})",
            a.created,
            a.done,
            a.dropped,
            a.open,
            a.overdue,
            a.completion_rate * 100.0
        ),
    );
    let d = r.drills.unwrap_or_default();
    let [ack, _] = median_p90(&d.time_to_acknowledge);
    kv(
        "drills",
        format!(
            "{} ({} resolved); time to acknowledge {ack}; first 15 minutes {}",
            d.count,
            d.resolved,
            ratio(&d.checklist_on_time)
        ),
    );
    out
}

pub fn scenarios(list: &[pb::Scenario], style: Style) -> String {
    if list.is_empty() {
        return "no scenarios\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            let sev = if s.severity == 0 {
                "unclear".to_string()
            } else {
                style.severity(s.severity)
            };
            vec![style.bold(&s.id), sev, s.steps.len().to_string(), s.title.clone()]
        })
        .collect();
    table(&["SCENARIO", "SEV", "STEPS", "TITLE"], &rows, style)
}

pub fn drills(list: &[pb::Drill], style: Style) -> String {
    if list.is_empty() {
        return "no drills on the calendar\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|d| {
            let at = d.at.as_ref().map_or("-".into(), |t| timestamp(t).to_string());
            let state = match (d.state.as_str(), d.incident_id.as_str(), d.reason.as_str()) {
                ("started", id, _) if !id.is_empty() => format!("started ({id})"),
                ("failed", _, why) => format!("failed: {why}"),
                (s, _, _) => s.to_string(),
            };
            let again = if d.recurring { "quarterly" } else { "once" };
            vec![
                style.bold(&d.id),
                d.team.clone(),
                d.scenario.clone(),
                at,
                again.into(),
                state,
            ]
        })
        .collect();
    table(&["DRILL", "TEAM", "SCENARIO", "AT", "REPEATS", "STATE"], &rows, style)
}

pub fn rotation(r: &pb::RoleRotation, style: Style) -> String {
    let now = now();
    let since = r.since.as_ref().map_or("-".into(), |t| timestamp(t).to_string());
    let mut out = format!(
        "{}  since {since}\n",
        style.bold(&format!("Role rotation: team {}", r.team))
    );
    let rows: Vec<Vec<String>> = r
        .people
        .iter()
        .map(|p| {
            vec![
                p.person.clone(),
                p.commander.to_string(),
                p.comms_lead.to_string(),
                p.sme.to_string(),
                p.last_commander_at
                    .as_ref()
                    .map_or("never".into(), |t| relative(timestamp(t), now)),
            ]
        })
        .collect();
    out.push_str(&table(
        &["PERSON", "COMMANDER", "COMMS LEAD", "SME", "LAST COMMANDER"],
        &rows,
        style,
    ));
    let never = r.never_commander.join(", ");
    let _ = writeln!(out, "\n{:<20}{}", style.dim("never commander"), dash(&never));
    let _ = writeln!(
        out,
        "{:<20}{}",
        style.dim("suggested commander"),
        dash(&r.suggested_commander)
    );
    out
}

fn delivery_state(v: i32, style: Style) -> String {
    let code = match pb::DeliveryState::try_from(v) {
        Ok(pb::DeliveryState::Dead) => "1;31",
        Ok(pb::DeliveryState::Retrying) => "33",
        Ok(pb::DeliveryState::Delivered) => "32",
        _ => "0",
    };
    style.paint(code, &crate::json::delivery_state(v).to_ascii_lowercase())
}

/// Deliveries; with the incident's reference, ids are shown as `INC-42:7:dest`.
pub fn deliveries(list: &[pb::Delivery], reference: Option<&str>, style: Style) -> String {
    if list.is_empty() {
        return "no deliveries\n".into();
    }
    let now = now();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|d| {
            let id = match (reference, d.id.split_once(':')) {
                (Some(r), Some((_, rest))) => format!("{r}:{rest}"),
                _ => d.id.clone(),
            };
            let what = if d.last_error.is_empty() {
                d.headline.clone()
            } else {
                format!("{} — {}", d.headline, d.last_error)
            };
            vec![
                style.bold(&id),
                delivery_state(d.state, style),
                d.kind.clone(),
                d.attempts.to_string(),
                d.updated_at
                    .as_ref()
                    .map_or("-".into(), |t| relative(timestamp(t), now)),
                what,
            ]
        })
        .collect();
    table(
        &["DELIVERY", "STATE", "KIND", "ATTEMPTS", "UPDATED", "WHAT"],
        &rows,
        style,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_short() {
        let d = |s: i64| span(&Some(prost_types::Duration { seconds: s, nanos: 0 }));
        assert_eq!(d(42), "42s");
        assert_eq!(d(300), "5m");
        assert_eq!(d(7200), "2h");
        assert_eq!(d(7380), "2h 3m");
        assert_eq!(d(2 * 86_400), "2d");
        assert_eq!(d(2 * 86_400 + 4 * 3600), "2d 4h");
        assert_eq!(span(&None), "-");
    }
}
