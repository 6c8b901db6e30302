//! One isolated world per test (own simulator, own store) and a minimal
//! import that leaves a batch with a group and an account, the way
//! crm-provision's import does, so closures have something to close.

use chrono::{DateTime, Utc};
use crm_access::{AccessPorts, ClosureRequest, HeldKey};
use crm_domain::batch::ImportBatch;
use crm_domain::host::Capabilities;
use crm_domain::observed::{AccountDraft, GroupDraft};
use crm_domain::ownership::{marked_text, provider_slug};
use crm_domain::plan::Plan;
use crm_domain::ports::{BatchRepo, HostApi};
use crm_domain::spec::ProviderSpec;
use crm_domain::{
    AccessMode, AccessStatus, BatchId, BatchStatus, GroupBilling, JournalOp, ResourceKind,
    SecretString,
};
use crm_provision::{Intent, JournalExecutor, Step};
use crm_testkit::{FixedClock, TestEnv};
use std::collections::BTreeMap;

pub struct World {
    pub env: TestEnv,
    pub clock: FixedClock,
}

pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

impl World {
    pub async fn new() -> World {
        World {
            env: TestEnv::current().await,
            clock: FixedClock(t0()),
        }
    }

    pub fn ports(&self) -> AccessPorts<'_> {
        AccessPorts {
            host: &*self.env.host,
            upstream: &*self.env.upstream,
            batches: &self.env.store,
            checks: &self.env.store,
            clock: &self.clock,
            ids: &*self.env.ids,
            sealer: &self.env.store,
        }
    }

    pub fn caps(&self) -> &Capabilities {
        &self.env.caps
    }

    pub fn provider(&self, id: &str) -> ProviderSpec {
        self.env.provider(id).clone()
    }

    pub async fn batch(&self, id: &BatchId) -> ImportBatch {
        self.env.store.get_batch(id).await.unwrap()
    }

    pub async fn access_status(&self, id: &BatchId) -> AccessStatus {
        self.batch(id).await.access_status
    }

    /// Imports `provider` in `mode` with one upstream key: a group of the
    /// mode's billing type and one account bound to it, both journaled
    /// managed resources of a new batch. `mapping` replaces the pack's model
    /// mapping on the account (to hide a model).
    pub async fn import(
        &self,
        provider_id: &str,
        mode: AccessMode,
        upstream_key: &SecretString,
        mapping: Option<BTreeMap<String, String>>,
    ) -> BatchId {
        let env = &self.env;
        let spec = env.provider(provider_id);
        let provider = env.provider_ref(provider_id);
        let id = BatchId::new(crm_domain::ports::IdSource::new_id(&*env.ids, "b"));
        let batch = ImportBatch {
            id: id.clone(),
            host_id: env.host_record.id.clone(),
            provider: provider.clone(),
            mode,
            pack_version: env.pack.manifest.version.clone(),
            pack_checksum: env.pack.checksum.clone(),
            status: BatchStatus::Applying,
            status_reason: None,
            access_status: AccessStatus::NotConfigured,
            plan: Plan::default(),
            upstream_keys: vec![env.fingerprinter().fingerprint(upstream_key)],
            created_at: t0(),
            updated_at: t0(),
        };
        env.store.create_batch(batch).await.unwrap();
        let platform = if env.caps.accepts_platform(&spec.platform.native) {
            spec.platform.native.clone()
        } else {
            spec.platform.fallback.clone()
        };
        let host: &dyn HostApi = &*env.host;
        let exec = JournalExecutor::new(&env.store, env.caps.idempotency_key);
        let slug = provider_slug(&provider);
        let group_name = format!("crm-{slug}-{mode}-{id}");
        let group = GroupDraft {
            name: group_name.clone(),
            description: Some(marked_text(&id, "group")),
            platform: platform.clone(),
            billing: match mode {
                AccessMode::SelfService => GroupBilling::Standard,
                AccessMode::Subscription => GroupBilling::Subscription,
            },
            rate_multiplier: spec.access.group_rate_multiplier,
            daily_limit_usd: spec.access.daily_limit_usd,
            weekly_limit_usd: spec.access.weekly_limit_usd,
            monthly_limit_usd: spec.access.monthly_limit_usd,
            is_exclusive: false,
        };
        let g = exec
            .run(Step::new(
                Intent {
                    batch_id: id.clone(),
                    op: JournalOp::Create,
                    kind: ResourceKind::Group,
                    natural_key: group_name.clone(),
                    name: group_name.clone(),
                    host_object_id: None,
                    desired: serde_json::json!({"name": group_name}),
                },
                move |_| Box::pin(async move { host.create_group(&group).await }),
            ))
            .await
            .unwrap();
        let group_id = g.host_object_id.unwrap();
        let account_name = format!("crm-{slug}-{id}-1");
        let draft = AccountDraft {
            name: account_name.clone(),
            notes: Some(marked_text(&id, "upstream account")),
            platform,
            account_type: "apikey".into(),
            base_url: spec.openai_base_url.clone(),
            api_key: upstream_key.clone(),
            model_mapping: mapping.unwrap_or_else(|| spec.model_mapping.clone()),
            credential_fields: BTreeMap::new(),
            extra: BTreeMap::new(),
            group_ids: vec![group_id],
            concurrency: 3,
            priority: 1,
        };
        exec.run(Step::new(
            Intent {
                batch_id: id.clone(),
                op: JournalOp::Create,
                kind: ResourceKind::Account,
                natural_key: account_name.clone(),
                name: account_name.clone(),
                host_object_id: None,
                desired: serde_json::json!({"name": account_name}),
            },
            move |_| Box::pin(async move { host.create_account(&draft, None).await }),
        ))
        .await
        .unwrap();
        env.store
            .set_batch_status(&id, BatchStatus::Applied, None)
            .await
            .unwrap();
        id
    }

    /// Closes access with a probe user and the pack defaults (or `balance`).
    pub async fn close(&self, batch: &BatchId, provider_id: &str, balance: Option<f64>) -> HeldKey {
        let mut req = ClosureRequest::probe();
        req.starting_balance = balance;
        crm_access::close_access(
            &self.ports(),
            self.caps(),
            batch,
            &self.provider(provider_id),
            &req,
        )
        .await
        .unwrap()
        .key
    }
}
