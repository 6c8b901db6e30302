//! `crm-reconcile`: drift detection, repair planning and the scheduling logic
//! the server runs (docs/design.md §3 drift categories, §4 step 6).
//!
//! - [`mod@diff`]: the pure comparison of recorded desired state with one
//!   observation of a host.
//! - [`desired`]: how reconcile reads the desired specs provisioning records.
//! - [`funds`]: funds and quota readings taken in a run, and their drift.
//! - [`run`]: observe, diff and persist one run of a batch, provider or host.
//! - [`mod@repair`]: the repair plan and its journaled application.
//! - [`schedule`]: the pure schedule state and the driver the server ticks.
//!
//! This crate is written against `crm-domain`'s ports and `crm-provision`;
//! it names no HTTP stack, database or runtime.

pub mod desired;
pub mod diff;
pub mod error;
pub mod funds;
pub mod repair;
pub mod run;
pub mod schedule;

#[cfg(test)]
mod fixtures;

pub use diff::{Recorded, RecordedBatch, diff, status_of, unreachable};
pub use error::{ReconcileError, Result};
pub use repair::{RepairOptions, RepairReport, repair};
pub use run::{Ports, RunOptions, reconcile};
