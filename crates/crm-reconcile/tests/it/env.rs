//! A test world: crm-testkit's simulator + host adapter + store, reconcile's
//! ports over them with a manual clock, and an import of pack providers.

use chrono::{TimeZone, Utc};
use crm_domain::ports::{BatchRepo, HostApi};
use crm_domain::reconcile::{DriftItem, ReconcileScope};
use crm_domain::{AccessMode, BatchId, HostObjectId, ResourceKind, ResourceState, SecretString};
use crm_provision::{ImportRequest, Provisioner};
use crm_reconcile::{Ports, RepairOptions};
use crm_store::ManualClock;
use crm_testkit::TestEnv;
use serde_json::json;
use std::sync::Arc;

pub struct World {
    pub env: TestEnv,
    pub ports: Ports,
    pub clock: Arc<ManualClock>,
}

/// One imported provider: its batch and the host ids it created.
#[derive(Debug, Clone)]
pub struct Imported {
    pub batch: BatchId,
    pub accounts: Vec<HostObjectId>,
    pub group: HostObjectId,
    pub channel: Option<HostObjectId>,
}

impl World {
    pub async fn current() -> World {
        Self::from(TestEnv::current().await)
    }

    pub async fn legacy() -> World {
        Self::from(TestEnv::legacy().await)
    }

    pub fn from(env: TestEnv) -> World {
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
        ));
        let store = Arc::new(env.store.clone());
        let ports = Ports::from_storage(store, clock.clone(), env.ids.clone());
        World { env, ports, clock }
    }

    pub fn api(&self) -> &dyn HostApi {
        self.env.host.as_ref()
    }

    pub fn host_scope(&self) -> ReconcileScope {
        ReconcileScope {
            host_id: self.env.host_record.id.clone(),
            batch_id: None,
            provider: None,
        }
    }

    /// `opts` with the operator's upstream keys supplied (repair needs them
    /// to recreate accounts: crm keeps only fingerprints).
    pub fn with_keys(&self, opts: RepairOptions, keys: &[SecretString]) -> RepairOptions {
        RepairOptions {
            upstream_keys: keys.to_vec(),
            fingerprinter: Some(Arc::new(self.env.fingerprinter())),
            ..opts
        }
    }

    /// crm-provision's provisioner for this host, on reconcile's clock.
    pub fn provisioner(&self) -> Provisioner {
        let store = Arc::new(self.env.store.clone());
        Provisioner {
            host_id: self.env.host_record.id.clone(),
            host: self.env.host_api(),
            caps: self.env.caps.clone(),
            batches: store.clone(),
            leases: store.clone(),
            packs: store.clone(),
            clock: self.clock.clone(),
            ids: self.env.ids.clone(),
            sealer: store,
            fingerprinter: Arc::new(self.env.fingerprinter()),
            holder: "reconcile-tests".into(),
            lease_ttl: std::time::Duration::from_secs(60),
            max_concurrency: crm_provision::Provisioner::DEFAULT_MAX_CONCURRENCY,
        }
    }

    /// Imports a provider of the bundled pack with crm-provision (one
    /// account per key) and returns what the batch recorded.
    pub async fn import(&self, provider: &str, keys: &[SecretString]) -> Imported {
        self.import_in(provider, AccessMode::SelfService, keys)
            .await
    }

    /// [`Self::import`] in a given access mode.
    pub async fn import_in(
        &self,
        provider: &str,
        mode: AccessMode,
        keys: &[SecretString],
    ) -> Imported {
        let report = self
            .provisioner()
            .import(ImportRequest {
                provider: self.env.provider_ref(provider),
                pack_version: None,
                mode,
                upstream_keys: keys.to_vec(),
                accept_url_change: false,
                monitor: None,
            })
            .await
            .unwrap();
        assert_eq!(report.error, None, "import of {provider} failed");
        let batch = report.batch.id.clone();
        let resources = self.env.store.resources(&batch).await.unwrap();
        let of = |kind: ResourceKind| {
            resources
                .iter()
                .filter(move |r| r.kind == kind && r.state == ResourceState::Live)
                .map(|r| r.host_object_id)
        };
        Imported {
            accounts: of(ResourceKind::Account).collect(),
            group: of(ResourceKind::Group).next().unwrap(),
            channel: of(ResourceKind::Channel).next(),
            batch,
        }
    }
}

/// Items reduced to what a reader checks: category, kind, name, fields.
pub fn brief(items: &[DriftItem]) -> Vec<String> {
    items
        .iter()
        .map(|i| {
            let fields: Vec<&str> = i.fields.iter().map(|f| f.field.as_str()).collect();
            format!(
                "{} {} {} [{}]",
                i.category,
                i.kind,
                i.name,
                fields.join(",")
            )
        })
        .collect()
}

/// Host ids and run ids vary with the simulator; snapshots redact them.
pub fn redacted(v: impl serde::Serialize) -> serde_json::Value {
    let mut v = serde_json::to_value(v).unwrap();
    redact(&mut v);
    v
}

fn redact(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if matches!(
                    k.as_str(),
                    "host_object_id" | "id" | "started_at" | "finished_at" | "host_requests"
                ) && !x.is_null()
                {
                    *x = json!(format!("[{k}]"));
                } else {
                    redact(x);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact),
        serde_json::Value::String(s) => {
            // Names embed the pepper-keyed fingerprint; details embed host ids.
            *s = redact_text(s);
        }
        _ => {}
    }
}

fn redact_text(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '#' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            while chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                chars.next();
            }
            out.push_str("#[id]");
        } else {
            out.push(c);
        }
    }
    // `crm-<pack>.<provider>-<8 hex>`: the hex is a keyed fingerprint.
    let mut words: Vec<String> = Vec::new();
    for w in out.split(' ') {
        words.push(match w.rsplit_once('-') {
            Some((head, tail))
                if w.starts_with("crm-")
                    && tail.len() == 8
                    && tail.chars().all(|c| c.is_ascii_hexdigit()) =>
            {
                format!("{head}-[fp]")
            }
            _ => w.to_owned(),
        });
    }
    words.join(" ")
}
