#![doc = include_str!("../README.md")]

mod clock;
pub mod columns;
mod conn;
pub mod contract;
mod error;
mod keys;
pub mod migrations;
mod repo;
pub mod reseal;
pub mod seal_check;
mod sql;
mod store;

pub use clock::{ManualClock, SystemClock};
pub use error::{Error, Result};
pub use keys::{
    KeyBytes, PEPPER_FILE_ENV, SEAL_KEY_ENV, SEAL_KEY_FILE_ENV, SealKeySource, Sealer,
    load_or_create_key, parse_key_text,
};
pub use store::{SqliteStore, StoreOptions, default_keys_dir};
