//! Import leaves exactly the planned objects, each marked; importing again is
//! a no-op; two packs' `deepseek` providers are disjoint and roll back apart.

use crate::support::*;
use crm_domain::ports::{BatchRepo, PackRepo};
use crm_domain::spec::InstalledPack;
use crm_domain::{BatchStatus, PackId, PlanAction, ProviderRef};
use crm_testkit::TestEnv;

#[tokio::test]
async fn import_leaves_exactly_the_plan_marked_and_reimport_is_a_noop() {
    for profile in PROFILES {
        let env = TestEnv::named(profile).await;
        let prov = provisioner(&env, env.host_api(), "test");
        let req = request(env.provider_ref("deepseek"), &["a", "b"]);
        env.sim.clear_requests();
        let before = objects(&env);
        let preview = prov.preview(&req).await.unwrap();
        assert_eq!(objects(&env), before, "{profile}: preview wrote nothing");
        assert!(mutations(&env).is_empty(), "{profile}: preview only lists");

        let r = prov.import(req.clone()).await.unwrap();
        assert_eq!(
            r.batch.status,
            BatchStatus::Applied,
            "{profile}: {:?}",
            r.error
        );
        assert_eq!(r.plan, preview.plan);
        assert_eq!(r.batch.pack_version, env.pack.manifest.version);
        assert_eq!(r.batch.pack_checksum, env.pack.checksum);

        // Exactly the planned objects: one per create item, nothing else crm's.
        let planned = planned_names(&r.plan);
        assert!(r.plan.items.iter().all(|i| i.action == PlanAction::Create));
        assert_eq!(crm_names(&env), planned, "{profile}");
        let current = profile == "current";
        assert_eq!(planned.len(), if current { 4 } else { 3 });

        let d = env.dump();
        let marker = crm_domain::ownership::marker(&r.batch.id);
        let group_id = d["groups"][0]["id"].as_i64().unwrap();
        for a in d["accounts"].as_array().unwrap() {
            if current {
                assert!(a["notes"].as_str().unwrap().contains(&marker), "{a}");
                assert_eq!(a["platform"], "deepseek");
                assert_eq!(a["credentials"]["api_protocol"], "chat_completions");
                assert_eq!(a["credentials"]["account_mode"], "payg");
            } else {
                // Legacy hosts keep no notes: name + recorded id are the mark.
                assert!(a["name"].as_str().unwrap().starts_with("crm-"));
                // No chat completions there: an anthropic account at the
                // provider's Anthropic endpoint (an openai one would speak
                // Responses upstream, which DeepSeek does not serve).
                assert_eq!(a["platform"], "anthropic");
                assert!(a["extra"].get("openai_responses_mode").is_none(), "{a}");
            }
            let base = if current {
                "https://api.deepseek.com"
            } else {
                "https://api.deepseek.com/anthropic"
            };
            assert_eq!(a["credentials"]["base_url"], base);
            assert_eq!(
                a["credentials"]["model_mapping"]["deepseek-v4-flash"],
                "deepseek-flash"
            );
            assert_eq!(a["group_ids"], serde_json::json!([group_id]));
        }
        for g in d["groups"].as_array().unwrap() {
            assert!(g["description"].as_str().unwrap().contains(&marker));
            assert_eq!(g["subscription_type"], "standard");
            // The group's platform matches its accounts'.
            assert_eq!(g["platform"], d["accounts"][0]["platform"]);
        }
        for c in d["channels"].as_array().unwrap() {
            assert!(c["description"].as_str().unwrap().contains(&marker));
            assert_eq!(c["billing_model_source"], "channel_mapped");
            assert_eq!(c["restrict_models"], true);
            assert_eq!(c["group_ids"], serde_json::json!([group_id]));
        }
        if !current {
            assert!(r.plan.notes.iter().any(|n| n.contains("no channels")));
        }

        // Again: no-op, same dump, no mutation.
        let dump = objects(&env);
        let n = mutations(&env).len();
        let again = prov.import(req.clone()).await.unwrap();
        assert!(again.noop, "{profile}: {:#?}", again.plan);
        assert_eq!(again.batch.id, r.batch.id);
        assert_eq!(objects(&env), dump, "{profile}");
        assert_eq!(mutations(&env).len(), n);

        // A new key creates only its account (bound at creation).
        let more = prov
            .import(request(env.provider_ref("deepseek"), &["c"]))
            .await
            .unwrap();
        assert_eq!(more.batch.status, BatchStatus::Applied);
        assert_eq!(more.plan.count(PlanAction::Create), 1);
        assert_eq!(more.plan.count(PlanAction::NoOp), more.plan.items.len() - 1);
        assert_eq!(
            mutations(&env).len(),
            n + 1,
            "{profile}: {:?}",
            mutations(&env)
        );

        // Rollback removes everything crm made.
        let rb = prov.rollback(&r.batch.id).await.unwrap();
        assert_eq!(rb.status, BatchStatus::RolledBack, "{profile}: {rb:?}");
        assert!(
            crm_marked(&env).is_empty(),
            "{profile}: {:?}",
            crm_marked(&env)
        );
    }
}

#[tokio::test]
async fn two_packs_with_deepseek_are_two_disjoint_batches() {
    for profile in PROFILES {
        let env = TestEnv::named(profile).await;
        let mut manifest = env.pack.manifest.clone();
        manifest.pack_id = PackId::new("my-pack");
        manifest.version = "0.1.0".into();
        manifest.providers.retain(|p| p.id.as_str() == "deepseek");
        manifest.providers[0].display_name = "DeepSeek (my pack)".into();
        env.store
            .install_pack(InstalledPack {
                manifest,
                checksum: "sha256-my-pack".into(),
                installed_at: chrono::Utc::now(),
                origin: "test".into(),
                current: true,
            })
            .await
            .unwrap();
        let prov = provisioner(&env, env.host_api(), "test");
        let mine = ProviderRef::new("my-pack", "deepseek");
        let a = prov
            .import(request(env.provider_ref("deepseek"), &["official"]))
            .await
            .unwrap();
        let b = prov.import(request(mine.clone(), &["mine"])).await.unwrap();
        assert_ne!(a.batch.id, b.batch.id);
        assert_eq!(
            (a.batch.status, b.batch.status),
            (BatchStatus::Applied, BatchStatus::Applied)
        );
        let all = crm_names(&env);
        let official: Vec<&String> = all
            .iter()
            .filter(|n| n.contains("crm-cn-official."))
            .collect();
        let other: Vec<&String> = all.iter().filter(|n| n.contains("crm-my-pack.")).collect();
        assert_eq!(official.len() + other.len(), all.len());
        assert_eq!(official.len(), other.len());
        let a_ids: Vec<_> = env.store.resources(&a.batch.id).await.unwrap();
        let b_ids: Vec<_> = env.store.resources(&b.batch.id).await.unwrap();
        assert!(
            a_ids.iter().all(|x| !b_ids
                .iter()
                .any(|y| y.kind == x.kind && y.host_object_id == x.host_object_id)),
            "{profile}: object sets overlap"
        );

        let reports = prov.rollback_provider(&mine).await.unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].status, BatchStatus::RolledBack);
        let left = crm_names(&env);
        assert_eq!(left.len(), official.len(), "{profile}: {left:?}");
        assert!(left.iter().all(|n| n.contains("crm-cn-official.")));
        assert_eq!(
            env.store.get_batch(&a.batch.id).await.unwrap().status,
            BatchStatus::Applied
        );
        // The untouched batch is still in sync: importing it again changes nothing.
        let again = prov
            .import(request(env.provider_ref("deepseek"), &[]))
            .await
            .unwrap();
        assert!(again.noop, "{profile}: {:#?}", again.plan);
    }
}

#[tokio::test]
async fn reimport_after_objects_were_deleted_behind_crms_back_recreates_them_once() {
    use crm_domain::ports::HostApi;
    use crm_domain::{JournalOp, JournalState, ResourceKind, ResourceState};
    for profile in PROFILES {
        let env = TestEnv::named(profile).await;
        let prov = provisioner(&env, env.host_api(), "test");
        let req = request(env.provider_ref("deepseek"), &["a"]);
        let r = prov.import(req.clone()).await.unwrap();
        assert_eq!(r.batch.status, BatchStatus::Applied, "{profile}");
        let expected = crm_names(&env);
        let live = |kind| {
            let env = &env;
            let batch = r.batch.id.clone();
            async move {
                env.store
                    .resources(&batch)
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|x| x.kind == kind && x.state == ResourceState::Live)
                    .map(|x| x.host_object_id)
                    .collect::<Vec<_>>()
            }
        };
        let old = live(ResourceKind::Account).await;
        assert_eq!(old.len(), 1);
        env.sim.delete_object("accounts", old[0].0).unwrap();

        let again = prov.import(req.clone()).await.unwrap();
        assert_eq!(
            again.batch.status,
            BatchStatus::Applied,
            "{profile}: {:?}",
            again.error
        );
        // The account exists again, exactly once, and is the batch's record.
        assert_eq!(crm_names(&env), expected, "{profile}");
        let new = live(ResourceKind::Account).await;
        assert_eq!(new.len(), 1, "{profile}: {new:?}");
        assert_ne!(new, old, "{profile}: the record points at the new account");
        let accounts = env.host.list_accounts().await.unwrap();
        assert_eq!(accounts.len(), 1, "{profile}");
        assert_eq!(accounts[0].id, new[0], "{profile}");
        // Journaled: a second applied create, keyed as a re-creation.
        let j = env.store.journal(&r.batch.id).await.unwrap();
        let creates: Vec<_> = j
            .iter()
            .filter(|e| e.op == JournalOp::Create && e.kind == ResourceKind::Account)
            .collect();
        assert_eq!(creates.len(), 2, "{profile}");
        assert_eq!(creates[1].state, JournalState::Applied);
        assert_eq!(creates[1].host_object_id, Some(new[0]));
        assert!(
            creates[1]
                .natural_key
                .ends_with(&format!("~recreated-from-{}", old[0])),
            "{profile}: {}",
            creates[1].natural_key
        );
        // And a third import is a no-op.
        let third = prov.import(req).await.unwrap();
        assert!(third.noop, "{profile}: {:#?}", third.plan);
    }
}

/// On a host without chat completions, a provider the pack gives no
/// Anthropic endpoint (doubao: OpenAI-compatible only) is blocked with a
/// reason the operator can act on, and nothing is created.
#[tokio::test]
async fn a_provider_without_an_anthropic_endpoint_is_blocked_on_the_legacy_profile() {
    let env = TestEnv::named("legacy-2025-12").await;
    let prov = provisioner(&env, env.host_api(), "test");
    let req = request(env.provider_ref("doubao"), &["a"]);
    let preview = prov.preview(&req).await.unwrap();
    assert!(
        preview
            .plan
            .items
            .iter()
            .all(|i| i.action == PlanAction::Blocked),
        "{:#?}",
        preview.plan
    );
    let reason = preview.plan.items[0].reason.clone().unwrap();
    for says in ["no /v1/chat/completions", "anthropic_base_url"] {
        assert!(reason.contains(says), "{says}: {reason}");
    }
    env.sim.clear_requests();
    let err = prov.import(req).await.unwrap_err();
    assert!(err.to_string().contains("anthropic_base_url"), "{err}");
    assert!(mutations(&env).is_empty(), "{:?}", mutations(&env));
    assert!(crm_names(&env).is_empty());
}
