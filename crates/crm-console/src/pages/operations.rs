//! One operation: status, progress, and what it produced.

use super::*;
use crate::html::{self, PageOpts, badge, esc, facts, time, yes_no};
use crate::session::{Role, Session};
use crate::{Console, Result, Viewer};
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use crm_domain::access::AccessCheck;
use crm_domain::ops::Operation;
use crm_domain::plan::Plan;
use crm_domain::reconcile::ReconcileRun;
use crm_domain::{OperationKind, OperationStatus};
use std::fmt::Write as _;

pub async fn operation(
    State(c): State<Console>,
    Viewer(s): Viewer,
    Path(id): Path<String>,
) -> Result<Response> {
    let op = c.app.operation(&id).await?;
    let running = matches!(
        op.status,
        OperationStatus::Running | OperationStatus::Queued
    );
    let progress: String = op
        .progress
        .iter()
        .map(|l| format!("<li>{}</li>", esc(l)))
        .collect();
    let body = format!(
        "{}<section aria-labelledby=\"prog-h\"><h2 id=\"prog-h\">Progress</h2><ol class=\"progress\" aria-live=\"polite\">{progress}</ol>{}</section>{}",
        facts(&[
            ("Kind", esc(op.kind.as_str())),
            ("Target", esc(&op.target)),
            (
                "Status",
                format!(
                    "<span id=\"op-status\">{}</span>",
                    badge(op.status.as_str())
                )
            ),
            ("Started", time(&op.created_at)),
            ("Updated", time(&op.updated_at)),
        ]),
        if running {
            "<p class=\"muted\">This page refreshes every two seconds until the operation ends.</p>"
        } else {
            ""
        },
        outcome(&s, &op),
    );
    Ok(Html(html::layout(
        Some(&s),
        &format!("Operation: {}", op.kind),
        &body,
        PageOpts {
            refresh_secs: running.then_some(2),
        },
    ))
    .into_response())
}

/// What a finished operation produced, with links to where to look next.
pub(crate) fn outcome(s: &Session, op: &Operation) -> String {
    let mut out = String::new();
    if let Some(e) = &op.error {
        let _ = write!(out, "<p class=\"error\" role=\"alert\">{}</p>", esc(e));
    }
    let Some(r) = &op.result else {
        return out;
    };
    let str_at = |ptr: &str| r.pointer(ptr).and_then(|v| v.as_str()).map(str::to_owned);
    out.push_str("<section aria-labelledby=\"res-h\"><h2 id=\"res-h\">Result</h2>");
    match op.kind {
        OperationKind::Import | OperationKind::Resume => {
            if let Some(id) = str_at("/batch/id") {
                let _ = write!(
                    out,
                    "{}",
                    facts(&[
                        ("Batch", batch_link(&id)),
                        (
                            "Batch status",
                            badge(&str_at("/batch/status").unwrap_or_default())
                        ),
                        (
                            "Access",
                            badge(&str_at("/access_status").unwrap_or_default())
                        ),
                        (
                            "Access check",
                            str_at("/access_check/verdict")
                                .map(|v| badge(&v))
                                .unwrap_or_else(|| "not run".into())
                        ),
                    ])
                );
            }
            if let Some(plan) = r
                .get("plan")
                .and_then(|p| serde_json::from_value::<Plan>(p.clone()).ok())
            {
                let _ = write!(
                    out,
                    "<h3>Plan applied</h3>{}",
                    plan_table(&plan).into_string()
                );
            }
        }
        OperationKind::Rollback => {
            let list = |key: &str| -> String {
                r.pointer(&format!("/report/{key}"))
                    .and_then(|v| v.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str())
                            .map(|x| format!("<li>{}</li>", esc(x)))
                            .collect::<String>()
                    })
                    .filter(|s| !s.is_empty())
                    .map(|s| format!("<ul>{s}</ul>"))
                    .unwrap_or_else(|| "none".into())
            };
            let batch = str_at("/report/batch").unwrap_or_default();
            let _ = write!(
                out,
                "{}",
                facts(&[
                    ("Batch", batch_link(&batch)),
                    (
                        "Batch status",
                        badge(&str_at("/report/status").unwrap_or_default())
                    ),
                    ("Deleted", list("deleted")),
                    ("Kept", list("kept")),
                    ("Left behind", list("left")),
                    (
                        "Access key refused afterwards",
                        match r.get("key_refusal").and_then(|v| v.as_str()) {
                            Some(v) => badge(v),
                            None => "no access closure".into(),
                        }
                    ),
                ])
            );
        }
        OperationKind::Reconcile => {
            if let Some(run) = r
                .get("run")
                .and_then(|v| serde_json::from_value::<ReconcileRun>(v.clone()).ok())
            {
                let host = str_at("/host").unwrap_or_default();
                let _ = write!(
                    out,
                    "{}{}",
                    facts(&[
                        ("Status", badge(run.status.as_str())),
                        ("Run", run_link(&run)),
                        ("Repaired", yes_no(run.repaired).into()),
                    ]),
                    drift_table(&run).into_string()
                );
                if let Some(plan) = r
                    .get("repair_plan")
                    .and_then(|p| serde_json::from_value::<Plan>(p.clone()).ok())
                {
                    let _ = write!(
                        out,
                        "<h3>Repair plan</h3>{}",
                        plan_table(&plan).into_string()
                    );
                }
                if s.role == Role::Admin && !run.repaired && !run.items.is_empty() {
                    out.push_str(&repair_form(s, &host, &run));
                }
            }
        }
        OperationKind::Probe => {
            let name = str_at("/name").unwrap_or_default();
            let _ = write!(
                out,
                "{}",
                facts(&[
                    ("Host", host_link(&name)),
                    ("Version", esc(&str_at("/version").unwrap_or_default())),
                ])
            );
        }
        OperationKind::AccessCheck => {
            if let Some(checks) = r
                .get("checks")
                .and_then(|v| serde_json::from_value::<Vec<AccessCheck>>(v.clone()).ok())
            {
                let links = checks
                    .iter()
                    .map(|c| batch_link(c.batch_id.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ");
                let _ = write!(
                    out,
                    "<p>Batches: {links}</p>{}",
                    checks_table(&checks).into_string()
                );
            }
        }
        _ => {
            let _ = write!(
                out,
                "<pre>{}</pre>",
                esc(&serde_json::to_string_pretty(r).unwrap_or_default())
            );
        }
    }
    out.push_str("</section>");
    out
}
