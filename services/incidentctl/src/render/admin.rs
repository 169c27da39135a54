//! Human output of the admin commands: API tokens, the audit log, a config
//! reload.

use super::{Style, dash, now, relative, table, timestamp, when};
use incidentd_domain::Timestamp;
use incidentd_proto::v1 as pb;
use std::collections::HashMap;
use std::fmt::Write;

/// `person bob`, `integration alertmanager`, or `-` (a revoked token).
fn principal(t: &pb::Token) -> String {
    match (t.person.as_str(), t.integration.as_str()) {
        ("", "") => "-".into(),
        ("", i) => format!("integration {i}"),
        (p, _) => format!("person {p}"),
    }
}

fn by(who: &str) -> String {
    if who.is_empty() {
        String::new()
    } else {
        format!(" by {who}")
    }
}

/// `5m ago by dave`, or `-` when there is no time.
fn ago_by(t: &Option<prost_types::Timestamp>, who: &str, now: Timestamp) -> String {
    match t {
        Some(t) => format!("{}{}", relative(timestamp(t), now), by(who)),
        None => "-".into(),
    }
}

/// One token: who it acts as, its scopes and teams, where it comes from.
pub fn token(t: &pb::Token, style: Style) -> String {
    let now = now();
    let mut out = format!("{}  {}\n", style.bold(&format!("token {}", t.id)), principal(t));
    let mut kv = |k: &str, v: String| {
        let _ = writeln!(out, "  {:<14}{v}", style.dim(k));
    };
    kv("scopes", dash(&t.scopes.join(", ")).to_string());
    kv("teams", dash(&t.teams.join(", ")).to_string());
    kv("source", dash(&t.source).to_string());
    if t.created_at.is_some() {
        kv("created", format!("{}{}", when(&t.created_at, now), by(&t.created_by)));
    }
    if t.revoked {
        kv("revoked", format!("{}{}", when(&t.revoked_at, now), by(&t.revoked_by)));
    }
    out
}

/// A new token and its secret.
pub fn created_token(r: &pb::CreateTokenResponse, style: Style) -> String {
    let mut out = r.token.as_ref().map(|t| token(t, style)).unwrap_or_default();
    let _ = writeln!(out, "  {:<14}{}", style.dim("secret"), style.bold(&r.secret));
    out
}

pub fn revoked_token(t: &pb::Token, style: Style) -> String {
    format!(
        "{} revoked{}: refused from the next request on\n",
        style.bold(&format!("token {}", t.id)),
        by(&t.revoked_by)
    )
}

pub fn tokens(list: &[pb::Token], style: Style) -> String {
    if list.is_empty() {
        return "no tokens\n".into();
    }
    let now = now();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|t| {
            let revoked = if t.revoked {
                style.paint("1;31", &ago_by(&t.revoked_at, &t.revoked_by, now))
            } else {
                "-".into()
            };
            vec![
                style.bold(&t.id),
                principal(t),
                dash(&t.scopes.join(",")).to_string(),
                dash(&t.teams.join(",")).to_string(),
                dash(&t.source).to_string(),
                ago_by(&t.created_at, &t.created_by, now),
                revoked,
            ]
        })
        .collect();
    table(
        &["TOKEN", "FOR", "SCOPES", "TEAMS", "SOURCE", "CREATED", "REVOKED"],
        &rows,
        style,
    )
}

/// `/incident.v1.IncidentService/SetSeverity` → `SetSeverity`; HTTP paths stay whole.
pub fn method_name(path: &str) -> &str {
    match path.strip_prefix("/incident.v1.") {
        Some(rest) => rest.rsplit('/').next().unwrap_or(rest),
        None => path,
    }
}

fn code(c: &str, style: Style) -> String {
    let colour = match c {
        "OK" => "32",
        "UNAUTHENTICATED" | "PERMISSION_DENIED" => "1;31",
        _ => "33",
    };
    style.paint(colour, c)
}

/// Audit records; `references` maps incident ids to `INC-42`.
pub fn audit(records: &[pb::AuditRecord], references: &HashMap<String, String>, style: Style) -> String {
    if records.is_empty() {
        return "no audit records\n".into();
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let incident = references.get(&r.incident_id).unwrap_or(&r.incident_id);
            vec![
                r.at.as_ref().map_or("-".into(), |t| timestamp(t).to_string()),
                dash(&r.token_id).to_string(),
                dash(&r.actor).to_string(),
                method_name(&r.method).to_string(),
                dash(incident).to_string(),
                code(&r.code, style),
                r.message.clone(),
            ]
        })
        .collect();
    table(
        &["AT", "TOKEN", "PERSON", "METHOD", "INCIDENT", "CODE", "MESSAGE"],
        &rows,
        style,
    )
}

pub fn reloaded(r: &pb::ReloadConfigResponse, style: Style) -> String {
    let mut out = format!("{}  {}\n", style.bold("config reloaded"), r.org);
    let mut kv = |k: &str, v: String| {
        let _ = writeln!(out, "  {:<16}{v}", style.dim(k));
    };
    kv("teams", r.teams.to_string());
    kv("people", r.people.to_string());
    kv("tokens", r.tokens.to_string());
    if r.restart_needed.is_empty() {
        kv("restart needed", "no".into());
    }
    for what in &r.restart_needed {
        kv("restart needed", what.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_short() {
        assert_eq!(method_name("/incident.v1.IncidentService/SetSeverity"), "SetSeverity");
        assert_eq!(method_name("/incident.v1.AdminService/CreateToken"), "CreateToken");
        assert_eq!(method_name("/v2/enqueue"), "/v2/enqueue");
    }

    #[test]
    fn a_token_list_names_principal_and_revocation() {
        let live = pb::Token {
            id: "bob-cli".into(),
            person: "bob".into(),
            scopes: vec!["read".into(), "respond".into()],
            teams: vec!["payments".into()],
            source: "api".into(),
            created_at: Some(prost_types::Timestamp::default()),
            created_by: "dave".into(),
            ..Default::default()
        };
        let gone = pb::Token {
            id: "old".into(),
            source: "config".into(),
            revoked: true,
            revoked_at: Some(prost_types::Timestamp::default()),
            revoked_by: "dave".into(),
            ..Default::default()
        };
        let t = tokens(&[live, gone], Style { on: false });
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("TOKEN"), "{t}");
        assert!(
            lines[1].contains("person bob") && lines[1].contains("read,respond") && lines[1].contains("ago by dave"),
            "{t}"
        );
        assert!(lines[1].ends_with(" -"), "not revoked: {t}");
        assert!(lines[2].contains("config") && lines[2].ends_with("ago by dave"), "{t}");
    }
}
