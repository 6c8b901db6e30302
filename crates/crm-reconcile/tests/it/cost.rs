//! Observation cost: a host-scope run lists at the host's maximum page size,
//! so its request count follows the number of pages, not of objects.

use crate::env::World;
use crm_domain::batch::ImportBatch;
use crm_domain::observed::AccountDraft;
use crm_domain::ownership::marked_text;
use crm_domain::plan::Plan;
use crm_domain::ports::BatchRepo;
use crm_domain::{
    AccessMode, AccessStatus, BatchId, BatchStatus, JournalOp, Platform, ProviderRef,
    ReconcileStatus, ResourceKind, SecretString,
};
use crm_provision::{Intent, JournalExecutor};
use crm_reconcile::{RunOptions, reconcile};
use serde_json::json;
use std::collections::BTreeMap;

const TOTAL: usize = 2000;
const MANAGED: usize = 500;

fn draft(name: String, notes: Option<String>, i: usize) -> AccountDraft {
    AccountDraft {
        name,
        notes,
        platform: Platform::new("deepseek"),
        account_type: "apikey".into(),
        base_url: "https://api.deepseek.com".into(),
        api_key: SecretString::from(format!("sim-ok-bulk{i}-0123456789abcdef")),
        model_mapping: BTreeMap::new(),
        credential_fields: BTreeMap::new(),
        extra: BTreeMap::new(),
        group_ids: vec![],
        concurrency: 1,
        priority: 1,
    }
}

#[tokio::test]
async fn a_host_scope_run_costs_pages_not_objects() {
    let w = World::current().await;
    assert_eq!(w.env.caps.max_page_size, 1000);
    let api = w.api();
    let batch = BatchId::new("b-bulk");
    let now = chrono::Utc::now();
    w.env
        .store
        .create_batch(ImportBatch {
            id: batch.clone(),
            host_id: w.env.host_record.id.clone(),
            provider: ProviderRef::new("cn-official", "deepseek"),
            mode: AccessMode::SelfService,
            pack_version: w.env.pack.manifest.version.clone(),
            pack_checksum: w.env.pack.checksum.clone(),
            status: BatchStatus::Applied,
            status_reason: None,
            access_status: AccessStatus::NotConfigured,
            plan: Plan::default(),
            upstream_keys: vec![],
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap();
    let marker = marked_text(&batch, "bulk upstream account");
    // Seed through the admin API, a few at a time.
    let drafts: Vec<AccountDraft> = (0..TOTAL)
        .map(|i| {
            if i < MANAGED {
                draft(
                    format!("crm-cn-official.deepseek-{i:08x}"),
                    Some(marker.clone()),
                    i,
                )
            } else {
                draft(format!("operator-{i}"), None, i)
            }
        })
        .collect();
    let mut created = Vec::new();
    for chunk in drafts.chunks(50) {
        let calls = chunk.iter().map(|d| api.create_account(d, None));
        for a in futures::future::join_all(calls).await {
            created.push(a.unwrap());
        }
    }
    // The 500 crm accounts are recorded as the batch's managed resources.
    let exec = JournalExecutor::new(&w.env.store, false);
    for a in created.iter().filter(|a| a.name.starts_with("crm-")) {
        exec.adopt(
            Intent {
                batch_id: batch.clone(),
                op: JournalOp::Adopt,
                kind: ResourceKind::Account,
                natural_key: a.name.clone(),
                name: a.name.clone(),
                host_object_id: Some(a.id),
                desired: json!({
                    "name": a.name,
                    "notes": marker,
                    "platform": "deepseek",
                    "base_url": "https://api.deepseek.com",
                }),
            },
            "seeded for the cost test",
        )
        .await
        .unwrap();
    }

    w.env.sim.clear_requests();
    let host = w.env.new_host_handle();
    let run = reconcile(
        &w.ports,
        &w.env.host_record,
        host.as_ref(),
        w.host_scope(),
        RunOptions::default(),
    )
    .await
    .unwrap();
    let account_lists = w.env.sim.count("GET", "/api/v1/admin/accounts");
    let pages = TOTAL.div_ceil(w.env.caps.max_page_size as usize) as u64;
    println!(
        "reconcile of {TOTAL} accounts ({MANAGED} crm-managed): {account_lists} account list requests, {} host requests in all",
        run.host_requests
    );
    assert_eq!(run.status, ReconcileStatus::InSync, "{:?}", run.items);
    assert!(
        account_lists <= pages + 1,
        "{account_lists} account list requests for {pages} pages"
    );
    // The whole run is a handful of list calls, and it is what the run records.
    assert!(run.host_requests <= 10, "{} requests", run.host_requests);
    assert_eq!(
        u64::from(run.host_requests),
        w.env.sim.requests().len() as u64
    );
}
