//! Packs: install, list, versions.

use super::fixtures::*;
use crm_domain::ports::{Storage, StoreError};
use crm_domain::*;

pub(super) async fn packs<S: Storage + ?Sized>(s: &S) {
    let id = PackId::new("cn-official");
    let v1 = s
        .install_pack(installed("cn-official", "1.0.0", "sum-1", 0))
        .await
        .expect("install v1");
    assert!(v1.current, "a freshly installed version is current");
    let again = s
        .install_pack(installed("cn-official", "1.0.0", "sum-1", 99))
        .await
        .expect("reinstalling the same version and checksum is a no-op");
    assert_eq!(again, v1, "the no-op returns the stored record unchanged");
    let clash = s
        .install_pack(installed("cn-official", "1.0.0", "sum-other", 1))
        .await;
    assert!(
        matches!(clash, Err(StoreError::AlreadyExists { .. })),
        "same version, different checksum must be AlreadyExists, got {clash:?}"
    );
    s.install_pack(installed("cn-official", "1.1.0", "sum-2", 10))
        .await
        .expect("install v2");
    s.install_pack(installed("other-pack", "1.0.0", "sum-x", 11))
        .await
        .expect("another pack");
    let current = s.get_pack(&id, None).await.expect("current version");
    assert_eq!(current.manifest.version, "1.1.0");
    assert!(current.current);
    let old = s
        .get_pack(&id, Some("1.0.0".into()))
        .await
        .expect("named version");
    assert!(!old.current, "installing v2 made v1 not current");
    assert_eq!(old.manifest, manifest("cn-official", "1.0.0"));
    assert_eq!(old.installed_at, at(0));
    let other = s.get_pack(&PackId::new("other-pack"), None).await.unwrap();
    assert!(other.current, "packs do not share a current version");
    assert!(matches!(
        s.get_pack(&id, Some("9.9.9".into())).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.get_pack(&PackId::new("nope"), None).await,
        Err(StoreError::NotFound { .. })
    ));
    let all = s.list_packs().await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all.iter().filter(|p| p.current).count(), 2);
}
