//! The PagerDuty Events v2 body (`POST /v2/enqueue`): any bytes are an event
//! or a 400 listing problems that each name a field, never a panic. The
//! routing key of `crates/incidentd-gateway/fixtures/pagerduty/` is known,
//! so mutants of those examples get past the integration lookup.
#![no_main]

use incidentd_domain::alert::limits;
use incidentd_gateway::ingest::{self, Integrations};
use incidentd_gateway::{IntegrationRoute, SourceKind, pagerduty};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, LazyLock};

static INTEGRATIONS: LazyLock<Integrations> = LazyLock::new(|| {
    let mut t = Integrations::new("platform".into(), incidentd_domain::Severity::Sev1);
    let route = Arc::new(IntegrationRoute {
        id: "pd".into(),
        kind: SourceKind::PagerDuty,
        team: "payments".into(),
        rules: Default::default(),
    });
    t.insert(ingest::sha256("samplekeyhere-routing"), route);
    t
});

fuzz_target!(|body: &[u8]| {
    match pagerduty::parse_body(&INTEGRATIONS, body) {
        Ok((_, key, n)) => {
            assert!(!key.is_empty() && key.len() <= limits::KEY_MAX_BYTES);
            assert_eq!(n.signals.len(), 1);
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in &errors {
                assert!(e.contains(": "), "{e:?} names no field");
            }
        }
    }
});
