//! crm-app end to end against the simulator.

mod packs;
mod quickstart;
mod runner;
mod upstream_probe;
