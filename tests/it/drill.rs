//! A game day against the real binary: a scenario file (seconds-scale)
//! beside the built-in ones, `StartDrill` with roles, the scripted
//! injections arriving through `WatchIncident`, the debrief review with an
//! action item, a report that counts the drill apart, and role rotation.

use crate::support::{Server, TEST_CONFIG, assert_status, write_config};
use incidentd_proto::v1::drill_service_client::DrillServiceClient;
use incidentd_proto::v1::review_service_client::ReviewServiceClient;
use incidentd_proto::v1::{self as pb};
use tokio_stream::StreamExt;
use tonic::Code;

const SCENARIO: &str = r#"
id = "cache-stampede"
title = "Cache stampede after a deploy"
description = "Practise a severity surprise."
severity = "SEV2"

[[steps]]
after = "1s"
kind = "alert"
text = "api p99 above 2 s"

[[steps]]
after = "2s"
kind = "severity"
to = "SEV1"
reason = "checkout fails too"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_plays_its_script_and_is_debriefed() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), TEST_CONFIG);
    let scenarios = tmp.path().join("scenarios");
    std::fs::create_dir(&scenarios).unwrap();
    std::fs::write(scenarios.join("cache.toml"), SCENARIO).unwrap();
    let env = [("INCIDENTD_SCENARIOS", scenarios.to_str().unwrap())];
    let server = Server::start_with_env(&tmp.path().join("data"), &config, &env).await;
    let addr = format!("http://{}", server.grpc);
    let mut drills = DrillServiceClient::connect(addr.clone()).await.unwrap();
    let mut reviews = ReviewServiceClient::connect(addr).await.unwrap();
    let mut c = server.client().await;

    let list = drills
        .list_scenarios(pb::ListScenariosRequest {})
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = list.scenarios.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "sev1-payments-outage",
            "database-data-loss",
            "non-core-two-teams",
            "regulatory-exposure",
            "cache-stampede"
        ]
    );

    let start = |scenario: &str, commander: &str, team: &str| pb::StartDrillRequest {
        scenario: scenario.into(),
        team: team.into(),
        roles: Some(pb::DrillRoles {
            commander: commander.into(),
            comms_lead: "carol".into(),
            smes: vec![pb::DrillSme {
                person: "dave".into(),
                track: "cache hit rate".into(),
            }],
        }),
        by: "alice".into(),
        ..Default::default()
    };
    assert_status(
        drills.start_drill(start("meteor", "bob", "payments")).await,
        Code::NotFound,
        "scenario",
    );
    assert_status(
        drills.start_drill(start("cache-stampede", "mallory", "payments")).await,
        Code::NotFound,
        "roles.commander",
    );
    assert_status(
        drills.start_drill(start("cache-stampede", "bob", "")).await,
        Code::InvalidArgument,
        "team",
    );
    let none = c
        .list_incidents(pb::ListIncidentsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(none.incidents.is_empty(), "refused drills leave no incident");

    let inc = drills
        .start_drill(start("cache-stampede", "bob", "payments"))
        .await
        .unwrap()
        .into_inner();
    assert!(inc.drill);
    assert_eq!(inc.severity, pb::Severity::Sev2 as i32);
    let roster = inc.roster.clone().unwrap();
    assert_eq!(
        (roster.commander.as_str(), roster.comms_lead.as_str()),
        ("bob", "carol")
    );

    // The two injections arrive, in order, through the watch stream.
    let mut watch = c
        .watch_incident(pb::WatchIncidentRequest {
            id: inc.id.clone(),
            from_version: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut injected = Vec::new();
    while injected.len() < 2 {
        let ev = watch.next().await.expect("stream open").expect("event");
        if ev.r#type == "drill_injected" {
            injected.push(ev.json);
        }
    }
    assert!(
        injected[0].contains("[DRILL] Alert fired: api p99 above 2 s"),
        "{}",
        injected[0]
    );
    assert!(injected[1].contains("severity_changed"), "{}", injected[1]);
    let now = c
        .get_incident(pb::GetIncidentRequest { id: inc.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.severity, pb::Severity::Sev1 as i32, "the severity surprise played");

    // Resolve, debrief, action item.
    c.resolve_incident(pb::ResolveIncidentRequest {
        id: inc.id.clone(),
        note: "drill over".into(),
        by: "bob".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let review = reviews
        .update_review(pb::UpdateReviewRequest {
            incident_id: inc.id.clone(),
            went_well: Some("The IC handed the comms to carol at once.".into()),
            to_improve: Some("The cache warm-up runbook is missing.".into()),
            by: "bob".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(review.drill);
    let item = reviews
        .add_action_item(pb::AddActionItemRequest {
            incident_id: inc.id.clone(),
            description: "Write the cache warm-up runbook".into(),
            owner: "dave".into(),
            due_at: Some(prost_types::Timestamp {
                seconds: 4_000_000_000,
                nanos: 0,
            }),
            by: "bob".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    reviews
        .complete_action_item(pb::CompleteActionItemRequest {
            action_item_id: item.id,
            by: "dave".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let report = reviews
        .get_report(pb::GetReportRequest {
            team: "payments".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.incidents, 0, "drills are not incidents in the report");
    assert_eq!(report.drills.unwrap().count, 1);
    assert_eq!(report.action_items.unwrap().done, 1);

    // Role rotation: bob led; alice (a payments member) never did and is suggested.
    let rotation = drills
        .get_role_rotation(pb::GetRoleRotationRequest {
            team: "payments".into(),
            since: None,
        })
        .await
        .unwrap()
        .into_inner();
    let bob = rotation.people.iter().find(|p| p.person == "bob").unwrap();
    assert_eq!(bob.commander, 1);
    assert_eq!(rotation.never_commander, ["alice", "dave"]);
    assert_eq!(rotation.suggested_commander, "alice");

    // A built-in drill, run to resolution with its debrief: nothing of it
    // reaches the public status page.
    let builtin = drills
        .start_drill(start("sev1-payments-outage", "bob", "payments"))
        .await
        .unwrap()
        .into_inner();
    c.resolve_incident(pb::ResolveIncidentRequest {
        id: builtin.id.clone(),
        note: "drill over".into(),
        by: "bob".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    reviews
        .update_review(pb::UpdateReviewRequest {
            incident_id: builtin.id.clone(),
            root_causes: Some("A schema migration held a lock.".into()),
            by: "bob".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    for path in [
        "/status/api/v2/summary.json",
        "/status/api/v2/incidents.json",
        "/status/api/v2/incidents/unresolved.json",
        "/status/feed.atom",
        "/status",
    ] {
        let (code, body) = crate::support::http_get(&server.http, path).await;
        assert_eq!(code, 200, "{path}");
        for secret in [
            "Payments down: card payments",
            "Cache stampede",
            "[DRILL]",
            &builtin.id,
            &inc.id,
        ] {
            assert!(!body.contains(secret), "{path} shows drill text {secret:?}");
        }
    }
    server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_scenario_file_stops_the_server_before_it_listens() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), TEST_CONFIG);
    let scenarios = tmp.path().join("scenarios");
    std::fs::create_dir(&scenarios).unwrap();
    std::fs::write(
        scenarios.join("bad.toml"),
        "id = \"x\"\ntitle = \"X\"\n[[steps]]\nafter = \"soon\"\nkind = \"alert\"\ntext = \"t\"\n",
    )
    .unwrap();
    let out = tokio::process::Command::new(crate::support::workspace_bin("incidentd"))
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .arg("--config")
        .arg(&config)
        .arg("--scenarios")
        .arg(&scenarios)
        .args(["--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--dev"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("steps[0].after"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
}
