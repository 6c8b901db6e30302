//! The client handle: the state every clone shares behind one `Arc`.

use super::settings::{AdminKey, MAX_PAGE_SIZE, RetryPolicy};
use secrecy::SecretString;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A typed async client for one sub2api host.
///
/// Cloning is cheap and clones share the connection pool and the request
/// counter.
#[derive(Clone)]
pub struct Sub2apiClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub http: reqwest::Client,
    pub base: String,
    pub admin_key: AdminKey,
    pub timeout: Duration,
    pub sse_timeout: Duration,
    pub page_size: AtomicU32,
    pub pages_in_flight: usize,
    pub max_body: usize,
    /// The base URL's host, for errors.
    pub host_label: String,
    pub retry: RetryPolicy,
    pub requests: Arc<AtomicU32>,
}

impl fmt::Debug for Sub2apiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sub2apiClient")
            .field("base_url", &self.inner.base)
            .field("admin_key", &self.inner.admin_key)
            .field("timeout", &self.inner.timeout)
            .field("page_size", &self.page_size())
            .finish()
    }
}

impl Sub2apiClient {
    /// The normalized base URL.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// Page size used by listings.
    pub fn page_size(&self) -> u32 {
        self.inner.page_size.load(Ordering::Relaxed)
    }

    /// Changes the listing page size, e.g. after a probe found the host's maximum.
    pub fn set_page_size(&self, size: u32) {
        self.inner
            .page_size
            .store(size.clamp(1, MAX_PAGE_SIZE), Ordering::Relaxed);
    }

    /// Number of HTTP requests sent through this client and its clones,
    /// retries included.
    pub fn request_count(&self) -> u32 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    pub(crate) fn admin_secret(&self) -> &SecretString {
        self.inner.admin_key.secret()
    }
}
