//! Shared helpers: a provisioner over a `TestEnv`, state-dump views, and a
//! host decorator that stops the world at the k-th mutating call.

use async_trait::async_trait;
use chrono::Utc;
use crm_domain::host::Capabilities;
use crm_domain::observed::*;
use crm_domain::ports::{HostApi, HostResult};
use crm_domain::{AccessMode, HostObjectId, ProviderRef, SecretString};
use crm_provision::{ImportRequest, Provisioner};
use crm_sub2api::Sub2apiConnector;
use crm_testkit::{FixedClock, TestEnv, admin_key, sim_key};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

pub const PROFILES: [&str; 2] = ["current", "legacy-2025-12"];

/// A provisioner over `env` using `host` (the env's own handle by default).
pub fn provisioner(env: &TestEnv, host: Arc<dyn HostApi>, holder: &str) -> Provisioner {
    let store = Arc::new(env.store.clone());
    Provisioner {
        host_id: env.host_record.id.clone(),
        host,
        caps: env.caps.clone(),
        batches: store.clone(),
        leases: store.clone(),
        packs: store.clone(),
        clock: Arc::new(FixedClock(Utc::now())),
        ids: env.ids.clone(),
        sealer: store.clone(),
        fingerprinter: Arc::new(env.fingerprinter()),
        holder: holder.into(),
        lease_ttl: Duration::from_secs(60),
        max_concurrency: crm_provision::Provisioner::DEFAULT_MAX_CONCURRENCY,
    }
}

/// A host handle with a short client timeout (for timeout faults).
pub fn short_timeout_host(env: &TestEnv) -> Arc<dyn HostApi> {
    let connector = Sub2apiConnector {
        timeout: Duration::from_millis(600),
        ..Sub2apiConnector::default()
    };
    Arc::new(
        connector
            .open(&env.host_record, admin_key(&env.sim))
            .expect("client builds"),
    )
}

pub fn keys(tags: &[&str]) -> Vec<SecretString> {
    tags.iter().map(|t| sim_key("ok", t)).collect()
}

pub fn request(provider: ProviderRef, tags: &[&str]) -> ImportRequest {
    ImportRequest {
        provider,
        pack_version: None,
        mode: AccessMode::SelfService,
        upstream_keys: keys(tags),
        accept_url_change: false,
        monitor: None,
    }
}

/// The host objects of the dump, without volatile fields.
pub fn objects(env: &TestEnv) -> Value {
    let d = env.dump();
    serde_json::json!({
        "accounts": d["accounts"],
        "groups": d["groups"],
        "channels": d["channels"],
        "users": d["users"],
        "api_keys": d["api_keys"],
        "subscriptions": d["subscriptions"],
    })
}

/// `kind name` of every object in the dump whose name starts with `crm-`,
/// sorted (duplicates stay visible).
pub fn crm_names(env: &TestEnv) -> Vec<String> {
    let d = env.dump();
    let mut out = Vec::new();
    for kind in ["accounts", "groups", "channels"] {
        for o in d[kind].as_array().into_iter().flatten() {
            let name = o["name"].as_str().unwrap_or_default();
            if name.starts_with("crm-") {
                out.push(format!("{kind} {name}"));
            }
        }
    }
    out.sort();
    out
}

/// Objects carrying crm's marker or crm's name (what rollback must remove).
pub fn crm_marked(env: &TestEnv) -> Vec<String> {
    let d = env.dump();
    let mut out = Vec::new();
    for (kind, text) in [
        ("accounts", "notes"),
        ("groups", "description"),
        ("channels", "description"),
    ] {
        for o in d[kind].as_array().into_iter().flatten() {
            let name = o["name"].as_str().unwrap_or_default();
            let marked = o[text].as_str().is_some_and(|t| t.contains("[crm:batch="));
            if marked || name.starts_with("crm-") {
                out.push(format!("{kind} {name}"));
            }
        }
    }
    out
}

/// `kind name` of every item of a plan, sorted like [`crm_names`].
pub fn planned_names(plan: &crm_domain::plan::Plan) -> Vec<String> {
    let mut v: Vec<String> = plan
        .items
        .iter()
        .map(|i| format!("{}s {}", i.kind, i.name))
        .collect();
    v.sort();
    v
}

/// (method, route) of every admin mutation the sim saw since the last
/// `clear_requests`, in order.
pub fn mutations(env: &TestEnv) -> Vec<(String, String)> {
    env.sim
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && r.path.starts_with("/api/v1/admin"))
        .map(|r| (r.method, r.route))
        .collect()
}

/// Where the world stops at the k-th mutating call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// The intent is committed; the call never leaves.
    BeforeCall,
    /// The host applied the call; its result is never recorded.
    AfterCall,
}

/// A host decorator: the k-th mutating call signals `reached` and then never
/// returns, so the caller's future can be dropped there (a crash).
pub struct GatedHost {
    inner: Arc<dyn HostApi>,
    k: u32,
    point: CrashPoint,
    seen: AtomicU32,
    pub reached: Arc<Notify>,
    in_flight: AtomicU32,
    max_in_flight: AtomicU32,
}

impl GatedHost {
    pub fn new(inner: Arc<dyn HostApi>, k: u32, point: CrashPoint) -> Self {
        GatedHost {
            inner,
            k,
            point,
            seen: AtomicU32::new(0),
            reached: Arc::new(Notify::new()),
            in_flight: AtomicU32::new(0),
            max_in_flight: AtomicU32::new(0),
        }
    }

    /// A host that never stops: it only counts mutating calls in flight.
    pub fn counting(inner: Arc<dyn HostApi>) -> Self {
        Self::new(inner, u32::MAX, CrashPoint::BeforeCall)
    }

    /// The most mutating calls that were in flight at once so far.
    pub fn max_in_flight(&self) -> u32 {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// Starts counting afresh.
    pub fn reset_in_flight(&self) {
        self.max_in_flight.store(0, Ordering::SeqCst);
    }

    async fn gate<T>(
        &self,
        call: impl std::future::Future<Output = HostResult<T>>,
    ) -> HostResult<T> {
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if n != self.k {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let r = call.await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return r;
        }
        if self.point == CrashPoint::AfterCall {
            let _ = call.await;
        }
        self.reached.notify_one();
        std::future::pending().await
    }
}

#[async_trait]
impl HostApi for GatedHost {
    async fn probe(&self) -> HostResult<Capabilities> {
        self.inner.probe().await
    }
    fn request_count(&self) -> u32 {
        self.inner.request_count()
    }
    async fn list_accounts(&self) -> HostResult<Vec<HostAccount>> {
        self.inner.list_accounts().await
    }
    async fn get_account(&self, id: HostObjectId) -> HostResult<HostAccount> {
        self.inner.get_account(id).await
    }
    async fn create_account(&self, d: &AccountDraft, k: Option<String>) -> HostResult<HostAccount> {
        self.gate(self.inner.create_account(d, k)).await
    }
    async fn update_account(&self, id: HostObjectId, p: &AccountPatch) -> HostResult<HostAccount> {
        self.gate(self.inner.update_account(id, p)).await
    }
    async fn set_account_schedulable(&self, id: HostObjectId, s: bool) -> HostResult<()> {
        self.gate(self.inner.set_account_schedulable(id, s)).await
    }
    async fn delete_account(&self, id: HostObjectId) -> HostResult<()> {
        self.gate(self.inner.delete_account(id)).await
    }
    async fn clear_account_error(&self, id: HostObjectId) -> HostResult<HostAccount> {
        self.gate(self.inner.clear_account_error(id)).await
    }
    async fn test_account(&self, id: HostObjectId, m: Option<String>) -> HostResult<AccountProbe> {
        self.inner.test_account(id, m).await
    }
    async fn list_groups(&self) -> HostResult<Vec<HostGroup>> {
        self.inner.list_groups().await
    }
    async fn create_group(&self, d: &GroupDraft) -> HostResult<HostGroup> {
        self.gate(self.inner.create_group(d)).await
    }
    async fn update_group(&self, id: HostObjectId, d: &GroupDraft) -> HostResult<HostGroup> {
        self.gate(self.inner.update_group(id, d)).await
    }
    async fn delete_group(&self, id: HostObjectId) -> HostResult<()> {
        self.gate(self.inner.delete_group(id)).await
    }
    async fn list_channels(&self) -> HostResult<Vec<HostChannel>> {
        self.inner.list_channels().await
    }
    async fn create_channel(&self, d: &ChannelDraft) -> HostResult<HostChannel> {
        self.gate(self.inner.create_channel(d)).await
    }
    async fn update_channel(&self, id: HostObjectId, d: &ChannelDraft) -> HostResult<HostChannel> {
        self.gate(self.inner.update_channel(id, d)).await
    }
    async fn delete_channel(&self, id: HostObjectId) -> HostResult<()> {
        self.gate(self.inner.delete_channel(id)).await
    }
    async fn list_users(&self, s: Option<String>) -> HostResult<Vec<HostUser>> {
        self.inner.list_users(s).await
    }
    async fn create_user(&self, d: &UserDraft) -> HostResult<HostUser> {
        self.gate(self.inner.create_user(d)).await
    }
    async fn update_user_balance(
        &self,
        id: HostObjectId,
        a: f64,
        op: BalanceOp,
        n: Option<String>,
    ) -> HostResult<HostUser> {
        self.gate(self.inner.update_user_balance(id, a, op, n))
            .await
    }
    async fn update_user_allowed_groups(
        &self,
        id: HostObjectId,
        g: Vec<HostObjectId>,
    ) -> HostResult<HostUser> {
        self.gate(self.inner.update_user_allowed_groups(id, g))
            .await
    }
    async fn delete_user(&self, id: HostObjectId) -> HostResult<()> {
        self.gate(self.inner.delete_user(id)).await
    }
    async fn list_user_api_keys(&self, u: HostObjectId) -> HostResult<Vec<HostApiKey>> {
        self.inner.list_user_api_keys(u).await
    }
    async fn list_group_api_keys(&self, g: HostObjectId) -> HostResult<Vec<HostApiKey>> {
        self.inner.list_group_api_keys(g).await
    }
    async fn create_user_api_key(
        &self,
        l: &UserLogin,
        d: &ApiKeyDraft,
    ) -> HostResult<CreatedApiKey> {
        self.gate(self.inner.create_user_api_key(l, d)).await
    }
    async fn reveal_user_api_key(
        &self,
        l: &UserLogin,
        k: HostObjectId,
    ) -> HostResult<CreatedApiKey> {
        self.inner.reveal_user_api_key(l, k).await
    }
    async fn rebind_user_api_key(
        &self,
        l: &UserLogin,
        k: HostObjectId,
        g: HostObjectId,
    ) -> HostResult<HostApiKey> {
        self.gate(self.inner.rebind_user_api_key(l, k, g)).await
    }
    async fn delete_user_api_key(&self, l: &UserLogin, k: HostObjectId) -> HostResult<()> {
        self.gate(self.inner.delete_user_api_key(l, k)).await
    }
    async fn rebind_api_key(&self, k: HostObjectId, g: HostObjectId) -> HostResult<HostApiKey> {
        self.gate(self.inner.rebind_api_key(k, g)).await
    }
    async fn list_group_subscriptions(&self, g: HostObjectId) -> HostResult<Vec<HostSubscription>> {
        self.inner.list_group_subscriptions(g).await
    }
    async fn list_user_subscriptions(&self, u: HostObjectId) -> HostResult<Vec<HostSubscription>> {
        self.inner.list_user_subscriptions(u).await
    }
    async fn assign_subscription(
        &self,
        u: HostObjectId,
        g: HostObjectId,
        d: u32,
        n: Option<String>,
    ) -> HostResult<HostSubscription> {
        self.gate(self.inner.assign_subscription(u, g, d, n)).await
    }
    async fn revoke_subscription(&self, id: HostObjectId) -> HostResult<()> {
        self.gate(self.inner.revoke_subscription(id)).await
    }
    async fn gateway_models(&self, k: &SecretString) -> HostResult<ModelListing> {
        self.inner.gateway_models(k).await
    }
    async fn gateway_chat(&self, k: &SecretString, m: String) -> HostResult<CallOutcome> {
        self.inner.gateway_chat(k, m).await
    }
    async fn gateway_messages(&self, k: &SecretString, m: String) -> HostResult<CallOutcome> {
        self.inner.gateway_messages(k, m).await
    }
    async fn list_monitors(&self) -> HostResult<Vec<HostMonitor>> {
        self.inner.list_monitors().await
    }
    async fn create_monitor(&self, d: &MonitorDraft) -> HostResult<HostMonitor> {
        self.gate(self.inner.create_monitor(d)).await
    }
    async fn update_monitor(&self, id: HostObjectId, p: &MonitorPatch) -> HostResult<HostMonitor> {
        self.gate(self.inner.update_monitor(id, p)).await
    }
    async fn delete_monitor(&self, id: HostObjectId) -> HostResult<()> {
        self.gate(self.inner.delete_monitor(id)).await
    }
    async fn monitor_history(&self, id: HostObjectId, limit: u32) -> HostResult<Vec<MonitorCheck>> {
        self.inner.monitor_history(id, limit).await
    }
}
