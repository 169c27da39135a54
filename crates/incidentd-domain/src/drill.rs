//! Game days: scenarios whose scripted injections (alerts, findings,
//! customer complaints, severity surprises, data loss, regulatory flags)
//! play into a drill incident through its timers, and role rotation.
//!
//! The script is stored in the incident's log when the drill starts
//! (`DrillStarted`), so a scenario file changed later never rewrites a drill,
//! and each injection is an event: after a restart none plays twice.

use crate::event::EventKind;
use crate::model::{DataLoss, EntryKind, Incident, Role, Severity};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One scripted injection, `after_secs` from the drill's start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub after_secs: u64,
    #[serde(flatten)]
    pub kind: StepKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepKind {
    /// A monitoring alert fires.
    Alert {
        text: String,
    },
    /// A finding reported (as if by an SME).
    Finding {
        text: String,
    },
    /// A customer complaint reaches support.
    CustomerComplaint {
        text: String,
    },
    /// Any other note.
    Note {
        text: String,
    },
    /// The severity turns out different.
    Severity {
        to: Severity,
        reason: String,
    },
    DataLoss {
        value: DataLoss,
    },
    Regulatory {
        text: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    pub id: String,
    pub title: String,
    pub description: String,
    /// Declared severity (`None`: declared as unclear).
    pub severity: Option<Severity>,
    pub steps: Vec<Step>,
}

/// A drill's script as its incident holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillScript {
    pub scenario: String,
    pub started_at: Timestamp,
    pub steps: Vec<Step>,
    /// Steps played so far (the next one is `steps[played]`).
    pub played: usize,
}

impl DrillScript {
    /// The next injection and when it is due.
    pub fn next(&self) -> Option<(usize, Timestamp)> {
        let step = self.steps.get(self.played)?;
        Some((
            self.played,
            self.started_at.plus(std::time::Duration::from_secs(step.after_secs)),
        ))
    }
}

/// The event a step injects (its text marked as a drill).
pub fn effect(state: &Incident, step: &Step) -> EventKind {
    let entry = |kind: EntryKind, text: String| EventKind::EntryAdded { kind, text };
    match &step.kind {
        StepKind::Alert { text } => entry(EntryKind::Note, format!("[DRILL] Alert fired: {text}")),
        StepKind::Finding { text } => entry(EntryKind::Finding, format!("[DRILL] {text}")),
        StepKind::CustomerComplaint { text } => entry(EntryKind::Note, format!("[DRILL] Customer complaint: {text}")),
        StepKind::Note { text } => entry(EntryKind::Note, format!("[DRILL] {text}")),
        StepKind::Severity { to, reason } => EventKind::SeverityChanged {
            from: state.severity,
            to: *to,
            reason: format!("[DRILL] {reason}"),
        },
        StepKind::DataLoss { value } => EventKind::ImpactChanged {
            impact: None,
            customer_impact_percent: None,
            data_loss: Some(*value),
            regulatory: None,
        },
        StepKind::Regulatory { text } => EventKind::ImpactChanged {
            impact: Some(format!("[DRILL] {text}")),
            customer_impact_percent: None,
            data_loss: None,
            regulatory: Some(true),
        },
    }
}

const MIN: u64 = 60;

fn step(after_min: u64, kind: StepKind) -> Step {
    Step {
        after_secs: after_min * MIN,
        kind,
    }
}

/// The playbook's built-in scenarios.
pub fn builtin_scenarios() -> Vec<Scenario> {
    let text = |s: &str| s.to_string();
    vec![
        Scenario {
            id: "sev1-payments-outage".into(),
            title: "Payments down: card payments fail at checkout".into(),
            description: "A SEV-1 that is not mitigated in 30 minutes and must escalate to engineering leadership."
                .into(),
            severity: None,
            steps: vec![
                step(
                    1,
                    StepKind::Alert {
                        text: text("payments-api 5xx rate above 50 %"),
                    },
                ),
                step(
                    4,
                    StepKind::CustomerComplaint {
                        text: text("Checkout spins forever for EU customers"),
                    },
                ),
                step(
                    8,
                    StepKind::Finding {
                        text: text("Connection pool to the ledger database is exhausted"),
                    },
                ),
                step(
                    20,
                    StepKind::Alert {
                        text: text("Ledger database replica lag above 60 s"),
                    },
                ),
                step(
                    35,
                    StepKind::Finding {
                        text: text("A schema migration holds a lock on the ledger table"),
                    },
                ),
            ],
        },
        Scenario {
            id: "database-data-loss".into(),
            title: "Orders database: possible data loss after a failover".into(),
            description: "Data loss is suspected, then confirmed: executives must hear of it at once.".into(),
            severity: Some(Severity::Sev2),
            steps: vec![
                step(
                    2,
                    StepKind::Alert {
                        text: text("orders-db primary unreachable; failover started"),
                    },
                ),
                step(
                    6,
                    StepKind::DataLoss {
                        value: DataLoss::Possible,
                    },
                ),
                step(
                    10,
                    StepKind::Severity {
                        to: Severity::Sev1,
                        reason: text("orders written during failover are missing"),
                    },
                ),
                step(
                    15,
                    StepKind::DataLoss {
                        value: DataLoss::Confirmed,
                    },
                ),
                step(
                    25,
                    StepKind::Finding {
                        text: text("Asynchronous replication lost 90 s of writes"),
                    },
                ),
            ],
        },
        Scenario {
            id: "non-core-two-teams".into(),
            title: "Search unavailable for two teams' products".into(),
            description: "Loss of a non-core service used by two teams: coordination across teams.".into(),
            severity: Some(Severity::Sev2),
            steps: vec![
                step(
                    1,
                    StepKind::Alert {
                        text: text("search-api health checks failing"),
                    },
                ),
                step(
                    5,
                    StepKind::Note {
                        text: text("The identity team reports login suggestions are empty too"),
                    },
                ),
                step(
                    12,
                    StepKind::Finding {
                        text: text("The search cluster lost quorum after a node upgrade"),
                    },
                ),
                step(
                    20,
                    StepKind::Severity {
                        to: Severity::Sev3,
                        reason: text("a cached fallback serves most queries"),
                    },
                ),
            ],
        },
        Scenario {
            id: "regulatory-exposure".into(),
            title: "Personal data exposed in logs".into(),
            description: "An incident with regulatory implications: legal must be involved.".into(),
            severity: Some(Severity::Sev2),
            steps: vec![
                step(
                    2,
                    StepKind::Note {
                        text: text("A customer reports seeing another customer's address"),
                    },
                ),
                step(
                    6,
                    StepKind::Finding {
                        text: text("A debug flag logs full profiles to the shared log index"),
                    },
                ),
                step(
                    9,
                    StepKind::Regulatory {
                        text: text("personal data of EU customers exposed"),
                    },
                ),
                step(
                    15,
                    StepKind::Alert {
                        text: text("Log index readable by 40 internal accounts"),
                    },
                ),
            ],
        },
    ]
}

/// How often a person held each role.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleCounts {
    pub commander: u32,
    pub comms_lead: u32,
    pub sme: u32,
    pub last_commander_at: Option<Timestamp>,
}

/// Role rotation over incidents (drills included: practice counts):
/// counts per person, the team's members who were never commander, and a
/// suggestion for the next commander (someone never IC first, else the one
/// whose last turn is oldest).
pub fn role_rotation<'a>(
    incidents: impl IntoIterator<Item = &'a Incident>,
    members: &[String],
) -> (BTreeMap<String, RoleCounts>, Vec<String>, Option<String>) {
    let mut counts: BTreeMap<String, RoleCounts> = members.iter().map(|m| (m.clone(), RoleCounts::default())).collect();
    for s in incidents {
        for held in &s.role_history {
            let c = counts.entry(held.person.clone()).or_default();
            match held.role {
                Role::Commander => {
                    c.commander += 1;
                    c.last_commander_at = c.last_commander_at.max(Some(held.at));
                }
                Role::CommsLead => c.comms_lead += 1,
                Role::Sme => c.sme += 1,
            }
        }
    }
    let never: Vec<String> = members
        .iter()
        .filter(|m| counts.get(*m).is_none_or(|c| c.commander == 0))
        .cloned()
        .collect();
    let suggestion = never.first().cloned().or_else(|| {
        members
            .iter()
            .min_by_key(|m| counts.get(*m).and_then(|c| c.last_commander_at))
            .cloned()
    });
    (counts, never, suggestion)
}
