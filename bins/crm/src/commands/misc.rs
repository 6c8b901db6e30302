//! `crm reconcile`, `crm audit` and `crm lease`.

use crm_app::reconcile::ReconcileRequest;

use super::reports::{reconcile_outcome, render_reconcile, render_run};
use super::{Ctx, Outcome};
use crate::cli::{AuditArgs, LeaseCommand, ReconcileHostArgs};
use crate::render::{emit, opt, table};

/// How many past runs `--history` shows.
const HISTORY: u32 = 20;

pub async fn reconcile(ctx: &Ctx, a: ReconcileHostArgs) -> anyhow::Result<Outcome> {
    if a.history {
        let runs = ctx.app.reconcile_runs_for_host(&a.host, HISTORY).await?;
        emit(ctx.output, &runs, |rs| {
            table(
                &["Run", "Status", "Started", "Drift", "Repaired", "Requests"],
                rs.iter()
                    .map(|r| {
                        vec![
                            r.id.to_string(),
                            r.status.to_string(),
                            r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                            r.items.len().to_string(),
                            crate::render::yes_no(r.repaired),
                            r.host_requests.to_string(),
                        ]
                    })
                    .collect(),
            )
        });
        return Ok(Outcome::Unchanged);
    }
    if let Some(id) = &a.run {
        let run = ctx.app.reconcile_run(id).await?;
        emit(ctx.output, &run, render_run);
        return Ok(Outcome::Unchanged);
    }
    let keys = crate::secrets::upstream_keys(&a.keys)?;
    let pb = ctx.progress(&format!("reconciling {}", a.host));
    let report = ctx
        .app
        .reconcile_with_keys(
            ReconcileRequest {
                host: a.host,
                apply: a.apply,
                prune: a.prune,
                clear_unhealthy: a.clear_unhealthy,
                ..ReconcileRequest::default()
            },
            keys,
        )
        .await;
    pb.finish_and_clear();
    let report = report?;
    emit(ctx.output, &report, render_reconcile);
    Ok(reconcile_outcome(&report))
}

pub async fn audit(ctx: &Ctx, a: AuditArgs) -> anyhow::Result<Outcome> {
    let events = ctx.app.audit_log(a.limit).await?;
    emit(ctx.output, &events, |es| {
        table(
            &["At", "Actor", "Action", "Target", "Outcome", "Detail"],
            es.iter()
                .map(|e| {
                    vec![
                        e.at.format("%m-%d %H:%M:%S").to_string(),
                        e.actor.clone(),
                        e.action.clone(),
                        e.target.clone(),
                        e.outcome.clone(),
                        opt(&e.detail),
                    ]
                })
                .collect(),
        )
    });
    Ok(Outcome::Unchanged)
}

pub async fn lease(ctx: &Ctx, c: LeaseCommand) -> anyhow::Result<Outcome> {
    match c {
        LeaseCommand::List { host } => {
            let leases = ctx.app.list_leases(host.as_deref()).await?;
            emit(ctx.output, &leases, |ls| {
                table(
                    &["Lease", "Scope", "Holder", "Operation", "Expires"],
                    ls.iter()
                        .map(|l| {
                            vec![
                                l.id.to_string(),
                                l.scope.clone(),
                                l.holder.clone(),
                                l.operation.clone(),
                                l.expires_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                            ]
                        })
                        .collect(),
                )
            });
        }
        LeaseCommand::Release { lease } => {
            let released = ctx.app.release_lease(&lease).await?;
            emit(ctx.output, &released, |l| {
                format!(
                    "released lease {} ({}, held by {})",
                    l.id, l.scope, l.holder
                )
            });
        }
    }
    Ok(Outcome::Unchanged)
}
