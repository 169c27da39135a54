//! The resolved, validated config. Every id reference in here points at
//! something that exists, every enum is typed and every duration parsed.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::policy::Policy;
use crate::types::{DestinationKind, IntegrationKind, Scope, Severity, Tier, Tls};

/// The whole org config file, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgConfig {
    /// `[org]` (required).
    pub org: Org,
    /// `[[teams]]`, in file order.
    pub teams: Vec<Team>,
    /// `[[people]]`, in file order.
    pub people: Vec<Person>,
    /// `[[services]]`, in file order.
    pub services: Vec<Service>,
    /// `[contacts]`: escalation target groups. Keys are free-form group names
    /// (e.g. `engineering_leadership`); each entry is a person id from
    /// `[[people]]` or an email address (anything containing `@`).
    pub contacts: BTreeMap<String, Vec<String>>,
    /// `[[destinations]]`, in file order.
    pub destinations: Vec<Destination>,
    /// `[smtp]`: required only when an `email` destination exists.
    pub smtp: Option<Smtp>,
    /// `[[tokens]]`: API tokens (only their SHA-256 is stored).
    pub tokens: Vec<TokenConfig>,
    /// `[[integrations]]`: alert sources.
    pub integrations: Vec<Integration>,
    /// `[policy]`: the org policy, merged over the playbook defaults.
    pub policy: Policy,
    /// `[review] blame_rules`: the blameless check's wording rules, when the
    /// config replaces the built-in ones.
    pub blame_rules: Option<Vec<BlameRuleConfig>>,
    /// `[access]`: authorisation, audit and back-pressure settings.
    pub access: AccessConfig,
}

/// `[access]` (every key optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessConfig {
    /// `read_across_teams` (default `true`): a `read` token sees every
    /// team's incidents (a big organisation's visibility); `false` limits
    /// reads to the token's teams.
    pub read_across_teams: bool,
    /// `audit_retention` (default `"400d"`): audit records older than this
    /// are dropped (at start and daily).
    pub audit_retention: Duration,
    /// `rate_per_token` (default 200): requests per second one token may make
    /// (token bucket); more is `RESOURCE_EXHAUSTED` / 429 with a retry hint.
    pub rate_per_token: u32,
    /// `burst_per_token` (default 400): the bucket's size.
    pub burst_per_token: u32,
    /// `max_in_flight` (default 4096): requests being served at once across
    /// all callers; more is `RESOURCE_EXHAUSTED` / 429 (watch streams count
    /// only while they are being set up).
    pub max_in_flight: u32,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            read_across_teams: true,
            audit_retention: Duration::from_secs(400 * 86_400),
            rate_per_token: 200,
            burst_per_token: 400,
            max_in_flight: 4096,
        }
    }
}

/// One blameless-check rule: phrases (lower-case; `{person}` stands for a
/// responder's id or name) and the systems framing to suggest instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlameRuleConfig {
    pub id: String,
    pub phrases: Vec<String>,
    pub suggestion: String,
}

/// `[org]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    /// `name` (required, non-empty): the organisation's display name.
    pub name: String,
    /// `default_team` (required): a team id; alerts with no or an unknown
    /// team land here.
    pub default_team: String,
    /// `unclear_severity` (default `"SEV1"`): severity used when an incident
    /// is declared without one (the playbook defaults up).
    pub unclear_severity: Severity,
    /// `status_page_title` (default `"<name> Status"`): title of the public
    /// status page.
    pub status_page_title: String,
}

/// One `[[teams]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    /// `id` (required): lowercase letters, digits and `-`, at most 64 characters; unique.
    pub id: String,
    /// `name` (default: the id): display name.
    pub name: String,
    /// `chat = [...]`: destination ids (slack, mattermost, teams or webhook)
    /// that receive this team's internal updates.
    pub chat: Vec<String>,
    /// `email = [...]`: destination ids of kind `email` for stakeholder mail.
    pub email: Vec<String>,
    /// `drill_routes = [...]`: the only destinations a drill of this team
    /// may reach (never a `statuspage` destination).
    pub drill_routes: Vec<String>,
    /// `[teams.policy]`: when present, this team's effective policy — the
    /// override already merged over the org `[policy]` (same shape, same
    /// rules: missing keys inherit, `[[teams.policy.escalations]]` replaces
    /// the org's list). `None`: the org policy applies. Use
    /// [`OrgConfig::policy_for_team`].
    pub policy: Option<Policy>,
}

/// One `[[people]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// `id` (required): lowercase letters, digits and `-`; unique.
    pub id: String,
    /// `name` (default: the id): full name.
    pub name: String,
    /// `email` (optional): must contain `@`.
    pub email: Option<String>,
    /// `chat` (optional): handle used in chat mentions, e.g. `"@alice"`.
    pub chat: Option<String>,
    /// `teams = [...]`: team ids this person belongs to.
    pub teams: Vec<String>,
}

/// One `[[services]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// `id` (required): lowercase letters, digits and `-`; unique.
    pub id: String,
    /// `name` (default: the id): display name (also on the status page).
    pub name: String,
    /// `team` (required): owning team id.
    pub team: String,
    /// `tier` (`"core"` | `"non-core"`, default `"non-core"`).
    pub tier: Tier,
    /// `status_page` (default `false`): shown as a status page component.
    pub status_page: bool,
    /// `group` (optional): status page component group, e.g. `"Checkout"`.
    pub group: Option<String>,
    /// `description` (optional): one line under the component on the status page.
    pub description: Option<String>,
    /// `order` (optional): position on the status page; lower first, then
    /// file order (services without it come after those with it).
    pub order: Option<i64>,
}

/// A secret string from the config (webhook HMAC key, API key, password).
/// Its `Debug` output is redacted; use [`Secret::expose`] to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One `[[destinations]]` entry. Which fields are set depends on `kind`
/// (validated; keys a kind does not use are rejected):
///
/// | kind | keys |
/// | --- | --- |
/// | `slack`, `mattermost`, `teams` | `url` |
/// | `webhook` | `url`, optional `secret` (HMAC-SHA256 key) |
/// | `email` | `to` (non-empty list of addresses; needs `[smtp]`) |
/// | `statuspage` | `url` (API base), `page_id`, `api_key` |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// `id` (required): lowercase letters, digits and `-`; unique.
    pub id: String,
    /// `kind` (required): `slack` | `mattermost` | `teams` | `webhook` | `email` | `statuspage`.
    pub kind: DestinationKind,
    /// `url`: `http://` or `https://` URL; set for every kind except `email`.
    pub url: Option<String>,
    /// `secret` (webhook only, optional): HMAC-SHA256 signing key.
    pub secret: Option<Secret>,
    /// `to` (email only): recipient addresses; empty for other kinds.
    pub to: Vec<String>,
    /// `page_id` (statuspage only).
    pub page_id: Option<String>,
    /// `api_key` (statuspage only).
    pub api_key: Option<Secret>,
}

/// `[smtp]`: outgoing mail for `email` destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smtp {
    /// `host` (required).
    pub host: String,
    /// `port` (required, 1–65535).
    pub port: u16,
    /// `tls` (`"none"` | `"starttls"` | `"implicit"`, default `"starttls"`).
    pub tls: Tls,
    /// `from` (required): sender address.
    pub from: String,
    /// `username` (optional; given together with `password`).
    pub username: Option<String>,
    /// `password` (optional; given together with `username`).
    pub password: Option<Secret>,
}

/// A SHA-256 digest, written in the file as 64 hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// Parses 64 hex characters (either case).
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = u8::try_from(hi * 16 + lo).ok()?;
        }
        Some(Sha256Digest(out))
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.to_hex())
    }
}

/// Who a token acts as: `person = "..."` or `integration = "..."` (exactly one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A `[[people]]` id.
    Person(String),
    /// An `[[integrations]]` id.
    Integration(String),
}

/// Which teams' incidents a token may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeamAccess {
    /// `teams = ["*"]`.
    All,
    /// A list of team ids (possibly empty: no team).
    Only(Vec<String>),
}

impl TeamAccess {
    /// Whether this grants access to `team`.
    pub fn allows(&self, team: &str) -> bool {
        match self {
            TeamAccess::All => true,
            TeamAccess::Only(teams) => teams.iter().any(|t| t == team),
        }
    }
}

/// One `[[tokens]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    /// `id` (required): lowercase letters, digits and `-`; unique.
    pub id: String,
    /// `sha256` (required): SHA-256 of the token, 64 hex characters; unique
    /// across tokens and integrations.
    pub sha256: Sha256Digest,
    /// `person` or `integration` (exactly one).
    pub principal: Principal,
    /// `scopes = [...]` (required, non-empty): `read` | `respond` | `command` | `admin` | `ingest`.
    pub scopes: Vec<Scope>,
    /// `teams = [...]`: team ids, or `["*"]` for all. Default: the person's
    /// `teams`, or the integration's `team`.
    pub teams: TeamAccess,
}

impl TokenConfig {
    /// Whether the token carries `scope` (exact; no scope implies another here).
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// One `[[integrations]]` entry (an alert source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    /// `id` (required): lowercase letters, digits and `-`; unique.
    pub id: String,
    /// `kind` (required): `alertmanager` | `pagerduty`.
    pub kind: IntegrationKind,
    /// `sha256` (required): SHA-256 of the bearer token or PagerDuty
    /// routing_key, 64 hex characters; unique across tokens and integrations.
    pub sha256: Sha256Digest,
    /// `team` (default: `org.default_team`): team for its alerts when their
    /// labels name none.
    pub team: String,
    /// `auto_mitigate` (default `false`): when all alerts of the incident
    /// resolve, move its status to mitigating.
    pub auto_mitigate: bool,
    /// `reopen_window` (default `"30m"`): a re-firing alert group within this
    /// long after resolution reopens the old incident.
    pub reopen_window: Duration,
    /// `auto_resolve` (default `false`): when all alerts of the incident
    /// resolve, resolve the incident. Off by default: the commander decides.
    pub auto_resolve: bool,
}

impl OrgConfig {
    /// The team with this id.
    pub fn team(&self, id: &str) -> Option<&Team> {
        self.teams.iter().find(|t| t.id == id)
    }

    /// The person with this id.
    pub fn person(&self, id: &str) -> Option<&Person> {
        self.people.iter().find(|p| p.id == id)
    }

    /// The service with this id.
    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id)
    }

    /// The destination with this id.
    pub fn destination(&self, id: &str) -> Option<&Destination> {
        self.destinations.iter().find(|d| d.id == id)
    }

    /// The integration with this id.
    pub fn integration(&self, id: &str) -> Option<&Integration> {
        self.integrations.iter().find(|i| i.id == id)
    }

    /// The token with this id.
    pub fn token(&self, id: &str) -> Option<&TokenConfig> {
        self.tokens.iter().find(|t| t.id == id)
    }

    /// The token whose `sha256` is this digest.
    pub fn token_by_digest(&self, digest: &Sha256Digest) -> Option<&TokenConfig> {
        self.tokens.iter().find(|t| t.sha256 == *digest)
    }

    /// The integration whose `sha256` is this digest.
    pub fn integration_by_digest(&self, digest: &Sha256Digest) -> Option<&Integration> {
        self.integrations.iter().find(|i| i.sha256 == *digest)
    }

    /// People whose `teams` include `team_id`.
    pub fn members<'a>(&'a self, team_id: &'a str) -> impl Iterator<Item = &'a Person> + 'a {
        self.people.iter().filter(move |p| p.teams.iter().any(|t| t == team_id))
    }

    /// The team an alert or incident belongs to: `team` if it names a
    /// configured team, else `org.default_team`.
    pub fn route_team<'a>(&'a self, team: Option<&'a str>) -> &'a str {
        match team {
            Some(t) if self.team(t).is_some() => t,
            _ => &self.org.default_team,
        }
    }

    /// The effective policy of a team: its `[teams.policy]` merged over the
    /// org `[policy]`, or the org policy when it has none (or the team is unknown).
    pub fn policy_for_team(&self, team_id: &str) -> Policy {
        self.team(team_id)
            .and_then(|t| t.policy.clone())
            .unwrap_or_else(|| self.policy.clone())
    }

    /// The entries of a `[contacts]` group (empty if the group is not configured).
    pub fn contact_group(&self, group: &str) -> &[String] {
        self.contacts.get(group).map(Vec::as_slice).unwrap_or_default()
    }

    /// Email addresses of a `[contacts]` group: addresses as written, person
    /// ids resolved to their `email` (people without one are skipped).
    pub fn contact_emails(&self, group: &str) -> Vec<String> {
        self.contact_group(group)
            .iter()
            .filter_map(|entry| {
                if entry.contains('@') {
                    Some(entry.clone())
                } else {
                    self.person(entry).and_then(|p| p.email.clone())
                }
            })
            .collect()
    }

    /// Non-fatal findings worth logging at startup: escalation rules
    /// inherited from the playbook that notify a `[contacts]` group the
    /// config does not define (such a rule fires but reaches nobody).
    /// Explicitly written rules naming an unknown group are errors instead.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let policies =
            std::iter::once(("[policy]".to_string(), &self.policy)).chain(self.teams.iter().filter_map(|t| {
                t.policy
                    .as_ref()
                    .map(|p| (format!("[teams.policy] of team \"{}\"", t.id), p))
            }));
        for (section, policy) in policies {
            for rule in &policy.escalations {
                if !self.contacts.contains_key(&rule.notify) {
                    out.push(format!(
                        "playbook escalation \"{}\" in {section} notifies [contacts] group \"{}\", which is not defined",
                        rule.id, rule.notify
                    ));
                }
            }
        }
        out
    }
}
