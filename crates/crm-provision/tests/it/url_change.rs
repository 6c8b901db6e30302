//! A pack version that moves a provider to another base URL (docs/design.md
//! §4 step 3): the recorded base URL of each account is where its upstream
//! key goes (the direct upstream probe, key rotation), so it changes only
//! after the operator confirmed it and the host account was patched.

use crate::support::*;
use crm_domain::ports::{BatchRepo, PackRepo};
use crm_domain::spec::InstalledPack;
use crm_domain::{BatchStatus, JournalOp, JournalState, PlanAction, ResourceKind};
use crm_provision::ProvisionError;
use crm_testkit::TestEnv;

const MOVED: &str = "https://api.deepseek.example.net";

/// Installs a newer pack version (current) in which deepseek's endpoints
/// moved to `MOVED` and a mapping entry changed (so the accounts have an
/// update of their own, which rewrote the recorded spec before the fix).
async fn install_moved(env: &TestEnv, version: &str) {
    let mut manifest = env.pack.manifest.clone();
    manifest.version = version.into();
    let ds = manifest
        .providers
        .iter_mut()
        .find(|p| p.id.as_str() == "deepseek")
        .unwrap();
    ds.openai_base_url = MOVED.into();
    ds.anthropic_base_url = Some(format!("{MOVED}/anthropic"));
    ds.model_mapping
        .insert("deepseek-chat".into(), "deepseek-flash".into());
    env.store
        .install_pack(InstalledPack {
            manifest,
            checksum: format!("sha256-{version}"),
            installed_at: chrono::Utc::now(),
            origin: "test".into(),
            current: true,
        })
        .await
        .unwrap();
}

fn recorded_url(res: &[crm_domain::batch::ManagedResource]) -> String {
    res.iter()
        .find(|r| r.kind == ResourceKind::Account)
        .and_then(|r| r.desired["base_url"].as_str())
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_moved_base_url_is_applied_only_when_confirmed() {
    for profile in PROFILES {
        let env = TestEnv::named(profile).await;
        let prov = provisioner(&env, env.host_api(), "test");
        let provider = env.provider_ref("deepseek");
        let r = prov
            .import(request(provider.clone(), &["k1"]))
            .await
            .unwrap();
        assert_eq!(r.batch.status, BatchStatus::Applied);
        let old_url = recorded_url(&env.store.resources(&r.batch.id).await.unwrap());
        assert_eq!(
            env.dump()["accounts"][0]["credentials"]["base_url"],
            old_url.as_str()
        );
        install_moved(&env, "2099.2.0").await;

        // The plan says so: the account item changes base_url, and the plan
        // lists the change as one to confirm.
        let p = prov.preview_upgrade(&r.batch.id, None).await.unwrap();
        let urls = p.plan.url_changes();
        assert_eq!(urls.len(), 1, "{profile}: {:#?}", p.plan);
        assert_eq!(urls[0].from, old_url);
        assert!(urls[0].to.starts_with(MOVED), "{profile}: {:?}", urls[0]);
        let acct = &p.plan.items[0];
        assert_eq!(
            (acct.kind, acct.action),
            (ResourceKind::Account, PlanAction::Update)
        );
        assert!(acct.changes.iter().any(|c| c.field == "base_url"));

        // Without the confirmation neither a re-import nor an upgrade
        // writes anything: not the host, not the recorded URL.
        let journal_before = env.store.journal(&r.batch.id).await.unwrap().len();
        let e = prov
            .import(request(provider.clone(), &[]))
            .await
            .unwrap_err();
        assert!(
            matches!(e, ProvisionError::UrlChangeUnconfirmed { .. }),
            "{profile}: {e}"
        );
        assert!(e.to_string().contains("--accept-url-change"), "{e}");
        assert!(e.to_string().contains(MOVED), "{e}");
        let e = prov.upgrade(&r.batch.id, None, false).await.unwrap_err();
        assert!(
            matches!(e, ProvisionError::UrlChangeUnconfirmed { .. }),
            "{e}"
        );
        let res = env.store.resources(&r.batch.id).await.unwrap();
        assert_eq!(recorded_url(&res), old_url, "{profile}: recorded URL kept");
        assert_eq!(
            env.dump()["accounts"][0]["credentials"]["base_url"],
            old_url.as_str(),
            "{profile}: host account untouched"
        );
        assert_eq!(
            env.store.journal(&r.batch.id).await.unwrap().len(),
            journal_before,
            "{profile}: nothing journaled"
        );
        let b = env.store.get_batch(&r.batch.id).await.unwrap();
        assert_eq!(
            (b.status, b.pack_version.as_str()),
            (BatchStatus::Applied, r.batch.pack_version.as_str())
        );

        // Confirmed: the host account is patched (journaled), then recorded.
        let up = prov.upgrade(&r.batch.id, None, true).await.unwrap();
        assert_eq!(up.batch.status, BatchStatus::Applied, "{:?}", up.error);
        assert_eq!(up.batch.pack_version, "2099.2.0");
        let host_url = env.dump()["accounts"][0]["credentials"]["base_url"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(host_url.starts_with(MOVED), "{profile}: {host_url}");
        let res = env.store.resources(&r.batch.id).await.unwrap();
        assert_eq!(recorded_url(&res), host_url);
        // The natural key names the base URL (docs/design.md §5), so it
        // moves with it: a stale one would name the URL the account left.
        let acct = res
            .iter()
            .find(|r| r.kind == ResourceKind::Account)
            .unwrap();
        let fp: crm_domain::Fingerprint =
            serde_json::from_value(acct.desired["upstream_key"].clone()).unwrap();
        let platform = crm_domain::Platform::new(acct.desired["platform"].as_str().unwrap());
        assert_eq!(
            acct.natural_key,
            crm_provision::desired::account_natural_key(&platform, &host_url, &fp),
            "{profile}: the recorded natural key follows the move"
        );
        let j = env.store.journal(&r.batch.id).await.unwrap();
        assert!(
            j.iter().any(|e| e.kind == ResourceKind::Account
                && e.op == JournalOp::Update
                && e.state == JournalState::Applied
                && e.desired["base_url"] == host_url.as_str()),
            "{profile}: the patch is journaled"
        );
        // In sync afterwards: nothing left to confirm.
        let p = prov.preview_upgrade(&r.batch.id, None).await.unwrap();
        assert!(p.plan.is_noop(), "{profile}: {:#?}", p.plan);
        assert!(p.plan.url_changes().is_empty());
    }
}

#[tokio::test]
async fn a_platform_change_is_blocked_with_rollback_and_import_named() {
    let env = TestEnv::named("current").await;
    let prov = provisioner(&env, env.host_api(), "test");
    let provider = env.provider_ref("deepseek");
    let r = prov
        .import(request(provider.clone(), &["k1"]))
        .await
        .unwrap();
    assert_eq!(r.batch.status, BatchStatus::Applied);
    let platform = env.dump()["accounts"][0]["platform"].clone();
    // The next pack version declares another native platform the host also
    // accepts: an account's platform cannot be patched.
    let mut manifest = env.pack.manifest.clone();
    manifest.version = "2099.3.0".into();
    let ds = manifest
        .providers
        .iter_mut()
        .find(|p| p.id.as_str() == "deepseek")
        .unwrap();
    let other = env
        .caps
        .native_platforms
        .iter()
        .find(|p| **p != ds.platform.native)
        .cloned()
        .expect("the current profile accepts several native platforms");
    ds.platform.native = other;
    env.store
        .install_pack(InstalledPack {
            manifest,
            checksum: "sha256-platform".into(),
            installed_at: chrono::Utc::now(),
            origin: "test".into(),
            current: true,
        })
        .await
        .unwrap();
    let p = prov.preview_upgrade(&r.batch.id, None).await.unwrap();
    let acct = &p.plan.items[0];
    assert_eq!(acct.action, PlanAction::Blocked, "{:#?}", p.plan);
    let why = acct.reason.as_deref().unwrap();
    assert!(why.contains("crm batch rollback"), "{why}");
    assert!(why.contains("crm provider import"), "{why}");
    let e = prov.upgrade(&r.batch.id, None, true).await.unwrap_err();
    assert!(matches!(e, ProvisionError::Blocked { .. }), "{e}");
    assert_eq!(env.dump()["accounts"][0]["platform"], platform);
}

#[tokio::test]
async fn an_unconfirmed_reimport_keeps_the_recorded_url_where_the_host_has_it() {
    for profile in PROFILES {
        let env = TestEnv::named(profile).await;
        let prov = provisioner(&env, env.host_api(), "test");
        let provider = env.provider_ref("deepseek");
        let r = prov
            .import(request(provider.clone(), &["k1"]))
            .await
            .unwrap();
        assert_eq!(r.batch.status, BatchStatus::Applied);
        install_moved(&env, "2099.2.0").await;
        let again = prov.import(request(provider.clone(), &[])).await;
        let host_url = env.dump()["accounts"][0]["credentials"]["base_url"]
            .as_str()
            .unwrap()
            .to_owned();
        let res = env.store.resources(&r.batch.id).await.unwrap();
        assert_eq!(
            recorded_url(&res),
            host_url,
            "{profile}: the recorded URL left the host's ({:?})",
            again.as_ref().map(|a| a.batch.status)
        );
        assert!(again.is_err(), "{profile}: applied without confirmation");
    }
}
