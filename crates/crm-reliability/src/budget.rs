//! How big a run is, and the one-line-per-promise report.
//!
//! CI runs the bounded sizes as part of `cargo test --workspace`;
//! `CRM_RELIABILITY_LONG=1` (what `scripts/reliability.sh` sets) selects the
//! long sizes. `CRM_RELIABILITY_SEED` replaces the fixed seed so a long run
//! can explore new sequences while a failure stays reproducible from the
//! seed it prints.

use std::sync::Mutex;

/// Sizes of one run of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Whether this is the long run.
    pub long: bool,
    /// State-machine cases.
    pub cases: u32,
    /// Longest operation sequence of one case.
    pub max_steps: usize,
    /// SIGKILL trials against the real server.
    pub crash_trials: u32,
    /// Load test duration in seconds.
    pub load_secs: u64,
    /// Concurrent API clients of the load test.
    pub load_clients: usize,
    /// Inputs per decoder of the seeded pseudo-fuzz.
    pub fuzz_inputs: u32,
    /// Seed of every random choice in the suite.
    pub seed: u64,
}

/// The fixed seed of CI runs.
pub const DEFAULT_SEED: u64 = 0x00C0_FFEE_2026;

impl Budget {
    /// Reads `CRM_RELIABILITY_LONG` and `CRM_RELIABILITY_SEED`.
    pub fn from_env() -> Budget {
        let long = std::env::var("CRM_RELIABILITY_LONG").is_ok_and(|v| v == "1" || v == "true");
        let seed = std::env::var("CRM_RELIABILITY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(DEFAULT_SEED);
        if long {
            Budget {
                long,
                cases: 500,
                max_steps: 16,
                crash_trials: 24,
                load_secs: 60,
                load_clients: 64,
                fuzz_inputs: 20_000,
                seed,
            }
        } else {
            Budget {
                long,
                cases: 24,
                max_steps: 12,
                crash_trials: 3,
                load_secs: 10,
                load_clients: 50,
                fuzz_inputs: 3_000,
                seed,
            }
        }
    }
}

/// Trials and violations of one promise, printed as one line
/// (`PROMISE <name> trials=<n> violations=<m>`) that `scripts/reliability.sh`
/// collects.
#[derive(Debug, Default)]
pub struct Tally {
    name: String,
    inner: Mutex<(u64, Vec<String>)>,
}

impl Tally {
    pub fn new(name: impl Into<String>) -> Tally {
        Tally {
            name: name.into(),
            inner: Mutex::new((0, Vec::new())),
        }
    }

    /// Counts one trial.
    pub fn trial(&self) {
        self.lock().0 += 1;
    }

    /// Records a violation (a trial that broke the promise).
    pub fn violation(&self, what: impl Into<String>) {
        let what = what.into();
        eprintln!("VIOLATION {}: {what}", self.name);
        self.lock().1.push(what);
    }

    pub fn trials(&self) -> u64 {
        self.lock().0
    }

    pub fn violations(&self) -> Vec<String> {
        self.lock().1.clone()
    }

    /// Prints the promise line and panics if any violation was recorded.
    pub fn finish(&self, figures: &str) {
        let (trials, violations) = {
            let g = self.lock();
            (g.0, g.1.clone())
        };
        let line = format!(
            "PROMISE {} trials={trials} violations={}{}{figures}",
            self.name,
            violations.len(),
            if figures.is_empty() { "" } else { " " },
        );
        println!("{line}");
        // Straight to stderr as well, not eprintln!: libtest captures the
        // print macros of passing tests, and CI's log should show the figures.
        {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "{line}");
        }
        assert!(trials > 0, "{}: no trial ran", self.name);
        assert!(
            violations.is_empty(),
            "{}: {} violations:\n{}",
            self.name,
            violations.len(),
            violations.join("\n")
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Vec<String>)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}
