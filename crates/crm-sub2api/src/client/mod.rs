//! The HTTP core: configuration, authentication, timeouts, retries, the
//! request counter and pagination. Resource methods live in [`crate::admin`],
//! [`crate::user`], [`crate::gateway`] and [`crate::probe`].
//!
//! `settings` holds the defaults and the key and retry types; `handle` the
//! shared client state; `builder` how a client is configured; `call` how one
//! request is built, sent, retried (reads and deletes only, docs/design.md
//! §5 "Crash safety") and read within its size limit; `pages` how listings
//! are read. This module only re-exports; its parts import one way:
//! `pages` -> `call` -> `handle` -> `settings`, and `builder` -> `handle`.

mod builder;
mod call;
mod handle;
mod pages;
mod settings;

pub use builder::ClientBuilder;
pub(crate) use builder::{host_label, http_client, normalize_base_url};
pub(crate) use call::{Auth, Call, ReadError, decode, error_chain, read_capped, response_head};
pub use handle::Sub2apiClient;
pub(crate) use settings::DEFAULT_USER_AGENT;
pub use settings::{
    AdminKey, DEFAULT_MAX_BODY_BYTES, DEFAULT_PAGE_SIZE, DEFAULT_SSE_TIMEOUT, DEFAULT_TIMEOUT,
    MAX_PAGE_SIZE, PAGE_ITEM_BYTES, PAGES_IN_FLIGHT, RetryPolicy,
};
