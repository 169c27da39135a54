//! Response policy: first-15-minutes checklist, per-severity cadences,
//! review deadline and escalation rules; [`Policy::playbook`] holds the
//! playbook defaults that apply wherever a config says nothing.

use std::time::Duration;

use crate::types::{DataLoss, Severity, Status};

const fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

/// `[policy]` (org-wide) or `[teams.policy]` (per team, merged over the org
/// policy). Resolved: every value is concrete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `checklist = { ... }`: first-15-minutes deadlines, measured from detection.
    pub checklist: Checklist,
    /// `review_due`: the post-incident review is due this long after
    /// resolution. Playbook: `"48h"`.
    pub review_due: Duration,
    /// `[policy.severity.SEV1]` … `[policy.severity.SEV4]`, indexed by
    /// [`Severity::index`]; prefer [`Policy::for_severity`].
    pub severity: [SeverityPolicy; 4],
    /// `[[policy.escalations]]`. When the file has no `[[policy.escalations]]`
    /// the playbook's four rules apply; when it has any, they replace the
    /// inherited list entirely (`escalations = []` disables escalation).
    pub escalations: Vec<EscalationRule>,
}

/// `[policy] checklist`: each item's deadline, measured from detection.
/// A key missing from the table keeps the inherited value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checklist {
    /// `acknowledge`: someone acknowledged the page. Playbook: `"2m"`.
    pub acknowledge: Duration,
    /// `severity_and_commander`: severity declared and an IC assigned. Playbook: `"5m"`.
    pub severity_and_commander: Duration,
    /// `team_assembled`: team assembled and first stakeholder notice drafted. Playbook: `"10m"`.
    pub team_assembled: Duration,
    /// `investigation_plan`: at least one SME track exists. Playbook: `"15m"`.
    pub investigation_plan: Duration,
}

/// `[policy.severity.SEVn]`: communication cadence for one severity.
///
/// `None` means "not required" (no notice / no cadence). In the file, a key
/// that is missing keeps the inherited value (the playbook's for `[policy]`,
/// the org's for `[teams.policy]`); to switch an inherited value off, write
/// the string `"none"`. Hence an empty `[policy.severity.SEV4]` table means
/// "no notice, no cadence" only because the playbook's SEV4 has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeverityPolicy {
    /// `stakeholder_notice`: stakeholders must be notified within this long
    /// of declaration (`"0s"` = immediately).
    pub stakeholder_notice: Option<Duration>,
    /// `update_every`: internal status update cadence.
    pub update_every: Option<Duration>,
    /// `sme_report_every`: SME track report-back cadence.
    pub sme_report_every: Option<Duration>,
}

/// One `[[policy.escalations]]` rule. A rule fires at most once per incident,
/// `after` its conditions started to hold (measured from declaration, or from
/// the severity change that made it match), and notifies a `[contacts]` group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationRule {
    /// `id`: unique within the policy; recorded on the timeline when it fires.
    pub id: String,
    /// `severity = ["SEV1", ...]`: severities it applies to; empty = any.
    pub severity: Vec<Severity>,
    /// `unless_status = ["MITIGATING", ...]`: it does not apply while the
    /// incident is in one of these statuses; empty = no exemption.
    pub unless_status: Vec<Status>,
    /// `data_loss = "POSSIBLE" | "CONFIRMED" | "NONE"`: applies only when the
    /// incident's data-loss assessment is at least this; absent = any.
    pub data_loss: Option<DataLoss>,
    /// `regulatory = true|false`: applies only when the incident's regulatory
    /// flag equals this; absent = any.
    pub regulatory: Option<bool>,
    /// `after`: how long the conditions must hold before it fires (`"0s"` = immediately).
    pub after: Duration,
    /// `notify`: a `[contacts]` group name.
    pub notify: String,
    /// `message`: optional text for the notification (e.g. "leadership briefing").
    pub message: Option<String>,
}

impl EscalationRule {
    /// Whether the rule's conditions hold for an incident in this state
    /// (timing — `after` — is the caller's business).
    pub fn matches(&self, severity: Severity, status: Status, data_loss: DataLoss, regulatory: bool) -> bool {
        (self.severity.is_empty() || self.severity.contains(&severity))
            && !self.unless_status.contains(&status)
            && self.data_loss.is_none_or(|min| data_loss >= min)
            && self.regulatory.is_none_or(|want| want == regulatory)
    }
}

impl Policy {
    /// The playbook defaults (CONFIG.md): checklist 2m/5m/10m/15m; review due
    /// 48h; SEV1 notice 0s, updates 15m, SME 15m; SEV2 30m/30m/30m; SEV3
    /// 2h/60m/none; SEV4 none; escalations `sev1-not-mitigated`,
    /// `sev1-data-loss`, `long-running`, `regulatory`.
    pub fn playbook() -> Policy {
        Policy {
            checklist: Checklist {
                acknowledge: mins(2),
                severity_and_commander: mins(5),
                team_assembled: mins(10),
                investigation_plan: mins(15),
            },
            review_due: Duration::from_secs(48 * 3600),
            severity: [
                SeverityPolicy {
                    stakeholder_notice: Some(Duration::ZERO),
                    update_every: Some(mins(15)),
                    sme_report_every: Some(mins(15)),
                },
                SeverityPolicy {
                    stakeholder_notice: Some(mins(30)),
                    update_every: Some(mins(30)),
                    sme_report_every: Some(mins(30)),
                },
                SeverityPolicy {
                    stakeholder_notice: Some(mins(120)),
                    update_every: Some(mins(60)),
                    sme_report_every: None,
                },
                SeverityPolicy::default(),
            ],
            escalations: playbook_escalations(),
        }
    }

    /// The cadence settings for one severity.
    pub fn for_severity(&self, severity: Severity) -> &SeverityPolicy {
        &self.severity[severity.index()]
    }

    /// The escalation rule with this id.
    pub fn escalation(&self, id: &str) -> Option<&EscalationRule> {
        self.escalations.iter().find(|r| r.id == id)
    }
}

impl Default for Policy {
    /// Same as [`Policy::playbook`].
    fn default() -> Self {
        Policy::playbook()
    }
}

/// The `[contacts]` groups the playbook escalations notify.
pub(crate) const PLAYBOOK_GROUPS: [&str; 3] = ["engineering_leadership", "executives", "legal"];

fn playbook_escalations() -> Vec<EscalationRule> {
    let rule = |id: &str, after: Duration, notify: &str| EscalationRule {
        id: id.to_string(),
        severity: Vec::new(),
        unless_status: Vec::new(),
        data_loss: None,
        regulatory: None,
        after,
        notify: notify.to_string(),
        message: None,
    };
    vec![
        EscalationRule {
            severity: vec![Severity::Sev1],
            unless_status: vec![Status::Mitigating, Status::Resolved],
            ..rule("sev1-not-mitigated", mins(30), PLAYBOOK_GROUPS[0])
        },
        EscalationRule {
            severity: vec![Severity::Sev1],
            data_loss: Some(DataLoss::Confirmed),
            ..rule("sev1-data-loss", Duration::ZERO, PLAYBOOK_GROUPS[1])
        },
        EscalationRule {
            unless_status: vec![Status::Resolved],
            message: Some("leadership briefing".to_string()),
            ..rule("long-running", mins(120), PLAYBOOK_GROUPS[0])
        },
        EscalationRule {
            regulatory: Some(true),
            ..rule("regulatory", Duration::ZERO, PLAYBOOK_GROUPS[2])
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playbook_rules_match_as_documented() {
        let p = Policy::playbook();
        let r = p.escalation("sev1-not-mitigated").unwrap();
        assert!(r.matches(Severity::Sev1, Status::Investigating, DataLoss::None, false));
        assert!(!r.matches(Severity::Sev1, Status::Mitigating, DataLoss::None, false));
        assert!(!r.matches(Severity::Sev2, Status::Investigating, DataLoss::None, false));
        let r = p.escalation("sev1-data-loss").unwrap();
        assert!(r.matches(Severity::Sev1, Status::Resolved, DataLoss::Confirmed, false));
        assert!(!r.matches(Severity::Sev1, Status::Investigating, DataLoss::Possible, false));
        let r = p.escalation("long-running").unwrap();
        assert!(r.matches(Severity::Sev4, Status::Identified, DataLoss::None, false));
        assert!(!r.matches(Severity::Sev4, Status::Resolved, DataLoss::None, false));
        let r = p.escalation("regulatory").unwrap();
        assert!(r.matches(Severity::Sev3, Status::Investigating, DataLoss::None, true));
        assert!(!r.matches(Severity::Sev3, Status::Investigating, DataLoss::None, false));
        assert_eq!(p.for_severity(Severity::Sev4), &SeverityPolicy::default());
    }
}
