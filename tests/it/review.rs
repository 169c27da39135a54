//! `ReviewService` against the real binary: the review opens at resolution,
//! sections with a blameless check, action items (bad input named, filters,
//! overdue), Markdown export, and a report that leaves the drill out.

use crate::support::{Server, TEST_CONFIG, assert_status, write_config};
use incidentd_proto::v1::review_service_client::ReviewServiceClient;
use incidentd_proto::v1::{self as pb};
use tonic::Code;

fn ts_in(secs_from_now: i64) -> prost_types::Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    prost_types::Timestamp {
        seconds: now + secs_from_now,
        nanos: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_action_items_and_report() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), TEST_CONFIG);
    let server = Server::start(&tmp.path().join("data"), &config).await;
    let mut c = server.client().await;
    let mut rv = ReviewServiceClient::connect(format!("http://{}", server.grpc))
        .await
        .unwrap();

    let declare = |title: &str, drill: bool| pb::DeclareIncidentRequest {
        title: title.into(),
        team: "payments".into(),
        severity: pb::Severity::Sev2 as i32,
        commander: "bob".into(),
        drill,
        by: "alice".into(),
        ..Default::default()
    };
    let inc = c
        .declare_incident(declare("Refunds stuck", false))
        .await
        .unwrap()
        .into_inner();
    let drill = c
        .declare_incident(declare("Game day", true))
        .await
        .unwrap()
        .into_inner();
    for id in [&inc.id, &drill.id] {
        c.acknowledge_incident(pb::AcknowledgeIncidentRequest {
            id: id.clone(),
            by: "bob".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let get = |id: &str, format: pb::ReviewFormat| pb::GetReviewRequest {
        incident_id: id.into(),
        format: format as i32,
    };
    assert_status(
        rv.get_review(get(&inc.id, pb::ReviewFormat::Structured)).await,
        Code::FailedPrecondition,
        "resolved",
    );
    for id in [&inc.id, &drill.id] {
        c.resolve_incident(pb::ResolveIncidentRequest {
            id: id.clone(),
            note: "refunds flowing".into(),
            by: "bob".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }

    // Sections, with one blameful sentence.
    let review = rv
        .update_review(pb::UpdateReviewRequest {
            incident_id: inc.id.clone(),
            what_happened: Some("Refunds queued for 40 minutes.".into()),
            root_causes: Some("Bob forgot to drain the queue. The retry limit was too low.".into()),
            by: "bob".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(review.what_happened, "Refunds queued for 40 minutes.");
    assert_eq!(review.blame_findings.len(), 1);
    assert_eq!(review.blame_findings[0].sentence, "Bob forgot to drain the queue.");
    assert_eq!(review.blame_findings[0].rule, "person-failed");
    assert!(review.due_at.is_some());
    assert!(
        review
            .timeline
            .iter()
            .any(|m| m.text.starts_with("Acknowledged by bob"))
    );

    // Action items: bad input is named; one overdue, one done.
    let item = |owner: &str, due: i64| pb::AddActionItemRequest {
        incident_id: inc.id.clone(),
        description: "Alert on refund queue depth".into(),
        owner: owner.into(),
        due_at: Some(ts_in(due)),
        by: "bob".into(),
        ..Default::default()
    };
    assert_status(rv.add_action_item(item("mallory", 3600)).await, Code::NotFound, "owner");
    let mut no_due = item("carol", 0);
    no_due.due_at = None;
    assert_status(rv.add_action_item(no_due).await, Code::InvalidArgument, "due_at");
    let late = rv.add_action_item(item("carol", -3600)).await.unwrap().into_inner();
    assert_eq!(late.id, format!("{}/1", inc.id));
    assert!(late.overdue);
    let later = rv.add_action_item(item("dave", 7 * 86_400)).await.unwrap().into_inner();
    let done = rv
        .complete_action_item(pb::CompleteActionItemRequest {
            action_item_id: later.id.clone(),
            by: "dave".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.state, "done");
    assert_status(
        rv.complete_action_item(pb::CompleteActionItemRequest {
            action_item_id: later.id.clone(),
            ..Default::default()
        })
        .await,
        Code::FailedPrecondition,
        "action_item_id",
    );
    assert_status(
        rv.complete_action_item(pb::CompleteActionItemRequest {
            action_item_id: "not-an-id".into(),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "action_item_id",
    );
    let list = |owner: &str, overdue_only: bool, open_only: bool| pb::ListActionItemsRequest {
        team: "payments".into(),
        owner: owner.into(),
        overdue_only,
        open_only,
        ..Default::default()
    };
    let overdue = rv.list_action_items(list("", true, false)).await.unwrap().into_inner();
    assert_eq!(
        overdue.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        [late.id.as_str()]
    );
    let daves = rv
        .list_action_items(list("dave", false, false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(daves.items.len(), 1);
    let open = rv.list_action_items(list("", false, true)).await.unwrap().into_inner();
    assert_eq!(open.items.len(), 1);
    assert_status(
        rv.list_action_items(list("mallory", false, false)).await,
        Code::NotFound,
        "owner",
    );

    // Markdown export.
    let md = rv
        .get_review(get(&inc.id, pb::ReviewFormat::Markdown))
        .await
        .unwrap()
        .into_inner()
        .markdown;
    assert!(md.starts_with(&format!("# Post-incident review: {} Refunds stuck", inc.reference)));
    assert!(md.contains("## Root causes\n\nBob forgot to drain the queue."));
    assert!(md.contains("- [x] Alert on refund queue depth — owner dave"));

    // The report counts the incident, not the drill.
    let rep = rv
        .get_report(pb::GetReportRequest {
            team: "payments".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rep.incidents, 1);
    let sev2 = rep
        .by_severity
        .iter()
        .find(|s| s.severity == pb::Severity::Sev2 as i32)
        .unwrap();
    assert_eq!(sev2.count, 1);
    assert_eq!(sev2.time_to_resolve.as_ref().unwrap().count, 1);
    assert_eq!(rep.drills.as_ref().unwrap().count, 1);
    let ai = rep.action_items.unwrap();
    assert_eq!((ai.created, ai.done, ai.overdue), (2, 1, 1));
    assert!((ai.completion_rate - 0.5).abs() < 1e-9);
    assert_status(
        rv.get_report(pb::GetReportRequest {
            team: "nope".into(),
            ..Default::default()
        })
        .await,
        Code::NotFound,
        "team",
    );
    server.terminate().await;
}
