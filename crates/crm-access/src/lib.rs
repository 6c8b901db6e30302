//! `crm-access`: the access closure of an import batch (what lets an
//! ordinary user call the provider through the host), its verification and
//! the classification of what went wrong (design brief §2 "Access closure",
//! "Access check", §3 failure classes, §4 step 5).
//!
//! - [`classify`]: pure reading of gateway, upstream and account-probe
//!   outcomes into a failure class and an operator-facing summary.
//! - [`status`]: the per-batch access status, computed from stored checks
//!   and kept in sync on the batch records.

pub mod classify;
pub mod error;
pub mod status;

pub use error::{Error, Result};
