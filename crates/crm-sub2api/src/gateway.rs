//! Calls an ordinary client makes: the host's gateway with a user key, and a
//! provider's OpenAI- or Anthropic-compatible API with an upstream key.
//!
//! These are observations, not operations: an HTTP error is data (a
//! [`CallOutcome`] with the status and the error the body carried), and
//! `Err` is reserved for calls that cannot even be attempted (a malformed
//! base URL, a key that cannot go in a header).

use crate::client::{Auth, Call, Sub2apiClient, error_chain, normalize_base_url, response_head};
use crate::envelope::{Code, RawResponse, value_as_text};
use crate::error::{Error, Result};
use crate::scrub::{excerpt, scrub_text};
use crm_domain::observed::{CallOutcome, ModelListing};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Auth-middleware codes of the gateway (docs/sub2api-contract.md §4.3). They arrive as a
/// string `code`; [`CallOutcome::error_type`] carries them verbatim.
pub const MIDDLEWARE_CODES: &[&str] = &[
    "API_KEY_REQUIRED",
    "INVALID_API_KEY",
    "API_KEY_DISABLED",
    "API_KEY_EXPIRED",
    "API_KEY_QUOTA_EXHAUSTED",
    "USER_NOT_FOUND",
    "USER_INACTIVE",
    "INSUFFICIENT_BALANCE",
    "SUBSCRIPTION_NOT_FOUND",
    "SUBSCRIPTION_INVALID",
    "ACCESS_DENIED",
    "GROUP_DELETED",
    "GROUP_DISABLED",
    "USAGE_LIMIT_EXCEEDED",
    "api_key_in_query_deprecated",
];

/// Whether `code` is one of the gateway's auth-middleware codes.
pub fn is_middleware_code(code: &str) -> bool {
    MIDDLEWARE_CODES.contains(&code)
}

/// The body of the smoke completion: one user message, 16 tokens at most.
pub fn smoke_chat_body(model: &str) -> Value {
    json!({
        "model": model,
        "max_tokens": 16,
        "stream": false,
        "messages": [{"role": "user", "content": "Reply with the single word: pong"}],
    })
}

/// The `anthropic-version` every Messages call sends (the version Anthropic's
/// API and the providers' Anthropic endpoints accept).
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The body of the smoke Messages call: one user message, 16 tokens at most.
pub fn smoke_messages_body(model: &str) -> Value {
    json!({
        "model": model,
        "max_tokens": 16,
        "stream": false,
        "messages": [{"role": "user", "content": "Reply with the single word: pong"}],
    })
}

/// A successful answer to a Messages call is an Anthropic message
/// (`{"type":"message","content":[...]}`); anything else in a 2xx (an
/// empty object, a chat completion from a misrouted host) did not do what
/// the call was for.
fn require_message(mut outcome: CallOutcome, body: &Option<Value>) -> CallOutcome {
    if !outcome.ok {
        return outcome;
    }
    let is_message = body.as_ref().is_some_and(|b| {
        b.get("type").and_then(Value::as_str) == Some("message")
            || b.get("content").is_some_and(Value::is_array)
    });
    if !is_message {
        outcome.ok = false;
        outcome.error_type = Some("decode".into());
        outcome.message = Some("the answer is not an Anthropic message".into());
    }
    outcome
}

/// The smoke body with a prompt no other call sends: `(check <token>)`
/// appended, the token unique per call. sub2api d3e73f1 picks a sticky
/// account by a hash of the first message text for every key on the host,
/// whatever the key's group (`service/gateway_service.go`
/// `GenerateSessionHash`, sticky lookup without a group check), so a
/// repeated prompt can be answered by another batch's account and a check
/// would pass for the wrong group. Upstream probes go to the provider
/// directly and keep the fixed body.
fn own_prompt(mut body: Value) -> Value {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    if let Some(Value::String(text)) = body.pointer_mut("/messages/0/content") {
        text.push_str(&format!(" (check {nanos:x}-{n})"));
    }
    body
}

/// What went wrong according to a response body, if anything.
#[derive(Debug, Default, PartialEq)]
struct BodyError {
    error_type: Option<String>,
    error_code: Option<String>,
    message: Option<String>,
}

/// Reads the error a body carries, in every shape a gateway or provider uses:
/// `{error:{type,message,code}}` (OpenAI, Anthropic), `{code:"STRING",message}`
/// (sub2api middleware), `{code:int≠0,message,reason}` (sub2api envelope),
/// `{error:"text"}` and MiniMax's `{base_resp:{status_code≠0,status_msg}}`.
fn body_error(v: &Value) -> Option<BodyError> {
    if let Some(err) = v.get("error") {
        match err {
            Value::Object(o) => {
                return Some(BodyError {
                    error_type: o.get("type").and_then(value_as_text),
                    error_code: o.get("code").and_then(value_as_text),
                    message: o.get("message").and_then(value_as_text),
                });
            }
            Value::String(s) if !s.is_empty() => {
                return Some(BodyError {
                    error_type: Some(s.clone()),
                    error_code: None,
                    message: v.get("message").and_then(value_as_text),
                });
            }
            _ => {}
        }
    }
    match v
        .get("code")
        .and_then(|c| serde_json::from_value::<Code>(c.clone()).ok())
    {
        Some(Code::Text(code)) => {
            return Some(BodyError {
                error_type: Some(code),
                error_code: None,
                message: v.get("message").and_then(value_as_text),
            });
        }
        Some(Code::Int(code)) if code != 0 => {
            return Some(BodyError {
                error_type: v.get("reason").and_then(value_as_text),
                error_code: Some(code.to_string()),
                message: v.get("message").and_then(value_as_text),
            });
        }
        _ => {}
    }
    let base = v.get("base_resp")?;
    let status = base.get("status_code").and_then(Value::as_i64)?;
    (status != 0).then(|| BodyError {
        error_type: None,
        error_code: Some(status.to_string()),
        message: base.get("status_msg").and_then(value_as_text),
    })
}

/// Reduces an answer to a [`CallOutcome`]; also returns the parsed body.
fn reduce(
    raw: &RawResponse,
    latency_ms: u64,
    secrets: &[&SecretString],
) -> (CallOutcome, Option<Value>) {
    let json: Option<Value> = serde_json::from_slice(&raw.body).ok();
    let mut err = json.as_ref().and_then(body_error);
    if err.is_none() {
        if raw.is_html() {
            err = Some(BodyError {
                error_type: Some("unexpected_html".into()),
                message: Some("an HTML page answered instead of the API".into()),
                ..Default::default()
            });
        } else if json.is_none() && raw.is_success() {
            err = Some(BodyError {
                error_type: Some("decode".into()),
                message: Some("the body is not JSON".into()),
                ..Default::default()
            });
        } else if raw.is_plain_route_404() {
            err = Some(BodyError {
                error_type: Some("route_missing".into()),
                message: Some("404 page not found".into()),
                ..Default::default()
            });
        }
    }
    let ok = raw.is_success() && err.is_none();
    let err = err.unwrap_or_default();
    let outcome = CallOutcome {
        status: Some(raw.status),
        ok,
        error_type: err.error_type,
        error_code: err.error_code,
        message: err.message.map(|m| scrub_text(&m, secrets)),
        body_excerpt: excerpt(&raw.body, secrets),
        latency_ms,
        transport_error: None,
    };
    (outcome, json)
}

fn transport_outcome(e: &Error, latency_ms: u64) -> CallOutcome {
    let kind = match e {
        Error::Timeout { .. } => "timeout",
        Error::Connect { .. } => "connect",
        _ => "transport",
    };
    CallOutcome {
        status: None,
        ok: false,
        error_type: Some(kind.into()),
        error_code: None,
        message: None,
        body_excerpt: String::new(),
        latency_ms,
        transport_error: Some(e.to_string()),
    }
}

/// Model ids of a listing, in both item shapes (OpenAI `{id,object,created,
/// owned_by}`, Claude `{id,type,display_name,created_at}`) and under `data`
/// or `models`.
pub fn model_ids(body: &Value) -> Vec<String> {
    let items = body
        .get("data")
        .or_else(|| body.get("models"))
        .and_then(Value::as_array)
        .or_else(|| body.as_array());
    items
        .map(|items| {
            items
                .iter()
                .filter_map(|i| {
                    i.get("id")
                        .or_else(|| i.get("name"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn listing(outcome: CallOutcome, body: Option<Value>) -> ModelListing {
    let model_ids = if outcome.ok {
        body.as_ref().map(model_ids).unwrap_or_default()
    } else {
        Vec::new()
    };
    ModelListing { outcome, model_ids }
}

impl Sub2apiClient {
    async fn gateway_call(
        &self,
        call: Call<'_>,
        key: &SecretString,
    ) -> Result<(CallOutcome, Option<Value>)> {
        let started = Instant::now();
        match self.send_once(&call).await {
            Ok(raw) => Ok(reduce(
                &raw,
                started.elapsed().as_millis() as u64,
                &[key, self.admin_secret()],
            )),
            Err(e @ Error::InvalidSecret { .. }) => Err(e),
            Err(e) => Ok((
                transport_outcome(&e, started.elapsed().as_millis() as u64),
                None,
            )),
        }
    }

    /// `GET /v1/models` with a user key.
    pub async fn gateway_models(&self, key: &SecretString) -> Result<ModelListing> {
        let call = Call::new(Method::GET, "/v1/models", Auth::Bearer(key));
        let (outcome, body) = self.gateway_call(call, key).await?;
        Ok(listing(outcome, body))
    }

    /// A minimal `POST /v1/chat/completions` (16 tokens) with a user key.
    /// An `error` object inside a 200 makes the outcome not ok.
    pub async fn gateway_chat(&self, key: &SecretString, model: &str) -> Result<CallOutcome> {
        let call = Call::new(Method::POST, "/v1/chat/completions", Auth::Bearer(key))
            .json(own_prompt(smoke_chat_body(model)));
        Ok(self.gateway_call(call, key).await?.0)
    }

    /// A minimal `POST /v1/messages` (16 tokens) with a user key, for hosts
    /// without `/v1/chat/completions` (sub2api d3e73f1 routes only
    /// `/v1/messages` and `/v1/responses`, `routes/gateway.go`). The key
    /// goes as a Bearer token, which the gateway's key middleware reads
    /// first (`middleware/api_key_auth.go`, then `x-api-key`). An
    /// Anthropic error (`{"type":"error","error":{..}}`), also inside a
    /// 200, makes the outcome not ok.
    pub async fn gateway_messages(&self, key: &SecretString, model: &str) -> Result<CallOutcome> {
        let mut call = Call::new(Method::POST, "/v1/messages", Auth::Bearer(key))
            .json(own_prompt(smoke_messages_body(model)));
        call.headers.push(("anthropic-version", ANTHROPIC_VERSION));
        let (outcome, body) = self.gateway_call(call, key).await?;
        Ok(require_message(outcome, &body))
    }
}

/// Where upstream calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamRouting {
    /// To the provider's own URL.
    Direct,
    /// Through a prefix: `https://api.deepseek.com/x` becomes
    /// `{prefix}/api.deepseek.com/x`. The crm simulator serves upstreams at
    /// `{sim}/__upstream/{authority}/{path}`, so tests and demos need no network.
    ViaPrefix(String),
}

impl UpstreamRouting {
    /// The URL actually called for `url`.
    pub fn route(&self, url: &str) -> Result<String> {
        let parsed = url::Url::parse(url).map_err(|e| Error::InvalidBaseUrl {
            url: url.to_owned(),
            detail: e.to_string(),
        })?;
        match self {
            UpstreamRouting::Direct => Ok(url.to_owned()),
            UpstreamRouting::ViaPrefix(prefix) => {
                let host = parsed.host_str().ok_or_else(|| Error::InvalidBaseUrl {
                    url: url.to_owned(),
                    detail: "no host".into(),
                })?;
                let authority = match parsed.port() {
                    Some(p) => format!("{host}:{p}"),
                    None => host.to_owned(),
                };
                let query = parsed.query().map(|q| format!("?{q}")).unwrap_or_default();
                Ok(format!(
                    "{}/{authority}{}{query}",
                    prefix.trim_end_matches('/'),
                    parsed.path()
                ))
            }
        }
    }
}

/// How an upstream call carries the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyStyle {
    /// `Authorization: Bearer <key>` (OpenAI-compatible APIs).
    Bearer,
    /// `x-api-key: <key>` and `anthropic-version` (Anthropic-compatible APIs).
    Anthropic,
}

/// Calls a provider's OpenAI-compatible API (`{base}/models`,
/// `{base}/chat/completions`) or Anthropic-compatible API
/// (`{base}/v1/messages`) with an upstream key, to tell an upstream problem
/// from a host problem.
#[derive(Debug, Clone)]
pub struct UpstreamClient {
    http: reqwest::Client,
    routing: UpstreamRouting,
    timeout: Duration,
    requests: Arc<AtomicU32>,
}

impl UpstreamClient {
    /// A client with the default timeout.
    pub fn new(routing: UpstreamRouting) -> Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("crm-sub2api/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            // The upstream key must reach only the provider's recorded URL.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Transport {
                method: String::new(),
                path: String::new(),
                detail: format!("HTTP client could not be built: {e}"),
            })?;
        Ok(UpstreamClient {
            http,
            routing,
            timeout: crate::client::DEFAULT_TIMEOUT,
            requests: Arc::new(AtomicU32::new(0)),
        })
    }

    /// Per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Where calls go.
    pub fn routing(&self) -> &UpstreamRouting {
        &self.routing
    }

    /// Requests sent so far.
    pub fn request_count(&self) -> u32 {
        self.requests.load(Ordering::Relaxed)
    }

    async fn exchange(
        &self,
        method: Method,
        base_url: &str,
        suffix: &str,
        key: &SecretString,
        body: Option<Value>,
    ) -> Result<(CallOutcome, Option<Value>)> {
        self.exchange_as(method, base_url, suffix, key, KeyStyle::Bearer, body)
            .await
    }

    async fn exchange_as(
        &self,
        method: Method,
        base_url: &str,
        suffix: &str,
        key: &SecretString,
        style: KeyStyle,
        body: Option<Value>,
    ) -> Result<(CallOutcome, Option<Value>)> {
        let base = normalize_base_url(base_url)?;
        let url = self.routing.route(&format!("{base}{suffix}"))?;
        let value = match style {
            KeyStyle::Bearer => format!("Bearer {}", key.expose_secret()),
            KeyStyle::Anthropic => key.expose_secret().to_owned(),
        };
        let mut auth = HeaderValue::from_str(&value).map_err(|_| Error::InvalidSecret {
            what: "upstream key".into(),
        })?;
        auth.set_sensitive(true);
        let rb = self.http.request(method.clone(), url).timeout(self.timeout);
        let mut rb = match style {
            KeyStyle::Bearer => rb.header(AUTHORIZATION, auth),
            KeyStyle::Anthropic => rb
                .header("x-api-key", auth)
                .header("anthropic-version", ANTHROPIC_VERSION),
        };
        if let Some(b) = &body {
            rb = rb.json(b);
        }
        let started = Instant::now();
        self.requests.fetch_add(1, Ordering::Relaxed);
        let fail = |e: reqwest::Error| {
            let err = if e.is_timeout() {
                Error::Timeout {
                    method: method.to_string(),
                    path: suffix.to_owned(),
                    after: started.elapsed(),
                }
            } else if e.is_connect() {
                Error::Connect {
                    detail: error_chain(&e),
                }
            } else {
                Error::Transport {
                    method: method.to_string(),
                    path: suffix.to_owned(),
                    detail: error_chain(&e),
                }
            };
            transport_outcome(&err, started.elapsed().as_millis() as u64)
        };
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => return Ok((fail(e), None)),
        };
        let (status, content_type, retry_after) = response_head(&resp);
        let body =
            match crate::client::read_capped(resp, crate::client::DEFAULT_MAX_BODY_BYTES).await {
                Ok(b) => b,
                Err(crate::client::ReadError::Transport(e)) => return Ok((fail(e), None)),
                Err(crate::client::ReadError::TooLarge) => {
                    let err = Error::TooLarge {
                        host: crate::client::host_label(&base),
                        what: "upstream answer".into(),
                        limit: crate::client::DEFAULT_MAX_BODY_BYTES,
                    };
                    return Ok((
                        transport_outcome(&err, started.elapsed().as_millis() as u64),
                        None,
                    ));
                }
            };
        let raw = RawResponse {
            method: method.to_string(),
            path: suffix.to_owned(),
            status,
            content_type,
            retry_after,
            body,
        };
        Ok(reduce(&raw, started.elapsed().as_millis() as u64, &[key]))
    }

    /// `GET {base}/models`.
    pub async fn models(&self, base_url: &str, key: &SecretString) -> Result<ModelListing> {
        let (outcome, body) = self
            .exchange(Method::GET, base_url, "/models", key, None)
            .await?;
        Ok(listing(outcome, body))
    }

    /// A minimal `POST {base}/chat/completions` (16 tokens).
    pub async fn chat(
        &self,
        base_url: &str,
        key: &SecretString,
        model: &str,
    ) -> Result<CallOutcome> {
        Ok(self
            .exchange(
                Method::POST,
                base_url,
                "/chat/completions",
                key,
                Some(smoke_chat_body(model)),
            )
            .await?
            .0)
    }

    /// A minimal `POST {base}/v1/messages` (16 tokens) with Anthropic
    /// headers (`x-api-key`, `anthropic-version`): the call sub2api makes
    /// for an `anthropic` apikey account (`base_url + "/v1/messages"`,
    /// `service/gateway_service.go` at d3e73f1).
    pub async fn messages(
        &self,
        base_url: &str,
        key: &SecretString,
        model: &str,
    ) -> Result<CallOutcome> {
        let (outcome, body) = self
            .exchange_as(
                Method::POST,
                base_url,
                "/v1/messages",
                key,
                KeyStyle::Anthropic,
                Some(smoke_messages_body(model)),
            )
            .await?;
        Ok(require_message(outcome, &body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_errors_in_every_shape() {
        let cases = [
            (
                r#"{"error":{"type":"upstream_error","message":"m","code":1113}}"#,
                Some("upstream_error"),
                Some("1113"),
            ),
            (
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#,
                Some("rate_limit_error"),
                None,
            ),
            (
                r#"{"code":"INSUFFICIENT_BALANCE","message":"no money"}"#,
                Some("INSUFFICIENT_BALANCE"),
                None,
            ),
            (
                r#"{"base_resp":{"status_code":1004,"status_msg":"auth failed"}}"#,
                None,
                Some("1004"),
            ),
        ];
        for (body, t, c) in cases {
            let v: Value = serde_json::from_str(body).unwrap();
            let e = body_error(&v).unwrap_or_else(|| panic!("no error found in {body}"));
            assert_eq!(e.error_type.as_deref(), t, "{body}");
            assert_eq!(e.error_code.as_deref(), c, "{body}");
        }
        for ok in [
            r#"{"choices":[]}"#,
            r#"{"code":0,"data":{}}"#,
            r#"{"base_resp":{"status_code":0},"choices":[]}"#,
            r#"{"error":null,"choices":[]}"#,
        ] {
            assert_eq!(body_error(&serde_json::from_str(ok).unwrap()), None, "{ok}");
        }
        assert!(is_middleware_code("SUBSCRIPTION_NOT_FOUND"));
    }

    #[test]
    fn routing_via_prefix_keeps_authority_path_and_query() {
        let r = UpstreamRouting::ViaPrefix("http://127.0.0.1:9/__upstream/".into());
        assert_eq!(
            r.route("https://api.deepseek.com/models").unwrap(),
            "http://127.0.0.1:9/__upstream/api.deepseek.com/models"
        );
        assert_eq!(
            r.route("https://open.bigmodel.cn:8443/api/paas/v4/chat/completions?x=1")
                .unwrap(),
            "http://127.0.0.1:9/__upstream/open.bigmodel.cn:8443/api/paas/v4/chat/completions?x=1"
        );
        assert_eq!(
            UpstreamRouting::Direct
                .route("https://api.moonshot.cn/v1/models")
                .unwrap(),
            "https://api.moonshot.cn/v1/models"
        );
        assert!(r.route("not a url").is_err());
    }
}
