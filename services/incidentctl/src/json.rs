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

fn opt_str(s: &str) -> Value {
    if s.is_empty() { Value::Null } else { json!(s) }
}
