//! The storage contract: one "story" of calls against the ports of
//! [`crm_domain::ports::Storage`], with the answers every adapter must give.
//!
//! It is written only against the ports, so a second adapter (PostgreSQL,
//! say) proves itself by running [`run_story`] on a fresh, empty store. It
//! panics with a message naming the broken promise; call it from a test.
//! Behaviour that needs a controllable clock or two connections (lease
//! expiry, races) is adapter-specific and tested beside the adapter.
//!
//! One module per part of the story, each importing only `fixtures`
//! (the values the stories store); this module runs them in order.
//! [`run_replica_story`], [`run_sealing_story`] and [`run_funds_story`] are
//! the other stories an adapter runs.

mod batches;
mod fixtures;
mod funds;
mod hosts;
mod journal;
mod leases;
mod operations;
mod packs;
mod replica;
mod runs;
mod sealing;
mod sessions;

pub use fixtures::{at, batch, capabilities, host, installed, intent, manifest};
pub use funds::run_funds_story;
pub use replica::run_replica_story;
pub use sealing::{check_v1_fixture_resealed, run_sealing_story, v1_fixture};

use crm_domain::ports::Storage;

/// Runs the whole story on an empty store.
pub async fn run_story<S: Storage + ?Sized>(store: &S) {
    packs::packs(store).await;
    hosts::hosts(store).await;
    batches::batches(store).await;
    journal::journal(store).await;
    runs::access_checks(store).await;
    runs::reconcile_runs(store).await;
    operations::operations(store).await;
    operations::idempotency(store).await;
    leases::leases(store).await;
    sessions::sessions(store).await;
    sessions::audit(store).await;
}
