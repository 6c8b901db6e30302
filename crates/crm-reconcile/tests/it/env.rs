//! A test world: crm-testkit's simulator + host adapter + store, reconcile's
//! ports over them with a manual clock, and an import of pack providers.

use chrono::{TimeZone, Utc};
use crm_domain::batch::ImportBatch;
use crm_domain::plan::Plan;
use crm_domain::ports::{BatchRepo, HostApi, SecretSealer};
use crm_domain::reconcile::{DriftItem, ReconcileScope};
use crm_domain::{
    AccessMode, AccessStatus, BatchId, BatchStatus, HostObjectId, JournalOp, ProviderKey,
    ResourceKind, SecretString,
};
use crm_provision::desired::{
    AccountSpec, channel_draft, choose_platform, group_draft, to_desired,
};
use crm_provision::journal::spec_digest;
use crm_provision::{Intent, JournalExecutor, PackProvider, Step};
use crm_reconcile::Ports;
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

    pub fn sealer(&self) -> Arc<dyn SecretSealer> {
        Arc::new(self.env.store.clone())
    }

    /// Imports a provider of the bundled pack the way crm-provision does
    /// (its names, desired specs and journal executor, in the brief's order:
    /// accounts, group, binding, channel), one account per key.
    pub async fn import(&self, provider: &str, keys: &[SecretString]) -> Imported {
        let env = &self.env;
        let store = &env.store;
        let pp = PackProvider::from_pack(&env.pack, &ProviderKey::new(provider)).unwrap();
        let choice = choose_platform(&pp.spec, &env.caps).unwrap();
        let mode = AccessMode::SelfService;
        let batch = BatchId::new(format!("b-{provider}"));
        let now = self.clock_now();
        let fpr = env.fingerprinter();
        store
            .create_batch(ImportBatch {
                id: batch.clone(),
                host_id: env.host_record.id.clone(),
                provider: pp.provider.clone(),
                mode,
                pack_version: pp.pack_version.clone(),
                pack_checksum: pp.pack_checksum.clone(),
                status: BatchStatus::Applying,
                status_reason: None,
                access_status: AccessStatus::NotConfigured,
                plan: Plan::default(),
                upstream_keys: keys.iter().map(|k| fpr.fingerprint(k)).collect(),
                created_at: now,
                updated_at: now,
            })
            .await
            .unwrap();
        let exec = JournalExecutor::new(store, env.caps.idempotency_key);
        let api = self.api();
        let display = pp.spec.display_name.clone();
        let mut accounts = Vec::new();
        for key in keys {
            let fp = fpr.fingerprint(key);
            let spec = AccountSpec::new(&pp, &choice, &env.caps, &fp);
            let sealed = store.seal(key).unwrap();
            let draft = spec.draft(&batch, &display, key.clone(), vec![]);
            let intent = Intent {
                batch_id: batch.clone(),
                op: JournalOp::Create,
                kind: ResourceKind::Account,
                natural_key: spec.natural_key.clone(),
                name: spec.name.clone(),
                host_object_id: None,
                desired: spec.desired(&batch, &display, &[], Some(&sealed)),
            };
            let d = &draft;
            let a = exec
                .run(Step::new(intent, move |k| api.create_account(d, k)))
                .await
                .unwrap();
            accounts.push((spec, a.host_object_id.unwrap(), sealed));
        }
        let gdraft = group_draft(&pp, &choice, mode, &batch);
        let gd = &gdraft;
        let g = exec
            .run(Step::new(
                Intent {
                    batch_id: batch.clone(),
                    op: JournalOp::Create,
                    kind: ResourceKind::Group,
                    natural_key: gdraft.name.clone(),
                    name: gdraft.name.clone(),
                    host_object_id: None,
                    desired: to_desired(&gdraft),
                },
                move |_| api.create_group(gd),
            ))
            .await
            .unwrap()
            .host_object_id
            .unwrap();
        for (spec, id, sealed) in &accounts {
            let desired = spec.desired(&batch, &display, &[g], Some(sealed));
            let patch = crm_domain::observed::AccountPatch {
                group_ids: Some(vec![g]),
                ..Default::default()
            };
            let (p, id) = (&patch, *id);
            exec.run(Step::new(
                Intent {
                    batch_id: batch.clone(),
                    op: JournalOp::Bind,
                    kind: ResourceKind::Account,
                    natural_key: spec.natural_key.clone(),
                    name: spec.name.clone(),
                    host_object_id: Some(id),
                    desired: desired.clone(),
                },
                move |_| api.update_account(id, p),
            ))
            .await
            .unwrap();
            store
                .update_resource_desired(
                    &batch,
                    ResourceKind::Account,
                    id,
                    spec_digest(&desired),
                    desired,
                )
                .await
                .unwrap();
        }
        let channel = if env.caps.channels {
            let cdraft = channel_draft(&pp, &choice, mode, &batch, Some(g)).unwrap();
            let cd = &cdraft;
            Some(
                exec.run(Step::new(
                    Intent {
                        batch_id: batch.clone(),
                        op: JournalOp::Create,
                        kind: ResourceKind::Channel,
                        natural_key: cdraft.name.clone(),
                        name: cdraft.name.clone(),
                        host_object_id: None,
                        desired: to_desired(&cdraft),
                    },
                    move |_| api.create_channel(cd),
                ))
                .await
                .unwrap()
                .host_object_id
                .unwrap(),
            )
        } else {
            None
        };
        store
            .set_batch_status(&batch, BatchStatus::Applied, None)
            .await
            .unwrap();
        Imported {
            batch,
            accounts: accounts.iter().map(|(_, id, _)| *id).collect(),
            group: g,
            channel,
        }
    }

    fn clock_now(&self) -> chrono::DateTime<Utc> {
        use crm_domain::ports::Clock;
        self.clock.now()
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
