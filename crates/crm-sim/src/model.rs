//! The simulated host's in-memory objects and their JSON renderings.
//!
//! Objects are stored in the shape the host keeps them; the `*_json` functions
//! render the DTOs the profile would answer with (redaction, optional fields), and
//! `State::dump` renders a secret-free view for tests and operators.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::faults::{Fault, RequestRecord};
pub(crate) use crate::ids::random_hex;
use crate::profile::Profile;
use crate::upstream::{Behaviour, Funds};

/// Credential keys the current profile strips from account JSON.
pub(crate) const SENSITIVE_CREDENTIALS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "session_key",
    "cookie",
    "aws_secret_access_key",
    "aws_session_token",
    "service_account_json",
    "service_account",
    "private_key",
];

pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

pub(crate) fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An Anthropic-shaped model item (`/v1/models`, `/admin/accounts/:id/models`).
pub(crate) fn claude_item(id: &str) -> Value {
    json!({"id": id, "type": "model", "display_name": id, "created_at": "2024-01-01T00:00:00Z"})
}

/// `****` plus the last four characters: enough to tell secrets apart, never enough to use one.
pub(crate) fn last4(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("****{tail}")
}

#[derive(Clone)]
pub(crate) struct Account {
    pub id: i64,
    pub name: String,
    pub notes: Option<String>,
    pub platform: String,
    pub kind: String,
    pub credentials: Map<String, Value>,
    pub extra: Map<String, Value>,
    pub proxy_id: Option<i64>,
    pub concurrency: i64,
    pub priority: i64,
    pub rate_multiplier: f64,
    pub status: String,
    pub error_message: String,
    pub schedulable: bool,
    pub temp_unschedulable_until: Option<DateTime<Utc>>,
    pub temp_unschedulable_reason: String,
    pub group_ids: Vec<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Account {
    pub fn api_key(&self) -> Option<&str> {
        self.credentials.get("api_key").and_then(Value::as_str)
    }
    pub fn base_url(&self) -> Option<&str> {
        self.credentials.get("base_url").and_then(Value::as_str)
    }
    pub fn model_mapping(&self) -> Option<&Map<String, Value>> {
        self.credentials
            .get("model_mapping")
            .and_then(Value::as_object)
    }
    /// Active, schedulable and not temporarily parked.
    pub fn is_available(&self) -> bool {
        self.status == "active"
            && self.schedulable
            && self.temp_unschedulable_until.is_none_or(|t| t <= now())
    }
    /// An empty mapping passes every model through; otherwise the mapping keys are the models.
    pub fn supports(&self, model: &str) -> bool {
        self.model_mapping()
            .is_none_or(|m| m.is_empty() || m.contains_key(model))
    }
    pub fn map_model(&self, model: &str) -> String {
        self.model_mapping()
            .and_then(|m| m.get(model))
            .and_then(Value::as_str)
            .unwrap_or(model)
            .to_owned()
    }
}

#[derive(Clone)]
pub(crate) struct Group {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub platform: String,
    pub rate_multiplier: f64,
    pub is_exclusive: bool,
    pub status: String,
    pub subscription_type: String,
    pub daily_limit_usd: Option<f64>,
    pub weekly_limit_usd: Option<f64>,
    pub monthly_limit_usd: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone)]
pub(crate) struct Channel {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub status: String,
    pub group_ids: Vec<i64>,
    pub model_pricing: Vec<Value>,
    pub model_mapping: Map<String, Value>,
    pub billing_model_source: String,
    pub restrict_models: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Channel {
    /// Models named by the pricing rows; a trailing `*` is a prefix wildcard.
    pub fn prices_model(&self, model: &str) -> Option<&Value> {
        self.model_pricing.iter().find(|row| {
            row.get("models")
                .and_then(Value::as_array)
                .is_some_and(|ms| {
                    ms.iter()
                        .filter_map(Value::as_str)
                        .any(|m| match m.strip_suffix('*') {
                            Some(prefix) => model.starts_with(prefix),
                            None => m == model,
                        })
                })
        })
    }
}

#[derive(Clone)]
pub(crate) struct User {
    pub id: i64,
    pub email: String,
    pub username: String,
    pub password: String,
    pub role: String,
    pub balance: f64,
    pub concurrency: i64,
    pub status: String,
    pub allowed_groups: Vec<i64>,
    pub notes: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone)]
pub(crate) struct ApiKey {
    pub id: i64,
    pub user_id: i64,
    pub key: String,
    pub name: String,
    pub group_id: Option<i64>,
    pub status: String,
    pub quota_used: f64,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone)]
pub(crate) struct Subscription {
    pub id: i64,
    pub user_id: i64,
    pub group_id: i64,
    pub starts_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub status: String,
    pub notes: String,
    pub assigned_by: i64,
    pub usage_usd: f64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Subscription {
    pub fn effective_status(&self) -> &str {
        if self.status == "active" && self.expires_at <= now() {
            "expired"
        } else {
            &self.status
        }
    }
}

/// A host-side channel monitor and the checks it ran.
#[derive(Clone)]
pub(crate) struct Monitor {
    pub id: i64,
    pub name: String,
    pub provider: String,
    pub api_mode: String,
    pub endpoint: String,
    pub api_key: String,
    pub primary_model: String,
    pub extra_models: Vec<String>,
    pub group_name: String,
    pub enabled: bool,
    pub interval_seconds: i64,
    pub jitter_seconds: i64,
    pub check_mode: String,
    pub account_id: Option<i64>,
    pub group_id: Option<i64>,
    /// Oldest first.
    pub history: Vec<MonitorCheck>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One model check of a monitor run.
#[derive(Clone)]
pub(crate) struct MonitorCheck {
    pub id: i64,
    pub model: String,
    pub status: String,
    pub latency_ms: Option<i64>,
    pub message: String,
    pub checked_at: DateTime<Utc>,
}

pub(crate) struct IdemRecord {
    pub fingerprint: String,
    pub status: u16,
    pub body: Value,
}

/// Everything the simulated host knows, behind one mutex.
pub(crate) struct State {
    pub profile: Profile,
    /// `None` after `DELETE /admin/settings/admin-api-key`.
    pub admin_key: Option<String>,
    pub next_id: i64,
    pub accounts: BTreeMap<i64, Account>,
    pub groups: BTreeMap<i64, Group>,
    pub deleted_groups: BTreeSet<i64>,
    pub channels: BTreeMap<i64, Channel>,
    pub users: BTreeMap<i64, User>,
    pub keys: BTreeMap<i64, ApiKey>,
    pub subscriptions: BTreeMap<i64, Subscription>,
    pub plans: BTreeMap<i64, Value>,
    pub monitors: BTreeMap<i64, Monitor>,
    pub compliance_accepted: bool,
    pub sessions: HashMap<String, i64>,
    pub idempotency: HashMap<String, IdemRecord>,
    pub upstream_keys: HashMap<String, Behaviour>,
    /// Upstream keys' balances once spent from or set (else the default).
    pub upstream_funds: HashMap<String, Funds>,
    pub slow_delay: Duration,
    pub latency: Duration,
    pub faults: Vec<Fault>,
    pub log: Vec<RequestRecord>,
    pub counts: BTreeMap<String, u64>,
    pub seq: u64,
}

impl State {
    pub fn new(
        profile: Profile,
        admin_key: Option<String>,
        admin_email: &str,
        admin_password: &str,
    ) -> Self {
        let t = now();
        let mut users = BTreeMap::new();
        users.insert(
            1,
            User {
                id: 1,
                email: admin_email.to_owned(),
                username: "admin".into(),
                password: admin_password.to_owned(),
                role: "admin".into(),
                balance: 0.0,
                concurrency: 5,
                status: "active".into(),
                allowed_groups: vec![],
                notes: String::new(),
                created_at: t,
                updated_at: t,
            },
        );
        Self {
            profile,
            admin_key,
            next_id: 1,
            accounts: BTreeMap::new(),
            groups: BTreeMap::new(),
            deleted_groups: BTreeSet::new(),
            channels: BTreeMap::new(),
            users,
            keys: BTreeMap::new(),
            subscriptions: BTreeMap::new(),
            plans: BTreeMap::new(),
            monitors: BTreeMap::new(),
            compliance_accepted: false,
            sessions: HashMap::new(),
            idempotency: HashMap::new(),
            upstream_keys: HashMap::new(),
            upstream_funds: HashMap::new(),
            slow_delay: Duration::from_secs(3),
            latency: Duration::ZERO,
            faults: Vec::new(),
            log: Vec::new(),
            counts: BTreeMap::new(),
            seq: 0,
        }
    }

    /// Ids are unique across kinds (the admin user is 1), which makes mix-ups visible in tests.
    pub fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn active_subscription(&self, user_id: i64, group_id: i64) -> Option<&Subscription> {
        self.subscriptions.values().find(|s| {
            s.user_id == user_id && s.group_id == group_id && s.effective_status() == "active"
        })
    }

    pub fn channel_of_group(&self, group_id: i64) -> Option<&Channel> {
        self.channels
            .values()
            .find(|c| c.group_ids.contains(&group_id))
    }

    pub fn accounts_in_group(&self, group_id: i64) -> impl Iterator<Item = &Account> {
        self.accounts
            .values()
            .filter(move |a| a.group_ids.contains(&group_id))
    }

    pub fn account_json(&self, a: &Account) -> Value {
        self.account_json_counted(a, None)
    }

    /// [`State::account_json`]; a listing passes the counts of
    /// [`State::group_account_counts`] for the groups it embeds.
    pub fn account_json_counted(
        &self,
        a: &Account,
        counts: Option<&HashMap<i64, (usize, usize)>>,
    ) -> Value {
        let p = &self.profile;
        let mut credentials = a.credentials.clone();
        let mut out = Map::new();
        out.insert("id".into(), json!(a.id));
        out.insert("name".into(), json!(a.name));
        out.insert("platform".into(), json!(a.platform));
        out.insert("type".into(), json!(a.kind));
        if p.credential_redaction {
            let mut status = Map::new();
            for k in SENSITIVE_CREDENTIALS {
                if let Some(v) = credentials.remove(*k) {
                    let present = !(v.is_null() || v.as_str() == Some(""));
                    status.insert(format!("has_{k}"), json!(present));
                }
            }
            status.entry("has_api_key").or_insert(json!(false));
            out.insert("credentials_status".into(), Value::Object(status));
        }
        out.insert("credentials".into(), Value::Object(credentials));
        out.insert("extra".into(), Value::Object(a.extra.clone()));
        out.insert("proxy_id".into(), json!(a.proxy_id));
        out.insert("concurrency".into(), json!(a.concurrency));
        out.insert("priority".into(), json!(a.priority));
        out.insert("status".into(), json!(a.status));
        out.insert("error_message".into(), json!(a.error_message));
        out.insert("schedulable".into(), json!(a.schedulable));
        out.insert("rate_limited_at".into(), Value::Null);
        out.insert("rate_limit_reset_at".into(), Value::Null);
        out.insert("overload_until".into(), Value::Null);
        out.insert("last_used_at".into(), Value::Null);
        if p.account_extended_fields {
            out.insert("notes".into(), json!(a.notes));
            out.insert("rate_multiplier".into(), json!(a.rate_multiplier));
            out.insert(
                "temp_unschedulable_until".into(),
                json!(a.temp_unschedulable_until.as_ref().map(ts)),
            );
            out.insert(
                "temp_unschedulable_reason".into(),
                json!(a.temp_unschedulable_reason),
            );
            out.insert("expires_at".into(), Value::Null);
            out.insert("auto_pause_on_expired".into(), json!(false));
        }
        out.insert("group_ids".into(), json!(a.group_ids));
        let groups: Vec<Value> = a
            .group_ids
            .iter()
            .filter_map(|g| self.groups.get(g))
            .map(|g| match counts {
                Some(c) => self.group_json_counted(g, c.get(&g.id).copied().unwrap_or_default()),
                None => self.group_json(g),
            })
            .collect();
        out.insert("groups".into(), Value::Array(groups));
        out.insert("current_concurrency".into(), json!(0));
        out.insert("created_at".into(), json!(ts(&a.created_at)));
        out.insert("updated_at".into(), json!(ts(&a.updated_at)));
        Value::Object(out)
    }

    pub fn group_json(&self, g: &Group) -> Value {
        let accounts: Vec<&Account> = self.accounts_in_group(g.id).collect();
        let active = accounts.iter().filter(|a| a.status == "active").count();
        self.group_json_counted(g, (accounts.len(), active))
    }

    /// `(accounts, active accounts)` of every group, in one pass over the
    /// accounts: a listing of many groups counts with this instead of
    /// scanning every account per group (a real host has an index for it).
    pub fn group_account_counts(&self) -> HashMap<i64, (usize, usize)> {
        let mut counts: HashMap<i64, (usize, usize)> = HashMap::new();
        for a in self.accounts.values() {
            for g in &a.group_ids {
                let c = counts.entry(*g).or_default();
                c.0 += 1;
                if a.status == "active" {
                    c.1 += 1;
                }
            }
        }
        counts
    }

    /// [`State::group_json`] with counts from [`State::group_account_counts`].
    pub fn group_json_counted(&self, g: &Group, (total, active): (usize, usize)) -> Value {
        json!({
            "id": g.id, "name": g.name, "description": g.description, "platform": g.platform,
            "rate_multiplier": g.rate_multiplier, "is_exclusive": g.is_exclusive, "status": g.status,
            "subscription_type": g.subscription_type,
            "daily_limit_usd": g.daily_limit_usd, "weekly_limit_usd": g.weekly_limit_usd,
            "monthly_limit_usd": g.monthly_limit_usd,
            "account_count": total, "active_account_count": active,
            "created_at": ts(&g.created_at), "updated_at": ts(&g.updated_at),
        })
    }

    pub fn channel_json(&self, c: &Channel) -> Value {
        json!({
            "id": c.id, "name": c.name, "description": c.description, "status": c.status,
            "group_ids": c.group_ids, "model_pricing": c.model_pricing,
            "model_mapping": c.model_mapping, "billing_model_source": c.billing_model_source,
            "restrict_models": c.restrict_models, "features": "",
            "created_at": ts(&c.created_at), "updated_at": ts(&c.updated_at),
        })
    }

    pub fn user_json(&self, u: &User) -> Value {
        let mut v = json!({
            "id": u.id, "email": u.email, "username": u.username, "role": u.role,
            "balance": u.balance, "concurrency": u.concurrency, "status": u.status,
            "allowed_groups": u.allowed_groups, "notes": u.notes,
            "created_at": ts(&u.created_at), "updated_at": ts(&u.updated_at),
        });
        if !self.profile.account_extended_fields
            && let Some(o) = v.as_object_mut()
        {
            o.insert("wechat".into(), json!(""));
        }
        v
    }

    pub fn key_json(&self, k: &ApiKey) -> Value {
        json!({
            "id": k.id, "user_id": k.user_id, "key": k.key, "name": k.name, "group_id": k.group_id,
            "status": k.status, "ip_whitelist": [], "ip_blacklist": [],
            "last_used_at": k.last_used_at.as_ref().map(ts), "quota": 0.0, "quota_used": k.quota_used,
            "expires_at": null,
            "group": k.group_id.and_then(|g| self.groups.get(&g)).map(|g| self.group_json(g)),
            "created_at": ts(&k.created_at), "updated_at": ts(&k.updated_at),
        })
    }

    pub fn subscription_json(&self, s: &Subscription) -> Value {
        json!({
            "id": s.id, "user_id": s.user_id, "group_id": s.group_id,
            "starts_at": ts(&s.starts_at), "expires_at": ts(&s.expires_at),
            "status": s.effective_status(),
            "daily_window_start": null, "weekly_window_start": null, "monthly_window_start": null,
            "daily_usage_usd": s.usage_usd, "weekly_usage_usd": s.usage_usd, "monthly_usage_usd": s.usage_usd,
            "assigned_by": s.assigned_by, "assigned_at": ts(&s.created_at), "notes": s.notes,
            "created_at": ts(&s.created_at), "updated_at": ts(&s.updated_at),
        })
    }

    /// Every object, with user keys and upstream secrets reduced to their last four characters.
    pub fn dump(&self) -> Value {
        let accounts: Vec<Value> = self
            .accounts
            .values()
            .map(|a| {
                let mut v = self.account_json(a);
                let mut creds = a.credentials.clone();
                for k in SENSITIVE_CREDENTIALS {
                    if let Some(s) = creds.get(*k).and_then(Value::as_str).map(last4) {
                        creds.insert((*k).into(), json!(s));
                    } else if creds.contains_key(*k) {
                        creds.insert((*k).into(), json!("****"));
                    }
                }
                if let Some(o) = v.as_object_mut() {
                    o.insert("credentials".into(), Value::Object(creds));
                    o.remove("groups");
                    o.insert("notes".into(), json!(a.notes));
                    o.insert(
                        "temp_unschedulable_reason".into(),
                        json!(a.temp_unschedulable_reason),
                    );
                }
                v
            })
            .collect();
        let keys: Vec<Value> = self
            .keys
            .values()
            .map(|k| {
                let mut v = self.key_json(k);
                if let Some(o) = v.as_object_mut() {
                    o.insert("key".into(), json!(last4(&k.key)));
                    o.remove("group");
                }
                v
            })
            .collect();
        let users: Vec<Value> = self.users.values().map(|u| self.user_json(u)).collect();
        let upstream: Vec<Value> = self
            .upstream_keys
            .iter()
            .map(|(k, b)| json!({"key": last4(k), "behaviour": b}))
            .collect();
        json!({
            "profile": self.profile.name,
            "version": self.profile.version,
            "accounts": accounts,
            "groups": self.groups.values().map(|g| self.group_json(g)).collect::<Vec<_>>(),
            "deleted_group_ids": self.deleted_groups,
            "channels": self.channels.values().map(|c| self.channel_json(c)).collect::<Vec<_>>(),
            "users": users,
            "api_keys": keys,
            "subscriptions": self.subscriptions.values().map(|s| self.subscription_json(s)).collect::<Vec<_>>(),
            "payment_plans": self.plans.values().collect::<Vec<_>>(),
            "channel_monitors": self.monitors.values().map(|m| json!({"id": m.id, "name": m.name, "provider": m.provider, "endpoint": m.endpoint, "api_key": last4(&m.api_key), "primary_model": m.primary_model, "interval_seconds": m.interval_seconds, "enabled": m.enabled, "checks": m.history.len()})).collect::<Vec<_>>(),
            "upstream_keys": upstream,
            "upstream_funds": self.upstream_funds.iter().map(|(k, f)| json!({"key": last4(k), "balance": f.amount, "currency": f.currency})).collect::<Vec<_>>(),
            "idempotency_keys": self.idempotency.len(),
            "faults": self.faults,
            "latency_ms": u64::try_from(self.latency.as_millis()).unwrap_or(u64::MAX),
            "slow_delay_ms": u64::try_from(self.slow_delay.as_millis()).unwrap_or(u64::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last4_keeps_only_the_tail() {
        assert_eq!(last4("sk-abcdef123456"), "****3456");
        assert_eq!(last4("ab"), "****ab");
    }

    #[test]
    fn current_profile_redacts_credentials() {
        let mut st = State::new(Profile::current(), Some("admin-x".into()), "a@b.c", "pw");
        let mut creds = Map::new();
        creds.insert("api_key".into(), json!("sk-secret-1234"));
        creds.insert("base_url".into(), json!("https://api.deepseek.com"));
        let t = now();
        let a = Account {
            id: 5,
            name: "a".into(),
            notes: None,
            platform: "deepseek".into(),
            kind: "apikey".into(),
            credentials: creds,
            extra: Map::new(),
            proxy_id: None,
            concurrency: 1,
            priority: 1,
            rate_multiplier: 1.0,
            status: "active".into(),
            error_message: String::new(),
            schedulable: true,
            temp_unschedulable_until: None,
            temp_unschedulable_reason: String::new(),
            group_ids: vec![],
            created_at: t,
            updated_at: t,
        };
        let v = st.account_json(&a);
        assert_eq!(v["credentials_status"]["has_api_key"], json!(true));
        assert!(v["credentials"].get("api_key").is_none());
        st.profile = Profile::legacy_2025_12();
        let v = st.account_json(&a);
        assert_eq!(v["credentials"]["api_key"], json!("sk-secret-1234"));
        assert!(v.get("credentials_status").is_none());
        assert!(v.get("notes").is_none());
        st.accounts.insert(5, a);
        assert!(!st.dump().to_string().contains("sk-secret-1234"));
    }
}
