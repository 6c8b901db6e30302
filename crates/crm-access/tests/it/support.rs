//! One isolated world per test (own simulator, own store), with
//! crm-provision's real import and rollback around the access use cases.

// Shared with the `canary` test binary, which uses only part of it.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use crm_access::{AccessPorts, ClosureRequest, HeldKey};
use crm_domain::batch::ImportBatch;
use crm_domain::host::Capabilities;
use crm_domain::observed::AccountPatch;
use crm_domain::ports::{BatchRepo, HostApi};
use crm_domain::spec::ProviderSpec;
use crm_domain::{AccessMode, AccessStatus, BatchId, ResourceKind, SecretString};
use crm_provision::{ImportRequest, Provisioner, RollbackReport};
use crm_testkit::{FixedClock, TestEnv};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub struct World {
    pub env: TestEnv,
    pub clock: FixedClock,
    pub provisioner: Provisioner,
}

pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

impl World {
    pub async fn new() -> World {
        World::from_env(TestEnv::current().await)
    }

    pub fn from_env(env: TestEnv) -> World {
        let clock = FixedClock(t0());
        let store = Arc::new(env.store.clone());
        let provisioner = Provisioner {
            host_id: env.host_record.id.clone(),
            host: env.host_api(),
            caps: env.caps.clone(),
            batches: store.clone(),
            leases: store.clone(),
            packs: store.clone(),
            clock: Arc::new(clock),
            ids: env.ids.clone(),
            sealer: store,
            fingerprinter: Arc::new(env.fingerprinter()),
            holder: "crm-access-tests".into(),
            lease_ttl: Duration::from_secs(60),
            max_concurrency: crm_provision::Provisioner::DEFAULT_MAX_CONCURRENCY,
        };
        World {
            env,
            clock,
            provisioner,
        }
    }

    pub fn ports(&self) -> AccessPorts<'_> {
        AccessPorts {
            host: &*self.env.host,
            upstream: &*self.env.upstream,
            batches: &self.env.store,
            checks: &self.env.store,
            funds: &self.env.store,
            clock: &self.clock,
            ids: &*self.env.ids,
            sealer: &self.env.store,
        }
    }

    /// Options carrying what the application core passes: the probed
    /// capabilities and the fingerprinter that matches keys to accounts.
    pub fn verify_options(&self) -> crm_access::VerifyOptions {
        crm_access::VerifyOptions {
            caps: Some(self.env.caps.clone()),
            fingerprinter: Some(Arc::new(self.env.fingerprinter())),
            ..Default::default()
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

    /// Imports `provider` in `mode` with one upstream key (crm-provision).
    pub async fn import(&self, provider_id: &str, mode: AccessMode, key: &SecretString) -> BatchId {
        let report = self
            .provisioner
            .import(ImportRequest {
                provider: self.env.provider_ref(provider_id),
                pack_version: None,
                mode,
                upstream_keys: vec![key.clone()],
                accept_url_change: false,
                monitor: None,
            })
            .await
            .unwrap();
        assert_eq!(report.error, None, "import of {provider_id} in {mode}");
        report.batch.id
    }

    /// Replaces the model mapping of the batch's accounts on the host (an
    /// operator edit crm did not make), e.g. to hide the smoke-test model.
    pub async fn set_account_mapping(&self, batch: &BatchId, mapping: BTreeMap<String, String>) {
        for r in self.env.store.resources(batch).await.unwrap() {
            if r.kind == ResourceKind::Account {
                let patch = AccountPatch {
                    model_mapping: Some(mapping.clone()),
                    ..Default::default()
                };
                self.env
                    .host
                    .update_account(r.host_object_id, &patch)
                    .await
                    .unwrap();
            }
        }
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

    pub async fn rollback(&self, batch: &BatchId) -> RollbackReport {
        self.provisioner.rollback(batch).await.unwrap()
    }
}
