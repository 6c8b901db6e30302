//! Cross-crate tests of crm-reconcile against the simulator (crm-testkit).

mod cost;
mod drift;
mod env;
mod funds;
mod monitors;
mod scheduler;
mod shared;
mod unreachable;
