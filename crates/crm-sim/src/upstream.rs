//! Simulated upstream providers (DeepSeek, Kimi, Zhipu, MiniMax, Qwen, generic).
//!
//! A provider is picked by the authority of the URL the host calls; the
//! endpoint by its path ([`op_for`]); the behaviour per upstream key. These are
//! pure functions: the stateful part (which behaviour a key has, its balance)
//! is in `providers`. The same answers serve direct calls under
//! `/__upstream/{authority}/...` and the host's in-process forwarding, so the
//! two can only differ where the `host_incompatible` behaviour says so.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How an upstream key behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Answers normally.
    Ok,
    /// 401 with the provider's authentication error.
    InvalidKey,
    /// DeepSeek-style 402 `Insufficient Balance`.
    InsufficientBalance,
    /// 429 with the provider's own quota/arrears code.
    QuotaExhausted,
    /// 429 rate limit.
    RateLimited,
    /// 500 internal error.
    ServerError,
    /// 503 overloaded.
    Overloaded,
    /// Answers normally after the configured slow delay.
    Slow,
    /// Answers directly, but the simulated host's forwarding of this key fails with 502.
    HostIncompatible,
}

impl Behaviour {
    pub const ALL: &'static [Behaviour] = &[
        Behaviour::Ok,
        Behaviour::InvalidKey,
        Behaviour::InsufficientBalance,
        Behaviour::QuotaExhausted,
        Behaviour::RateLimited,
        Behaviour::ServerError,
        Behaviour::Overloaded,
        Behaviour::Slow,
        Behaviour::HostIncompatible,
    ];

    /// The snake_case word used in key conventions and the control API.
    pub fn as_str(self) -> &'static str {
        match self {
            Behaviour::Ok => "ok",
            Behaviour::InvalidKey => "invalid_key",
            Behaviour::InsufficientBalance => "insufficient_balance",
            Behaviour::QuotaExhausted => "quota_exhausted",
            Behaviour::RateLimited => "rate_limited",
            Behaviour::ServerError => "server_error",
            Behaviour::Overloaded => "overloaded",
            Behaviour::Slow => "slow",
            Behaviour::HostIncompatible => "host_incompatible",
        }
    }

    /// The behaviour a key asks for by convention: `sim-<behaviour>-<anything>`.
    pub fn from_key_convention(key: &str) -> Option<Behaviour> {
        let rest = key.strip_prefix("sim-")?;
        let word = rest.split('-').next()?;
        Behaviour::ALL.iter().copied().find(|b| b.as_str() == word)
    }
}

/// Which provider an authority belongs to; decides error shapes and model lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    DeepSeek,
    Kimi,
    Zhipu,
    MiniMax,
    Qwen,
    Generic,
}

impl Provider {
    pub fn from_authority(authority: &str) -> Provider {
        let host = authority.to_ascii_lowercase();
        if host.contains("deepseek") {
            Provider::DeepSeek
        } else if host.contains("moonshot") || host.contains("kimi") {
            Provider::Kimi
        } else if host.contains("bigmodel") || host.contains("z.ai") {
            Provider::Zhipu
        } else if host.contains("minimax") {
            Provider::MiniMax
        } else if host.contains("dashscope") || host.contains("aliyuncs") {
            Provider::Qwen
        } else {
            Provider::Generic
        }
    }

    fn models(self) -> &'static [&'static str] {
        match self {
            Provider::DeepSeek => &["deepseek-v4-flash", "deepseek-v4-pro"],
            Provider::Kimi => &["kimi-k3", "kimi-k2.6"],
            Provider::Zhipu => &["glm-5.2", "glm-5.1"],
            Provider::MiniMax => &["MiniMax-M2.7", "MiniMax-M3"],
            Provider::Qwen => &["qwen3.7-plus", "qwen3.7-max"],
            Provider::Generic => &["sim-model"],
        }
    }

    /// The path of the provider's Anthropic-compatible base (cn-providers.md,
    /// "Anthropic base"): `<base>/v1/messages` is served only under it.
    /// `None` for the generic provider, which serves `/v1/messages` anywhere.
    fn anthropic_prefix(self) -> Option<&'static str> {
        match self {
            Provider::DeepSeek | Provider::Kimi | Provider::MiniMax => Some("/anthropic"),
            Provider::Zhipu => Some("/api/anthropic"),
            Provider::Qwen => Some("/apps/anthropic"),
            Provider::Generic => None,
        }
    }

    /// The path of the provider's balance API, where it has one (cn-providers.md:
    /// DeepSeek `GET /user/balance`, Moonshot `GET /v1/users/me/balance`).
    fn balance_path(self) -> Option<&'static str> {
        match self {
            Provider::DeepSeek => Some("/user/balance"),
            Provider::Kimi => Some("/v1/users/me/balance"),
            _ => None,
        }
    }

    fn owner(self) -> &'static str {
        match self {
            Provider::DeepSeek => "deepseek",
            Provider::Kimi => "moonshot",
            Provider::Zhipu => "zhipu",
            Provider::MiniMax => "minimax",
            Provider::Qwen => "alibaba",
            Provider::Generic => "sim",
        }
    }
}

/// Splits `https://api.moonshot.cn/v1` into (`api.moonshot.cn`, `/v1`).
pub(crate) fn split_base_url(base_url: &str) -> Option<(String, String)> {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return None;
    }
    Some((authority.to_owned(), path.trim_end_matches('/').to_owned()))
}

/// An upstream key's balance and its currency.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Funds {
    pub amount: f64,
    pub currency: String,
}

/// What the upstream is asked for.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Models,
    /// OpenAI `POST …/chat/completions`.
    Chat {
        model: String,
        prompt_tokens: u64,
        max_tokens: u64,
    },
    /// Anthropic `POST <anthropic base>/v1/messages`.
    Messages {
        model: String,
        prompt_tokens: u64,
        max_tokens: u64,
    },
    /// The provider's balance API, with the key's current balance.
    Balance {
        balance: f64,
        currency: String,
    },
}

impl Op {
    /// A completion (charged against the key's balance when it succeeds).
    pub fn is_completion(&self) -> bool {
        matches!(self, Op::Chat { .. } | Op::Messages { .. })
    }

    fn anthropic(&self) -> bool {
        matches!(self, Op::Messages { .. })
    }
}

/// Which endpoint a request to a simulated provider reaches, or the provider's
/// 404 when it serves nothing there (the Responses API, `/v1/messages` outside
/// the Anthropic base, a balance path of a provider without one).
pub(crate) fn op_for(authority: &str, path: &str, method: &str, body: &[u8]) -> Result<Op, Reply> {
    let provider = Provider::from_authority(authority);
    let path = path.trim_end_matches('/');
    let req = || serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    let tokens = |req: &Value| {
        let prompt = (req.get("messages").map_or(0, |m| m.to_string().len()) / 4).max(1) as u64;
        let max = req
            .get("max_tokens")
            .or_else(|| req.get("max_completion_tokens"))
            .and_then(Value::as_u64)
            .unwrap_or(16);
        (prompt, max)
    };
    if method == "POST" && path.ends_with("/v1/messages") {
        let base = &path[..path.len() - "/v1/messages".len()];
        let served = provider
            .anthropic_prefix()
            .is_none_or(|prefix| base.ends_with(prefix));
        if !served {
            return Err(not_found(path));
        }
        let req = req();
        let Some(model) = req.get("model").and_then(Value::as_str) else {
            return Err(plain(
                400,
                anthropic_error("invalid_request_error", "model: Field required"),
            ));
        };
        let (prompt_tokens, max_tokens) = tokens(&req);
        return Ok(Op::Messages {
            model: model.to_owned(),
            prompt_tokens,
            max_tokens,
        });
    }
    if method == "POST" && path.ends_with("chat/completions") {
        let req = req();
        let Some(model) = req.get("model").and_then(Value::as_str) else {
            return Err(plain(
                400,
                json!({"error": {"message": "model is required", "type": "invalid_request_error", "param": "model", "code": null}}),
            ));
        };
        let (prompt_tokens, max_tokens) = tokens(&req);
        return Ok(Op::Chat {
            model: model.to_owned(),
            prompt_tokens,
            max_tokens,
        });
    }
    if method == "GET" && provider.balance_path() == Some(path) {
        // The caller fills in the key's balance.
        return Ok(Op::Balance {
            balance: 0.0,
            currency: String::new(),
        });
    }
    if method == "GET" && path.ends_with("models") {
        return Ok(Op::Models);
    }
    Err(not_found(path))
}

fn plain(status: u16, body: Value) -> Reply {
    Reply {
        status,
        body,
        delay: Duration::ZERO,
    }
}

fn not_found(path: &str) -> Reply {
    plain(
        404,
        json!({"error": {"message": format!("Unknown path {path}"), "type": "invalid_request_error", "param": null, "code": "not_found"}}),
    )
}

/// An Anthropic error envelope.
fn anthropic_error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// The currency a provider's balance is kept in: Moonshot's international
/// site (`.ai`) bills in USD, everything else here in CNY (cn-providers.md).
pub(crate) fn default_currency(authority: &str) -> &'static str {
    if authority.to_ascii_lowercase().ends_with("moonshot.ai") {
        "USD"
    } else {
        "CNY"
    }
}

/// An upstream answer before it is written to the wire.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Value,
    pub delay: Duration,
}

/// The provider's answer for a key with `behaviour`. `host_incompatible` answers
/// like `ok` here: only the host's forwarding treats it differently.
pub(crate) fn simulate(authority: &str, behaviour: Behaviour, op: &Op, slow: Duration) -> Reply {
    let provider = Provider::from_authority(authority);
    if op.anthropic() {
        return simulate_anthropic(provider, behaviour, op, slow);
    }
    if let Op::Balance { .. } = op {
        return simulate_balance(provider, behaviour, op);
    }
    let reply = plain;
    match behaviour {
        Behaviour::Ok | Behaviour::HostIncompatible => reply(200, success(provider, op)),
        Behaviour::Slow => Reply {
            status: 200,
            body: success(provider, op),
            delay: slow,
        },
        Behaviour::InvalidKey => reply(401, invalid_key(provider)),
        Behaviour::InsufficientBalance => reply(
            402,
            json!({"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}),
        ),
        Behaviour::QuotaExhausted => reply(429, quota_exhausted(provider)),
        Behaviour::RateLimited => reply(429, rate_limited(provider)),
        Behaviour::ServerError => reply(
            500,
            json!({"error":{"message":"Internal server error","type":"server_error","param":null,"code":null}}),
        ),
        Behaviour::Overloaded => reply(
            503,
            json!({"error":{"message":"Service is too busy, please try again later","type":"server_error","param":null,"code":"overloaded"}}),
        ),
    }
}

/// `<anthropic base>/v1/messages`: Anthropic-shaped replies and errors
/// (`{"type":"error","error":{"type","message"}}`), the status codes the
/// Anthropic API uses (402 billing, 429 rate limit, 500 api, 529 overloaded).
/// MiniMax reports money trouble as a 500 `api_error` there (cn-providers.md).
fn simulate_anthropic(provider: Provider, behaviour: Behaviour, op: &Op, slow: Duration) -> Reply {
    let err =
        |status: u16, kind: &str, message: &str| plain(status, anthropic_error(kind, message));
    match behaviour {
        Behaviour::Ok | Behaviour::HostIncompatible => plain(200, success(provider, op)),
        Behaviour::Slow => Reply {
            status: 200,
            body: success(provider, op),
            delay: slow,
        },
        Behaviour::InvalidKey => err(401, "authentication_error", invalid_key_message(provider)),
        Behaviour::InsufficientBalance | Behaviour::QuotaExhausted => match provider {
            Provider::MiniMax => err(500, "api_error", "insufficient balance (1008)"),
            Provider::Kimi => err(
                429,
                "rate_limit_error",
                "You exceeded your current quota, please check your plan and billing details.",
            ),
            Provider::Zhipu => err(
                429,
                "rate_limit_error",
                "余额不足或无可用资源包,请充值。(1113)",
            ),
            _ if behaviour == Behaviour::QuotaExhausted => err(
                429,
                "rate_limit_error",
                "You exceeded your current quota, please check your plan and billing details.",
            ),
            _ => err(402, "billing_error", "Insufficient Balance"),
        },
        Behaviour::RateLimited => err(429, "rate_limit_error", "Rate limit reached for requests"),
        Behaviour::ServerError => err(500, "api_error", "Internal server error"),
        Behaviour::Overloaded => err(529, "overloaded_error", "Overloaded"),
    }
}

fn invalid_key_message(provider: Provider) -> &'static str {
    match provider {
        Provider::DeepSeek => "Authentication Fails, Your api key is invalid",
        Provider::Kimi => "Invalid Authentication",
        Provider::Zhipu => "令牌已过期或验证不正确 (1001)",
        Provider::MiniMax => "invalid api key (1004)",
        Provider::Qwen | Provider::Generic => "invalid x-api-key",
    }
}

/// The balance APIs: DeepSeek `{is_available, balance_infos:[…]}` with string
/// amounts, Moonshot `{code:0, data:{available_balance, voucher_balance,
/// cash_balance}}` with numbers (cn-providers.md, "Balance").
fn simulate_balance(provider: Provider, behaviour: Behaviour, op: &Op) -> Reply {
    let Op::Balance { balance, currency } = op else {
        return plain(500, json!({"error": {"message": "not a balance request"}}));
    };
    match behaviour {
        Behaviour::InvalidKey => return plain(401, invalid_key(provider)),
        Behaviour::RateLimited => return plain(429, rate_limited(provider)),
        Behaviour::ServerError => {
            return plain(
                500,
                json!({"error":{"message":"Internal server error","type":"server_error","param":null,"code":null}}),
            );
        }
        Behaviour::Overloaded => {
            return plain(
                503,
                json!({"error":{"message":"Service is too busy, please try again later","type":"server_error","param":null,"code":"overloaded"}}),
            );
        }
        _ => {}
    }
    let balance = if behaviour == Behaviour::InsufficientBalance {
        0.0
    } else {
        balance.max(0.0)
    };
    match provider {
        Provider::Kimi => plain(
            200,
            json!({"code": 0, "data": {"available_balance": balance, "voucher_balance": 0.0, "cash_balance": balance}, "scode": "0x0", "status": true}),
        ),
        _ => plain(
            200,
            json!({"is_available": balance > 0.0, "balance_infos": [{
                "currency": currency, "total_balance": format!("{balance:.2}"),
                "granted_balance": "0.00", "topped_up_balance": format!("{balance:.2}"),
            }]}),
        ),
    }
}

fn success(provider: Provider, op: &Op) -> Value {
    match op {
        Op::Balance { .. } => Value::Null,
        Op::Messages {
            model,
            prompt_tokens,
            max_tokens,
        } => {
            let completion = (*max_tokens).clamp(1, 8);
            json!({
                "id": format!("msg_sim_{}", crate::ids::random_hex(8)),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": "pong (simulated)"}],
                "stop_reason": "end_turn",
                "stop_sequence": null,
                "usage": {"input_tokens": prompt_tokens, "output_tokens": completion},
            })
        }
        Op::Models => json!({
            "object": "list",
            "data": provider.models().iter().map(|m| json!({
                "id": m, "object": "model", "created": 1_767_225_600, "owned_by": provider.owner()
            })).collect::<Vec<_>>(),
        }),
        Op::Chat {
            model,
            prompt_tokens,
            max_tokens,
        } => {
            let completion = (*max_tokens).clamp(1, 8);
            json!({
                "id": format!("chatcmpl-sim-{}", crate::ids::random_hex(8)),
                "object": "chat.completion",
                "created": chrono::Utc::now().timestamp(),
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong (simulated)"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion, "total_tokens": prompt_tokens + completion},
            })
        }
    }
}

fn invalid_key(provider: Provider) -> Value {
    match provider {
        Provider::Kimi => {
            json!({"error":{"message":"Invalid Authentication","type":"invalid_authentication_error"}})
        }
        Provider::Zhipu => json!({"error":{"code":"1000","message":"身份验证失败。"}}),
        Provider::MiniMax => {
            json!({"base_resp":{"status_code":1004,"status_msg":"login fail: Please carry the API secret key in the 'Authorization' field of the request header"}})
        }
        Provider::Qwen => {
            json!({"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}})
        }
        Provider::DeepSeek => {
            json!({"error":{"message":"Authentication Fails, Your api key is invalid","type":"authentication_error","param":null,"code":"invalid_request_error"}})
        }
        Provider::Generic => {
            json!({"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}})
        }
    }
}

fn quota_exhausted(provider: Provider) -> Value {
    match provider {
        Provider::Kimi => {
            json!({"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"exceeded_current_quota_error"}})
        }
        Provider::Zhipu => {
            json!({"error":{"code":"1113","message":"您的账户已欠费，请充值后重试。"}})
        }
        Provider::MiniMax => {
            json!({"base_resp":{"status_code":1008,"status_msg":"insufficient balance"}})
        }
        Provider::Qwen => {
            json!({"error":{"message":"Access denied, please make sure your account is in good standing.","type":"insufficient_quota","param":null,"code":"Arrearage"}})
        }
        Provider::DeepSeek | Provider::Generic => {
            json!({"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})
        }
    }
}

fn rate_limited(provider: Provider) -> Value {
    match provider {
        Provider::Zhipu => {
            json!({"error":{"code":"1302","message":"您当前使用该API的并发数过高，请降低并发，或联系客服增加限额。"}})
        }
        Provider::MiniMax => {
            json!({"base_resp":{"status_code":1002,"status_msg":"rate limit exceeded"}})
        }
        Provider::Kimi => {
            json!({"error":{"message":"Your account is rate limited, please try again later.","type":"rate_limit_reached_error"}})
        }
        _ => {
            json!({"error":{"message":"Rate limit reached for requests","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_convention_names_the_behaviour() {
        assert_eq!(
            Behaviour::from_key_convention("sim-invalid_key-1"),
            Some(Behaviour::InvalidKey)
        );
        assert_eq!(
            Behaviour::from_key_convention("sim-host_incompatible-x"),
            Some(Behaviour::HostIncompatible)
        );
        assert_eq!(
            Behaviour::from_key_convention("sim-ok"),
            Some(Behaviour::Ok)
        );
        assert_eq!(Behaviour::from_key_convention("sk-real"), None);
        assert_eq!(Behaviour::from_key_convention("sim-nonsense-1"), None);
    }

    #[test]
    fn base_urls_split_into_authority_and_path() {
        assert_eq!(
            split_base_url("https://api.deepseek.com"),
            Some(("api.deepseek.com".into(), String::new()))
        );
        assert_eq!(
            split_base_url("https://api.moonshot.cn/v1/"),
            Some(("api.moonshot.cn".into(), "/v1".into()))
        );
        assert_eq!(split_base_url("https:///x"), None);
    }

    #[test]
    fn quota_codes_follow_the_provider() {
        let op = Op::Models;
        let kimi = simulate(
            "api.moonshot.cn",
            Behaviour::QuotaExhausted,
            &op,
            Duration::ZERO,
        );
        assert_eq!(kimi.status, 429);
        assert_eq!(kimi.body["error"]["type"], "exceeded_current_quota_error");
        let glm = simulate(
            "open.bigmodel.cn",
            Behaviour::QuotaExhausted,
            &op,
            Duration::ZERO,
        );
        assert_eq!(glm.body["error"]["code"], "1113");
        let ds = simulate(
            "api.deepseek.com",
            Behaviour::InsufficientBalance,
            &op,
            Duration::ZERO,
        );
        assert_eq!(ds.status, 402);
        assert_eq!(ds.body["error"]["message"], "Insufficient Balance");
    }
}
