//! One function per command: build the request, call, print the answer
//! (human text, or JSON with `--json`).

use crate::cli::{self, Cmd, UpdateCmd};
use crate::client::{Client, unary};
use crate::fail::Failure;
use crate::json;
use crate::prompt::{self, Field, Form};
use crate::render::{self, Style};
use crate::settings::Settings;
use incidentd_proto::v1 as pb;
use serde_json::Value;
use std::io::Write;

/// How to print.
#[derive(Clone, Copy)]
pub struct Out {
    pub json: bool,
    pub style: Style,
}

impl Out {
    pub(crate) fn print(&self, json: Value, human: impl FnOnce() -> String) {
        let text = if self.json { format!("{json}\n") } else { human() };
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    pub(crate) fn incident(&self, i: &pb::Incident) {
        self.print(json::incident(i), || render::incident(i, self.style));
    }
}

pub struct Ctx {
    pub settings: Settings,
    pub out: Out,
    pub request_id: Option<String>,
}

impl Ctx {
    pub(crate) fn by(&self) -> String {
        self.settings.user.clone().unwrap_or_default()
    }
    pub(crate) fn rid(&self) -> String {
        self.request_id.clone().unwrap_or_default()
    }
}

/// `call!(c.method(req))`: the unary call with its deadline, a status turned into a failure.
macro_rules! call {
    ($c:ident . $method:ident ( $req:expr )) => {
        $c.api.$method(unary($req)).await.map_err(|s| $c.fail(s))?.into_inner()
    };
    ($c:ident . $svc:ident . $method:ident ( $req:expr )) => {
        $c.$svc.$method(unary($req)).await.map_err(|s| $c.fail(s))?.into_inner()
    };
}

mod admin;
mod drill;
mod review;

pub async fn run(cmd: Cmd, ctx: Ctx) -> Result<(), Failure> {
    let mut c = Client::connect(&ctx.settings).await?;
    let out = ctx.out;
    match cmd {
        Cmd::Declare(d) => {
            let team = d.team.or_else(|| ctx.settings.team.clone()).unwrap_or_default();
            let req = pb::DeclareIncidentRequest {
                title: d.title,
                team,
                services: d.services,
                severity: d.sev.map_or(0, |s| s as i32),
                summary: d.summary.unwrap_or_default(),
                commander: d.commander.unwrap_or_default(),
                drill: d.drill,
                request_id: ctx.rid(),
                by: ctx.by(),
            };
            let i = call!(c.declare_incident(req));
            out.incident(&i);
        }
        Cmd::List(l) => list(&mut c, l, out).await?,
        Cmd::Show(t) => {
            let id = c.resolve_id(&t.incident).await?;
            let i = call!(c.get_incident(pb::GetIncidentRequest { id }));
            out.incident(&i);
        }
        Cmd::Ack(t) => {
            let id = c.resolve_id(&t.incident).await?;
            let req = pb::AcknowledgeIncidentRequest {
                id,
                by: ctx.by(),
                request_id: ctx.rid(),
            };
            let i = call!(c.acknowledge_incident(req));
            out.incident(&i);
        }
        Cmd::Sev(s) => {
            let id = c.resolve_id(&s.incident).await?;
            let req = pb::SetSeverityRequest {
                id,
                severity: s.severity as i32,
                reason: s.reason.unwrap_or_default(),
                by: ctx.by(),
                request_id: ctx.rid(),
            };
            let i = call!(c.set_severity(req));
            out.incident(&i);
        }
        Cmd::Assign(a) => {
            let id = c.resolve_id(&a.incident).await?;
            let req = pb::AssignRoleRequest {
                id,
                role: a.role.proto() as i32,
                person: a.person,
                track: a.track.unwrap_or_default(),
                by: ctx.by(),
                request_id: ctx.rid(),
            };
            let i = call!(c.assign_role(req));
            out.incident(&i);
        }
        Cmd::Unassign(a) => {
            let id = c.resolve_id(&a.incident).await?;
            let req = pb::UnassignRoleRequest {
                id,
                role: a.role.proto() as i32,
                person: a.person,
                by: ctx.by(),
                request_id: ctx.rid(),
            };
            let i = call!(c.unassign_role(req));
            out.incident(&i);
        }
        Cmd::Status(s) => {
            let id = c.resolve_id(&s.incident).await?;
            let req = pb::SetStatusRequest {
                id,
                status: s.status.proto() as i32,
                note: s.note.unwrap_or_default(),
                by: ctx.by(),
                request_id: ctx.rid(),
            };
            let i = call!(c.set_status(req));
            out.incident(&i);
        }
        Cmd::Update(u) => update(&mut c, u, &ctx).await?,
        Cmd::Note(e) => entry(&mut c, e, pb::EntryKind::Note, &ctx).await?,
        Cmd::Finding(e) => entry(&mut c, e, pb::EntryKind::Finding, &ctx).await?,
        Cmd::Resolve(r) => {
            let id = c.resolve_id(&r.incident).await?;
            let req = pb::ResolveIncidentRequest {
                id,
                note: r.note.unwrap_or_default(),
                by: ctx.by(),
                request_id: ctx.rid(),
            };
            let i = call!(c.resolve_incident(req));
            out.incident(&i);
        }
        Cmd::Timeline(t) => timeline(&mut c, &t.incident, out).await?,
        Cmd::Watch(w) => watch(&mut c, w, out).await?,
        Cmd::Review(r) => review::review(&mut c, r, &ctx).await?,
        Cmd::Action(a) => review::action(&mut c, a, &ctx).await?,
        Cmd::Report(r) => review::report(&mut c, r, out).await?,
        Cmd::Drill(d) => drill::drill(&mut c, d, &ctx).await?,
        Cmd::Deliveries(d) => drill::deliveries(&mut c, d, &ctx).await?,
        Cmd::Token(t) => admin::token(&mut c, t, out).await?,
        Cmd::Audit(a) => admin::audit(&mut c, a, out).await?,
        Cmd::Reload => admin::reload(&mut c, out).await?,
        // Answered before connecting (main.rs).
        Cmd::Completions { .. } | Cmd::Man => {}
    }
    Ok(())
}

async fn list(c: &mut Client, l: cli::List, out: Out) -> Result<(), Failure> {
    let drill = match (l.drills, l.no_drills) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let (incidents, _) = paged(l.limit, async |page_size, page_token| {
        let req = pb::ListIncidentsRequest {
            team: l.team.clone().unwrap_or_default(),
            status: l.status.iter().map(|s| s.proto() as i32).collect(),
            severity: l.sev.iter().map(|s| *s as i32).collect(),
            active_only: !l.all && l.status.is_empty(),
            drill,
            page_size,
            page_token,
        };
        let page = call!(c.list_incidents(req));
        Ok((page.incidents, page.next_page_token))
    })
    .await?;
    out.print(Value::Array(incidents.iter().map(json::incident).collect()), || {
        render::incident_list(&incidents, out.style)
    });
    Ok(())
}

/// Follows `next_page_token` until `limit` items, in pages of at most 500:
/// `page(page_size, page_token)` fetches one, returning its items and the
/// next token. Also says whether the server had more than `limit`.
pub(crate) async fn paged<T>(
    limit: usize,
    mut page: impl AsyncFnMut(u32, String) -> Result<(Vec<T>, String), Failure>,
) -> Result<(Vec<T>, bool), Failure> {
    let mut items = Vec::new();
    let mut token = String::new();
    while items.len() < limit {
        let want = (limit - items.len()).min(500) as u32;
        let (got, next) = page(want, std::mem::take(&mut token)).await?;
        items.extend(got);
        token = next;
        if token.is_empty() {
            break;
        }
    }
    let more = items.len() > limit || !token.is_empty();
    items.truncate(limit);
    Ok((items, more))
}

async fn entry(c: &mut Client, e: cli::Entry, kind: pb::EntryKind, ctx: &Ctx) -> Result<(), Failure> {
    let id = c.resolve_id(&e.incident).await?;
    let req = pb::AddTimelineEntryRequest {
        id,
        kind: kind as i32,
        text: e.text.join(" "),
        author: ctx.by(),
        request_id: ctx.rid(),
    };
    let t = call!(c.add_timeline_entry(req));
    ctx.out.print(json::entry(&t), || {
        render::timeline(std::slice::from_ref(&t), ctx.out.style)
    });
    Ok(())
}

async fn update(c: &mut Client, u: UpdateCmd, ctx: &Ctx) -> Result<(), Failure> {
    let mut req = pb::PostUpdateRequest {
        by: ctx.by(),
        request_id: ctx.rid(),
        ..Default::default()
    };
    let (incident, mut next) = match u {
        UpdateCmd::Internal(a) => {
            let (mut theory, mut steps, mut impact) = (a.theory, a.next_steps, a.impact);
            let mut next = a.next.next_update_in;
            Form {
                one_of: vec![
                    field("Current theory", "--theory", &mut theory),
                    field("Next steps", "--next-steps", &mut steps),
                ],
                optional: vec![field("Impact", "--impact", &mut impact)],
                next_update_in: Some(&mut next),
            }
            .fill(prompt::interactive(a.next.no_input))?;
            req.kind = pb::UpdateKind::Internal as i32;
            req.current_theory = theory.unwrap_or_default();
            req.next_steps = steps.unwrap_or_default();
            req.impact = impact.unwrap_or_default();
            req.status_text = a.status_text.unwrap_or_default();
            (a.incident, next)
        }
        UpdateCmd::Customer(a) => {
            let mut symptom = a.symptom;
            let mut next = a.next.next_update_in;
            Form {
                one_of: vec![field("Customer symptom", "--symptom", &mut symptom)],
                optional: vec![],
                next_update_in: Some(&mut next),
            }
            .fill(prompt::interactive(a.next.no_input))?;
            req.kind = pb::UpdateKind::Customer as i32;
            req.customer_symptom = symptom.unwrap_or_default();
            (a.incident, next)
        }
        UpdateCmd::Executive(a) => {
            let (mut business, mut eta) = (a.business_impact, a.estimated_resolution);
            let mut next = a.next.next_update_in;
            Form {
                one_of: vec![field("Business impact", "--business-impact", &mut business)],
                optional: vec![field("Estimated resolution", "--estimated-resolution", &mut eta)],
                next_update_in: Some(&mut next),
            }
            .fill(prompt::interactive(a.next.no_input))?;
            req.kind = pb::UpdateKind::Executive as i32;
            req.business_impact = business.unwrap_or_default();
            req.estimated_resolution = eta.unwrap_or_default();
            (a.incident, next)
        }
    };
    req.next_update_in = next.take().map(|d| prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: 0,
    });
    req.id = c.resolve_id(&incident).await?;
    let u = call!(c.post_update(req));
    ctx.out
        .print(json::update(&u), || format!("{}\n", u.rendered.trim_end()));
    Ok(())
}

pub(crate) fn field<'a>(label: &'static str, flag: &'static str, value: &'a mut Option<String>) -> Field<'a> {
    Field { label, flag, value }
}

async fn timeline(c: &mut Client, incident: &str, out: Out) -> Result<(), Failure> {
    let id = c.resolve_id(incident).await?;
    let (entries, _) = paged(usize::MAX, async |page_size, page_token| {
        let req = pb::GetTimelineRequest {
            id: id.clone(),
            page_size,
            page_token,
        };
        let page = call!(c.get_timeline(req));
        Ok((page.entries, page.next_page_token))
    })
    .await?;
    out.print(Value::Array(entries.iter().map(json::entry).collect()), || {
        render::timeline(&entries, out.style)
    });
    Ok(())
}

async fn watch(c: &mut Client, w: cli::Watch, out: Out) -> Result<(), Failure> {
    let mut stream = match &w.incident {
        Some(name) => {
            let id = c.resolve_id(name).await?;
            let from_version = match w.from_version {
                Some(v) => v,
                // Live only: start after the incident's current version.
                None => {
                    c.api
                        .get_incident(unary(pb::GetIncidentRequest { id: id.clone() }))
                        .await
                        .map_err(|s| c.fail(s))?
                        .into_inner()
                        .version
                }
            };
            c.api
                .watch_incident(pb::WatchIncidentRequest { id, from_version })
                .await
                .map_err(|s| c.fail(s))?
                .into_inner()
        }
        None => c
            .api
            .watch_incidents(pb::WatchIncidentsRequest {
                team: w.team.clone().unwrap_or_default(),
                ..Default::default()
            })
            .await
            .map_err(|s| c.fail(s))?
            .into_inner(),
    };
    // On stderr in every mode: scripts may wait for it to know the stream is open.
    eprintln!(
        "watching{} (Ctrl-C to stop)",
        w.incident.as_ref().map(|i| format!(" {i}")).unwrap_or_default()
    );
    let mut seen = 0u64;
    while w.count.is_none_or(|n| seen < n) {
        let next = tokio::select! {
            m = stream.message() => m,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        match next {
            Ok(Some(e)) => {
                out.print(json::event(&e), || render::event(&e, out.style));
                seen += 1;
            }
            Ok(None) => return Ok(()),
            Err(s) => return Err(c.fail(s)),
        }
    }
    Ok(())
}
