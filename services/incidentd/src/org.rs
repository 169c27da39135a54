//! The org config seen through the actors' `OrgView`: who exists and which
//! policy applies to a team. Policies are converted once, at load.

use incidentd_actors::OrgView;
use incidentd_config::OrgConfig;
use incidentd_domain::{self as d, Directory, Policy};
use std::collections::HashMap;
use std::sync::Arc;

pub struct Org {
    pub config: OrgConfig,
    scenarios: Vec<incidentd_domain::drill::Scenario>,
    default_policy: Arc<Policy>,
    team_policies: HashMap<String, Arc<Policy>>,
}

impl Org {
    /// The org with the built-in game-day scenarios.
    pub fn new(config: OrgConfig) -> Org {
        Org::with_scenarios(config, incidentd_domain::drill::builtin_scenarios())
    }

    pub fn with_scenarios(config: OrgConfig, scenarios: Vec<incidentd_domain::drill::Scenario>) -> Org {
        let default_policy = Arc::new(domain_policy(&config.policy));
        let team_policies = config
            .teams
            .iter()
            .map(|t| (t.id.clone(), Arc::new(domain_policy(&config.policy_for_team(&t.id)))))
            .collect();
        Org {
            config,
            scenarios,
            default_policy,
            team_policies,
        }
    }
}

impl Directory for Org {
    fn has_team(&self, id: &str) -> bool {
        self.config.team(id).is_some()
    }
    fn has_person(&self, id: &str) -> bool {
        self.config.person(id).is_some()
    }
    fn has_service(&self, id: &str) -> bool {
        self.config.service(id).is_some()
    }
    fn service_name(&self, id: &str) -> Option<String> {
        self.config.service(id).map(|s| s.name.clone())
    }
}

impl OrgView for Org {
    fn policy(&self, team: &str) -> Arc<Policy> {
        self.team_policies
            .get(team)
            .cloned()
            .unwrap_or_else(|| self.default_policy.clone())
    }
    fn default_team(&self) -> Option<String> {
        Some(self.config.org.default_team.clone())
    }
    fn blame_rules(&self) -> Vec<incidentd_domain::review::BlameRule> {
        match &self.config.blame_rules {
            Some(rules) => rules
                .iter()
                .map(|r| incidentd_domain::review::BlameRule {
                    id: r.id.clone(),
                    phrases: r.phrases.clone(),
                    suggestion: r.suggestion.clone(),
                })
                .collect(),
            None => incidentd_domain::review::default_blame_rules(),
        }
    }
    fn scenarios(&self) -> Vec<incidentd_domain::drill::Scenario> {
        self.scenarios.clone()
    }
    fn team_members(&self, team: &str) -> Vec<String> {
        self.config.members(team).map(|p| p.id.clone()).collect()
    }
    fn people(&self) -> Vec<String> {
        self.config
            .people
            .iter()
            .flat_map(|p| [p.id.clone(), p.name.clone()])
            .collect()
    }
}

pub(crate) fn severity(s: incidentd_config::Severity) -> d::Severity {
    match s {
        incidentd_config::Severity::Sev1 => d::Severity::Sev1,
        incidentd_config::Severity::Sev2 => d::Severity::Sev2,
        incidentd_config::Severity::Sev3 => d::Severity::Sev3,
        incidentd_config::Severity::Sev4 => d::Severity::Sev4,
    }
}

fn status(s: incidentd_config::Status) -> d::Status {
    match s {
        incidentd_config::Status::Investigating => d::Status::Investigating,
        incidentd_config::Status::Identified => d::Status::Identified,
        incidentd_config::Status::Mitigating => d::Status::Mitigating,
        incidentd_config::Status::Resolved => d::Status::Resolved,
    }
}

fn data_loss(x: incidentd_config::DataLoss) -> d::DataLoss {
    match x {
        incidentd_config::DataLoss::None => d::DataLoss::None,
        incidentd_config::DataLoss::Possible => d::DataLoss::Possible,
        incidentd_config::DataLoss::Confirmed => d::DataLoss::Confirmed,
    }
}

/// The config's policy as the domain's value.
pub fn domain_policy(p: &incidentd_config::Policy) -> Policy {
    let row = |s: d::Severity| {
        let c = p.for_severity(match s {
            d::Severity::Sev1 => incidentd_config::Severity::Sev1,
            d::Severity::Sev2 => incidentd_config::Severity::Sev2,
            d::Severity::Sev3 => incidentd_config::Severity::Sev3,
            d::Severity::Sev4 => incidentd_config::Severity::Sev4,
        });
        d::SeverityPolicy {
            stakeholder_notice: c.stakeholder_notice,
            update_every: c.update_every,
            sme_report_every: c.sme_report_every,
        }
    };
    Policy {
        severities: d::Severity::ALL.map(row),
        checklist: d::ChecklistPolicy {
            acknowledge: p.checklist.acknowledge,
            severity_and_commander: p.checklist.severity_and_commander,
            team_assembled: p.checklist.team_assembled,
            investigation_plan: p.checklist.investigation_plan,
        },
        review_due: p.review_due,
        escalations: p
            .escalations
            .iter()
            .map(|r| d::EscalationRule {
                id: r.id.clone(),
                severity: r.severity.iter().copied().map(severity).collect(),
                unless_status: r.unless_status.iter().copied().map(status).collect(),
                data_loss: r.data_loss.map(data_loss),
                regulatory: r.regulatory,
                after: r.after,
                notify: r.notify.clone(),
                message: r.message.clone(),
            })
            .collect(),
    }
}
