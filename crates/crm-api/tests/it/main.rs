//! crm-api end to end: a real server on port 0 over a temp database, driving
//! a crm-sim host, spoken to through HTTP only.

mod auth;
mod chain;
mod credentials;
mod funds;
mod idempotency;
mod lifecycle;
mod limits;
mod openapi;
mod status;
mod support;

pub use support::*;
