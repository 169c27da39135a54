//! Authentication, the RPC → scope table, back-pressure and the audit hook
//! (issue 8): one tower layer in front of both tonic and axum, so the gRPC
//! and HTTP edges share one implementation.
//!
//! A request passes `AuthLayer` as follows: the path gives its `Rule`
//! (public, authenticating itself — the alert edges, whose secrets are the
//! integrations' own — or a scope); an `authorization: Bearer <token>`
//! header is looked up by SHA-256 (tokens are never stored in clear); the
//! token's scope is checked, its bucket charged (per-token rate limit), and a
//! slot of the global in-flight limit taken; the `Caller` goes into the
//! request's extensions for the handlers, which check teams (reads here,
//! writes in the incident actor against the state it owns, see
//! `incidentd_domain::access`). When the response is ready the layer records
//! mutating calls and every denial in the audit log.
//!
//! `--dev` turns token checks off (the server then listens on loopback only);
//! the acting person comes from the request's `by` field in that mode.

use crate::audit::{Audit, AuditRecord};
use crate::convert::opt;
use incidentd_config::{AccessConfig, OrgConfig, Principal, TeamAccess, TokenConfig};
use incidentd_domain::{Access, Grant, Scope, Scopes, Teams};
use incidentd_store::outbox::OutboxLog;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tonic::{Code, Status};

/// How a path is guarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Health, reflection, status page, metrics: no token.
    Public,
    /// The alert edges: they authenticate with integration secrets (bearer
    /// or PagerDuty `routing_key` in the body) themselves.
    SelfAuth,
    /// A token with this scope.
    Scope(Scope),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub gate: Gate,
    /// Changes state: audited (reads are audited only when denied).
    pub mutating: bool,
}

const fn read() -> Rule {
    Rule {
        gate: Gate::Scope(Scope::Read),
        mutating: false,
    }
}
const fn write(scope: Scope) -> Rule {
    Rule {
        gate: Gate::Scope(scope),
        mutating: true,
    }
}
const fn admin_read() -> Rule {
    Rule {
        gate: Gate::Scope(Scope::Admin),
        mutating: false,
    }
}

/// Every RPC of `proto/incident/v1` and the scope it needs. A method missing
/// here is refused (a test checks the table against the descriptor set).
pub const RPC_RULES: &[(&str, Rule)] = &[
    ("/incident.v1.IncidentService/DeclareIncident", write(Scope::Respond)),
    ("/incident.v1.IncidentService/GetIncident", read()),
    ("/incident.v1.IncidentService/ListIncidents", read()),
    (
        "/incident.v1.IncidentService/AcknowledgeIncident",
        write(Scope::Respond),
    ),
    ("/incident.v1.IncidentService/SetSeverity", write(Scope::Command)),
    ("/incident.v1.IncidentService/AssignRole", write(Scope::Command)),
    ("/incident.v1.IncidentService/UnassignRole", write(Scope::Command)),
    ("/incident.v1.IncidentService/SetStatus", write(Scope::Command)),
    ("/incident.v1.IncidentService/SetImpact", write(Scope::Command)),
    ("/incident.v1.IncidentService/AddTimelineEntry", write(Scope::Respond)),
    ("/incident.v1.IncidentService/PostUpdate", write(Scope::Respond)),
    ("/incident.v1.IncidentService/ResolveIncident", write(Scope::Command)),
    ("/incident.v1.IncidentService/GetTimeline", read()),
    ("/incident.v1.IncidentService/WatchIncident", read()),
    ("/incident.v1.IncidentService/WatchIncidents", read()),
    (
        "/incident.v1.AlertService/IngestAlert",
        Rule {
            gate: Gate::SelfAuth,
            mutating: true,
        },
    ),
    (
        "/incident.v1.AlertService/IngestAlerts",
        Rule {
            gate: Gate::SelfAuth,
            mutating: true,
        },
    ),
    ("/incident.v1.ReviewService/GetReview", read()),
    ("/incident.v1.ReviewService/UpdateReview", write(Scope::Respond)),
    ("/incident.v1.ReviewService/AddActionItem", write(Scope::Respond)),
    ("/incident.v1.ReviewService/CompleteActionItem", write(Scope::Respond)),
    ("/incident.v1.ReviewService/DropActionItem", write(Scope::Respond)),
    ("/incident.v1.ReviewService/ListActionItems", read()),
    ("/incident.v1.ReviewService/GetReport", read()),
    ("/incident.v1.DrillService/ListScenarios", read()),
    ("/incident.v1.DrillService/StartDrill", write(Scope::Command)),
    ("/incident.v1.DrillService/GetRoleRotation", read()),
    ("/incident.v1.DrillService/ScheduleDrill", write(Scope::Command)),
    ("/incident.v1.DrillService/ListDrills", read()),
    ("/incident.v1.DrillService/CancelDrill", write(Scope::Command)),
    ("/incident.v1.NotificationService/ListDeliveries", read()),
    ("/incident.v1.NotificationService/RetryDelivery", write(Scope::Admin)),
    ("/incident.v1.StatusPageService/ListComponents", read()),
    (
        "/incident.v1.StatusPageService/SetComponentStatus",
        write(Scope::Command),
    ),
    (
        "/incident.v1.StatusPageService/ScheduleMaintenance",
        write(Scope::Admin),
    ),
    ("/incident.v1.StatusPageService/UpdateMaintenance", write(Scope::Admin)),
    ("/incident.v1.StatusPageService/ListMaintenances", read()),
    ("/incident.v1.AdminService/CreateToken", write(Scope::Admin)),
    ("/incident.v1.AdminService/ListTokens", admin_read()),
    ("/incident.v1.AdminService/RevokeToken", write(Scope::Admin)),
    ("/incident.v1.AdminService/ListAuditRecords", admin_read()),
    ("/incident.v1.AdminService/ReloadConfig", write(Scope::Admin)),
];

/// The rule of a request path (gRPC `/package.Service/Method` or an HTTP path).
pub fn rule(path: &str) -> Option<Rule> {
    const PUBLIC: Rule = Rule {
        gate: Gate::Public,
        mutating: false,
    };
    if let Some(r) = RPC_RULES.iter().find(|(p, _)| *p == path) {
        return Some(r.1);
    }
    if path.starts_with("/grpc.health.v1.") || path.starts_with("/grpc.reflection.") {
        return Some(PUBLIC);
    }
    if path.starts_with("/incident.v1.") {
        return None;
    }
    match path {
        "/v1/integrations/alertmanager" | "/v2/enqueue" => Some(Rule {
            gate: Gate::SelfAuth,
            mutating: true,
        }),
        // Everything else over HTTP is public: health, readiness, metrics, the status page.
        _ => Some(PUBLIC),
    }
}

/// Who is calling, as the handlers see it (request extension set by the layer).
#[derive(Debug, Clone)]
pub struct Caller {
    /// `None`: `--dev` (no tokens) or a self-authenticating edge.
    grant: Option<Arc<Grant>>,
    read_across_teams: bool,
}

impl Caller {
    /// `--dev`: everything allowed, the acting person from `by`.
    pub fn dev() -> Caller {
        Caller {
            grant: None,
            read_across_teams: true,
        }
    }

    /// The caller of a request; a request that did not pass the layer acts as nobody.
    pub fn of<T>(req: &tonic::Request<T>) -> Result<Caller, Status> {
        req.extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| Status::unauthenticated("authorization: the request was not authenticated"))
    }

    pub fn grant(&self) -> Option<&Arc<Grant>> {
        self.grant.as_ref()
    }

    /// What commands of this caller may do (checked by the incident actor).
    pub fn access(&self) -> Access {
        match &self.grant {
            None => Access::Unrestricted,
            Some(g) => Access::Limited(g.clone()),
        }
    }

    /// The acting person: the token's person (a `by` naming someone else is
    /// refused: it cannot be forged), or `by` itself in `--dev`.
    pub fn acting(&self, by: String) -> Result<Option<String>, Status> {
        self.acting_field("by", by)
    }

    /// `acting` for a request whose acting-person field has another name (`author`).
    pub fn acting_field(&self, field: &str, by: String) -> Result<Option<String>, Status> {
        let Some(g) = &self.grant else { return Ok(opt(by)) };
        match (&g.person, by.trim()) {
            (Some(p), "") => Ok(Some(p.clone())),
            (Some(p), b) if b == p => Ok(Some(p.clone())),
            (Some(p), b) => Err(Status::permission_denied(format!(
                "{field}: token {} acts as {p}; it cannot act as {b}",
                g.token
            ))),
            (None, _) => Err(Status::permission_denied(format!(
                "{field}: token {} belongs to an integration, not a person",
                g.token
            ))),
        }
    }

    /// Reading `team`'s incidents (own teams, or any when the org reads across teams).
    pub fn may_read(&self, team: &str) -> Result<(), Status> {
        match &self.grant {
            None => Ok(()),
            Some(g) => g
                .may_read(team, self.read_across_teams)
                .map_err(crate::error::domain_status),
        }
    }

    /// Acting on `team` (team-bound calls that are not incident commands,
    /// e.g. scheduling a drill): the team must be the token's, and the scope held.
    pub fn may_act(&self, team: &str, scope: Scope) -> Result<(), Status> {
        match &self.grant {
            None => Ok(()),
            Some(g) if g.scopes.has(Scope::Admin) => g.require_team(team).map_err(crate::error::domain_status),
            Some(g) => g
                .require(scope)
                .and_then(|()| g.require_team(team))
                .map_err(crate::error::domain_status),
        }
    }

    /// The teams a list may show (`None`: all).
    pub fn readable_teams(&self) -> Option<Vec<String>> {
        match &self.grant {
            None => None,
            Some(_) if self.read_across_teams => None,
            Some(g) => match &g.teams {
                Teams::All => None,
                Teams::Only(ts) => Some(ts.clone()),
            },
        }
    }
}

/// A revoked token: what it was, when (ms since the epoch), by whom.
pub struct Revoked {
    pub token: Arc<TokenEntry>,
    pub at_ms: i64,
    pub by: String,
}

/// A token accepted by the server (from the config or created by an admin).
#[derive(Debug)]
pub struct TokenEntry {
    pub grant: Arc<Grant>,
    pub sha256: [u8; 32],
    /// `config` or `api`.
    pub source: &'static str,
    /// Creation time (API tokens) in ms since the epoch, and by whom.
    pub created: Option<(i64, String)>,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token created through the admin API, as stored in `tokens.log`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum TokenRecord {
    Create {
        id: String,
        sha256: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        person: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        integration: Option<String>,
        scopes: Vec<String>,
        /// `["*"]` for all.
        teams: Vec<String>,
        at_ms: i64,
        by: String,
    },
    Revoke {
        id: String,
        at_ms: i64,
        by: String,
    },
}

/// The API tokens and revocations folded from `tokens.log`.
#[derive(Debug, Default, Clone)]
struct ApiTokens {
    created: Vec<TokenRecord>,
    revoked: HashMap<String, (i64, String)>,
}

impl ApiTokens {
    fn apply(&mut self, r: TokenRecord) {
        match &r {
            TokenRecord::Create { .. } => self.created.push(r),
            TokenRecord::Revoke { id, at_ms, by } => {
                self.revoked.insert(id.clone(), (*at_ms, by.clone()));
            }
        }
    }
    /// Records that rebuild this state (revoked tokens keep their creation,
    /// so listings still describe them).
    fn compacted(&self) -> Vec<TokenRecord> {
        let mut out = self.created.clone();
        let mut revoked: Vec<(&String, &(i64, String))> = self.revoked.iter().collect();
        revoked.sort();
        out.extend(revoked.into_iter().map(|(id, (at_ms, by))| TokenRecord::Revoke {
            id: id.clone(),
            at_ms: *at_ms,
            by: by.clone(),
        }));
        out
    }
}

/// Everything a lookup needs, swapped whole on reload / token changes.
struct Table {
    by_digest: HashMap<[u8; 32], Arc<TokenEntry>>,
    access: AccessConfig,
    config: Arc<OrgConfig>,
}

/// Denials and throttles by code, for `/metrics`.
#[derive(Debug, Default)]
pub struct AuthMetrics {
    pub unauthenticated: AtomicU64,
    pub permission_denied: AtomicU64,
    pub resource_exhausted: AtomicU64,
}

impl AuthMetrics {
    fn count(&self, code: Code) {
        let c = match code {
            Code::Unauthenticated => &self.unauthenticated,
            Code::PermissionDenied => &self.permission_denied,
            Code::ResourceExhausted => &self.resource_exhausted,
            _ => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        out.push_str("# HELP incidentd_auth_denied_total Requests refused by authentication, authorisation or back-pressure.\n# TYPE incidentd_auth_denied_total counter\n");
        for (code, c) in [
            ("UNAUTHENTICATED", &self.unauthenticated),
            ("PERMISSION_DENIED", &self.permission_denied),
            ("RESOURCE_EXHAUSTED", &self.resource_exhausted),
        ] {
            let _ = writeln!(
                out,
                "incidentd_auth_denied_total{{code=\"{code}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
    }
}

struct Inner {
    dev: bool,
    table: RwLock<Arc<Table>>,
    api: Mutex<ApiTokens>,
    log: Option<OutboxLog>,
    audit: Audit,
    in_flight: RwLock<Arc<Semaphore>>,
    metrics: AuthMetrics,
}

/// The authenticator: token table, API tokens, limits, audit. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

/// Why a request was refused before reaching its handler.
#[derive(Debug, Clone)]
pub struct Denial {
    pub code: Code,
    pub message: String,
    /// Seconds to wait (`RESOURCE_EXHAUSTED`).
    pub retry_after: Option<u64>,
    /// The token's id when the token was known.
    pub token: Option<String>,
    pub actor: Option<String>,
}

impl Denial {
    fn new(code: Code, message: impl Into<String>) -> Denial {
        Denial {
            code,
            message: message.into(),
            retry_after: None,
            token: None,
            actor: None,
        }
    }

    /// As a gRPC status (the retry hint in `retry-after` metadata).
    pub fn status(&self) -> Status {
        let mut s = Status::new(self.code, self.message.clone());
        if let Some(secs) = self.retry_after
            && let Ok(v) = secs.to_string().parse()
        {
            s.metadata_mut().insert("retry-after", v);
        }
        s
    }
}

/// What `admit` hands back: the caller and the in-flight slot it holds.
pub struct Admitted {
    pub caller: Caller,
    pub token: Option<String>,
    pub actor: Option<String>,
    _slot: Option<OwnedSemaphorePermit>,
}

pub use crate::ingest::sha256;

/// Hex of a SHA-256 digest, as config files and `tokens.log` write it.
fn hex(digest: [u8; 32]) -> String {
    incidentd_config::Sha256Digest(digest).to_hex()
}

const TOKENS_FILE: &str = "tokens.log";

fn config_grant(t: &TokenConfig) -> Grant {
    Grant {
        token: t.id.clone(),
        person: match &t.principal {
            Principal::Person(p) => Some(p.clone()),
            Principal::Integration(_) => None,
        },
        scopes: Scopes::of(t.scopes.iter().filter_map(|s| Scope::parse(s.as_str()))),
        teams: match &t.teams {
            TeamAccess::All => Teams::All,
            TeamAccess::Only(ts) => Teams::Only(ts.clone()),
        },
    }
}

fn entry(
    grant: Grant,
    sha256: [u8; 32],
    source: &'static str,
    created: Option<(i64, String)>,
    burst: u32,
) -> TokenEntry {
    TokenEntry {
        grant: Arc::new(grant),
        sha256,
        source,
        created,
        bucket: Mutex::new(Bucket {
            tokens: f64::from(burst),
            at: Instant::now(),
        }),
    }
}

/// Every token the config and the token log define, revoked ones included.
fn all_entries(config: &OrgConfig, api: &ApiTokens) -> Vec<Arc<TokenEntry>> {
    let burst = config.access.burst_per_token;
    let mut out: Vec<Arc<TokenEntry>> = config
        .tokens
        .iter()
        .map(|t| Arc::new(entry(config_grant(t), t.sha256.0, "config", None, burst)))
        .collect();
    for r in &api.created {
        if let TokenRecord::Create {
            id,
            sha256,
            person,
            integration: _,
            scopes,
            teams,
            at_ms,
            by,
        } = r
        {
            let Some(incidentd_config::Sha256Digest(digest)) = incidentd_config::Sha256Digest::from_hex(sha256) else {
                continue;
            };
            if config.token(id).is_some() {
                continue;
            }
            let grant = Grant {
                token: id.clone(),
                person: person.clone(),
                scopes: Scopes::of(scopes.iter().filter_map(|s| Scope::parse(s))),
                teams: if teams.iter().any(|t| t == "*") {
                    Teams::All
                } else {
                    Teams::Only(teams.clone())
                },
            };
            out.push(Arc::new(entry(grant, digest, "api", Some((*at_ms, by.clone())), burst)));
        }
    }
    out
}

fn build_table(config: Arc<OrgConfig>, api: &ApiTokens) -> Table {
    let by_digest = all_entries(&config, api)
        .into_iter()
        .filter(|e| !api.revoked.contains_key(&e.grant.token))
        .map(|e| (e.sha256, e))
        .collect();
    Table {
        by_digest,
        access: config.access.clone(),
        config,
    }
}

/// A request to create an API token (AdminService `CreateToken`).
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    pub id: String,
    pub person: String,
    pub integration: String,
    pub scopes: Vec<String>,
    pub teams: Vec<String>,
}

impl Auth {
    /// Opens `tokens.log` and `audit.log` in `dir` (the store's directory,
    /// already locked by the store). Blocking.
    pub fn open(dir: &Path, config: Arc<OrgConfig>, dev: bool) -> Result<Auth, incidentd_store::StoreError> {
        let mut api = ApiTokens::default();
        let (log, recovery) = OutboxLog::open_named(dir, TOKENS_FILE, |records| {
            for r in records {
                if let Ok(r) = serde_json::from_slice::<TokenRecord>(r) {
                    api.apply(r);
                }
            }
            api.compacted()
                .iter()
                .filter_map(|r| serde_json::to_vec(r).ok())
                .collect()
        })?;
        if recovery.truncated_tail_bytes > 0 {
            tracing::warn!(bytes = recovery.truncated_tail_bytes, "tokens.log: cut a torn tail");
        }
        let audit = Audit::open(dir, config.access.audit_retention)?;
        Ok(Self::assemble(config, api, Some(log), audit, dev))
    }

    /// An authenticator without files (tests of the layer).
    pub fn in_memory(config: Arc<OrgConfig>, dev: bool) -> Auth {
        Self::assemble(config, ApiTokens::default(), None, Audit::disabled(), dev)
    }

    fn assemble(config: Arc<OrgConfig>, api: ApiTokens, log: Option<OutboxLog>, audit: Audit, dev: bool) -> Auth {
        let in_flight = Arc::new(Semaphore::new(config.access.max_in_flight as usize));
        let table = build_table(config, &api);
        Auth {
            inner: Arc::new(Inner {
                dev,
                table: RwLock::new(Arc::new(table)),
                api: Mutex::new(api),
                log,
                audit,
                in_flight: RwLock::new(in_flight),
                metrics: AuthMetrics::default(),
            }),
        }
    }

    pub fn is_dev(&self) -> bool {
        self.inner.dev
    }

    pub fn metrics(&self) -> &AuthMetrics {
        &self.inner.metrics
    }

    pub fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    fn table(&self) -> Arc<Table> {
        match self.inner.table.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_table(&self, t: Table) {
        match self.inner.table.write() {
            Ok(mut slot) => *slot = Arc::new(t),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(t),
        }
    }

    fn api(&self) -> std::sync::MutexGuard<'_, ApiTokens> {
        match self.inner.api.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A reloaded config: its tokens and `[access]` settings apply from the next request.
    pub fn set_config(&self, config: Arc<OrgConfig>) {
        let limit = config.access.max_in_flight as usize;
        let table = build_table(config, &self.api());
        self.set_table(table);
        match self.inner.in_flight.write() {
            Ok(mut s) => *s = Arc::new(Semaphore::new(limit)),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(Semaphore::new(limit)),
        }
    }

    pub fn config(&self) -> Arc<OrgConfig> {
        self.table().config.clone()
    }

    /// The integration a token acts as (`None`: a person's token, or unknown).
    pub fn integration_of(&self, id: &str) -> Option<String> {
        if let Some(t) = self.config().token(id) {
            return match &t.principal {
                Principal::Integration(i) => Some(i.clone()),
                Principal::Person(_) => None,
            };
        }
        self.api().created.iter().find_map(|r| match r {
            TokenRecord::Create { id: x, integration, .. } if x == id => integration.clone(),
            _ => None,
        })
    }

    /// Every token the server accepts, and the revoked ones with their details.
    pub fn tokens(&self) -> (Vec<Arc<TokenEntry>>, Vec<Revoked>) {
        let mut live: Vec<Arc<TokenEntry>> = self.table().by_digest.values().cloned().collect();
        live.sort_by(|a, b| a.grant.token.cmp(&b.grant.token));
        let api = self.api().clone();
        let mut revoked: Vec<Revoked> = all_entries(&self.config(), &api)
            .into_iter()
            .filter_map(|e| {
                let (at_ms, by) = api.revoked.get(&e.grant.token)?.clone();
                Some(Revoked { token: e, at_ms, by })
            })
            .collect();
        revoked.sort_by(|a, b| a.token.grant.token.cmp(&b.token.grant.token));
        (live, revoked)
    }

    /// Checks the token of a request for `rule`, charges its rate limit and
    /// takes an in-flight slot.
    pub fn admit(&self, rule: Option<Rule>, authorization: Option<&str>) -> Result<Admitted, Denial> {
        let Some(rule) = rule else {
            return Err(Denial::new(Code::Unimplemented, "no such method"));
        };
        let table = self.table();
        let slot = match rule.gate {
            Gate::Public => None,
            _ => Some(self.slot()?),
        };
        let scope = match rule.gate {
            Gate::Scope(scope) if !self.inner.dev => scope,
            // Public paths need no caller; the alert edges check their own
            // secrets; `--dev` has no tokens.
            _ => {
                return Ok(Admitted {
                    caller: Caller::dev(),
                    token: None,
                    actor: None,
                    _slot: slot,
                });
            }
        };
        let secret = crate::ingest::bearer(authorization)
            .ok_or_else(|| Denial::new(Code::Unauthenticated, "authorization: a bearer token is required"))?;
        let entry = table
            .by_digest
            .get(&sha256(secret))
            .ok_or_else(|| Denial::new(Code::Unauthenticated, "authorization: unknown or revoked token"))?;
        let g = &entry.grant;
        let denial = |code, message: String| Denial {
            token: Some(g.token.clone()),
            actor: g.person.clone(),
            ..Denial::new(code, message)
        };
        if !g.scopes.has(scope) && !g.scopes.has(Scope::Admin) {
            return Err(denial(
                Code::PermissionDenied,
                format!("token {} lacks the {scope} scope (it has: {})", g.token, g.scopes),
            ));
        }
        if let Err(wait) = charge(&entry.bucket, &table.access) {
            let mut d = denial(
                Code::ResourceExhausted,
                format!(
                    "token {} is over its rate limit of {} requests/s; retry in {wait} s",
                    g.token, table.access.rate_per_token
                ),
            );
            d.retry_after = Some(wait);
            return Err(d);
        }
        Ok(Admitted {
            caller: Caller {
                grant: Some(g.clone()),
                read_across_teams: table.access.read_across_teams,
            },
            token: Some(g.token.clone()),
            actor: g.person.clone(),
            _slot: slot,
        })
    }

    fn slot(&self) -> Result<OwnedSemaphorePermit, Denial> {
        let sem = match self.inner.in_flight.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        sem.try_acquire_owned().map_err(|_| Denial {
            retry_after: Some(1),
            ..Denial::new(
                Code::ResourceExhausted,
                "server: too many requests in flight; retry in 1 s",
            )
        })
    }

    /// Creates an API token; returns its secret (shown once, only its hash is kept).
    pub async fn create_token(&self, req: NewToken, by: &str) -> Result<(String, Arc<TokenEntry>), Status> {
        let config = self.config();
        let id = req.id.trim().to_string();
        if !incidentd_config::is_valid_id(&id) {
            return Err(crate::error::invalid(
                "id",
                "use 1 to 64 lowercase letters, digits or '-'",
            ));
        }
        let exists = config.token(&id).is_some()
            || self
                .api()
                .created
                .iter()
                .any(|r| matches!(r, TokenRecord::Create { id: x, .. } if *x == id));
        if exists {
            return Err(Status::already_exists(format!("id: token {id} already exists")));
        }
        let (person, integration) = match (opt(req.person), opt(req.integration)) {
            (Some(p), None) => {
                if config.person(&p).is_none() {
                    return Err(Status::not_found(format!("person: unknown person {p}")));
                }
                (Some(p), None)
            }
            (None, Some(i)) => {
                if config.integration(&i).is_none() {
                    return Err(Status::not_found(format!("integration: unknown integration {i}")));
                }
                (None, Some(i))
            }
            _ => {
                return Err(crate::error::invalid(
                    "person",
                    "exactly one of person or integration is required",
                ));
            }
        };
        if req.scopes.is_empty() {
            return Err(crate::error::invalid("scopes", "at least one scope is required"));
        }
        for s in &req.scopes {
            if Scope::parse(s).is_none() {
                return Err(crate::error::invalid(
                    "scopes",
                    format!("unknown scope {s:?} (read | respond | command | admin | ingest)"),
                ));
            }
        }
        if req.teams.is_empty() {
            return Err(crate::error::invalid(
                "teams",
                "at least one team (or \"*\") is required",
            ));
        }
        for t in &req.teams {
            if t != "*" && config.team(t).is_none() {
                return Err(Status::not_found(format!("teams: unknown team {t}")));
            }
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| Status::internal(format!("no randomness for a token: {e}")))?;
        let secret = format!("idt_{}", hex(raw));
        let digest = sha256(&secret);
        let record = TokenRecord::Create {
            id: id.clone(),
            sha256: hex(digest),
            person,
            integration,
            scopes: req.scopes,
            teams: req.teams,
            at_ms: crate::audit::now_ms(),
            by: by.to_string(),
        };
        self.persist(&record).await?;
        self.api().apply(record);
        let table = build_table(config, &self.api());
        let created = table
            .by_digest
            .get(&digest)
            .cloned()
            .ok_or_else(|| Status::internal("the new token is not in the table"))?;
        self.set_table(table);
        Ok((secret, created))
    }

    /// Revokes a token (config or API) from the next request on.
    pub async fn revoke_token(&self, id: &str, by: &str) -> Result<(), Status> {
        let config = self.config();
        let known = config.token(id).is_some()
            || self
                .api()
                .created
                .iter()
                .any(|r| matches!(r, TokenRecord::Create { id: x, .. } if x == id));
        if !known {
            return Err(Status::not_found(format!("id: unknown token {id}")));
        }
        if self.api().revoked.contains_key(id) {
            return Err(Status::failed_precondition(format!(
                "id: token {id} is already revoked"
            )));
        }
        let record = TokenRecord::Revoke {
            id: id.to_string(),
            at_ms: crate::audit::now_ms(),
            by: by.to_string(),
        };
        self.persist(&record).await?;
        self.api().apply(record);
        let table = build_table(config, &self.api());
        self.set_table(table);
        Ok(())
    }

    async fn persist(&self, record: &TokenRecord) -> Result<(), Status> {
        let Some(log) = &self.inner.log else { return Ok(()) };
        let bytes = serde_json::to_vec(record).map_err(|e| Status::internal(e.to_string()))?;
        log.append(vec![bytes])
            .await
            .map_err(|_| Status::unavailable("the token log stopped"))?
            .map_err(|e| Status::unavailable(format!("cannot store the token change: {e}")))
    }

    /// Records a finished request (mutating, or denied) in the audit log.
    pub fn record(
        &self,
        method: &str,
        who: (Option<String>, Option<String>),
        incident: Option<String>,
        outcome: (Code, String),
    ) {
        let (token, actor) = who;
        let (code, message) = outcome;
        self.inner.audit.append(AuditRecord {
            at_ms: crate::audit::now_ms(),
            token: token.unwrap_or_default(),
            actor: actor.unwrap_or_default(),
            method: method.to_string(),
            incident: incident.unwrap_or_default(),
            code: crate::metrics::code_name(code).to_string(),
            message,
        });
    }

    pub fn close(&self) {
        if let Some(log) = &self.inner.log {
            log.close();
        }
        self.inner.audit.close();
    }
}

/// Takes one request from the bucket; `Err(seconds)` to wait when empty.
fn charge(bucket: &Mutex<Bucket>, access: &AccessConfig) -> Result<(), u64> {
    let mut b = match bucket.lock() {
        Ok(b) => b,
        Err(poisoned) => poisoned.into_inner(),
    };
    let now = Instant::now();
    let rate = f64::from(access.rate_per_token);
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    b.tokens = (b.tokens + elapsed * rate).min(f64::from(access.burst_per_token));
    b.at = now;
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        Ok(())
    } else {
        Err(((1.0 - b.tokens) / rate).ceil().max(1.0) as u64)
    }
}

/// What a handler tells the audit record about its request.
#[derive(Debug, Default)]
struct Noted {
    incident: Option<String>,
    /// For self-authenticating edges: the integration that called.
    actor: Option<String>,
}

tokio::task_local! {
    /// Filled by the request's handler, read by the layer when it is done.
    static AUDIT_NOTES: std::cell::RefCell<Noted>;
}

/// Notes the incident a request is about: the span's `incident_id` field and
/// the audit record's incident (the last one of a batch).
pub fn note_incident(id: &impl std::fmt::Display) {
    tracing::Span::current().record("incident_id", tracing::field::display(id));
    let _ = AUDIT_NOTES.try_with(|cell| cell.borrow_mut().incident = Some(id.to_string()));
}

/// Notes who called an edge that authenticates itself (an alert integration).
pub fn note_actor(actor: &str) {
    let _ = AUDIT_NOTES.try_with(|cell| {
        let mut n = cell.borrow_mut();
        if n.actor.is_none() {
            n.actor = Some(actor.to_string());
        }
    });
}

/// The layer: `tonic::transport::Server::builder().layer(AuthLayer::new(auth))`
/// and `axum::Router::layer(AuthLayer::new(auth))`.
#[derive(Clone)]
pub struct AuthLayer {
    auth: Arc<std::sync::OnceLock<Auth>>,
}

impl AuthLayer {
    pub fn new(auth: Auth) -> AuthLayer {
        AuthLayer {
            auth: Arc::new(std::sync::OnceLock::from(auth)),
        }
    }

    /// A layer whose authenticator arrives later (HTTP serves `/readyz`
    /// during recovery, before the token logs are open): until then public
    /// paths pass and everything else is `UNAVAILABLE`.
    pub fn deferred(slot: Arc<std::sync::OnceLock<Auth>>) -> AuthLayer {
        AuthLayer { auth: slot }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<std::sync::OnceLock<Auth>>,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send>>;

fn is_grpc(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// The refusal as a response: trailers-only gRPC, or an HTTP status with a JSON body.
fn denial_response(grpc: bool, d: &Denial) -> axum::http::Response<axum::body::Body> {
    if grpc {
        return d.status().into_http::<axum::body::Body>();
    }
    let body = serde_json::json!({ "error": d.message }).to_string();
    let mut resp = axum::http::Response::new(axum::body::Body::from(body));
    *resp.status_mut() = crate::error::http_status(d.code);
    let headers = resp.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    if d.code == Code::Unauthenticated {
        headers.insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
    }
    if let Some(secs) = d.retry_after
        && let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string())
    {
        headers.insert(axum::http::header::RETRY_AFTER, v);
    }
    resp
}

/// The outcome of a response: the handler's `Status` (tonic puts it in the
/// extensions of an error response), else the gRPC / HTTP status.
fn outcome<B>(grpc: bool, resp: &axum::http::Response<B>) -> (Code, String) {
    if let Some(s) = resp.extensions().get::<Status>() {
        return (s.code(), s.message().to_string());
    }
    if grpc {
        let code = resp
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i32>().ok())
            .map(Code::from_i32)
            .unwrap_or(Code::Ok);
        return (code, String::new());
    }
    let code = match resp.status().as_u16() {
        200..=299 => Code::Ok,
        400 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        409 => Code::FailedPrecondition,
        429 => Code::ResourceExhausted,
        503 => Code::Unavailable,
        _ => Code::Internal,
    };
    (code, String::new())
}

fn audited(rule: Option<Rule>, code: Code) -> bool {
    rule.is_some_and(|r| r.mutating) || matches!(code, Code::Unauthenticated | Code::PermissionDenied)
}

impl<S, B, RB> tower::Service<axum::http::Request<B>> for AuthService<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    RB::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = axum::http::Response<axum::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: axum::http::Request<B>) -> Self::Future {
        // The clone that was driven to readiness serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = req.uri().path().to_string();
        let grpc = is_grpc(req.headers());
        let rule = rule(&path);
        let auth = match self.auth.get() {
            Some(auth) => auth.clone(),
            None if rule.is_some_and(|r| r.gate == Gate::Public) => {
                return Box::pin(async move { inner.call(req).await.map(|r| r.map(axum::body::Body::new)) });
            }
            None => {
                let d = Denial::new(Code::Unavailable, "server: starting up");
                return Box::pin(async move { Ok(denial_response(grpc, &d)) });
            }
        };
        let authorization = req
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let admitted = match auth.admit(rule, authorization) {
            Ok(a) => a,
            Err(d) => {
                auth.inner.metrics.count(d.code);
                if audited(rule, d.code) {
                    auth.record(
                        &path,
                        (d.token.clone(), d.actor.clone()),
                        None,
                        (d.code, d.message.clone()),
                    );
                }
                let resp = denial_response(grpc, &d);
                return Box::pin(async move { Ok(resp) });
            }
        };
        req.extensions_mut().insert(admitted.caller.clone());
        Box::pin(async move {
            let resp = AUDIT_NOTES
                .scope(std::cell::RefCell::new(Noted::default()), async {
                    let resp = inner.call(req).await;
                    let noted = AUDIT_NOTES.with(|c| std::mem::take(&mut *c.borrow_mut()));
                    (resp, noted)
                })
                .await;
            let (resp, noted) = resp;
            let resp = resp?;
            let (code, message) = outcome(grpc, &resp);
            auth.inner.metrics.count(code);
            if audited(rule, code) {
                let actor = admitted.actor.clone().or(noted.actor);
                auth.record(&path, (admitted.token.clone(), actor), noted.incident, (code, message));
            }
            drop(admitted);
            Ok(resp.map(axum::body::Body::new))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Every method of every incident.v1 service has a rule: a new RPC cannot
    /// slip through unguarded (a method without a rule is refused anyway).
    #[test]
    fn every_rpc_of_the_descriptor_set_has_a_rule() {
        let set =
            prost_types::FileDescriptorSet::decode(incidentd_proto::v1::FILE_DESCRIPTOR_SET).expect("descriptor set");
        let mut methods = Vec::new();
        for file in &set.file {
            for service in &file.service {
                for m in &service.method {
                    methods.push(format!("/{}.{}/{}", file.package(), service.name(), m.name()));
                }
            }
        }
        assert!(methods.len() >= 40, "{methods:?}");
        for m in &methods {
            assert!(RPC_RULES.iter().any(|(p, _)| p == m), "no rule for {m}");
        }
        for (p, _) in RPC_RULES {
            assert!(
                methods.contains(&p.to_string()),
                "rule for a method that does not exist: {p}"
            );
        }
        assert_eq!(rule("/incident.v1.IncidentService/Nope"), None);
        assert_eq!(rule("/grpc.health.v1.Health/Check").map(|r| r.gate), Some(Gate::Public));
        assert_eq!(rule("/status").map(|r| r.gate), Some(Gate::Public));
        assert_eq!(rule("/v2/enqueue").map(|r| r.gate), Some(Gate::SelfAuth));
    }

    fn config_with_token(scopes: &str, teams: &str, access: &str) -> Arc<OrgConfig> {
        let mut text = incidentd_config::DEMO_TOML.to_string();
        text.push_str(&format!(
            "\n[[tokens]]\nid = \"t1\"\nsha256 = \"{}\"\nperson = \"alice\"\nscopes = {scopes}\nteams = {teams}\n{access}",
            hex(sha256("secret-1"))
        ));
        Arc::new(OrgConfig::from_toml_str(&text).expect("config"))
    }

    #[test]
    fn tokens_are_looked_up_by_hash_and_scopes_checked() {
        let auth = Auth::in_memory(
            config_with_token("[\"read\", \"respond\"]", "[\"payments\"]", ""),
            false,
        );
        let declare = rule("/incident.v1.IncidentService/DeclareIncident");
        let resolve = rule("/incident.v1.IncidentService/ResolveIncident");
        let no = auth.admit(declare, None).err().expect("no token");
        assert_eq!(no.code, Code::Unauthenticated);
        let bad = auth.admit(declare, Some("Bearer guess")).err().expect("bad token");
        assert_eq!(bad.code, Code::Unauthenticated);
        let ok = auth.admit(declare, Some("Bearer secret-1")).expect("respond scope");
        let g = ok.caller.grant().expect("grant").clone();
        assert_eq!((g.token.as_str(), g.person.as_deref()), ("t1", Some("alice")));
        let denied = auth
            .admit(resolve, Some("Bearer secret-1"))
            .err()
            .expect("no command scope");
        assert_eq!(denied.code, Code::PermissionDenied);
        assert!(denied.message.contains("command"), "{}", denied.message);
        // The acting person comes from the token; another `by` is refused, naming the field.
        assert_eq!(ok.caller.acting(String::new()).expect("empty by"), Some("alice".into()));
        assert_eq!(ok.caller.acting("alice".into()).expect("same by"), Some("alice".into()));
        let forged = ok.caller.acting("bob".into()).expect_err("forged by");
        assert_eq!(forged.code(), Code::PermissionDenied);
        assert!(forged.message().starts_with("by:"), "{}", forged.message());
        // Reads across teams: allowed by default.
        assert!(ok.caller.may_read("identity").is_ok());
        assert_eq!(ok.caller.readable_teams(), None);
    }

    #[test]
    fn reads_across_teams_can_be_turned_off() {
        let auth = Auth::in_memory(
            config_with_token("[\"read\"]", "[\"payments\"]", "[access]\nread_across_teams = false\n"),
            false,
        );
        let a = auth
            .admit(
                rule("/incident.v1.IncidentService/GetIncident"),
                Some("Bearer secret-1"),
            )
            .expect("read");
        assert!(a.caller.may_read("payments").is_ok());
        assert_eq!(
            a.caller.may_read("identity").expect_err("other team").code(),
            Code::PermissionDenied
        );
        assert_eq!(a.caller.readable_teams(), Some(vec!["payments".to_string()]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_over_its_rate_gets_resource_exhausted_with_a_retry_hint() {
        let auth = Auth::in_memory(
            config_with_token(
                "[\"read\"]",
                "[\"*\"]",
                "[access]\nrate_per_token = 2\nburst_per_token = 3\n",
            ),
            false,
        );
        let get = rule("/incident.v1.IncidentService/GetIncident");
        for _ in 0..3 {
            assert!(auth.admit(get, Some("Bearer secret-1")).is_ok());
        }
        let d = auth.admit(get, Some("Bearer secret-1")).err().expect("over the burst");
        assert_eq!(d.code, Code::ResourceExhausted);
        assert_eq!(d.retry_after, Some(1));
        assert_eq!(
            d.status().metadata().get("retry-after").and_then(|v| v.to_str().ok()),
            Some("1")
        );
        tokio::time::advance(std::time::Duration::from_millis(500)).await;
        assert!(auth.admit(get, Some("Bearer secret-1")).is_ok(), "refilled at 2/s");
    }

    #[tokio::test]
    async fn in_flight_slots_are_bounded_and_given_back() {
        let auth = Auth::in_memory(
            config_with_token("[\"read\"]", "[\"*\"]", "[access]\nmax_in_flight = 2\n"),
            false,
        );
        let get = rule("/incident.v1.IncidentService/GetIncident");
        let a = auth.admit(get, Some("Bearer secret-1")).expect("1");
        let b = auth.admit(get, Some("Bearer secret-1")).expect("2");
        let full = auth.admit(get, Some("Bearer secret-1")).err().expect("full");
        assert_eq!(full.code, Code::ResourceExhausted);
        // Health checks never queue behind the limit.
        assert!(auth.admit(rule("/grpc.health.v1.Health/Check"), None).is_ok());
        drop((a, b));
        assert!(auth.admit(get, Some("Bearer secret-1")).is_ok());
    }

    #[tokio::test]
    async fn api_tokens_are_created_with_a_secret_shown_once_and_revoked() {
        let auth = Auth::in_memory(config_with_token("[\"admin\"]", "[\"*\"]", ""), false);
        let new = NewToken {
            id: "ci-bot".into(),
            person: "bob".into(),
            scopes: vec!["read".into()],
            teams: vec!["payments".into()],
            ..Default::default()
        };
        let (secret, entry) = auth.create_token(new.clone(), "alice").await.expect("created");
        assert!(secret.starts_with("idt_") && secret.len() == 68, "{secret}");
        assert_eq!(entry.sha256, sha256(&secret));
        let get = rule("/incident.v1.IncidentService/GetIncident");
        let bearer = format!("Bearer {secret}");
        assert!(auth.admit(get, Some(&bearer)).is_ok());
        assert_eq!(
            auth.create_token(new, "alice").await.expect_err("duplicate").code(),
            Code::AlreadyExists
        );
        let bad = NewToken {
            id: "x".into(),
            person: "nobody".into(),
            scopes: vec!["read".into()],
            teams: vec!["*".into()],
            ..Default::default()
        };
        let e = auth.create_token(bad, "alice").await.expect_err("unknown person");
        assert!(e.message().starts_with("person:"), "{}", e.message());
        auth.revoke_token("ci-bot", "alice").await.expect("revoked");
        assert_eq!(
            auth.admit(get, Some(&bearer)).err().expect("revoked").code,
            Code::Unauthenticated
        );
        // Config tokens can be revoked too (a leaked one must stop at once).
        auth.revoke_token("t1", "alice").await.expect("config token revoked");
        assert!(auth.admit(get, Some("Bearer secret-1")).is_err());
        assert_eq!(
            auth.revoke_token("t1", "alice").await.expect_err("twice").code(),
            Code::FailedPrecondition
        );
    }
}
