//! Recorded operations and idempotency keys.

use super::fixtures::*;
use chrono::{TimeDelta, Utc};
use crm_domain::ops::{IdempotencyBegin, Operation, StoredResponse};
use crm_domain::ports::{Storage, StoreError};
use crm_domain::*;
use serde_json::json;

pub(super) async fn operations<S: Storage + ?Sized>(s: &S) {
    let op = |id: &str, status: OperationStatus, secs: i64| Operation {
        id: OperationId::new(id),
        kind: OperationKind::Import,
        status,
        target: "host:h1/provider:cn-official/deepseek".into(),
        request: json!({"host": "h1", "provider": "cn-official/deepseek"}),
        progress: vec![],
        result: None,
        error: None,
        idempotency_key: Some("idem-1".into()),
        created_at: at(secs),
        updated_at: at(secs),
    };
    let o1 = s
        .create_operation(op("op-1", OperationStatus::Queued, 10))
        .await
        .unwrap();
    assert!(matches!(
        s.create_operation(o1.clone()).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    s.create_operation(op("op-2", OperationStatus::Succeeded, 5))
        .await
        .unwrap();
    s.create_operation(op("op-3", OperationStatus::Running, 1))
        .await
        .unwrap();
    let unfinished = s.unfinished_operations().await.unwrap();
    assert_eq!(
        unfinished.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        ["op-3", "op-1"]
    );
    let mut done = o1.clone();
    done.status = OperationStatus::Succeeded;
    done.progress = vec!["accounts: 1 created".into(), "done".into()];
    done.result = Some(json!({"batch": "b-1"}));
    done.updated_at = at(20);
    s.update_operation(&done).await.unwrap();
    assert_eq!(
        s.get_operation(&OperationId::new("op-1")).await.unwrap(),
        done
    );
    assert_eq!(s.unfinished_operations().await.unwrap().len(), 1);
    assert!(matches!(
        s.update_operation(&op("op-404", OperationStatus::Failed, 0))
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

pub(super) async fn idempotency<S: Storage + ?Sized>(s: &S) {
    let route = "POST /api/v1/imports";
    let begin = |p: &'static str, k: &'static str, r: &'static str, h: &'static str| async move {
        s.begin_idempotent(p, k, r, h).await.unwrap()
    };
    assert_eq!(
        begin("alice", "k1", route, "h1").await,
        IdempotencyBegin::Started
    );
    assert_eq!(
        begin("alice", "k1", route, "h1").await,
        IdempotencyBegin::InProgress
    );
    assert_eq!(
        begin("alice", "k1", route, "h2").await,
        IdempotencyBegin::Mismatch
    );
    assert_eq!(
        begin("alice", "k1", "POST /api/v1/rollback", "h1").await,
        IdempotencyBegin::Mismatch,
        "a key reused on another route is another request"
    );
    assert_eq!(
        begin("bob", "k1", route, "h2").await,
        IdempotencyBegin::Started,
        "keys are scoped by principal"
    );
    let response = StoredResponse {
        status: 202,
        headers: vec![("location".into(), "/api/v1/operations/op-1".into())],
        body: b"{\"operation\":\"op-1\"}".to_vec(),
    };
    s.complete_idempotent("alice", "k1", response.clone())
        .await
        .unwrap();
    assert_eq!(
        begin("alice", "k1", route, "h1").await,
        IdempotencyBegin::Replay(response.clone())
    );
    assert_eq!(
        begin("alice", "k1", route, "h2").await,
        IdempotencyBegin::Mismatch
    );
    assert!(matches!(
        s.complete_idempotent("carol", "k1", response.clone()).await,
        Err(StoreError::NotFound { .. })
    ));

    // Abandon forgets an unfinished record only.
    s.abandon_idempotent("bob", "k1").await.unwrap();
    assert_eq!(
        begin("bob", "k1", route, "h3").await,
        IdempotencyBegin::Started
    );
    s.abandon_idempotent("alice", "k1").await.unwrap();
    assert_eq!(
        begin("alice", "k1", route, "h1").await,
        IdempotencyBegin::Replay(response),
        "a completed response survives abandon"
    );
    s.abandon_idempotent("nobody", "k1").await.unwrap();

    // Every record so far was created "now"; purging before the far past
    // removes none, purging before the far future removes them all.
    assert_eq!(
        s.purge_idempotency_before(at(-10 * 365 * 86_400))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.purge_idempotency_before(Utc::now() + TimeDelta::days(3650))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        begin("alice", "k1", route, "h9").await,
        IdempotencyBegin::Started
    );
}
