//! One operation: status, progress, and what it produced.

use super::hosts::repair_form;
use super::{checks_table, drift_table, plan_table};
use crate::html::PageOpts;
use crate::session::{Role, Session};
use crate::view::{badge, batch_link, facts, host_link, layout, run_link, time};
use crate::{Console, Result, Viewer};
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use crm_domain::access::AccessCheck;
use crm_domain::ops::Operation;
use crm_domain::plan::Plan;
use crm_domain::reconcile::ReconcileRun;
use crm_domain::{OperationKind, OperationStatus};
use maud::{Markup, html};

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
    let body = html! {
        (facts(&[
            ("Kind", html! { (op.kind.as_str()) }),
            ("Target", html! { (op.target) }),
            ("Status", html! { span id="op-status" { (badge(op.status.as_str())) } }),
            ("Started", time(&op.created_at)),
            ("Updated", time(&op.updated_at)),
        ]))
        section aria-labelledby="prog-h" {
            h2 id="prog-h" { "Progress" }
            ol.progress aria-live="polite" { @for l in &op.progress { li { (l) } } }
            @if running {
                p.muted { "This page refreshes every two seconds until the operation ends." }
            }
        }
        (outcome(&s, &op))
    };
    let doc = layout(
        Some(&s),
        &format!("Operation: {}", op.kind),
        body,
        PageOpts {
            refresh_secs: running.then_some(2),
        },
    );
    Ok(Html(doc.into_string()).into_response())
}

fn yes_no(v: bool) -> Markup {
    html! { (crate::html::yes_no(v)) }
}

/// What a finished operation produced, with links to where to look next.
pub(crate) fn outcome(s: &Session, op: &Operation) -> Markup {
    let Some(r) = &op.result else {
        return html! { @if let Some(e) = &op.error { p.error role="alert" { (e) } } };
    };
    let str_at = |ptr: &str| r.pointer(ptr).and_then(|v| v.as_str()).map(str::to_owned);
    let result = match op.kind {
        OperationKind::Import | OperationKind::Resume => {
            let plan = r
                .get("plan")
                .and_then(|p| serde_json::from_value::<Plan>(p.clone()).ok());
            html! {
                @if let Some(id) = str_at("/batch/id") {
                    (facts(&[
                        ("Batch", batch_link(&id)),
                        ("Batch status", badge(&str_at("/batch/status").unwrap_or_default())),
                        ("Access", badge(&str_at("/access_status").unwrap_or_default())),
                        ("Access check", match str_at("/access_check/verdict") {
                            Some(v) => badge(&v),
                            None => html! { "not run" },
                        }),
                    ]))
                }
                @if let Some(plan) = &plan { h3 { "Plan applied" } (plan_table(plan)) }
            }
        }
        OperationKind::Rollback => {
            let list = |key: &str| -> Markup {
                let items: Vec<&str> = r
                    .pointer(&format!("/report/{key}"))
                    .and_then(|v| v.as_array())
                    .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                    .unwrap_or_default();
                html! {
                    @if items.is_empty() { "none" } @else { ul { @for x in &items { li { (x) } } } }
                }
            };
            let batch = str_at("/report/batch").unwrap_or_default();
            facts(&[
                ("Batch", batch_link(&batch)),
                (
                    "Batch status",
                    badge(&str_at("/report/status").unwrap_or_default()),
                ),
                ("Deleted", list("deleted")),
                ("Kept", list("kept")),
                ("Left behind", list("left")),
                (
                    "Access key refused afterwards",
                    match r.get("key_refusal").and_then(|v| v.as_str()) {
                        Some(v) => badge(v),
                        None => html! { "no access closure" },
                    },
                ),
            ])
        }
        OperationKind::Reconcile => {
            match r
                .get("run")
                .and_then(|v| serde_json::from_value::<ReconcileRun>(v.clone()).ok())
            {
                Some(run) => {
                    let host = str_at("/host").unwrap_or_default();
                    let plan = r
                        .get("repair_plan")
                        .and_then(|p| serde_json::from_value::<Plan>(p.clone()).ok());
                    html! {
                        (facts(&[
                            ("Status", badge(run.status.as_str())),
                            ("Run", run_link(&run)),
                            ("Repaired", yes_no(run.repaired)),
                        ]))
                        (drift_table(&run))
                        @if let Some(plan) = &plan { h3 { "Repair plan" } (plan_table(plan)) }
                        @if s.role == Role::Admin && !run.repaired && !run.items.is_empty() {
                            (repair_form(s, &host, &run))
                        }
                    }
                }
                None => html! {},
            }
        }
        OperationKind::Probe => {
            let name = str_at("/name").unwrap_or_default();
            facts(&[
                ("Host", host_link(&name)),
                (
                    "Version",
                    html! { (str_at("/version").unwrap_or_default()) },
                ),
            ])
        }
        OperationKind::AccessCheck => {
            match r
                .get("checks")
                .and_then(|v| serde_json::from_value::<Vec<AccessCheck>>(v.clone()).ok())
            {
                Some(checks) => html! {
                    p {
                        "Batches: "
                        @for (n, c) in checks.iter().enumerate() {
                            @if n > 0 { ", " }
                            (batch_link(c.batch_id.as_str()))
                        }
                    }
                    (checks_table(&checks))
                },
                None => html! {},
            }
        }
        _ => html! { pre { (serde_json::to_string_pretty(r).unwrap_or_default()) } },
    };
    html! {
        @if let Some(e) = &op.error { p.error role="alert" { (e) } }
        section aria-labelledby="res-h" { h2 id="res-h" { "Result" } (result) }
    }
}
