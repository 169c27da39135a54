//! The playbook as a value: severity table, checklist deadlines, escalation
//! rules. Defaults are the playbook's (DESIGN.md §2); the org config may
//! override any of them per org or per team.

use crate::model::{DataLoss, Incident, Severity, Status};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

const fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

/// One row of the severity table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityPolicy {
    /// Stakeholders must be told within this long (`None`: not at all).
    pub stakeholder_notice: Option<Duration>,
    /// Internal update cadence (`None`: no cadence).
    pub update_every: Option<Duration>,
    /// SME report-back cadence per track (`None`: none).
    pub sme_report_every: Option<Duration>,
}

/// First-15-minutes checklist deadlines, measured from declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistPolicy {
    pub acknowledge: Duration,
    pub severity_and_commander: Duration,
    pub team_assembled: Duration,
    pub investigation_plan: Duration,
}

/// An escalation trigger: when every condition holds for `after`, notify `notify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationRule {
    pub id: String,
    /// Empty: any severity.
    pub severity: Vec<Severity>,
    /// The rule does not apply while the status is one of these.
    pub unless_status: Vec<Status>,
    pub data_loss: Option<DataLoss>,
    pub regulatory: Option<bool>,
    /// Measured from declaration, or from the severity change that made the rule apply.
    pub after: Duration,
    /// A contact group of the org config.
    pub notify: String,
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Indexed by `Severity::index()`.
    pub severities: [SeverityPolicy; 4],
    pub checklist: ChecklistPolicy,
    pub review_due: Duration,
    pub escalations: Vec<EscalationRule>,
}

impl Policy {
    /// The playbook defaults.
    pub fn playbook() -> Policy {
        let row = |notice: Option<u64>, update: Option<u64>, sme: Option<u64>| SeverityPolicy {
            stakeholder_notice: notice.map(mins),
            update_every: update.map(mins),
            sme_report_every: sme.map(mins),
        };
        Policy {
            severities: [
                row(Some(0), Some(15), Some(15)),
                row(Some(30), Some(30), Some(30)),
                row(Some(120), Some(60), None),
                row(None, None, None),
            ],
            checklist: ChecklistPolicy {
                acknowledge: mins(2),
                severity_and_commander: mins(5),
                team_assembled: mins(10),
                investigation_plan: mins(15),
            },
            review_due: mins(48 * 60),
            escalations: vec![
                EscalationRule {
                    id: "sev1-not-mitigated".into(),
                    severity: vec![Severity::Sev1],
                    unless_status: vec![Status::Mitigating, Status::Resolved],
                    data_loss: None,
                    regulatory: None,
                    after: mins(30),
                    notify: "engineering_leadership".into(),
                    message: None,
                },
                EscalationRule {
                    id: "sev1-data-loss".into(),
                    severity: vec![Severity::Sev1],
                    unless_status: vec![],
                    data_loss: Some(DataLoss::Confirmed),
                    regulatory: None,
                    after: Duration::ZERO,
                    notify: "executives".into(),
                    message: None,
                },
                EscalationRule {
                    id: "long-running".into(),
                    severity: vec![],
                    unless_status: vec![Status::Resolved],
                    data_loss: None,
                    regulatory: None,
                    after: mins(120),
                    notify: "engineering_leadership".into(),
                    message: Some("leadership briefing".into()),
                },
                EscalationRule {
                    id: "regulatory".into(),
                    severity: vec![],
                    unless_status: vec![],
                    data_loss: None,
                    regulatory: Some(true),
                    after: Duration::ZERO,
                    notify: "legal".into(),
                    message: None,
                },
            ],
        }
    }

    pub fn for_severity(&self, sev: Severity) -> &SeverityPolicy {
        &self.severities[sev.index()]
    }
}

impl Policy {
    /// When the next internal update is due: the time the last internal
    /// update promised (or one cadence period after it), or one period
    /// after declaration if none was posted yet. A severity change after the
    /// last update restarts the clock with the new severity's cadence, so an
    /// upgrade tightens it at once. `None` when the severity has no cadence
    /// or the incident is resolved.
    pub fn next_update_due(&self, s: &Incident) -> Option<Timestamp> {
        if s.is_resolved() {
            return None;
        }
        let cadence = self.for_severity(s.severity).update_every?;
        match s.last_internal_update_at {
            Some(last) if last >= s.severity_set_at => {
                Some(s.promised_next_update_at.unwrap_or_else(|| last.plus(cadence)))
            }
            _ => Some(s.severity_set_at.max(s.declared_at).plus(cadence)),
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::playbook()
    }
}
