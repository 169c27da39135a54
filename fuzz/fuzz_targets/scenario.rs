//! A game-day scenario file (`incidentd::scenarios::parse`): any text is a
//! scenario or an error that says something, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Err(e) = incidentd::scenarios::parse(text) {
        assert!(!format!("{e:#}").trim().is_empty());
    }
});
