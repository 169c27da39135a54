//! Tokens, scopes and teams against the real binary (issue 8): the
//! authorisation matrix (every RPC × no token, wrong team, read-only,
//! respond, command, admin), the acting person taken from the token, the
//! audit log, API tokens, and config reload (SIGHUP and the admin RPC; a bad
//! file keeps the old config).

use crate::support::{Server, TEST_CONFIG, write_config};
use incidentd_proto::v1 as pb;
use incidentd_proto::v1::admin_service_client::AdminServiceClient;
use incidentd_proto::v1::alert_service_client::AlertServiceClient;
use incidentd_proto::v1::drill_service_client::DrillServiceClient;
use incidentd_proto::v1::incident_service_client::IncidentServiceClient;
use incidentd_proto::v1::notification_service_client::NotificationServiceClient;
use incidentd_proto::v1::review_service_client::ReviewServiceClient;
use incidentd_proto::v1::status_page_service_client::StatusPageServiceClient;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::Channel;

/// The principals of the matrix: (name, secret, scopes, teams, person).
const TOKENS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "wrong-team",
        "secret-wrong-team",
        r#"["read", "respond", "command"]"#,
        r#"["platform"]"#,
        "carol",
    ),
    ("read-only", "secret-read-only", r#"["read"]"#, r#"["payments"]"#, "bob"),
    (
        "respond",
        "secret-respond",
        r#"["read", "respond"]"#,
        r#"["payments"]"#,
        "bob",
    ),
    (
        "command",
        "secret-command",
        r#"["read", "respond", "command"]"#,
        r#"["payments"]"#,
        "alice",
    ),
    (
        "admin",
        "secret-admin",
        r#"["read", "respond", "command", "admin"]"#,
        r#"["*"]"#,
        "dave",
    ),
];

pub(crate) fn hex_sha256(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn config(extra: &str) -> String {
    let mut c = TEST_CONFIG.to_string();
    for (id, secret, scopes, teams, person) in TOKENS {
        c.push_str(&format!(
            "\n[[tokens]]\nid = \"{id}\"\nsha256 = \"{}\"\nperson = \"{person}\"\nscopes = {scopes}\nteams = {teams}\n",
            hex_sha256(secret)
        ));
    }
    c.push_str(extra);
    c
}

#[derive(Clone)]
struct Bearer(Option<String>);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(t) = &self.0
            && let Ok(v) = MetadataValue::try_from(format!("Bearer {t}"))
        {
            req.metadata_mut().insert("authorization", v);
        }
        Ok(req)
    }
}

type Intercepted = tonic::service::interceptor::InterceptedService<Channel, Bearer>;

fn incidents(ch: &Channel, t: Option<&str>) -> IncidentServiceClient<Intercepted> {
    IncidentServiceClient::with_interceptor(ch.clone(), Bearer(t.map(String::from)))
}

fn admin(ch: &Channel, t: Option<&str>) -> AdminServiceClient<Intercepted> {
    AdminServiceClient::with_interceptor(ch.clone(), Bearer(t.map(String::from)))
}

/// The code of a call (`Ok` for success).
fn code<T>(r: Result<T, tonic::Status>) -> Code {
    match r {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

/// Ids the matrix's requests point at (all of team payments).
#[derive(Clone)]
struct Ids {
    open: String,
    resolved: String,
    item: String,
    drill: String,
    maintenance: String,
}

type Call = Box<dyn Fn(Channel, Option<String>, Ids) -> Pin<Box<dyn Future<Output = Code> + Send>>>;

/// What a row needs: the scope, and whether it acts on team payments.
#[derive(Clone, Copy, PartialEq)]
enum Need {
    /// Any token with this scope (reads: across teams by default).
    Scope(&'static str),
    /// This scope and team payments.
    Team(&'static str),
    /// The alert edge: only integration secrets, never a person's token.
    Integration,
}

macro_rules! row {
    ($name:literal, $need:expr, $client:ident, $method:ident, |$ids:ident| $req:expr) => {
        (
            $name,
            $need,
            Box::new(move |ch: Channel, t: Option<String>, $ids: Ids| {
                Box::pin(async move {
                    let mut c = $client::with_interceptor(ch, Bearer(t));
                    code(c.$method($req).await)
                }) as Pin<Box<dyn Future<Output = Code> + Send>>
            }) as Call,
        )
    };
}

fn rows() -> Vec<(&'static str, Need, Call)> {
    use Need::*;
    let ts = |secs: i64| {
        Some(prost_types::Timestamp {
            seconds: secs,
            nanos: 0,
        })
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    vec![
        row!(
            "DeclareIncident",
            Team("respond"),
            IncidentServiceClient,
            declare_incident,
            |_ids| {
                pb::DeclareIncidentRequest {
                    title: "matrix".into(),
                    team: "payments".into(),
                    severity: pb::Severity::Sev3 as i32,
                    ..Default::default()
                }
            }
        ),
        row!(
            "GetIncident",
            Scope("read"),
            IncidentServiceClient,
            get_incident,
            |ids| pb::GetIncidentRequest { id: ids.open }
        ),
        row!(
            "ListIncidents",
            Scope("read"),
            IncidentServiceClient,
            list_incidents,
            |_ids| pb::ListIncidentsRequest::default()
        ),
        row!(
            "AcknowledgeIncident",
            Team("respond"),
            IncidentServiceClient,
            acknowledge_incident,
            |ids| {
                pb::AcknowledgeIncidentRequest {
                    id: ids.open,
                    ..Default::default()
                }
            }
        ),
        row!(
            "SetSeverity",
            Team("command"),
            IncidentServiceClient,
            set_severity,
            |ids| pb::SetSeverityRequest {
                id: ids.open,
                severity: pb::Severity::Sev2 as i32,
                reason: "matrix".into(),
                ..Default::default()
            }
        ),
        row!(
            "AssignRole",
            Team("command"),
            IncidentServiceClient,
            assign_role,
            |ids| pb::AssignRoleRequest {
                id: ids.open,
                role: pb::Role::Sme as i32,
                person: "bob".into(),
                track: "db".into(),
                ..Default::default()
            }
        ),
        row!(
            "UnassignRole",
            Team("command"),
            IncidentServiceClient,
            unassign_role,
            |ids| pb::UnassignRoleRequest {
                id: ids.open,
                role: pb::Role::Sme as i32,
                person: "bob".into(),
                ..Default::default()
            }
        ),
        row!("SetStatus", Team("command"), IncidentServiceClient, set_status, |ids| {
            pb::SetStatusRequest {
                id: ids.open,
                status: pb::Status::Identified as i32,
                ..Default::default()
            }
        }),
        row!("SetImpact", Team("command"), IncidentServiceClient, set_impact, |ids| {
            pb::SetImpactRequest {
                id: ids.open,
                impact: Some("checkout slow".into()),
                ..Default::default()
            }
        }),
        row!(
            "AddTimelineEntry",
            Team("respond"),
            IncidentServiceClient,
            add_timeline_entry,
            |ids| {
                pb::AddTimelineEntryRequest {
                    id: ids.open,
                    kind: pb::EntryKind::Note as i32,
                    text: "matrix".into(),
                    ..Default::default()
                }
            }
        ),
        row!(
            "PostUpdate",
            Team("respond"),
            IncidentServiceClient,
            post_update,
            |ids| pb::PostUpdateRequest {
                id: ids.open,
                kind: pb::UpdateKind::Internal as i32,
                status_text: "looking".into(),
                impact: "some".into(),
                current_theory: "db".into(),
                next_steps: "check".into(),
                ..Default::default()
            }
        ),
        row!(
            "ResolveIncident",
            Team("command"),
            IncidentServiceClient,
            resolve_incident,
            |ids| {
                pb::ResolveIncidentRequest {
                    id: ids.open,
                    note: "matrix".into(),
                    ..Default::default()
                }
            }
        ),
        row!(
            "GetTimeline",
            Scope("read"),
            IncidentServiceClient,
            get_timeline,
            |ids| pb::GetTimelineRequest {
                id: ids.open,
                ..Default::default()
            }
        ),
        row!(
            "WatchIncident",
            Scope("read"),
            IncidentServiceClient,
            watch_incident,
            |ids| pb::WatchIncidentRequest {
                id: ids.open,
                from_version: 0
            }
        ),
        row!(
            "WatchIncidents",
            Scope("read"),
            IncidentServiceClient,
            watch_incidents,
            |_ids| pb::WatchIncidentsRequest::default()
        ),
        row!("IngestAlert", Integration, AlertServiceClient, ingest_alert, |_ids| {
            pb::IngestAlertRequest {
                dedup_key: "k".into(),
                action: pb::AlertAction::Trigger as i32,
                summary: "s".into(),
                ..Default::default()
            }
        }),
        row!("IngestAlerts", Integration, AlertServiceClient, ingest_alerts, |_ids| {
            tokio_stream::iter(vec![pb::IngestAlertRequest {
                dedup_key: "k".into(),
                action: pb::AlertAction::Trigger as i32,
                summary: "s".into(),
                ..Default::default()
            }])
        }),
        row!("GetReview", Scope("read"), ReviewServiceClient, get_review, |ids| {
            pb::GetReviewRequest {
                incident_id: ids.resolved,
                ..Default::default()
            }
        }),
        row!(
            "UpdateReview",
            Team("respond"),
            ReviewServiceClient,
            update_review,
            |ids| pb::UpdateReviewRequest {
                incident_id: ids.resolved,
                went_well: Some("paging".into()),
                ..Default::default()
            }
        ),
        row!(
            "AddActionItem",
            Team("respond"),
            ReviewServiceClient,
            add_action_item,
            |ids| {
                pb::AddActionItemRequest {
                    incident_id: ids.resolved,
                    description: "add an alert".into(),
                    owner: "bob".into(),
                    due_at: ts(now + 86_400),
                    ..Default::default()
                }
            }
        ),
        row!(
            "CompleteActionItem",
            Team("respond"),
            ReviewServiceClient,
            complete_action_item,
            |ids| {
                pb::CompleteActionItemRequest {
                    action_item_id: ids.item,
                    ..Default::default()
                }
            }
        ),
        row!(
            "DropActionItem",
            Team("respond"),
            ReviewServiceClient,
            drop_action_item,
            |ids| {
                pb::DropActionItemRequest {
                    action_item_id: ids.item,
                    reason: "dup".into(),
                    ..Default::default()
                }
            }
        ),
        row!(
            "ListActionItems",
            Scope("read"),
            ReviewServiceClient,
            list_action_items,
            |_ids| pb::ListActionItemsRequest::default()
        ),
        row!("GetReport", Scope("read"), ReviewServiceClient, get_report, |_ids| {
            pb::GetReportRequest::default()
        }),
        row!(
            "ListScenarios",
            Scope("read"),
            DrillServiceClient,
            list_scenarios,
            |_ids| pb::ListScenariosRequest {}
        ),
        row!("StartDrill", Team("command"), DrillServiceClient, start_drill, |_ids| {
            pb::StartDrillRequest {
                scenario: "sev1-payments-outage".into(),
                team: "payments".into(),
                ..Default::default()
            }
        }),
        row!(
            "GetRoleRotation",
            Scope("read"),
            DrillServiceClient,
            get_role_rotation,
            |_ids| {
                pb::GetRoleRotationRequest {
                    team: "payments".into(),
                    ..Default::default()
                }
            }
        ),
        row!(
            "ScheduleDrill",
            Team("command"),
            DrillServiceClient,
            schedule_drill,
            |_ids| pb::ScheduleDrillRequest {
                scenario: "sev1-payments-outage".into(),
                team: "payments".into(),
                at: ts(now + 7 * 86_400),
                ..Default::default()
            }
        ),
        row!("ListDrills", Scope("read"), DrillServiceClient, list_drills, |_ids| {
            pb::ListDrillsRequest::default()
        }),
        row!(
            "CancelDrill",
            Team("command"),
            DrillServiceClient,
            cancel_drill,
            |ids| pb::CancelDrillRequest { id: ids.drill }
        ),
        row!(
            "ListDeliveries",
            Scope("read"),
            NotificationServiceClient,
            list_deliveries,
            |_ids| pb::ListDeliveriesRequest::default()
        ),
        row!(
            "RetryDelivery",
            Scope("admin"),
            NotificationServiceClient,
            retry_delivery,
            |_ids| {
                pb::RetryDeliveryRequest {
                    delivery_id: "nope".into(),
                    ..Default::default()
                }
            }
        ),
        row!(
            "ListComponents",
            Scope("read"),
            StatusPageServiceClient,
            list_components,
            |_ids| pb::ListComponentsRequest {}
        ),
        row!(
            "SetComponentStatus",
            Team("command"),
            StatusPageServiceClient,
            set_component_status,
            |ids| {
                pb::SetComponentStatusRequest {
                    incident_id: ids.open,
                    service: "payments-api".into(),
                    status: pb::ComponentStatus::PartialOutage as i32,
                    ..Default::default()
                }
            }
        ),
        row!(
            "ScheduleMaintenance",
            Scope("admin"),
            StatusPageServiceClient,
            schedule_maintenance,
            |_ids| {
                pb::ScheduleMaintenanceRequest {
                    title: "db upgrade".into(),
                    services: vec!["payments-api".into()],
                    starts_at: ts(now + 86_400),
                    ends_at: ts(now + 90_000),
                    ..Default::default()
                }
            }
        ),
        row!(
            "UpdateMaintenance",
            Scope("admin"),
            StatusPageServiceClient,
            update_maintenance,
            |ids| {
                pb::UpdateMaintenanceRequest {
                    id: ids.maintenance,
                    body: "moved".into(),
                    ..Default::default()
                }
            }
        ),
        row!(
            "ListMaintenances",
            Scope("read"),
            StatusPageServiceClient,
            list_maintenances,
            |_ids| pb::ListMaintenancesRequest::default()
        ),
        row!(
            "CreateToken",
            Scope("admin"),
            AdminServiceClient,
            create_token,
            |_ids| pb::CreateTokenRequest {
                id: format!("m-{}", std::process::id()),
                person: "bob".into(),
                scopes: vec!["read".into()],
                teams: vec!["payments".into()],
                ..Default::default()
            }
        ),
        row!("ListTokens", Scope("admin"), AdminServiceClient, list_tokens, |_ids| {
            pb::ListTokensRequest {}
        }),
        row!(
            "RevokeToken",
            Scope("admin"),
            AdminServiceClient,
            revoke_token,
            |_ids| pb::RevokeTokenRequest { id: "nope".into() }
        ),
        row!(
            "ListAuditRecords",
            Scope("admin"),
            AdminServiceClient,
            list_audit_records,
            |_ids| pb::ListAuditRecordsRequest::default()
        ),
        row!(
            "ReloadConfig",
            Scope("admin"),
            AdminServiceClient,
            reload_config,
            |_ids| pb::ReloadConfigRequest {}
        ),
    ]
}

/// The expected outcome: `Some(code)` for a refusal, `None` for "let through".
fn expected(need: Need, token: Option<&str>) -> Option<Code> {
    let Some(id) = token else {
        return Some(Code::Unauthenticated);
    };
    let (_, _, scopes, teams, _) = TOKENS.iter().find(|t| t.0 == id).copied().expect("token");
    let has = |s: &str| scopes.contains(&format!("\"{s}\"")) || scopes.contains("\"admin\"");
    match need {
        Need::Integration => Some(Code::Unauthenticated),
        Need::Scope(s) => (!has(s)).then_some(Code::PermissionDenied),
        Need::Team(s) => {
            (!has(s) || !(teams.contains("payments") || teams.contains('*'))).then_some(Code::PermissionDenied)
        }
    }
}

async fn setup(ch: &Channel) -> Ids {
    let admin_token = Some("secret-admin");
    let mut inc = incidents(ch, admin_token);
    let declare = |title: &str| pb::DeclareIncidentRequest {
        title: title.into(),
        team: "payments".into(),
        severity: pb::Severity::Sev2 as i32,
        commander: "alice".into(),
        ..Default::default()
    };
    let open = inc
        .declare_incident(declare("open"))
        .await
        .expect("declare")
        .into_inner()
        .id;
    let resolved = inc
        .declare_incident(declare("done"))
        .await
        .expect("declare")
        .into_inner()
        .id;
    inc.resolve_incident(pb::ResolveIncidentRequest {
        id: resolved.clone(),
        note: "fixed".into(),
        ..Default::default()
    })
    .await
    .expect("an admin resolves without being the commander");
    let mut reviews = ReviewServiceClient::with_interceptor(ch.clone(), Bearer(admin_token.map(String::from)));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let item = reviews
        .add_action_item(pb::AddActionItemRequest {
            incident_id: resolved.clone(),
            description: "runbook".into(),
            owner: "bob".into(),
            due_at: Some(prost_types::Timestamp {
                seconds: now + 86_400,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .expect("action item")
        .into_inner()
        .id;
    let mut drills = DrillServiceClient::with_interceptor(ch.clone(), Bearer(admin_token.map(String::from)));
    let drill = drills
        .schedule_drill(pb::ScheduleDrillRequest {
            scenario: "sev1-payments-outage".into(),
            team: "payments".into(),
            at: Some(prost_types::Timestamp {
                seconds: now + 30 * 86_400,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .expect("drill")
        .into_inner()
        .id;
    let mut page = StatusPageServiceClient::with_interceptor(ch.clone(), Bearer(admin_token.map(String::from)));
    // The status page starts beside the incident service: retry briefly while it answers UNAVAILABLE.
    let mut maintenance = String::new();
    for _ in 0..100 {
        let r = page
            .schedule_maintenance(pb::ScheduleMaintenanceRequest {
                title: "setup".into(),
                services: vec!["payments-api".into()],
                starts_at: Some(prost_types::Timestamp {
                    seconds: now + 86_400,
                    nanos: 0,
                }),
                ends_at: Some(prost_types::Timestamp {
                    seconds: now + 90_000,
                    nanos: 0,
                }),
                ..Default::default()
            })
            .await;
        match r {
            Ok(m) => {
                maintenance = m.into_inner().id;
                break;
            }
            Err(s) if s.code() == Code::Unavailable => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(s) => panic!("maintenance: {s:?}"),
        }
    }
    assert!(!maintenance.is_empty(), "the status page did not start");
    Ids {
        open,
        resolved,
        item,
        drill,
        maintenance,
    }
}

#[tokio::test]
async fn every_rpc_against_every_kind_of_caller() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = write_config(tmp.path(), &config(""));
    let server = Server::start_secured(&tmp.path().join("data"), &cfg).await;
    let ch = Channel::from_shared(format!("http://{}", server.grpc))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let ids = setup(&ch).await;
    let principals: Vec<Option<&str>> = std::iter::once(None).chain(TOKENS.iter().map(|t| Some(t.0))).collect();
    let mut failures = Vec::new();
    let rows = rows();
    for (name, need, call) in &rows {
        for p in &principals {
            let secret = p.map(|id| {
                TOKENS
                    .iter()
                    .find(|t| t.0 == id)
                    .map(|t| t.1.to_string())
                    .unwrap_or_default()
            });
            let got = call(ch.clone(), secret, ids.clone()).await;
            let ok = match expected(*need, *p) {
                Some(code) => got == code,
                None => !matches!(
                    got,
                    Code::Unauthenticated | Code::PermissionDenied | Code::Unimplemented
                ),
            };
            if !ok {
                failures.push(format!(
                    "{name} as {}: got {got:?}, expected {:?}",
                    p.unwrap_or("no token"),
                    expected(*need, *p).map_or("let through".to_string(), |c| format!("{c:?}"))
                ));
            }
        }
    }
    assert!(failures.is_empty(), "authorisation matrix:\n{}", failures.join("\n"));
    assert!(rows.len() >= 42, "every RPC has a row: {}", rows.len());

    // The acting person comes from the token; a forged `by` is refused, naming the field.
    let mut bob = incidents(&ch, Some("secret-respond"));
    let forged = bob
        .add_timeline_entry(pb::AddTimelineEntryRequest {
            id: ids.open.clone(),
            kind: pb::EntryKind::Note as i32,
            text: "as alice".into(),
            author: "alice".into(),
            ..Default::default()
        })
        .await
        .expect_err("forged author");
    assert_eq!(forged.code(), Code::PermissionDenied);
    assert!(
        forged.message().starts_with("author:") || forged.message().starts_with("by:"),
        "{}",
        forged.message()
    );
    let entry = bob
        .add_timeline_entry(pb::AddTimelineEntryRequest {
            id: ids.open.clone(),
            kind: pb::EntryKind::Note as i32,
            text: "from bob's token".into(),
            ..Default::default()
        })
        .await
        .expect("entry")
        .into_inner();
    assert_eq!(entry.author, "bob");

    // Denials and changes are in the audit log, with token, person, incident and result.
    let mut adm = admin(&ch, Some("secret-admin"));
    let denied = adm
        .list_audit_records(pb::ListAuditRecordsRequest {
            token_id: "read-only".into(),
            denied_only: true,
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("audit")
        .into_inner()
        .records;
    assert!(
        denied
            .iter()
            .any(|r| r.method.ends_with("/SetSeverity") && r.code == "PERMISSION_DENIED" && r.actor == "bob"),
        "{denied:?}"
    );
    let changes = adm
        .list_audit_records(pb::ListAuditRecordsRequest {
            incident_id: ids.open.clone(),
            method: "AddTimelineEntry".into(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("audit")
        .into_inner()
        .records;
    assert!(
        changes
            .iter()
            .any(|r| r.code == "OK" && r.token_id == "respond" && r.actor == "bob"),
        "{changes:?}"
    );
    let anonymous = adm
        .list_audit_records(pb::ListAuditRecordsRequest {
            denied_only: true,
            method: "DeclareIncident".into(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("audit")
        .into_inner()
        .records;
    assert!(
        anonymous
            .iter()
            .any(|r| r.code == "UNAUTHENTICATED" && r.token_id.is_empty()),
        "{anonymous:?}"
    );

    // Denials are counted in the metrics.
    let (status, metrics) = crate::support::http_get(&server.http, "/metrics").await;
    assert_eq!(status, 200);
    let denied_line = metrics
        .lines()
        .find(|l| l.starts_with("incidentd_auth_denied_total{code=\"PERMISSION_DENIED\"}"))
        .expect("denial counter");
    let n: u64 = denied_line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("count");
    assert!(n > 20, "{denied_line}");
    server.terminate().await;
}

#[tokio::test]
async fn api_tokens_survive_a_restart_and_revocation_is_immediate() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let cfg = write_config(tmp.path(), &config(""));
    let server = Server::start_secured(&data, &cfg).await;
    let ch = Channel::from_shared(format!("http://{}", server.grpc))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let created = admin(&ch, Some("secret-admin"))
        .create_token(pb::CreateTokenRequest {
            id: "pager-bot".into(),
            person: "alice".into(),
            scopes: vec!["read".into(), "respond".into()],
            teams: vec!["payments".into()],
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner();
    let secret = created.secret.clone();
    assert_eq!(created.token.as_ref().map(|t| t.source.as_str()), Some("api"));
    let declared = incidents(&ch, Some(&secret))
        .declare_incident(pb::DeclareIncidentRequest {
            title: "via api token".into(),
            ..Default::default()
        })
        .await
        .expect("declare with the new token")
        .into_inner();
    assert_eq!(
        declared.team, "payments",
        "no team: the token's own team, not the org default it may not use"
    );
    server.kill9().await;

    let server = Server::start_secured(&data, &cfg).await;
    let ch = Channel::from_shared(format!("http://{}", server.grpc))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let listed = admin(&ch, Some("secret-admin"))
        .list_tokens(pb::ListTokensRequest {})
        .await
        .expect("list")
        .into_inner()
        .tokens;
    let t = listed
        .iter()
        .find(|t| t.id == "pager-bot")
        .expect("api token after restart");
    assert_eq!((t.person.as_str(), t.created_by.as_str()), ("alice", "dave"));
    assert!(listed.iter().all(|t| t.id != "pager-bot" || !t.revoked));
    let get = pb::GetIncidentRequest {
        id: declared.id.clone(),
    };
    incidents(&ch, Some(&secret))
        .get_incident(get.clone())
        .await
        .expect("still valid");
    admin(&ch, Some("secret-admin"))
        .revoke_token(pb::RevokeTokenRequest { id: "pager-bot".into() })
        .await
        .expect("revoke");
    let after = incidents(&ch, Some(&secret))
        .get_incident(get.clone())
        .await
        .expect_err("revoked");
    assert_eq!(after.code(), Code::Unauthenticated);
    server.kill9().await;
    let server = Server::start_secured(&data, &cfg).await;
    let ch = Channel::from_shared(format!("http://{}", server.grpc))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let after = incidents(&ch, Some(&secret))
        .get_incident(get)
        .await
        .expect_err("revoked after restart");
    assert_eq!(after.code(), Code::Unauthenticated);
    let listed = admin(&ch, Some("secret-admin"))
        .list_tokens(pb::ListTokensRequest {})
        .await
        .expect("list")
        .into_inner()
        .tokens;
    let t = listed
        .iter()
        .find(|t| t.id == "pager-bot")
        .expect("revoked token still listed");
    assert!(t.revoked, "{t:?}");
    assert_eq!(
        (t.person.as_str(), t.revoked_by.as_str(), t.scopes.len()),
        ("alice", "dave", 2),
        "{t:?}"
    );
    server.terminate().await;
}

#[tokio::test]
async fn config_reload_swaps_tokens_and_a_bad_file_keeps_the_old_config() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = write_config(tmp.path(), &config(""));
    let mut server = Server::start_secured(&tmp.path().join("data"), &cfg).await;
    let ch = Channel::from_shared(format!("http://{}", server.grpc))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let declared = incidents(&ch, Some("secret-admin"))
        .declare_incident(pb::DeclareIncidentRequest {
            title: "reload".into(),
            team: "payments".into(),
            ..Default::default()
        })
        .await
        .expect("declare")
        .into_inner();
    let get = pb::GetIncidentRequest {
        id: declared.id.clone(),
    };
    // Default: reads across teams.
    incidents(&ch, Some("secret-wrong-team"))
        .get_incident(get.clone())
        .await
        .expect("read across teams");

    // A bad file: the reload says why and nothing changes.
    std::fs::write(&cfg, config("\n[access]\nread_across_teams = \"no\"\n")).expect("write");
    let bad = admin(&ch, Some("secret-admin"))
        .reload_config(pb::ReloadConfigRequest {})
        .await
        .expect_err("bad config");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("read_across_teams"), "{}", bad.message());
    incidents(&ch, Some("secret-wrong-team"))
        .get_incident(get.clone())
        .await
        .expect("old config still in force");

    // A good file by the admin RPC: reads limited to own teams.
    std::fs::write(&cfg, config("\n[access]\nread_across_teams = false\n")).expect("write");
    let r = admin(&ch, Some("secret-admin"))
        .reload_config(pb::ReloadConfigRequest {})
        .await
        .expect("reload")
        .into_inner();
    assert_eq!((r.org.as_str(), r.tokens), ("Test Corp", TOKENS.len() as u32));
    let denied = incidents(&ch, Some("secret-wrong-team"))
        .get_incident(get.clone())
        .await
        .expect_err("other team's incident");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let listed = incidents(&ch, Some("secret-wrong-team"))
        .list_incidents(pb::ListIncidentsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(listed.incidents.iter().all(|i| i.team == "platform"), "{listed:?}");

    // SIGHUP: a file without the read-only token; it stops working.
    let without: String = config("")
        .replace("id = \"read-only\"", "id = \"read-only-old\"")
        .replace(&hex_sha256("secret-read-only"), &hex_sha256("secret-read-only-rotated"));
    std::fs::write(&cfg, without).expect("write");
    let pid = server.pid.expect("pid");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    // The server reports the reload on stdout once the new config is in force.
    let line = server.next_line("incidentd config reload").await;
    assert!(line.starts_with("incidentd config reloaded"), "{line}");
    let refused = incidents(&ch, Some("secret-read-only"))
        .get_incident(get.clone())
        .await
        .expect_err("the old secret after SIGHUP");
    assert_eq!(refused.code(), Code::Unauthenticated);
    incidents(&ch, Some("secret-read-only-rotated"))
        .get_incident(get)
        .await
        .expect("the rotated secret works");
    server.terminate().await;
}

#[tokio::test]
async fn without_dev_a_config_needs_tokens_and_dev_needs_loopback() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = write_config(tmp.path(), TEST_CONFIG);
    let bin = crate::support::workspace_bin("incidentd");
    let no_tokens = tokio::process::Command::new(&bin)
        .arg("--data-dir")
        .arg(tmp.path().join("d1"))
        .arg("--config")
        .arg(&cfg)
        .args(["--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .output()
        .await
        .expect("run");
    assert!(!no_tokens.status.success());
    let err = String::from_utf8_lossy(&no_tokens.stderr);
    assert!(err.contains("[[tokens]]") && err.contains("--dev"), "{err}");
    let open = tokio::process::Command::new(&bin)
        .arg("--data-dir")
        .arg(tmp.path().join("d2"))
        .args(["--grpc-listen", "0.0.0.0:0", "--http-listen", "127.0.0.1:0", "--dev"])
        .output()
        .await
        .expect("run");
    assert!(!open.status.success());
    let err = String::from_utf8_lossy(&open.stderr);
    assert!(err.contains("loopback"), "{err}");
}
