//! Configuring a client: [`ClientBuilder`], the base URL's checks, and the
//! HTTP client this crate builds (which follows no redirect).

use super::handle::{Inner, Sub2apiClient};
use super::settings::{
    AdminKey, DEFAULT_MAX_BODY_BYTES, DEFAULT_PAGE_SIZE, DEFAULT_SSE_TIMEOUT, DEFAULT_TIMEOUT,
    DEFAULT_USER_AGENT, MAX_PAGE_SIZE, PAGES_IN_FLIGHT, RetryPolicy,
};
use crate::error::{Error, Result};
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Configures a [`Sub2apiClient`].
///
/// ```
/// use crm_sub2api::{AdminKey, Sub2apiClient};
/// use std::time::Duration;
///
/// let client = Sub2apiClient::builder(
///     "https://relay.example.com",
///     AdminKey::new("admin-0123".to_owned().into()),
/// )
/// .timeout(Duration::from_secs(10))
/// .page_size(1000)
/// .user_agent("my-tool/1.0")
/// .build()?;
/// assert_eq!(client.page_size(), 1000);
/// # Ok::<(), crm_sub2api::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    admin_key: AdminKey,
    timeout: Duration,
    sse_timeout: Duration,
    connect_timeout: Duration,
    page_size: u32,
    user_agent: String,
    retry: RetryPolicy,
    http: Option<reqwest::Client>,
    pages_in_flight: usize,
    max_body: usize,
}

impl ClientBuilder {
    /// Pages of one listing requested at once after the first (default
    /// [`PAGES_IN_FLIGHT`]; at least 1, which reads page by page).
    pub fn pages_in_flight(mut self, n: usize) -> Self {
        self.pages_in_flight = n.max(1);
        self
    }

    /// Sends through an existing HTTP client instead of building one.
    ///
    /// Building a client loads the system's TLS roots (milliseconds of CPU
    /// each time), and each client has its own connection pool; a process
    /// that opens many clients (one per host, per operation) shares one.
    /// The given client's connect timeout and `User-Agent` apply instead of
    /// this builder's; [`ClientBuilder::timeout`] still bounds every call.
    /// Build it with `redirect::Policy::none()` (as
    /// [`crate::SharedHttp`] does): a 3xx then ends in [`Error::Redirected`];
    /// a client that follows redirects would carry the admin key along.
    ///
    /// ```
    /// use crm_sub2api::{AdminKey, Sub2apiClient};
    ///
    /// let shared = reqwest::Client::new();
    /// let a = Sub2apiClient::builder("https://a.example.com", AdminKey::new("k1".to_owned().into()))
    ///     .http_client(shared.clone())
    ///     .build()?;
    /// let b = Sub2apiClient::builder("https://b.example.com", AdminKey::new("k2".to_owned().into()))
    ///     .http_client(shared)
    ///     .build()?;
    /// # let _ = (a, b);
    /// # Ok::<(), crm_sub2api::Error>(())
    /// ```
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Largest answer body read (default [`DEFAULT_MAX_BODY_BYTES`]); a list
    /// page may be larger by [`PAGE_ITEM_BYTES`](super::settings::PAGE_ITEM_BYTES) per requested item. A
    /// longer body ends in [`Error::TooLarge`].
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body = limit.max(1);
        self
    }

    /// Timeout of every call except the account test.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Timeout of the account test stream.
    pub fn sse_timeout(mut self, timeout: Duration) -> Self {
        self.sse_timeout = timeout;
        self
    }

    /// Timeout for establishing a connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Page size for listings (clamped to 1..=1000). Use 1000 only on hosts a
    /// probe showed to accept it; older hosts silently clamp to 100.
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = size.clamp(1, MAX_PAGE_SIZE);
        self
    }

    /// `User-Agent` sent with every request.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// Retry policy for reads and deletes.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Validates the base URL and builds the client.
    pub fn build(self) -> Result<Sub2apiClient> {
        let base = normalize_base_url(&self.base_url)?;
        let host_label = host_label(&base);
        let http = match self.http.clone() {
            Some(http) => http,
            None => http_client(&self.user_agent, self.connect_timeout.min(self.timeout)).map_err(
                |detail| Error::InvalidBaseUrl {
                    url: self.base_url.clone(),
                    detail,
                },
            )?,
        };
        Ok(Sub2apiClient {
            inner: Arc::new(Inner {
                http,
                base,
                admin_key: self.admin_key,
                timeout: self.timeout,
                sse_timeout: self.sse_timeout,
                page_size: AtomicU32::new(self.page_size),
                pages_in_flight: self.pages_in_flight,
                max_body: self.max_body,
                host_label,
                retry: self.retry,
                requests: Arc::new(AtomicU32::new(0)),
            }),
        })
    }
}

impl Sub2apiClient {
    /// Starts configuring a client for the host at `base_url` (no trailing `/api`).
    pub fn builder(base_url: impl Into<String>, admin_key: AdminKey) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            admin_key,
            timeout: DEFAULT_TIMEOUT,
            sse_timeout: DEFAULT_SSE_TIMEOUT,
            connect_timeout: Duration::from_secs(10),
            page_size: DEFAULT_PAGE_SIZE,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            retry: RetryPolicy::default(),
            http: None,
            pages_in_flight: PAGES_IN_FLIGHT,
            max_body: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// A client with default settings.
    pub fn new(base_url: impl Into<String>, admin_key: AdminKey) -> Result<Self> {
        Self::builder(base_url, admin_key).build()
    }
}

/// An HTTP client with this crate's settings. It follows no redirect: the
/// admin key (`x-api-key`) survives reqwest's cross-host redirect and
/// 307/308 would re-send bodies carrying upstream keys.
pub(crate) fn http_client(
    user_agent: &str,
    connect_timeout: Duration,
) -> std::result::Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(user_agent)
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("HTTP client could not be built: {e}"))
}

/// Validates a base URL and strips trailing slashes, so paths can be appended.
pub(crate) fn normalize_base_url(raw: &str) -> Result<String> {
    let trimmed = raw.trim().trim_end_matches('/');
    let url = url::Url::parse(trimmed).map_err(|e| Error::InvalidBaseUrl {
        url: raw.to_owned(),
        detail: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::InvalidBaseUrl {
            url: raw.to_owned(),
            detail: "expected an http(s) URL with a host".into(),
        });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::InvalidBaseUrl {
            url: raw.to_owned(),
            detail: "a base URL carries no query or fragment".into(),
        });
    }
    Ok(trimmed.to_owned())
}

/// The host part of a base URL, for errors that name the host.
pub(crate) fn host_label(base: &str) -> String {
    url::Url::parse(base)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| base.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_validated_and_trimmed() {
        assert_eq!(
            normalize_base_url("https://relay.example.com/").unwrap(),
            "https://relay.example.com"
        );
        assert_eq!(
            normalize_base_url("http://10.0.0.1:8080/prefix//").unwrap(),
            "http://10.0.0.1:8080/prefix"
        );
        assert!(normalize_base_url("relay.example.com").is_err());
        assert!(normalize_base_url("ftp://relay.example.com").is_err());
        assert!(normalize_base_url("https://relay.example.com/?x=1").is_err());
    }
}
