//! Bad input for every RPC: the right code, a message naming the field, and
//! no partial change (the incident's version does not move).

use crate::support::{Server, TEST_CONFIG, assert_status, write_config};
use incidentd_proto::v1::{self as pb};
use tonic::Code;

fn big(n: usize) -> String {
    "x".repeat(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_rejects_bad_input_precisely() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), TEST_CONFIG);
    let server = Server::start(&tmp.path().join("data"), &config).await;
    let mut c = server.client().await;

    let declare = |f: &dyn Fn(&mut pb::DeclareIncidentRequest)| {
        let mut r = pb::DeclareIncidentRequest {
            title: "Payments down".into(),
            team: "payments".into(),
            services: vec!["payments-api".into()],
            ..Default::default()
        };
        f(&mut r);
        r
    };
    // DeclareIncident
    assert_status(
        c.declare_incident(declare(&|r| r.title = "  ".into())).await,
        Code::InvalidArgument,
        "title",
    );
    assert_status(
        c.declare_incident(declare(&|r| r.title = big(201))).await,
        Code::InvalidArgument,
        "title",
    );
    assert_status(
        c.declare_incident(declare(&|r| r.team = "nope".into())).await,
        Code::NotFound,
        "team",
    );
    assert_status(
        c.declare_incident(declare(&|r| r.services = vec!["nope".into()])).await,
        Code::NotFound,
        "services",
    );
    assert_status(
        c.declare_incident(declare(&|r| r.commander = "mallory".into())).await,
        Code::NotFound,
        "commander",
    );
    assert_status(
        c.declare_incident(declare(&|r| r.severity = 9)).await,
        Code::InvalidArgument,
        "severity",
    );
    assert_status(
        c.declare_incident(declare(&|r| r.summary = big(65 * 1024))).await,
        Code::InvalidArgument,
        "summary",
    );
    assert_status(
        c.declare_incident(declare(&|r| r.request_id = big(129))).await,
        Code::InvalidArgument,
        "request_id",
    );
    assert_status(
        c.declare_incident(declare(&|r| r.by = "mallory".into())).await,
        Code::NotFound,
        "by",
    );
    // None of those created anything.
    let list = c
        .list_incidents(pb::ListIncidentsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(list.incidents.is_empty(), "refused declarations leave no incident");

    // SEV-4: no deadline fires (and moves the version) while the test runs.
    let inc = c
        .declare_incident(declare(&|r| r.severity = pb::Severity::Sev4 as i32))
        .await
        .unwrap()
        .into_inner();
    let id = inc.id.clone();
    let unknown = "01ARZ3NDEKTSV4RRFFQ69G5FAV".to_string();

    // GetIncident / ids
    assert_status(
        c.get_incident(pb::GetIncidentRequest { id: String::new() }).await,
        Code::InvalidArgument,
        "id",
    );
    assert_status(
        c.get_incident(pb::GetIncidentRequest {
            id: "INC-1; drop".into(),
        })
        .await,
        Code::InvalidArgument,
        "id",
    );
    assert_status(
        c.get_incident(pb::GetIncidentRequest { id: unknown.clone() }).await,
        Code::NotFound,
        "id",
    );

    // ListIncidents
    let list = |f: &dyn Fn(&mut pb::ListIncidentsRequest)| {
        let mut r = pb::ListIncidentsRequest::default();
        f(&mut r);
        r
    };
    assert_status(
        c.list_incidents(list(&|r| r.page_size = 10_000)).await,
        Code::InvalidArgument,
        "page_size",
    );
    assert_status(
        c.list_incidents(list(&|r| r.page_token = "garbage".into())).await,
        Code::InvalidArgument,
        "page_token",
    );
    assert_status(
        c.list_incidents(list(&|r| r.status = vec![42])).await,
        Code::InvalidArgument,
        "status",
    );
    assert_status(
        c.list_incidents(list(&|r| r.severity = vec![42])).await,
        Code::InvalidArgument,
        "severity",
    );

    // AcknowledgeIncident
    let ack = |id: &str, by: &str| pb::AcknowledgeIncidentRequest {
        id: id.into(),
        by: by.into(),
        ..Default::default()
    };
    assert_status(
        c.acknowledge_incident(ack("", "alice")).await,
        Code::InvalidArgument,
        "id",
    );
    assert_status(
        c.acknowledge_incident(ack(&unknown, "alice")).await,
        Code::NotFound,
        "id",
    );
    assert_status(c.acknowledge_incident(ack(&id, "mallory")).await, Code::NotFound, "by");

    // SetSeverity
    let sev = |s: i32, reason: &str| pb::SetSeverityRequest {
        id: id.clone(),
        severity: s,
        reason: reason.into(),
        ..Default::default()
    };
    assert_status(c.set_severity(sev(0, "why")).await, Code::InvalidArgument, "severity");
    assert_status(c.set_severity(sev(2, "")).await, Code::InvalidArgument, "reason");
    assert_status(
        c.set_severity(sev(2, &big(65 * 1024))).await,
        Code::InvalidArgument,
        "reason",
    );

    // AssignRole
    let assign = |role: i32, person: &str, track: &str| pb::AssignRoleRequest {
        id: id.clone(),
        role,
        person: person.into(),
        track: track.into(),
        ..Default::default()
    };
    assert_status(
        c.assign_role(assign(0, "alice", "")).await,
        Code::InvalidArgument,
        "role",
    );
    assert_status(c.assign_role(assign(1, "", "")).await, Code::InvalidArgument, "person");
    assert_status(c.assign_role(assign(1, "mallory", "")).await, Code::NotFound, "person");
    assert_status(
        c.assign_role(assign(3, "carol", " ")).await,
        Code::FailedPrecondition,
        "track",
    );
    assert_status(
        c.assign_role(assign(3, "carol", &big(201))).await,
        Code::InvalidArgument,
        "track",
    );
    assert_status(
        c.assign_role(assign(1, "alice", "db")).await,
        Code::InvalidArgument,
        "track",
    );

    // UnassignRole
    let unassign = |role: i32, person: &str| pb::UnassignRoleRequest {
        id: id.clone(),
        role,
        person: person.into(),
        ..Default::default()
    };
    assert_status(
        c.unassign_role(unassign(0, "alice")).await,
        Code::InvalidArgument,
        "role",
    );
    assert_status(c.unassign_role(unassign(1, "")).await, Code::InvalidArgument, "person");
    assert_status(
        c.unassign_role(unassign(1, "alice")).await,
        Code::FailedPrecondition,
        "person",
    );

    // SetStatus
    let status = |s: i32| pb::SetStatusRequest {
        id: id.clone(),
        status: s,
        ..Default::default()
    };
    assert_status(c.set_status(status(0)).await, Code::InvalidArgument, "status");
    assert_status(c.set_status(status(17)).await, Code::InvalidArgument, "status");

    // SetImpact
    let impact = |f: &dyn Fn(&mut pb::SetImpactRequest)| {
        let mut r = pb::SetImpactRequest {
            id: id.clone(),
            ..Default::default()
        };
        f(&mut r);
        r
    };
    assert_status(c.set_impact(impact(&|_| {})).await, Code::InvalidArgument, "impact");
    assert_status(
        c.set_impact(impact(&|r| r.customer_impact_percent = Some(101))).await,
        Code::InvalidArgument,
        "customer_impact_percent",
    );
    assert_status(
        c.set_impact(impact(&|r| r.data_loss = 9)).await,
        Code::InvalidArgument,
        "data_loss",
    );
    assert_status(
        c.set_impact(impact(&|r| r.impact = Some(big(65 * 1024)))).await,
        Code::InvalidArgument,
        "impact",
    );

    // AddTimelineEntry
    let entry = |kind: i32, text: &str, author: &str| pb::AddTimelineEntryRequest {
        id: id.clone(),
        kind,
        text: text.into(),
        author: author.into(),
        ..Default::default()
    };
    assert_status(
        c.add_timeline_entry(entry(0, "x", "")).await,
        Code::InvalidArgument,
        "kind",
    );
    assert_status(
        c.add_timeline_entry(entry(5, "x", "")).await,
        Code::InvalidArgument,
        "kind",
    );
    assert_status(
        c.add_timeline_entry(entry(1, " ", "")).await,
        Code::InvalidArgument,
        "text",
    );
    assert_status(
        c.add_timeline_entry(entry(1, &big(64 * 1024 + 1), "")).await,
        Code::InvalidArgument,
        "text",
    );
    assert_status(
        c.add_timeline_entry(entry(1, "x", "mallory")).await,
        Code::NotFound,
        "by",
    );

    // PostUpdate
    let update = |f: &dyn Fn(&mut pb::PostUpdateRequest)| {
        let mut r = pb::PostUpdateRequest {
            id: id.clone(),
            ..Default::default()
        };
        f(&mut r);
        r
    };
    assert_status(c.post_update(update(&|_| {})).await, Code::InvalidArgument, "kind");
    assert_status(
        c.post_update(update(&|r| r.kind = 1)).await,
        Code::InvalidArgument,
        "current_theory",
    );
    assert_status(
        c.post_update(update(&|r| r.kind = 2)).await,
        Code::InvalidArgument,
        "customer_symptom",
    );
    assert_status(
        c.post_update(update(&|r| r.kind = 3)).await,
        Code::InvalidArgument,
        "business_impact",
    );
    assert_status(
        c.post_update(update(&|r| {
            r.kind = 1;
            r.next_steps = "x".into();
            r.next_update_in = Some(prost_types::Duration { seconds: 5, nanos: 0 });
        }))
        .await,
        Code::InvalidArgument,
        "next_update_in",
    );

    // GetTimeline
    assert_status(
        c.get_timeline(pb::GetTimelineRequest {
            id: id.clone(),
            page_token: "x".into(),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "page_token",
    );
    assert_status(
        c.get_timeline(pb::GetTimelineRequest {
            id: unknown.clone(),
            ..Default::default()
        })
        .await,
        Code::NotFound,
        "id",
    );

    // WatchIncident
    assert_status(
        c.watch_incident(pb::WatchIncidentRequest {
            id: unknown.clone(),
            from_version: 0,
        })
        .await,
        Code::NotFound,
        "id",
    );
    assert_status(
        c.watch_incident(pb::WatchIncidentRequest {
            id: "bad".into(),
            from_version: 0,
        })
        .await,
        Code::InvalidArgument,
        "id",
    );
    // WatchIncidents
    assert_status(
        c.watch_incidents(pb::WatchIncidentsRequest {
            severity: vec![99],
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "severity",
    );

    // Nothing above changed the incident.
    let now = c
        .get_incident(pb::GetIncidentRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.version, inc.version, "refused commands leave no partial change");

    // ResolveIncident: twice is FAILED_PRECONDITION.
    let resolve = pb::ResolveIncidentRequest {
        id: id.clone(),
        ..Default::default()
    };
    c.resolve_incident(resolve.clone()).await.unwrap();
    assert_status(c.resolve_incident(resolve).await, Code::FailedPrecondition, "resolved");
    assert_status(
        c.resolve_incident(pb::ResolveIncidentRequest {
            id: unknown,
            ..Default::default()
        })
        .await,
        Code::NotFound,
        "id",
    );
    let ackd = pb::AcknowledgeIncidentRequest {
        id: id.clone(),
        ..Default::default()
    };
    assert_status(c.acknowledge_incident(ackd).await, Code::FailedPrecondition, "status");
    server.kill9().await;
}
