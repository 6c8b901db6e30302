//! Import batches: create, filter, status moves.

use super::fixtures::*;
use crm_domain::batch::{BatchFilter, ImportBatch};
use crm_domain::ports::{Storage, StoreError};
use crm_domain::*;

pub(super) async fn batches<S: Storage + ?Sized>(s: &S) {
    let b1 = batch(
        "b-1",
        "h1",
        "cn-official/deepseek",
        BatchStatus::Planned,
        100,
    );
    assert_eq!(s.create_batch(b1.clone()).await.unwrap(), b1);
    assert!(matches!(
        s.create_batch(b1.clone()).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(
        s.create_batch(batch("b-x", "no-host", "a/b", BatchStatus::Planned, 1))
            .await
            .is_err(),
        "a batch needs a registered host"
    );
    s.create_batch(batch(
        "b-2",
        "h1",
        "cn-official/kimi",
        BatchStatus::Applied,
        200,
    ))
    .await
    .unwrap();
    s.create_batch(batch(
        "b-3",
        "h2",
        "cn-official/deepseek",
        BatchStatus::Applied,
        300,
    ))
    .await
    .unwrap();
    s.create_batch(batch(
        "b-4",
        "h2",
        "my-pack/deepseek",
        BatchStatus::Failed,
        400,
    ))
    .await
    .unwrap();
    assert_eq!(s.get_batch(&BatchId::new("b-1")).await.unwrap(), b1);
    assert!(matches!(
        s.get_batch(&BatchId::new("b-404")).await,
        Err(StoreError::NotFound { .. })
    ));

    let ids = |v: Vec<ImportBatch>| v.into_iter().map(|b| b.id.0).collect::<Vec<_>>();
    let all = s.list_batches(BatchFilter::default()).await.unwrap();
    assert_eq!(ids(all), ["b-4", "b-3", "b-2", "b-1"], "newest first");
    let on_h1 = BatchFilter {
        host_id: Some(HostId::new("h1")),
        ..Default::default()
    };
    assert_eq!(ids(s.list_batches(on_h1).await.unwrap()), ["b-2", "b-1"]);
    let deepseek = BatchFilter {
        provider: Some(ProviderRef::new("cn-official", "deepseek")),
        ..Default::default()
    };
    assert_eq!(
        ids(s.list_batches(deepseek).await.unwrap()),
        ["b-3", "b-1"],
        "provider identity is pack-scoped"
    );
    let applied = BatchFilter {
        status: Some(BatchStatus::Applied),
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(ids(s.list_batches(applied).await.unwrap()), ["b-3"]);

    let id = BatchId::new("b-1");
    s.set_batch_status(&id, BatchStatus::Applying, Some("started".into()))
        .await
        .unwrap();
    s.set_access_status(&id, AccessStatus::SelfServiceReady)
        .await
        .unwrap();
    let got = s.get_batch(&id).await.unwrap();
    assert_eq!(got.status, BatchStatus::Applying);
    assert_eq!(got.status_reason.as_deref(), Some("started"));
    assert_eq!(got.access_status, AccessStatus::SelfServiceReady);
    let mut upgraded = got.clone();
    upgraded.pack_version = "1.1.0".into();
    upgraded.plan.notes.push("upgraded".into());
    s.update_batch(&upgraded).await.unwrap();
    assert_eq!(s.get_batch(&id).await.unwrap(), upgraded);
    assert!(matches!(
        s.set_batch_status(&BatchId::new("b-404"), BatchStatus::Failed, None)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        s.remove_host(&HostId::new("h1")).await.is_err(),
        "a host with batches keeps its history"
    );
    assert!(s.get_host("h1").await.is_ok());
}
