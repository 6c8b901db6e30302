//! The decoders of untrusted bytes (the pack parser, sub2api response
//! decoding, the account-test SSE parser) over (a) every file kept in
//! `fuzz/corpus-regressions/<target>/` (crashes the cargo-fuzz targets
//! found, plus hand-made edge cases) and (b) a seeded pseudo-fuzz: random
//! bytes and mutations of valid inputs, so CI exercises them without a
//! nightly toolchain. A panic in a decoder is a violation.

use crm_reliability::fuzzing;
use crm_reliability::{Budget, Tally};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;

type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 3] = [
    ("pack", fuzzing::pack),
    ("envelope", fuzzing::envelope),
    ("sse", fuzzing::sse),
];

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus-regressions")
}

/// Valid inputs the mutations start from.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "pack" => crm_pack::bundled::all()
            .iter()
            .map(|(_, text)| text.as_bytes().to_vec())
            .collect(),
        "envelope" => [
            r#"{"code":0,"message":"success","data":{"items":[{"id":3,"name":"crm-x","platform":"deepseek","type":"apikey","credentials":{"base_url":"https://api.deepseek.com","api_key":"sk-1"},"status":"active"}],"total":1,"page":1,"page_size":20,"pages":1}}"#,
            r#"{"code":"GROUP_EXISTS","message":"group exists","reason":"dup","metadata":{"name":"g"}}"#,
            r#"{"error":{"type":"invalid_request_error","message":"model not found"}}"#,
            r#"{"code":0,"data":{"id":9,"name":"crm-g","platform":"openai","rate_multiplier":1.5,"subscription_type":"subscription","status":"active"}}"#,
            r#"{"code":0,"data":{"version":"0.2.7"}}"#,
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
        _ => [
            "\x05data: {\"type\":\"test_start\",\"model\":\"deepseek-chat\"}\n\ndata: {\"type\":\"content\",\"text\":\"hi\"}\n\ndata: {\"type\":\"test_complete\",\"success\":true}\n\n",
            "\x02data: {\"type\":\"error\",\"error\":\"upstream 401\",\"code\":401}\r\n\r\n",
            "\x00data: a\ndata: b\n\n: comment\nevent: x\ndata: {\"type\":\"status\",\"text\":\"\u{4f60}\u{597d}\"}",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
    }
}

fn mutate(rng: &mut StdRng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..rng.random_range(1..=8) {
        let len = v.len();
        match rng.random_range(0..6) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                v[i] = rng.random();
            }
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=len.saturating_sub(i).clamp(1, 64));
                v.drain(i..i + n);
            }
            2 => {
                let i = rng.random_range(0..=len);
                let junk: &[u8] = match rng.random_range(0..8) {
                    0 => b"\"",
                    1 => b"\n[[providers]]\n",
                    2 => b"{",
                    3 => b"\xff\xfe",
                    4 => b"data: ",
                    5 => b"\r\n\r\n",
                    6 => "\u{1F600}\u{202E}".as_bytes(),
                    _ => b"9999999999999999999999",
                };
                v.splice(i..i, junk.iter().copied());
            }
            3 if len > 0 => {
                v.truncate(rng.random_range(0..len));
            }
            4 if len > 1 => {
                let a = rng.random_range(0..len);
                let b = rng.random_range(0..len);
                v.swap(a, b);
            }
            _ => {
                let n = rng.random_range(0..32);
                v.extend((0..n).map(|_| rng.random::<u8>()));
            }
        }
    }
    v
}

fn run(tally: &Tally, target: &str, f: fn(&[u8]), input: &[u8], what: &str) {
    tally.trial();
    if let Err(panic) = std::panic::catch_unwind(|| f(input)) {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        // Keep the input so it can join the regression corpus.
        let keep = std::env::temp_dir().join(format!(
            "crm-fuzz-{target}-{:016x}",
            input
                .iter()
                .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b))
                    .wrapping_mul(0x100_0000_01b3))
        ));
        let _ = std::fs::write(&keep, input);
        tally.violation(format!(
            "{target} panicked on {what} ({msg}); input kept at {}",
            keep.display()
        ));
    }
}

#[test]
fn every_kept_fuzz_input_still_decodes_without_panic() {
    let tally = Tally::new("fuzz_regressions");
    for (target, f) in TARGETS {
        let dir = corpus_dir().join(target);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        entries.sort();
        assert!(!entries.is_empty(), "{} holds no inputs", dir.display());
        for p in entries {
            let bytes = std::fs::read(&p).expect("corpus file reads");
            run(&tally, target, f, &bytes, &p.display().to_string());
        }
    }
    tally.finish("");
}

#[test]
fn seeded_pseudo_fuzz_of_every_decoder() {
    let budget = Budget::from_env();
    let tally = Tally::new("pseudo_fuzz");
    let mut rng = StdRng::seed_from_u64(budget.seed);
    for (target, f) in TARGETS {
        let seeds = seeds(target);
        for s in &seeds {
            run(&tally, target, f, s, "a seed input");
        }
        for i in 0..budget.fuzz_inputs {
            let input = if i % 4 == 0 {
                let n = rng.random_range(0..512);
                (0..n).map(|_| rng.random::<u8>()).collect()
            } else {
                let base = &seeds[rng.random_range(0..seeds.len())];
                mutate(&mut rng, base)
            };
            run(&tally, target, f, &input, &format!("input {i}"));
        }
    }
    tally.finish(&format!("seed={}", budget.seed));
}
