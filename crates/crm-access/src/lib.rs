//! `crm-access`: the access closure of an import batch (what lets an
//! ordinary user call the provider through the host), its verification and
//! the classification of what went wrong (docs/design.md §2 "Access closure",
//! "Access check", §3 failure classes, §4 step 5).
//!
//! - [`classify`]: pure reading of gateway, upstream and account-probe
//!   outcomes into a failure class and an operator-facing summary.
//! - [`closure`]: pure planning of the closure objects (user, balance
//!   grant, subscription, key) for a target mode; the access preview.
//! - [`apply`]: applying a closure through crm-provision's write-ahead
//!   journal, `assign_subscriptions`, and reading a batch's key back.
//! - [`verify`]: account probe, gateway check, upstream probe, the stored
//!   check; and the post-rollback check that a key is refused.
//! - [`recorded`]: the accounts a batch recorded, and the one lookup of
//!   the account (and base URL) an upstream key belongs to.
//! - [`status`]: the per-batch access status, computed from stored checks
//!   and kept in sync on the batch records.
//!
//! Written against crm-domain's ports only (`HostApi`, `UpstreamProbe`,
//! `BatchRepo`, `AccessCheckRepo`, `Clock`, `IdSource`, `SecretSealer`):
//! no HTTP stack, no database.

pub mod apply;
pub mod classify;
pub mod closure;
pub mod error;
pub mod ports;
pub mod recorded;
pub mod status;
pub mod verify;

pub use apply::{
    AssignHow, Assigned, ClosureOutcome, UserRef, assign_subscriptions, close_access,
    preview_access, recover_closure_intents, reveal_batch_key,
};
pub use closure::{ClosurePlan, ClosureRequest, KeyChoice, UserChoice};
pub use error::{Error, Result};
pub use ports::{AccessPorts, HeldKey};
pub use verify::{KeyRefusal, VerifyOptions, check_key_refused, verify_access, verify_batch};
