//! One request: who it authenticates as, how it is built (auth headers
//! marked sensitive), sent, retried and read within its size limit, and how
//! its transport failures read.

use super::handle::Sub2apiClient;
use crate::envelope::RawResponse;
use crate::error::{Error, Result};
use backon::{ExponentialBuilder, Retryable};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

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
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::AdminKey;

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
