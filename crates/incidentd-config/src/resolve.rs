//! Raw file → validated [`OrgConfig`]: applies defaults, parses enums and
//! durations, checks ids and cross references. Every problem is recorded
//! (with its line) and the config is only returned when there are none.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

use toml::Spanned;

use crate::duration::parse_duration;
use crate::error::Problems;
use crate::model::{
    AccessConfig, BlameRuleConfig, Destination, Integration, Org, OrgConfig, Person, Principal, Secret, Service,
    Sha256Digest, Smtp, Team, TeamAccess, TokenConfig,
};
use crate::policy::{EscalationRule, Policy, SeverityPolicy};
use crate::raw::{
    RawConfig, RawDestination, RawEscalation, RawIntegration, RawOrg, RawPolicy, RawSeverityPolicy, RawToken, SStr,
};
use crate::types::{DestinationKind, IntegrationKind, Severity, Tier, Tls, UnknownValue};

/// Longest accepted id.
pub const MAX_ID_LEN: usize = 64;

/// Default `[[integrations]] reopen_window`.
const DEFAULT_REOPEN_WINDOW: Duration = Duration::from_secs(30 * 60);

/// Whether `id` is a valid id: 1 to 64 characters, each a lowercase ASCII
/// letter, a digit or `-`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn looks_like_email(s: &str) -> bool {
    !s.chars().any(char::is_whitespace)
        && s.split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
}

fn is_http_url(s: &str) -> bool {
    s.strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.chars().any(char::is_whitespace))
}

/// Reports a problem with the value of `key` in the section `label`.
fn key_problem<T>(p: &mut Problems<'_>, at: &Spanned<T>, key: &str, label: &str, problem: impl std::fmt::Display) {
    p.at_value(at, format!("key \"{key}\" in {label}: {problem}"));
}

fn parse_enum<T: FromStr<Err = UnknownValue>>(p: &mut Problems<'_>, value: &SStr, key: &str, label: &str) -> Option<T> {
    match value.get_ref().parse() {
        Ok(v) => Some(v),
        Err(e) => {
            key_problem(p, value, key, label, e);
            None
        }
    }
}

fn parse_dur(p: &mut Problems<'_>, value: &SStr, key: &str, label: &str) -> Option<Duration> {
    match parse_duration(value.get_ref()) {
        Ok(d) => Some(d),
        Err(e) => {
            key_problem(p, value, key, label, e);
            None
        }
    }
}

/// Checks the ids of one section (format, uniqueness); returns each id with
/// the line it is first defined on.
fn check_ids<'a>(p: &mut Problems<'_>, section: &str, ids: impl Iterator<Item = &'a SStr>) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for id in ids {
        let text = id.get_ref();
        if !is_valid_id(text) {
            p.at_value(
                id,
                format!(
                    "key \"id\" in {section}: {text:?} is not a valid id (use 1 to {MAX_ID_LEN} lowercase letters, digits or '-')"
                ),
            );
        }
        match seen.get(text) {
            Some(first) => p.at_value(
                id,
                format!("duplicate {section} id {text:?} (first defined on line {first})"),
            ),
            None => {
                let line = p.line_of(id.span().start);
                seen.insert(text.clone(), line);
            }
        }
    }
    seen
}

fn parse_digest(p: &mut Problems<'_>, value: &SStr, label: &str) -> Sha256Digest {
    match Sha256Digest::from_hex(value.get_ref()) {
        Some(d) => d,
        None => {
            // Never echo the value: it may be a pasted secret.
            key_problem(
                p,
                value,
                "sha256",
                label,
                "must be 64 hex characters (the SHA-256 of the secret, not the secret itself)",
            );
            Sha256Digest([0; 32])
        }
    }
}

fn label(section: &str, id: &SStr) -> String {
    format!("{section} {:?}", id.get_ref())
}

/// Everything the cross-reference checks need to know.
struct Known {
    teams: BTreeMap<String, usize>,
    people: BTreeMap<String, usize>,
    integrations: BTreeMap<String, usize>,
    /// Destination id → kind (`None` when the kind itself is invalid).
    destinations: BTreeMap<String, Option<DestinationKind>>,
    contact_groups: BTreeSet<String>,
}

impl Known {
    fn check_team(&self, p: &mut Problems<'_>, team: &SStr, key: &str, label: &str) {
        if !self.teams.contains_key(team.get_ref()) {
            key_problem(
                p,
                team,
                key,
                label,
                format!("unknown team {:?} (not in [[teams]])", team.get_ref()),
            );
        }
    }
}

pub(crate) fn resolve(raw: &RawConfig, p: &mut Problems<'_>) -> Option<OrgConfig> {
    let teams = check_ids(p, "[[teams]]", raw.teams.iter().map(|t| &t.get_ref().id));
    let people = check_ids(p, "[[people]]", raw.people.iter().map(|x| &x.get_ref().id));
    check_ids(p, "[[services]]", raw.services.iter().map(|x| &x.get_ref().id));
    check_ids(p, "[[destinations]]", raw.destinations.iter().map(|x| &x.get_ref().id));
    let integrations = check_ids(p, "[[integrations]]", raw.integrations.iter().map(|x| &x.get_ref().id));
    check_ids(p, "[[tokens]]", raw.tokens.iter().map(|x| &x.get_ref().id));

    let destinations: Vec<Destination> = raw.destinations.iter().map(|d| resolve_destination(p, d)).collect();
    let known = Known {
        teams,
        people,
        integrations,
        destinations: raw
            .destinations
            .iter()
            .map(|d| {
                let d = d.get_ref();
                (d.id.get_ref().clone(), d.kind.get_ref().parse::<DestinationKind>().ok())
            })
            .collect(),
        contact_groups: raw.contacts.keys().cloned().collect(),
    };

    let org = match &raw.org {
        Some(org) => Some(resolve_org(p, org.get_ref(), &known)),
        None => {
            p.global("missing [org] section (it needs at least `name` and `default_team`)");
            None
        }
    };
    let default_team = org.as_ref().map(|o| o.default_team.clone()).unwrap_or_default();

    let people: Vec<Person> = raw
        .people
        .iter()
        .map(|person| {
            let x = person.get_ref();
            let lbl = label("[[people]]", &x.id);
            if let Some(email) = &x.email {
                if !looks_like_email(email.get_ref()) {
                    key_problem(
                        p,
                        email,
                        "email",
                        &lbl,
                        format!("{:?} is not an email address", email.get_ref()),
                    );
                }
            }
            for team in &x.teams {
                known.check_team(p, team, "teams", &lbl);
            }
            Person {
                id: x.id.get_ref().clone(),
                name: x.name.clone().unwrap_or_else(|| x.id.get_ref().clone()),
                email: x.email.as_ref().map(|e| e.get_ref().clone()),
                chat: x.chat.clone(),
                teams: x.teams.iter().map(|t| t.get_ref().clone()).collect(),
            }
        })
        .collect();

    let services: Vec<Service> = raw
        .services
        .iter()
        .map(|service| {
            let x = service.get_ref();
            let lbl = label("[[services]]", &x.id);
            known.check_team(p, &x.team, "team", &lbl);
            let tier = x
                .tier
                .as_ref()
                .and_then(|t| parse_enum(p, t, "tier", &lbl))
                .unwrap_or(Tier::NonCore);
            if let Some(group) = &x.group {
                if group.get_ref().trim().is_empty() {
                    key_problem(p, group, "group", &lbl, "must not be empty (leave it out for no group)");
                }
            }
            Service {
                id: x.id.get_ref().clone(),
                name: x.name.clone().unwrap_or_else(|| x.id.get_ref().clone()),
                team: x.team.get_ref().clone(),
                tier,
                status_page: x.status_page,
                group: x.group.as_ref().map(|g| g.get_ref().clone()),
                description: x.description.clone().filter(|d| !d.trim().is_empty()),
                order: x.order,
            }
        })
        .collect();

    let mut contacts = BTreeMap::new();
    for (group, entries) in &raw.contacts {
        let lbl = format!("[contacts] group {group:?}");
        for entry in entries {
            let text = entry.get_ref();
            if text.contains('@') {
                if !looks_like_email(text) {
                    p.at_value(entry, format!("{lbl}: {text:?} is not an email address"));
                }
            } else if !known.people.contains_key(text) {
                p.at_value(
                    entry,
                    format!("{lbl}: {text:?} is neither a [[people]] id nor an email address"),
                );
            }
        }
        contacts.insert(group.clone(), entries.iter().map(|e| e.get_ref().clone()).collect());
    }

    let smtp = resolve_smtp(p, raw);
    let blame_rules = resolve_blame_rules(p, raw);
    let access = resolve_access(p, raw);

    let integrations: Vec<Integration> = raw
        .integrations
        .iter()
        .map(|i| resolve_integration(p, i.get_ref(), &known, &default_team))
        .collect();

    let person_teams: BTreeMap<&str, &Vec<String>> = people.iter().map(|x| (x.id.as_str(), &x.teams)).collect();
    let integration_team: BTreeMap<&str, &str> =
        integrations.iter().map(|i| (i.id.as_str(), i.team.as_str())).collect();
    let tokens: Vec<TokenConfig> = raw
        .tokens
        .iter()
        .map(|t| resolve_token(p, t, &known, &person_teams, &integration_team))
        .collect();

    // A digest must identify one principal.
    let mut digests: BTreeMap<Sha256Digest, String> = BTreeMap::new();
    let mut secrets: Vec<(&SStr, String)> = raw
        .tokens
        .iter()
        .map(|t| (&t.get_ref().sha256, label("[[tokens]]", &t.get_ref().id)))
        .chain(
            raw.integrations
                .iter()
                .map(|i| (&i.get_ref().sha256, label("[[integrations]]", &i.get_ref().id))),
        )
        .collect();
    secrets.sort_by_key(|(sha, _)| sha.span().start);
    for (sha, lbl) in secrets {
        if let Some(digest) = Sha256Digest::from_hex(sha.get_ref()) {
            match digests.get(&digest) {
                Some(first) => key_problem(p, sha, "sha256", &lbl, format!("same digest as {first}")),
                None => {
                    digests.insert(digest, lbl);
                }
            }
        }
    }

    let policy = resolve_policy(p, raw.policy.as_ref(), &Policy::playbook(), "policy", "", &known);

    let teams: Vec<Team> = raw
        .teams
        .iter()
        .map(|team| {
            let x = team.get_ref();
            let lbl = label("[[teams]]", &x.id);
            for (key, refs) in [
                ("chat", &x.chat),
                ("email", &x.email),
                ("drill_routes", &x.drill_routes),
            ] {
                for dest in refs {
                    check_team_destination(p, &known, dest, key, &lbl);
                }
            }
            let owner = format!(" of team {:?}", x.id.get_ref());
            Team {
                id: x.id.get_ref().clone(),
                name: x.name.clone().unwrap_or_else(|| x.id.get_ref().clone()),
                chat: x.chat.iter().map(|d| d.get_ref().clone()).collect(),
                email: x.email.iter().map(|d| d.get_ref().clone()).collect(),
                drill_routes: x.drill_routes.iter().map(|d| d.get_ref().clone()).collect(),
                policy: x
                    .policy
                    .as_ref()
                    .map(|raw_policy| resolve_policy(p, Some(raw_policy), &policy, "teams.policy", &owner, &known)),
            }
        })
        .collect();

    let org = org?;
    if !p.is_empty() {
        return None;
    }
    Some(OrgConfig {
        org,
        teams,
        people,
        services,
        contacts,
        destinations,
        smtp,
        tokens,
        integrations,
        policy,
        blame_rules,
        access,
    })
}

fn resolve_access(p: &mut Problems<'_>, raw: &RawConfig) -> AccessConfig {
    let mut out = AccessConfig::default();
    let Some(a) = raw.access.as_ref() else { return out };
    let label = "[access]";
    if let Some(v) = a.read_across_teams {
        out.read_across_teams = v;
    }
    if let Some(raw_d) = &a.audit_retention
        && let Some(d) = parse_dur(p, raw_d, "audit_retention", label)
    {
        if d.as_secs() < 86_400 {
            key_problem(p, raw_d, "audit_retention", label, "must be at least 1d");
        }
        out.audit_retention = d;
    }
    for (key, value, slot, max) in [
        ("rate_per_token", &a.rate_per_token, &mut out.rate_per_token, 1_000_000),
        (
            "burst_per_token",
            &a.burst_per_token,
            &mut out.burst_per_token,
            1_000_000,
        ),
        ("max_in_flight", &a.max_in_flight, &mut out.max_in_flight, 1_000_000),
    ] {
        if let Some(v) = value {
            match u32::try_from(*v.get_ref()) {
                Ok(n) if (1..=max).contains(&n) => *slot = n,
                _ => key_problem(p, v, key, label, format!("must be between 1 and {max}")),
            }
        }
    }
    out
}

fn resolve_blame_rules(p: &mut Problems<'_>, raw: &RawConfig) -> Option<Vec<BlameRuleConfig>> {
    let rules = raw.review.as_ref()?.blame_rules.as_ref()?;
    let label = "[[review.blame_rules]]";
    let mut out = Vec::with_capacity(rules.len());
    for r in rules {
        let r = r.get_ref();
        if r.id.get_ref().trim().is_empty() {
            key_problem(p, &r.id, "id", label, "must not be empty");
        }
        let phrases: Vec<String> = r.phrases.get_ref().iter().map(|s| s.trim().to_lowercase()).collect();
        if phrases.is_empty() || phrases.iter().any(String::is_empty) {
            key_problem(p, &r.phrases, "phrases", label, "needs at least one phrase, none empty");
        }
        if r.suggestion.get_ref().trim().is_empty() {
            key_problem(p, &r.suggestion, "suggestion", label, "must not be empty");
        }
        out.push(BlameRuleConfig {
            id: r.id.get_ref().trim().to_string(),
            phrases,
            suggestion: r.suggestion.get_ref().trim().to_string(),
        });
    }
    Some(out)
}

fn resolve_org(p: &mut Problems<'_>, raw: &RawOrg, known: &Known) -> Org {
    let name = raw.name.get_ref().trim().to_string();
    if name.is_empty() {
        key_problem(p, &raw.name, "name", "[org]", "must not be empty");
    }
    known.check_team(p, &raw.default_team, "default_team", "[org]");
    let unclear_severity = raw
        .unclear_severity
        .as_ref()
        .and_then(|s| parse_enum(p, s, "unclear_severity", "[org]"))
        .unwrap_or(Severity::Sev1);
    Org {
        status_page_title: raw
            .status_page_title
            .clone()
            .unwrap_or_else(|| format!("{name} Status")),
        name,
        default_team: raw.default_team.get_ref().clone(),
        unclear_severity,
    }
}

fn check_team_destination(p: &mut Problems<'_>, known: &Known, dest: &SStr, key: &str, lbl: &str) {
    let id = dest.get_ref();
    let Some(kind) = known.destinations.get(id) else {
        key_problem(
            p,
            dest,
            key,
            lbl,
            format!("unknown destination {id:?} (not in [[destinations]])"),
        );
        return;
    };
    let Some(kind) = kind else { return };
    let problem = match key {
        "chat" if !(kind.is_chat() || *kind == DestinationKind::Webhook) => {
            Some("chat takes slack, mattermost, teams or webhook destinations")
        }
        "email" if *kind != DestinationKind::Email => Some("email takes email destinations"),
        "drill_routes" if *kind == DestinationKind::StatusPage => Some("a drill must never reach a status page"),
        _ => None,
    };
    if let Some(problem) = problem {
        key_problem(
            p,
            dest,
            key,
            lbl,
            format!("destination {id:?} has kind {kind}; {problem}"),
        );
    }
}

fn resolve_destination(p: &mut Problems<'_>, raw: &Spanned<RawDestination>) -> Destination {
    let x = raw.get_ref();
    let lbl = label("[[destinations]]", &x.id);
    let kind = parse_enum::<DestinationKind>(p, &x.kind, "kind", &lbl);
    if let Some(kind) = kind {
        let (required, allowed): (&[&str], &[&str]) = match kind {
            DestinationKind::Slack | DestinationKind::Mattermost | DestinationKind::Teams => (&["url"], &["url"]),
            DestinationKind::Webhook => (&["url"], &["url", "secret"]),
            DestinationKind::Email => (&["to"], &["to"]),
            DestinationKind::StatusPage => (&["url", "page_id", "api_key"], &["url", "page_id", "api_key"]),
        };
        let present: [(&str, Option<std::ops::Range<usize>>); 5] = [
            ("url", x.url.as_ref().map(Spanned::span)),
            ("secret", x.secret.as_ref().map(Spanned::span)),
            ("to", x.to.as_ref().map(Spanned::span)),
            ("page_id", x.page_id.as_ref().map(Spanned::span)),
            ("api_key", x.api_key.as_ref().map(Spanned::span)),
        ];
        for (key, span) in &present {
            match span {
                Some(span) if !allowed.contains(key) => p.at(
                    span.clone(),
                    format!(
                        "key \"{key}\" in {lbl}: not used by kind {kind} (it takes {})",
                        allowed.join(", ")
                    ),
                ),
                None if required.contains(key) => p.at_value(
                    raw,
                    format!(
                        "missing key \"{key}\" in {lbl} (kind {kind} needs {})",
                        required.join(", ")
                    ),
                ),
                _ => {}
            }
        }
    }
    if let Some(url) = &x.url {
        if !is_http_url(url.get_ref()) {
            key_problem(
                p,
                url,
                "url",
                &lbl,
                format!("{:?} is not an http:// or https:// URL", url.get_ref()),
            );
        }
    }
    if let Some(to) = &x.to {
        if to.get_ref().is_empty() {
            key_problem(p, to, "to", &lbl, "needs at least one address");
        }
        for addr in to.get_ref() {
            if !looks_like_email(addr.get_ref()) {
                key_problem(
                    p,
                    addr,
                    "to",
                    &lbl,
                    format!("{:?} is not an email address", addr.get_ref()),
                );
            }
        }
    }
    for (key, value) in [("page_id", &x.page_id), ("api_key", &x.api_key), ("secret", &x.secret)] {
        if let Some(value) = value {
            if value.get_ref().is_empty() {
                key_problem(p, value, key, &lbl, "must not be empty");
            }
        }
    }
    Destination {
        id: x.id.get_ref().clone(),
        kind: kind.unwrap_or(DestinationKind::Webhook),
        url: x.url.as_ref().map(|u| u.get_ref().clone()),
        secret: x.secret.as_ref().map(|s| Secret::new(s.get_ref().clone())),
        to: x
            .to
            .as_ref()
            .map(|to| to.get_ref().iter().map(|a| a.get_ref().clone()).collect())
            .unwrap_or_default(),
        page_id: x.page_id.as_ref().map(|s| s.get_ref().clone()),
        api_key: x.api_key.as_ref().map(|s| Secret::new(s.get_ref().clone())),
    }
}

fn resolve_smtp(p: &mut Problems<'_>, raw: &RawConfig) -> Option<Smtp> {
    let Some(smtp) = &raw.smtp else {
        let first_email = raw
            .destinations
            .iter()
            .find(|d| d.get_ref().kind.get_ref() == DestinationKind::Email.as_str());
        if let Some(dest) = first_email {
            p.at_value(
                dest,
                format!(
                    "{} has kind email, which needs an [smtp] section",
                    label("[[destinations]]", &dest.get_ref().id)
                ),
            );
        }
        return None;
    };
    let x = smtp.get_ref();
    if x.host.get_ref().trim().is_empty() {
        key_problem(p, &x.host, "host", "[smtp]", "must not be empty");
    }
    if *x.port.get_ref() == 0 {
        key_problem(p, &x.port, "port", "[smtp]", "must be between 1 and 65535");
    }
    if !looks_like_email(x.from.get_ref()) {
        key_problem(
            p,
            &x.from,
            "from",
            "[smtp]",
            format!("{:?} is not an email address", x.from.get_ref()),
        );
    }
    match (&x.username, &x.password) {
        (Some(u), None) => key_problem(p, u, "username", "[smtp]", "needs `password` too"),
        (None, Some(pw)) => key_problem(p, pw, "password", "[smtp]", "needs `username` too"),
        _ => {}
    }
    let tls = x
        .tls
        .as_ref()
        .and_then(|t| parse_enum(p, t, "tls", "[smtp]"))
        .unwrap_or(Tls::StartTls);
    Some(Smtp {
        host: x.host.get_ref().clone(),
        port: *x.port.get_ref(),
        tls,
        from: x.from.get_ref().clone(),
        username: x.username.as_ref().map(|u| u.get_ref().clone()),
        password: x.password.as_ref().map(|pw| Secret::new(pw.get_ref().clone())),
    })
}

fn resolve_integration(p: &mut Problems<'_>, x: &RawIntegration, known: &Known, default_team: &str) -> Integration {
    let lbl = label("[[integrations]]", &x.id);
    let kind = parse_enum(p, &x.kind, "kind", &lbl).unwrap_or(IntegrationKind::Alertmanager);
    let sha256 = parse_digest(p, &x.sha256, &lbl);
    if let Some(team) = &x.team {
        known.check_team(p, team, "team", &lbl);
    }
    let reopen_window = x
        .reopen_window
        .as_ref()
        .and_then(|w| parse_dur(p, w, "reopen_window", &lbl))
        .unwrap_or(DEFAULT_REOPEN_WINDOW);
    Integration {
        id: x.id.get_ref().clone(),
        kind,
        sha256,
        team: x
            .team
            .as_ref()
            .map_or_else(|| default_team.to_string(), |t| t.get_ref().clone()),
        auto_mitigate: x.auto_mitigate,
        reopen_window,
        auto_resolve: x.auto_resolve,
    }
}

fn resolve_token(
    p: &mut Problems<'_>,
    raw: &Spanned<RawToken>,
    known: &Known,
    person_teams: &BTreeMap<&str, &Vec<String>>,
    integration_team: &BTreeMap<&str, &str>,
) -> TokenConfig {
    let x = raw.get_ref();
    let lbl = label("[[tokens]]", &x.id);
    let sha256 = parse_digest(p, &x.sha256, &lbl);
    let principal = match (&x.person, &x.integration) {
        (Some(person), None) => {
            if !known.people.contains_key(person.get_ref()) {
                key_problem(
                    p,
                    person,
                    "person",
                    &lbl,
                    format!("unknown person {:?} (not in [[people]])", person.get_ref()),
                );
            }
            Principal::Person(person.get_ref().clone())
        }
        (None, Some(integration)) => {
            if !known.integrations.contains_key(integration.get_ref()) {
                key_problem(
                    p,
                    integration,
                    "integration",
                    &lbl,
                    format!(
                        "unknown integration {:?} (not in [[integrations]])",
                        integration.get_ref()
                    ),
                );
            }
            Principal::Integration(integration.get_ref().clone())
        }
        (Some(person), Some(_)) => {
            p.at_value(
                raw,
                format!("{lbl} has both `person` and `integration`; give exactly one"),
            );
            Principal::Person(person.get_ref().clone())
        }
        (None, None) => {
            p.at_value(raw, format!("{lbl} needs `person` or `integration`"));
            Principal::Person(String::new())
        }
    };
    if x.scopes.get_ref().is_empty() {
        key_problem(p, &x.scopes, "scopes", &lbl, "needs at least one scope");
    }
    let mut scopes = Vec::new();
    for scope in x.scopes.get_ref() {
        if let Some(scope) = parse_enum(p, scope, "scopes", &lbl) {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
    }
    let teams = match &x.teams {
        Some(list) => {
            let entries = list.get_ref();
            if entries.iter().any(|t| t.get_ref() == "*") {
                if entries.len() > 1 {
                    key_problem(p, list, "teams", &lbl, "\"*\" (all teams) must be the only entry");
                }
                TeamAccess::All
            } else {
                for team in entries {
                    known.check_team(p, team, "teams", &lbl);
                }
                TeamAccess::Only(entries.iter().map(|t| t.get_ref().clone()).collect())
            }
        }
        None => match &principal {
            Principal::Person(id) => {
                TeamAccess::Only(person_teams.get(id.as_str()).map(|t| t.to_vec()).unwrap_or_default())
            }
            Principal::Integration(id) => TeamAccess::Only(
                integration_team
                    .get(id.as_str())
                    .map(|t| vec![t.to_string()])
                    .unwrap_or_default(),
            ),
        },
    };
    TokenConfig {
        id: x.id.get_ref().clone(),
        sha256,
        principal,
        scopes,
        teams,
    }
}

/// Merges a raw `[policy]` / `[teams.policy]` over `base`: missing keys keep
/// the base value, a present `escalations` list replaces the base list.
fn resolve_policy(
    p: &mut Problems<'_>,
    raw: Option<&RawPolicy>,
    base: &Policy,
    prefix: &str,
    owner: &str,
    known: &Known,
) -> Policy {
    let mut policy = base.clone();
    let Some(raw) = raw else { return policy };
    let section = format!("[{prefix}]{owner}");

    if let Some(review_due) = &raw.review_due {
        if let Some(d) = parse_dur(p, review_due, "review_due", &section) {
            policy.review_due = d;
        }
    }

    if let Some(checklist) = &raw.checklist {
        let lbl = format!("[{prefix}.checklist]{owner}");
        let c = &mut policy.checklist;
        for (key, value, slot) in [
            ("acknowledge", &checklist.acknowledge, &mut c.acknowledge),
            (
                "severity_and_commander",
                &checklist.severity_and_commander,
                &mut c.severity_and_commander,
            ),
            ("team_assembled", &checklist.team_assembled, &mut c.team_assembled),
            (
                "investigation_plan",
                &checklist.investigation_plan,
                &mut c.investigation_plan,
            ),
        ] {
            if let Some(d) = value.as_ref().and_then(|v| parse_dur(p, v, key, &lbl)) {
                *slot = d;
            }
        }
    }

    if let Some(severities) = &raw.severity {
        let tables = [&severities.sev1, &severities.sev2, &severities.sev3, &severities.sev4];
        for (sev, table) in Severity::ALL.iter().zip(tables) {
            if let Some(table) = table {
                let lbl = format!("[{prefix}.severity.{sev}]{owner}");
                merge_severity(p, table, &mut policy.severity[sev.index()], &lbl);
            }
        }
    }

    if let Some(rules) = &raw.escalations {
        let lbl = format!("[[{prefix}.escalations]]");
        check_ids(p, &format!("{lbl}{owner}"), rules.iter().map(|r| &r.get_ref().id));
        policy.escalations = rules
            .iter()
            .map(|r| resolve_escalation(p, r.get_ref(), &lbl, owner, known))
            .collect();
    }
    policy
}

fn merge_severity(p: &mut Problems<'_>, raw: &RawSeverityPolicy, into: &mut SeverityPolicy, lbl: &str) {
    for (key, value, slot) in [
        (
            "stakeholder_notice",
            &raw.stakeholder_notice,
            &mut into.stakeholder_notice,
        ),
        ("update_every", &raw.update_every, &mut into.update_every),
        ("sme_report_every", &raw.sme_report_every, &mut into.sme_report_every),
    ] {
        let Some(value) = value else { continue };
        if value.get_ref() == "none" {
            *slot = None;
        } else if let Some(d) = parse_dur(p, value, key, lbl) {
            *slot = Some(d);
        }
    }
}

fn resolve_escalation(
    p: &mut Problems<'_>,
    x: &RawEscalation,
    section: &str,
    owner: &str,
    known: &Known,
) -> EscalationRule {
    let lbl = format!("{section} {:?}{owner}", x.id.get_ref());
    let severity = x
        .severity
        .iter()
        .filter_map(|s| parse_enum(p, s, "severity", &lbl))
        .collect();
    let unless_status = x
        .unless_status
        .iter()
        .filter_map(|s| parse_enum(p, s, "unless_status", &lbl))
        .collect();
    let data_loss = x.data_loss.as_ref().and_then(|d| parse_enum(p, d, "data_loss", &lbl));
    let after = parse_dur(p, &x.after, "after", &lbl).unwrap_or_default();
    if !known.contact_groups.contains(x.notify.get_ref()) {
        key_problem(
            p,
            &x.notify,
            "notify",
            &lbl,
            format!("unknown [contacts] group {:?}", x.notify.get_ref()),
        );
    }
    EscalationRule {
        id: x.id.get_ref().clone(),
        severity,
        unless_status,
        data_loss,
        regulatory: x.regulatory,
        after,
        notify: x.notify.get_ref().clone(),
        message: x.message.clone(),
    }
}
