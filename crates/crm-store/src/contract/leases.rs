//! Database leases.

use crm_domain::ops::Lease;
use crm_domain::ports::{Storage, StoreError};
use crm_domain::*;
use std::time::Duration;

pub(super) async fn leases<S: Storage + ?Sized>(s: &S) {
    let ttl = Duration::from_secs(3600);
    let scope = Lease::provider_scope(
        &HostId::new("h1"),
        &ProviderRef::new("cn-official", "deepseek"),
    );
    let lease = s
        .acquire_lease(&scope, "cli@ops-vm pid 41", "import", ttl)
        .await
        .unwrap();
    assert_eq!(lease.scope, scope);
    assert!(lease.expires_at > lease.acquired_at);
    match s.acquire_lease(&scope, "server", "reconcile", ttl).await {
        Err(StoreError::LeaseHeld {
            holder,
            operation,
            lease_id,
            scope: held_scope,
            expires_at,
        }) => {
            assert_eq!(holder, "cli@ops-vm pid 41");
            assert_eq!(operation, "import");
            assert_eq!(lease_id, lease.id);
            assert_eq!(held_scope, scope);
            assert_eq!(expires_at, lease.expires_at);
        }
        other => panic!("a held lease must refuse with LeaseHeld, got {other:?}"),
    }
    let host_lease = s
        .acquire_lease(
            &Lease::host_scope(&HostId::new("h2")),
            "server",
            "reconcile",
            ttl,
        )
        .await
        .expect("another scope is free");
    let beat = s
        .heartbeat_lease(&lease.id, Duration::from_secs(7200))
        .await
        .unwrap();
    assert_eq!(beat.id, lease.id);
    assert!(beat.expires_at > lease.expires_at);
    let active = s.active_leases("host:h1").await.unwrap();
    assert_eq!(active, [beat]);
    assert_eq!(s.active_leases("host:").await.unwrap().len(), 2);
    assert!(s.active_leases("host:h9").await.unwrap().is_empty());

    let stranger = LeaseId::new("l-not-mine");
    assert!(matches!(
        s.release_lease(&stranger).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(
        s.acquire_lease(&scope, "server", "import", ttl)
            .await
            .is_err(),
        "a release with the wrong id frees nothing"
    );
    s.release_lease(&lease.id).await.unwrap();
    assert!(matches!(
        s.heartbeat_lease(&lease.id, ttl).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        s.release_lease(&lease.id).await,
        Err(StoreError::LeaseLost { .. })
    ));
    let next = s
        .acquire_lease(&scope, "server", "import", ttl)
        .await
        .expect("a released scope is free");
    assert_ne!(next.id, lease.id, "every acquisition gets a fresh id");
    s.release_lease(&next.id).await.unwrap();
    s.release_lease(&host_lease.id).await.unwrap();
    assert!(s.active_leases("").await.unwrap().is_empty());
}
