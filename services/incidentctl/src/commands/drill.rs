//! Game days (`drill scenarios|start|rotation`) and notification
//! deliveries (`deliveries [INC]`, `deliveries retry ID`).

use super::{Ctx, paged};
use crate::cli::{self, DeliveriesCmd, DrillCmd};
use crate::client::{Client, unary};
use crate::fail::Failure;
use crate::when;
use crate::{json, render};
use incidentd_proto::v1 as pb;
use serde_json::Value;

pub async fn drill(c: &mut Client, cmd: DrillCmd, ctx: &Ctx) -> Result<(), Failure> {
    let out = ctx.out;
    match cmd {
        DrillCmd::Scenarios => {
            let list = call!(c.drill.list_scenarios(pb::ListScenariosRequest {}));
            out.print(
                Value::Array(list.scenarios.iter().map(json::scenario).collect()),
                || render::scenarios(&list.scenarios, out.style),
            );
        }
        DrillCmd::Start(s) => {
            let req = pb::StartDrillRequest {
                scenario: s.scenario,
                team: s.team.or_else(|| ctx.settings.team.clone()).unwrap_or_default(),
                roles: Some(pb::DrillRoles {
                    commander: s.commander.unwrap_or_default(),
                    comms_lead: s.comms.unwrap_or_default(),
                    smes: s
                        .sme
                        .into_iter()
                        .map(|(person, track)| pb::DrillSme { person, track })
                        .collect(),
                }),
                by: ctx.by(),
                request_id: ctx.rid(),
            };
            let i = call!(c.drill.start_drill(req));
            out.incident(&i);
        }
        DrillCmd::Schedule(s) => {
            let req = pb::ScheduleDrillRequest {
                scenario: s.scenario,
                team: s.team.or_else(|| ctx.settings.team.clone()).unwrap_or_default(),
                at: s.at.map(|w| when::proto(w.ahead(render::now()))),
                recurring: s.recurring,
                by: ctx.by(),
            };
            let d = call!(c.drill.schedule_drill(req));
            out.print(json::drill(&d), || render::drills(std::slice::from_ref(&d), out.style));
        }
        DrillCmd::Calendar { team } => {
            let list = call!(c.drill.list_drills(pb::ListDrillsRequest {
                team: team.unwrap_or_default()
            }));
            out.print(Value::Array(list.drills.iter().map(json::drill).collect()), || {
                render::drills(&list.drills, out.style)
            });
        }
        DrillCmd::Cancel { id } => {
            let d = call!(c.drill.cancel_drill(pb::CancelDrillRequest { id }));
            out.print(json::drill(&d), || render::drills(std::slice::from_ref(&d), out.style));
        }
        DrillCmd::Rotation(r) => {
            let req = pb::GetRoleRotationRequest {
                team: r.team.or_else(|| ctx.settings.team.clone()).unwrap_or_default(),
                since: r.since.map(|w| when::proto(w.back(render::now()))),
            };
            let rot = call!(c.drill.get_role_rotation(req));
            out.print(json::rotation(&rot), || render::rotation(&rot, out.style));
        }
    }
    Ok(())
}

pub async fn deliveries(c: &mut Client, d: cli::Deliveries, ctx: &Ctx) -> Result<(), Failure> {
    let out = ctx.out;
    if let Some(DeliveriesCmd::Retry { id }) = d.retry {
        let delivery_id = delivery_id(c, &id).await?;
        let del = call!(c.notify.retry_delivery(pb::RetryDeliveryRequest {
            delivery_id,
            request_id: ctx.rid(),
        }));
        out.print(json::delivery(&del), || {
            render::deliveries(std::slice::from_ref(&del), None, out.style)
        });
        return Ok(());
    }
    // One incident: its deliveries are named INC-42:<version>:<destination> on screen.
    let (incident_id, reference) = match &d.incident {
        Some(name) => {
            let id = c.resolve_id(name).await?;
            let i = call!(c.get_incident(pb::GetIncidentRequest { id: id.clone() }));
            (id, Some(i.reference))
        }
        None => (String::new(), None),
    };
    let (list, _) = paged(d.limit, async |page_size, page_token| {
        let req = pb::ListDeliveriesRequest {
            incident_id: incident_id.clone(),
            state: d.state.map_or(0, |s| s.proto() as i32),
            page_size,
            page_token,
        };
        let page = call!(c.notify.list_deliveries(req));
        Ok((page.deliveries, page.next_page_token))
    })
    .await?;
    out.print(Value::Array(list.iter().map(json::delivery).collect()), || {
        render::deliveries(&list, reference.as_deref(), out.style)
    });
    Ok(())
}

/// `INC-42:7:chat` (or `42:7:chat`) → `<incident id>:7:chat`; an id with a ULID passes as is.
async fn delivery_id(c: &mut Client, id: &str) -> Result<String, Failure> {
    let Some((incident, rest)) = id.trim().split_once(':') else {
        return Err(Failure::usage(format!(
            "delivery: {id:?} is not <incident>:<version>:<destination>, e.g. INC-42:7:payments-chat"
        )));
    };
    Ok(format!("{}:{rest}", c.resolve_id(incident).await?))
}
