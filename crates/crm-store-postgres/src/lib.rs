#![doc = include_str!("../README.md")]

mod error;
pub mod migrations;
mod repo;
mod reseal;
mod sql;
mod store;

pub use error::{Error, Result};
pub use store::{
    DEFAULT_POOL_SIZE, PASSWORD_FILE_ENV, PgTarget, PostgresStore, is_postgres_url,
    options_from_env,
};
