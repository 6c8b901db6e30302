//! The read-only pages, one module per resource mirroring
//! `crm-api/src/routes/`: overview, hosts (with reconcile runs), providers,
//! batches, packs, audit and operations, and a host's funds. Each gathers data through `crm-app`
//! use cases and renders it; action controls appear only for admin sessions
//! (the action handlers refuse read-only sessions anyway). This module holds
//! the sign-in form and the widgets several pages share.

mod audit;
mod batches;
mod funds;
mod hosts;
mod operations;
mod overview;
mod packs;
mod providers;

pub use audit::audit;
pub use batches::{batch, batches};
pub use funds::host_funds;
pub use hosts::{host, reconcile_run};
pub use operations::operation;
pub use overview::overview;
pub use packs::{pack, packs};
pub use providers::provider;

use crate::html::yes_no;
use crate::view as v;
use crate::{Console, Result};
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use crm_app::status::ProviderStatusView;
use crm_domain::access::AccessCheck;
use crm_domain::batch::ImportBatch;
use crm_domain::host::{AdminAuth, Capabilities};
use crm_domain::plan::{FieldChange, Plan};
use crm_domain::reconcile::ReconcileRun;
use maud::{Markup, html};
use std::collections::HashMap;

/// The first twelve characters of a checksum, for tables.
pub(crate) fn short(checksum: &str) -> &str {
    checksum
        .char_indices()
        .nth(12)
        .map_or(checksum, |(i, _)| &checksum[..i])
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
pub(crate) fn plan_table(plan: &Plan) -> Markup {
    let rows: Vec<Vec<Markup>> = plan
        .items
        .iter()
        .map(|i| {
            vec![
                html! { (i.kind.as_str()) },
                v::badge(i.action.as_str()),
                v::code(&i.name),
                v::code(&i.natural_key),
                html! { @if let Some(id) = i.host_object_id { (id.to_string()) } },
                html! { (changes_text(&i.changes)) },
                html! { (i.reason.as_deref().unwrap_or("")) },
            ]
        })
        .collect();
    html! {
        (v::table(
            &["Kind", "Action", "Name", "Natural key", "Host id", "Changes", "Reason"],
            &rows,
            "The plan is empty.",
        ))
        @if !plan.notes.is_empty() {
            ul.notes { @for n in &plan.notes { li { (n) } } }
        }
    }
}

pub(crate) fn drift_table(run: &ReconcileRun) -> Markup {
    let rows: Vec<Vec<Markup>> = run
        .items
        .iter()
        .map(|d| {
            vec![
                v::badge(d.category.as_str()),
                html! { (d.kind.as_str()) },
                v::code(&d.name),
                html! { @if let Some(i) = d.host_object_id { (i.to_string()) } },
                html! { @if let Some(b) = &d.batch_id { (v::batch_link(b.as_str())) } },
                html! { (changes_text(&d.fields)) },
                html! { (d.detail) },
            ]
        })
        .collect();
    v::table(
        &[
            "Drift", "Kind", "Name", "Host id", "Batch", "Fields", "Detail",
        ],
        &rows,
        "No drift: the host matches what crm recorded.",
    )
}

pub(crate) fn runs_table(runs: &[ReconcileRun]) -> Markup {
    let rows: Vec<Vec<Markup>> = runs
        .iter()
        .map(|r| {
            let scope = match (&r.scope.batch_id, &r.scope.provider) {
                (Some(b), _) => html! { "batch " (v::batch_link(b.as_str())) },
                (None, Some(p)) => html! { "provider " (v::provider_link(p)) },
                (None, None) => html! { "whole host" },
            };
            vec![
                v::run_link(r),
                scope,
                v::badge(r.status.as_str()),
                html! { (r.items.len()) },
                html! { (yes_no(r.repaired)) },
                html! { (r.host_requests) },
                html! { (r.error.as_deref().unwrap_or("")) },
            ]
        })
        .collect();
    v::table(
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

pub(crate) fn batches_table(batches: &[ImportBatch], names: &HashMap<String, String>) -> Markup {
    let rows: Vec<Vec<Markup>> = batches
        .iter()
        .map(|b| {
            let host = match names.get(b.host_id.as_str()) {
                Some(n) => v::host_link(n),
                None => html! { (b.host_id.as_str()) },
            };
            vec![
                v::batch_link(b.id.as_str()),
                host,
                v::provider_link(&b.provider),
                html! { (b.mode.as_str()) },
                v::badge(b.status.as_str()),
                v::badge(b.access_status.as_str()),
                html! { (b.pack_version) },
                v::time(&b.updated_at),
            ]
        })
        .collect();
    v::table(
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
pub(crate) fn status_table(statuses: &[ProviderStatusView], by_host: bool) -> Markup {
    let rows: Vec<Vec<Markup>> = statuses
        .iter()
        .map(|st| {
            vec![
                if by_host {
                    v::host_link(&st.host)
                } else {
                    v::provider_link(&st.provider)
                },
                html! {
                    span.provider-status data-status=(st.status.as_str()) { (v::badge(st.status.as_str())) }
                },
                html! { (st.reason.as_str()) },
                html! { (st.detail) },
                html! { @if let Some(b) = &st.batch_id { (v::batch_link(b)) } },
            ]
        })
        .collect();
    v::table(
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

pub(crate) fn checks_table(checks: &[AccessCheck]) -> Markup {
    let rows: Vec<Vec<Markup>> = checks
        .iter()
        .map(|c| {
            let steps = html! {
                @for (n, s) in c.steps.iter().enumerate() {
                    @if n > 0 { br; }
                    (s.name) " " (v::badge(s.verdict.as_str()))
                    @if let Some(st) = s.status { " HTTP " (st) }
                    " (" (s.latency_ms) " ms)"
                }
            };
            vec![
                v::time(&c.checked_at),
                html! { (c.mode.as_str()) },
                v::badge(c.verdict.as_str()),
                match c.failure_class {
                    Some(f) => v::badge(f.as_str()),
                    None => html! { span.muted { "none" } },
                },
                html! { (c.summary) },
                steps,
            ]
        })
        .collect();
    v::table(
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
    let body = html! {
        @if q.failed.is_some() {
            p.error role="alert" { "That token was not accepted." }
        }
        form method="post" action="/login" class="login" {
            label for="token" { "Admin or read-only token" }
            input id="token" name="token" type="password" autocomplete="current-password" required autofocus;
            button type="submit" id="sign-in" { "Sign in" }
        }
        p.muted { "The token is checked once; the browser keeps only a session cookie." }
    };
    v::bare_page("Sign in", body).into_response()
}
