use std::time::Duration;

use incidentd_config::{
    ConfigError, DataLoss, DestinationKind, IntegrationKind, OrgConfig, Policy, Principal, Scope, Severity,
    SeverityPolicy, Status, TeamAccess, Tier, Tls,
};

const CONFIG_MD_EXAMPLE: &str = include_str!("fixtures/config_md_example.toml");

fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

/// The problems of an invalid config, rendered one per entry.
fn problems(text: &str) -> Vec<String> {
    match OrgConfig::from_toml_str(text) {
        Ok(_) => panic!("expected an invalid config:\n{text}"),
        Err(err) => {
            let lines: Vec<String> = err.problems().iter().map(ToString::to_string).collect();
            assert_eq!(err.to_string(), lines.join("\n"));
            lines
        }
    }
}

fn parse(text: &str) -> OrgConfig {
    match OrgConfig::from_toml_str(text) {
        Ok(config) => config,
        Err(err) => panic!("expected a valid config, got:\n{err}\n---\n{text}"),
    }
}

/// 1-based line of the first occurrence of `needle` (which must be present).
fn line_of(text: &str, needle: &str) -> usize {
    let at = text.find(needle).unwrap_or_else(|| panic!("{needle:?} not in text"));
    text[..at].matches('\n').count() + 1
}

fn assert_has(problems: &[String], expected: &str) {
    assert!(
        problems.iter().any(|p| p == expected),
        "expected problem\n  {expected}\nin\n  {}",
        problems.join("\n  ")
    );
}

/// A small valid config exercising every section.
const BASE: &str = r#"
[org]
name = "Acme"
default_team = "platform"

[[teams]]
id = "platform"
name = "Platform"
chat = ["platform-chat"]
email = ["platform-mail"]
drill_routes = ["drills"]

[[teams]]
id = "payments"
chat = ["hook"]

[[people]]
id = "alice"
name = "Alice"
email = "alice@example.com"
teams = ["payments"]

[[people]]
id = "carol"
name = "Carol"
email = "carol@example.com"
teams = ["platform"]

[[services]]
id = "payments-api"
team = "payments"
tier = "core"
status_page = true

[contacts]
engineering_leadership = ["carol"]
executives = ["ceo@example.com"]
legal = ["legal@example.com", "alice"]

[[destinations]]
id = "platform-chat"
kind = "slack"
url = "https://hooks.example.com/a"

[[destinations]]
id = "drills"
kind = "mattermost"
url = "https://mm.example.com/hooks/x"

[[destinations]]
id = "hook"
kind = "webhook"
url = "https://example.com/hook"
secret = "s3cret"

[[destinations]]
id = "platform-mail"
kind = "email"
to = ["platform@example.com"]

[[destinations]]
id = "status"
kind = "statuspage"
url = "https://api.statuspage.example.com/v1"
page_id = "abc123"
api_key = "key-123"

[smtp]
host = "smtp.example.com"
port = 587
from = "incidentd@example.com"

[[integrations]]
id = "am"
kind = "alertmanager"
sha256 = "a5c5e664a425a7a42c0844c00cc37430c36c271bec487025399043c75e171e97"

[[tokens]]
id = "alice-cli"
sha256 = "50494E48A873F58A31ADB9D5B218DEA509D599CC0BB661C63D40601C136CEA93"
person = "alice"
scopes = ["read", "respond"]

[[tokens]]
id = "am-ingest"
sha256 = "e10ac9c511f8152d188ff59f86cef999ead15c2a16e36a44a0c865d8271d0270"
integration = "am"
scopes = ["ingest"]

[[tokens]]
id = "admin"
sha256 = "28810b832791b7f400941cf835102f811358a41fb605c5f71994dcb761f257ad"
person = "carol"
scopes = ["admin", "read"]
teams = ["*"]
"#;

// ---------------------------------------------------------------- CONFIG.md

/// The CONFIG.md example is a shape illustration: it refers to a team
/// (`platform`), destinations (`payments-stakeholders`, `drills-chat`) and a
/// person (`carol`) it never defines. Every key and value parses; the only
/// problems are those four dangling references, all reported at once.
#[test]
fn config_md_example_as_written_only_lacks_referenced_entities() {
    let got = problems(CONFIG_MD_EXAMPLE);
    let t = CONFIG_MD_EXAMPLE;
    assert_eq!(
        got,
        vec![
            format!(
                "config line {}: key \"default_team\" in [org]: unknown team \"platform\" (not in [[teams]])",
                line_of(t, "default_team = ")
            ),
            format!(
                "config line {}: key \"email\" in [[teams]] \"payments\": unknown destination \"payments-stakeholders\" (not in [[destinations]])",
                line_of(t, "email = [\"payments-stakeholders\"]")
            ),
            format!(
                "config line {}: key \"drill_routes\" in [[teams]] \"payments\": unknown destination \"drills-chat\" (not in [[destinations]])",
                line_of(t, "drill_routes = ")
            ),
            format!(
                "config line {}: [contacts] group \"engineering_leadership\": \"carol\" is neither a [[people]] id nor an email address",
                line_of(t, "engineering_leadership = [\"carol\"]")
            ),
        ]
    );
}

const CONFIG_MD_COMPLETION: &str = r#"
[[teams]]
id = "platform"
name = "Platform"

[[people]]
id = "carol"
name = "Carol"
email = "carol@example.com"
teams = ["platform"]

[[destinations]]
id = "payments-stakeholders"
kind = "email"
to = ["payments-stakeholders@example.com"]

[[destinations]]
id = "drills-chat"
kind = "slack"
url = "https://hooks.example.com/drills"
"#;

#[test]
fn config_md_example_with_its_referenced_entities_parses() {
    let text = format!("{CONFIG_MD_EXAMPLE}{CONFIG_MD_COMPLETION}");
    let c = parse(&text);
    assert_eq!(c.org.name, "Example Corp");
    assert_eq!(c.org.default_team, "platform");
    assert_eq!(c.org.unclear_severity, Severity::Sev1);
    assert_eq!(c.org.status_page_title, "Example Corp Status");

    let payments = c.team("payments").unwrap();
    assert_eq!(payments.name, "Payments");
    assert_eq!(payments.chat, ["payments-chat"]);
    assert_eq!(payments.email, ["payments-stakeholders"]);
    assert_eq!(payments.drill_routes, ["drills-chat"]);
    assert!(payments.policy.is_none());

    let alice = c.person("alice").unwrap();
    assert_eq!(alice.name, "Alice Moreau");
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    assert_eq!(alice.chat.as_deref(), Some("@alice"));
    assert_eq!(alice.teams, ["payments"]);

    let api = c.service("payments-api").unwrap();
    assert_eq!((api.name.as_str(), api.team.as_str()), ("Payments API", "payments"));
    assert_eq!(api.tier, Tier::Core);
    assert!(api.status_page);
    assert_eq!(api.group.as_deref(), Some("Checkout"));

    assert_eq!(c.contact_group("engineering_leadership"), ["carol"]);
    assert_eq!(c.contact_emails("engineering_leadership"), ["carol@example.com"]);
    assert_eq!(c.contact_group("executives"), ["ceo@example.com"]);
    assert_eq!(c.contact_group("legal"), ["legal@example.com"]);

    let chat = c.destination("payments-chat").unwrap();
    assert_eq!(chat.kind, DestinationKind::Slack);
    assert_eq!(chat.url.as_deref(), Some("https://hooks.example.com/T000/B000/XXXX"));

    let smtp = c.smtp.as_ref().unwrap();
    assert_eq!(
        (smtp.host.as_str(), smtp.port, smtp.tls),
        ("127.0.0.1", 2525, Tls::None)
    );
    assert_eq!(smtp.from, "incidentd@example.com");
    assert!(smtp.username.is_none() && smtp.password.is_none());

    let token = c.token("alice-cli").unwrap();
    assert_eq!(
        token.sha256.to_hex(),
        "50494e48a873f58a31adb9d5b218dea509d599cc0bb661c63d40601c136cea93"
    );
    assert_eq!(token.principal, Principal::Person("alice".into()));
    assert_eq!(token.scopes, [Scope::Read, Scope::Respond, Scope::Command]);
    assert_eq!(token.teams, TeamAccess::Only(vec!["payments".into()]));
    assert_eq!(
        c.token_by_digest(&token.sha256).map(|t| t.id.as_str()),
        Some("alice-cli")
    );

    let am = c.integration("am-main").unwrap();
    assert_eq!(am.kind, IntegrationKind::Alertmanager);
    assert_eq!(am.team, "payments");
    assert!(!am.auto_mitigate);
    assert_eq!(am.reopen_window, mins(30));

    // The example's [policy] spells out the playbook.
    assert_eq!(c.policy, Policy::playbook());
    assert_eq!(c.policy_for_team("payments"), Policy::playbook());
    assert!(c.warnings().is_empty());
}

// ---------------------------------------------------------------- demo

#[test]
fn demo_config_parses_and_is_realistic() {
    let c = OrgConfig::demo();
    assert_eq!(OrgConfig::from_toml_str(incidentd_config::DEMO_TOML).unwrap(), c);
    let team_ids: Vec<&str> = c.teams.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(team_ids, ["platform", "payments", "identity", "data"]);
    assert!(c.people.len() >= 8);
    assert_eq!(c.contact_group("engineering_leadership"), ["carol"]);
    assert!(c.person("carol").is_some());

    let api = c.service("payments-api").unwrap();
    assert_eq!(api.tier, Tier::Core);
    assert!(api.status_page);
    assert_eq!(api.group.as_deref(), Some("Checkout"));
    assert!(c.service("checkout-web").is_some());
    assert!(c.service("auth").is_some());
    assert_eq!(c.service("search").unwrap().tier, Tier::NonCore);

    for kind in [
        DestinationKind::Slack,
        DestinationKind::Mattermost,
        DestinationKind::Teams,
        DestinationKind::Webhook,
        DestinationKind::Email,
    ] {
        assert!(
            c.destinations.iter().any(|d| d.kind == kind),
            "demo has no {kind} destination"
        );
    }
    let smtp = c.smtp.as_ref().unwrap();
    assert_eq!((smtp.host.as_str(), smtp.port), ("127.0.0.1", 2525));
    assert!(c.tokens.is_empty());
    let kinds: Vec<IntegrationKind> = c.integrations.iter().map(|i| i.kind).collect();
    assert_eq!(kinds, [IntegrationKind::Alertmanager, IntegrationKind::PagerDuty]);
    assert_eq!(c.policy, Policy::playbook());
    for team in &c.teams {
        assert_eq!(c.policy_for_team(&team.id), Policy::playbook());
    }
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
}

// ---------------------------------------------------------------- base

#[test]
fn base_config_resolves_defaults() {
    let c = parse(BASE);
    assert_eq!(c.org.unclear_severity, Severity::Sev1);
    assert_eq!(c.org.status_page_title, "Acme Status");
    assert_eq!(c.team("payments").unwrap().name, "payments");
    assert_eq!(c.smtp.as_ref().unwrap().tls, Tls::StartTls);
    let am = c.integration("am").unwrap();
    assert_eq!(am.team, "platform", "integration team defaults to org.default_team");
    assert_eq!(am.reopen_window, mins(30));
    // Token team access defaults to the principal's teams.
    assert_eq!(
        c.token("alice-cli").unwrap().teams,
        TeamAccess::Only(vec!["payments".into()])
    );
    assert_eq!(
        c.token("am-ingest").unwrap().teams,
        TeamAccess::Only(vec!["platform".into()])
    );
    assert_eq!(
        c.token("am-ingest").unwrap().principal,
        Principal::Integration("am".into())
    );
    assert_eq!(c.token("admin").unwrap().teams, TeamAccess::All);
    assert!(c.token("admin").unwrap().teams.allows("anything"));
    assert!(c.token("alice-cli").unwrap().has_scope(Scope::Respond));
    assert!(!c.token("alice-cli").unwrap().has_scope(Scope::Admin));
    // Uppercase hex is accepted and normalised.
    assert_eq!(
        c.token("alice-cli").unwrap().sha256.to_hex(),
        "50494e48a873f58a31adb9d5b218dea509d599cc0bb661c63d40601c136cea93"
    );
    assert_eq!(c.route_team(Some("payments")), "payments");
    assert_eq!(c.route_team(Some("nope")), "platform");
    assert_eq!(c.route_team(None), "platform");
    assert_eq!(
        c.members("platform").map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["carol"]
    );
    assert_eq!(c.contact_emails("legal"), ["legal@example.com", "alice@example.com"]);
    let status = c.destination("status").unwrap();
    assert_eq!(status.api_key.as_ref().unwrap().expose(), "key-123");
    let hook = c.destination("hook").unwrap();
    assert_eq!(hook.secret.as_ref().unwrap().expose(), "s3cret");
    assert!(
        !format!("{c:?}").contains("s3cret"),
        "secrets must not appear in Debug output"
    );
    assert!(!format!("{c:?}").contains("key-123"));
    assert_eq!(c.policy, Policy::playbook());
}

// ---------------------------------------------------------------- structural errors

#[test]
fn empty_config_names_missing_org() {
    assert_eq!(
        problems(""),
        ["config: missing [org] section (it needs at least `name` and `default_team`)"]
    );
    assert_eq!(problems("# only a comment\n").len(), 1);
}

#[test]
fn org_needs_name_and_default_team() {
    let got = problems("[org]\nname = \"Acme\"\n");
    assert_eq!(got, ["config line 1: missing key \"default_team\" in [org]"]);
    let got = problems("\n[org]\ndefault_team = \"x\"\n");
    assert_eq!(got, ["config line 2: missing key \"name\" in [org]"]);
}

#[test]
fn unknown_key_names_key_section_and_line() {
    let text = BASE.replacen(
        "id = \"payments\"\nchat",
        "id = \"payments\"\nnaem = \"Payments\"\nchat",
        1,
    );
    let got = problems(&text);
    assert_eq!(
        got,
        [format!(
            "config line {}: unknown key \"naem\" in [[teams]] (expected one of id, name, chat, email, drill_routes, policy)",
            line_of(&text, "naem")
        )]
    );

    let cases: &[(&str, &str, &str)] = &[
        (
            "\nnaem = 1\n[org]\nname = \"a\"\ndefault_team = \"b\"\n",
            "naem",
            "the top level",
        ),
        ("[org]\nname = \"a\"\ndefault_teem = \"b\"\n", "default_teem", "[org]"),
        (
            "[[teams]]\nid = \"a\"\n[teams.policy]\nreview_du = \"1h\"\n",
            "review_du",
            "[teams.policy]",
        ),
        (
            "[policy.severity.SEV5]\nupdate_every = \"1m\"\n",
            "SEV5",
            "[policy.severity]",
        ),
        (
            "[policy.severity.SEV2]\nupdate_evry = \"1m\"\n",
            "update_evry",
            "[policy.severity.SEV2]",
        ),
        (
            "[policy]\nchecklist = { acknowledge = \"1m\", acknowlege = \"2m\" }\n",
            "acknowlege",
            "[policy.checklist]",
        ),
        (
            "[[policy.escalations]]\nid = \"x\"\nafter = \"1m\"\nnotify = \"g\"\nnotfy = \"h\"\n",
            "notfy",
            "[[policy.escalations]]",
        ),
        (
            "[smtp]\nhost = \"h\"\nport = 25\nfrom = \"a@b\"\nuser = \"u\"\n",
            "user",
            "[smtp]",
        ),
        (
            "[[tokens]]\nid = \"t\"\nsha256 = \"00\"\nscopes = []\nteam = [\"*\"]\n",
            "team",
            "[[tokens]]",
        ),
    ];
    for (text, key, section) in cases {
        let got = problems(text);
        assert_eq!(got.len(), 1, "{got:?}");
        let prefix = format!("config line {}: unknown key \"{key}\" in {section}", line_of(text, key));
        assert!(got[0].starts_with(&prefix), "expected {prefix:?}, got {:?}", got[0]);
    }
}

#[test]
fn wrong_type_names_key_and_line() {
    let text = "[[policy.escalations]]\nid = \"x\"\nafter = 30\nnotify = \"g\"\n";
    assert_eq!(
        problems(text),
        ["config line 3: key \"after\" in [[policy.escalations]]: invalid type: integer `30`, expected a string"]
    );
    let text = "[org]\nname = \"a\"\ndefault_team = \"b\"\n[smtp]\nhost = \"h\"\nport = 70000\nfrom = \"a@b\"\n";
    let got = problems(text);
    assert!(
        got[0].starts_with("config line 6: key \"port\" in [smtp]: invalid value"),
        "{got:?}"
    );
}

#[test]
fn syntax_errors_have_lines() {
    let got = problems("[org]\nname = \"a\"\ndefault_team = \n");
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("config line 3:"), "{got:?}");
    let got = problems("[org]\nname = \"a\"\n[org]\n");
    assert!(
        got[0].starts_with("config line 3:") && got[0].contains("duplicate key"),
        "{got:?}"
    );
}

// ---------------------------------------------------------------- durations

#[test]
fn bad_durations_name_key_and_line() {
    let text = BASE.to_string()
        + r#"
[policy]
review_due = "2 days"
checklist = { acknowledge = "90" }
[policy.severity.SEV2]
update_every = "30min"

[[policy.escalations]]
id = "slow"
after = "1m1h"
notify = "legal"
"#;
    let got = problems(&text);
    assert_eq!(got.len(), 4, "{got:#?}");
    assert_has(
        &got,
        &format!(
            "config line {}: key \"review_due\" in [policy]: invalid duration \"2 days\": unexpected character (write e.g. \"90s\", \"15m\", \"1h30m\", \"500ms\"; units d, h, m, s, ms)",
            line_of(&text, "review_due")
        ),
    );
    assert!(got.iter().any(|p| p.starts_with(&format!(
        "config line {}: key \"acknowledge\" in [policy.checklist]: invalid duration \"90\": missing unit",
        line_of(&text, "acknowledge")
    ))));
    assert!(got.iter().any(|p| p.starts_with(&format!(
        "config line {}: key \"update_every\" in [policy.severity.SEV2]: invalid duration \"30min\"",
        line_of(&text, "update_every")
    ))));
    assert!(got.iter().any(|p| p.starts_with(&format!(
        "config line {}: key \"after\" in [[policy.escalations]] \"slow\": invalid duration \"1m1h\"",
        line_of(&text, "\"1m1h\"")
    ))));

    let text = BASE.replacen(
        "kind = \"alertmanager\"",
        "kind = \"alertmanager\"\nreopen_window = \"soon\"",
        1,
    );
    let got = problems(&text);
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with(&format!(
        "config line {}: key \"reopen_window\" in [[integrations]] \"am\": invalid duration \"soon\"",
        line_of(&text, "reopen_window")
    )));
}

// ---------------------------------------------------------------- references

#[test]
fn dangling_references_are_all_named() {
    let text = r#"
[org]
name = "Acme"
default_team = "ghost-team"

[[teams]]
id = "platform"
chat = ["no-chat"]
email = ["no-mail"]
drill_routes = ["no-drill"]

[[people]]
id = "alice"
teams = ["no-team-p"]

[[services]]
id = "api"
team = "no-team-s"

[contacts]
leads = ["nobody", "boss@example.com"]

[[integrations]]
id = "am"
kind = "alertmanager"
sha256 = "a5c5e664a425a7a42c0844c00cc37430c36c271bec487025399043c75e171e97"
team = "no-team-i"

[[tokens]]
id = "t1"
sha256 = "50494e48a873f58a31adb9d5b218dea509d599cc0bb661c63d40601c136cea93"
person = "no-person"
scopes = ["read"]
teams = ["no-team-t"]

[[tokens]]
id = "t2"
sha256 = "e10ac9c511f8152d188ff59f86cef999ead15c2a16e36a44a0c865d8271d0270"
integration = "no-integration"
scopes = ["ingest"]

[[policy.escalations]]
id = "x"
after = "1m"
notify = "no-group"
"#;
    let got = problems(text);
    let expect = [
        (
            "\"ghost-team\"",
            "key \"default_team\" in [org]: unknown team \"ghost-team\" (not in [[teams]])",
        ),
        (
            "\"no-chat\"",
            "key \"chat\" in [[teams]] \"platform\": unknown destination \"no-chat\" (not in [[destinations]])",
        ),
        (
            "\"no-mail\"",
            "key \"email\" in [[teams]] \"platform\": unknown destination \"no-mail\" (not in [[destinations]])",
        ),
        (
            "\"no-drill\"",
            "key \"drill_routes\" in [[teams]] \"platform\": unknown destination \"no-drill\" (not in [[destinations]])",
        ),
        (
            "\"no-team-p\"",
            "key \"teams\" in [[people]] \"alice\": unknown team \"no-team-p\" (not in [[teams]])",
        ),
        (
            "\"no-team-s\"",
            "key \"team\" in [[services]] \"api\": unknown team \"no-team-s\" (not in [[teams]])",
        ),
        (
            "\"nobody\"",
            "[contacts] group \"leads\": \"nobody\" is neither a [[people]] id nor an email address",
        ),
        (
            "\"no-team-i\"",
            "key \"team\" in [[integrations]] \"am\": unknown team \"no-team-i\" (not in [[teams]])",
        ),
        (
            "\"no-person\"",
            "key \"person\" in [[tokens]] \"t1\": unknown person \"no-person\" (not in [[people]])",
        ),
        (
            "\"no-team-t\"",
            "key \"teams\" in [[tokens]] \"t1\": unknown team \"no-team-t\" (not in [[teams]])",
        ),
        (
            "\"no-integration\"",
            "key \"integration\" in [[tokens]] \"t2\": unknown integration \"no-integration\" (not in [[integrations]])",
        ),
        (
            "\"no-group\"",
            "key \"notify\" in [[policy.escalations]] \"x\": unknown [contacts] group \"no-group\"",
        ),
    ];
    for (needle, message) in expect {
        assert_has(&got, &format!("config line {}: {message}", line_of(text, needle)));
    }
    assert_eq!(got.len(), expect.len(), "{got:#?}");
    // Reported in line order.
    let mut sorted = got.clone();
    sorted.sort_by_key(|p| {
        p.split(':')
            .next()
            .and_then(|s| s.rsplit(' ').next()?.parse::<usize>().ok())
    });
    assert_eq!(got, sorted);
}

#[test]
fn destination_kinds_must_fit_team_lists() {
    let text = BASE.replacen(
        "chat = [\"hook\"]",
        "chat = [\"platform-mail\"]\nemail = [\"hook\"]\ndrill_routes = [\"status\"]",
        1,
    );
    let got = problems(&text);
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_has(
        &got,
        &format!(
            "config line {}: key \"chat\" in [[teams]] \"payments\": destination \"platform-mail\" has kind email; chat takes slack, mattermost, teams or webhook destinations",
            line_of(&text, "chat = [\"platform-mail\"]")
        ),
    );
    assert!(
        got.iter()
            .any(|p| p.contains("destination \"hook\" has kind webhook; email takes email destinations"))
    );
    assert!(got.iter().any(|p| p.contains("a drill must never reach a status page")));
}

#[test]
fn duplicate_ids_are_named() {
    let text = BASE.to_string()
        + r#"
[[teams]]
id = "payments"

[[people]]
id = "alice"

[[destinations]]
id = "hook"
kind = "slack"
url = "https://example.com/2"

[[policy.escalations]]
id = "same"
after = "1m"
notify = "legal"
[[policy.escalations]]
id = "same"
after = "2m"
notify = "legal"
"#;
    let got = problems(&text);
    let first = |needle: &str| line_of(&text, needle);
    let last = |needle: &str| {
        let at = text.rfind(needle).unwrap();
        text[..at].matches('\n').count() + 1
    };
    assert_eq!(
        got,
        [
            format!(
                "config line {}: duplicate [[teams]] id \"payments\" (first defined on line {})",
                last("id = \"payments\""),
                first("id = \"payments\"")
            ),
            format!(
                "config line {}: duplicate [[people]] id \"alice\" (first defined on line {})",
                last("id = \"alice\""),
                first("id = \"alice\"")
            ),
            format!(
                "config line {}: duplicate [[destinations]] id \"hook\" (first defined on line {})",
                last("id = \"hook\""),
                first("id = \"hook\"")
            ),
            format!(
                "config line {}: duplicate [[policy.escalations]] id \"same\" (first defined on line {})",
                last("id = \"same\""),
                first("id = \"same\"")
            ),
        ]
    );
}

#[test]
fn invalid_ids_are_rejected() {
    let long = "a".repeat(65);
    let text = BASE
        .replacen("id = \"payments\"\nchat", "id = \"Pay_ments\"\nchat", 1)
        .replacen("id = \"carol\"", &format!("id = \"{long}\""), 1);
    let got = problems(&text);
    assert_has(
        &got,
        &format!(
            "config line {}: key \"id\" in [[teams]]: \"Pay_ments\" is not a valid id (use 1 to 64 lowercase letters, digits or '-')",
            line_of(&text, "Pay_ments")
        ),
    );
    assert!(
        got.iter().any(|p| p.contains(&format!("\"{long}\" is not a valid id"))),
        "{got:#?}"
    );
    assert!(incidentd_config::is_valid_id(&"a".repeat(64)));
    assert!(!incidentd_config::is_valid_id(""));
}

// ---------------------------------------------------------------- enums and kinds

#[test]
fn bad_enum_values_are_named() {
    let text = BASE
        .replacen("tier = \"core\"", "tier = \"Core\"", 1)
        .replacen("port = 587", "port = 587\ntls = \"ssl\"", 1)
        .replacen("scopes = [\"ingest\"]", "scopes = [\"ingest\", \"write\"]", 1)
        .replacen("kind = \"alertmanager\"", "kind = \"prometheus\"", 1)
        .replacen(
            "default_team = \"platform\"",
            "default_team = \"platform\"\nunclear_severity = \"SEV0\"",
            1,
        )
        + r#"
[[policy.escalations]]
id = "x"
severity = ["SEV1", "sev2"]
unless_status = ["CLOSED"]
data_loss = "MAYBE"
after = "0s"
notify = "legal"
"#;
    let got = problems(&text);
    for (needle, message) in [
        (
            "\"Core\"",
            "key \"tier\" in [[services]] \"payments-api\": unknown tier \"Core\"; expected one of core, non-core",
        ),
        (
            "\"ssl\"",
            "key \"tls\" in [smtp]: unknown tls mode \"ssl\"; expected one of none, starttls, implicit",
        ),
        (
            "\"write\"",
            "key \"scopes\" in [[tokens]] \"am-ingest\": unknown scope \"write\"; expected one of read, respond, command, admin, ingest",
        ),
        (
            "\"prometheus\"",
            "key \"kind\" in [[integrations]] \"am\": unknown integration kind \"prometheus\"; expected one of alertmanager, pagerduty",
        ),
        (
            "\"SEV0\"",
            "key \"unclear_severity\" in [org]: unknown severity \"SEV0\"; expected one of SEV1, SEV2, SEV3, SEV4",
        ),
        (
            "\"sev2\"",
            "key \"severity\" in [[policy.escalations]] \"x\": unknown severity \"sev2\"; expected one of SEV1, SEV2, SEV3, SEV4",
        ),
        (
            "\"CLOSED\"",
            "key \"unless_status\" in [[policy.escalations]] \"x\": unknown status \"CLOSED\"; expected one of INVESTIGATING, IDENTIFIED, MITIGATING, RESOLVED",
        ),
        (
            "\"MAYBE\"",
            "key \"data_loss\" in [[policy.escalations]] \"x\": unknown data_loss \"MAYBE\"; expected one of NONE, POSSIBLE, CONFIRMED",
        ),
    ] {
        assert_has(&got, &format!("config line {}: {message}", line_of(&text, needle)));
    }
    assert_eq!(got.len(), 8, "{got:#?}");
}

#[test]
fn destination_fields_depend_on_kind() {
    let text = r#"
[org]
name = "Acme"
default_team = "t"
[[teams]]
id = "t"
[smtp]
host = "localhost"
port = 25
from = "a@example.com"
[[destinations]]
id = "a"
kind = "webhook"
[[destinations]]
id = "b"
kind = "slack"
url = "https://example.com/b"
to = ["x@example.com"]
[[destinations]]
id = "c"
kind = "statuspage"
url = "https://example.com/c"
page_id = "p"
[[destinations]]
id = "d"
kind = "email"
to = []
[[destinations]]
id = "e"
kind = "teams"
url = "ftp://example.com/e"
[[destinations]]
id = "f"
kind = "pigeon"
"#;
    let got = problems(text);
    let at = |needle: &str, message: &str| format!("config line {}: {message}", line_of(text, needle));
    assert_eq!(
        got,
        [
            at(
                "id = \"a\"",
                "missing key \"url\" in [[destinations]] \"a\" (kind webhook needs url)"
            )
            .replace(
                &format!("line {}", line_of(text, "id = \"a\"")),
                &format!("line {}", line_of(text, "id = \"a\"") - 1)
            ),
            at(
                "to = [\"x@",
                "key \"to\" in [[destinations]] \"b\": not used by kind slack (it takes url)"
            ),
            at(
                "id = \"c\"",
                "missing key \"api_key\" in [[destinations]] \"c\" (kind statuspage needs url, page_id, api_key)"
            )
            .replace(
                &format!("line {}", line_of(text, "id = \"c\"")),
                &format!("line {}", line_of(text, "id = \"c\"") - 1)
            ),
            at(
                "to = []",
                "key \"to\" in [[destinations]] \"d\": needs at least one address"
            ),
            at(
                "\"ftp:",
                "key \"url\" in [[destinations]] \"e\": \"ftp://example.com/e\" is not an http:// or https:// URL"
            ),
            at(
                "\"pigeon\"",
                "key \"kind\" in [[destinations]] \"f\": unknown destination kind \"pigeon\"; expected one of slack, mattermost, teams, webhook, email, statuspage"
            ),
        ]
    );
}

#[test]
fn smtp_is_required_only_with_email_destinations() {
    let without_smtp = |text: &str| {
        let start = text.find("[smtp]").unwrap();
        let end = start + text[start..].find("\n\n").unwrap();
        format!("{}{}", &text[..start], &text[end..])
    };
    let text = without_smtp(BASE);
    assert_eq!(
        problems(&text),
        [format!(
            "config line {}: [[destinations]] \"platform-mail\" has kind email, which needs an [smtp] section",
            line_of(&text, "id = \"platform-mail\"") - 1
        )]
    );
    // Without email destinations, [smtp] is optional.
    let no_email = BASE.replacen("email = [\"platform-mail\"]\n", "", 1).replacen(
        "[[destinations]]\nid = \"platform-mail\"\nkind = \"email\"\nto = [\"platform@example.com\"]\n",
        "",
        1,
    );
    let c = parse(&without_smtp(&no_email));
    assert!(c.smtp.is_none());
}

#[test]
fn smtp_credentials_come_in_pairs() {
    let text = BASE.replacen("port = 587", "port = 587\nusername = \"u\"", 1);
    assert_eq!(
        problems(&text),
        [format!(
            "config line {}: key \"username\" in [smtp]: needs `password` too",
            line_of(&text, "username")
        )]
    );
    let text = BASE.replacen("port = 587", "port = 587\nusername = \"u\"\npassword = \"hunter2\"", 1);
    let c = parse(&text);
    let smtp = c.smtp.as_ref().unwrap();
    assert_eq!(smtp.password.as_ref().unwrap().expose(), "hunter2");
    assert!(!format!("{smtp:?}").contains("hunter2"));
}

#[test]
fn token_rules() {
    let secret = "my-real-token-pasted-by-mistake";
    let text = BASE
        .replacen(
            "sha256 = \"50494E48",
            &format!("sha256 = \"{secret}\"\n# was \"50494E48"),
            1,
        )
        .replacen("integration = \"am\"", "integration = \"am\"\nperson = \"alice\"", 1)
        .replacen("teams = [\"*\"]", "teams = [\"*\", \"platform\"]", 1);
    let got = problems(&text);
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_has(
        &got,
        &format!(
            "config line {}: key \"sha256\" in [[tokens]] \"alice-cli\": must be 64 hex characters (the SHA-256 of the secret, not the secret itself)",
            line_of(&text, secret)
        ),
    );
    assert!(
        !got.iter().any(|p| p.contains(secret)),
        "a pasted secret must not be echoed"
    );
    assert_has(
        &got,
        &format!(
            "config line {}: [[tokens]] \"am-ingest\" has both `person` and `integration`; give exactly one",
            line_of(&text, "id = \"am-ingest\"") - 1
        ),
    );
    assert_has(
        &got,
        &format!(
            "config line {}: key \"teams\" in [[tokens]] \"admin\": \"*\" (all teams) must be the only entry",
            line_of(&text, "teams = [\"*\"")
        ),
    );

    let text = BASE.replacen("scopes = [\"read\", \"respond\"]", "scopes = []", 1);
    assert_eq!(
        problems(&text),
        [format!(
            "config line {}: key \"scopes\" in [[tokens]] \"alice-cli\": needs at least one scope",
            line_of(&text, "scopes = []")
        )]
    );
}

#[test]
fn digests_must_be_unique() {
    let text = BASE.replacen(
        "e10ac9c511f8152d188ff59f86cef999ead15c2a16e36a44a0c865d8271d0270",
        "a5c5e664a425a7a42c0844c00cc37430c36c271bec487025399043c75e171e97",
        1,
    );
    let got = problems(&text);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].contains("key \"sha256\" in [[tokens]] \"am-ingest\": same digest as [[integrations]] \"am\""),
        "{got:#?}"
    );
}

// ---------------------------------------------------------------- policy

#[test]
fn partial_severity_tables_fall_back_to_the_playbook() {
    let text = BASE.to_string()
        + r#"
[policy]
review_due = "72h"
checklist = { acknowledge = "1m" }
[policy.severity.SEV2]
update_every = "20m"
[policy.severity.SEV3]
stakeholder_notice = "none"
sme_report_every = "2h"
[policy.severity.SEV4]
"#;
    let c = parse(&text);
    let playbook = Policy::playbook();
    let p = &c.policy;
    assert_eq!(p.review_due, Duration::from_secs(72 * 3600));
    assert_eq!(p.checklist.acknowledge, mins(1));
    assert_eq!(p.checklist.severity_and_commander, mins(5));
    assert_eq!(p.checklist.investigation_plan, mins(15));
    assert_eq!(p.for_severity(Severity::Sev1), playbook.for_severity(Severity::Sev1));
    assert_eq!(
        *p.for_severity(Severity::Sev2),
        SeverityPolicy {
            stakeholder_notice: Some(mins(30)),
            update_every: Some(mins(20)),
            sme_report_every: Some(mins(30))
        }
    );
    assert_eq!(
        *p.for_severity(Severity::Sev3),
        SeverityPolicy {
            stakeholder_notice: None,
            update_every: Some(mins(60)),
            sme_report_every: Some(mins(120))
        }
    );
    assert_eq!(*p.for_severity(Severity::Sev4), SeverityPolicy::default());
    assert_eq!(p.escalations, playbook.escalations);
}

#[test]
fn team_policy_override_merges_over_org_policy() {
    let text = BASE.replacen(
        "[[teams]]\nid = \"payments\"\nchat = [\"hook\"]\n",
        r#"[[teams]]
id = "payments"
chat = ["hook"]
[teams.policy]
review_due = "24h"
checklist = { acknowledge = "1m" }
[teams.policy.severity.SEV1]
update_every = "10m"
[[teams.policy.escalations]]
id = "sev1-now"
severity = ["SEV1"]
after = "0s"
notify = "executives"
message = "page the execs"
"#,
        1,
    ) + r#"
[policy]
review_due = "72h"
checklist = { team_assembled = "8m" }
[policy.severity.SEV1]
sme_report_every = "12m"
"#;
    let c = parse(&text);
    let org = &c.policy;
    assert_eq!(org.review_due, Duration::from_secs(72 * 3600));
    assert_eq!(org.checklist.team_assembled, mins(8));
    assert_eq!(org.for_severity(Severity::Sev1).sme_report_every, Some(mins(12)));
    assert_eq!(org.escalations, Policy::playbook().escalations);

    let team = c.policy_for_team("payments");
    assert_eq!(Some(&team), c.team("payments").unwrap().policy.as_ref());
    assert_eq!(team.review_due, Duration::from_secs(24 * 3600), "team value wins");
    assert_eq!(team.checklist.acknowledge, mins(1), "team value wins");
    assert_eq!(team.checklist.team_assembled, mins(8), "inherits the org value");
    assert_eq!(
        team.checklist.severity_and_commander,
        mins(5),
        "inherits the playbook value"
    );
    let sev1 = team.for_severity(Severity::Sev1);
    assert_eq!(sev1.update_every, Some(mins(10)));
    assert_eq!(sev1.sme_report_every, Some(mins(12)));
    assert_eq!(sev1.stakeholder_notice, Some(Duration::ZERO));
    assert_eq!(team.severity[1..], org.severity[1..]);
    assert_eq!(
        team.escalations.len(),
        1,
        "a team escalation list replaces the org list"
    );
    let rule = &team.escalations[0];
    assert_eq!(rule.id, "sev1-now");
    assert_eq!(rule.severity, [Severity::Sev1]);
    assert_eq!(rule.after, Duration::ZERO);
    assert_eq!(rule.message.as_deref(), Some("page the execs"));

    // Teams without an override, and unknown teams, get the org policy.
    assert_eq!(c.policy_for_team("platform"), *org);
    assert_eq!(c.policy_for_team("nope"), *org);
}

#[test]
fn team_policy_errors_name_the_team() {
    let text = BASE.replacen(
        "[[teams]]\nid = \"payments\"\nchat = [\"hook\"]\n",
        "[[teams]]\nid = \"payments\"\nchat = [\"hook\"]\n[teams.policy.severity.SEV3]\nupdate_every = \"often\"\n",
        1,
    );
    let got = problems(&text);
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with(&format!(
            "config line {}: key \"update_every\" in [teams.policy.severity.SEV3] of team \"payments\": invalid duration \"often\"",
            line_of(&text, "\"often\"")
        )),
        "{got:?}"
    );
}

#[test]
fn escalation_lists_replace_the_playbook() {
    let text = BASE.to_string()
        + r#"
[[policy.escalations]]
id = "data-loss-possible"
data_loss = "POSSIBLE"
regulatory = false
after = "5m"
notify = "legal"
"#;
    let c = parse(&text);
    assert_eq!(c.policy.escalations.len(), 1);
    let rule = &c.policy.escalations[0];
    assert_eq!(rule.data_loss, Some(DataLoss::Possible));
    assert_eq!(rule.regulatory, Some(false));
    assert!(rule.severity.is_empty() && rule.unless_status.is_empty());
    assert!(rule.matches(Severity::Sev3, Status::Identified, DataLoss::Confirmed, false));
    assert!(!rule.matches(Severity::Sev3, Status::Identified, DataLoss::None, false));
    assert!(!rule.matches(Severity::Sev3, Status::Identified, DataLoss::Possible, true));

    let c = parse(&(BASE.to_string() + "\n[policy]\nescalations = []\n"));
    assert!(c.policy.escalations.is_empty());
}

#[test]
fn playbook_defaults() {
    let p = Policy::playbook();
    assert_eq!(p, Policy::default());
    assert_eq!(
        [
            p.checklist.acknowledge,
            p.checklist.severity_and_commander,
            p.checklist.team_assembled,
            p.checklist.investigation_plan
        ],
        [mins(2), mins(5), mins(10), mins(15)]
    );
    assert_eq!(p.review_due, Duration::from_secs(48 * 3600));
    let sev = |s| *p.for_severity(s);
    assert_eq!(
        sev(Severity::Sev1),
        SeverityPolicy {
            stakeholder_notice: Some(Duration::ZERO),
            update_every: Some(mins(15)),
            sme_report_every: Some(mins(15))
        }
    );
    assert_eq!(
        sev(Severity::Sev2),
        SeverityPolicy {
            stakeholder_notice: Some(mins(30)),
            update_every: Some(mins(30)),
            sme_report_every: Some(mins(30))
        }
    );
    assert_eq!(
        sev(Severity::Sev3),
        SeverityPolicy {
            stakeholder_notice: Some(mins(120)),
            update_every: Some(mins(60)),
            sme_report_every: None
        }
    );
    assert_eq!(sev(Severity::Sev4), SeverityPolicy::default());
    let ids: Vec<&str> = p.escalations.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        ["sev1-not-mitigated", "sev1-data-loss", "long-running", "regulatory"]
    );

    // A config that sets nothing gets exactly the playbook, and the CONFIG.md
    // [policy] block written out spells exactly the playbook.
    let c = parse("[org]\nname = \"A\"\ndefault_team = \"t\"\n[[teams]]\nid = \"t\"\n");
    assert_eq!(c.policy, p);
    let policy_block = &CONFIG_MD_EXAMPLE[CONFIG_MD_EXAMPLE.find("[policy]").unwrap()..];
    let c = parse(&format!(
        "[org]\nname = \"A\"\ndefault_team = \"t\"\n[[teams]]\nid = \"t\"\n[contacts]\nengineering_leadership = []\nexecutives = []\nlegal = []\n{policy_block}"
    ));
    assert_eq!(c.policy, p);
}

#[test]
fn playbook_escalations_without_contacts_are_warnings_not_errors() {
    let c = parse("[org]\nname = \"A\"\ndefault_team = \"t\"\n[[teams]]\nid = \"t\"\n");
    let warnings = c.warnings();
    assert_eq!(warnings.len(), 4, "{warnings:#?}");
    assert!(warnings[0].contains("\"sev1-not-mitigated\"") && warnings[0].contains("\"engineering_leadership\""));
    assert!(c.contact_emails("legal").is_empty());
}

// ---------------------------------------------------------------- files

#[test]
fn load_reads_files_and_reports_missing_ones() {
    let dir = std::env::temp_dir().join(format!("incidentd-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("org.toml");
    std::fs::write(&path, BASE).unwrap();
    assert_eq!(OrgConfig::load(&path).unwrap(), parse(BASE));

    let missing = dir.join("missing.toml");
    let err = OrgConfig::load(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read config file {}:", missing.display()))
    );
    assert!(err.problems().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn review_blame_rules_replace_the_built_in_ones_and_are_checked() {
    let c = parse(BASE);
    assert_eq!(c.blame_rules, None, "no [review]: the built-in rules apply");
    let text = format!(
        "{BASE}\n[review]\nblame_rules = [\n  {{ id = \"finger-pointing\", phrases = [\"Dropped the ball\", \"{{person}} broke\"], suggestion = \"Describe the system.\" }},\n]\n"
    );
    let rules = parse(&text).blame_rules.expect("configured rules");
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].id, "finger-pointing");
    assert_eq!(
        rules[0].phrases,
        ["dropped the ball", "{person} broke"],
        "phrases are lower-cased"
    );
    let bad = format!(
        "{BASE}\n[review]\nblame_rules = [\n  {{ id = \"x\", phrases = [], suggestion = \"Say it kindly.\" }},\n]\n"
    );
    let line = line_of(&bad, "phrases = []");
    assert_has(
        &problems(&bad),
        &format!(
            "config line {line}: key \"phrases\" in [[review.blame_rules]]: needs at least one phrase, none empty"
        ),
    );
    let unknown = format!("{BASE}\n[review]\nblame_rulez = []\n");
    assert!(problems(&unknown).iter().any(|p| p.contains("blame_rulez")));
}
