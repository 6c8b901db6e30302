#![doc = include_str!("../README.md")]

// Layers, each importing only from the ones above it in this list (no circle):
// error, faults, ids, profile, reply, upstream (pure) → model (the state) →
// shared, providers → handlers (admin/*, gateway, user, control) → server.
mod admin;
mod control;
mod error;
mod faults;
mod gateway;
mod ids;
mod model;
mod profile;
mod providers;
mod reply;
mod server;
mod shared;
mod upstream;
mod user;

pub use control::{AccountMutation, FaultAction, FaultSpec, LOG_CAP, OBJECT_KINDS, RequestRecord};
pub use profile::Profile;
pub use server::{SimConfig, SimHandle, SimServer};
pub use upstream::Behaviour;

pub use error::{Result, SimError};
