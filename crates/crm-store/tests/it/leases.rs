//! Leases held in the database exclude other connections and processes;
//! expired leases are taken over.

use crate::support::{aborted, open, run_child, temp_db};
use chrono::TimeDelta;
use crm_domain::ports::{LeaseRepo, StoreError};
use crm_store::{ManualClock, SqliteStore, StoreOptions};
use std::sync::Arc;
use std::time::Duration;

const TTL: Duration = Duration::from_secs(60);

/// Two stores on one file (two connections, two threads) race for the same
/// scopes: every time exactly one wins and the loser is told who holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_connections_race_and_exactly_one_wins() {
    let (_dir, db) = temp_db();
    let a = open(&db).await;
    let b = open(&db).await;
    let mut wins = [0u32; 2];
    for round in 0..25 {
        let scope = format!("host:h{round}/provider:cn-official/deepseek");
        let (ra, rb) = tokio::join!(
            a.acquire_lease(&scope, "cli pid 100", "import", TTL),
            b.acquire_lease(&scope, "server pid 200", "reconcile", TTL),
        );
        match (ra, rb) {
            (
                Ok(won),
                Err(StoreError::LeaseHeld {
                    holder,
                    operation,
                    lease_id,
                    ..
                }),
            ) => {
                wins[0] += 1;
                assert_eq!(holder, "cli pid 100");
                assert_eq!(operation, "import");
                assert_eq!(lease_id, won.id);
            }
            (
                Err(StoreError::LeaseHeld {
                    holder,
                    operation,
                    lease_id,
                    ..
                }),
                Ok(won),
            ) => {
                wins[1] += 1;
                assert_eq!(holder, "server pid 200");
                assert_eq!(operation, "reconcile");
                assert_eq!(lease_id, won.id);
            }
            other => panic!("round {round}: expected exactly one winner, got {other:?}"),
        }
        let held = a.active_leases(&scope).await.unwrap();
        assert_eq!(held.len(), 1, "one lease row per scope");
    }
    assert_eq!(wins[0] + wins[1], 25);
}

/// A lease taken by another process (which then crashed without releasing
/// it) refuses this process, naming the holder, until it expires.
#[tokio::test]
async fn a_lease_held_by_another_process_names_its_holder() {
    const CHILD_DB: &str = "CRM_STORE_TEST_LEASE_DB";
    if let Some(db) = std::env::var_os(CHILD_DB) {
        let store = open(std::path::Path::new(&db)).await;
        let holder = format!("crm-cli pid {}", std::process::id());
        store
            .acquire_lease("host:h1", &holder, "import", Duration::from_secs(600))
            .await
            .unwrap();
        std::process::abort();
    }
    let (_dir, db) = temp_db();
    let status = run_child(
        "leases::a_lease_held_by_another_process_names_its_holder",
        &[(CHILD_DB, db.to_str().unwrap())],
    );
    assert!(
        aborted(status),
        "the child crashed holding the lease: {status}"
    );

    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let store = SqliteStore::open(&db, StoreOptions::default().with_clock(clock.clone()))
        .await
        .unwrap();
    let err = store
        .acquire_lease("host:h1", "crm-server", "reconcile", TTL)
        .await
        .unwrap_err();
    let StoreError::LeaseHeld {
        holder, operation, ..
    } = &err
    else {
        panic!("expected LeaseHeld, got {err:?}");
    };
    assert!(holder.starts_with("crm-cli pid "), "{holder}");
    assert_eq!(operation, "import");
    let message = err.to_string();
    assert!(
        message.contains(holder.as_str()) && message.contains("import"),
        "{message}"
    );

    // The crashed holder never heartbeats; once its lease expires it is taken over.
    clock.advance(Duration::from_secs(601));
    let lease = store
        .acquire_lease("host:h1", "crm-server", "reconcile", TTL)
        .await
        .expect("stale lease taken over");
    assert_eq!(lease.holder, "crm-server");
}

#[tokio::test]
async fn expired_leases_are_taken_over_and_the_old_holder_loses_them() {
    let (_dir, db) = temp_db();
    let start = crm_store::contract::at(0);
    let clock = Arc::new(ManualClock::new(start));
    let store = SqliteStore::open(&db, StoreOptions::default().with_clock(clock.clone()))
        .await
        .unwrap();

    let first = store
        .acquire_lease("host:h1", "worker-1", "import", TTL)
        .await
        .unwrap();
    assert_eq!(first.expires_at, start + TimeDelta::seconds(60));

    clock.advance(Duration::from_secs(59));
    assert!(matches!(
        store
            .acquire_lease("host:h1", "worker-2", "import", TTL)
            .await,
        Err(StoreError::LeaseHeld { .. })
    ));
    // Heartbeating before expiry extends from "now".
    let beat = store.heartbeat_lease(&first.id, TTL).await.unwrap();
    assert_eq!(beat.expires_at, start + TimeDelta::seconds(119));
    assert_eq!(beat.heartbeat_at, start + TimeDelta::seconds(59));

    // Expired but not taken over: the holder may still extend it.
    clock.advance(Duration::from_secs(70));
    assert!(store.active_leases("host:").await.unwrap().is_empty());
    let late = store.heartbeat_lease(&first.id, TTL).await.unwrap();
    assert_eq!(late.id, first.id);
    assert_eq!(store.active_leases("host:").await.unwrap().len(), 1);

    // Expired and taken over: the old id is lost for good.
    clock.advance(Duration::from_secs(61));
    let second = store
        .acquire_lease("host:h1", "worker-2", "import", TTL)
        .await
        .expect("takeover of an expired lease");
    assert_ne!(second.id, first.id);
    assert!(matches!(
        store.heartbeat_lease(&first.id, TTL).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        store.release_lease(&first.id).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert_eq!(
        store.active_leases("host:h1").await.unwrap(),
        std::slice::from_ref(&second),
        "the old holder's release did not free the new holder's lease"
    );
    store.release_lease(&second.id).await.unwrap();
}
