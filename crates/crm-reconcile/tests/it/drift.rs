//! The drift scenario of issue 8 against the simulator: five kinds of
//! drift made behind crm's back, one host-scope run that reports exactly
//! them, a repair with prune, an in-sync run, and a repair that is a no-op.

use crate::env::{World, brief, redacted};
use crm_domain::observed::{ChannelDraft, GroupDraft};
use crm_domain::ownership::marked_text;
use crm_domain::ports::BatchRepo;
use crm_domain::secret::ExposeSecret;
use crm_domain::{BatchId, GroupBilling, Platform, ProviderKey, ReconcileStatus};
use crm_provision::PackProvider;
use crm_provision::desired::{AccountSpec, choose_platform};
use crm_reconcile::{RepairOptions, RunOptions, reconcile, repair};
use crm_sim::AccountMutation;
use crm_testkit::sim_key;

#[tokio::test]
async fn five_kinds_of_drift_are_found_repaired_and_stay_repaired() {
    let w = World::current().await;
    let ds_key = sim_key("ok", "ds1");
    let ds = w.import("deepseek", std::slice::from_ref(&ds_key)).await;
    let kimi_keys = [sim_key("ok", "k1"), sim_key("ok", "k2")];
    let kimi = w.import("kimi", &kimi_keys).await;
    let api = w.api();
    let host = &w.env.host_record;

    let first = reconcile(&w.ports, host, api, w.host_scope(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (first.status, first.items.len()),
        (ReconcileStatus::InSync, 0),
        "a fresh import is in sync: {:?}",
        brief(&first.items)
    );

    // 1. An account deleted behind crm's back.
    w.env
        .sim
        .delete_object("accounts", kimi.accounts[1].0)
        .unwrap();
    // 2. A channel price changed by hand.
    let chans = api.list_channels().await.unwrap();
    let c = chans.iter().find(|c| Some(c.id) == ds.channel).unwrap();
    let mut pricing = c.model_pricing.clone();
    pricing[0].input_price = pricing[0].input_price.map(|p| p * 3.0);
    api.update_channel(
        c.id,
        &ChannelDraft {
            name: c.name.clone(),
            description: c.description.clone(),
            group_ids: c.group_ids.clone(),
            model_pricing: pricing,
            model_mapping: c.model_mapping.clone(),
            billing_model_source: c.billing_model_source.clone(),
            restrict_models: c.restrict_models,
        },
    )
    .await
    .unwrap();
    // 3. A second account with the same upstream key (what a retried create
    //    without idempotency leaves behind).
    let pp = PackProvider::from_pack(&w.env.pack, &ProviderKey::new("deepseek")).unwrap();
    let choice = choose_platform(&pp.spec, &w.env.caps).unwrap();
    let spec = AccountSpec::new(
        &pp,
        &choice,
        &w.env.caps,
        &w.env.fingerprinter().fingerprint(&ds_key),
    );
    let dup = api
        .create_account(
            &spec.draft(
                &ds.batch,
                &pp.spec.display_name,
                ds_key.clone(),
                vec![ds.group],
            ),
            None,
        )
        .await
        .unwrap();
    // 4. A crm-marked group of a batch that is not live (residue).
    let old = api
        .create_group(&GroupDraft {
            name: "crm-cn-official.zhipu-self_service".into(),
            description: Some(marked_text(&BatchId::new("b-gone"), "Zhipu (self_service)")),
            platform: Platform::openai(),
            billing: GroupBilling::Standard,
            rate_multiplier: 1.0,
            daily_limit_usd: None,
            weekly_limit_usd: None,
            monthly_limit_usd: None,
            is_exclusive: false,
        })
        .await
        .unwrap();
    // 5. An account the host put in error.
    w.env
        .sim
        .mutate_account(
            kimi.accounts[0].0,
            &AccountMutation {
                status: Some("error".into()),
                error_message: Some("API returned 401: invalid api key".into()),
                ..AccountMutation::default()
            },
        )
        .unwrap();
    // And one object that is not crm's at all: never reported.
    api.create_group(&GroupDraft {
        name: "operator-vip".into(),
        description: Some("hand-made".into()),
        platform: Platform::openai(),
        billing: GroupBilling::Standard,
        rate_multiplier: 2.0,
        daily_limit_usd: None,
        weekly_limit_usd: None,
        monthly_limit_usd: None,
        is_exclusive: false,
    })
    .await
    .unwrap();

    w.clock.advance(std::time::Duration::from_secs(1));
    let drifted = reconcile(&w.ports, host, api, w.host_scope(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(drifted.status, ReconcileStatus::Drifted);
    let cats: Vec<String> = drifted
        .items
        .iter()
        .map(|i| format!("{} {} #{}", i.category, i.kind, i.host_object_id.unwrap()))
        .collect();
    assert_eq!(
        cats,
        [
            format!("missing account #{}", kimi.accounts[1]),
            format!("changed channel #{}", ds.channel.unwrap()),
            format!("duplicate account #{}", dup.id),
            format!("unmanaged_leftover group #{}", old.id),
            format!("unhealthy account #{}", kimi.accounts[0]),
        ]
    );
    insta::assert_json_snapshot!("drift_items", redacted(&drifted.items));

    w.clock.advance(std::time::Duration::from_secs(1));
    let fixed = repair(
        &w.ports,
        host,
        api,
        w.host_scope(),
        w.with_keys(
            RepairOptions {
                apply: true,
                prune: true,
                clear_unhealthy: true,
                ..RepairOptions::default()
            },
            &kimi_keys,
        ),
    )
    .await
    .unwrap();
    assert_eq!(fixed.run.error, None);
    assert!(fixed.run.repaired);
    assert_eq!(fixed.applied.len(), 5, "{:?}", fixed.applied);
    insta::assert_json_snapshot!("repair_plan", redacted(&fixed.plan));

    w.clock.advance(std::time::Duration::from_secs(1));
    let after = reconcile(&w.ports, host, api, w.host_scope(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (after.status, brief(&after.items)),
        (ReconcileStatus::InSync, vec![])
    );
    // The duplicate is disabled, not deleted; the residue is gone.
    let accounts = api.list_accounts().await.unwrap();
    let d = accounts.iter().find(|a| a.id == dup.id).unwrap();
    assert_eq!((d.status.as_str(), d.schedulable), ("inactive", false));
    assert!(
        !api.list_groups()
            .await
            .unwrap()
            .iter()
            .any(|g| g.id == old.id)
    );

    w.clock.advance(std::time::Duration::from_secs(1));
    let again = repair(
        &w.ports,
        host,
        api,
        w.host_scope(),
        RepairOptions {
            apply: true,
            prune: true,
            clear_unhealthy: true,
            ..RepairOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(again.plan.items.is_empty() && again.applied.is_empty());
    assert!(!again.run.repaired);
    assert_eq!(again.run.status, ReconcileStatus::InSync);

    // Every run is in the host's history, newest first.
    let history = w.ports.runs.runs_for_host(&host.id, 10).await.unwrap();
    let statuses: Vec<ReconcileStatus> = history.iter().map(|r| r.status).collect();
    use ReconcileStatus::*;
    assert_eq!(statuses, [InSync, InSync, Drifted, Drifted, InSync]);
}

#[tokio::test]
async fn batch_and_provider_scoped_runs_only_report_their_objects() {
    let w = World::current().await;
    let ds = w.import("deepseek", &[sim_key("ok", "ds1")]).await;
    let kimi = w.import("kimi", &[sim_key("ok", "k1")]).await;
    w.env
        .sim
        .delete_object("accounts", kimi.accounts[0].0)
        .unwrap();
    let host = &w.env.host_record;
    let api = w.api();
    let batch_scope = crm_domain::reconcile::ReconcileScope {
        batch_id: Some(ds.batch.clone()),
        ..w.host_scope()
    };
    let run = reconcile(&w.ports, host, api, batch_scope, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(run.status, ReconcileStatus::InSync);
    let provider_scope = crm_domain::reconcile::ReconcileScope {
        provider: Some(w.env.provider_ref("kimi")),
        ..w.host_scope()
    };
    let run = reconcile(&w.ports, host, api, provider_scope, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(run.status, ReconcileStatus::Drifted);
    assert_eq!(brief(&run.items).len(), 1);
    // Batch history holds the batch-scoped run only.
    let ds_runs = w.ports.runs.runs_for_batch(&ds.batch, 10).await.unwrap();
    assert_eq!(ds_runs.len(), 1);
    assert_eq!(ds_runs[0].status, ReconcileStatus::InSync);
}

#[tokio::test]
async fn on_an_old_host_without_notes_the_name_is_the_mark() {
    let w = World::legacy().await;
    assert!(!w.env.caps.channels && !w.env.caps.credential_redaction);
    let ds_key = sim_key("ok", "ds1");
    w.import("deepseek", std::slice::from_ref(&ds_key)).await;
    let host = &w.env.host_record;
    let api = w.api();
    let run = reconcile(&w.ports, host, api, w.host_scope(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (run.status, brief(&run.items)),
        (ReconcileStatus::InSync, vec![]),
        "raw credentials and missing notes are not drift"
    );
    // A crm-named account no batch records (an import's residue) is a
    // leftover; an operator's account is nobody's business.
    let pp = PackProvider::from_pack(&w.env.pack, &ProviderKey::new("kimi")).unwrap();
    let choice = choose_platform(&pp.spec, &w.env.caps).unwrap();
    let key = sim_key("ok", "k9");
    let spec = AccountSpec::new(
        &pp,
        &choice,
        &w.env.caps,
        &w.env.fingerprinter().fingerprint(&key),
    );
    let stray = api
        .create_account(
            &spec.draft(&BatchId::new("b-x"), "Kimi", key.clone(), vec![]),
            None,
        )
        .await
        .unwrap();
    let mut mine = spec.draft(&BatchId::new("b-x"), "Kimi", key, vec![]);
    mine.name = "operator-kimi".into();
    api.create_account(&mine, None).await.unwrap();
    w.clock.advance(std::time::Duration::from_secs(1));
    let run = reconcile(&w.ports, host, api, w.host_scope(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        brief(&run.items),
        [format!("unmanaged_leftover account {} []", stray.name)]
    );
    // Without a marker, prune does not delete it: the name alone is enough to
    // report, not to destroy.
    let report = repair(
        &w.ports,
        host,
        api,
        w.host_scope(),
        RepairOptions {
            apply: true,
            prune: true,
            ..RepairOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(report.applied.is_empty() && report.plan.is_noop());
}

#[tokio::test]
async fn on_an_old_host_without_notes_a_copy_of_a_recorded_account_is_a_duplicate() {
    let w = World::legacy().await;
    let ds_key = sim_key("ok", "ds1");
    let ds = w.import("deepseek", std::slice::from_ref(&ds_key)).await;
    let host = &w.env.host_record;
    let api = w.api();
    // The same upstream key again, as a retried create without idempotency
    // leaves it: same name, platform and base URL, and no notes to mark it.
    let pp = PackProvider::from_pack(&w.env.pack, &ProviderKey::new("deepseek")).unwrap();
    let choice = choose_platform(&pp.spec, &w.env.caps).unwrap();
    let spec = AccountSpec::new(
        &pp,
        &choice,
        &w.env.caps,
        &w.env.fingerprinter().fingerprint(&ds_key),
    );
    let copy = api
        .create_account(
            &spec.draft(&ds.batch, &pp.spec.display_name, ds_key, vec![ds.group]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(copy.notes, None, "the legacy profile keeps no notes");
    w.clock.advance(std::time::Duration::from_secs(1));
    let run = reconcile(&w.ports, host, api, w.host_scope(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        brief(&run.items),
        [format!("duplicate account {} []", copy.name)],
        "a duplicate, and not also a leftover"
    );
    // Unrecorded and unmarked: repair reports it and touches nothing.
    let report = repair(
        &w.ports,
        host,
        api,
        w.host_scope(),
        RepairOptions {
            apply: true,
            prune: true,
            ..RepairOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(
        report.applied.is_empty() && report.plan.is_noop(),
        "{:#?}",
        report.plan
    );
}

#[tokio::test]
async fn a_deleted_group_is_recreated_and_its_account_and_channel_follow() {
    let w = World::current().await;
    let ds = w.import("deepseek", &[sim_key("ok", "ds1")]).await;
    // Deleting a group on the host also unbinds its accounts and channel.
    w.env.sim.delete_object("groups", ds.group.0).unwrap();
    let host = &w.env.host_record;
    let api = w.api();
    let run = reconcile(&w.ports, host, api, w.host_scope(), RunOptions::default())
        .await
        .unwrap();
    let mut cats: Vec<String> = run
        .items
        .iter()
        .map(|i| format!("{} {}", i.category, i.kind))
        .collect();
    cats.sort();
    assert_eq!(
        cats,
        ["changed account", "changed channel", "missing group"],
        "{:?}",
        brief(&run.items)
    );
    w.clock.advance(std::time::Duration::from_secs(1));
    let fixed = repair(
        &w.ports,
        host,
        api,
        w.host_scope(),
        RepairOptions {
            apply: true,
            ..RepairOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(fixed.run.error, None, "{:?}", fixed.applied);
    w.clock.advance(std::time::Duration::from_secs(1));
    let after = reconcile(&w.ports, host, api, w.host_scope(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (after.status, brief(&after.items)),
        (ReconcileStatus::InSync, vec![])
    );
    let groups = api.list_groups().await.unwrap();
    let new_group = groups
        .iter()
        .find(|g| g.name == "crm-cn-official.deepseek-self_service")
        .unwrap();
    assert_ne!(new_group.id, ds.group);
    let accounts = api.list_accounts().await.unwrap();
    let a = accounts.iter().find(|a| a.id == ds.accounts[0]).unwrap();
    assert_eq!(a.group_ids, [new_group.id]);
}

#[tokio::test]
async fn a_host_that_refuses_crm_gives_an_error_run_without_items() {
    let w = World::current().await;
    w.import("deepseek", &[sim_key("ok", "ds1")]).await;
    let api = crm_sub2api::Sub2apiConnector::default()
        .open(
            &w.env.host_record,
            crm_domain::SecretString::from(format!("admin-{}", "0".repeat(64))),
        )
        .unwrap();
    let run = reconcile(
        &w.ports,
        &w.env.host_record,
        &api,
        w.host_scope(),
        RunOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(run.status, ReconcileStatus::Error);
    assert!(run.items.is_empty());
    assert!(
        run.error.as_deref().unwrap().contains("credentials"),
        "{:?}",
        run.error
    );
}

#[tokio::test]
async fn a_recreate_whose_answer_is_lost_is_adopted_not_duplicated() {
    let w = World::current().await;
    let ds_key = sim_key("ok", "ds1");
    let ds = w.import("deepseek", std::slice::from_ref(&ds_key)).await;
    w.env
        .sim
        .delete_object("accounts", ds.accounts[0].0)
        .unwrap();
    w.env.sim.inject_fault(crm_sim::FaultSpec {
        method: Some("POST".into()),
        path: "/api/v1/admin/accounts".into(),
        nth: 1,
        times: 1,
        action: crm_sim::FaultAction::CommitThenDrop,
    });
    let host = &w.env.host_record;
    let api = w.api();
    let fixed = repair(
        &w.ports,
        host,
        api,
        w.host_scope(),
        w.with_keys(
            RepairOptions {
                apply: true,
                ..RepairOptions::default()
            },
            &[ds_key],
        ),
    )
    .await
    .unwrap();
    assert_eq!(fixed.run.error, None);
    let journal = w.env.store.journal(&ds.batch).await.unwrap();
    let last = journal.last().unwrap();
    assert_eq!(last.state, crm_domain::JournalState::Applied);
    assert!(
        last.detail.as_deref().unwrap_or_default().contains("adopt"),
        "{:?}",
        last.detail
    );
    let accounts = api.list_accounts().await.unwrap();
    assert_eq!(
        accounts.len(),
        1,
        "exactly one account after the lost answer"
    );
    w.clock.advance(std::time::Duration::from_secs(1));
    let after = reconcile(&w.ports, host, api, w.host_scope(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        after.status,
        ReconcileStatus::InSync,
        "{:?}",
        brief(&after.items)
    );
}

#[tokio::test]
async fn a_missing_account_needs_its_key_supplied_and_no_key_is_stored() {
    for w in [World::current().await, World::legacy().await] {
        let ds_key = sim_key("ok", "ds1");
        let ds = w.import("deepseek", std::slice::from_ref(&ds_key)).await;
        w.env
            .sim
            .delete_object("accounts", ds.accounts[0].0)
            .unwrap();
        let host = &w.env.host_record;
        let api = w.api();
        let apply = RepairOptions {
            apply: true,
            ..RepairOptions::default()
        };
        // Without the key: the recreation is blocked and names the key.
        let blocked = repair(&w.ports, host, api, w.host_scope(), apply.clone())
            .await
            .unwrap();
        let fp = w.env.fingerprinter().fingerprint(&ds_key);
        let item = blocked
            .plan
            .items
            .iter()
            .find(|i| i.kind == crm_domain::ResourceKind::Account)
            .unwrap();
        assert_eq!(item.action, crm_domain::PlanAction::Blocked);
        let reason = item.reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains(&format!(
                "supply the upstream key {fp} with --upstream-keys-file"
            )),
            "{reason}"
        );
        assert!(api.list_accounts().await.unwrap().is_empty());

        // With it: recreated, journaled, exactly one; then in sync.
        w.clock.advance(std::time::Duration::from_secs(1));
        let fixed = repair(
            &w.ports,
            host,
            api,
            w.host_scope(),
            w.with_keys(apply, std::slice::from_ref(&ds_key)),
        )
        .await
        .unwrap();
        assert_eq!(fixed.run.error, None, "{:?}", fixed.applied);
        assert_eq!(api.list_accounts().await.unwrap().len(), 1);
        w.clock.advance(std::time::Duration::from_secs(1));
        let after = reconcile(&w.ports, host, api, w.host_scope(), RunOptions::default())
            .await
            .unwrap();
        assert_eq!(
            (after.status, brief(&after.items)),
            (ReconcileStatus::InSync, vec![])
        );

        // Nothing crm wrote holds the key, in clear or sealed.
        let journal = w.env.store.journal(&ds.batch).await.unwrap();
        let mut seen = serde_json::to_string(&journal).unwrap();
        for r in w.env.store.resources(&ds.batch).await.unwrap() {
            seen.push_str(&r.desired.to_string());
        }
        for entry in std::fs::read_dir(w.env.dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                seen.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
            }
        }
        assert!(!seen.contains("upstream_key_sealed"));
        assert!(!seen.contains(ds_key.expose_secret()));
    }
}

/// A batch imported before crm chose `anthropic` on hosts without chat
/// completions (an `openai` account at the OpenAI base URL) is drift there:
/// `changed` on platform and base_url, and the repair plan says what it
/// takes, naming the key it needs.
#[tokio::test]
async fn an_old_fallback_batch_on_a_host_without_chat_completions_is_drift() {
    let w = World::legacy().await;
    assert!(!w.env.caps.chat_completions);
    let key = sim_key("ok", "ds1");
    // The old planner: it took chat completions for granted.
    let mut old = w.provisioner();
    old.caps.chat_completions = true;
    let report = old
        .import(crm_provision::ImportRequest {
            provider: w.env.provider_ref("deepseek"),
            pack_version: None,
            mode: crm_domain::AccessMode::SelfService,
            upstream_keys: vec![key.clone()],
            accept_url_change: false,
            monitor: None,
        })
        .await
        .unwrap();
    assert_eq!(report.error, None);
    let host = &w.env.host_record;
    let api = w.api();
    let run = reconcile(&w.ports, host, api, w.host_scope(), RunOptions::default())
        .await
        .unwrap();
    let names = brief(&run.items);
    assert_eq!(run.status, ReconcileStatus::Drifted, "{names:?}");
    let acct = run
        .items
        .iter()
        .find(|i| i.kind == crm_domain::ResourceKind::Account)
        .unwrap();
    let fields: Vec<(&str, &serde_json::Value)> = acct
        .fields
        .iter()
        .map(|f| (f.field.as_str(), &f.to))
        .collect();
    assert_eq!(
        fields,
        [
            ("platform", &serde_json::json!("anthropic")),
            (
                "base_url",
                &serde_json::json!("https://api.deepseek.com/anthropic")
            ),
        ],
        "{names:?}"
    );
    let grp = run
        .items
        .iter()
        .find(|i| i.kind == crm_domain::ResourceKind::Group)
        .unwrap();
    assert_eq!(grp.fields[0].field, "platform");
    // The plan says exactly what it would take, and changes nothing.
    let r = repair(
        &w.ports,
        host,
        api,
        w.host_scope(),
        RepairOptions {
            apply: true,
            ..RepairOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(r.applied.is_empty());
    let item = r
        .plan
        .items
        .iter()
        .find(|i| i.kind == crm_domain::ResourceKind::Account)
        .unwrap();
    let reason = item.reason.clone().unwrap();
    for says in [
        "as anthropic at https://api.deepseek.com/anthropic",
        "needs its upstream key",
        "crm batch rollback",
        "crm provider import",
    ] {
        assert!(reason.contains(says), "{says}: {reason}");
    }
    // Once re-imported the new way, the host is in sync.
    w.provisioner().rollback(&report.batch.id).await.unwrap();
    w.import("deepseek", &[key]).await;
    w.clock.advance(std::time::Duration::from_secs(1));
    let run = reconcile(&w.ports, host, api, w.host_scope(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        run.status,
        ReconcileStatus::InSync,
        "{:?}",
        brief(&run.items)
    );
}
