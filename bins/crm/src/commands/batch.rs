//! `crm batch list|show|resume|rollback`.

use crm_app::batches::{BatchDetail, BatchQuery};
use crm_app::recovery::{FinishInput, FinishReport};
use crm_domain::BatchStatus;
use std::collections::HashMap;

use super::reports::{render_checks, render_plan, render_rollback, rollback_outcome};
use super::{Ctx, Outcome};
use crate::cli::BatchCommand;
use crate::render::{emit, fields, opt, table};
use crate::secrets;

pub async fn run(ctx: &Ctx, cmd: BatchCommand) -> anyhow::Result<Outcome> {
    match cmd {
        BatchCommand::List {
            host,
            provider,
            status,
        } => {
            let batches = ctx
                .app
                .list_batches(BatchQuery {
                    host,
                    provider,
                    status,
                    limit: None,
                })
                .await?;
            let names: HashMap<String, String> = ctx
                .app
                .list_hosts()
                .await?
                .into_iter()
                .map(|h| (h.id, h.name))
                .collect();
            emit(ctx.output, &batches, |bs| {
                // One table per host keeps every row within 100 columns.
                let mut by_host: Vec<(String, Vec<Vec<String>>)> = Vec::new();
                for b in bs {
                    let host = names
                        .get(b.host_id.as_str())
                        .cloned()
                        .unwrap_or_else(|| b.host_id.to_string());
                    let row = vec![
                        b.id.to_string(),
                        b.provider.to_string(),
                        b.mode.to_string(),
                        b.status.to_string(),
                        b.access_status.to_string(),
                    ];
                    match by_host.iter_mut().find(|(h, _)| *h == host) {
                        Some((_, rows)) => rows.push(row),
                        None => by_host.push((host, vec![row])),
                    }
                }
                if by_host.is_empty() {
                    return "no batches".into();
                }
                by_host
                    .into_iter()
                    .map(|(host, rows)| {
                        format!(
                            "host {host}:\n{}",
                            table(&["Batch", "Provider", "Mode", "Status", "Access"], rows)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n\n")
            });
            Ok(Outcome::Unchanged)
        }
        BatchCommand::Show { batch } => {
            let detail = ctx.app.batch_detail(&batch).await?;
            emit(ctx.output, &detail, render_detail);
            Ok(Outcome::Unchanged)
        }
        BatchCommand::Resume {
            batch,
            keys,
            user,
            no_verify,
        } => {
            let input = FinishInput {
                upstream_keys: secrets::upstream_keys(&keys)?,
                user: secrets::user_login(&user)?,
                verify: !no_verify,
            };
            let pb = ctx.progress(&format!("resuming {batch}"));
            let report = ctx.app.finish_batch(&batch, input).await;
            pb.finish_and_clear();
            let report = report?;
            emit(ctx.output, &report, render_finish);
            let error = report.resumed.as_ref().and_then(|r| r.error.clone());
            if report.batch.status != BatchStatus::Applied || error.is_some() {
                return Ok(Outcome::Failed {
                    message: format!(
                        "resume ended {}: {}",
                        report.batch.status,
                        error
                            .as_deref()
                            .or(report.batch.status_reason.as_deref())
                            .unwrap_or("no reason recorded")
                    ),
                    hint: Some(format!(
                        "see `crm batch show {batch}`; `crm batch rollback {batch}` undoes it"
                    )),
                });
            }
            if report
                .access_check
                .as_ref()
                .is_some_and(|c| c.verdict == crm_domain::Verdict::Fail)
            {
                return Ok(Outcome::Failed {
                    message: format!(
                        "the batch is applied but access is {}",
                        report.access_status
                    ),
                    hint: Some(format!("see the access checks in `crm batch show {batch}`")),
                });
            }
            Ok(Outcome::changed_if(report.changed))
        }
        BatchCommand::Rollback { batch } => {
            let pb = ctx.progress(&format!("rolling back {batch}"));
            let view = ctx.app.rollback_batch(&batch).await;
            pb.finish_and_clear();
            let view = view?;
            emit(ctx.output, &view, render_rollback);
            Ok(rollback_outcome(std::slice::from_ref(&view)))
        }
    }
}

fn render_finish(r: &FinishReport) -> String {
    let mut out = fields(&[
        ("batch", r.batch.id.to_string()),
        ("status", r.batch.status.to_string()),
        ("reason", opt(&r.batch.status_reason)),
        ("access", r.access_status.to_string()),
        (
            "provisioning",
            match &r.resumed {
                Some(a) if a.noop => "nothing left to do".into(),
                Some(a) => format!("resumed ({} host requests)", a.host_requests),
                None => "already applied".into(),
            },
        ),
    ]);
    if let Some(a) = &r.resumed {
        out.push_str("\n\n");
        out.push_str(&render_plan(&a.plan));
    }
    if let Some(p) = &r.access_plan {
        out.push_str("\n\naccess closure:\n");
        out.push_str(&render_plan(p));
    }
    if let Some(c) = &r.access_check {
        out.push_str("\n\n");
        out.push_str(&render_checks(std::slice::from_ref(c)));
    }
    out
}

fn render_detail(d: &BatchDetail) -> String {
    let b = &d.batch;
    let head = fields(&[
        ("batch", b.id.to_string()),
        ("host", d.host_name.clone()),
        ("provider", b.provider.to_string()),
        ("mode", b.mode.to_string()),
        ("pack", format!("{} ({})", b.pack_version, b.pack_checksum)),
        ("status", b.status.to_string()),
        ("reason", opt(&b.status_reason)),
        ("access", b.access_status.to_string()),
        (
            "advisories",
            if d.funds_advisories.is_empty() {
                "-".into()
            } else {
                d.funds_advisories
                    .iter()
                    .map(|a| format!("{} ({})", a.class, a.detail))
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        ),
        (
            "upstream keys",
            b.upstream_keys
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("created", b.created_at.to_rfc3339()),
        ("updated", b.updated_at.to_rfc3339()),
        (
            "last reconcile",
            d.latest_reconcile
                .as_ref()
                .map(|r| format!("{} ({} drift items)", r.status, r.items.len()))
                .unwrap_or_else(|| "-".into()),
        ),
    ]);
    let resources = table(
        &["Kind", "Name", "Host id", "Origin", "State"],
        d.resources
            .iter()
            .map(|r| {
                vec![
                    r.kind.to_string(),
                    r.name.clone(),
                    r.host_object_id.to_string(),
                    r.origin.to_string(),
                    r.state.to_string(),
                ]
            })
            .collect(),
    );
    let journal = table(
        &["Seq", "Op", "Kind", "Name", "Host id", "State", "Detail"],
        d.journal
            .iter()
            .map(|e| {
                vec![
                    e.seq.to_string(),
                    e.op.to_string(),
                    e.kind.to_string(),
                    e.name.clone(),
                    opt(&e.host_object_id),
                    e.state.to_string(),
                    opt(&e.detail),
                ]
            })
            .collect(),
    );
    let mut out = format!("{head}\n\nresources:\n{resources}\n\njournal:\n{journal}");
    if !d.access_checks.is_empty() {
        out.push_str("\n\naccess checks:\n");
        out.push_str(&render_checks(&d.access_checks));
    }
    out
}
