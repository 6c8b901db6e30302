//! The read-only pages, one module per resource mirroring
//! `crm-api/src/routes/`: overview, hosts (with reconcile runs), providers,
//! batches, packs, audit and operations. Each gathers data through `crm-app`
//! use cases and renders it; action controls appear only for admin sessions
//! (the action handlers refuse read-only sessions anyway). This module holds
//! the sign-in form and the widgets several pages share.

mod audit;
mod batches;
mod hosts;
mod operations;
mod overview;
mod packs;
mod providers;

pub use audit::audit;
pub use batches::{batch, batches};
pub(crate) use hosts::repair_form;
pub use hosts::{host, reconcile_run};
pub use operations::operation;
pub use overview::overview;
pub use packs::{pack, packs};
pub use providers::provider;

use crate::html::{self, PageOpts, badge, esc, link, seg, table, time, yes_no};
use crate::session::Session;
use crate::{Console, Result};
use axum::extract::Query;
use axum::response::{Html, IntoResponse, Response};
use crm_app::status::ProviderStatusView;
use crm_domain::ProviderRef;
use crm_domain::access::AccessCheck;
use crm_domain::batch::ImportBatch;
use crm_domain::host::{AdminAuth, Capabilities};
use crm_domain::plan::{FieldChange, Plan};
use crm_domain::reconcile::ReconcileRun;
use std::collections::HashMap;
use std::fmt::Write as _;

pub(crate) fn page(session: &Session, title: &str, body: String) -> Response {
    Html(html::layout(
        Some(session),
        title,
        &body,
        PageOpts::default(),
    ))
    .into_response()
}

/// The first twelve characters of a checksum, for tables.
pub(crate) fn short(checksum: &str) -> &str {
    checksum
        .char_indices()
        .nth(12)
        .map_or(checksum, |(i, _)| &checksum[..i])
}

pub(crate) fn host_link(name: &str) -> String {
    link(&format!("/hosts/{}", seg(name)), name)
}

pub(crate) fn provider_link(p: &ProviderRef) -> String {
    link(
        &format!(
            "/providers/{}/{}",
            seg(p.pack.as_str()),
            seg(p.provider.as_str())
        ),
        &p.to_string(),
    )
}

pub(crate) fn batch_link(id: &str) -> String {
    link(&format!("/batches/{}", seg(id)), id)
}

pub(crate) fn run_link(run: &ReconcileRun) -> String {
    link(
        &format!("/reconcile-runs/{}", seg(run.id.as_str())),
        &run.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

/// Host id -> name, for tables that show batches of several hosts.
pub(crate) async fn host_names(c: &Console) -> Result<HashMap<String, String>> {
    Ok(c.app
        .list_hosts()
        .await?
        .into_iter()
        .map(|h| (h.id, h.name))
        .collect())
}

pub(crate) fn caps_summary(caps: &Capabilities) -> maud::Markup {
    let mut tags = Vec::new();
    match &caps.admin_auth {
        AdminAuth::Ok => tags.push("admin auth ok".to_owned()),
        AdminAuth::ComplianceGate { .. } => tags.push("compliance gate (423)".to_owned()),
        AdminAuth::Rejected { .. } => tags.push("admin auth rejected".to_owned()),
    }
    for (on, name) in [
        (caps.channels, "channels"),
        (caps.chat_completions, "chat completions"),
        (caps.subscriptions, "subscriptions"),
        (caps.payment_plans, "payment plans"),
        (caps.admin_key_rebind, "key rebind"),
        (caps.idempotency_key, "Idempotency-Key"),
        (caps.credential_redaction, "credential redaction"),
    ] {
        if on {
            tags.push(name.to_owned());
        }
    }
    if !caps.native_platforms.is_empty() {
        tags.push(format!(
            "native: {}",
            caps.native_platforms
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    maud::html! { ul.tags { @for t in &tags { li { (t) } } } }
}

pub(crate) fn changes_text(changes: &[FieldChange]) -> String {
    changes
        .iter()
        .map(|c| format!("{}: {} → {}", c.field, c.from, c.to))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A plan as a table (imports, repairs, access closures).
pub(crate) fn plan_table(plan: &Plan) -> String {
    let rows: Vec<Vec<String>> = plan
        .items
        .iter()
        .map(|i| {
            vec![
                esc(i.kind.as_str()),
                badge(i.action.as_str()),
                format!("<code>{}</code>", esc(&i.name)),
                format!("<code>{}</code>", esc(&i.natural_key)),
                i.host_object_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                esc(&changes_text(&i.changes)),
                esc(i.reason.as_deref().unwrap_or("")),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "Kind",
            "Action",
            "Name",
            "Natural key",
            "Host id",
            "Changes",
            "Reason",
        ],
        &rows,
        "The plan is empty.",
    );
    if !plan.notes.is_empty() {
        out.push_str("<ul class=\"notes\">");
        for n in &plan.notes {
            let _ = write!(out, "<li>{}</li>", esc(n));
        }
        out.push_str("</ul>");
    }
    out
}

pub(crate) fn drift_table(run: &ReconcileRun) -> String {
    let rows: Vec<Vec<String>> = run
        .items
        .iter()
        .map(|d| {
            vec![
                badge(d.category.as_str()),
                esc(d.kind.as_str()),
                format!("<code>{}</code>", esc(&d.name)),
                d.host_object_id.map(|i| i.to_string()).unwrap_or_default(),
                d.batch_id
                    .as_ref()
                    .map(|b| batch_link(b.as_str()))
                    .unwrap_or_default(),
                esc(&changes_text(&d.fields)),
                esc(&d.detail),
            ]
        })
        .collect();
    table(
        &[
            "Drift", "Kind", "Name", "Host id", "Batch", "Fields", "Detail",
        ],
        &rows,
        "No drift: the host matches what crm recorded.",
    )
}

pub(crate) fn runs_table(runs: &[ReconcileRun]) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let scope = match (&r.scope.batch_id, &r.scope.provider) {
                (Some(b), _) => format!("batch {}", batch_link(b.as_str())),
                (None, Some(p)) => format!("provider {}", provider_link(p)),
                (None, None) => "whole host".into(),
            };
            vec![
                run_link(r),
                scope,
                badge(r.status.as_str()),
                r.items.len().to_string(),
                yes_no(r.repaired).into(),
                r.host_requests.to_string(),
                esc(r.error.as_deref().unwrap_or("")),
            ]
        })
        .collect();
    table(
        &[
            "Started",
            "Scope",
            "Status",
            "Drift items",
            "Repaired",
            "Host requests",
            "Error",
        ],
        &rows,
        "No reconcile runs yet.",
    )
}

pub(crate) fn batches_table(batches: &[ImportBatch], names: &HashMap<String, String>) -> String {
    let rows: Vec<Vec<String>> = batches
        .iter()
        .map(|b| {
            let host = names
                .get(b.host_id.as_str())
                .map(|n| host_link(n))
                .unwrap_or_else(|| esc(b.host_id.as_str()));
            vec![
                batch_link(b.id.as_str()),
                host,
                provider_link(&b.provider),
                esc(b.mode.as_str()),
                badge(b.status.as_str()),
                badge(b.access_status.as_str()),
                esc(&b.pack_version),
                time(&b.updated_at),
            ]
        })
        .collect();
    table(
        &[
            "Batch", "Host", "Provider", "Mode", "Status", "Access", "Pack", "Updated",
        ],
        &rows,
        "No batches.",
    )
}

/// Provider status rows (crm-app decides the status; this only shows it).
/// `by_host` picks the first column: the host on a provider's page, the
/// provider on a host's page.
pub(crate) fn status_table(statuses: &[ProviderStatusView], by_host: bool) -> String {
    let rows: Vec<Vec<String>> = statuses
        .iter()
        .map(|st| {
            vec![
                if by_host {
                    host_link(&st.host)
                } else {
                    provider_link(&st.provider)
                },
                format!(
                    "<span class=\"provider-status\" data-status=\"{}\">{}</span>",
                    st.status,
                    badge(st.status.as_str())
                ),
                esc(st.reason.as_str()),
                esc(&st.detail),
                st.batch_id.as_deref().map(batch_link).unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            if by_host { "Host" } else { "Provider" },
            "Status",
            "Reason",
            "Why",
            "Batch",
        ],
        &rows,
        "No provider to show.",
    )
}

pub(crate) fn checks_table(checks: &[AccessCheck]) -> String {
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| {
            let steps = c
                .steps
                .iter()
                .map(|s| {
                    format!(
                        "{} {}{} ({} ms)",
                        esc(&s.name),
                        badge(s.verdict.as_str()),
                        s.status.map(|st| format!(" HTTP {st}")).unwrap_or_default(),
                        s.latency_ms
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>");
            vec![
                time(&c.checked_at),
                esc(c.mode.as_str()),
                badge(c.verdict.as_str()),
                c.failure_class
                    .map(|f| badge(f.as_str()))
                    .unwrap_or_else(|| "<span class=\"muted\">none</span>".into()),
                esc(&c.summary),
                steps,
            ]
        })
        .collect();
    table(
        &[
            "Checked",
            "Mode",
            "Verdict",
            "Classification",
            "Summary",
            "Steps",
        ],
        &rows,
        "No access checks yet.",
    )
}

// ---------------------------------------------------------------- login

#[derive(Debug, serde::Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    failed: Option<String>,
}

pub async fn login_form(Query(q): Query<LoginQuery>) -> Response {
    let error = if q.failed.is_some() {
        "<p class=\"error\" role=\"alert\">That token was not accepted.</p>"
    } else {
        ""
    };
    let body = format!(
        "{error}<form method=\"post\" action=\"/login\" class=\"login\">\
         <label for=\"token\">Admin or read-only token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
         <button type=\"submit\" id=\"sign-in\">Sign in</button></form>\
         <p class=\"muted\">The token is checked once; the browser keeps only a session cookie.</p>"
    );
    Html(html::layout(None, "Sign in", &body, PageOpts::default())).into_response()
}
