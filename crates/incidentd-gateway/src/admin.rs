//! `AdminService` (issue 8): API tokens, the audit log, config reload. The
//! layer lets only `admin` tokens (or `--dev`) reach these methods.

use crate::audit::AuditQuery;
use crate::auth::{Auth, Caller, NewToken, TokenEntry};
use crate::convert::ts;
use crate::error::invalid;
use crate::grpc::{observe, page_size};
use crate::metrics::RpcMetrics;
use incidentd_domain::{self as d, Teams};
use incidentd_proto::v1 as pb;
use incidentd_proto::v1::admin_service_server::AdminService;
use std::pin::Pin;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// What a config reload reports.
#[derive(Debug, Clone, Default)]
pub struct Reloaded {
    pub org: String,
    pub teams: u32,
    pub people: u32,
    pub tokens: u32,
    pub restart_needed: Vec<String>,
}

/// Reloads the org config (the server's; SIGHUP runs the same function).
pub type Reloader = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<Reloaded, String>> + Send>> + Send + Sync>;

pub struct AdminApi {
    auth: Auth,
    metrics: Arc<RpcMetrics>,
    reload: Option<Reloader>,
}

impl AdminApi {
    pub fn new(auth: Auth, metrics: Arc<RpcMetrics>, reload: Option<Reloader>) -> Self {
        AdminApi { auth, metrics, reload }
    }
}

/// Who made an admin change, for the token log.
fn who(caller: &Caller) -> String {
    match caller.grant() {
        Some(g) => g.person.clone().unwrap_or_else(|| g.token.clone()),
        None => "dev".into(),
    }
}

fn token_pb(e: &TokenEntry, auth: &Auth) -> pb::Token {
    let g = &e.grant;
    let integration = auth.integration_of(&g.token).unwrap_or_default();
    pb::Token {
        id: g.token.clone(),
        person: g.person.clone().unwrap_or_default(),
        integration,
        scopes: g.scopes.iter().map(|s| s.as_str().to_string()).collect(),
        teams: match &g.teams {
            Teams::All => vec!["*".into()],
            Teams::Only(ts) => ts.clone(),
        },
        source: e.source.into(),
        created_at: e.created.as_ref().map(|(at, _)| ts(d::Timestamp(*at))),
        created_by: e.created.as_ref().map(|(_, by)| by.clone()).unwrap_or_default(),
        ..Default::default()
    }
}

fn millis(field: &str, t: Option<prost_types::Timestamp>) -> Result<Option<i64>, Status> {
    match t {
        None => Ok(None),
        Some(t) if t.seconds < 0 || !(0..1_000_000_000).contains(&t.nanos) => {
            Err(invalid(field, "is not a valid timestamp"))
        }
        Some(t) => Ok(Some(t.seconds.saturating_mul(1000) + i64::from(t.nanos) / 1_000_000)),
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn create_token(
        &self,
        req: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        observe(&self.metrics, "CreateToken", async {
            let by = who(&caller?);
            let (secret, entry) = self
                .auth
                .create_token(
                    NewToken {
                        id: r.id,
                        person: r.person,
                        integration: r.integration,
                        scopes: r.scopes,
                        teams: r.teams,
                    },
                    &by,
                )
                .await?;
            Ok(pb::CreateTokenResponse {
                token: Some(token_pb(&entry, &self.auth)),
                secret,
            })
        })
        .await
    }

    async fn list_tokens(
        &self,
        req: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        let caller = Caller::of(&req);
        observe(&self.metrics, "ListTokens", async {
            caller?;
            let (live, revoked) = self.auth.tokens();
            let mut tokens: Vec<pb::Token> = live.iter().map(|e| token_pb(e, &self.auth)).collect();
            tokens.extend(revoked.into_iter().map(|r| pb::Token {
                revoked: true,
                revoked_at: Some(ts(d::Timestamp(r.at_ms))),
                revoked_by: r.by,
                ..token_pb(&r.token, &self.auth)
            }));
            Ok(pb::ListTokensResponse { tokens })
        })
        .await
    }

    async fn revoke_token(&self, req: Request<pb::RevokeTokenRequest>) -> Result<Response<pb::Token>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        observe(&self.metrics, "RevokeToken", async {
            let by = who(&caller?);
            if r.id.trim().is_empty() {
                return Err(invalid("id", "is required"));
            }
            self.auth.revoke_token(r.id.trim(), &by).await?;
            Ok(pb::Token {
                id: r.id.trim().to_string(),
                revoked: true,
                revoked_by: by,
                ..Default::default()
            })
        })
        .await
    }

    async fn list_audit_records(
        &self,
        req: Request<pb::ListAuditRecordsRequest>,
    ) -> Result<Response<pb::ListAuditRecordsResponse>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        observe(&self.metrics, "ListAuditRecords", async {
            caller?;
            let after = match r.page_token.as_str() {
                "" => 0,
                t => t
                    .parse()
                    .map_err(|_| invalid("page_token", "not a token from a previous page"))?,
            };
            let q = AuditQuery {
                since_ms: millis("since", r.since)?,
                until_ms: millis("until", r.until)?,
                actor: r.actor,
                token: r.token_id,
                incident: r.incident_id,
                method: r.method,
                denied_only: r.denied_only,
                after,
                limit: page_size(r.page_size, 100)?,
            };
            let page = self
                .auth
                .audit()
                .query(q)
                .await
                .map_err(|e| Status::unavailable(format!("cannot read the audit log: {e}")))?;
            Ok(pb::ListAuditRecordsResponse {
                records: page
                    .records
                    .into_iter()
                    .map(|a| pb::AuditRecord {
                        at: Some(ts(d::Timestamp(a.at_ms))),
                        token_id: a.token,
                        actor: a.actor,
                        method: a.method,
                        incident_id: a.incident,
                        code: a.code,
                        message: a.message,
                    })
                    .collect(),
                next_page_token: page.next.map(|n| n.to_string()).unwrap_or_default(),
            })
        })
        .await
    }

    async fn reload_config(
        &self,
        req: Request<pb::ReloadConfigRequest>,
    ) -> Result<Response<pb::ReloadConfigResponse>, Status> {
        let caller = Caller::of(&req);
        observe(&self.metrics, "ReloadConfig", async {
            caller?;
            let reload = self
                .reload
                .as_ref()
                .ok_or_else(|| Status::failed_precondition("config: this server was started without --config"))?;
            let r = reload()
                .await
                .map_err(|e| Status::invalid_argument(format!("config: not reloaded, the old config stays: {e}")))?;
            Ok(pb::ReloadConfigResponse {
                org: r.org,
                teams: r.teams,
                people: r.people,
                tokens: r.tokens,
                restart_needed: r.restart_needed,
            })
        })
        .await
    }
}
