//! `crm-provision`: preview, import batches, resume, rollback, upstream key
//! rotation and pack upgrade, over crm-domain's host and storage ports
//! (docs/design.md §4 steps 3, 4 and 7, and §5).
//!
//! Two pieces are shared with `crm-access` and `crm-reconcile`:
//! [`snapshot::observe`] (one list-only pass over a host) and
//! [`journal::JournalExecutor`] (the write-ahead journal every host mutation
//! goes through). See the crate README for their contracts.

mod apply;
mod concurrency;
pub mod desired;
pub mod error;
pub mod journal;
pub mod lease;
pub mod lookup;
pub mod monitor;
pub mod planner;
pub mod provisioner;
pub mod rollback;
mod rotation;
pub mod snapshot;
mod steps;

#[cfg(test)]
mod fakehost;
#[cfg(test)]
mod fakes;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

pub use desired::PackProvider;
pub use error::{ProvisionError, Result};
pub use journal::{Applied, AppliedHow, HostObject, Intent, JournalExecutor, Step};
pub use lease::HeldLease;
pub use planner::{PlanInput, Planned, plan, plan_detailed};
pub use provisioner::{ApplyReport, ImportRequest, Preview, Provisioner};
pub use rollback::RollbackReport;
pub use snapshot::{
    WantedUser, observe, observe_bounded, observe_monitors, observe_with, wanted_users,
};
