//! Game days through `incidentctl`: the scenarios, a drill started with its
//! roles (everyone named is checked first), and the role rotation.

use super::Ctl;
use crate::support::{Server, TEST_CONFIG, write_config};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drills_through_incidentctl() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), TEST_CONFIG);
    let server = Server::start(&tmp.path().join("data"), &config).await;
    let ctl = Ctl::new(&server.grpc, tmp.path());

    let scenarios = ctl.json(&["drill", "scenarios"]).await;
    let ids: Vec<&str> = scenarios
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "sev1-payments-outage",
            "database-data-loss",
            "non-core-two-teams",
            "regulatory-exposure"
        ]
    );
    let payments = &scenarios[0];
    assert!(!payments["title"].as_str().unwrap().is_empty());
    let steps = payments["steps"].as_array().unwrap();
    assert!(!steps.is_empty(), "{payments}");
    assert!(
        steps
            .iter()
            .all(|s| s["after_seconds"].is_u64() && s["kind"].is_string())
    );
    let human = ctl.ok(&["drill", "scenarios"]).await;
    assert!(human.starts_with("SCENARIO"), "{human}");
    assert!(human.contains("regulatory-exposure"), "{human}");

    // Everything named is checked before anything is declared.
    let start = |scenario: &'static str, commander: &'static str| {
        [
            "drill",
            "start",
            scenario,
            "--team",
            "payments",
            "--commander",
            commander,
            "--comms",
            "carol",
            "--sme",
            "dave:payment gateway",
        ]
    };
    ctl.fails(&start("meteor", "bob"), 1, "scenario").await;
    ctl.fails(&start("sev1-payments-outage", "mallory"), 1, "--commander")
        .await;
    ctl.fails(
        &["drill", "start", "sev1-payments-outage", "--sme", "dave"],
        2,
        "PERSON:TRACK",
    )
    .await;
    ctl.fails(&["drill", "start", "sev1-payments-outage"], 1, "--team")
        .await;
    assert_eq!(ctl.ok(&["list", "--all"]).await, "no incidents\n");

    let drill = ctl.json(&start("sev1-payments-outage", "bob")).await;
    assert_eq!(drill["drill"], true);
    assert_eq!(drill["reference"], "INC-1");
    assert_eq!(drill["team"], "payments");
    assert_eq!(drill["roster"]["commander"], "bob");
    assert_eq!(drill["roster"]["comms_lead"], "carol");
    let smes = drill["roster"]["smes"].as_array().unwrap();
    assert_eq!(smes.len(), 1);
    assert_eq!(
        (&smes[0]["person"], &smes[0]["track"]),
        (&Value::from("dave"), &Value::from("payment gateway"))
    );
    let shown = ctl.ok(&["show", "INC-1"]).await;
    assert!(
        shown.contains("[drill]") && shown.contains("commander     bob"),
        "{shown}"
    );

    // Rotation: bob led once; alice and dave never did; alice is suggested.
    let rotation = ctl.json(&["drill", "rotation", "--team", "payments"]).await;
    assert_eq!(rotation["team"], "payments");
    let bob = rotation["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["person"] == "bob")
        .unwrap();
    assert_eq!(bob["commander"], 1);
    assert!(bob["last_commander_at"].is_string());
    assert_eq!(rotation["never_commander"], serde_json::json!(["alice", "dave"]));
    assert_eq!(rotation["suggested_commander"], "alice");
    let human = ctl
        .ok(&["drill", "rotation", "--team", "payments", "--since", "7d"])
        .await;
    assert!(human.starts_with("Role rotation: team payments"), "{human}");
    for want in [
        "PERSON",
        "never commander",
        "alice, dave",
        "suggested commander",
        "alice",
    ] {
        assert!(human.contains(want), "{want:?} in\n{human}");
    }
    ctl.fails(&["drill", "rotation", "--team", "nope"], 1, "--team").await;
    ctl.fails(&["drill", "rotation"], 1, "team").await;

    // The calendar: schedule (in 14 days, recurring), list, cancel.
    let d = ctl
        .json(&[
            "drill",
            "schedule",
            "regulatory-exposure",
            "--team",
            "payments",
            "--at",
            "14d",
            "--recurring",
        ])
        .await;
    assert_eq!(d["state"], "scheduled");
    assert_eq!(d["recurring"], true);
    let id = d["id"].as_str().unwrap().to_string();
    let human = ctl.ok(&["drill", "calendar", "--team", "payments"]).await;
    assert!(
        human.contains("regulatory-exposure") && human.contains("quarterly"),
        "{human}"
    );
    let cancelled = ctl.json(&["drill", "cancel", &id]).await;
    assert_eq!(cancelled["state"], "cancelled");
    ctl.fails(&["drill", "cancel", &id], 1, "no longer scheduled").await;
    ctl.fails(&["drill", "schedule", "meteor", "--team", "payments"], 1, "scenario")
        .await;
    server.terminate().await;
}
