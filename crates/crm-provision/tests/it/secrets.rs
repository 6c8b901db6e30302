//! Upstream keys never reach the store, the journal, plans or reports in
//! clear: a canary key is imported, rotated, resumed and rolled back, then
//! every byte crm wrote is searched for it.

use crate::support::*;
use crm_domain::ports::BatchRepo;
use crm_domain::secret::ExposeSecret;
use crm_domain::{BatchStatus, SecretString};
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
        // Not even sealed: upstream keys are stored only as fingerprints.
        assert!(
            !seen.contains("upstream_key_sealed"),
            "{profile}: a sealed upstream key was stored"
        );
        // What is stored instead: the fingerprint.
        assert!(seen.contains(&fp.hmac));
    }
}

/// The bytes of every file crm wrote in the env's directory.
fn stored_bytes(env: &TestEnv) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(env.dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            out.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    out
}

#[tokio::test]
async fn resume_without_a_needed_key_blocks_that_account_names_it_and_the_rest_proceeds() {
    for profile in PROFILES {
        let env = TestEnv::named(profile).await;
        let prov = provisioner(&env, env.host_api(), "t");
        let provider = env.provider_ref("deepseek");
        // The second account create is refused: the batch stops part-way.
        env.sim.inject_fault(crm_sim::FaultSpec {
            method: Some("POST".into()),
            path: "/api/v1/admin/accounts".into(),
            nth: 2,
            times: 1,
            action: crm_sim::FaultAction::Status {
                status: 400,
                body: serde_json::json!({"code": 400, "message": "refused for the test"}),
            },
        });
        let r = prov
            .import(request(provider.clone(), &["a", "b"]))
            .await
            .unwrap();
        assert_eq!(r.batch.status, BatchStatus::PartiallyApplied, "{profile}");
        env.sim.clear_faults();
        let expected = planned_names(
            &prov
                .preview(&request(provider.clone(), &["a", "b"]))
                .await
                .unwrap()
                .plan,
        );

        // Resume without keys: the account still to create is blocked and
        // names its key; the group, bindings and channel are applied.
        let rs = prov.resume(&r.batch.id, vec![]).await.unwrap();
        let blocked: Vec<_> = rs.plan.blocked().collect();
        assert_eq!(blocked.len(), 1, "{profile}: {:#?}", rs.plan);
        let missing = r
            .batch
            .upstream_keys
            .iter()
            .find(|k| blocked[0].name.ends_with(k.short()))
            .expect("the blocked account is one of the batch's keys");
        let reason = blocked[0].reason.clone().unwrap_or_default();
        assert!(
            reason.contains(&format!(
                "supply the upstream key {missing} with --upstream-keys-file"
            )),
            "{profile}: {reason}"
        );
        assert!(reason.contains('…') && reason.contains(&missing.last4));
        assert_eq!(rs.batch.status, BatchStatus::PartiallyApplied, "{profile}");
        assert!(rs.batch.status.is_resumable());
        assert!(
            rs.batch
                .status_reason
                .as_deref()
                .unwrap_or_default()
                .contains(&missing.to_string()),
            "{profile}: {:?}",
            rs.batch.status_reason
        );
        let got = crm_names(&env);
        assert_eq!(got.len(), expected.len() - 1, "{profile}: {got:?}");
        assert!(
            got.iter().any(|n| n.starts_with("groups ")),
            "{profile}: {got:?}"
        );

        // Given the key, resume finishes the batch with exactly the plan.
        let done = prov.resume(&r.batch.id, keys(&["a", "b"])).await.unwrap();
        assert_eq!(
            done.batch.status,
            BatchStatus::Applied,
            "{profile}: {:?}",
            done.error
        );
        assert_eq!(crm_names(&env), expected, "{profile}");

        let bytes = stored_bytes(&env);
        assert!(!bytes.contains("upstream_key_sealed"), "{profile}");
        for k in keys(&["a", "b"]) {
            assert!(
                !bytes.contains(k.expose_secret()),
                "{profile}: a key is stored"
            );
        }
    }
}
