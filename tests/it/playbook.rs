//! The playbook story over gRPC against the real binary, a watcher that sees
//! every event in order, then `kill -9`, restart, and nothing acknowledged lost.

use crate::support::{Server, TEST_CONFIG, write_config};
use incidentd_proto::v1::{self as pb};
use tokio_stream::StreamExt;

fn req<T>(t: T) -> tonic::Request<T> {
    tonic::Request::new(t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playbook_story_survives_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), TEST_CONFIG);
    let data = tmp.path().join("data");
    let server = Server::start(&data, &config).await;
    let mut c = server.client().await;

    // Declared without a severity: SEV-1, and the timeline says it was unclear.
    let inc = c
        .declare_incident(req(pb::DeclareIncidentRequest {
            title: "Payments down".into(),
            team: "payments".into(),
            services: vec!["payments-api".into()],
            summary: "Card payments fail at checkout".into(),
            by: "alice".into(),
            request_id: "declare-1".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inc.severity, pb::Severity::Sev1 as i32);
    assert_eq!(inc.status, pb::Status::Investigating as i32);
    assert!(inc.number >= 1);
    assert_eq!(inc.reference, format!("INC-{}", inc.number));
    let id = inc.id.clone();

    // A retried declaration returns the first answer, not a second incident.
    let again = c
        .declare_incident(req(pb::DeclareIncidentRequest {
            title: "Payments down".into(),
            team: "payments".into(),
            request_id: "declare-1".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.id, id);

    let mut watch = c
        .watch_incident(req(pb::WatchIncidentRequest {
            id: id.clone(),
            from_version: 0,
        }))
        .await
        .unwrap()
        .into_inner();

    let tl = c
        .get_timeline(req(pb::GetTimelineRequest {
            id: id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert!(
        tl.into_inner()
            .entries
            .iter()
            .any(|e| e.text.contains("unclear") && e.text.contains("SEV-1"))
    );

    let ack = c
        .acknowledge_incident(req(pb::AcknowledgeIncidentRequest {
            id: id.clone(),
            by: "alice".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(ack.acknowledged_at.is_some());
    assert_eq!(ack.acknowledged_by, "alice");

    let assign = |role: pb::Role, person: &str, track: &str| pb::AssignRoleRequest {
        id: id.clone(),
        role: role as i32,
        person: person.into(),
        track: track.into(),
        by: "alice".into(),
        ..Default::default()
    };
    c.assign_role(req(assign(pb::Role::Commander, "alice", "")))
        .await
        .unwrap();
    c.assign_role(req(assign(pb::Role::CommsLead, "bob", "")))
        .await
        .unwrap();
    c.assign_role(req(assign(pb::Role::Sme, "carol", "database failover")))
        .await
        .unwrap();
    let inc = c
        .assign_role(req(assign(pb::Role::Sme, "dave", "payment gateway network")))
        .await
        .unwrap()
        .into_inner();
    let roster = inc.roster.unwrap();
    assert_eq!(roster.commander, "alice");
    assert_eq!(roster.comms_lead, "bob");
    assert_eq!(roster.smes.len(), 2);
    assert_eq!(roster.smes[0].track, "database failover");

    c.set_impact(req(pb::SetImpactRequest {
        id: id.clone(),
        impact: Some("card payments failing".into()),
        customer_impact_percent: Some(40),
        by: "bob".into(),
        ..Default::default()
    }))
    .await
    .unwrap();

    let internal = c
        .post_update(req(pb::PostUpdateRequest {
            id: id.clone(),
            kind: pb::UpdateKind::Internal as i32,
            current_theory: "ledger deploy exhausted DB connections".into(),
            next_steps: "roll back the ledger deploy".into(),
            by: "bob".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(
        internal
            .rendered
            .contains("Current theory: ledger deploy exhausted DB connections"),
        "{}",
        internal.rendered
    );
    assert!(internal.rendered.contains("Next steps: roll back the ledger deploy"));
    assert!(internal.rendered.contains("Severity: SEV-1"));
    assert!(internal.rendered.contains("Commander: alice"));

    let customer = c
        .post_update(req(pb::PostUpdateRequest {
            id: id.clone(),
            kind: pb::UpdateKind::Customer as i32,
            customer_symptom: "card payments time out".into(),
            by: "bob".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(customer.rendered.contains("Payments API"), "{}", customer.rendered);
    assert!(
        customer
            .rendered
            .contains("About 40% of customers may see: card payments time out")
    );
    assert!(
        !customer.rendered.contains("ledger"),
        "internal theory must not leak to customers"
    );

    let exec = c
        .post_update(req(pb::PostUpdateRequest {
            id: id.clone(),
            kind: pb::UpdateKind::Executive as i32,
            business_impact: "checkout revenue stopped in EU".into(),
            estimated_resolution: "30 minutes".into(),
            by: "bob".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(
        exec.rendered
            .contains("Business impact: checkout revenue stopped in EU")
    );
    assert!(exec.rendered.contains("Estimated resolution: 30 minutes"));

    let finding = c
        .add_timeline_entry(req(pb::AddTimelineEntryRequest {
            id: id.clone(),
            kind: pb::EntryKind::Finding as i32,
            text: "connection pool at 100% since 14:02".into(),
            author: "carol".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(finding.kind, pb::EntryKind::Finding as i32);
    assert_eq!(finding.author, "carol");

    let sev2 = c
        .set_severity(req(pb::SetSeverityRequest {
            id: id.clone(),
            severity: pb::Severity::Sev2 as i32,
            reason: "only EU card payments affected".into(),
            by: "alice".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sev2.severity, pb::Severity::Sev2 as i32);

    for (status, note) in [
        (pb::Status::Identified, "bad deploy"),
        (pb::Status::Mitigating, "rolled back"),
    ] {
        c.set_status(req(pb::SetStatusRequest {
            id: id.clone(),
            status: status as i32,
            note: note.into(),
            by: "alice".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    }
    let resolved = c
        .resolve_incident(req(pb::ResolveIncidentRequest {
            id: id.clone(),
            note: "error rate back to baseline".into(),
            by: "alice".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.status, pb::Status::Resolved as i32);
    assert!(resolved.mitigated_at.is_some() && resolved.resolved_at.is_some());
    let final_version = resolved.version;

    // The watcher saw every event, in order, versions 1..=final.
    let mut seen = Vec::new();
    while seen.len() < final_version as usize {
        let ev = watch.next().await.expect("stream open").expect("event");
        seen.push((ev.version, ev.r#type));
    }
    let versions: Vec<u64> = seen.iter().map(|(v, _)| *v).collect();
    assert_eq!(versions, (1..=final_version).collect::<Vec<_>>());
    assert_eq!(seen[0].1, "declared");
    assert_eq!(seen.last().unwrap().1, "status_changed");

    let before = c
        .get_incident(req(pb::GetIncidentRequest { id: id.clone() }))
        .await
        .unwrap()
        .into_inner();
    let timeline_before = c
        .get_timeline(req(pb::GetTimelineRequest {
            id: id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .entries;

    // kill -9 and restart on the same data dir: every acknowledged change is there.
    drop(watch);
    server.kill9().await;
    let server = Server::start(&data, &config).await;
    let mut c = server.client().await;
    let after = c
        .get_incident(req(pb::GetIncidentRequest { id: id.clone() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after, before);
    let timeline_after = c
        .get_timeline(req(pb::GetTimelineRequest {
            id: id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(timeline_after, timeline_before);

    // A replayed watch from version 3 gives exactly the rest.
    let mut watch = c
        .watch_incident(req(pb::WatchIncidentRequest {
            id: id.clone(),
            from_version: 3,
        }))
        .await
        .unwrap()
        .into_inner();
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(first.version, 4);

    // New commands work after the restart: resolved twice is refused, a note is accepted,
    // a new incident gets the next number.
    let again = c
        .resolve_incident(req(pb::ResolveIncidentRequest {
            id: id.clone(),
            ..Default::default()
        }))
        .await;
    assert_eq!(again.unwrap_err().code(), tonic::Code::FailedPrecondition);
    let note = c
        .add_timeline_entry(req(pb::AddTimelineEntryRequest {
            id: id.clone(),
            kind: pb::EntryKind::Note as i32,
            text: "post-incident review scheduled".into(),
            author: "alice".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(note.version, final_version + 1);
    let next = c
        .declare_incident(req(pb::DeclareIncidentRequest {
            title: "Checkout slow".into(),
            team: "payments".into(),
            severity: pb::Severity::Sev3 as i32,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.number, before.number + 1);
    let list = c
        .list_incidents(req(pb::ListIncidentsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.incidents.len(), 2);
    assert_eq!(list.incidents[0].id, next.id, "newest first");

    let status = server.terminate().await;
    assert!(status.success(), "graceful shutdown exits 0, got {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_over_http() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), TEST_CONFIG);
    // An unreachable OTLP collector must not hurt the server (nothing listens on port 9).
    let otel = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")];
    let server = Server::start_with_env(&tmp.path().join("data"), &config, &otel).await;
    let mut c = server.client().await;
    // WatchIncidents with a team filter sees only that team's events.
    let mut feed = c
        .watch_incidents(req(pb::WatchIncidentsRequest {
            team: "platform".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    c.declare_incident(req(pb::DeclareIncidentRequest {
        title: "Card fraud checks slow".into(),
        team: "payments".into(),
        severity: pb::Severity::Sev4 as i32,
        ..Default::default()
    }))
    .await
    .unwrap();
    let platform = c
        .declare_incident(req(pb::DeclareIncidentRequest {
            title: "Search slow".into(),
            team: "platform".into(),
            severity: pb::Severity::Sev3 as i32,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let first = feed.next().await.unwrap().unwrap();
    assert_eq!(
        (first.incident_id.as_str(), first.version, first.r#type.as_str()),
        (platform.id.as_str(), 1, "declared")
    );
    let (code, _) = crate::support::http_get(&server.http, "/healthz").await;
    assert_eq!(code, 200);
    let (code, _) = crate::support::http_get(&server.http, "/readyz").await;
    assert_eq!(code, 200);
    let (code, body) = crate::support::http_get(&server.http, "/metrics").await;
    assert_eq!(code, 200);
    for series in [
        "incidentd_rpc_requests_total{method=\"DeclareIncident\",code=\"OK\"} 2",
        "incidentd_rpc_duration_seconds_bucket{method=\"DeclareIncident\",le=\"+Inf\"} 2",
        "incidentd_live_incidents{severity=\"SEV3\"} 1",
        "incidentd_store_flush_seconds_count",
        "incidentd_actor_restarts_total 0",
        "incidentd_ready 1",
    ] {
        assert!(body.contains(series), "missing {series} in\n{body}");
    }
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let r = health
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    server.kill9().await;
}

/// Server reflection answers in both versions (grpcurl 1.8 and grpcio speak only v1alpha).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_services_in_v1_and_v1alpha() {
    use tonic_reflection::pb::{v1, v1alpha};
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), TEST_CONFIG);
    let server = Server::start(&tmp.path().join("data"), &config).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();

    let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut answers = alpha
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.next().await.unwrap().unwrap();
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("unexpected reflection answer {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"incident.v1.IncidentService".to_string()), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health".to_string()), "{names:?}");

    let mut v1c = v1::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut answers = v1c
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.next().await.unwrap().unwrap();
    assert!(
        matches!(answer.message_response, Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(ref l)) if l.service.iter().any(|s| s.name == "incident.v1.IncidentService")),
        "{answer:?}"
    );
    server.kill9().await;
}
