//! The storage ports of `crm-domain`, implemented over SQL. One module per
//! group of ports; every write runs in one `BEGIN IMMEDIATE` transaction.

mod batches;
mod checks;
mod funds;
mod hosts;
mod ops;
mod packs;
mod reconcile;
mod sessions;
