//! Administration over AdminService (an `admin` token): API tokens
//! (`token create|list|revoke`), the audit log (`audit`), config reload
//! (`reload`).

use super::{Out, paged};
use crate::cli::{self, TokenCmd};
use crate::client::{Client, unary};
use crate::fail::Failure;
use crate::{json, render, when};
use incidentd_proto::v1 as pb;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// The request fields of `CreateToken` that flags set.
const CREATE_FLAGS: [(&str, &str); 4] = [
    ("person", "--person"),
    ("integration", "--integration"),
    ("scopes", "--scope"),
    ("teams", "--team"),
];

pub async fn token(c: &mut Client, cmd: TokenCmd, out: Out) -> Result<(), Failure> {
    match cmd {
        TokenCmd::Create(t) => {
            let req = pb::CreateTokenRequest {
                id: t.id,
                person: t.person.unwrap_or_default(),
                integration: t.integration.unwrap_or_default(),
                scopes: t.scopes.iter().map(|s| s.name().to_string()).collect(),
                teams: t.teams,
            };
            let created = c
                .admin
                .create_token(unary(req))
                .await
                .map_err(|s| c.fail_with(s, &CREATE_FLAGS))?
                .into_inner();
            out.print(json::created_token(&created), || {
                render::created_token(&created, out.style)
            });
            // On stderr in every mode: stdout may go to a script or a secret store.
            eprintln!("warning: the secret will not be shown again: store it now (incidentd keeps only its SHA-256)");
        }
        TokenCmd::List => {
            let list = call!(c.admin.list_tokens(pb::ListTokensRequest {}));
            out.print(Value::Array(list.tokens.iter().map(json::token).collect()), || {
                render::tokens(&list.tokens, out.style)
            });
        }
        TokenCmd::Revoke { id } => {
            let t = call!(c.admin.revoke_token(pb::RevokeTokenRequest { id }));
            out.print(json::token(&t), || render::revoked_token(&t, out.style));
        }
    }
    Ok(())
}

pub async fn audit(c: &mut Client, a: cli::Audit, out: Out) -> Result<(), Failure> {
    let incident_id = match &a.incident {
        Some(name) => c.resolve_id(name).await?,
        None => String::new(),
    };
    let now = render::now();
    let (records, more) = paged(a.limit, async |page_size, page_token| {
        let req = pb::ListAuditRecordsRequest {
            since: a.since.map(|w| when::proto(w.back(now))),
            until: a.until.map(|w| when::proto(w.until(now))),
            actor: a.person.clone().unwrap_or_default(),
            token_id: a.token_id.clone().unwrap_or_default(),
            incident_id: incident_id.clone(),
            method: a.method.clone().unwrap_or_default(),
            denied_only: a.denied,
            page_size,
            page_token,
        };
        let page = call!(c.admin.list_audit_records(req));
        Ok((page.records, page.next_page_token))
    })
    .await?;
    let references = references(c, &records).await;
    out.print(
        Value::Array(
            records
                .iter()
                .map(|r| json::audit_record(r, references.get(&r.incident_id).map(String::as_str)))
                .collect(),
        ),
        || render::audit(&records, &references, out.style),
    );
    if more {
        eprintln!(
            "more records follow these {}: narrow with --since or raise --limit",
            records.len()
        );
    }
    Ok(())
}

/// The `INC-42` of each incident the records name; an incident that cannot
/// be read (gone, or a mistyped id in a denied call) is left out.
async fn references(c: &mut Client, records: &[pb::AuditRecord]) -> HashMap<String, String> {
    let ids: BTreeSet<&str> = records
        .iter()
        .map(|r| r.incident_id.as_str())
        .filter(|id| !id.is_empty())
        .collect();
    let mut refs = HashMap::new();
    for id in ids {
        let req = pb::GetIncidentRequest { id: id.to_string() };
        if let Ok(i) = c.api.get_incident(unary(req)).await {
            refs.insert(id.to_string(), i.into_inner().reference);
        }
    }
    refs
}

pub async fn reload(c: &mut Client, out: Out) -> Result<(), Failure> {
    let r = call!(c.admin.reload_config(pb::ReloadConfigRequest {}));
    out.print(json::reloaded(&r), || render::reloaded(&r, out.style));
    Ok(())
}
