//! The replica contract: two stores on one database.

use super::fixtures::*;
use crm_domain::ops::{IdempotencyBegin, Lease, Operation, SessionRole, StoredResponse};
use crm_domain::ports::{Storage, StoreError};
use crm_domain::*;
use serde_json::json;
use std::time::Duration;

/// The replica contract: `a` and `b` are two stores on one database (two
/// connections or pools, as two crm-server replicas have), sharing a clock
/// that `advance` moves. Whatever one replica wrote, the other must see and
/// respect: exactly one winner of every lease race, takeover only after
/// expiry, one shared answer per idempotency key, operations visible from
/// both, and a gapless journal when both write one batch.
pub async fn run_replica_story<S: Storage + ?Sized>(a: &S, b: &S, advance: &dyn Fn(Duration)) {
    replica_lease_races(a, b).await;
    replica_lease_expiry(a, b, advance).await;
    replica_idempotency(a, b).await;
    replica_operations(a, b).await;
    replica_journal(a, b).await;
    replica_sessions(a, b, advance).await;
}

fn expect_one_winner(
    round: &str,
    results: Vec<(&'static str, Result<Lease, StoreError>)>,
) -> (&'static str, Lease) {
    let mut winners = Vec::new();
    let mut refusals = Vec::new();
    for (who, r) in results {
        match r {
            Ok(l) => winners.push((who, l)),
            Err(StoreError::LeaseHeld {
                lease_id, holder, ..
            }) => refusals.push((lease_id, holder)),
            Err(other) => panic!("{round}: {who} failed with {other:?}, not LeaseHeld"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "{round}: exactly one of the racers must win, got {winners:?}"
    );
    let (who, won) = winners.pop().expect("one winner");
    for (id, holder) in refusals {
        assert_eq!(
            id, won.id,
            "{round}: the losers are told the winner's lease"
        );
        assert_eq!(
            holder, won.holder,
            "{round}: the losers are told the winner"
        );
    }
    (who, won)
}

async fn replica_lease_races<S: Storage + ?Sized>(a: &S, b: &S) {
    let ttl = Duration::from_secs(60);
    let mut wins = [0u32; 2];
    for round in 0..20 {
        let scope = format!("host:race-{round}/provider:cn-official/deepseek");
        // Four racers on each replica at once.
        let (a1, a2, a3, a4, b1, b2, b3, b4) = tokio::join!(
            a.acquire_lease(&scope, "replica-a (pid 1@a)", "import", ttl),
            a.acquire_lease(&scope, "replica-a (pid 1@a)", "import", ttl),
            a.acquire_lease(&scope, "replica-a (pid 1@a)", "import", ttl),
            a.acquire_lease(&scope, "replica-a (pid 1@a)", "import", ttl),
            b.acquire_lease(&scope, "replica-b (pid 2@b)", "import", ttl),
            b.acquire_lease(&scope, "replica-b (pid 2@b)", "import", ttl),
            b.acquire_lease(&scope, "replica-b (pid 2@b)", "import", ttl),
            b.acquire_lease(&scope, "replica-b (pid 2@b)", "import", ttl),
        );
        let (who, won) = expect_one_winner(
            &format!("race {round}"),
            vec![
                ("a", a1),
                ("a", a2),
                ("a", a3),
                ("a", a4),
                ("b", b1),
                ("b", b2),
                ("b", b3),
                ("b", b4),
            ],
        );
        wins[usize::from(who == "b")] += 1;
        assert_eq!(
            b.active_leases(&scope).await.unwrap(),
            std::slice::from_ref(&won),
            "one lease row per scope, seen alike from both replicas"
        );
        assert_eq!(
            a.active_leases(&scope).await.unwrap(),
            std::slice::from_ref(&won)
        );
        let (ra, rb) = tokio::join!(a.release_lease(&won.id), b.release_lease(&won.id));
        assert!(
            ra.is_ok() != rb.is_ok(),
            "a lease is released once: {ra:?} {rb:?}"
        );
    }
    assert_eq!(wins[0] + wins[1], 20);
}

async fn replica_lease_expiry<S: Storage + ?Sized>(a: &S, b: &S, advance: &dyn Fn(Duration)) {
    let ttl = Duration::from_secs(60);
    let scope = "host:expiry/provider:cn-official/deepseek";
    let first = a
        .acquire_lease(scope, "replica-a (pid 1@a)", "import", ttl)
        .await
        .unwrap();
    advance(Duration::from_secs(59));
    assert!(
        matches!(
            b.acquire_lease(scope, "replica-b (pid 2@b)", "import", ttl)
                .await,
            Err(StoreError::LeaseHeld { .. })
        ),
        "never taken over before expiry"
    );
    // The holder dies (stops heartbeating); once expired, both survivors
    // try to take it over at once: exactly one does.
    advance(Duration::from_secs(2));
    let (b1, b2, a1) = tokio::join!(
        b.acquire_lease(scope, "replica-b (pid 2@b)", "resume", ttl),
        b.acquire_lease(scope, "replica-b (pid 2@b)", "resume", ttl),
        a.acquire_lease(scope, "replica-c (pid 3@c)", "resume", ttl),
    );
    let (_, second) = expect_one_winner("takeover", vec![("b", b1), ("b", b2), ("a", a1)]);
    assert_ne!(second.id, first.id);
    assert!(matches!(
        a.heartbeat_lease(&first.id, ttl).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        a.release_lease(&first.id).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert_eq!(
        a.active_leases(scope).await.unwrap(),
        std::slice::from_ref(&second),
        "the dead holder's release did not free the new holder's lease"
    );
    let beat = b.heartbeat_lease(&second.id, ttl).await.unwrap();
    assert_eq!(beat.id, second.id);
    a.release_lease(&second.id).await.unwrap();
    assert!(b.active_leases(scope).await.unwrap().is_empty());
}

async fn replica_idempotency<S: Storage + ?Sized>(a: &S, b: &S) {
    let route = "POST /api/v1/imports";
    for round in 0..10 {
        let key = format!("race-{round}");
        let (x, y, z) = tokio::join!(
            a.begin_idempotent("admin", &key, route, "h1"),
            b.begin_idempotent("admin", &key, route, "h1"),
            b.begin_idempotent("admin", &key, route, "h1"),
        );
        let answers = [x.unwrap(), y.unwrap(), z.unwrap()];
        assert_eq!(
            answers
                .iter()
                .filter(|r| **r == IdempotencyBegin::Started)
                .count(),
            1,
            "round {round}: one request executes, the others are in flight: {answers:?}"
        );
        assert!(
            answers
                .iter()
                .all(|r| matches!(r, IdempotencyBegin::Started | IdempotencyBegin::InProgress)),
            "{answers:?}"
        );
    }
    let response = StoredResponse {
        status: 202,
        headers: vec![("location".into(), "/api/v1/operations/op-r".into())],
        body: b"{\"operation\":\"op-r\"}".to_vec(),
    };
    a.complete_idempotent("admin", "race-0", response.clone())
        .await
        .unwrap();
    assert_eq!(
        b.begin_idempotent("admin", "race-0", route, "h1")
            .await
            .unwrap(),
        IdempotencyBegin::Replay(response),
        "a retry on the other replica replays the stored response"
    );
    assert_eq!(
        b.begin_idempotent("admin", "race-0", route, "h2")
            .await
            .unwrap(),
        IdempotencyBegin::Mismatch
    );
    b.abandon_idempotent("admin", "race-1").await.unwrap();
    assert_eq!(
        a.begin_idempotent("admin", "race-1", route, "h1")
            .await
            .unwrap(),
        IdempotencyBegin::Started,
        "abandoned on one replica, free on the other"
    );
}

async fn replica_operations<S: Storage + ?Sized>(a: &S, b: &S) {
    let mut op = Operation {
        id: OperationId::new("op-replica"),
        kind: OperationKind::Import,
        status: OperationStatus::Running,
        target: "host:h1/provider:cn-official/deepseek".into(),
        request: json!({ "host": "h1" }),
        progress: vec!["started on a".into()],
        result: None,
        error: None,
        idempotency_key: Some("race-0".into()),
        created_at: at(0),
        updated_at: at(0),
    };
    a.create_operation(op.clone()).await.unwrap();
    assert_eq!(b.get_operation(&op.id).await.unwrap(), op, "polled from b");
    assert!(
        b.unfinished_operations()
            .await
            .unwrap()
            .iter()
            .any(|o| o.id == op.id),
        "a surviving replica finds the unfinished operation"
    );
    op.progress.push("resumed on b".into());
    op.status = OperationStatus::Succeeded;
    op.result = Some(json!({ "batch": "b-1" }));
    op.updated_at = at(5);
    b.update_operation(&op).await.unwrap();
    assert_eq!(a.get_operation(&op.id).await.unwrap(), op);
    assert!(
        !a.unfinished_operations()
            .await
            .unwrap()
            .iter()
            .any(|o| o.id == op.id)
    );
}

async fn replica_journal<S: Storage + ?Sized>(a: &S, b: &S) {
    a.add_host(host("h-rep", "replica-host")).await.unwrap();
    b.create_batch(batch(
        "b-rep",
        "h-rep",
        "cn-official/deepseek",
        BatchStatus::Applying,
        0,
    ))
    .await
    .unwrap();
    let i = |k: &str| intent("b-rep", k, JournalOp::Create, ResourceKind::Account);
    let (r1, r2, r3, r4, r5, r6) = tokio::join!(
        a.record_intent(i("acct-1")),
        b.record_intent(i("acct-2")),
        a.record_intent(i("acct-3")),
        b.record_intent(i("acct-4")),
        a.record_intent(i("acct-1")),
        b.record_intent(i("acct-1")),
    );
    let entries = [r1, r2, r3, r4, r5, r6].map(|r| r.expect("record intent"));
    assert_eq!(entries[0], entries[4], "the same intent is recorded once");
    assert_eq!(entries[0], entries[5], "from either replica");
    let journal = a.journal(&BatchId::new("b-rep")).await.unwrap();
    let seqs: Vec<u32> = journal.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4], "gapless, one entry per intent key");
    let b_rep = BatchId::new("b-rep");
    let (x, y) = tokio::join!(
        a.resolve_intent(&b_rep, 1, resolved(JournalState::Applied, Some(501))),
        b.resolve_intent(&b_rep, 2, resolved(JournalState::Applied, Some(502))),
    );
    x.unwrap();
    y.unwrap();
    let resources = b.resources(&BatchId::new("b-rep")).await.unwrap();
    assert_eq!(
        resources
            .iter()
            .map(|r| r.host_object_id.0)
            .collect::<Vec<_>>(),
        [501, 502]
    );
}

/// A browser signed in through one replica is signed in on the other; a
/// logout on either ends it on both; expiry holds on both.
async fn replica_sessions<S: Storage + ?Sized>(a: &S, b: &S, advance: &dyn Fn(Duration)) {
    let now = store_now(a).await;
    a.create_session(session("r-1", SessionRole::Admin, now, 60))
        .await
        .unwrap();
    b.create_session(session("r-2", SessionRole::ReadOnly, now, 600))
        .await
        .unwrap();
    assert_eq!(
        b.get_session("r-1").await.unwrap().map(|s| s.role),
        Some(SessionRole::Admin),
        "a session made on one replica is known on the other"
    );
    assert!(a.get_session("r-2").await.unwrap().is_some());
    b.delete_session("r-1").await.unwrap();
    assert_eq!(
        a.get_session("r-1").await.unwrap(),
        None,
        "a logout on one replica is a logout on all"
    );
    advance(Duration::from_secs(601));
    assert_eq!(a.get_session("r-2").await.unwrap(), None);
    assert_eq!(b.get_session("r-2").await.unwrap(), None);
}
