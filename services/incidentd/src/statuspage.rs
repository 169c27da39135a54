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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_by_order_then_file_order() {
        let text = incidentd_config::DEMO_TOML.replace(
            "id = \"search\"\nname = \"Search\"\n",
            "id = \"search\"\nname = \"Search\"\norder = 0\n",
        );
        let config = OrgConfig::from_toml_str(&text).expect("config");
        let c = catalog(&config);
        let ids: Vec<&str> = c.components.iter().map(|c| c.id.as_str()).collect();
        // search (order 0), payments-api (order 1), then the rest in file order;
        // k8s-platform has status_page = false.
        assert_eq!(ids, ["search", "payments-api", "checkout-web", "auth"]);
        assert_eq!(
            c.components[1].description.as_deref(),
            Some("Card payments and refunds")
        );
        assert_eq!(c.components[1].group.as_deref(), Some("Checkout"));
        assert_eq!(c.is_component("k8s-platform"), Some(false));
        assert_eq!(c.title, "Example Corp Status");
    }
}
