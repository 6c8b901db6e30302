//! The HTTP core: configuration, authentication, timeouts, retries, the
//! request counter and pagination. Resource methods live in [`crate::admin`],
//! [`crate::user`], [`crate::gateway`] and [`crate::probe`].

use crate::envelope::{Page, RawResponse};
use crate::error::{Error, Result};
use backon::{ExponentialBuilder, Retryable};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

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
/// ([`ClientBuilder::max_body_bytes`]). sub2api's single-object answers are
/// a few KiB; list pages get [`PAGE_ITEM_BYTES`] per requested item on top.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Allowance per requested item of a list page (a page of 1000 may carry
/// 1000 accounts with long credentials and extras).
pub const PAGE_ITEM_BYTES: usize = 16 * 1024;

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
    /// page may be larger by [`PAGE_ITEM_BYTES`] per requested item. A
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

/// `User-Agent` of clients this crate builds.
pub(crate) const DEFAULT_USER_AGENT: &str = concat!("crm-sub2api/", env!("CARGO_PKG_VERSION"));

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

/// The `Location` host of a 3xx, never its path or query.
pub(crate) fn location_host(resp: &reqwest::Response) -> Option<String> {
    let loc = resp
        .headers()
        .get(reqwest::header::LOCATION)?
        .to_str()
        .ok()?;
    match resp.url().join(loc) {
        Ok(u) => u.host_str().map(str::to_owned),
        Err(_) => None,
    }
}

/// Why a bounded read stopped.
pub(crate) enum ReadError {
    Transport(reqwest::Error),
    TooLarge,
}

/// Reads a body up to `limit` bytes; a longer one (announced or sent) stops
/// the read without holding more than `limit` bytes.
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    limit: usize,
) -> std::result::Result<bytes::Bytes, ReadError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Transport)? {
        if out.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

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

/// Who a request authenticates as.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    None,
    /// `x-api-key: <admin key>`.
    Admin,
    /// `Authorization: Bearer <token>` (a user JWT or a gateway key).
    Bearer(&'a SecretString),
}

/// One request before it is sent.
pub(crate) struct Call<'a> {
    pub method: Method,
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Value>,
    pub auth: Auth<'a>,
    pub idempotency_key: Option<&'a str>,
    pub timeout: Option<Duration>,
    /// Body limit of this call when it differs from the client's (list pages).
    pub max_body: Option<usize>,
    /// Fixed protocol headers (e.g. `anthropic-version`); never secrets.
    pub headers: Vec<(&'static str, &'static str)>,
}

impl fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body may carry credentials; only its presence is shown.
        f.debug_struct("Call")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("has_body", &self.body.is_some())
            .finish()
    }
}

impl<'a> Call<'a> {
    pub fn new(method: Method, path: impl Into<String>, auth: Auth<'a>) -> Self {
        Call {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            auth,
            idempotency_key: None,
            timeout: None,
            max_body: None,
            headers: Vec::new(),
        }
    }

    pub fn query(mut self, k: &'static str, v: impl ToString) -> Self {
        self.query.push((k, v.to_string()));
        self
    }

    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn retryable(&self) -> bool {
        // Only reads and deletes: a create that timed out may have been
        // committed, and repeating it makes duplicates (docs/design.md §5 "Crash safety").
        self.method == Method::GET || self.method == Method::DELETE
    }
}

/// What one attempt produced, for the retry loop.
enum Attempt {
    /// A status worth retrying (502/503/504); kept to report if retries run out.
    Status(RawResponse),
    Failed(Error),
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

    /// Sends a call, retrying reads and deletes on transient failures.
    pub(crate) async fn send(&self, call: &Call<'_>) -> Result<RawResponse> {
        if !call.retryable() || self.inner.retry.max_retries == 0 {
            return self.send_once(call).await;
        }
        let policy = ExponentialBuilder::default()
            .with_min_delay(self.inner.retry.min_delay)
            .with_max_delay(self.inner.retry.max_delay)
            .with_max_times(self.inner.retry.max_retries)
            .with_jitter();
        let attempt = || async {
            match self.send_once(call).await {
                Ok(raw) if matches!(raw.status, 502..=504) => Err(Attempt::Status(raw)),
                Ok(raw) => Ok(raw),
                Err(e) => Err(Attempt::Failed(e)),
            }
        };
        let outcome = attempt
            .retry(policy)
            .when(|a| match a {
                Attempt::Status(_) => true,
                Attempt::Failed(e) => e.is_transient(),
            })
            .notify(|a, after| {
                let what = match a {
                    Attempt::Status(r) => format!("status {}", r.status),
                    Attempt::Failed(e) => e.to_string(),
                };
                tracing::debug!(method = %call.method, path = %call.path, %what, ?after, "retrying");
            })
            .await;
        match outcome {
            Ok(raw) | Err(Attempt::Status(raw)) => Ok(raw),
            Err(Attempt::Failed(e)) => Err(e),
        }
    }

    /// Builds the reqwest request of a call (auth headers marked sensitive).
    pub(crate) fn request(&self, call: &Call<'_>) -> Result<reqwest::RequestBuilder> {
        let url = format!("{}{}", self.inner.base, call.path);
        let mut rb = self
            .inner
            .http
            .request(call.method.clone(), url)
            .timeout(call.timeout.unwrap_or(self.inner.timeout));
        if !call.query.is_empty() {
            rb = rb.query(&call.query);
        }
        match call.auth {
            Auth::None => {}
            Auth::Admin => {
                rb = rb.header(
                    "x-api-key",
                    sensitive(self.admin_secret(), "", "admin key")?,
                );
            }
            Auth::Bearer(token) => {
                rb = rb.header(
                    reqwest::header::AUTHORIZATION,
                    sensitive(token, "Bearer ", "bearer token")?,
                );
            }
        }
        if let Some(key) = call.idempotency_key {
            let v = HeaderValue::from_str(key).map_err(|_| Error::InvalidSecret {
                what: "idempotency key".into(),
            })?;
            rb = rb.header("Idempotency-Key", v);
        }
        for (name, value) in &call.headers {
            rb = rb.header(*name, *value);
        }
        if let Some(body) = &call.body {
            rb = rb.json(body);
        }
        Ok(rb)
    }

    /// Sends one request and reads the whole body.
    pub(crate) async fn send_once(&self, call: &Call<'_>) -> Result<RawResponse> {
        let rb = self.request(call)?;
        let started = Instant::now();
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let resp = rb
            .send()
            .await
            .map_err(|e| self.transport_error(e, call, started))?;
        let (status, content_type, retry_after) = response_head(&resp);
        self.refuse_redirect(&resp)?;
        let limit = call.max_body.unwrap_or(self.inner.max_body);
        let body = match read_capped(resp, limit).await {
            Ok(b) => b,
            Err(ReadError::Transport(e)) => return Err(self.transport_error(e, call, started)),
            Err(ReadError::TooLarge) => return Err(self.too_large("response body", limit)),
        };
        Ok(RawResponse {
            method: call.method.to_string(),
            path: call.path.clone(),
            status,
            content_type,
            retry_after,
            body,
        })
    }

    /// A 3xx is an error: redirects are never followed.
    pub(crate) fn refuse_redirect(&self, resp: &reqwest::Response) -> Result<()> {
        if resp.status().is_redirection() {
            return Err(Error::Redirected {
                status: resp.status().as_u16(),
                location_host: location_host(resp),
            });
        }
        Ok(())
    }

    pub(crate) fn too_large(&self, what: &str, limit: usize) -> Error {
        Error::TooLarge {
            host: self.inner.host_label.clone(),
            what: what.to_owned(),
            limit,
        }
    }

    pub(crate) fn transport_error(
        &self,
        e: reqwest::Error,
        call: &Call<'_>,
        started: Instant,
    ) -> Error {
        if e.is_timeout() {
            Error::Timeout {
                method: call.method.to_string(),
                path: call.path.clone(),
                after: started.elapsed(),
            }
        } else if e.is_connect() {
            Error::Connect {
                detail: error_chain(&e),
            }
        } else {
            Error::Transport {
                method: call.method.to_string(),
                path: call.path.clone(),
                detail: error_chain(&e),
            }
        }
    }

    /// Sends a call and returns the envelope's `data`.
    pub(crate) async fn data(&self, call: Call<'_>, secrets: &[&SecretString]) -> Result<Value> {
        let raw = self.send(&call).await?;
        let mut all: Vec<&SecretString> = vec![self.admin_secret()];
        all.extend_from_slice(secrets);
        if let Auth::Bearer(t) = call.auth {
            all.push(t);
        }
        raw.into_data(&all)
    }

    /// Sends a call and decodes the envelope's `data` as `T`.
    pub(crate) async fn typed<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
        secrets: &[&SecretString],
    ) -> Result<T> {
        let value = self.data(call, secrets).await?;
        decode(value)
    }

    /// Fetches one page of a paginated listing.
    pub async fn list_page<T: DeserializeOwned>(
        &self,
        path: &str,
        filters: &[(&'static str, String)],
        page: u32,
        page_size: u32,
    ) -> Result<Page<T>> {
        self.page_as(path, filters, page, page_size, Auth::Admin)
            .await
    }

    pub(crate) async fn page_as<T: DeserializeOwned>(
        &self,
        path: &str,
        filters: &[(&'static str, String)],
        page: u32,
        page_size: u32,
        auth: Auth<'_>,
    ) -> Result<Page<T>> {
        let mut call = Call::new(Method::GET, path, auth);
        call.query.extend(filters.iter().cloned());
        let mut call = call.query("page", page).query("page_size", page_size);
        call.max_body = Some(
            self.inner
                .max_body
                .saturating_add((page_size as usize).saturating_mul(PAGE_ITEM_BYTES)),
        );
        self.typed(call, &[]).await
    }

    /// Every item of a paginated listing at the client's page size.
    ///
    /// The first page says how many there are; the rest are then fetched
    /// several at a time ([`ClientBuilder::pages_in_flight`]) (in order, stopping at an empty page),
    /// so a long listing costs two round trips, not one per page. A host
    /// that reports no totals is read page by page until a short page.
    pub(crate) async fn list_all_as<T: DeserializeOwned>(
        &self,
        path: &str,
        filters: &[(&'static str, String)],
        auth: Auth<'_>,
    ) -> Result<Vec<T>> {
        self.list_all_sized(path, filters, auth, self.page_size())
            .await
    }

    /// [`Self::list_all_as`] at a page size of the caller's, for listings
    /// whose host handler caps it below the host-wide maximum.
    pub(crate) async fn list_all_sized<T: DeserializeOwned>(
        &self,
        path: &str,
        filters: &[(&'static str, String)],
        auth: Auth<'_>,
        size: u32,
    ) -> Result<Vec<T>> {
        use futures::{StreamExt, TryStreamExt};
        let first: Page<T> = self.page_as(path, filters, 1, size, auth).await?;
        let Some(pages) = first.page_count() else {
            return self
                .list_rest_sequentially(path, filters, auth, first, size)
                .await;
        };
        let mut out = first.items;
        if pages <= 1 || out.is_empty() {
            return Ok(out);
        }
        let last = u32::try_from(pages).unwrap_or(u32::MAX);
        let rest: Vec<Vec<T>> = futures::stream::iter(2..=last)
            .map(|page| self.page_as::<T>(path, filters, page, size, auth))
            .buffered(self.inner.pages_in_flight)
            .map_ok(|p| p.items)
            // A host that reports more pages than it has ends at an empty one.
            .try_take_while(|items| std::future::ready(Ok(!items.is_empty())))
            .try_collect()
            .await?;
        out.extend(rest.into_iter().flatten());
        Ok(out)
    }

    /// The pages after `first` of a host that reports no totals: a short
    /// page is the last one.
    async fn list_rest_sequentially<T: DeserializeOwned>(
        &self,
        path: &str,
        filters: &[(&'static str, String)],
        auth: Auth<'_>,
        first: Page<T>,
        size: u32,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut page = 1u32;
        let mut next = Some(first);
        loop {
            let p: Page<T> = match next.take() {
                Some(p) => p,
                None => self.page_as(path, filters, page, size, auth).await?,
            };
            let got = p.items.len();
            let count = p.page_count();
            out.extend(p.items);
            let last = match count {
                Some(pages) => i64::from(page) >= pages,
                // Without totals, a short page is the last one.
                None => got < size as usize,
            };
            // A host that reports more pages but returns nothing would loop forever.
            if last || got == 0 || page == u32::MAX {
                break;
            }
            page += 1;
        }
        Ok(out)
    }

    /// Every item of an admin listing.
    pub async fn list_all<T: DeserializeOwned>(
        &self,
        path: &str,
        filters: &[(&'static str, String)],
    ) -> Result<Vec<T>> {
        self.list_all_as(path, filters, Auth::Admin).await
    }
}

/// Pages of one listing requested at once after the first.
pub const PAGES_IN_FLIGHT: usize = 4;

/// Decodes envelope data into a wire type, keeping secrets out of the error.
pub(crate) fn decode<T: DeserializeOwned>(value: Value) -> Result<T> {
    T::deserialize(&value).map_err(|e| Error::Decode {
        status: 200,
        detail: format!("unexpected data shape: {e}"),
        body_excerpt: crate::scrub::excerpt(value.to_string().as_bytes(), &[]),
    })
}

fn sensitive(secret: &SecretString, prefix: &str, what: &str) -> Result<HeaderValue> {
    let mut v =
        HeaderValue::from_str(&format!("{prefix}{}", secret.expose_secret())).map_err(|_| {
            Error::InvalidSecret {
                what: what.to_owned(),
            }
        })?;
    v.set_sensitive(true);
    Ok(v)
}

pub(crate) fn response_head(resp: &reqwest::Response) -> (u16, String, Option<Duration>) {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    (status, content_type, retry_after)
}

/// A reqwest error with its causes, which is where "connection refused" lives.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
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

    #[test]
    fn auth_headers_are_marked_sensitive() {
        let client = Sub2apiClient::new(
            "https://relay.example.com",
            AdminKey::new(SecretString::from("admin-CANARY-0123456789")),
        )
        .unwrap();
        let admin = client
            .request(&Call::new(
                Method::GET,
                "/api/v1/admin/accounts",
                Auth::Admin,
            ))
            .unwrap()
            .build()
            .unwrap();
        let v = admin.headers().get("x-api-key").unwrap();
        assert!(v.is_sensitive());
        assert!(!format!("{:?}", admin.headers()).contains("CANARY"));

        let token = SecretString::from("sk-CANARY-user-key");
        let user = client
            .request(&Call::new(Method::GET, "/v1/models", Auth::Bearer(&token)))
            .unwrap()
            .build()
            .unwrap();
        assert!(user.headers().get("x-api-key").is_none());
        let v = user.headers().get(reqwest::header::AUTHORIZATION).unwrap();
        assert!(v.is_sensitive());
        assert!(!format!("{user:?}").contains("CANARY"));
    }
}
