//! Upstream keys never reach the store, the journal, plans or reports in
//! clear: a canary key is imported, rotated, resumed and rolled back, then
//! every byte crm wrote is searched for it.

use crate::support::*;
use crm_domain::SecretString;
use crm_domain::ports::BatchRepo;
use crm_testkit::TestEnv;

#[tokio::test]
async fn the_canary_key_is_never_stored_or_reported() {
    for profile in PROFILES {
        let env = TestEnv::named(profile).await;
        let prov = provisioner(&env, env.host_api(), "t");
        let canary = "sim-ok-CANARY-7f3a9c2e5b1d";
        let rotated = "sim-ok-CANARY-rotated-4e8d";
        let mut req = request(env.provider_ref("deepseek"), &[]);
        req.upstream_keys = vec![SecretString::from(canary)];
        let r = prov.import(req).await.unwrap();
        let mut seen = serde_json::to_string(&r).unwrap();
        seen.push_str(&format!("{r:?}"));
        let fp = &r.batch.upstream_keys[0];
        let b = prov
            .rotate_key(&r.batch.id, &fp.hmac[..8], SecretString::from(rotated))
            .await
            .unwrap();
        seen.push_str(&format!("{b:?}"));
        let rb = prov.rollback(&r.batch.id).await.unwrap();
        seen.push_str(&serde_json::to_string(&rb).unwrap());
        let journal = env.store.journal(&r.batch.id).await.unwrap();
        seen.push_str(&serde_json::to_string(&journal).unwrap());
        for entry in std::fs::read_dir(env.dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                seen.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
            }
        }
        for secret in [canary, rotated] {
            assert!(!seen.contains(secret), "{profile}: {secret} leaked");
            assert!(!seen.contains("CANARY"), "{profile}: part of a key leaked");
        }
        // What is stored instead: the fingerprint.
        assert!(seen.contains(&fp.hmac));
    }
}
