//! The write-ahead journal and the managed resources it leaves.

use super::fixtures::*;
use crm_domain::batch::JournalResolution;
use crm_domain::ports::{Storage, StoreError};
use crm_domain::*;
use serde_json::json;

pub(super) async fn journal<S: Storage + ?Sized>(s: &S) {
    let b1 = BatchId::new("b-1");
    let e1 = s
        .record_intent(intent(
            "b-1",
            "acct",
            JournalOp::Create,
            ResourceKind::Account,
        ))
        .await
        .unwrap();
    assert_eq!((e1.seq, e1.state), (1, JournalState::Pending));
    let replay = s
        .record_intent(intent(
            "b-1",
            "acct",
            JournalOp::Create,
            ResourceKind::Account,
        ))
        .await
        .unwrap();
    assert_eq!(
        replay, e1,
        "an existing intent_key returns the entry unchanged"
    );
    let e2 = s
        .record_intent(intent(
            "b-1",
            "group",
            JournalOp::Create,
            ResourceKind::Group,
        ))
        .await
        .unwrap();
    let mut adopt = intent("b-1", "chan", JournalOp::Adopt, ResourceKind::Channel);
    adopt.host_object_id = Some(HostObjectId(77));
    let e3 = s.record_intent(adopt).await.unwrap();
    assert_eq!((e2.seq, e3.seq), (2, 3), "seq is gapless per batch");
    let other = s
        .record_intent(intent(
            "b-2",
            "acct",
            JournalOp::Create,
            ResourceKind::Account,
        ))
        .await
        .unwrap();
    assert_eq!(other.seq, 1, "each batch numbers its own journal");
    assert!(matches!(
        s.record_intent(intent(
            "b-404",
            "x",
            JournalOp::Create,
            ResourceKind::Account
        ))
        .await,
        Err(StoreError::NotFound { .. })
    ));

    let pending = s.pending_intents(Some(b1.clone())).await.unwrap();
    assert_eq!(pending.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(s.pending_intents(None).await.unwrap().len(), 4);

    // Resolve out of order: the resources still come back in journal order.
    let r2 = s
        .resolve_intent(&b1, 2, resolved(JournalState::Applied, Some(20)))
        .await
        .unwrap();
    assert_eq!(r2.state, JournalState::Applied);
    assert_eq!(r2.host_object_id, Some(HostObjectId(20)));
    assert!(r2.resolved_at.is_some());
    s.resolve_intent(&b1, 1, resolved(JournalState::Applied, Some(10)))
        .await
        .unwrap();
    let r3 = s
        .resolve_intent(&b1, 3, resolved(JournalState::Applied, None))
        .await
        .unwrap();
    assert_eq!(
        r3.host_object_id,
        Some(HostObjectId(77)),
        "an adopt keeps the target id it was recorded with"
    );
    assert!(matches!(
        s.resolve_intent(&b1, 99, resolved(JournalState::Failed, None))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    let mut failing = s
        .record_intent(intent("b-1", "user", JournalOp::Create, ResourceKind::User))
        .await
        .unwrap();
    assert_eq!(failing.seq, 4);
    failing = s
        .resolve_intent(
            &b1,
            4,
            JournalResolution {
                state: JournalState::Failed,
                host_object_id: None,
                detail: Some("host refused: 400".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(failing.detail.as_deref(), Some("host refused: 400"));
    assert!(
        s.pending_intents(Some(b1.clone()))
            .await
            .unwrap()
            .is_empty()
    );

    let journal = s.journal(&b1).await.unwrap();
    assert_eq!(journal.len(), 4);
    assert_eq!(
        journal[0].desired,
        json!({"name": "crm-acct", "priority": 1})
    );
    let res = s.resources(&b1).await.unwrap();
    let seen: Vec<_> = res
        .iter()
        .map(|r| (r.journal_seq, r.kind, r.host_object_id.0, r.origin, r.state))
        .collect();
    assert_eq!(
        seen,
        [
            (
                1,
                ResourceKind::Account,
                10,
                JournalOp::Create,
                ResourceState::Live
            ),
            (
                2,
                ResourceKind::Group,
                20,
                JournalOp::Create,
                ResourceState::Live
            ),
            (
                3,
                ResourceKind::Channel,
                77,
                JournalOp::Adopt,
                ResourceState::Live
            ),
        ],
        "applied creates/adopts become live managed resources, in journal order"
    );
    assert_eq!(res[0].name, "crm-acct");
    assert_eq!(res[0].natural_key, "nk-acct");
    assert_eq!(res[0].spec_digest, "digest-acct");

    // b-1 is `applying` (live): its resources are desired state on h1.
    let live = s.live_resources_on_host(&HostId::new("h1")).await.unwrap();
    assert_eq!(live.len(), 3);
    assert!(
        s.live_resources_on_host(&HostId::new("h2"))
            .await
            .unwrap()
            .is_empty()
    );

    s.update_resource_desired(
        &b1,
        ResourceKind::Group,
        HostObjectId(20),
        None,
        "digest-group-2".into(),
        json!({"rate": 1.5}),
    )
    .await
    .unwrap();
    // An account moved to another base URL gets the natural key naming it
    // (docs/design.md §5) with its new spec.
    s.update_resource_desired(
        &b1,
        ResourceKind::Account,
        HostObjectId(10),
        Some("nk-acct-moved".into()),
        "digest-acct-2".into(),
        json!({"base_url": "https://moved.example"}),
    )
    .await
    .unwrap();
    let res = s.resources(&b1).await.unwrap();
    assert_eq!(
        (res[0].natural_key.as_str(), res[0].spec_digest.as_str()),
        ("nk-acct-moved", "digest-acct-2"),
        "Some replaces the recorded natural key"
    );
    assert_eq!(
        res[1].natural_key, "nk-group",
        "None keeps the recorded natural key"
    );
    s.set_resource_state(
        &b1,
        ResourceKind::Channel,
        HostObjectId(77),
        ResourceState::Disabled,
    )
    .await
    .unwrap();
    assert!(matches!(
        s.set_resource_state(
            &b1,
            ResourceKind::Channel,
            HostObjectId(5),
            ResourceState::Live
        )
        .await,
        Err(StoreError::NotFound { .. })
    ));

    // Rolling back: a delete applied marks the resource deleted.
    let mut del = intent("b-1", "del-acct", JournalOp::Delete, ResourceKind::Account);
    del.host_object_id = Some(HostObjectId(10));
    let d = s.record_intent(del).await.unwrap();
    s.resolve_intent(&b1, d.seq, resolved(JournalState::Applied, None))
        .await
        .unwrap();
    let res = s.resources(&b1).await.unwrap();
    assert_eq!(res[0].state, ResourceState::Deleted);
    assert_eq!(res[1].spec_digest, "digest-group-2");
    assert_eq!(res[1].desired, json!({"rate": 1.5}));
    assert_eq!(res[2].state, ResourceState::Disabled);
    let live = s.live_resources_on_host(&HostId::new("h1")).await.unwrap();
    assert_eq!(
        live.iter().map(|r| r.host_object_id.0).collect::<Vec<_>>(),
        [20],
        "only live resources are listed"
    );
    s.set_batch_status(&b1, BatchStatus::RolledBack, None)
        .await
        .unwrap();
    assert!(
        s.live_resources_on_host(&HostId::new("h1"))
            .await
            .unwrap()
            .is_empty(),
        "resources of a batch that is not live are not desired state"
    );

    // Attempts of one intent: the key and its numbered retries, nothing
    // that merely starts with it, nothing of another batch.
    for key in ["acct#2", "acctx", "acct#x", "acct#10"] {
        s.record_intent(intent("b-2", key, JournalOp::Create, ResourceKind::Account))
            .await
            .unwrap();
    }
    let b2 = BatchId::new("b-2");
    let attempts = s.intent_attempts(&b2, "b-2/acct").await.unwrap();
    assert_eq!(
        attempts
            .iter()
            .map(|e| (e.seq, e.intent_key.as_str()))
            .collect::<Vec<_>>(),
        [(1, "b-2/acct"), (2, "b-2/acct#2"), (5, "b-2/acct#10")]
    );
    assert!(s.intent_attempts(&b1, "b-2/acct").await.unwrap().is_empty());
    assert!(s.intent_attempts(&b2, "b-2/ac").await.unwrap().is_empty());
}
