//! After the incident: `review show|edit`, `action add|done|drop|list`, `report`.

use super::{Ctx, Out, field};
use crate::cli::{self, ActionCmd, ReviewCmd};
use crate::client::{Client, unary};
use crate::fail::Failure;
use crate::prompt::{self, Form};
use crate::when;
use crate::{json, render};
use incidentd_proto::v1 as pb;
use serde_json::Value;

pub async fn review(c: &mut Client, cmd: ReviewCmd, ctx: &Ctx) -> Result<(), Failure> {
    let out = ctx.out;
    match cmd {
        ReviewCmd::Show(s) => {
            let incident_id = c.resolve_id(&s.incident).await?;
            let markdown = s.markdown || s.output.is_some();
            let format = if markdown {
                pb::ReviewFormat::Markdown
            } else {
                pb::ReviewFormat::Structured
            };
            let r = call!(c.review.get_review(pb::GetReviewRequest {
                incident_id,
                format: format as i32,
            }));
            let mut j = json::review(&r);
            if let Some(path) = &s.output {
                std::fs::write(path, &r.markdown)
                    .map_err(|e| Failure::usage(format!("output: cannot write {}: {e} [--output]", path.display())))?;
                j["output"] = Value::String(path.display().to_string());
                out.print(j, || format!("{}: review written to {}\n", r.reference, path.display()));
            } else if markdown {
                out.print(j, || r.markdown.clone());
            } else {
                out.print(j, || render::review(&r, out.style));
            }
        }
        ReviewCmd::Edit(e) => {
            let (mut what, mut causes, mut contributing, mut well, mut improve) = (
                e.what_happened,
                e.root_causes,
                e.contributing,
                e.went_well,
                e.to_improve,
            );
            Form {
                one_of: vec![
                    field("What happened", "--what-happened", &mut what),
                    field("Root causes", "--root-causes", &mut causes),
                    field("Contributing factors", "--contributing", &mut contributing),
                    field("What went well", "--went-well", &mut well),
                    field("What to improve", "--to-improve", &mut improve),
                ],
                optional: vec![],
                next_update_in: None,
            }
            .fill(prompt::interactive(e.no_input))?;
            let incident_id = c.resolve_id(&e.incident).await?;
            let given = |s: Option<String>| s.filter(|t| !t.trim().is_empty());
            let req = pb::UpdateReviewRequest {
                incident_id,
                what_happened: given(what),
                root_causes: given(causes),
                contributing_factors: given(contributing),
                went_well: given(well),
                to_improve: given(improve),
                by: ctx.by(),
                request_id: ctx.rid(),
            };
            let r = call!(c.review.update_review(req));
            out.print(json::review(&r), || render::review(&r, out.style));
        }
    }
    Ok(())
}

pub async fn action(c: &mut Client, cmd: ActionCmd, ctx: &Ctx) -> Result<(), Failure> {
    let out = ctx.out;
    let item = match cmd {
        ActionCmd::Add(a) => {
            let incident_id = c.resolve_id(&a.incident).await?;
            let req = pb::AddActionItemRequest {
                incident_id,
                description: a.description.join(" "),
                owner: a.owner,
                due_at: Some(when::proto(a.due.ahead(render::now()))),
                by: ctx.by(),
                request_id: ctx.rid(),
            };
            call!(c.review.add_action_item(req))
        }
        ActionCmd::Done(a) => {
            let action_item_id = c.resolve_action_item(&a.id).await?;
            call!(c.review.complete_action_item(pb::CompleteActionItemRequest {
                action_item_id,
                by: ctx.by(),
                request_id: ctx.rid(),
            }))
        }
        ActionCmd::Drop(a) => {
            let action_item_id = c.resolve_action_item(&a.id).await?;
            call!(c.review.drop_action_item(pb::DropActionItemRequest {
                action_item_id,
                reason: a.reason,
                by: ctx.by(),
                request_id: ctx.rid(),
            }))
        }
        ActionCmd::List(l) => return list(c, l, out).await,
    };
    out.print(json::action_item(&item), || {
        render::action_items(std::slice::from_ref(&item), out.style)
    });
    Ok(())
}

async fn list(c: &mut Client, l: cli::ActionList, out: Out) -> Result<(), Failure> {
    let mut items = Vec::new();
    let mut token = String::new();
    while items.len() < l.limit {
        let req = pb::ListActionItemsRequest {
            team: l.team.clone().unwrap_or_default(),
            owner: l.owner.clone().unwrap_or_default(),
            overdue_only: l.overdue,
            open_only: l.open,
            page_size: (l.limit - items.len()).min(500) as u32,
            page_token: token,
        };
        let page = call!(c.review.list_action_items(req));
        items.extend(page.items);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    items.truncate(l.limit);
    out.print(Value::Array(items.iter().map(json::action_item).collect()), || {
        render::action_items(&items, out.style)
    });
    Ok(())
}

pub async fn report(c: &mut Client, r: cli::Report, out: Out) -> Result<(), Failure> {
    let now = render::now();
    let req = pb::GetReportRequest {
        team: r.team.unwrap_or_default(),
        since: r.since.map(|w| when::proto(w.back(now))),
        until: r.until.map(|w| when::proto(w.until(now))),
    };
    let rep = call!(c.review.get_report(req));
    out.print(json::report(&rep), || render::report(&rep, out.style));
    Ok(())
}
