//! The text views of reports that more than one command prints (a plan,
//! access checks, a rollback, a reconcile run) and the exit code each
//! deserves (docs/design.md §3), written once so every command that shows
//! one shows it alike; the commands import them from here and never from
//! each other.

use crm_app::providers::RollbackView;
use crm_app::reconcile::ReconcileReport;
use crm_domain::access::AccessCheck;
use crm_domain::plan::Plan;
use crm_domain::reconcile::ReconcileRun;
use crm_domain::{BatchStatus, ReconcileStatus};

use super::Outcome;
use crate::render::{fields, opt, table, word};

pub fn render_plan(plan: &Plan) -> String {
    let mut out = table(
        &["Action", "Kind", "Name", "Host id", "Changes / reason"],
        plan.items
            .iter()
            .map(|i| {
                let mut why: Vec<String> = i
                    .changes
                    .iter()
                    .map(|c| format!("{}: {} -> {}", c.field, c.from, c.to))
                    .collect();
                if let Some(r) = &i.reason {
                    why.push(r.clone());
                }
                vec![
                    i.action.to_string(),
                    i.kind.to_string(),
                    i.name.clone(),
                    opt(&i.host_object_id),
                    why.join("; "),
                ]
            })
            .collect(),
    );
    for n in &plan.notes {
        out.push_str(&format!("\nnote: {n}"));
    }
    out
}

pub fn render_checks(checks: &[AccessCheck]) -> String {
    table(
        &["Batch", "Mode", "Verdict", "Failure class", "Summary"],
        checks
            .iter()
            .map(|c| {
                vec![
                    c.batch_id.to_string(),
                    c.mode.to_string(),
                    c.verdict.to_string(),
                    opt(&c.failure_class),
                    c.summary.clone(),
                ]
            })
            .collect(),
    )
}

pub fn render_rollback(v: &RollbackView) -> String {
    let r = &v.report;
    let list = |xs: &[String]| {
        if xs.is_empty() {
            "-".into()
        } else {
            xs.join("\n")
        }
    };
    fields(&[
        ("batch", r.batch.to_string()),
        ("status", r.status.to_string()),
        ("deleted", list(&r.deleted)),
        ("kept", list(&r.kept)),
        ("left", list(&r.left)),
        (
            "user key",
            v.key_refusal
                .as_ref()
                .map(word)
                .unwrap_or_else(|| "-".into()),
        ),
        ("host requests", r.host_requests.to_string()),
    ])
}

pub fn rollback_outcome(views: &[RollbackView]) -> Outcome {
    if let Some(bad) = views
        .iter()
        .find(|v| v.report.status != BatchStatus::RolledBack)
    {
        return Outcome::Failed {
            message: format!(
                "rollback of {} ended {}: {}",
                bad.report.batch,
                bad.report.status,
                bad.report.left.join("; ")
            ),
            hint: Some(format!(
                "fix what is listed, then run `crm batch rollback {}` again",
                bad.report.batch
            )),
        };
    }
    Outcome::changed_if(views.iter().any(|v| !v.report.deleted.is_empty()))
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

pub fn render_run(r: &ReconcileRun) -> String {
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
