//! The playbook's clocks against the real binary, with a config that shrinks
//! every duration to seconds: the events arrive through `WatchIncident` at
//! their configured times, and a deadline that passes while the process is
//! dead (`kill -9`) fires exactly once after the restart, never again.

use crate::support::{Server, TEST_CONFIG, write_config};
use incidentd_proto::v1::{self as pb};
use tokio_stream::StreamExt;

/// Seconds-scale policy for the org, and a team override for `platform`.
const FAST_POLICY: &str = r#"
[policy]
checklist = { acknowledge = "1s", severity_and_commander = "2s", team_assembled = "3s", investigation_plan = "4s" }
review_due = "1h"

[policy.severity.SEV1]
stakeholder_notice = "0s"
update_every = "3s"
sme_report_every = "3s"
[policy.severity.SEV2]
stakeholder_notice = "30m"
update_every = "30m"
sme_report_every = "30m"
[policy.severity.SEV3]
stakeholder_notice = "2h"
update_every = "1h"
[policy.severity.SEV4]

[[policy.escalations]]
id = "sev1-not-mitigated"
severity = ["SEV1"]
unless_status = ["MITIGATING", "RESOLVED"]
after = "5s"
notify = "engineering_leadership"
[[policy.escalations]]
id = "long-running"
unless_status = ["RESOLVED"]
after = "2h"
notify = "engineering_leadership"
message = "leadership briefing"
"#;

/// `TEST_CONFIG` with the platform team's checklist overridden.
fn config_text() -> String {
    let platform = "[[teams]]\nid = \"platform\"\nname = \"Platform\"\n";
    let with_override = format!(
        "{platform}[teams.policy]\nchecklist = {{ acknowledge = \"2s\", severity_and_commander = \"1h\", team_assembled = \"1h\", investigation_plan = \"1h\" }}\n"
    );
    assert!(TEST_CONFIG.contains(platform));
    format!("{}{FAST_POLICY}", TEST_CONFIG.replacen(platform, &with_override, 1))
}

fn millis(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().expect("timestamp");
    t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
}

fn due_at(ev: &pb::IncidentEvent) -> i64 {
    let v: serde_json::Value = serde_json::from_str(&ev.json).expect("event json");
    v["due_at"].as_i64().expect("due_at")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sev1_runs_its_playbook_clocks_in_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &config_text());
    let server = Server::start(&tmp.path().join("data"), &config).await;
    let mut c = server.client().await;
    let inc = c
        .declare_incident(pb::DeclareIncidentRequest {
            title: "Checkout down".into(),
            team: "payments".into(),
            commander: "alice".into(),
            by: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let declared = millis(&inc.declared_at);
    let mut watch = c
        .watch_incident(pb::WatchIncidentRequest {
            id: inc.id.clone(),
            from_version: 0,
        })
        .await
        .unwrap()
        .into_inner();

    // Nobody acts: every deadline fires, in order, at its configured time.
    let want = [
        ("declared", None),
        ("role_assigned", None),
        ("stakeholder_notice_due", Some(0)),
        ("checklist_missed", Some(1_000)),
        ("checklist_missed", Some(2_000)),
        ("checklist_missed", Some(3_000)),
        ("update_overdue", Some(3_000)),
        ("checklist_missed", Some(4_000)),
        ("escalated", Some(5_000)),
        ("update_overdue", Some(6_000)),
    ];
    for (i, (kind, due)) in want.iter().enumerate() {
        let ev = watch.next().await.expect("stream open").expect("event");
        assert_eq!(ev.version, i as u64 + 1);
        assert_eq!(&ev.r#type, kind, "event {}", i + 1);
        if let Some(due) = due {
            assert_eq!(due_at(&ev) - declared, *due, "{kind} due time");
            assert!(millis(&ev.at) >= declared + due, "{kind} fired before it was due");
        }
    }

    let now = c
        .get_incident(pb::GetIncidentRequest { id: inc.id.clone() })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = now.checklist.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "acknowledge",
            "severity_and_commander",
            "team_assembled",
            "investigation_plan"
        ]
    );
    assert!(now.checklist.iter().all(|i| i.missed && i.done_at.is_none()));
    let dues: Vec<i64> = now.checklist.iter().map(|i| millis(&i.due_at) - declared).collect();
    assert_eq!(dues, [1_000, 2_000, 3_000, 4_000]);
    assert_eq!(now.escalations.len(), 1);
    assert_eq!(now.escalations[0].rule, "sev1-not-mitigated");
    assert_eq!(now.escalations[0].target, "engineering_leadership");
    assert!(now.stakeholders_notified_at.is_some());
    assert!(now.next_update_due.is_some());
    let timeline = c
        .get_timeline(pb::GetTimelineRequest {
            id: inc.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        timeline
            .entries
            .iter()
            .any(|e| e.text.starts_with("Checklist item missed: Incident acknowledged")
                && e.text.contains("nudged alice"))
    );
    server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_missed_while_killed_fires_once_after_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &config_text());
    let data = tmp.path().join("data");

    // SEV-3 on the platform team: the only near deadline is its own 2 s acknowledgement.
    let server = Server::start(&data, &config).await;
    let mut c = server.client().await;
    let inc = c
        .declare_incident(pb::DeclareIncidentRequest {
            title: "Search slow".into(),
            team: "platform".into(),
            severity: pb::Severity::Sev3 as i32,
            by: "carol".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        inc.checklist
            .first()
            .map(|i| millis(&i.due_at) - millis(&inc.declared_at)),
        Some(2_000)
    );
    server.kill9().await;

    // Dead until the deadline has passed (a wall-clock condition, not a wait for an event).
    let due = millis(&inc.declared_at) + 2_000;
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis() as i64
    };
    let wait = (due + 100 - now_ms()).max(0) as u64;
    std::thread::sleep(std::time::Duration::from_millis(wait));

    let server = Server::start(&data, &config).await;
    let mut c = server.client().await;
    let mut watch = c
        .watch_incident(pb::WatchIncidentRequest {
            id: inc.id.clone(),
            from_version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    let ev = watch.next().await.expect("stream open").expect("event");
    assert_eq!((ev.version, ev.r#type.as_str()), (2, "checklist_missed"));
    assert_eq!(due_at(&ev), due);
    let after = c
        .get_incident(pb::GetIncidentRequest { id: inc.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.version, 2);
    server.kill9().await;

    // Restarted again: nothing fires twice, and the next deadline is an hour out.
    let server = Server::start(&data, &config).await;
    let mut c = server.client().await;
    let again = c
        .get_incident(pb::GetIncidentRequest { id: inc.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.version, 2);
    assert_eq!(again.checklist.iter().filter(|i| i.missed).count(), 1);
    assert!(millis(&again.next_deadline) >= millis(&inc.declared_at) + 3_600_000);
    server.terminate().await;
}
