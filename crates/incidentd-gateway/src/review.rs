//! `ReviewService`: post-incident reviews, action items and reports. The
//! review lives on its incident (commands go to the incident's actor);
//! listings and reports read the supervisor's summaries.

use crate::auth::Caller;
use crate::convert::{self, opt, request_id, ts};
use crate::error::{invalid, status};
use crate::grpc::{all_incidents, observe, page_size};
use crate::metrics::RpcMetrics;
use incidentd_actors::{Filter, Handle};
use incidentd_domain::review::{self, ActionItem, ActionItemState, ReviewSections};
use incidentd_domain::{self as d, Action, Command, report, timers};
use incidentd_proto::v1 as pb;
use incidentd_proto::v1::review_service_server::ReviewService;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct ReviewApi {
    handle: Handle,
    metrics: Arc<RpcMetrics>,
}

impl ReviewApi {
    pub fn new(handle: Handle, metrics: Arc<RpcMetrics>) -> Self {
        ReviewApi { handle, metrics }
    }

    async fn run(
        &self,
        caller: &Result<Caller, Status>,
        id: d::IncidentId,
        by: String,
        action: Action,
        rid: String,
    ) -> Result<d::Incident, Status> {
        crate::auth::note_incident(&id);
        let caller = caller.as_ref().map_err(Clone::clone)?;
        let cmd = Command {
            access: caller.access(),
            by: caller.acting(by)?,
            action,
        };
        self.handle
            .execute_incident(id, cmd, request_id(rid)?)
            .await
            .map_err(status)
    }

    async fn all(&self, filter: Filter) -> Result<Vec<Arc<d::Incident>>, Status> {
        all_incidents(&self.handle, filter).await
    }

    fn review_pb(&self, s: &d::Incident, markdown: bool) -> pb::Review {
        let org = self.handle.org();
        let policy = org.policy(&s.team);
        let findings = review::blame_findings(&s.review.sections, &org.people(), &org.blame_rules());
        let due = timers::review_due(s, &policy);
        let sec = &s.review.sections;
        let text = |t: &Option<String>| t.clone().unwrap_or_default();
        pb::Review {
            incident_id: s.id.to_string(),
            reference: s.reference(),
            title: s.title.clone(),
            drill: s.drill,
            due_at: due.map(ts),
            timeline: review::generated_timeline(s)
                .into_iter()
                .map(|m| pb::Milestone {
                    at: Some(ts(m.at)),
                    text: m.text,
                    since_previous: duration(m.since_previous),
                    since_declared: duration(m.since_declared),
                })
                .collect(),
            what_happened: text(&sec.what_happened),
            root_causes: text(&sec.root_causes),
            contributing_factors: text(&sec.contributing_factors),
            went_well: text(&sec.went_well),
            to_improve: text(&sec.to_improve),
            action_items: s
                .review
                .action_items
                .iter()
                .map(|a| action_item_pb(s, a, self.handle.clock().now()))
                .collect(),
            blame_findings: findings
                .iter()
                .map(|f| pb::BlameFinding {
                    section: f.section.clone(),
                    sentence: f.sentence.clone(),
                    rule: f.rule.clone(),
                    suggestion: f.suggestion.clone(),
                })
                .collect(),
            updated_at: s.review.updated_at.map(ts),
            updated_by: s.review.updated_by.clone().unwrap_or_default(),
            markdown: if markdown {
                review::markdown(s, due, &findings)
            } else {
                String::new()
            },
            version: s.version,
        }
    }
}

fn duration(d: std::time::Duration) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    })
}

fn action_item_pb(s: &d::Incident, a: &ActionItem, now: d::Timestamp) -> pb::ActionItem {
    let (state, reason) = match &a.state {
        ActionItemState::Open => ("open", String::new()),
        ActionItemState::Done { .. } => ("done", String::new()),
        ActionItemState::Dropped { reason, .. } => ("dropped", reason.clone()),
    };
    pb::ActionItem {
        id: format!("{}/{}", s.id, a.number),
        incident_id: s.id.to_string(),
        incident_reference: s.reference(),
        team: s.team.clone(),
        number: a.number,
        description: a.description.clone(),
        owner: a.owner.clone(),
        due_at: Some(ts(a.due_at)),
        state: state.into(),
        created_at: Some(ts(a.created_at)),
        closed_at: a.closed_at().map(ts),
        drop_reason: reason,
        overdue: a.is_overdue(now),
    }
}

/// `<incident id>/<number>`.
fn action_item_id(s: &str) -> Result<(d::IncidentId, u32), Status> {
    const FIELD: &str = "action_item_id";
    if s.is_empty() {
        return Err(invalid(FIELD, "is required"));
    }
    let (id, n) = s
        .split_once('/')
        .ok_or_else(|| invalid(FIELD, "expected <incident id>/<number>"))?;
    let id = convert::incident_id(FIELD, id)?;
    let n = n
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| invalid(FIELD, "the number after / must be a positive integer"))?;
    Ok((id, n))
}

fn timestamp(field: &str, t: Option<prost_types::Timestamp>) -> Result<Option<d::Timestamp>, Status> {
    match t {
        None => Ok(None),
        Some(t) if t.seconds < 0 || !(0..1_000_000_000).contains(&t.nanos) => {
            Err(invalid(field, "is not a valid timestamp"))
        }
        Some(t) => Ok(Some(d::Timestamp(t.seconds * 1000 + i64::from(t.nanos) / 1_000_000))),
    }
}

fn stats(q: &report::Quantiles) -> Option<pb::DurationStats> {
    Some(pb::DurationStats {
        count: q.count as u64,
        median: q.median.and_then(duration),
        p90: q.p90.and_then(duration),
    })
}

fn ratio(r: report::Ratio) -> Option<pb::RatioStat> {
    Some(pb::RatioStat {
        hits: r.hits,
        total: r.total,
        share: r.share().unwrap_or(0.0),
    })
}

fn found(s: &d::Incident, number: u32, now: d::Timestamp) -> Result<pb::ActionItem, Status> {
    s.review
        .action_items
        .iter()
        .find(|a| a.number == number)
        .map(|a| action_item_pb(s, a, now))
        .ok_or_else(|| Status::internal("the action item is missing after the change"))
}

#[tonic::async_trait]
impl ReviewService for ReviewApi {
    async fn get_review(&self, request: Request<pb::GetReviewRequest>) -> Result<Response<pb::Review>, Status> {
        let caller = Caller::of(&request);
        let r = request.into_inner();
        self.observe("GetReview", async {
            let id = convert::incident_id("incident_id", &r.incident_id)?;
            crate::auth::note_incident(&id);
            let s = self.handle.get(id).await.map_err(status)?;
            caller?.may_read(&s.team)?;
            if !s.is_resolved() {
                return Err(Status::failed_precondition(
                    "incident_id: the review opens when the incident is resolved",
                ));
            }
            Ok(self.review_pb(&s, r.format == pb::ReviewFormat::Markdown as i32))
        })
        .await
    }

    async fn update_review(&self, request: Request<pb::UpdateReviewRequest>) -> Result<Response<pb::Review>, Status> {
        let caller = Caller::of(&request);
        let r = request.into_inner();
        self.observe("UpdateReview", async {
            let id = convert::incident_id("incident_id", &r.incident_id)?;
            let sections = ReviewSections {
                what_happened: r.what_happened,
                root_causes: r.root_causes,
                contributing_factors: r.contributing_factors,
                went_well: r.went_well,
                to_improve: r.to_improve,
            };
            self.run(&caller, id, r.by, Action::UpdateReview { sections }, r.request_id)
                .await?;
            let s = self.handle.get(id).await.map_err(status)?;
            Ok(self.review_pb(&s, false))
        })
        .await
    }

    async fn add_action_item(
        &self,
        request: Request<pb::AddActionItemRequest>,
    ) -> Result<Response<pb::ActionItem>, Status> {
        let caller = Caller::of(&request);
        let r = request.into_inner();
        self.observe("AddActionItem", async {
            let id = convert::incident_id("incident_id", &r.incident_id)?;
            let due_at = timestamp("due_at", r.due_at)?.ok_or_else(|| invalid("due_at", "is required"))?;
            let action = Action::AddActionItem {
                description: r.description,
                owner: r.owner,
                due_at,
            };
            let s = self.run(&caller, id, r.by, action, r.request_id).await?;
            let number = s.review.action_items.len() as u32;
            found(&s, number, self.handle.clock().now())
        })
        .await
    }

    async fn complete_action_item(
        &self,
        request: Request<pb::CompleteActionItemRequest>,
    ) -> Result<Response<pb::ActionItem>, Status> {
        let caller = Caller::of(&request);
        let r = request.into_inner();
        self.observe("CompleteActionItem", async {
            let (id, number) = action_item_id(&r.action_item_id)?;
            let s = self
                .run(&caller, id, r.by, Action::CompleteActionItem { number }, r.request_id)
                .await?;
            found(&s, number, self.handle.clock().now())
        })
        .await
    }

    async fn drop_action_item(
        &self,
        request: Request<pb::DropActionItemRequest>,
    ) -> Result<Response<pb::ActionItem>, Status> {
        let caller = Caller::of(&request);
        let r = request.into_inner();
        self.observe("DropActionItem", async {
            let (id, number) = action_item_id(&r.action_item_id)?;
            let action = Action::DropActionItem {
                number,
                reason: r.reason,
            };
            let s = self.run(&caller, id, r.by, action, r.request_id).await?;
            found(&s, number, self.handle.clock().now())
        })
        .await
    }

    async fn list_action_items(
        &self,
        request: Request<pb::ListActionItemsRequest>,
    ) -> Result<Response<pb::ListActionItemsResponse>, Status> {
        let caller = Caller::of(&request);
        let r = request.into_inner();
        self.observe("ListActionItems", async {
            let limit = page_size(r.page_size, 100)?;
            let org = self.handle.org();
            if !r.team.is_empty() && !org.has_team(&r.team) {
                return Err(Status::not_found(format!("team: unknown team {:?}", r.team)));
            }
            if !r.owner.is_empty() && !org.has_person(&r.owner) {
                return Err(Status::not_found(format!("owner: unknown person {:?}", r.owner)));
            }
            let skip = if r.page_token.is_empty() {
                0
            } else {
                r.page_token
                    .parse::<usize>()
                    .map_err(|_| invalid("page_token", "not a token from a previous page"))?
            };
            let filter = Filter {
                team: opt(r.team),
                readable: caller?.readable_teams().map(Into::into),
                ..Default::default()
            };
            let now = self.handle.clock().now();
            let mut items: Vec<pb::ActionItem> = Vec::new();
            for s in self.all(filter).await? {
                for a in &s.review.action_items {
                    let keep = (r.owner.is_empty() || a.owner == r.owner)
                        && (!r.open_only || a.is_open())
                        && (!r.overdue_only || a.is_overdue(now));
                    if keep {
                        items.push(action_item_pb(&s, a, now));
                    }
                }
            }
            // Soonest due first; ties by id, so pages are stable.
            items.sort_by(|a, b| {
                let key = |x: &pb::ActionItem| (x.due_at.map(|t| (t.seconds, t.nanos)), x.id.clone());
                key(a).cmp(&key(b))
            });
            let total = items.len();
            let page: Vec<pb::ActionItem> = items.into_iter().skip(skip).take(limit).collect();
            let next = skip + page.len();
            Ok(pb::ListActionItemsResponse {
                items: page,
                next_page_token: if next < total { next.to_string() } else { String::new() },
            })
        })
        .await
    }

    async fn get_report(&self, request: Request<pb::GetReportRequest>) -> Result<Response<pb::Report>, Status> {
        let caller = Caller::of(&request);
        let r = request.into_inner();
        self.observe("GetReport", async {
            let org = self.handle.org();
            if !r.team.is_empty() && !org.has_team(&r.team) {
                return Err(Status::not_found(format!("team: unknown team {:?}", r.team)));
            }
            let now = self.handle.clock().now();
            let since = timestamp("since", r.since)?.unwrap_or(d::Timestamp(0));
            let until = timestamp("until", r.until)?.unwrap_or(now);
            if until <= since {
                return Err(invalid("until", "must be after since"));
            }
            let filter = Filter {
                team: opt(r.team.clone()),
                readable: caller?.readable_teams().map(Into::into),
                ..Default::default()
            };
            let incidents = self.all(filter).await?;
            let policy_of = |s: &d::Incident| org.policy(&s.team);
            let rep = report::report(incidents.iter().map(|s| &**s), &policy_of, since, until, now);
            Ok(pb::Report {
                team: r.team,
                since: Some(ts(since)),
                until: Some(ts(until)),
                incidents: rep.incidents,
                by_severity: d::Severity::ALL
                    .iter()
                    .map(|sev| {
                        let row = report::row(&rep, *sev);
                        pb::SeverityStats {
                            severity: convert::severity(*sev) as i32,
                            count: row.count,
                            time_to_acknowledge: stats(&row.time_to_acknowledge),
                            time_to_mitigate: stats(&row.time_to_mitigate),
                            time_to_resolve: stats(&row.time_to_resolve),
                        }
                    })
                    .collect(),
                update_cadence: ratio(rep.update_cadence),
                checklist: ratio(rep.checklist),
                escalations: rep
                    .escalations_by_rule
                    .iter()
                    .map(|(rule, count)| pb::RuleCount {
                        rule: rule.clone(),
                        count: *count,
                    })
                    .collect(),
                action_items: Some(pb::ActionItemStats {
                    created: rep.action_items.created,
                    done: rep.action_items.done,
                    dropped: rep.action_items.dropped,
                    open: rep.action_items.open,
                    overdue: rep.action_items.overdue,
                    completion_rate: rep.action_items.completion_rate.unwrap_or(0.0),
                    time_to_close: stats(&rep.action_items.time_to_close),
                }),
                drills: Some(pb::DrillStats {
                    count: rep.drills.count,
                    resolved: rep.drills.resolved,
                    time_to_acknowledge: stats(&rep.drills.time_to_acknowledge),
                    checklist_on_time: ratio(rep.drills.checklist_on_time),
                }),
            })
        })
        .await
    }
}

impl ReviewApi {
    async fn observe<T>(
        &self,
        method: &'static str,
        fut: impl Future<Output = Result<T, Status>>,
    ) -> Result<Response<T>, Status> {
        observe(&self.metrics, method, fut).await
    }
}
