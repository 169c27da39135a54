//! Administration through `incidentctl` against a server without `--dev`:
//! an admin creates a token for bob, bob works an incident with its secret
//! and is denied a command, the token list and the audit log show both,
//! revocation stops the secret at once, and `reload` picks up an edited
//! config file (a bad one keeps the old config and says why).

use super::{Ctl, Outcome};
use crate::auth::hex_sha256;
use crate::support::{Server, TEST_CONFIG, write_config};
use serde_json::Value;
use std::time::{Duration, Instant};

const ADMIN_SECRET: &str = "secret-admin-dave";

fn config() -> String {
    format!(
        "{TEST_CONFIG}\n[[tokens]]\nid = \"admin\"\nsha256 = \"{}\"\nperson = \"dave\"\nscopes = [\"read\", \"respond\", \"command\", \"admin\"]\nteams = [\"*\"]\n",
        hex_sha256(ADMIN_SECRET)
    )
}

/// Runs `args` until stdout satisfies `done` (audit records are written just
/// after the reply they record), for at most 20 s.
async fn eventually(ctl: &Ctl, args: &[&str], done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = ctl.ok(args).await;
        if done(&out) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "incidentctl {args:?} never showed it:\n{out}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn secret_of(o: &Outcome) -> String {
    o.stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("secret"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no secret line in\n{}", o.stdout))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_audit_and_reload_through_incidentctl() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), &config());
    let server = Server::start_secured(&tmp.path().join("data"), &cfg).await;
    let admin = Ctl::with_token(&server.grpc, tmp.path(), "dave", ADMIN_SECRET);

    // No token: refused, and the error says which flag is missing.
    let anonymous = Ctl::new(&server.grpc, tmp.path());
    anonymous
        .fails(
            &["list"],
            1,
            "authorization: a bearer token is required [--token] (Unauthenticated)",
        )
        .await;

    // A token for bob: described, the secret printed once with a warning.
    let created = admin
        .run(&[
            "token",
            "create",
            "bob-cli",
            "--person",
            "bob",
            "--scope",
            "read,respond",
            "--team",
            "payments",
        ])
        .await;
    assert_eq!(created.code, Some(0), "{created:?}");
    let out = &created.stdout;
    assert!(out.starts_with("token bob-cli  person bob"), "{out}");
    for want in ["read, respond", "payments", "api", "by dave"] {
        assert!(out.contains(want), "{want:?} in\n{out}");
    }
    assert!(created.stderr.contains("will not be shown again"), "{created:?}");
    let secret = secret_of(&created);
    assert!(secret.starts_with("idt_") && secret.len() > 40, "{secret}");
    let json = admin
        .json(&[
            "token", "create", "carol-ro", "--person", "carol", "--scope", "read", "--team", "*",
        ])
        .await;
    assert_eq!(json["token"]["teams"], serde_json::json!(["*"]));
    assert_eq!(json["token"]["created_by"], "dave");
    assert!(json["secret"].as_str().is_some_and(|s| s.starts_with("idt_")), "{json}");
    // The server's refusals name the flag.
    admin
        .fails(
            &[
                "token", "create", "bob-cli", "--person", "bob", "--scope", "read", "--team", "payments",
            ],
            1,
            "already exists",
        )
        .await;
    admin
        .fails(
            &[
                "token", "create", "x", "--person", "mallory", "--scope", "read", "--team", "payments",
            ],
            1,
            "unknown person mallory [--person] (NotFound)",
        )
        .await;
    admin
        .fails(
            &[
                "token", "create", "x", "--person", "bob", "--scope", "read", "--team", "nope",
            ],
            1,
            "[--team]",
        )
        .await;

    // Bob works with the printed secret through INCIDENTD_TOKEN.
    let bob = Ctl::with_token(&server.grpc, tmp.path(), "bob", &secret);
    let declared = bob
        .json(&["declare", "Card payments failing", "--team", "payments", "--sev", "2"])
        .await;
    assert_eq!(declared["reference"], "INC-1");
    let note = bob.json(&["note", "INC-1", "retries are piling up"]).await;
    assert_eq!(note["author"], "bob");
    // Respond only: setting the severity is denied.
    bob.fails(&["sev", "INC-1", "1"], 1, "PermissionDenied").await;

    // The list: config and API tokens, with scopes, teams and who made them.
    let list = admin.ok(&["token", "list"]).await;
    assert!(list.starts_with("TOKEN"), "{list}");
    let row = list
        .lines()
        .find(|l| l.starts_with("bob-cli"))
        .unwrap_or_else(|| panic!("bob-cli in\n{list}"));
    for want in ["person bob", "read,respond", "payments", "api", " by dave"] {
        assert!(row.contains(want), "{want:?} in {row:?}");
    }
    assert!(row.ends_with(" -"), "not revoked: {row:?}");
    let row = list
        .lines()
        .find(|l| l.starts_with("admin"))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(row.contains("person dave") && row.contains("config"), "{row:?}");

    // The audit log: the denial, and bob's note on INC-1.
    let denied = eventually(&admin, &["audit", "--denied"], |o| o.contains("SetSeverity")).await;
    assert!(denied.starts_with("AT"), "{denied}");
    let row = denied.lines().find(|l| l.contains("SetSeverity")).unwrap_or_default();
    for want in ["bob-cli", "bob", "PERMISSION_DENIED"] {
        assert!(row.contains(want), "{want:?} in {row:?}");
    }
    assert!(
        !denied.contains("AddTimelineEntry"),
        "only denials (the anonymous `list` is one):\n{denied}"
    );
    let notes = eventually(
        &admin,
        &["--json", "audit", "--incident", "INC-1", "--method", "AddTimelineEntry"],
        |o| o.contains("AddTimelineEntry"),
    )
    .await;
    let notes: Value = serde_json::from_str(&notes).unwrap();
    let record = &notes[0];
    assert_eq!(record["incident_reference"], "INC-1", "{notes}");
    assert_eq!(record["incident_id"], declared["id"]);
    assert_eq!(
        (&record["token_id"], &record["actor"], &record["code"]),
        (&Value::from("bob-cli"), &Value::from("bob"), &Value::from("OK")),
    );
    // --person and --since narrow it; --limit stops early and says more follow.
    let mine = admin
        .run(&["audit", "--person", "bob", "--since", "1h", "--limit", "1"])
        .await;
    assert_eq!(mine.code, Some(0), "{mine:?}");
    assert_eq!(mine.stdout.lines().count(), 2, "header and one record: {}", mine.stdout);
    assert!(mine.stderr.contains("more records"), "{mine:?}");
    assert_eq!(
        admin
            .ok(&["audit", "--since", "2000-01-01", "--until", "2000-01-02"])
            .await,
        "no audit records\n"
    );

    // Revoked: bob's next call is refused with a clear error.
    let revoked = admin.ok(&["token", "revoke", "bob-cli"]).await;
    assert!(revoked.starts_with("token bob-cli revoked by dave"), "{revoked}");
    bob.fails(
        &["show", "INC-1"],
        1,
        "authorization: unknown or revoked token [--token] (Unauthenticated)",
    )
    .await;
    let tokens = admin.json(&["token", "list"]).await;
    let bob_cli = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "bob-cli")
        .unwrap_or_else(|| panic!("{tokens}"));
    assert_eq!(
        (&bob_cli["revoked"], &bob_cli["revoked_by"]),
        (&Value::from(true), &Value::from("dave"))
    );
    admin
        .fails(&["token", "revoke", "nope"], 1, "token nope (NotFound)")
        .await;

    // Reload an edited file: the new name and counts, and what needs a restart.
    let edited = config()
        .replace("name = \"Test Corp\"", "name = \"Test Corp EU\"")
        .replace("Test Corp Status", "Test Corp EU Status");
    std::fs::write(&cfg, &edited).unwrap();
    let reloaded = admin.ok(&["reload"]).await;
    assert!(reloaded.starts_with("config reloaded  Test Corp EU"), "{reloaded}");
    for want in [
        "teams           2",
        "people          4",
        "tokens          1",
        "status page",
    ] {
        assert!(reloaded.contains(want), "{want:?} in\n{reloaded}");
    }
    // What needs a restart is what changed since the last load: nothing now.
    let again = admin.json(&["reload"]).await;
    assert_eq!(again["org"], "Test Corp EU");
    assert_eq!(again["restart_needed"], serde_json::json!([]), "{again}");

    // A bad file: non-zero exit with the server's message; the old config stays.
    std::fs::write(&cfg, format!("{edited}\n[access]\nread_across_teams = \"no\"\n")).unwrap();
    admin.fails(&["reload"], 1, "not reloaded, the old config stays").await;
    let bad = admin.run(&["reload"]).await;
    assert!(
        bad.stderr.contains("read_across_teams") && bad.stderr.contains("(InvalidArgument)"),
        "{bad:?}"
    );
    assert!(admin.ok(&["token", "list"]).await.contains("carol-ro"));
    server.terminate().await;
}
