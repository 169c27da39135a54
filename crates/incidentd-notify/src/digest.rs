//! Team notices that belong to no incident: game-day reminders (to the
//! team's drill routes) and the weekly digest of overdue action items.
//!
//! The weekly digest: once a week (Monday 09:00
//! UTC), each team with overdue open action items gets one message in its
//! chat channels and to its stakeholder lists, mentioning the owners.
//!
//! A digest goes through the hub like any notification, under the pseudo
//! incident `digest/<team>` with the week's number as its version, so the
//! outbox's per-incident cursor remembers which week went out: after a
//! restart the current week's digest is sent if it is due and was not, and
//! never twice (its idempotency key is `digest/<team>:<week>:<destination>`).

use crate::hub::{HubMsg, Routed};
use crate::message::Message;
use crate::route::{Notification, Targets, handle};
use incidentd_actors::drills::{DrillState, ScheduledDrill};
use incidentd_actors::{Filter, Handle};
use incidentd_config::{DestinationKind, OrgConfig};
use incidentd_domain::{Incident, Severity, Status, Timestamp};
use ractor::ActorRef;
use std::collections::HashMap;
use std::sync::Arc;

const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;
/// 1970-01-01 was a Thursday: Monday 00:00 UTC weeks start 4 days later.
const MONDAY_OFFSET_MS: i64 = 4 * 24 * 3600 * 1000;
/// Digests go out at 09:00 UTC on Mondays.
const SEND_AT_MS: i64 = 9 * 3600 * 1000;

/// The week (counted from the first Monday after the epoch) whose digest
/// is due at or before `now`, and when the next one is due.
pub fn week_of(now: Timestamp) -> (u64, Timestamp) {
    let since = now.0 - MONDAY_OFFSET_MS - SEND_AT_MS;
    let week = since.div_euclid(WEEK_MS);
    let next = Timestamp(MONDAY_OFFSET_MS + SEND_AT_MS + (week + 1) * WEEK_MS);
    (week.max(0) as u64, next)
}

/// The digest notifications of `team` for `week`: none without overdue items.
pub fn digest(
    org: &OrgConfig,
    team: &str,
    incidents: &[Arc<Incident>],
    week: u64,
    now: Timestamp,
) -> Vec<Notification> {
    let mut lines = Vec::new();
    let mut owners: Vec<String> = Vec::new();
    for s in incidents.iter().filter(|s| s.team == team) {
        for a in s.review.action_items.iter().filter(|a| a.is_overdue(now)) {
            lines.push(format!(
                "{} #{}: {} (owner {}, due {})",
                s.reference(),
                a.number,
                a.description,
                a.owner,
                a.due_at
            ));
            if !owners.contains(&a.owner) {
                owners.push(a.owner.clone());
            }
        }
    }
    if lines.is_empty() {
        return Vec::new();
    }
    let mut t = Targets::default();
    t.team_chat(org, team);
    t.stakeholders(org, team);
    let id = format!("digest/{team}");
    let message = Message {
        incident_id: id.clone(),
        reference: format!("{team} weekly digest"),
        title: format!("{} overdue action items", lines.len()),
        team: team.to_string(),
        services: Vec::new(),
        severity: Severity::Sev4,
        status: Status::Investigating,
        drill: false,
        version: week,
        event: "action_items_digest".into(),
        headline: format!(
            "Team {team}: {} overdue action items from incident reviews",
            lines.len()
        ),
        body: lines.join("\n"),
        fields: vec![("owners".into(), owners.join(", "))],
        mentions: owners.iter().filter_map(|o| handle(org, o)).collect(),
        at: now.0,
        event_json: String::new(),
        public_text: None,
    };
    t.list
        .into_iter()
        .map(|(destination, kind, to)| Notification {
            key: format!("{id}:{week}:{destination}"),
            incident: id.clone(),
            version: week,
            destination,
            kind,
            to,
            message: message.clone(),
        })
        .collect()
}

/// The reminder of a scheduled game day, to the team's drill routes only
/// (like everything about drills), once by its key.
pub fn drill_reminder(org: &OrgConfig, d: &ScheduledDrill) -> Vec<Notification> {
    let mut t = Targets::default();
    for id in org.team(&d.team).map(|t| t.drill_routes.as_slice()).unwrap_or_default() {
        if org
            .destination(id)
            .is_some_and(|x| x.kind != DestinationKind::StatusPage)
        {
            t.destination(org, id);
        }
    }
    let id = format!("drill/{}", d.id);
    let message = Message {
        incident_id: id.clone(),
        reference: "[DRILL] game day".into(),
        title: format!("Game day {}", d.scenario),
        team: d.team.clone(),
        services: Vec::new(),
        severity: Severity::Sev4,
        status: Status::Investigating,
        drill: true,
        version: 1,
        event: "drill_reminder".into(),
        headline: format!(
            "[DRILL] Game day for team {}: scenario {} starts at {}",
            d.team, d.scenario, d.at
        ),
        body: format!(
            "A drill incident will be declared at {} and play the scenario's script. The team's suggested commander leads.",
            d.at
        ),
        fields: vec![
            ("scenario".into(), d.scenario.clone()),
            ("starts".into(), d.at.to_string()),
        ],
        mentions: Vec::new(),
        at: d.reminded_at.map_or(d.at.0, |t| t.0),
        event_json: String::new(),
        public_text: None,
    };
    t.list
        .into_iter()
        .map(|(destination, kind, to)| Notification {
            key: format!("{id}:reminder:{destination}"),
            incident: id.clone(),
            version: 1,
            destination,
            kind,
            to,
            message: message.clone(),
        })
        .collect()
}

async fn send(hub: &ActorRef<HubMsg>, incident: String, version: u64, notifications: Vec<Notification>) -> bool {
    if notifications.is_empty() {
        return true;
    }
    let batch = vec![Routed {
        incident,
        version,
        notifications,
        seen: None,
    }];
    ractor::call!(hub, |reply| HubMsg::Ingest { batch, reply }).is_ok()
}

/// Reminders of every drill the calendar has reminded and not yet held
/// (the hub drops keys it already has: each goes out once).
async fn catch_up_reminders(handle: &Handle, org: &OrgConfig, hub: &ActorRef<HubMsg>) -> bool {
    let drills = handle.list_drills(None).await.unwrap_or_default();
    for d in drills
        .iter()
        .filter(|d| d.reminded_at.is_some() && d.state == DrillState::Scheduled)
    {
        if !send(hub, format!("drill/{}", d.id), 1, drill_reminder(org, d)).await {
            return false;
        }
    }
    true
}

/// Sends each team's digest for the current week (unless `sent` says it
/// went out) every Monday 09:00 UTC, and game-day reminders as the drill
/// calendar issues them (and, at start, those it issued meanwhile).
pub(crate) async fn run(handle: Handle, org: Arc<OrgConfig>, hub: ActorRef<HubMsg>, mut sent: HashMap<String, u64>) {
    let mut reminders = handle.watch_drill_reminders();
    if !catch_up_reminders(&handle, &org, &hub).await {
        return;
    }
    loop {
        let now = handle.clock().now();
        let (week, next) = week_of(now);
        let incidents = match handle.list(Filter::default(), None, 1 << 24).await {
            Ok(page) => page.incidents,
            Err(_) => return, // shutting down
        };
        for team in &org.teams {
            let key = format!("digest/{}", team.id);
            if sent.get(&key).is_some_and(|w| *w >= week) {
                continue;
            }
            if !send(&hub, key.clone(), week, digest(&org, &team.id, &incidents, week, now)).await {
                return;
            }
            sent.insert(key, week);
        }
        let until = handle.clock().instant_at(next);
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => break,
                r = reminders.recv() => match r {
                    Ok(d) => {
                        if !send(&hub, format!("drill/{}", d.id), 1, drill_reminder(&org, &d)).await {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        if !catch_up_reminders(&handle, &org, &hub).await {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use incidentd_domain::review::{ActionItem, ActionItemState};

    // 2026-11-30 is a Monday.
    const MONDAY_9: i64 = 1_796_029_200_000;

    #[test]
    fn a_game_day_reminder_goes_to_drill_routes_only() {
        let org = OrgConfig::demo();
        let d = ScheduledDrill {
            id: "01JDRILL".into(),
            scenario: "database-data-loss".into(),
            team: "payments".into(),
            at: Timestamp(MONDAY_9),
            recurring: true,
            scheduled_by: None,
            reminded_at: Some(Timestamp(MONDAY_9 - 86_400_000)),
            state: DrillState::Scheduled,
        };
        let n = drill_reminder(&org, &d);
        let dests: Vec<&str> = n.iter().map(|x| x.destination.as_str()).collect();
        assert_eq!(dests, ["drills-chat"]);
        assert_eq!(n[0].key, "drill/01JDRILL:reminder:drills-chat");
        assert!(n[0].message.drill);
        assert!(n[0].message.headline.starts_with("[DRILL] Game day for team payments"));
    }

    #[test]
    fn weeks_turn_on_monday_at_nine_utc() {
        assert_eq!(Timestamp(MONDAY_9).to_string(), "2026-11-30T09:00:00Z");
        let (w, next) = week_of(Timestamp(MONDAY_9));
        let (before, due) = week_of(Timestamp(MONDAY_9 - 1));
        assert_eq!(w, before + 1);
        assert_eq!(due, Timestamp(MONDAY_9));
        assert_eq!(next, Timestamp(MONDAY_9 + WEEK_MS));
    }

    fn incident(team: &str, number: u64, items: Vec<(u32, &str, i64, bool)>) -> Arc<Incident> {
        let mut s = Incident {
            team: team.into(),
            number,
            title: "t".into(),
            version: 9,
            ..Default::default()
        };
        for (n, owner, due, done) in items {
            s.review.action_items.push(ActionItem {
                number: n,
                description: format!("item {n}"),
                owner: owner.into(),
                due_at: Timestamp(due),
                created_at: Timestamp(0),
                state: if done {
                    ActionItemState::Done { at: Timestamp(1) }
                } else {
                    ActionItemState::Open
                },
                reminded_at: None,
            });
        }
        Arc::new(s)
    }

    #[test]
    fn a_team_digest_lists_its_open_overdue_items() {
        let org = OrgConfig::demo();
        let now = Timestamp(MONDAY_9);
        let incidents = vec![
            incident(
                "payments",
                1,
                vec![(1, "alice", MONDAY_9 - 1, false), (2, "bob", MONDAY_9 + 1, false)],
            ),
            incident(
                "payments",
                2,
                vec![(1, "bob", MONDAY_9 - 5, false), (2, "bob", MONDAY_9 - 5, true)],
            ),
            incident("identity", 3, vec![(1, "erin", MONDAY_9 + 1, false)]),
        ];
        let (week, _) = week_of(now);
        let n = digest(&org, "payments", &incidents, week, now);
        let dests: Vec<&str> = n.iter().map(|x| x.destination.as_str()).collect();
        assert_eq!(dests, ["payments-chat", "payments-webhook", "payments-stakeholders"]);
        assert_eq!(n[0].key, format!("digest/payments:{week}:payments-chat"));
        let body = &n[0].message.body;
        assert_eq!(body.lines().count(), 2, "only open, overdue items: {body}");
        assert!(body.contains("INC-1 #1: item 1 (owner alice"));
        assert!(body.contains("INC-2 #1: item 1 (owner bob"));
        assert_eq!(n[0].message.mentions, ["@alice", "@bob"]);
        // Nothing overdue: no digest at all.
        assert!(digest(&org, "identity", &incidents, week, now).is_empty());
    }
}
