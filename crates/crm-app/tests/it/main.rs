//! crm-app end to end against the simulator.

mod quickstart;
mod runner;
