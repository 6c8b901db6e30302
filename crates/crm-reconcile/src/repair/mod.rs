//! Repair: a plan first, then applied under the scope's lease and through
//! crm-provision's write-ahead journal, exactly like an import.
//!
//! What a repair does, per drift category:
//! - `missing`: recreated from the recorded desired spec; an account found
//!   again by natural key is adopted instead. crm stores upstream keys only
//!   as fingerprints, so recreating an account needs its key from the caller
//!   ([`RepairOptions::upstream_keys`]); without it the item is `blocked` and
//!   names the key by fingerprint. Closure objects (users, keys,
//!   subscriptions) belong to the access setup and are `blocked` here.
//! - `changed`: the recorded fields are written back; an object whose marker
//!   was removed is `blocked` (crm never modifies an object without it).
//! - `duplicate`: crm-marked duplicates are disabled (status `inactive`, not
//!   schedulable), never deleted; the oldest healthy account of the set is kept.
//! - `unhealthy`: `clear-error` and `schedulable=true`, only when asked.
//! - `unmanaged_leftover`: deleted (and the deletion confirmed by a fresh
//!   list; 404 counts as done) only when asked to prune.
//! - `access_broken`, `unknown`: nothing to do here.
//!
//! Every mutation is journaled under the batch that owns the object. A
//! leftover whose batch crm has no record of is journaled under a batch
//! record created for it (status `rolled_back`, reason says it was found as
//! residue), because the journal needs a batch and the trail should say who
//! deleted what.
//!
//! The plan is pure (`plan`: drift items to plan items and the steps that
//! carry them out, no I/O, unit-tested beside it; the `changed` items in
//! `changed`, the shared step type in `op`); `exec` observes, plans and runs
//! the steps under the scope's lease.

mod changed;
mod exec;
mod op;
mod plan;

pub use exec::{RepairReport, provider_from_name, recreation_key, repair};
pub use op::RepairOptions;
pub use plan::plan;
