//! Hosts that keep a deleted object's name: sub2api d3e73f1 deletes groups
//! softly (`gorm.DeletedAt`) while the unique index on `groups.name` still
//! covers the deleted row (`internal/repository/group_repo.go`), so after a
//! rollback the deterministic group name answers 409 `GROUP_EXISTS` although
//! no listing shows it. The host's answer is injected here (crm-sim deletes
//! for real), exactly as the real host gives it.

use crate::support::*;
use crm_domain::ports::BatchRepo;
use crm_domain::{BatchStatus, JournalOp, JournalState, PlanAction, ResourceKind};
use crm_sim::{FaultAction, FaultSpec};
use crm_testkit::TestEnv;
use serde_json::json;

/// The real host's answer to a group create whose name a deleted group holds.
fn name_taken(times: u32) -> FaultSpec {
    FaultSpec {
        method: Some("POST".into()),
        path: "/api/v1/admin/groups".into(),
        nth: 1,
        times,
        action: FaultAction::Status {
            status: 409,
            body: json!({"code": 409, "message": "group name already exists", "reason": "GROUP_EXISTS"}),
        },
    }
}

#[tokio::test]
async fn a_group_name_held_by_a_deleted_group_takes_the_next_generation() {
    for profile in PROFILES {
        let env = TestEnv::named(profile).await;
        let prov = provisioner(&env, env.host_api(), "t");
        let req = request(env.provider_ref("deepseek"), &["a"]);
        let base = prov
            .preview(&req)
            .await
            .unwrap()
            .plan
            .items
            .iter()
            .find(|i| i.kind == ResourceKind::Group)
            .unwrap()
            .name
            .clone();
        // Two tombstones: the base name and its second generation.
        env.sim.inject_fault(name_taken(2));
        let r = prov.import(req.clone()).await.unwrap();
        assert_eq!(r.batch.status, BatchStatus::Applied, "{profile}: {r:?}");

        let third = format!("{base}-g3");
        let groups = env.dump()["groups"].as_array().unwrap().clone();
        assert_eq!(groups.len(), 1, "{profile}: {groups:?}");
        assert_eq!(groups[0]["name"], json!(third), "{profile}");
        assert!(
            groups[0]["description"]
                .as_str()
                .unwrap()
                .contains("[crm:batch="),
            "{profile}: still crm-marked"
        );
        let res = env.store.resources(&r.batch.id).await.unwrap();
        let g = res.iter().find(|x| x.kind == ResourceKind::Group).unwrap();
        assert_eq!(g.name, third, "{profile}");
        // The journal tells the story: two refused names, then the one used.
        let creates: Vec<(String, JournalState)> = env
            .store
            .journal(&r.batch.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == ResourceKind::Group && e.op == JournalOp::Create)
            .map(|e| (e.name, e.state))
            .collect();
        assert_eq!(
            creates,
            vec![
                (base.clone(), JournalState::Failed),
                (format!("{base}-g2"), JournalState::Failed),
                (third.clone(), JournalState::Applied),
            ],
            "{profile}"
        );

        // The batch's next plan finds the group of that generation.
        let again = prov.preview(&req).await.unwrap();
        let item = again
            .plan
            .items
            .iter()
            .find(|i| i.kind == ResourceKind::Group)
            .unwrap();
        assert_eq!(item.action, PlanAction::NoOp, "{profile}: {item:?}");
        assert_eq!(item.host_object_id.map(|i| i.0), groups[0]["id"].as_i64());
    }
}
