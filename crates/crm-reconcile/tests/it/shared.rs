//! Objects crm shares or adopts: one upstream key imported in both access
//! modes (one account, two batches), and an operator's existing user given
//! access by crm-access. Reconcile must see both as in sync.

use crate::env::{World, brief};
use crm_domain::ports::BatchRepo;
use crm_domain::{AccessMode, BatchStatus, ReconcileStatus};
use crm_reconcile::{RunOptions, reconcile};
use crm_testkit::sim_key;

async fn host_run(w: &World) -> crm_domain::reconcile::ReconcileRun {
    w.clock.advance(std::time::Duration::from_secs(1));
    reconcile(
        &w.ports,
        &w.env.host_record,
        w.api(),
        w.host_scope(),
        RunOptions::default(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn one_key_in_both_modes_stays_in_sync_and_survives_rolling_back_one_mode() {
    for w in [World::current().await, World::legacy().await] {
        if !w.env.caps.subscriptions {
            continue;
        }
        let key = sim_key("ok", "ds1");
        let a = w
            .import_in(
                "deepseek",
                AccessMode::SelfService,
                std::slice::from_ref(&key),
            )
            .await;
        let b = w
            .import_in(
                "deepseek",
                AccessMode::Subscription,
                std::slice::from_ref(&key),
            )
            .await;
        assert_eq!(a.accounts, b.accounts, "one account for one key");
        // The second batch adopted the account as is: its creator's marker stays.
        let notes = w.api().list_accounts().await.unwrap()[0].notes.clone();
        if let Some(n) = notes {
            assert!(n.contains(&crm_domain::ownership::marker(&a.batch)), "{n}");
        }
        let run = host_run(&w).await;
        assert_eq!(
            (run.status, brief(&run.items)),
            (ReconcileStatus::InSync, vec![])
        );

        let rb = w.provisioner().rollback(&a.batch).await.unwrap();
        assert_eq!(rb.status, BatchStatus::RolledBack, "{rb:?}");
        let accounts = w.api().list_accounts().await.unwrap();
        assert_eq!(accounts.len(), 1, "the account stays for the other mode");
        assert_eq!(
            accounts[0].group_ids,
            [b.group],
            "bound only to the other group"
        );
        let run = host_run(&w).await;
        assert_eq!(
            (run.status, brief(&run.items)),
            (ReconcileStatus::InSync, vec![])
        );

        let rb = w.provisioner().rollback(&b.batch).await.unwrap();
        assert_eq!(rb.status, BatchStatus::RolledBack, "{rb:?}");
        assert!(w.api().list_accounts().await.unwrap().is_empty());
        let batch = w.env.store.get_batch(&b.batch).await.unwrap();
        assert_eq!(batch.status, BatchStatus::RolledBack);
    }
}

#[tokio::test]
async fn an_operators_existing_user_given_access_is_observed_in_sync() {
    use crm_access::{AccessPorts, ClosureRequest, KeyChoice, UserChoice};
    use crm_domain::SecretString;
    use crm_domain::observed::UserDraft;

    let w = World::current().await;
    let a = w.import("deepseek", &[sim_key("ok", "ds1")]).await;
    let password = SecretString::from("alice-password-123");
    w.api()
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
    let ports = AccessPorts {
        host: w.api(),
        upstream: &*w.env.upstream,
        batches: &w.env.store,
        checks: &w.env.store,
        funds: &w.env.store,
        clock: &*w.clock,
        ids: &*w.env.ids,
        sealer: &w.env.store,
    };
    crm_access::close_access(
        &ports,
        &w.env.caps,
        &a.batch,
        w.env.provider("deepseek"),
        &ClosureRequest {
            user: UserChoice::Existing {
                email: "alice@example.com".into(),
                password,
            },
            key: KeyChoice::Create,
            starting_balance: Some(2.0),
            validity_days: None,
        },
    )
    .await
    .unwrap();
    let run = host_run(&w).await;
    assert_eq!(
        (run.status, brief(&run.items)),
        (ReconcileStatus::InSync, vec![]),
        "the adopted user is observed, not missing"
    );
    // Observation stays bounded: one extra user list for the one adopted user.
    assert!(run.host_requests <= 12, "{}", run.host_requests);
}
