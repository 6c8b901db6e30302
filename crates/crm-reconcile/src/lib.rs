//! `crm-reconcile`: drift detection, repair planning and the scheduling logic
//! the server runs (design brief §3 drift categories, §4 step 6).
//!
//! - [`diff`]: the pure comparison of recorded desired state with one
//!   observation of a host.
//! - [`desired`]: how reconcile reads the desired specs provisioning records.
//!
//! This crate is written against `crm-domain`'s ports and `crm-provision`;
//! it names no HTTP stack, database or runtime.

pub mod desired;
pub mod diff;
pub mod error;

#[cfg(test)]
mod fixtures;

pub use diff::{Recorded, RecordedBatch, diff, status_of, unreachable};
pub use error::{ReconcileError, Result};
