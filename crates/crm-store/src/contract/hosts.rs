//! Hosts and their probed capabilities.

use super::fixtures::*;
use crm_domain::ports::{Storage, StoreError};
use crm_domain::*;

pub(super) async fn hosts<S: Storage + ?Sized>(s: &S) {
    let h = s.add_host(host("h1", "relay-one")).await.expect("add host");
    assert_eq!(h, host("h1", "relay-one"));
    s.add_host(host("h2", "relay-two")).await.unwrap();
    for dup in [host("h1", "other-name"), host("h9", "relay-one")] {
        assert!(
            matches!(s.add_host(dup).await, Err(StoreError::AlreadyExists { .. })),
            "host ids and names are unique"
        );
    }
    assert_eq!(s.get_host("h1").await.unwrap().name, "relay-one");
    assert_eq!(s.get_host("relay-two").await.unwrap().id, HostId::new("h2"));
    assert!(matches!(
        s.get_host("relay-nine").await,
        Err(StoreError::NotFound { .. })
    ));
    s.save_capabilities(&HostId::new("h1"), capabilities("0.1.104"))
        .await
        .unwrap();
    s.set_reconcile_interval(&HostId::new("h1"), Some(900))
        .await
        .unwrap();
    let h1 = s.get_host("h1").await.unwrap();
    assert_eq!(h1.capabilities, Some(capabilities("0.1.104")));
    assert_eq!(h1.reconcile_every_secs, Some(900));
    s.set_reconcile_interval(&HostId::new("h1"), None)
        .await
        .unwrap();
    assert_eq!(s.get_host("h1").await.unwrap().reconcile_every_secs, None);
    // The host's own funds thresholds survive a probe and can be removed.
    let mut t = crm_domain::funds::HostThresholds::default();
    t.set(
        Some(&crm_domain::ProviderRef::new("cn-official", "deepseek")),
        &crm_domain::funds::FundsThreshold {
            low_balance: Some(crm_domain::funds::Threshold {
                amount: 10.0,
                currency: crm_domain::Currency::Cny,
            }),
            low_quota_percent: Some(15.0),
        },
        false,
    );
    s.set_funds_thresholds(&HostId::new("h1"), t.clone())
        .await
        .unwrap();
    s.save_capabilities(&HostId::new("h1"), capabilities("0.1.105"))
        .await
        .unwrap();
    assert_eq!(s.get_host("h1").await.unwrap().funds_thresholds, t);
    assert!(
        s.get_host("h2").await.unwrap().funds_thresholds.is_empty(),
        "another host is untouched"
    );
    s.set_funds_thresholds(&HostId::new("h1"), Default::default())
        .await
        .unwrap();
    assert!(s.get_host("h1").await.unwrap().funds_thresholds.is_empty());
    assert!(matches!(
        s.set_funds_thresholds(&HostId::new("zz"), Default::default())
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.save_capabilities(&HostId::new("zz"), capabilities("x"))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    s.add_host(host("h3", "relay-three")).await.unwrap();
    s.remove_host(&HostId::new("h3"))
        .await
        .expect("remove host");
    assert!(matches!(
        s.remove_host(&HostId::new("h3")).await,
        Err(StoreError::NotFound { .. })
    ));
    let names: Vec<_> = s
        .list_hosts()
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.name)
        .collect();
    assert_eq!(names, ["relay-one", "relay-two"]);
}
