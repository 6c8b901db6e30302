//! Rollback edges: a failed delete leaves `rollback_incomplete` with the
//! reason and a second rollback finishes; an object deleted behind crm's back
//! (404) counts as done; an object whose marker was removed is never deleted.

use crate::support::*;
use crm_domain::ports::BatchRepo;
use crm_domain::{BatchStatus, HostObjectId, ResourceKind};
use crm_sim::{FaultAction, FaultSpec};
use crm_testkit::TestEnv;

#[tokio::test]
async fn a_failed_delete_is_reported_and_a_second_rollback_finishes() {
    for profile in PROFILES {
        let env = TestEnv::named(profile).await;
        let prov = provisioner(&env, env.host_api(), "t");
        let r = prov
            .import(request(env.provider_ref("deepseek"), &["a"]))
            .await
            .unwrap();
        // Every attempt at deleting the group fails (deletes are retried by the client).
        env.sim.inject_fault(FaultSpec {
            method: Some("DELETE".into()),
            path: "/api/v1/admin/groups/{id}".into(),
            nth: 1,
            times: 100,
            action: FaultAction::Status {
                status: 500,
                body: serde_json::Value::Null,
            },
        });
        let rb = prov.rollback(&r.batch.id).await.unwrap();
        assert_eq!(
            rb.status,
            BatchStatus::RollbackIncomplete,
            "{profile}: {rb:?}"
        );
        assert_eq!(rb.left.len(), 1, "{profile}: {rb:?}");
        assert!(rb.left[0].starts_with("group crm-"), "{profile}: {rb:?}");
        // A rollback's reason says what to do next, and that is not "resume"
        // (the hint of a failed import step). A self-service batch has no
        // subscription, so no word of subscription usage either.
        assert!(
            rb.left[0].contains(&format!("crm batch rollback {}", r.batch.id)),
            "{profile}: {rb:?}"
        );
        assert!(!rb.left[0].contains("usage records"), "{profile}: {rb:?}");
        assert!(!rb.left[0].contains("run resume"), "{profile}: {rb:?}");
        let b = env.store.get_batch(&r.batch.id).await.unwrap();
        assert!(b.status_reason.unwrap().contains("left on the host: group"));
        assert_eq!(
            crm_marked(&env).len(),
            1,
            "{profile}: only the group is left"
        );

        env.sim.clear_faults();
        let again = prov.rollback(&r.batch.id).await.unwrap();
        assert_eq!(
            again.status,
            BatchStatus::RolledBack,
            "{profile}: {again:?}"
        );
        assert!(crm_marked(&env).is_empty());
        // A re-import after rollback starts a new batch.
        let fresh = prov
            .import(request(env.provider_ref("deepseek"), &["a"]))
            .await
            .unwrap();
        assert_ne!(fresh.batch.id, r.batch.id);
        assert_eq!(fresh.batch.status, BatchStatus::Applied);
    }
}

#[tokio::test]
async fn gone_objects_count_as_deleted_and_unmarked_ones_are_left() {
    for profile in PROFILES {
        let env = TestEnv::named(profile).await;
        let prov = provisioner(&env, env.host_api(), "t");
        let r = prov
            .import(request(env.provider_ref("deepseek"), &["a", "b"]))
            .await
            .unwrap();
        let res = env.store.resources(&r.batch.id).await.unwrap();
        let accounts: Vec<HostObjectId> = res
            .iter()
            .filter(|x| x.kind == ResourceKind::Account)
            .map(|x| x.host_object_id)
            .collect();
        // One account vanished behind crm's back: its delete answers 404.
        env.sim.delete_object("accounts", accounts[0].0).unwrap();
        // The operator took the group over: its marker is gone.
        let group = res.iter().find(|x| x.kind == ResourceKind::Group).unwrap();
        let observed = env
            .host
            .list_groups()
            .await
            .unwrap()
            .into_iter()
            .find(|g| g.id == group.host_object_id)
            .unwrap();
        let mut draft: crm_domain::observed::GroupDraft =
            serde_json::from_value(group.desired.clone()).unwrap();
        draft.description = Some("now the operator's own group".into());
        use crm_domain::ports::HostApi;
        env.host.update_group(observed.id, &draft).await.unwrap();

        let rb = prov.rollback(&r.batch.id).await.unwrap();
        assert_eq!(
            rb.status,
            BatchStatus::RollbackIncomplete,
            "{profile}: {rb:?}"
        );
        assert_eq!(rb.left.len(), 1, "{profile}: {rb:?}");
        assert!(rb.left[0].contains("no crm marker"), "{profile}: {rb:?}");
        assert_eq!(
            rb.deleted.len(),
            res.len() - 1,
            "{profile}: the vanished account counts as deleted: {rb:?}"
        );
        let groups = env.dump()["groups"].as_array().unwrap().clone();
        assert_eq!(groups.len(), 1, "{profile}: the unmarked group is kept");
        assert_eq!(env.dump()["accounts"].as_array().unwrap().len(), 0);
    }
}

#[tokio::test]
async fn an_adopted_operator_key_is_kept_and_rebound_to_its_recorded_group() {
    use crm_domain::observed::{ApiKeyDraft, GroupDraft, UserDraft, UserLogin};
    use crm_domain::ports::{HostApi, SecretSealer};
    use crm_domain::{GroupBilling, JournalOp, Platform, SecretString};
    use crm_provision::{Intent, JournalExecutor};
    use serde_json::json;

    for profile in PROFILES {
        let env = TestEnv::named(profile).await;
        let prov = provisioner(&env, env.host_api(), "t");
        let r = prov
            .import(request(env.provider_ref("deepseek"), &["a"]))
            .await
            .unwrap();
        let crm_group = env
            .store
            .resources(&r.batch.id)
            .await
            .unwrap()
            .into_iter()
            .find(|x| x.kind == ResourceKind::Group)
            .unwrap()
            .host_object_id;
        // An operator's user with two keys of their own: one in the
        // operator's group, one in no group.
        let host = env.host.clone();
        let team = host
            .create_group(&GroupDraft {
                name: "operator-team".into(),
                description: Some("the operator's".into()),
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
        let password = SecretString::from("alice-password-123");
        let alice = host
            .create_user(&UserDraft {
                email: "alice@example.com".into(),
                password: password.clone(),
                username: None,
                notes: None,
                balance: Some(1.0),
                allowed_groups: vec![],
            })
            .await
            .unwrap();
        let login = UserLogin {
            email: alice.email.clone(),
            password: password.clone(),
        };
        let mut keys = Vec::new();
        for (name, group) in [("alice-laptop", Some(team.id)), ("alice-phone", None)] {
            let k = host
                .create_user_api_key(
                    &login,
                    &ApiKeyDraft {
                        name: name.into(),
                        group_id: group,
                    },
                )
                .await
                .unwrap();
            keys.push((name, k.key.id, group));
        }
        // The access closure adopted both and rebound them to crm's group;
        // only the first records the group it came from.
        let ctx = crm_domain::host::SealContext::batch_login_password(&r.batch.id, &alice.email);
        let sealed = SecretSealer::seal(&env.store, &ctx, &password).unwrap();
        let exec = JournalExecutor::new(&env.store, false);
        for (name, id, original) in &keys {
            host.rebind_user_api_key(&login, *id, crm_group)
                .await
                .unwrap();
            let mut desired = json!({
                "name": name,
                "user_id": alice.id,
                "group_id": crm_group,
                "login_email": alice.email,
                "login_password_sealed": sealed,
            });
            if let Some(g) = original {
                desired["original_group_id"] = json!(g);
            }
            exec.adopt(
                Intent {
                    batch_id: r.batch.id.clone(),
                    op: JournalOp::Adopt,
                    kind: ResourceKind::UserApiKey,
                    natural_key: format!("key:{name}"),
                    name: (*name).into(),
                    host_object_id: Some(*id),
                    desired,
                },
                "the operator's key; crm adopts it for this batch",
            )
            .await
            .unwrap();
        }

        let rb = prov.rollback(&r.batch.id).await.unwrap();
        assert_eq!(rb.status, BatchStatus::RolledBack, "{profile}: {rb:?}");
        let left = host.list_user_api_keys(alice.id).await.unwrap();
        assert_eq!(left.len(), 2, "{profile}: the operator's keys are kept");
        let laptop = left.iter().find(|k| k.id == keys[0].1).unwrap();
        assert_eq!(laptop.group_id, Some(team.id), "{profile}: rebound back");
        let kept = rb.kept.join("\n");
        assert!(
            kept.contains("alice-laptop")
                && kept.contains(&format!("rebound to its original group {}", team.id)),
            "{profile}: {kept}"
        );
        assert!(
            kept.contains("alice-phone") && kept.contains("original group is not recorded"),
            "{profile}: {kept}"
        );
        assert!(
            !rb.deleted.iter().any(|d| d.contains("alice")),
            "{profile}: {rb:?}"
        );
        assert!(crm_marked(&env).is_empty(), "{profile}");
    }
}
