//! Lifecycle against the simulator: re-running, fully_ready, rollback.
