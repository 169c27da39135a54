//! Protocol types ↔ domain types. prost structs stop here.

use crate::error::invalid;
use incidentd_domain as d;
use incidentd_domain::timers;
use incidentd_proto::v1 as pb;
use tonic::Status;

pub fn ts(t: d::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.0.div_euclid(1000),
        nanos: (t.0.rem_euclid(1000) * 1_000_000) as i32,
    }
}

fn ots(t: Option<d::Timestamp>) -> Option<prost_types::Timestamp> {
    t.map(ts)
}

pub fn severity(s: d::Severity) -> pb::Severity {
    match s {
        d::Severity::Sev1 => pb::Severity::Sev1,
        d::Severity::Sev2 => pb::Severity::Sev2,
        d::Severity::Sev3 => pb::Severity::Sev3,
        d::Severity::Sev4 => pb::Severity::Sev4,
    }
}

/// `None` for unspecified; an error for a number outside the enum.
pub fn severity_in(field: &str, v: i32) -> Result<Option<d::Severity>, Status> {
    match pb::Severity::try_from(v) {
        Ok(pb::Severity::Unspecified) => Ok(None),
        Ok(pb::Severity::Sev1) => Ok(Some(d::Severity::Sev1)),
        Ok(pb::Severity::Sev2) => Ok(Some(d::Severity::Sev2)),
        Ok(pb::Severity::Sev3) => Ok(Some(d::Severity::Sev3)),
        Ok(pb::Severity::Sev4) => Ok(Some(d::Severity::Sev4)),
        Err(_) => Err(invalid(field, format!("unknown severity {v}"))),
    }
}

pub fn required_severity(field: &str, v: i32) -> Result<d::Severity, Status> {
    severity_in(field, v)?.ok_or_else(|| invalid(field, "is required (SEV1..SEV4)"))
}

pub fn status(s: d::Status) -> pb::Status {
    match s {
        d::Status::Investigating => pb::Status::Investigating,
        d::Status::Identified => pb::Status::Identified,
        d::Status::Mitigating => pb::Status::Mitigating,
        d::Status::Resolved => pb::Status::Resolved,
    }
}

pub fn status_in(field: &str, v: i32) -> Result<Option<d::Status>, Status> {
    match pb::Status::try_from(v) {
        Ok(pb::Status::Unspecified) => Ok(None),
        Ok(pb::Status::Investigating) => Ok(Some(d::Status::Investigating)),
        Ok(pb::Status::Identified) => Ok(Some(d::Status::Identified)),
        Ok(pb::Status::Mitigating) => Ok(Some(d::Status::Mitigating)),
        Ok(pb::Status::Resolved) => Ok(Some(d::Status::Resolved)),
        Err(_) => Err(invalid(field, format!("unknown status {v}"))),
    }
}

pub fn role_in(v: i32) -> Result<d::Role, Status> {
    match pb::Role::try_from(v) {
        Ok(pb::Role::Commander) => Ok(d::Role::Commander),
        Ok(pb::Role::CommsLead) => Ok(d::Role::CommsLead),
        Ok(pb::Role::Sme) => Ok(d::Role::Sme),
        Ok(pb::Role::Unspecified) => Err(invalid("role", "is required (COMMANDER, COMMS_LEAD or SME)")),
        Err(_) => Err(invalid("role", format!("unknown role {v}"))),
    }
}

pub fn update_kind(k: d::UpdateKind) -> pb::UpdateKind {
    match k {
        d::UpdateKind::Internal => pb::UpdateKind::Internal,
        d::UpdateKind::Customer => pb::UpdateKind::Customer,
        d::UpdateKind::Executive => pb::UpdateKind::Executive,
    }
}

pub fn update_kind_in(v: i32) -> Result<d::UpdateKind, Status> {
    match pb::UpdateKind::try_from(v) {
        Ok(pb::UpdateKind::Internal) => Ok(d::UpdateKind::Internal),
        Ok(pb::UpdateKind::Customer) => Ok(d::UpdateKind::Customer),
        Ok(pb::UpdateKind::Executive) => Ok(d::UpdateKind::Executive),
        Ok(pb::UpdateKind::Unspecified) => Err(invalid("kind", "is required (INTERNAL, CUSTOMER or EXECUTIVE)")),
        Err(_) => Err(invalid("kind", format!("unknown update kind {v}"))),
    }
}

pub fn data_loss(x: d::DataLoss) -> pb::DataLoss {
    match x {
        d::DataLoss::None => pb::DataLoss::None,
        d::DataLoss::Possible => pb::DataLoss::Possible,
        d::DataLoss::Confirmed => pb::DataLoss::Confirmed,
    }
}

pub fn data_loss_in(v: i32) -> Result<Option<d::DataLoss>, Status> {
    match pb::DataLoss::try_from(v) {
        Ok(pb::DataLoss::Unspecified) => Ok(None),
        Ok(pb::DataLoss::None) => Ok(Some(d::DataLoss::None)),
        Ok(pb::DataLoss::Possible) => Ok(Some(d::DataLoss::Possible)),
        Ok(pb::DataLoss::Confirmed) => Ok(Some(d::DataLoss::Confirmed)),
        Err(_) => Err(invalid("data_loss", format!("unknown data loss value {v}"))),
    }
}

pub fn entry_kind(k: d::EntryKind) -> pb::EntryKind {
    match k {
        d::EntryKind::Note => pb::EntryKind::Note,
        d::EntryKind::Finding => pb::EntryKind::Finding,
        d::EntryKind::Action => pb::EntryKind::Action,
        d::EntryKind::Decision => pb::EntryKind::Decision,
        d::EntryKind::System => pb::EntryKind::System,
    }
}

pub fn entry_kind_in(v: i32) -> Result<d::EntryKind, Status> {
    match pb::EntryKind::try_from(v) {
        Ok(pb::EntryKind::Note) => Ok(d::EntryKind::Note),
        Ok(pb::EntryKind::Finding) => Ok(d::EntryKind::Finding),
        Ok(pb::EntryKind::Action) => Ok(d::EntryKind::Action),
        Ok(pb::EntryKind::Decision) => Ok(d::EntryKind::Decision),
        Ok(pb::EntryKind::System) => Err(invalid("kind", "SYSTEM entries are written by incidentd itself")),
        Ok(pb::EntryKind::Unspecified) => Err(invalid("kind", "is required (NOTE, FINDING, ACTION or DECISION)")),
        Err(_) => Err(invalid("kind", format!("unknown entry kind {v}"))),
    }
}

pub fn incident(s: &d::Incident, policy: &d::Policy) -> pb::Incident {
    pb::Incident {
        id: s.id.to_string(),
        number: s.number,
        reference: s.reference(),
        title: s.title.clone(),
        team: s.team.clone(),
        services: s.services.clone(),
        severity: severity(s.severity) as i32,
        status: status(s.status) as i32,
        drill: s.drill,
        roster: Some(pb::Roster {
            commander: s.roster.commander.clone().unwrap_or_default(),
            comms_lead: s.roster.comms_lead.clone().unwrap_or_default(),
            smes: s
                .roster
                .smes
                .iter()
                .map(|m| pb::Sme {
                    person: m.person.clone(),
                    track: m.track.clone(),
                    assigned_at: Some(ts(m.assigned_at)),
                    last_report_at: ots(m.last_report_at),
                })
                .collect(),
        }),
        impact: s.impact.clone(),
        customer_impact_percent: s.customer_impact_percent.unwrap_or(0),
        customer_impact_known: s.customer_impact_percent.is_some(),
        data_loss: data_loss(s.data_loss) as i32,
        regulatory: s.regulatory,
        declared_at: Some(ts(s.declared_at)),
        acknowledged_at: ots(s.acknowledged_at),
        acknowledged_by: s.acknowledged_by.clone().unwrap_or_default(),
        mitigated_at: ots(s.mitigated_at),
        resolved_at: ots(s.resolved_at),
        next_update_due: ots(policy.next_update_due(s)),
        checklist: s
            .checklist
            .iter()
            .map(|c| pb::ChecklistItem {
                id: c.item.id().to_string(),
                title: c.item.title().to_string(),
                due_at: Some(ts(timers::checklist_due(s, policy, c.item))),
                done_at: ots(c.done_at),
                missed: c.missed_at.is_some(),
                missed_at: ots(c.missed_at),
            })
            .collect(),
        escalations: s
            .escalations
            .iter()
            .map(|e| pb::Escalation {
                rule: e.rule.clone(),
                target: e.target.clone(),
                fired_at: Some(ts(e.fired_at)),
                message: e.message.clone().unwrap_or_default(),
            })
            .collect(),
        alerts: s.alerts.iter().map(alert).collect(),
        version: s.version,
        summary: s.summary.clone(),
        updated_at: Some(ts(s.last_event_at)),
        review_due_at: ots(timers::review_due(s, policy)),
        stakeholder_notice_due: ots(timers::stakeholder_notice_due(s, policy)),
        stakeholders_notified_at: ots(s.stakeholders_notified_at),
        next_deadline: ots(timers::next_deadline(s, policy)),
    }
}

pub fn alert(a: &d::Alert) -> pb::Alert {
    pb::Alert {
        key: a.fingerprint.clone(),
        status: a.status.as_str().to_string(),
        labels: a.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        started_at: Some(ts(a.started_at)),
        ended_at: ots(a.ended_at),
        summary: a.summary.clone(),
        source: a.source.clone(),
    }
}

pub fn entry(id: &d::IncidentId, e: &d::TimelineEntry) -> pb::TimelineEntry {
    pb::TimelineEntry {
        incident_id: id.to_string(),
        seq: e.seq,
        version: e.version,
        at: Some(ts(e.at)),
        kind: entry_kind(e.kind) as i32,
        author: e.author.clone().unwrap_or_default(),
        text: e.text.clone(),
    }
}

pub fn update(id: &d::IncidentId, u: &d::Update) -> pb::Update {
    let f = &u.fields;
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    pb::Update {
        incident_id: id.to_string(),
        seq: u.seq,
        kind: update_kind(u.kind) as i32,
        at: Some(ts(u.at)),
        author: s(&u.author),
        status_text: s(&f.status_text),
        impact: s(&f.impact),
        current_theory: s(&f.current_theory),
        next_steps: s(&f.next_steps),
        next_update_in: f.next_update_in_secs.map(|secs| prost_types::Duration {
            seconds: secs as i64,
            nanos: 0,
        }),
        customer_symptom: s(&f.customer_symptom),
        business_impact: s(&f.business_impact),
        estimated_resolution: s(&f.estimated_resolution),
        next_update_at: ots(u.next_update_at),
        rendered: u.rendered.clone(),
        version: u.version,
    }
}

pub fn event(incident: &d::IncidentId, number: u64, version: u64, e: &d::Event, json: &str) -> pb::IncidentEvent {
    pb::IncidentEvent {
        incident_id: incident.to_string(),
        version,
        at: Some(ts(e.at)),
        by: e.by.clone().unwrap_or_default(),
        r#type: e.kind.name().to_string(),
        json: json.to_string(),
        number,
    }
}

/// Parses a required incident id.
pub fn incident_id(field: &str, s: &str) -> Result<d::IncidentId, Status> {
    if s.is_empty() {
        return Err(invalid(field, "is required"));
    }
    d::IncidentId::parse(s).ok_or_else(|| {
        invalid(
            field,
            format!("{:?} is not an incident id (a 26-character ULID)", truncate(s)),
        )
    })
}

/// Optional string: empty means absent.
pub fn opt(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

/// Request ids: optional, at most 128 bytes.
pub fn request_id(s: String) -> Result<Option<String>, Status> {
    if s.len() > 128 {
        return Err(invalid("request_id", "at most 128 bytes"));
    }
    Ok(opt(s))
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}
