//! A client's defaults and the settings types that carry no client state.

use secrecy::SecretString;
use std::fmt;
use std::time::Duration;

/// Page size used until a probe shows the host accepts more (docs/sub2api-contract.md §2.3:
/// 100 is the maximum of December-2025 hosts).
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Largest page size newer hosts accept.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// Default per-call timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default timeout of the account test, which waits for an upstream completion.
pub const DEFAULT_SSE_TIMEOUT: Duration = Duration::from_secs(120);

/// Largest answer read from a host or an upstream, unless configured
/// ([`ClientBuilder::max_body_bytes`](crate::ClientBuilder::max_body_bytes)). sub2api's single-object answers are
/// a few KiB; list pages get [`PAGE_ITEM_BYTES`] per requested item on top.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Allowance per requested item of a list page (a page of 1000 may carry
/// 1000 accounts with long credentials and extras).
pub const PAGE_ITEM_BYTES: usize = 16 * 1024;

/// Pages of one listing requested at once after the first.
pub const PAGES_IN_FLIGHT: usize = 4;

/// `User-Agent` of clients this crate builds.
pub(crate) const DEFAULT_USER_AGENT: &str = concat!("crm-sub2api/", env!("CARGO_PKG_VERSION"));

/// A host's admin API key (`admin-` + 64 hex), sent as `x-api-key`.
///
/// `Debug` never shows the key.
#[derive(Clone)]
pub struct AdminKey(SecretString);

impl AdminKey {
    /// Wraps the key.
    pub fn new(key: SecretString) -> Self {
        AdminKey(key)
    }

    /// The key, for the HTTP layer.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

impl From<SecretString> for AdminKey {
    fn from(key: SecretString) -> Self {
        AdminKey(key)
    }
}

impl fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminKey([redacted])")
    }
}

/// How failed reads and deletes are retried. Creates and updates never are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}
