//! After the incident through `incidentctl`: the review (blameless finding
//! in the human view, Markdown export to stdout and to a file), action items
//! (unknown owner named, filters, done, dropped), the report, and the
//! notification deliveries of the incident (a dead one retried); the
//! `review edit` prompt on a terminal, driven through tmux.

use super::{Ctl, Tmux};
use crate::support::{Server, TEST_CONFIG, write_config};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The test org, with the payments team's chat at a reserved host: its
/// deliveries die at once (nothing is sent), so there is one to retry.
fn config_with_chat() -> String {
    let team = "id = \"payments\"\nname = \"Payments\"\n";
    assert!(TEST_CONFIG.contains(team));
    let mut config = TEST_CONFIG.replace(team, &format!("{team}chat = [\"payments-chat\"]\n"));
    config.push_str(
        "\n[[destinations]]\nid = \"payments-chat\"\nkind = \"slack\"\nurl = \"https://hooks.slack.example.com/services/T0/B0/X\"\n",
    );
    config
}

fn strs<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x[key].as_str().unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_actions_report_and_deliveries_through_incidentctl() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &config_with_chat());
    let server = Server::start(&tmp.path().join("data"), &config).await;
    let ctl = Ctl::new(&server.grpc, tmp.path());

    ctl.ok(&[
        "declare",
        "Refunds stuck",
        "--team",
        "payments",
        "--sev",
        "2",
        "--commander",
        "bob",
    ])
    .await;
    ctl.ok(&["--as", "bob", "ack", "INC-1"]).await;
    // No review before resolution: the server says no, naming why.
    ctl.fails(&["review", "show", "INC-1"], 1, "resolved").await;
    ctl.fails(
        &["action", "add", "INC-1", "x", "--owner", "carol", "--due", "7d"],
        1,
        "resolved",
    )
    .await;
    ctl.ok(&["resolve", "INC-1", "--note", "refunds flowing"]).await;

    // Editing needs a section: without a terminal that is a usage error naming the flags.
    ctl.fails(&["review", "edit", "INC-1"], 2, "--what-happened").await;
    let human = ctl
        .ok(&[
            "--as",
            "bob",
            "review",
            "edit",
            "INC-1",
            "--what-happened",
            "Refunds queued for 40 minutes.",
            "--root-causes",
            "Bob forgot to drain the queue. The retry limit was too low.",
            "--went-well",
            "The queue alert fired at once.",
        ])
        .await;
    for want in [
        "INC-1  Review: Refunds stuck",
        "What happened\n  Refunds queued for 40 minutes.",
        "Contributing factors\n  (not written yet)",
        "Blameless check: 1 finding(s)",
        "root causes: \"Bob forgot to drain the queue.\"  [person-failed]",
        "    → ",
    ] {
        assert!(human.contains(want), "{want:?} in\n{human}");
    }

    let review = ctl.json(&["review", "show", "INC-1"]).await;
    assert_eq!(review["reference"], "INC-1");
    assert_eq!(review["what_happened"], "Refunds queued for 40 minutes.");
    assert_eq!(review["contributing_factors"], Value::Null);
    assert_eq!(review["updated_by"], "bob");
    assert!(review["due_at"].is_string(), "{review}");
    assert_eq!(review["markdown"], Value::Null, "only with --markdown");
    let findings = review["blame_findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0]["section"], "root_causes");
    assert_eq!(findings[0]["rule"], "person-failed");
    assert!(!findings[0]["suggestion"].as_str().unwrap().is_empty());
    let timeline = review["timeline"].as_array().unwrap();
    assert!(timeline.len() >= 3, "{review}");
    assert_eq!(timeline[0]["since_declared_seconds"], 0);
    assert!(
        timeline.iter().all(|m| m["since_previous_seconds"].is_u64()),
        "{review}"
    );
    let shown = ctl.ok(&["review", "show", "1"]).await;
    for want in [
        "due",
        "Timeline",
        "SINCE DECLARED",
        "Acknowledged by bob",
        "Action items",
    ] {
        assert!(shown.contains(want), "{want:?} in\n{shown}");
    }

    // Action items: bad input is named (owner by the server: exit 1; due by us: exit 2).
    let add = |owner: &'static str, due: &'static str, what: &'static str| {
        ["action", "add", "INC-1", what, "--owner", owner, "--due", due]
    };
    ctl.fails(&add("mallory", "7d", "Alert on refund queue depth"), 1, "--owner")
        .await;
    ctl.fails(
        &add("mallory", "7d", "Alert on refund queue depth"),
        1,
        "owner: unknown person",
    )
    .await;
    ctl.fails(&add("carol", "soon", "Alert on refund queue depth"), 2, "--due")
        .await;
    ctl.fails(&["action", "add", "INC-1", "x", "--due", "7d"], 2, "--owner")
        .await;
    let late = ctl
        .json(&add("carol", "2020-01-02", "Alert on refund queue depth"))
        .await;
    assert_eq!(late["incident_reference"], "INC-1");
    assert_eq!(late["number"], 1);
    assert!(late["id"].as_str().unwrap().ends_with("/1"), "{late}");
    assert_eq!(late["state"], "open");
    assert_eq!(late["overdue"], true);
    assert_eq!(late["due_at"], "2020-01-02T23:59:59Z");
    let later = ctl.ok(&add("dave", "2099-12-31", "Raise the retry limit")).await;
    assert!(later.starts_with("ITEM"), "{later}");
    for want in ["INC-1/2", "open", "dave", "2099-12-31", "Raise the retry limit"] {
        assert!(later.contains(want), "{want:?} in\n{later}");
    }
    let third = ctl.json(&add("alice", "30d", "Document the queue drain")).await;
    assert_eq!(third["overdue"], false);

    let overdue = ctl.json(&["action", "list", "--overdue"]).await;
    assert_eq!(strs(&overdue, "owner"), ["carol"]);
    let listed = ctl.ok(&["action", "list", "--owner", "dave"]).await;
    assert!(listed.contains("INC-1/2") && !listed.contains("INC-1/1"), "{listed}");
    let all = ctl.json(&["action", "list", "--team", "payments"]).await;
    assert_eq!(all.as_array().unwrap().len(), 3, "soonest due first: {all}");
    assert_eq!(strs(&all, "owner"), ["carol", "alice", "dave"]);
    ctl.fails(&["action", "list", "--owner", "mallory"], 1, "--owner").await;
    ctl.fails(&["action", "list", "--team", "nope"], 1, "--team").await;

    let done = ctl.json(&["action", "done", "INC-1/2"]).await;
    assert_eq!(done["state"], "done");
    assert!(done["closed_at"].is_string());
    ctl.fails(&["action", "done", "INC-1/2"], 1, "already closed").await;
    ctl.fails(&["action", "done", "INC-1/9"], 1, "action_item_id").await;
    ctl.fails(&["action", "done", "INC-1"], 2, "INC-42/1").await;
    ctl.fails(&["action", "drop", "INC-1/1"], 2, "--reason").await;
    let dropped = ctl
        .ok(&[
            "action",
            "drop",
            "INC-1/1",
            "--reason",
            "superseded by the queue redesign",
        ])
        .await;
    assert!(
        dropped.contains("dropped") && dropped.contains("superseded by the queue redesign"),
        "{dropped}"
    );
    let open = ctl.json(&["action", "list", "--open"]).await;
    assert_eq!(strs(&open, "owner"), ["alice"]);
    // The full id works as well as INC-1/3.
    let full = open[0]["id"].as_str().unwrap().to_string();
    assert_eq!(ctl.json(&["action", "done", &full]).await["state"], "done");
    assert_eq!(ctl.ok(&["action", "list", "--open"]).await, "no action items\n");

    // Markdown: to stdout, and to a file (the same text).
    let md = ctl.ok(&["review", "show", "INC-1", "--markdown"]).await;
    assert!(md.starts_with("# Post-incident review: INC-1 Refunds stuck"), "{md}");
    assert!(
        md.contains("Refunds queued for 40 minutes.") && md.contains("Raise the retry limit"),
        "{md}"
    );
    let file = tmp.path().join("INC-1.md");
    let said = ctl
        .ok(&["review", "show", "INC-1", "--output", file.to_str().unwrap()])
        .await;
    assert!(said.contains("INC-1: review written to"), "{said}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), md);
    let with_md = ctl.json(&["review", "show", "INC-1", "--markdown"]).await;
    assert_eq!(with_md["markdown"].as_str().unwrap(), md);

    // The report: one SEV-2 incident, three action items.
    let report = ctl.json(&["report", "--team", "payments", "--since", "30d"]).await;
    assert_eq!(report["team"], "payments");
    assert_eq!(report["incidents"], 1);
    let sevs = &report["by_severity"];
    assert_eq!(strs(sevs, "severity"), ["SEV1", "SEV2", "SEV3", "SEV4"]);
    assert_eq!(sevs[1]["count"], 1);
    assert_eq!(sevs[1]["time_to_acknowledge"]["count"], 1);
    assert!(sevs[1]["time_to_acknowledge"]["median_seconds"].is_u64(), "{report}");
    assert!(sevs[1]["time_to_resolve"]["p90_seconds"].is_u64(), "{report}");
    assert_eq!(sevs[0]["time_to_acknowledge"]["median_seconds"], Value::Null);
    let items = &report["action_items"];
    assert_eq!((items["created"].as_u64(), items["done"].as_u64()), (Some(3), Some(2)));
    assert_eq!(items["dropped"], 1);
    assert!(report["update_cadence"]["share"].is_number());
    assert_eq!(report["drills"]["count"], 0);
    let human = ctl.ok(&["report"]).await;
    assert!(human.starts_with("Report for the org"), "{human}");
    for want in [
        "SEV  ",
        "MTTA",
        "MTTR P90",
        "SEV-2  1",
        "first 15 minutes",
        "3 created, 2 done, 1 dropped",
        "drills",
    ] {
        assert!(human.contains(want), "{want:?} in\n{human}");
    }
    ctl.fails(&["report", "--team", "nope"], 1, "--team").await;
    ctl.fails(
        &["report", "--since", "2026-11-30", "--until", "2026-11-01"],
        1,
        "--until",
    )
    .await;
    ctl.fails(&["report", "--since", "last tuesday"], 2, "--since").await;

    // Deliveries: the chat destination is a reserved host, so they are dead
    // once the notifier has routed them (bounded by the calls themselves).
    let deadline = Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let dead = ctl.json(&["deliveries", "INC-1", "--state", "dead"]).await;
        if !dead.as_array().unwrap().is_empty() {
            break dead;
        }
        assert!(Instant::now() < deadline, "no dead delivery of INC-1 in 30 s");
    };
    let first = &dead[0];
    assert_eq!(first["destination"], "payments-chat");
    assert_eq!(first["state"], "DEAD");
    assert!(first["last_error"].as_str().unwrap().contains("reserved"), "{first}");
    let human = ctl.ok(&["deliveries", "INC-1"]).await;
    assert!(human.starts_with("DELIVERY"), "{human}");
    let short = format!("INC-1:{}:payments-chat", first["version"]);
    assert!(human.contains(&short) && human.contains("dead"), "{short} in\n{human}");
    let retried = ctl.json(&["deliveries", "retry", &short]).await;
    assert_eq!(retried["id"], first["id"]);
    assert_eq!(retried["state"], "PENDING");
    assert_eq!(retried["attempts"], 0);
    ctl.fails(&["deliveries", "retry", "INC-1:999:payments-chat"], 1, "NotFound")
        .await;
    ctl.fails(&["deliveries", "retry", "nonsense"], 2, "INC-42:7:payments-chat")
        .await;
    let all = ctl.json(&["deliveries"]).await;
    assert!(all.as_array().unwrap().len() >= dead.as_array().unwrap().len());
    server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_edit_prompts_for_sections_on_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), TEST_CONFIG);
    let server = Server::start(&tmp.path().join("data"), &config).await;
    let ctl = Ctl::new(&server.grpc, tmp.path());
    ctl.ok(&["declare", "Search broken", "--team", "payments", "--sev", "3"])
        .await;
    ctl.ok(&["resolve", "INC-1"]).await;

    let tmux = Tmux::incidentctl("review", &ctl, "bob", "review edit INC-1");
    // Every section is asked for; Enter skips one.
    tmux.wait_for("What happened (Enter to skip):").await;
    tmux.send("the search index lost its replicas");
    tmux.wait_for("Root causes (Enter to skip):").await;
    tmux.send("");
    tmux.wait_for("Contributing factors (Enter to skip):").await;
    tmux.send("Carol was careless with the reindex.");
    tmux.wait_for("What went well (Enter to skip):").await;
    tmux.send("");
    tmux.wait_for("What to improve (Enter to skip):").await;
    tmux.send("");
    let screen = tmux.wait_for("exit=").await;
    assert!(screen.contains("exit=0"), "{screen}");
    assert!(screen.contains("Blameless check: 1 finding(s)"), "{screen}");

    let review = ctl.json(&["review", "show", "INC-1"]).await;
    assert_eq!(review["what_happened"], "the search index lost its replicas");
    assert_eq!(review["root_causes"], Value::Null);
    assert_eq!(review["contributing_factors"], "Carol was careless with the reindex.");
    assert_eq!(review["updated_by"], "bob");
    assert_eq!(review["blame_findings"][0]["section"], "contributing_factors");
    server.terminate().await;
}
