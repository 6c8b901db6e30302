//! Integration tests of the PostgreSQL store: the shared storage contract
//! (the same story the SQLite adapter runs), the replica contract (two
//! stores on one database racing for leases and idempotency keys), opening
//! rules, and secrets at rest.
//!
//! They need a database: `CRM_TEST_POSTGRES_URL` (e.g.
//! `postgres://crm@127.0.0.1:55491/postgres`; `.ci/run` starts a throwaway
//! cluster and sets it). Without it every test prints that it was skipped
//! and returns. Each test works in a fresh schema of its own.

mod contract;
mod migrations;
mod opening;
mod support;
