//! `crm-evidence`: the acceptance evidence harness behind `crm-acceptance`.
//!
//! Before an operator trusts a host, they want evidence: one run of crm's
//! whole chain (probe, pack, preview, import with the access closure and its
//! check, reconcile, rollback and the check that the key is refused, plus
//! direct probes of the upstream) that leaves numbered, reviewable JSON files
//! and a verdict. This crate is that run, on crm's application core
//! (`crm-app`) over a temporary database, against a real host or an
//! in-process `crm-sim`.
//!
//! - [`chain`]: one run and its evidence files.
//! - [`matrix`]: several provider x mode cells, one folder each, and a summary.
//! - [`verdict`]: the pure rules from step outcomes to verdicts.
//! - [`folder`]: the write gate that scrubs secrets, and the leak scan.
//! - [`summary`]: the records the summary files hold.
//! - [`render`]: markdown for humans.
//! - [`config`]: what a run is asked to do.
//!
//! No file this crate writes holds a secret: keys appear as fingerprints
//! (keyed HMAC prefix and last four characters), and the finished folder is
//! scanned, raw, for every secret the run knew, including the closure user's
//! key and password read back from the host.

pub mod chain;
pub mod config;
pub mod error;
pub mod folder;
pub mod matrix;
pub mod render;
pub mod summary;
pub mod verdict;

pub use chain::{RunOutcome, Step, Summary, exit_code_for, run};
pub use config::{ExistingUser, Modes, PackSource, RunSpec, Target, UpstreamKeys};
pub use error::{EvidenceError, Result};
