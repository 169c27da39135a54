//! The file as written: serde shapes mirroring CONFIG.md key for key, with
//! spans kept wherever validation may need to point at a line. Unknown keys
//! are rejected by `deny_unknown_fields`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub(crate) type SStr = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub org: Option<Spanned<RawOrg>>,
    #[serde(default)]
    pub teams: Vec<Spanned<RawTeam>>,
    #[serde(default)]
    pub people: Vec<Spanned<RawPerson>>,
    #[serde(default)]
    pub services: Vec<Spanned<RawService>>,
    #[serde(default)]
    pub contacts: BTreeMap<String, Vec<SStr>>,
    #[serde(default)]
    pub destinations: Vec<Spanned<RawDestination>>,
    pub smtp: Option<Spanned<RawSmtp>>,
    #[serde(default)]
    pub tokens: Vec<Spanned<RawToken>>,
    #[serde(default)]
    pub integrations: Vec<Spanned<RawIntegration>>,
    pub policy: Option<RawPolicy>,
    pub review: Option<RawReview>,
    pub access: Option<RawAccess>,
}

/// `[access]`: authorisation, audit and back-pressure settings (issue 8).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccess {
    pub read_across_teams: Option<bool>,
    pub audit_retention: Option<SStr>,
    pub rate_per_token: Option<Spanned<i64>>,
    pub burst_per_token: Option<Spanned<i64>>,
    pub max_in_flight: Option<Spanned<i64>>,
}

/// `[review]`: post-incident review settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReview {
    /// Replaces the built-in blameless-check rules when given.
    pub blame_rules: Option<Vec<Spanned<RawBlameRule>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBlameRule {
    pub id: SStr,
    pub phrases: Spanned<Vec<String>>,
    pub suggestion: SStr,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOrg {
    pub name: SStr,
    pub default_team: SStr,
    pub unclear_severity: Option<SStr>,
    pub status_page_title: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTeam {
    pub id: SStr,
    pub name: Option<String>,
    #[serde(default)]
    pub chat: Vec<SStr>,
    #[serde(default)]
    pub email: Vec<SStr>,
    #[serde(default)]
    pub drill_routes: Vec<SStr>,
    pub policy: Option<RawPolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPerson {
    pub id: SStr,
    pub name: Option<String>,
    pub email: Option<SStr>,
    pub chat: Option<String>,
    #[serde(default)]
    pub teams: Vec<SStr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    pub id: SStr,
    pub name: Option<String>,
    pub team: SStr,
    pub tier: Option<SStr>,
    #[serde(default)]
    pub status_page: bool,
    pub group: Option<SStr>,
    pub description: Option<String>,
    pub order: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDestination {
    pub id: SStr,
    pub kind: SStr,
    pub url: Option<SStr>,
    pub secret: Option<SStr>,
    pub to: Option<Spanned<Vec<SStr>>>,
    pub page_id: Option<SStr>,
    pub api_key: Option<SStr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSmtp {
    pub host: SStr,
    pub port: Spanned<u16>,
    pub tls: Option<SStr>,
    pub from: SStr,
    pub username: Option<SStr>,
    pub password: Option<SStr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawToken {
    pub id: SStr,
    pub sha256: SStr,
    pub person: Option<SStr>,
    pub integration: Option<SStr>,
    pub scopes: Spanned<Vec<SStr>>,
    pub teams: Option<Spanned<Vec<SStr>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIntegration {
    pub id: SStr,
    pub kind: SStr,
    pub sha256: SStr,
    pub team: Option<SStr>,
    #[serde(default)]
    pub auto_mitigate: bool,
    pub reopen_window: Option<SStr>,
    #[serde(default)]
    pub auto_resolve: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub checklist: Option<RawChecklist>,
    pub review_due: Option<SStr>,
    pub severity: Option<RawSeverities>,
    pub escalations: Option<Vec<Spanned<RawEscalation>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawChecklist {
    pub acknowledge: Option<SStr>,
    pub severity_and_commander: Option<SStr>,
    pub team_assembled: Option<SStr>,
    pub investigation_plan: Option<SStr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSeverities {
    #[serde(rename = "SEV1")]
    pub sev1: Option<RawSeverityPolicy>,
    #[serde(rename = "SEV2")]
    pub sev2: Option<RawSeverityPolicy>,
    #[serde(rename = "SEV3")]
    pub sev3: Option<RawSeverityPolicy>,
    #[serde(rename = "SEV4")]
    pub sev4: Option<RawSeverityPolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSeverityPolicy {
    pub stakeholder_notice: Option<SStr>,
    pub update_every: Option<SStr>,
    pub sme_report_every: Option<SStr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEscalation {
    pub id: SStr,
    #[serde(default)]
    pub severity: Vec<SStr>,
    #[serde(default)]
    pub unless_status: Vec<SStr>,
    pub data_loss: Option<SStr>,
    pub regulatory: Option<bool>,
    pub after: SStr,
    pub notify: SStr,
    pub message: Option<String>,
}
