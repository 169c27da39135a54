//! Test-only kit for fuzzing the parsers with proptest (issue 8): what
//! `cargo test` runs in CI, where `cargo fuzz` (nightly, libFuzzer) cannot.
//!
//! * [`json`]: arbitrary bytes, arbitrary JSON values, and structure-aware
//!   mutations of real payloads (fields deleted, duplicated, renamed,
//!   retyped; huge, unicode and time-like strings; deep nesting; non-UTF-8).
//! * [`text`]: line-level mutations of real TOML files (lines dropped,
//!   duplicated, swapped; values swapped and replaced; keys renamed).
//! * [`config`]: the run's size. `PROPTEST_CASES` (default 256 per test) and
//!   `PROPTEST_RNG_SEED` (default fixed, so CI runs are repeatable) override
//!   it for the long run described in `fuzz/README.md`.

pub mod json;
pub mod text;

use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// The seed of a run when `PROPTEST_RNG_SEED` is not set.
pub const DEFAULT_SEED: u64 = 0x1ac1_de47_f022;

/// Proptest's configuration for the fuzz tests: its defaults and environment
/// overrides, a fixed seed unless one is given, and no regression files (a
/// case that failed once becomes a named test instead).
pub fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(DEFAULT_SEED);
    }
    c.failure_persistence = None;
    c
}

/// Strings that parsers trip on: arbitrary unicode, empty and blank, huge,
/// multi-byte near the limits, control characters, time-like, numeric.
pub fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        2 => "\\PC{0,40}",
        1 => Just(String::new()),
        1 => Just(" \t\r\n ".to_string()),
        1 => Just("\u{0}\u{7f}\u{feff}\u{202e}\u{fffd}".to_string()),
        1 => (0usize..=70_000).prop_map(|n| "x".repeat(n)),
        1 => (0usize..=2_100).prop_map(|n| "é".repeat(n)),
        1 => (0usize..=300).prop_map(|n| "👩‍👩‍👧".repeat(n)),
        2 => time_like(),
        1 => "-?[0-9]{1,30}(\\.[0-9]{0,5})?(e[+-]?[0-9]{1,4})?",
    ]
}

/// RFC 3339-ish strings, mostly almost valid.
pub fn time_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?",
        "[0-9:T.+Zz -]{0,32}",
        Just("0001-01-01T00:00:00Z".to_string()),
        Just("9999-12-31T23:59:60.999999999+99:99".to_string()),
    ]
}
