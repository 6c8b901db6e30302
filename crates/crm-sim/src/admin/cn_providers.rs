//! `/admin/cn-providers/accounts/:id/balance|quota` (current profile), read
//! from the newer sub2api source: `handler/admin/cn_provider_handler.go`
//! @192e737, `service/cn_provider_balance_service.go` @07b096d and
//! `service/cn_provider_quota_service.go` @0c742fc. Both probe the provider
//! (in process, through `providers::call_op`) and answer a result object; an
//! upstream refusal is a `success:false` result, not an HTTP error.

use std::sync::Arc;

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::model::{Account, State};
use crate::providers;
use crate::reply::{HResult, app_err, ok, path_id};
use crate::shared::Shared;
use crate::upstream::{Behaviour, Op};

type App = AxState<Arc<Shared>>;

/// `Account.IsCNProvider`: the native CN platforms.
const CN_PLATFORMS: &[&str] = &["kimi", "zhipu", "deepseek", "minimax", "qwen"];

fn mode(a: &Account) -> &str {
    a.credentials
        .get("account_mode")
        .and_then(Value::as_str)
        .unwrap_or("payg")
}

/// `Account.IsCodingPlan`: `account_mode` `coding` (or MiniMax's `token_plan`).
fn is_coding(a: &Account) -> bool {
    matches!(mode(a), "coding" | "token_plan")
}

fn bad(reason: &str, message: &str) -> axum::response::Response {
    app_err(StatusCode::BAD_REQUEST, reason, message)
}

fn load(st: &State, raw: &str, prefix: &str) -> Result<Account, axum::response::Response> {
    let id = path_id(raw, "account")?;
    st.accounts.get(&id).cloned().ok_or_else(|| {
        app_err(
            StatusCode::NOT_FOUND,
            &format!("{prefix}_ACCOUNT_NOT_FOUND"),
            "account not found",
        )
    })
}

fn key_of(a: &Account) -> Option<String> {
    a.api_key()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
}

/// The provider a DeepSeek account's balance is read from: its base URL with
/// an `/anthropic` suffix dropped (`GetOpenAIFormatBaseURL`); Kimi always
/// asks `api.moonshot.cn` (`cnBalanceURL`).
fn balance_authority(a: &Account) -> Option<String> {
    if a.platform == "kimi" {
        return Some("api.moonshot.cn".into());
    }
    let base = a.base_url().unwrap_or("https://api.deepseek.com");
    let base = base.trim_end_matches('/');
    let base = base.strip_suffix("/anthropic").unwrap_or(base);
    providers::target(&format!("{base}/user/balance")).map(|(authority, _)| authority)
}

/// `GET /cn-providers/accounts/:id/balance`: payg `kimi`/`deepseek` accounts.
pub(crate) async fn balance(AxState(app): App, Path(id): Path<String>) -> HResult {
    let mut st = app.lock();
    let a = load(&st, &id, "CN_BALANCE")?;
    if !CN_PLATFORMS.contains(&a.platform.as_str()) {
        return Err(bad(
            "CN_BALANCE_INVALID_PLATFORM",
            "account is not a CN provider account",
        ));
    }
    if is_coding(&a) {
        return Err(bad(
            "CN_BALANCE_CODING_PLAN",
            "coding plan account has no balance endpoint; use quota probe",
        ));
    }
    if a.platform != "kimi" && a.platform != "deepseek" {
        return Err(bad(
            "CN_BALANCE_NO_ENDPOINT",
            "account provider has no balance endpoint",
        ));
    }
    let Some(key) = key_of(&a) else {
        return Err(bad("CN_BALANCE_NO_APIKEY", "account api_key is empty"));
    };
    let Some(authority) = balance_authority(&a) else {
        return Err(app_err(
            StatusCode::FORBIDDEN,
            "CN_BALANCE_URL_REJECTED",
            "invalid balance URL",
        ));
    };
    let reply = providers::call_op(
        &mut st,
        &authority,
        Some(&key),
        Op::Balance {
            balance: 0.0,
            currency: String::new(),
        },
    );
    let mut out = Map::new();
    out.insert("provider".into(), json!(a.platform));
    out.insert("fetched_at".into(), json!(chrono::Utc::now().timestamp()));
    out.insert("status_code".into(), json!(reply.status));
    out.insert("available".into(), json!(true));
    out.insert("balance".into(), json!(0.0));
    out.insert("persisted".into(), json!(false));
    out.insert("success".into(), json!(false));
    match reply.status {
        401 | 403 => {
            out.insert(
                "error".into(),
                json!(format!("Authentication failed (HTTP {})", reply.status)),
            );
        }
        200 => {
            let (amount, currency, available) = if a.platform == "kimi" {
                (
                    reply.body["data"]["available_balance"]
                        .as_f64()
                        .unwrap_or(0.0),
                    "CNY".to_owned(),
                    true,
                )
            } else {
                let info = &reply.body["balance_infos"][0];
                (
                    info["total_balance"]
                        .as_str()
                        .and_then(|s| s.parse::<f64>().ok())
                        .unwrap_or(0.0),
                    info["currency"].as_str().unwrap_or("CNY").to_uppercase(),
                    reply.body["is_available"].as_bool().unwrap_or(true),
                )
            };
            out.insert("balance".into(), json!(amount));
            out.insert("currency".into(), json!(currency));
            out.insert(
                "balances".into(),
                json!([{"currency": currency, "balance": amount}]),
            );
            out.insert("available".into(), json!(available));
            out.insert("success".into(), json!(true));
            out.insert("persisted".into(), json!(true));
        }
        status => {
            out.insert(
                "error".into(),
                json!(format!("API error (HTTP {status}): {}", reply.body)),
            );
        }
    }
    Ok(ok(Value::Object(out)))
}

/// `GET /cn-providers/accounts/:id/quota`: coding-plan `kimi`/`zhipu`/`minimax`
/// accounts. The simulated plan's 5h and weekly windows are used as far as the
/// key's funds have fallen from the default: `used_percent = 100 - balance`
/// (so `PUT /__sim/upstream-balances` drives both).
pub(crate) async fn quota(AxState(app): App, Path(id): Path<String>) -> HResult {
    let st = app.lock();
    let a = load(&st, &id, "CN_QUOTA")?;
    if !CN_PLATFORMS.contains(&a.platform.as_str()) {
        return Err(bad(
            "CN_QUOTA_INVALID_PLATFORM",
            "account is not a CN provider account",
        ));
    }
    if !is_coding(&a) {
        return Err(bad(
            "CN_QUOTA_NOT_CODING_PLAN",
            "account is not a coding plan account",
        ));
    }
    if !["kimi", "zhipu", "minimax"].contains(&a.platform.as_str()) {
        return Err(bad(
            "CN_QUOTA_NOT_CODING_PLAN",
            "account is not a supported coding plan account",
        ));
    }
    let Some(key) = key_of(&a) else {
        return Err(bad("CN_QUOTA_NO_APIKEY", "account api_key is empty"));
    };
    let authority = a
        .base_url()
        .and_then(providers::target)
        .map_or_else(|| a.platform.clone(), |(authority, _)| authority);
    let behaviour = providers::behaviour_for(&st, &key);
    let funds = providers::funds(&st, &key, &authority);
    let mut out = Map::new();
    out.insert("provider".into(), json!(a.platform));
    out.insert("source".into(), json!("coding_plan"));
    out.insert("fetched_at".into(), json!(chrono::Utc::now().timestamp()));
    let status = match behaviour {
        Behaviour::InvalidKey => 401,
        Behaviour::ServerError => 500,
        Behaviour::Overloaded => 503,
        Behaviour::RateLimited => 429,
        _ => 200,
    };
    out.insert("status_code".into(), json!(status));
    if status == 200 {
        let used = if behaviour == Behaviour::QuotaExhausted {
            100.0
        } else {
            (providers::DEFAULT_BALANCE - funds.amount).max(0.0)
        };
        let reset =
            |hours: i64| crate::model::ts(&(chrono::Utc::now() + chrono::Duration::hours(hours)));
        out.insert(
            "tiers".into(),
            json!([
                {"window": "5h", "used_percent": used, "reset_at": reset(5)},
                {"window": "weekly", "used_percent": used, "reset_at": reset(24 * 7)},
            ]),
        );
        out.insert("success".into(), json!(true));
        out.insert("credential_valid".into(), json!(true));
        out.insert("persisted".into(), json!(true));
    } else {
        out.insert("success".into(), json!(false));
        out.insert("credential_valid".into(), json!(false));
        out.insert("persisted".into(), json!(false));
        let error = if status == 401 {
            "Authentication failed (HTTP 401)".to_owned()
        } else {
            format!("API error (HTTP {status}): upstream error")
        };
        out.insert("error".into(), json!(error));
    }
    Ok(ok(Value::Object(out)))
}
