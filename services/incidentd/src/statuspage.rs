//! The status page's catalog from the org config: `[[services]]` with
//! `status_page = true`, by `order` (those without one after, in file order).

use incidentd_config::OrgConfig;
use incidentd_statuspage::{Catalog, ComponentDef};

pub fn catalog(config: &OrgConfig) -> Catalog {
    let mut shown: Vec<_> = config.services.iter().filter(|s| s.status_page).collect();
    // Stable: equal keys keep file order.
    shown.sort_by_key(|s| (s.order.is_none(), s.order.unwrap_or(0)));
    Catalog {
        title: config.org.status_page_title.clone(),
        components: shown
            .into_iter()
            .map(|s| ComponentDef {
                id: s.id.clone(),
                name: s.name.clone(),
                group: s.group.clone(),
                description: s.description.clone(),
            })
            .collect(),
        services: config.services.iter().map(|s| s.id.clone()).collect(),
    }
}
