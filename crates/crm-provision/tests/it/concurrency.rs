//! 20 concurrent imports of the same (host, provider): one batch applies, the
//! others are refused (lease held, naming the holder) or join it as a no-op;
//! the host ends with one set of objects.

use crate::support::*;
use crm_domain::BatchStatus;
use crm_domain::ports::BatchRepo;
use crm_provision::ProvisionError;
use crm_testkit::TestEnv;

#[tokio::test]
async fn twenty_concurrent_imports_apply_once() {
    for profile in PROFILES {
        let env = TestEnv::named(profile).await;
        let provider = env.provider_ref("deepseek");
        let mut tasks = Vec::new();
        for i in 0..20 {
            let prov = provisioner(&env, env.new_host_handle(), &format!("worker-{i}"));
            let req = request(provider.clone(), &["a"]);
            tasks.push(tokio::spawn(async move { prov.import(req).await }));
        }
        let (mut applied, mut joined, mut refused) = (0, 0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(r) if r.noop => joined += 1,
                Ok(r) => {
                    assert_eq!(
                        r.batch.status,
                        BatchStatus::Applied,
                        "{profile}: {:?}",
                        r.error
                    );
                    applied += 1;
                }
                Err(ProvisionError::Store(e)) => {
                    let msg = e.to_string();
                    assert!(msg.contains("held by worker-"), "{profile}: {msg}");
                    refused += 1;
                }
                Err(e) => panic!("{profile}: unexpected {e}"),
            }
        }
        println!("{profile}: applied {applied}, joined {joined}, refused {refused}");
        assert_eq!(applied, 1, "{profile}");
        assert_eq!(applied + joined + refused, 20);
        let batches = env.store.list_batches(Default::default()).await.unwrap();
        assert_eq!(batches.len(), 1, "{profile}");
        let names = crm_names(&env);
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(names, unique, "{profile}: duplicates {names:?}");
        assert_eq!(names.len(), if profile == "current" { 3 } else { 2 });
    }
}
