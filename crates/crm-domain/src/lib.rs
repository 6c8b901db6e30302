//! `crm-domain`: the nouns, vocabularies and ports of crm.
//!
//! Everything here is data and traits. The crate performs no I/O and names no
//! runtime, HTTP stack or database: adapters (`crm-sub2api`, `crm-store`)
//! implement the ports in [`ports`], and the use-case crates (`crm-provision`,
//! `crm-access`, `crm-reconcile`) are written against them.
//!
//! The words used by the types in [`vocab`] are the words of docs/design.md
//! (`docs/ARCHITECTURE.md` links it); they are what the CLI, the HTTP API and
//! the web console print, so renaming a variant is an interface change.

pub mod access;
pub mod batch;
pub mod funds;
pub mod host;
pub mod ids;
pub mod observed;
pub mod ops;
pub mod ownership;
pub mod plan;
pub mod ports;
pub mod reconcile;
pub mod secret;
pub mod spec;
pub mod status;
pub mod vocab;

pub use ids::*;
pub use secret::{Fingerprint, KeyFingerprinter, SecretString};
pub use vocab::*;
