//! The Alertmanager webhook body (`POST /v1/integrations/alertmanager`):
//! any bytes are a notification or a 400 naming a field, never a panic.
#![no_main]

use incidentd_domain::alert::limits;
use incidentd_gateway::alertmanager;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match alertmanager::parse_body(body) {
        Ok(n) => {
            assert!(!n.signals.is_empty() && n.signals.len() <= limits::SIGNALS_MAX);
            assert!(!n.key.is_empty() && n.key.len() <= limits::KEY_MAX_BYTES);
        }
        Err(s) => {
            assert_eq!(s.code(), tonic::Code::InvalidArgument);
            assert!(s.message().contains(": "), "{:?} names no field", s.message());
        }
    }
});
