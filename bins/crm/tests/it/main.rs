//! The `crm` binary end to end: the quickstart, read commands as JSON
//! snapshots, secrets, exit codes, and SIGKILL during an import.

mod crash;
mod exit_codes;
mod quickstart;
mod reads;
mod secrets;
mod support;
mod writes;
