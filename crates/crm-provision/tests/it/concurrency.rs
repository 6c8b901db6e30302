//! 20 concurrent imports of the same (host, provider): one batch applies, the
//! others are refused (lease held, naming the holder) or join it as a no-op;
//! the host ends with one set of objects. And within one import or rollback,
//! independent host calls overlap, never more than `max_concurrency` at once.

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

#[tokio::test]
async fn independent_host_calls_overlap_within_the_configured_bound() {
    use std::sync::Arc;
    let tags: Vec<String> = (1..=12).map(|i| format!("k{i}")).collect();
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    for limit in [1usize, 4] {
        let env = TestEnv::current().await;
        // Every host request takes 20 ms, so overlapping calls are seen overlapping.
        env.sim.set_latency(std::time::Duration::from_millis(20));
        let host = Arc::new(GatedHost::counting(env.host_api()));
        let mut prov = provisioner(&env, host.clone(), "t");
        prov.max_concurrency = limit;
        let r = prov
            .import(request(env.provider_ref("deepseek"), &tags))
            .await
            .unwrap();
        assert_eq!(r.batch.status, BatchStatus::Applied, "{:?}", r.error);
        assert_eq!(crm_names(&env).len(), 12 + 2, "12 accounts, group, channel");
        let most = host.max_in_flight();
        if limit == 1 {
            assert_eq!(most, 1, "sequential when the limit is 1");
        } else {
            assert!(
                (2..=limit as u32).contains(&most),
                "12 independent creates overlap, at most {limit} at once: {most}"
            );
        }
        host.reset_in_flight();
        let rb = prov.rollback(&r.batch.id).await.unwrap();
        assert_eq!(rb.status, BatchStatus::RolledBack, "{rb:?}");
        assert!(crm_marked(&env).is_empty());
        let most = host.max_in_flight();
        if limit == 1 {
            assert_eq!(most, 1);
        } else {
            assert!((2..=limit as u32).contains(&most), "deletes: {most}");
        }
    }
}
