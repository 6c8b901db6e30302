//! Integration tests of the SQLite store: the storage contract on a real
//! file, schema upgrades, lease races between connections and processes,
//! crash durability of the journal, and secrets at rest.

mod canary;
mod contract;
mod durability;
mod env;
mod funds;
mod leases;
mod migrations;
mod seal_check;
mod support;
