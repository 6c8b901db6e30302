//! `crm-reliability`: the shared helpers of crm's reliability suite.
//!
//! The suite itself lives in `tests/it/` (one test binary): the
//! state-machine property test over `crm-app` and `crm-sim`, the SIGKILL
//! crash test and the load test against the real `crm-server` binary, two
//! real replicas on one PostgreSQL database (when `CRM_TEST_POSTGRES_URL`
//! names one), the
//! fuzz regression corpus and a seeded pseudo-fuzz, the bad-input tour and
//! the secrets canary. This library holds what those tests share: how big a
//! run is ([`budget`]), the invariants read from a simulator dump and the
//! store ([`invariants`]), raw database checks ([`db`]), locating and
//! running the real binaries ([`bins`]) and the decoder entry points the
//! cargo-fuzz targets share ([`fuzzing`]).
//!
//! Nothing in product code depends on this crate.

pub mod bins;
pub mod budget;
pub mod db;
pub mod fuzzing;
pub mod invariants;

pub use budget::{Budget, Tally};
