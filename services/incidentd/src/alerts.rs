//! The org config's alert sources as the gateway needs them: secret digest →
//! integration route (team, reopen window, auto_mitigate, auto_resolve), plus
//! the org's routing defaults. `[[tokens]]` bound to an integration with scope
//! `ingest` authenticate as that integration too.

use incidentd_config::{IntegrationKind, OrgConfig, Principal, Scope};
use incidentd_domain::AlertRules;
use incidentd_gateway::{IntegrationRoute, Integrations, SourceKind};
use std::sync::Arc;

pub fn integrations(config: &OrgConfig) -> Integrations {
    let mut table = Integrations::new(
        config.org.default_team.clone(),
        crate::org::severity(config.org.unclear_severity),
    );
    for i in &config.integrations {
        let route = Arc::new(IntegrationRoute {
            id: i.id.clone(),
            kind: match i.kind {
                IntegrationKind::Alertmanager => SourceKind::Alertmanager,
                IntegrationKind::PagerDuty => SourceKind::PagerDuty,
            },
            team: i.team.clone(),
            rules: AlertRules {
                reopen_window: i.reopen_window,
                auto_mitigate: i.auto_mitigate,
                auto_resolve: i.auto_resolve,
            },
        });
        table.insert(i.sha256.0, route.clone());
        for t in &config.tokens {
            if t.principal == Principal::Integration(i.id.clone()) && t.has_scope(Scope::Ingest) {
                table.insert(t.sha256.0, route.clone());
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use incidentd_domain as d;

    #[test]
    fn demo_integrations_authenticate_with_their_documented_secrets() {
        let table = integrations(&OrgConfig::demo());
        let am = table.find("demo-alertmanager-token").expect("alertmanager");
        assert_eq!((am.id.as_str(), am.kind), ("am-main", SourceKind::Alertmanager));
        assert!(!am.rules.auto_resolve);
        let pd = table.find("demo-pagerduty-routing-key").expect("pagerduty");
        assert_eq!((pd.id.as_str(), pd.team.as_str()), ("pd-payments", "payments"));
        assert!(table.find("guess").is_none());
        assert_eq!(table.unclear_severity, d::Severity::Sev1);
    }
}
