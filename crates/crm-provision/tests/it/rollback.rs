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
