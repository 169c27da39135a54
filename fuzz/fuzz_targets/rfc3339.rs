//! The alert edges' RFC 3339 parser (`ingest::parse_time`): any text is a
//! time or `None`, never a panic; a time it reads it reads back from its own
//! formatting (to the second, for the years a 4-digit formatting can hold).
#![no_main]

use incidentd_gateway::ingest::parse_time;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Some(t) = parse_time(text) {
        let formatted = t.to_string();
        if formatted.as_bytes().get(4) == Some(&b'-') {
            let again = parse_time(&formatted).map(|a| a.0.div_euclid(1000));
            assert_eq!(again, Some(t.0.div_euclid(1000)), "{text:?} → {formatted}");
        }
    }
});
