//! Fuzz target: `crm_reliability::fuzzing::pack` (the same function the
//! suite's seeded pseudo-fuzz and corpus regression tests call).
#![no_main]

#[allow(dead_code)] // each target uses one of the shared entry points
#[path = "../../crates/crm-reliability/src/fuzzing.rs"]
mod fuzzing;

libfuzzer_sys::fuzz_target!(
    init: {
        // crm-pack catches a panic of the TOML parser and reports it as a
        // diagnostic; libFuzzer's hook would abort on it anyway. A panic that
        // escapes `fuzzing::pack` still aborts (libfuzzer-sys catches the
        // unwind and aborts), so crashes are still found.
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| {
        fuzzing::pack(data);
    }
);
