//! Fuzz target: `crm_reliability::fuzzing::envelope` (the same function the
//! suite's seeded pseudo-fuzz and corpus regression tests call).
#![no_main]

#[allow(dead_code)] // each target uses one of the shared entry points
#[path = "../../crates/crm-reliability/src/fuzzing.rs"]
mod fuzzing;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzzing::envelope(data);
});
