//! crm-evidence end to end against in-process simulators.

mod sim_runs;
mod snapshots;
