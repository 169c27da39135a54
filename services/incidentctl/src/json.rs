//! `--json` output: the protocol messages as plain JSON objects with enum
//! names (`"SEV1"`, `"INVESTIGATING"`) and RFC 3339 times, stable for scripts.
//! Field names are the proto field names.

use incidentd_proto::v1 as pb;
use serde_json::{Map, Value, json};

pub fn time(t: &Option<prost_types::Timestamp>) -> Value {
    match t {
        Some(t) => Value::String(crate::render::timestamp(t).to_string()),
        None => Value::Null,
    }
}

fn name<E: TryFrom<i32>>(v: i32, f: impl Fn(&E) -> &'static str) -> Value {
    match E::try_from(v) {
        Ok(e) => Value::String(f(&e).to_string()),
        Err(_) => Value::from(v),
    }
}

pub fn incident(i: &pb::Incident) -> Value {
    let roster = i.roster.clone().unwrap_or_default();
    json!({
        "id": i.id,
        "number": i.number,
        "reference": i.reference,
        "title": i.title,
        "team": i.team,
        "services": i.services,
        "severity": name(i.severity, pb::Severity::as_str_name),
        "status": name(i.status, pb::Status::as_str_name),
        "drill": i.drill,
        "summary": i.summary,
        "roster": {
            "commander": opt_str(&roster.commander),
            "comms_lead": opt_str(&roster.comms_lead),
            "smes": roster.smes.iter().map(|s| json!({
                "person": s.person,
                "track": s.track,
                "assigned_at": time(&s.assigned_at),
                "last_report_at": time(&s.last_report_at),
            })).collect::<Vec<_>>(),
        },
        "impact": i.impact,
        "customer_impact_percent": if i.customer_impact_known { Value::from(i.customer_impact_percent) } else { Value::Null },
        "data_loss": name(i.data_loss, pb::DataLoss::as_str_name),
        "regulatory": i.regulatory,
        "declared_at": time(&i.declared_at),
        "acknowledged_at": time(&i.acknowledged_at),
        "acknowledged_by": opt_str(&i.acknowledged_by),
        "mitigated_at": time(&i.mitigated_at),
        "resolved_at": time(&i.resolved_at),
        "next_update_due": time(&i.next_update_due),
        "updated_at": time(&i.updated_at),
        "checklist": i.checklist.iter().map(|c| json!({
            "id": c.id,
            "title": c.title,
            "due_at": time(&c.due_at),
            "done_at": time(&c.done_at),
            "missed": c.missed,
        })).collect::<Vec<_>>(),
        "escalations": i.escalations.iter().map(|e| json!({
            "rule": e.rule,
            "target": e.target,
            "fired_at": time(&e.fired_at),
            "message": e.message,
        })).collect::<Vec<_>>(),
        "version": i.version,
    })
}

pub fn entry(e: &pb::TimelineEntry) -> Value {
    json!({
        "incident_id": e.incident_id,
        "seq": e.seq,
        "version": e.version,
        "at": time(&e.at),
        "kind": name(e.kind, pb::EntryKind::as_str_name),
        "author": opt_str(&e.author),
        "text": e.text,
    })
}

pub fn update(u: &pb::Update) -> Value {
    let mut m = Map::new();
    m.insert("incident_id".into(), json!(u.incident_id));
    m.insert("seq".into(), json!(u.seq));
    m.insert("kind".into(), name(u.kind, pb::UpdateKind::as_str_name));
    m.insert("at".into(), time(&u.at));
    m.insert("author".into(), opt_str(&u.author));
    for (k, v) in [
        ("status_text", &u.status_text),
        ("impact", &u.impact),
        ("current_theory", &u.current_theory),
        ("next_steps", &u.next_steps),
        ("customer_symptom", &u.customer_symptom),
        ("business_impact", &u.business_impact),
        ("estimated_resolution", &u.estimated_resolution),
    ] {
        m.insert(k.into(), opt_str(v));
    }
    m.insert(
        "next_update_in_seconds".into(),
        u.next_update_in.map_or(Value::Null, |d| json!(d.seconds)),
    );
    m.insert("next_update_at".into(), time(&u.next_update_at));
    m.insert("rendered".into(), json!(u.rendered));
    m.insert("version".into(), json!(u.version));
    Value::Object(m)
}

pub fn event(e: &pb::IncidentEvent) -> Value {
    json!({
        "incident_id": e.incident_id,
        "number": e.number,
        "version": e.version,
        "at": time(&e.at),
        "by": opt_str(&e.by),
        "type": e.r#type,
        "event": serde_json::from_str::<Value>(&e.json).unwrap_or_else(|_| Value::String(e.json.clone())),
    })
}

/// A duration in whole seconds, or null.
fn seconds(d: &Option<prost_types::Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(d.seconds))
}

pub fn review(r: &pb::Review) -> Value {
    json!({
        "incident_id": r.incident_id,
        "reference": r.reference,
        "title": r.title,
        "drill": r.drill,
        "due_at": time(&r.due_at),
        "timeline": r.timeline.iter().map(|m| json!({
            "at": time(&m.at),
            "text": m.text,
            "since_previous_seconds": seconds(&m.since_previous),
            "since_declared_seconds": seconds(&m.since_declared),
        })).collect::<Vec<_>>(),
        "what_happened": opt_str(&r.what_happened),
        "root_causes": opt_str(&r.root_causes),
        "contributing_factors": opt_str(&r.contributing_factors),
        "went_well": opt_str(&r.went_well),
        "to_improve": opt_str(&r.to_improve),
        "action_items": r.action_items.iter().map(action_item).collect::<Vec<_>>(),
        "blame_findings": r.blame_findings.iter().map(|f| json!({
            "section": f.section,
            "sentence": f.sentence,
            "rule": f.rule,
            "suggestion": f.suggestion,
        })).collect::<Vec<_>>(),
        "updated_at": time(&r.updated_at),
        "updated_by": opt_str(&r.updated_by),
        "markdown": opt_str(&r.markdown),
        "version": r.version,
    })
}

pub fn action_item(a: &pb::ActionItem) -> Value {
    json!({
        "id": a.id,
        "incident_id": a.incident_id,
        "incident_reference": a.incident_reference,
        "team": a.team,
        "number": a.number,
        "description": a.description,
        "owner": a.owner,
        "due_at": time(&a.due_at),
        "state": a.state,
        "overdue": a.overdue,
        "created_at": time(&a.created_at),
        "closed_at": time(&a.closed_at),
        "drop_reason": opt_str(&a.drop_reason),
    })
}

fn stats(s: &Option<pb::DurationStats>) -> Value {
    let s = s.unwrap_or_default();
    json!({
        "count": s.count,
        "median_seconds": seconds(&s.median),
        "p90_seconds": seconds(&s.p90),
    })
}

fn ratio(r: &Option<pb::RatioStat>) -> Value {
    let r = r.unwrap_or_default();
    json!({ "hits": r.hits, "total": r.total, "share": r.share })
}

pub fn report(r: &pb::Report) -> Value {
    let a = r.action_items.unwrap_or_default();
    let d = r.drills.unwrap_or_default();
    json!({
        "team": opt_str(&r.team),
        "since": time(&r.since),
        "until": time(&r.until),
        "incidents": r.incidents,
        "by_severity": r.by_severity.iter().map(|s| json!({
            "severity": name(s.severity, pb::Severity::as_str_name),
            "count": s.count,
            "time_to_acknowledge": stats(&s.time_to_acknowledge),
            "time_to_mitigate": stats(&s.time_to_mitigate),
            "time_to_resolve": stats(&s.time_to_resolve),
        })).collect::<Vec<_>>(),
        "update_cadence": ratio(&r.update_cadence),
        "checklist": ratio(&r.checklist),
        "escalations": r.escalations.iter().map(|e| json!({ "rule": e.rule, "count": e.count })).collect::<Vec<_>>(),
        "action_items": {
            "created": a.created,
            "done": a.done,
            "dropped": a.dropped,
            "open": a.open,
            "overdue": a.overdue,
            "completion_rate": a.completion_rate,
            "time_to_close": stats(&a.time_to_close),
        },
        "drills": {
            "count": d.count,
            "resolved": d.resolved,
            "time_to_acknowledge": stats(&d.time_to_acknowledge),
            "checklist_on_time": ratio(&d.checklist_on_time),
        },
    })
}

pub fn scenario(s: &pb::Scenario) -> Value {
    json!({
        "id": s.id,
        "title": s.title,
        "description": s.description,
        "severity": if s.severity == 0 { Value::Null } else { name(s.severity, pb::Severity::as_str_name) },
        "steps": s.steps.iter().map(|st| json!({
            "after_seconds": seconds(&st.after),
            "kind": st.kind,
            "text": st.text,
        })).collect::<Vec<_>>(),
    })
}

pub fn drill(d: &pb::Drill) -> Value {
    json!({
        "id": d.id,
        "scenario": d.scenario,
        "team": d.team,
        "at": time(&d.at),
        "recurring": d.recurring,
        "state": d.state,
        "reminded_at": time(&d.reminded_at),
        "incident_id": opt_str(&d.incident_id),
        "reason": opt_str(&d.reason),
    })
}

pub fn rotation(r: &pb::RoleRotation) -> Value {
    json!({
        "team": r.team,
        "since": time(&r.since),
        "people": r.people.iter().map(|p| json!({
            "person": p.person,
            "commander": p.commander,
            "comms_lead": p.comms_lead,
            "sme": p.sme,
            "last_commander_at": time(&p.last_commander_at),
        })).collect::<Vec<_>>(),
        "never_commander": r.never_commander,
        "suggested_commander": opt_str(&r.suggested_commander),
    })
}

/// `DEAD`, `DELIVERED`, ... (the proto name without its `DELIVERY_STATE_` prefix).
pub fn delivery_state(v: i32) -> String {
    pb::DeliveryState::try_from(v).map_or_else(
        |_| v.to_string(),
        |s| s.as_str_name().trim_start_matches("DELIVERY_STATE_").to_string(),
    )
}

pub fn delivery(d: &pb::Delivery) -> Value {
    json!({
        "id": d.id,
        "incident_id": d.incident_id,
        "version": d.version,
        "destination": d.destination,
        "kind": d.kind,
        "state": delivery_state(d.state),
        "attempts": d.attempts,
        "last_error": opt_str(&d.last_error),
        "idempotency_key": d.idempotency_key,
        "created_at": time(&d.created_at),
        "updated_at": time(&d.updated_at),
        "next_attempt_at": time(&d.next_attempt_at),
        "delivered_at": time(&d.delivered_at),
        "headline": d.headline,
        "to": d.to,
    })
}

pub fn token(t: &pb::Token) -> Value {
    json!({
        "id": t.id,
        "person": opt_str(&t.person),
        "integration": opt_str(&t.integration),
        "scopes": t.scopes,
        "teams": t.teams,
        "source": opt_str(&t.source),
        "created_at": time(&t.created_at),
        "created_by": opt_str(&t.created_by),
        "revoked": t.revoked,
        "revoked_at": time(&t.revoked_at),
        "revoked_by": opt_str(&t.revoked_by),
    })
}

pub fn created_token(r: &pb::CreateTokenResponse) -> Value {
    json!({
        "token": r.token.as_ref().map_or(Value::Null, token),
        "secret": r.secret,
    })
}

/// An audit record; `reference` is its incident's `INC-42` when known.
pub fn audit_record(r: &pb::AuditRecord, reference: Option<&str>) -> Value {
    json!({
        "at": time(&r.at),
        "token_id": opt_str(&r.token_id),
        "actor": opt_str(&r.actor),
        "method": r.method,
        "incident_id": opt_str(&r.incident_id),
        "incident_reference": reference.map_or(Value::Null, |r| json!(r)),
        "code": r.code,
        "message": opt_str(&r.message),
    })
}

pub fn reloaded(r: &pb::ReloadConfigResponse) -> Value {
    json!({
        "org": r.org,
        "teams": r.teams,
        "people": r.people,
        "tokens": r.tokens,
        "restart_needed": r.restart_needed,
    })
}

fn opt_str(s: &str) -> Value {
    if s.is_empty() { Value::Null } else { json!(s) }
}
