//! Operations, idempotency keys, leases and the audit trail.

use crate::SqliteStore;
use crate::clock::ts;
use crate::columns::{LEASE_COLUMNS, OP_COLUMNS};
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
use rusqlite::{Row, Transaction, params};
use std::time::Duration;

// ---------------------------------------------------------------- operations

fn op_from_row(row: &Row<'_>) -> StoreResult<Operation> {
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

#[async_trait]
impl OperationRepo for SqliteStore {
    async fn create_operation(&self, op: Operation) -> StoreResult<Operation> {
        self.conn()
            .write(move |tx| {
                let res = tx.execute(
                    &format!(
                        "INSERT INTO operations ({OP_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                    ),
                    params![
                        op.id.as_str(),
                        op.kind.as_str(),
                        op.status.as_str(),
                        op.target,
                        to_json("operation request", &op.request)?,
                        to_json("operation progress", &op.progress)?,
                        op.result
                            .as_ref()
                            .map(|r| to_json("operation result", r))
                            .transpose()?,
                        op.error,
                        op.idempotency_key,
                        ts(&op.created_at),
                        ts(&op.updated_at),
                    ],
                );
                match res {
                    Ok(_) => Ok(op),
                    Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists {
                        what: format!("operation {}", op.id),
                    }),
                    Err(e) => Err(db(e)),
                }
            })
            .await
    }

    async fn get_operation(&self, id: &OperationId) -> StoreResult<Operation> {
        let id = id.as_str().to_owned();
        self.conn()
            .call(move |c| {
                query_opt(
                    c,
                    &format!("SELECT {OP_COLUMNS} FROM operations WHERE id = ?1"),
                    [&id],
                    op_from_row,
                )?
                .ok_or_else(|| not_found(format!("operation {id}")))
            })
            .await
    }

    async fn update_operation(&self, op: &Operation) -> StoreResult<()> {
        let op = op.clone();
        self.conn()
            .write(move |tx| {
                let n = tx
                    .execute(
                        "UPDATE operations SET kind = ?2, status = ?3, target = ?4, request = ?5,
                            progress = ?6, result = ?7, error = ?8, idempotency_key = ?9,
                            created_at = ?10, updated_at = ?11
                         WHERE id = ?1",
                        params![
                            op.id.as_str(),
                            op.kind.as_str(),
                            op.status.as_str(),
                            op.target,
                            to_json("operation request", &op.request)?,
                            to_json("operation progress", &op.progress)?,
                            op.result
                                .as_ref()
                                .map(|r| to_json("operation result", r))
                                .transpose()?,
                            op.error,
                            op.idempotency_key,
                            ts(&op.created_at),
                            ts(&op.updated_at),
                        ],
                    )
                    .map_err(db)?;
                if n == 0 {
                    return Err(not_found(format!("operation {}", op.id)));
                }
                Ok(())
            })
            .await
    }

    async fn unfinished_operations(&self) -> StoreResult<Vec<Operation>> {
        self.conn()
            .call(|c| {
                query_all(
                    c,
                    &format!(
                        "SELECT {OP_COLUMNS} FROM operations WHERE status IN ('queued', 'running')
                         ORDER BY created_at, id"
                    ),
                    [],
                    op_from_row,
                )
            })
            .await
    }
}

// ---------------------------------------------------------------- idempotency

#[async_trait]
impl IdempotencyRepo for SqliteStore {
    async fn begin_idempotent(
        &self,
        principal: &str,
        key: &str,
        route: &str,
        body_hash: &str,
    ) -> StoreResult<IdempotencyBegin> {
        let (principal, key, route, body_hash) = (
            principal.to_owned(),
            key.to_owned(),
            route.to_owned(),
            body_hash.to_owned(),
        );
        let now = ts(&self.now());
        self.conn()
            .write(move |tx| {
                let found = query_opt(
                    tx,
                    "SELECT route, body_hash, response_status, response_headers, response_body
                     FROM idempotency_keys WHERE principal = ?1 AND key = ?2",
                    params![principal, key],
                    |row| {
                        let status: Option<i64> = get(row, "response_status")?;
                        let response = match status {
                            None => None,
                            Some(s) => Some(StoredResponse {
                                status: u16::try_from(s).map_err(|_| StoreError::Corrupt {
                                    detail: format!("column response_status holds {s}"),
                                })?,
                                headers: get_opt_json(row, "response_headers")?
                                    .unwrap_or_default(),
                                body: get::<Option<Vec<u8>>>(row, "response_body")?
                                    .unwrap_or_default(),
                            }),
                        };
                        Ok((
                            get::<String>(row, "route")?,
                            get::<String>(row, "body_hash")?,
                            response,
                        ))
                    },
                )?;
                match found {
                    None => {
                        tx.execute(
                            "INSERT INTO idempotency_keys (principal, key, route, body_hash, created_at)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                            params![principal, key, route, body_hash, now],
                        )
                        .map_err(db)?;
                        Ok(IdempotencyBegin::Started)
                    }
                    // A key reused on another route is a different request too.
                    Some((r, h, _)) if r != route || h != body_hash => Ok(IdempotencyBegin::Mismatch),
                    Some((_, _, Some(resp))) => Ok(IdempotencyBegin::Replay(resp)),
                    Some((_, _, None)) => Ok(IdempotencyBegin::InProgress),
                }
            })
            .await
    }

    async fn complete_idempotent(
        &self,
        principal: &str,
        key: &str,
        response: StoredResponse,
    ) -> StoreResult<()> {
        let (principal, key) = (principal.to_owned(), key.to_owned());
        self.conn()
            .write(move |tx| {
                let n = tx
                    .execute(
                        "UPDATE idempotency_keys
                         SET response_status = ?3, response_headers = ?4, response_body = ?5
                         WHERE principal = ?1 AND key = ?2",
                        params![
                            principal,
                            key,
                            response.status,
                            to_json("response headers", &response.headers)?,
                            response.body,
                        ],
                    )
                    .map_err(db)?;
                if n == 0 {
                    return Err(not_found(format!("idempotency key {key}")));
                }
                Ok(())
            })
            .await
    }

    /// Deletes the record only while it is unfinished: a completed response
    /// stays replayable.
    async fn abandon_idempotent(&self, principal: &str, key: &str) -> StoreResult<()> {
        let (principal, key) = (principal.to_owned(), key.to_owned());
        self.conn()
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM idempotency_keys
                     WHERE principal = ?1 AND key = ?2 AND response_status IS NULL",
                    params![principal, key],
                )
                .map_err(db)?;
                Ok(())
            })
            .await
    }

    async fn purge_idempotency_before(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let before = ts(&before);
        self.conn()
            .write(move |tx| {
                let n = tx
                    .execute(
                        "DELETE FROM idempotency_keys WHERE created_at < ?1",
                        [before],
                    )
                    .map_err(db)?;
                Ok(n as u64)
            })
            .await
    }
}

// ---------------------------------------------------------------- leases

fn lease_from_row(row: &Row<'_>) -> StoreResult<Lease> {
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

fn lease_by_id(tx: &Transaction<'_>, id: &str) -> StoreResult<Option<Lease>> {
    query_opt(
        tx,
        &format!("SELECT {LEASE_COLUMNS} FROM leases WHERE id = ?1"),
        [id],
        lease_from_row,
    )
}

#[async_trait]
impl LeaseRepo for SqliteStore {
    /// See the crate README, "Leases": an unexpired lease on the same scope
    /// refuses; an expired one is taken over in the same transaction.
    async fn acquire_lease(
        &self,
        scope: &str,
        holder: &str,
        operation: &str,
        ttl: Duration,
    ) -> StoreResult<Lease> {
        let (scope, holder, operation) =
            (scope.to_owned(), holder.to_owned(), operation.to_owned());
        let now = self.now();
        let expires_at = expiry(now, ttl)?;
        self.conn()
            .write(move |tx| {
                let current = query_opt(
                    tx,
                    &format!("SELECT {LEASE_COLUMNS} FROM leases WHERE scope = ?1"),
                    [&scope],
                    lease_from_row,
                )?;
                if let Some(held) = current {
                    if held.expires_at > now {
                        return Err(StoreError::LeaseHeld {
                            scope: held.scope,
                            holder: held.holder,
                            operation: held.operation,
                            lease_id: held.id,
                            expires_at: held.expires_at,
                        });
                    }
                    tracing::warn!(
                        scope = %held.scope,
                        stale_holder = %held.holder,
                        stale_lease = %held.id,
                        expired_at = %held.expires_at,
                        new_holder = %holder,
                        "taking over an expired lease"
                    );
                    tx.execute("DELETE FROM leases WHERE id = ?1", [held.id.as_str()])
                        .map_err(db)?;
                }
                let lease = Lease {
                    id: LeaseId(format!("l-{}", uuid::Uuid::new_v4())),
                    scope,
                    holder,
                    operation,
                    acquired_at: now,
                    heartbeat_at: now,
                    expires_at,
                };
                tx.execute(
                    &format!(
                        "INSERT INTO leases ({LEASE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                    ),
                    params![
                        lease.id.as_str(),
                        lease.scope,
                        lease.holder,
                        lease.operation,
                        ts(&lease.acquired_at),
                        ts(&lease.heartbeat_at),
                        ts(&lease.expires_at),
                    ],
                )
                .map_err(db)?;
                Ok(lease)
            })
            .await
    }

    /// Extends the lease while this id still holds its scope. A lease that
    /// expired but was not yet taken over is still held (nobody else acted).
    async fn heartbeat_lease(&self, id: &LeaseId, ttl: Duration) -> StoreResult<Lease> {
        let id = id.clone();
        let now = self.now();
        let expires_at = expiry(now, ttl)?;
        self.conn()
            .write(move |tx| {
                let Some(lease) = lease_by_id(tx, id.as_str())? else {
                    return Err(StoreError::LeaseLost { lease_id: id });
                };
                tx.execute(
                    "UPDATE leases SET heartbeat_at = ?2, expires_at = ?3 WHERE id = ?1",
                    params![id.as_str(), ts(&now), ts(&expires_at)],
                )
                .map_err(db)?;
                Ok(Lease {
                    heartbeat_at: now,
                    expires_at,
                    ..lease
                })
            })
            .await
    }

    /// Deletes only the lease with this id; `LeaseLost` if it is gone
    /// (released before, or taken over after expiring).
    async fn release_lease(&self, id: &LeaseId) -> StoreResult<()> {
        let id = id.clone();
        self.conn()
            .write(move |tx| {
                match tx
                    .execute("DELETE FROM leases WHERE id = ?1", [id.as_str()])
                    .map_err(db)?
                {
                    0 => Err(StoreError::LeaseLost { lease_id: id }),
                    _ => Ok(()),
                }
            })
            .await
    }

    async fn active_leases(&self, prefix: &str) -> StoreResult<Vec<Lease>> {
        let prefix = prefix.to_owned();
        let now = ts(&self.now());
        self.conn()
            .call(move |c| {
                query_all(
                    c,
                    &format!(
                        "SELECT {LEASE_COLUMNS} FROM leases
                         WHERE expires_at > ?1 AND substr(scope, 1, length(?2)) = ?2
                         ORDER BY scope"
                    ),
                    params![now, prefix],
                    lease_from_row,
                )
            })
            .await
    }
}

// ---------------------------------------------------------------- audit

fn audit_from_row(row: &Row<'_>) -> StoreResult<AuditEvent> {
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
impl AuditRepo for SqliteStore {
    async fn append_audit(&self, event: NewAuditEvent) -> StoreResult<AuditEvent> {
        let at = self.now();
        self.conn()
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO audit_events (at, actor, action, target, request_id, outcome, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        ts(&at),
                        event.actor,
                        event.action,
                        event.target,
                        event.request_id,
                        event.outcome,
                        event.detail,
                    ],
                )
                .map_err(db)?;
                Ok(AuditEvent {
                    id: tx.last_insert_rowid(),
                    at,
                    actor: event.actor,
                    action: event.action,
                    target: event.target,
                    request_id: event.request_id,
                    outcome: event.outcome,
                    detail: event.detail,
                })
            })
            .await
    }

    /// Newest first.
    async fn list_audit(&self, limit_n: u32) -> StoreResult<Vec<AuditEvent>> {
        self.conn()
            .call(move |c| {
                query_all(
                    c,
                    "SELECT id, at, actor, action, target, request_id, outcome, detail
                     FROM audit_events ORDER BY id DESC LIMIT ?1",
                    [i64::from(limit_n)],
                    audit_from_row,
                )
            })
            .await
    }
}
