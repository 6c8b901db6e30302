//! Operations, idempotency keys, leases and the audit trail: the state
//! replicas share so that any replica can answer for any other.

use crate::PostgresStore;
use crate::sql::*;
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use crm_domain::ops::{
    AuditEvent, IdempotencyBegin, Lease, NewAuditEvent, Operation, StoredResponse,
};
use crm_domain::ports::{
    AuditRepo, IdempotencyRepo, LeaseRepo, OperationRepo, StoreError, StoreResult,
};
use crm_domain::{LeaseId, OperationId};
use crm_store::columns::{LEASE_COLUMNS, OP_COLUMNS};
use std::time::Duration;
use tokio_postgres::Row;

// ---------------------------------------------------------------- operations

fn op_from_row(row: &Row) -> StoreResult<Operation> {
    Ok(Operation {
        id: OperationId(get(row, "id")?),
        kind: get_word(row, "kind")?,
        status: get_word(row, "status")?,
        target: get(row, "target")?,
        request: get_json(row, "request")?,
        progress: get_json(row, "progress")?,
        result: get_opt_json(row, "result")?,
        error: get(row, "error")?,
        idempotency_key: get(row, "idempotency_key")?,
        created_at: get_ts(row, "created_at")?,
        updated_at: get_ts(row, "updated_at")?,
    })
}

struct OpParams {
    request: String,
    progress: String,
    result: Option<String>,
    created: String,
    updated: String,
}

impl OpParams {
    fn new(op: &Operation) -> StoreResult<OpParams> {
        Ok(OpParams {
            request: to_json("operation request", &op.request)?,
            progress: to_json("operation progress", &op.progress)?,
            result: op
                .result
                .as_ref()
                .map(|r| to_json("operation result", r))
                .transpose()?,
            created: ts(&op.created_at),
            updated: ts(&op.updated_at),
        })
    }
}

#[async_trait]
impl OperationRepo for PostgresStore {
    async fn create_operation(&self, op: Operation) -> StoreResult<Operation> {
        let p = OpParams::new(&op)?;
        let c = self.client().await?;
        let res = exec_raw(
            &c,
            &format!(
                "INSERT INTO operations ({OP_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ),
            &[
                &op.id.as_str(),
                &op.kind.as_str(),
                &op.status.as_str(),
                &op.target,
                &p.request,
                &p.progress,
                &p.result,
                &op.error,
                &op.idempotency_key,
                &p.created,
                &p.updated,
            ],
        )
        .await;
        match res {
            Ok(_) => Ok(op),
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists {
                what: format!("operation {}", op.id),
            }),
            Err(e) => Err(db(e)),
        }
    }

    async fn get_operation(&self, id: &OperationId) -> StoreResult<Operation> {
        let c = self.client().await?;
        query_opt(
            &c,
            &format!("SELECT {OP_COLUMNS} FROM operations WHERE id = $1"),
            &[&id.as_str()],
            op_from_row,
        )
        .await?
        .ok_or_else(|| not_found(format!("operation {id}")))
    }

    async fn update_operation(&self, op: &Operation) -> StoreResult<()> {
        let p = OpParams::new(op)?;
        let c = self.client().await?;
        let n = exec(
            &c,
            "UPDATE operations SET kind = $2, status = $3, target = $4, request = $5,
                progress = $6, result = $7, error = $8, idempotency_key = $9,
                created_at = $10, updated_at = $11
             WHERE id = $1",
            &[
                &op.id.as_str(),
                &op.kind.as_str(),
                &op.status.as_str(),
                &op.target,
                &p.request,
                &p.progress,
                &p.result,
                &op.error,
                &op.idempotency_key,
                &p.created,
                &p.updated,
            ],
        )
        .await?;
        one_row(n, || format!("operation {}", op.id))
    }

    async fn unfinished_operations(&self) -> StoreResult<Vec<Operation>> {
        let c = self.client().await?;
        query_all(
            &c,
            &format!(
                "SELECT {OP_COLUMNS} FROM operations WHERE status IN ('queued', 'running')
                 ORDER BY created_at, id"
            ),
            &[],
            op_from_row,
        )
        .await
    }
}

// ---------------------------------------------------------------- idempotency

type Found = (String, String, Option<StoredResponse>);

fn idempotency_from_row(row: &Row) -> StoreResult<Found> {
    let status: Option<i64> = get(row, "response_status")?;
    let response = match status {
        None => None,
        Some(s) => Some(StoredResponse {
            status: u16::try_from(s).map_err(|_| StoreError::Corrupt {
                detail: format!("column response_status holds {s}"),
            })?,
            headers: get_opt_json(row, "response_headers")?.unwrap_or_default(),
            body: get::<Option<Vec<u8>>>(row, "response_body")?.unwrap_or_default(),
        }),
    };
    Ok((get(row, "route")?, get(row, "body_hash")?, response))
}

#[async_trait]
impl IdempotencyRepo for PostgresStore {
    /// The first request with a key inserts it; every other one, on any
    /// replica, finds that row. `ON CONFLICT DO NOTHING` waits for a
    /// concurrent inserter to commit or roll back, so exactly one caller is
    /// told `Started` (PostgreSQL docs, INSERT, "ON CONFLICT Clause").
    async fn begin_idempotent(
        &self,
        principal: &str,
        key: &str,
        route: &str,
        body_hash: &str,
    ) -> StoreResult<IdempotencyBegin> {
        let now = ts(&self.now());
        let c = self.client().await?;
        let inserted = exec(
            &c,
            "INSERT INTO idempotency_keys (principal, key, route, body_hash, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (principal, key) DO NOTHING",
            &[&principal, &key, &route, &body_hash, &now],
        )
        .await?;
        if inserted == 1 {
            return Ok(IdempotencyBegin::Started);
        }
        let found = query_opt(
            &c,
            "SELECT route, body_hash, response_status, response_headers, response_body
             FROM idempotency_keys WHERE principal = $1 AND key = $2",
            &[&principal, &key],
            idempotency_from_row,
        )
        .await?;
        match found {
            // Abandoned between our insert attempt and this read: the key is
            // free again, and this caller is the one to take it.
            None => Box::pin(self.begin_idempotent(principal, key, route, body_hash)).await,
            // A key reused on another route is a different request too.
            Some((r, h, _)) if r != route || h != body_hash => Ok(IdempotencyBegin::Mismatch),
            Some((_, _, Some(resp))) => Ok(IdempotencyBegin::Replay(resp)),
            Some((_, _, None)) => Ok(IdempotencyBegin::InProgress),
        }
    }

    async fn complete_idempotent(
        &self,
        principal: &str,
        key: &str,
        response: StoredResponse,
    ) -> StoreResult<()> {
        let c = self.client().await?;
        let n = exec(
            &c,
            "UPDATE idempotency_keys
             SET response_status = $3, response_headers = $4, response_body = $5
             WHERE principal = $1 AND key = $2",
            &[
                &principal,
                &key,
                &i64::from(response.status),
                &to_json("response headers", &response.headers)?,
                &response.body,
            ],
        )
        .await?;
        one_row(n, || format!("idempotency key {key}"))
    }

    /// Deletes the record only while it is unfinished: a completed response
    /// stays replayable.
    async fn abandon_idempotent(&self, principal: &str, key: &str) -> StoreResult<()> {
        let c = self.client().await?;
        exec(
            &c,
            "DELETE FROM idempotency_keys
             WHERE principal = $1 AND key = $2 AND response_status IS NULL",
            &[&principal, &key],
        )
        .await?;
        Ok(())
    }

    async fn purge_idempotency_before(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let c = self.client().await?;
        exec(
            &c,
            "DELETE FROM idempotency_keys WHERE created_at < $1",
            &[&ts(&before)],
        )
        .await
    }
}

// ---------------------------------------------------------------- leases

fn lease_from_row(row: &Row) -> StoreResult<Lease> {
    Ok(Lease {
        id: LeaseId(get(row, "id")?),
        scope: get(row, "scope")?,
        holder: get(row, "holder")?,
        operation: get(row, "operation")?,
        acquired_at: get_ts(row, "acquired_at")?,
        heartbeat_at: get_ts(row, "heartbeat_at")?,
        expires_at: get_ts(row, "expires_at")?,
    })
}

fn expiry(now: DateTime<Utc>, ttl: Duration) -> StoreResult<DateTime<Utc>> {
    TimeDelta::from_std(ttl)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(|| StoreError::Backend {
            detail: format!("lease duration {ttl:?} is too long"),
        })
}

fn held(l: Lease) -> StoreError {
    StoreError::LeaseHeld {
        scope: l.scope,
        holder: l.holder,
        operation: l.operation,
        lease_id: l.id,
        expires_at: l.expires_at,
    }
}

#[async_trait]
impl LeaseRepo for PostgresStore {
    /// A lease is a row, unique per scope; replicas race for it inside one
    /// transaction:
    ///
    /// - a row exists: `SELECT ... FOR UPDATE` locks it, so of two replicas
    ///   that both find it expired, the second waits and then re-reads the
    ///   row the first wrote (READ COMMITTED re-checks a locked row,
    ///   PostgreSQL docs 13.2.1) and finds it held;
    /// - no row: `INSERT ... ON CONFLICT (scope) DO NOTHING` lets exactly one
    ///   inserter win and the other read the winner's row (docs, INSERT,
    ///   "ON CONFLICT Clause": it waits for the conflicting transaction).
    ///
    /// Rows rather than advisory locks, because a lease must outlive the
    /// connection that took it (the holder heartbeats from pooled
    /// connections), name its holder and expiry for operators, and be taken
    /// over by anyone once expired; a session advisory lock is freed with
    /// its connection and says nothing about who held it.
    ///
    /// Expiry is judged by this process's clock, as every replica writes
    /// it: replicas' clocks must agree (NTP) to well within the TTL.
    async fn acquire_lease(
        &self,
        scope: &str,
        holder: &str,
        operation: &str,
        ttl: Duration,
    ) -> StoreResult<Lease> {
        let now = self.now();
        let expires_at = expiry(now, ttl)?;
        let lease = Lease {
            id: LeaseId(format!("l-{}", uuid::Uuid::new_v4())),
            scope: scope.to_owned(),
            holder: holder.to_owned(),
            operation: operation.to_owned(),
            acquired_at: now,
            heartbeat_at: now,
            expires_at,
        };
        let (now_s, exp_s) = (ts(&now), ts(&expires_at));
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let current = query_opt(
            &tx,
            &format!("SELECT {LEASE_COLUMNS} FROM leases WHERE scope = $1 FOR UPDATE"),
            &[&scope],
            lease_from_row,
        )
        .await?;
        match current {
            Some(l) if l.expires_at > now => return Err(held(l)),
            Some(stale) => {
                tracing::warn!(
                    scope = %stale.scope,
                    stale_holder = %stale.holder,
                    stale_lease = %stale.id,
                    expired_at = %stale.expires_at,
                    new_holder = %holder,
                    "taking over an expired lease"
                );
                exec(
                    &tx,
                    "UPDATE leases SET id = $2, holder = $3, operation = $4, acquired_at = $5,
                        heartbeat_at = $5, expires_at = $6
                     WHERE id = $1",
                    &[
                        &stale.id.as_str(),
                        &lease.id.as_str(),
                        &holder,
                        &operation,
                        &now_s,
                        &exp_s,
                    ],
                )
                .await?;
            }
            None => {
                let n = exec(
                    &tx,
                    &format!(
                        "INSERT INTO leases ({LEASE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $5, $6)
                         ON CONFLICT (scope) DO NOTHING"
                    ),
                    &[
                        &lease.id.as_str(),
                        &scope,
                        &holder,
                        &operation,
                        &now_s,
                        &exp_s,
                    ],
                )
                .await?;
                if n == 0 {
                    // Another process inserted it after our read; its row is
                    // committed now.
                    drop(tx);
                    let winner = query_opt(
                        &c,
                        &format!("SELECT {LEASE_COLUMNS} FROM leases WHERE scope = $1"),
                        &[&scope],
                        lease_from_row,
                    )
                    .await?;
                    return match winner {
                        Some(l) => Err(held(l)),
                        // Released already: the caller may simply try again.
                        None => Err(StoreError::Backend {
                            detail: format!(
                                "lease on {scope} was taken and released while acquiring it; retry"
                            ),
                        }),
                    };
                }
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(lease)
    }

    /// Extends the lease while this id still holds its scope. A lease that
    /// expired but was not yet taken over is still held (nobody else acted).
    async fn heartbeat_lease(&self, id: &LeaseId, ttl: Duration) -> StoreResult<Lease> {
        let now = self.now();
        let expires_at = expiry(now, ttl)?;
        let c = self.client().await?;
        // One statement: the row lock it takes orders it against a takeover.
        let lease = query_opt(
            &c,
            &format!(
                "UPDATE leases SET heartbeat_at = $2, expires_at = $3 WHERE id = $1
                 RETURNING {LEASE_COLUMNS}"
            ),
            &[&id.as_str(), &ts(&now), &ts(&expires_at)],
            lease_from_row,
        )
        .await?;
        lease.ok_or_else(|| StoreError::LeaseLost {
            lease_id: id.clone(),
        })
    }

    /// Deletes only the lease with this id; `LeaseLost` if it is gone
    /// (released before, or taken over after expiring).
    async fn release_lease(&self, id: &LeaseId) -> StoreResult<()> {
        let c = self.client().await?;
        match exec(&c, "DELETE FROM leases WHERE id = $1", &[&id.as_str()]).await? {
            0 => Err(StoreError::LeaseLost {
                lease_id: id.clone(),
            }),
            _ => Ok(()),
        }
    }

    async fn active_leases(&self, prefix: &str) -> StoreResult<Vec<Lease>> {
        let now = ts(&self.now());
        let c = self.client().await?;
        query_all(
            &c,
            &format!(
                "SELECT {LEASE_COLUMNS} FROM leases
                 WHERE expires_at > $1 AND left(scope, length($2)) = $2
                 ORDER BY scope"
            ),
            &[&now, &prefix],
            lease_from_row,
        )
        .await
    }
}

// ---------------------------------------------------------------- audit

fn audit_from_row(row: &Row) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        id: get(row, "id")?,
        at: get_ts(row, "at")?,
        actor: get(row, "actor")?,
        action: get(row, "action")?,
        target: get(row, "target")?,
        request_id: get(row, "request_id")?,
        outcome: get(row, "outcome")?,
        detail: get(row, "detail")?,
    })
}

#[async_trait]
impl AuditRepo for PostgresStore {
    async fn append_audit(&self, event: NewAuditEvent) -> StoreResult<AuditEvent> {
        let at = self.now();
        let c = self.client().await?;
        let id: i64 = query_opt(
            &c,
            "INSERT INTO audit_events (at, actor, action, target, request_id, outcome, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                &ts(&at),
                &event.actor,
                &event.action,
                &event.target,
                &event.request_id,
                &event.outcome,
                &event.detail,
            ],
            |r| get(r, "id"),
        )
        .await?
        .ok_or_else(|| StoreError::Backend {
            detail: "the audit insert returned no id".into(),
        })?;
        Ok(AuditEvent {
            id,
            at,
            actor: event.actor,
            action: event.action,
            target: event.target,
            request_id: event.request_id,
            outcome: event.outcome,
            detail: event.detail,
        })
    }

    /// Newest first.
    async fn list_audit(&self, limit_n: u32) -> StoreResult<Vec<AuditEvent>> {
        let c = self.client().await?;
        query_all(
            &c,
            "SELECT id, at, actor, action, target, request_id, outcome, detail
             FROM audit_events ORDER BY id DESC LIMIT $1",
            &[&i64::from(limit_n)],
            audit_from_row,
        )
        .await
    }
}
