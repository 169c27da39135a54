//! Reports over a period: response times per severity, process adherence
//! (update cadence, first-15-minutes checklist), escalations, action items.
//! Drills are left out of every incident figure and reported on their own.

use crate::model::{Incident, Severity};
use crate::policy::Policy;
use crate::time::Timestamp;
use crate::timers;
use std::collections::BTreeMap;
use std::time::Duration;

/// Median and 90th percentile (nearest rank) of a set of durations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Quantiles {
    pub count: usize,
    pub median: Option<Duration>,
    pub p90: Option<Duration>,
}

impl Quantiles {
    pub fn of(mut v: Vec<Duration>) -> Quantiles {
        v.sort_unstable();
        let rank = |p: f64| -> Option<Duration> {
            if v.is_empty() {
                return None;
            }
            let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            Some(v[i])
        };
        Quantiles {
            count: v.len(),
            median: rank(0.5),
            p90: rank(0.9),
        }
    }
}

/// `hits` of `total` (e.g. updates on time of updates posted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ratio {
    pub hits: u64,
    pub total: u64,
}

impl Ratio {
    pub fn share(&self) -> Option<f64> {
        (self.total > 0).then(|| self.hits as f64 / self.total as f64)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeverityReport {
    pub count: u64,
    /// Declaration to acknowledgement.
    pub time_to_acknowledge: Quantiles,
    /// Declaration to mitigating (or resolved, whichever came first).
    pub time_to_mitigate: Quantiles,
    /// Declaration to resolution.
    pub time_to_resolve: Quantiles,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ActionItemReport {
    pub created: u64,
    pub done: u64,
    pub dropped: u64,
    pub open: u64,
    pub overdue: u64,
    /// done / (created − dropped).
    pub completion_rate: Option<f64>,
    pub time_to_close: Quantiles,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DrillReport {
    pub count: u64,
    pub resolved: u64,
    pub time_to_acknowledge: Quantiles,
    pub checklist_on_time: Ratio,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    pub since: Timestamp,
    pub until: Timestamp,
    /// Incidents declared in the period (drills not counted).
    pub incidents: u64,
    /// Indexed by `Severity::index()`.
    pub by_severity: [SeverityReport; 4],
    /// Internal updates posted by their deadline.
    pub update_cadence: Ratio,
    /// First-15-minutes items done by their deadline (of those due by now).
    pub checklist: Ratio,
    pub escalations_by_rule: BTreeMap<String, u64>,
    /// Action items created in the period (drills' included: a debrief's
    /// action items are real work).
    pub action_items: ActionItemReport,
    pub drills: DrillReport,
}

/// Checklist items done in time, of the ones due by `now`.
fn checklist_ratio(s: &Incident, policy: &Policy, now: Timestamp) -> Ratio {
    let mut r = Ratio::default();
    for item in &s.checklist {
        let due = timers::checklist_due(s, policy, item.item);
        if item.done_at.is_none() && due > now {
            continue; // not due yet: neither hit nor miss
        }
        r.total += 1;
        if item.done_at.is_some_and(|d| d <= due) {
            r.hits += 1;
        }
    }
    r
}

fn add(a: &mut Ratio, b: Ratio) {
    a.hits += b.hits;
    a.total += b.total;
}

/// The report for incidents declared in `[since, until)`.
pub fn report<'a>(
    incidents: impl IntoIterator<Item = &'a Incident>,
    policy_of: &dyn Fn(&Incident) -> std::sync::Arc<Policy>,
    since: Timestamp,
    until: Timestamp,
    now: Timestamp,
) -> Report {
    let mut r = Report {
        since,
        until,
        ..Default::default()
    };
    let mut times: [[Vec<Duration>; 3]; 4] = Default::default();
    let mut drill_ack = Vec::new();
    let mut close_times = Vec::new();
    for s in incidents {
        let policy = policy_of(s);
        for a in &s.review.action_items {
            if a.created_at < since || a.created_at >= until {
                continue;
            }
            r.action_items.created += 1;
            match &a.state {
                crate::review::ActionItemState::Open => {
                    r.action_items.open += 1;
                    if a.is_overdue(now) {
                        r.action_items.overdue += 1;
                    }
                }
                crate::review::ActionItemState::Done { at } => {
                    r.action_items.done += 1;
                    close_times.push(at.since(a.created_at));
                }
                crate::review::ActionItemState::Dropped { .. } => r.action_items.dropped += 1,
            }
        }
        if s.declared_at < since || s.declared_at >= until || !s.is_declared() {
            continue;
        }
        if s.drill {
            r.drills.count += 1;
            r.drills.resolved += u64::from(s.resolved_at.is_some());
            if let Some(a) = s.acknowledged_at {
                drill_ack.push(a.since(s.declared_at));
            }
            add(&mut r.drills.checklist_on_time, checklist_ratio(s, &policy, now));
            continue;
        }
        r.incidents += 1;
        let sev = s.severity.index();
        r.by_severity[sev].count += 1;
        let mitigated = s.mitigated_at.or(s.resolved_at);
        for (slot, at) in [s.acknowledged_at, mitigated, s.resolved_at].into_iter().enumerate() {
            if let Some(at) = at {
                times[sev][slot].push(at.since(s.declared_at));
            }
        }
        add(
            &mut r.update_cadence,
            Ratio {
                hits: u64::from(s.internal_updates_on_time),
                total: u64::from(s.internal_updates),
            },
        );
        add(&mut r.checklist, checklist_ratio(s, &policy, now));
        for e in &s.escalations {
            *r.escalations_by_rule.entry(e.rule.clone()).or_default() += 1;
        }
    }
    for (sev, [ack, mit, res]) in times.into_iter().enumerate() {
        let row = &mut r.by_severity[sev];
        row.time_to_acknowledge = Quantiles::of(ack);
        row.time_to_mitigate = Quantiles::of(mit);
        row.time_to_resolve = Quantiles::of(res);
    }
    r.drills.time_to_acknowledge = Quantiles::of(drill_ack);
    let a = &mut r.action_items;
    let denominator = a.created - a.dropped;
    a.completion_rate = (denominator > 0).then(|| a.done as f64 / denominator as f64);
    a.time_to_close = Quantiles::of(close_times);
    r
}

/// The row of a severity.
pub fn row(r: &Report, s: Severity) -> &SeverityReport {
    &r.by_severity[s.index()]
}
