//! crm's reliability suite (one test binary). Sizes come from
//! `crm_reliability::Budget`: bounded for CI, long with
//! `CRM_RELIABILITY_LONG=1` (`scripts/reliability.sh`). Each test prints one
//! `PROMISE <name> trials=<n> violations=<m>` line.

mod bad_input;
mod canary;
mod crash;
mod fuzz;
mod load;
mod replicas;
mod served;
mod state_machine;
mod world;
