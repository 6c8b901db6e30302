//! Host-side channel monitors (newer sub2api builds): the host calls one
//! upstream endpoint with one key on a schedule and keeps the results.
//!
//! Read from sub2api's newer source: `backend/internal/server/routes/admin.go`
//! (@d35ae4e, `registerChannelMonitorRoutes`) registers
//! `GET|POST /admin/channel-monitors`, `GET|PUT|DELETE
//! /admin/channel-monitors/:id`, `POST …/:id/run` and `GET …/:id/history`;
//! `backend/internal/handler/admin/channel_monitor_handler.go` (@07b9133)
//! binds the requests (`name` ≤ 100, `provider` one of a fixed list,
//! `interval_seconds` 15..=3600, ...) and answers `channelMonitorResponse`
//! (`api_key_masked`, never the key; `primary_status`, `availability_7d`
//! only in listings, which cap `page_size` at `monitorMaxPageSize = 100`).
//! `service/channel_monitor_service.go` (@07b9133) makes `endpoint` an
//! origin the checker appends `/v1/...` to, needs `api_key` and
//! `primary_model` for a probe monitor, and honours no `Idempotency-Key` on
//! create. `run` answers `{results}`, `history` `{items}` newest first
//! (`limit` default 100, at most 1000).

use crate::client::{Auth, Call, Sub2apiClient};
use crate::error::Result;
use crate::wire::null_default;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::fmt;

/// `monitorMaxPageSize` of the monitor handler.
pub const MONITOR_PAGE_SIZE: u32 = 100;

/// `MonitorHistoryMaxLimit` of the monitor service.
pub const MONITOR_HISTORY_MAX: u32 = 1000;

const MONITORS: &str = "/api/v1/admin/channel-monitors";

/// `channelMonitorResponse`. The masked key is not read at all.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Monitor {
    pub id: i64,
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub provider: String,
    #[serde(deserialize_with = "null_default")]
    pub api_mode: String,
    #[serde(deserialize_with = "null_default")]
    pub endpoint: String,
    /// Present and non-empty when the monitor holds a key.
    #[serde(deserialize_with = "masked_present")]
    pub api_key_masked: bool,
    #[serde(deserialize_with = "null_default")]
    pub primary_model: String,
    #[serde(deserialize_with = "null_default")]
    pub extra_models: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub group_name: String,
    #[serde(deserialize_with = "null_default")]
    pub enabled: bool,
    #[serde(deserialize_with = "null_default")]
    pub interval_seconds: i64,
    #[serde(deserialize_with = "null_default")]
    pub jitter_seconds: i64,
    pub last_checked_at: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub primary_status: String,
    pub availability_7d: Option<f64>,
    #[serde(deserialize_with = "null_default")]
    pub check_mode: String,
}

/// Keeps only whether a masked key is there: its first four characters are
/// the upstream key's, and crm keeps none of a key.
fn masked_present<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    let v = Option::<String>::deserialize(d)?;
    Ok(v.is_some_and(|s| !s.is_empty()))
}

/// One check (`channelMonitorCheckResultResponse` / `…HistoryItemResponse`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MonitorCheck {
    #[serde(deserialize_with = "null_default")]
    pub model: String,
    #[serde(deserialize_with = "null_default")]
    pub status: String,
    pub latency_ms: Option<i64>,
    #[serde(deserialize_with = "null_default")]
    pub message: String,
    #[serde(deserialize_with = "null_default")]
    pub checked_at: String,
}

#[derive(Deserialize)]
struct Results {
    #[serde(default, deserialize_with = "null_default")]
    results: Vec<MonitorCheck>,
}

#[derive(Deserialize)]
struct Items {
    #[serde(default, deserialize_with = "null_default")]
    items: Vec<MonitorCheck>,
}

/// Body of `POST /admin/channel-monitors`. `Debug` hides the key.
#[derive(Clone)]
pub struct NewMonitor {
    pub name: String,
    pub provider: String,
    pub api_mode: String,
    pub endpoint: String,
    pub api_key: SecretString,
    pub primary_model: String,
    pub extra_models: Vec<String>,
    pub group_name: String,
    pub enabled: bool,
    pub interval_seconds: u32,
}

impl fmt::Debug for NewMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewMonitor")
            .field("name", &self.name)
            .field("provider", &self.provider)
            .field("api_mode", &self.api_mode)
            .field("endpoint", &self.endpoint)
            .field("api_key", &"[redacted]")
            .field("primary_model", &self.primary_model)
            .field("interval_seconds", &self.interval_seconds)
            .finish_non_exhaustive()
    }
}

impl NewMonitor {
    /// The JSON body, with the key exposed: only ever handed to the HTTP layer.
    fn to_body(&self) -> Value {
        json!({
            "name": self.name,
            "provider": self.provider,
            "api_mode": self.api_mode,
            "endpoint": self.endpoint,
            "api_key": self.api_key.expose_secret(),
            "primary_model": self.primary_model,
            "extra_models": self.extra_models,
            "group_name": self.group_name,
            "enabled": self.enabled,
            "interval_seconds": self.interval_seconds,
        })
    }
}

/// Body of `PUT /admin/channel-monitors/:id`; `None` fields are not sent
/// (the handler's pointer fields: absent = keep). `Debug` hides the key.
#[derive(Clone, Default)]
pub struct MonitorUpdate {
    pub name: Option<String>,
    pub endpoint: Option<String>,
    pub api_key: Option<SecretString>,
    pub primary_model: Option<String>,
    pub group_name: Option<String>,
    pub enabled: Option<bool>,
    pub interval_seconds: Option<u32>,
}

impl fmt::Debug for MonitorUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonitorUpdate")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("primary_model", &self.primary_model)
            .field("enabled", &self.enabled)
            .field("interval_seconds", &self.interval_seconds)
            .finish_non_exhaustive()
    }
}

impl MonitorUpdate {
    fn to_body(&self) -> Value {
        let mut o = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                o.insert(k.to_owned(), v);
            }
        };
        put("name", self.name.as_ref().map(|v| json!(v)));
        put("endpoint", self.endpoint.as_ref().map(|v| json!(v)));
        put(
            "api_key",
            self.api_key.as_ref().map(|k| json!(k.expose_secret())),
        );
        put(
            "primary_model",
            self.primary_model.as_ref().map(|v| json!(v)),
        );
        put("group_name", self.group_name.as_ref().map(|v| json!(v)));
        put("enabled", self.enabled.map(|v| json!(v)));
        put("interval_seconds", self.interval_seconds.map(|v| json!(v)));
        Value::Object(o)
    }
}

impl Sub2apiClient {
    /// Every channel monitor, all pages at the handler's page cap (100).
    pub async fn list_monitors(&self) -> Result<Vec<Monitor>> {
        self.list_all_sized(MONITORS, &[], Auth::Admin, MONITOR_PAGE_SIZE)
            .await
    }

    /// `GET /channel-monitors/:id` (no status summary: the handler fills
    /// `primary_status` and `availability_7d` in listings only).
    pub async fn get_monitor(&self, id: i64) -> Result<Monitor> {
        self.typed(
            Call::new(Method::GET, format!("{MONITORS}/{id}"), Auth::Admin),
            &[],
        )
        .await
    }

    /// `POST /channel-monitors` (201). Never retried, and the host honours
    /// no `Idempotency-Key` here: a lost answer is resolved by name.
    pub async fn create_monitor(&self, monitor: &NewMonitor) -> Result<Monitor> {
        let call = Call::new(Method::POST, MONITORS, Auth::Admin).json(monitor.to_body());
        self.typed(call, &[&monitor.api_key]).await
    }

    /// `PUT /channel-monitors/:id`. Never retried.
    pub async fn update_monitor(&self, id: i64, update: &MonitorUpdate) -> Result<Monitor> {
        let call =
            Call::new(Method::PUT, format!("{MONITORS}/{id}"), Auth::Admin).json(update.to_body());
        let secrets: Vec<&SecretString> = update.api_key.iter().collect();
        self.typed(call, &secrets).await
    }

    /// `DELETE /channel-monitors/:id` (answers without `data`).
    pub async fn delete_monitor(&self, id: i64) -> Result<()> {
        self.data(
            Call::new(Method::DELETE, format!("{MONITORS}/{id}"), Auth::Admin),
            &[],
        )
        .await
        .map(|_| ())
    }

    /// `POST /channel-monitors/:id/run`: one check of every model now.
    pub async fn run_monitor(&self, id: i64) -> Result<Vec<MonitorCheck>> {
        let r: Results = self
            .typed(
                Call::new(Method::POST, format!("{MONITORS}/{id}/run"), Auth::Admin),
                &[],
            )
            .await?;
        Ok(r.results)
    }

    /// `GET /channel-monitors/:id/history?limit=&model=`, newest first;
    /// `limit` is capped at [`MONITOR_HISTORY_MAX`].
    pub async fn monitor_history(
        &self,
        id: i64,
        model: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MonitorCheck>> {
        let mut call = Call::new(Method::GET, format!("{MONITORS}/{id}/history"), Auth::Admin)
            .query("limit", limit.clamp(1, MONITOR_HISTORY_MAX));
        if let Some(m) = model.filter(|m| !m.is_empty()) {
            call = call.query("model", m);
        }
        let r: Items = self.typed(call, &[]).await?;
        Ok(r.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_the_key_only_where_sent_and_debug_hides_it() {
        let m = NewMonitor {
            name: "crm-x".into(),
            provider: "openai".into(),
            api_mode: "chat_completions".into(),
            endpoint: "https://api.deepseek.com".into(),
            api_key: SecretString::from("sk-CANARY-monitor"),
            primary_model: "deepseek-chat".into(),
            extra_models: vec![],
            group_name: "g".into(),
            enabled: true,
            interval_seconds: 300,
        };
        assert_eq!(m.to_body()["api_key"], "sk-CANARY-monitor");
        assert!(!format!("{m:?}").contains("CANARY"));
        let u = MonitorUpdate {
            interval_seconds: Some(60),
            ..MonitorUpdate::default()
        };
        assert_eq!(u.to_body(), json!({"interval_seconds": 60}));
        let u = MonitorUpdate {
            api_key: Some(SecretString::from("sk-CANARY-2")),
            ..MonitorUpdate::default()
        };
        assert!(!format!("{u:?}").contains("CANARY"));
    }

    #[test]
    fn the_masked_key_is_reduced_to_whether_there_is_one() {
        let m: Monitor =
            serde_json::from_value(json!({"id": 1, "api_key_masked": "sk-C***"})).unwrap();
        assert!(m.api_key_masked);
        let m: Monitor = serde_json::from_value(json!({"id": 1, "api_key_masked": ""})).unwrap();
        assert!(!m.api_key_masked);
        let m: Monitor = serde_json::from_value(json!({"id": 1})).unwrap();
        assert!(!m.api_key_masked);
    }
}
