//! Upstream key rotation in place and pack upgrade, on both profiles.

use crate::support::*;
use crm_domain::ports::{BatchRepo, PackRepo};
use crm_domain::spec::InstalledPack;
use crm_domain::{BatchStatus, JournalOp, JournalState, PlanAction};
use crm_testkit::TestEnv;

#[tokio::test]
async fn rotation_is_in_place_and_upgrade_records_the_new_version() {
    for profile in PROFILES {
        let env = TestEnv::named(profile).await;
        let prov = provisioner(&env, env.host_api(), "test");
        let provider = env.provider_ref("deepseek");
        let r = prov
            .import(request(provider.clone(), &["old"]))
            .await
            .unwrap();
        assert_eq!(r.batch.status, BatchStatus::Applied);
        let before = env.dump()["accounts"][0].clone();

        // Rotate: same account id, new key, new fingerprint recorded.
        let old = r.batch.upstream_keys[0].hmac[..8].to_owned();
        let new_key = crm_domain::SecretString::from("sim-ok-rotated-0123456789ab9876");
        let new_fp = env.fingerprinter().fingerprint(&new_key);
        let b = prov.rotate_key(&r.batch.id, &old, new_key).await.unwrap();
        assert_eq!(b.upstream_keys, vec![new_fp.clone()]);
        let after = env.dump()["accounts"][0].clone();
        assert_eq!(after["id"], before["id"], "{profile}: updated in place");
        assert_ne!(
            after["credentials"]["api_key"], before["credentials"]["api_key"],
            "{profile}: the key changed"
        );
        // The account keeps its own base URL (the Anthropic endpoint on the
        // legacy profile), not the pack's OpenAI-compatible one.
        assert_eq!(
            after["credentials"]["base_url"],
            before["credentials"]["base_url"]
        );
        assert_eq!(after["platform"], before["platform"]);
        assert!(after["name"].as_str().unwrap().ends_with(new_fp.short()));
        let j = env.store.journal(&r.batch.id).await.unwrap();
        let last = j.last().unwrap();
        assert_eq!(
            (last.op, last.state),
            (JournalOp::RotateKey, JournalState::Applied)
        );
        let res = env.store.resources(&r.batch.id).await.unwrap();
        let acct = res
            .iter()
            .find(|x| x.kind == crm_domain::ResourceKind::Account)
            .unwrap();
        assert_eq!(acct.desired["upstream_key"]["hmac"], new_fp.hmac);
        assert!(
            prov.import(request(provider.clone(), &[]))
                .await
                .unwrap()
                .noop,
            "{profile}: rotated batch is in sync"
        );

        // Upgrade: a newer pack version with a cheaper model and a new mapping entry.
        let mut manifest = env.pack.manifest.clone();
        manifest.version = "2099.1.0".into();
        let ds = manifest
            .providers
            .iter_mut()
            .find(|p| p.id.as_str() == "deepseek")
            .unwrap();
        ds.models[0].price.input /= 2.0;
        ds.model_mapping
            .insert("deepseek-chat".into(), "deepseek-flash".into());
        env.store
            .install_pack(InstalledPack {
                manifest,
                checksum: "sha256-upgraded".into(),
                installed_at: chrono::Utc::now(),
                origin: "test".into(),
                current: true,
            })
            .await
            .unwrap();
        let p = prov.preview_upgrade(&r.batch.id, None).await.unwrap();
        assert_eq!(p.pack_version, "2099.1.0");
        let updates: Vec<_> = p
            .plan
            .items
            .iter()
            .filter(|i| i.action == PlanAction::Update)
            .collect();
        assert_eq!(
            updates.len(),
            if profile == "current" { 2 } else { 1 },
            "{profile}: {:#?}",
            p.plan
        );
        assert!(updates.iter().any(|i| {
            i.changes
                .iter()
                .any(|c| c.field == "model_mapping.deepseek-chat")
        }));
        if profile == "current" {
            assert!(updates.iter().any(|i| {
                i.changes
                    .iter()
                    .any(|c| c.field == "model_pricing.deepseek-flash.input_price")
            }));
        }
        let up = prov.upgrade(&r.batch.id, None, false).await.unwrap();
        assert_eq!(
            up.batch.status,
            BatchStatus::Applied,
            "{profile}: {:?}",
            up.error
        );
        assert_eq!(up.batch.pack_version, "2099.1.0");
        assert_eq!(up.batch.pack_checksum, "sha256-upgraded");
        assert_eq!(
            env.dump()["accounts"][0]["credentials"]["model_mapping"]["deepseek-chat"],
            "deepseek-flash"
        );
        assert!(
            prov.preview_upgrade(&r.batch.id, None)
                .await
                .unwrap()
                .plan
                .is_noop()
        );
    }
}
