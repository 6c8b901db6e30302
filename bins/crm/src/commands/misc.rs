//! `crm reconcile`, `crm audit` and `crm lease`.

use crm_app::reconcile::{ReconcileReport, ReconcileRequest};
use crm_domain::ReconcileStatus;
use crm_domain::reconcile::ReconcileRun;

use super::provider::render_plan;
use super::{Ctx, Outcome};
use crate::cli::{AuditArgs, LeaseCommand, ReconcileHostArgs};
use crate::render::{emit, fields, opt, table};

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

pub fn reconcile_outcome(r: &ReconcileReport) -> Outcome {
    match r.run.status {
        ReconcileStatus::Unreachable | ReconcileStatus::Error => Outcome::Failed {
            message: format!(
                "reconcile ended {}: {}",
                r.run.status,
                r.run.error.as_deref().unwrap_or("no detail")
            ),
            hint: Some("check the host with `crm host probe`".into()),
        },
        _ => Outcome::changed_if(r.drift_present()),
    }
}

fn render_run(r: &ReconcileRun) -> String {
    let head = fields(&[
        ("run", r.id.to_string()),
        ("status", r.status.to_string()),
        ("batch", opt(&r.scope.batch_id)),
        ("provider", opt(&r.scope.provider)),
        ("started", r.started_at.to_rfc3339()),
        ("host requests", r.host_requests.to_string()),
        ("repaired", crate::render::yes_no(r.repaired)),
        ("error", opt(&r.error)),
    ]);
    if r.items.is_empty() {
        return format!("{head}\n\nno drift");
    }
    let items = table(
        &["Drift", "Kind", "Name", "Host id", "Detail"],
        r.items
            .iter()
            .map(|i| {
                let mut detail = i.detail.clone();
                for f in &i.fields {
                    detail.push_str(&format!("; {}: {} -> {}", f.field, f.from, f.to));
                }
                vec![
                    i.category.to_string(),
                    i.kind.to_string(),
                    i.name.clone(),
                    opt(&i.host_object_id),
                    detail,
                ]
            })
            .collect(),
    );
    format!("{head}\n\n{items}")
}

pub fn render_reconcile(r: &ReconcileReport) -> String {
    let mut out = render_run(&r.run);
    if let Some(p) = &r.repair_plan {
        out.push_str("\n\nrepair:\n");
        out.push_str(&render_plan(p));
    }
    if !r.repaired.is_empty() {
        out.push_str("\n\nrepaired:\n");
        out.push_str(&r.repaired.join("\n"));
    }
    out
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
