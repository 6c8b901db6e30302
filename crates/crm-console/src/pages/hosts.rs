//! A host's page, and one reconcile run with its repair form.

use super::{batches_table, caps_summary, drift_table, host_names, runs_table, status_table};
use crate::html::seg;
use crate::session::{Role, Session};
use crate::view::{
    action_button, action_link, badge, batch_link, code, facts, host_link, link, page,
    provider_link, run_link, table, time,
};
use crate::{Console, Result, Viewer};
use axum::extract::{Path, State};
use axum::response::Response;
use crm_app::HostView;
use crm_app::batches::BatchQuery;
use crm_domain::host::AdminAuth;
use crm_domain::reconcile::ReconcileRun;
use maud::{Markup, html};
use std::collections::HashMap;

fn yes_no(v: bool) -> Markup {
    html! { (crate::html::yes_no(v)) }
}

pub async fn host(
    State(c): State<Console>,
    Viewer(s): Viewer,
    Path(name): Path<String>,
) -> Result<Response> {
    let h: HostView = c.app.show_host(&name).await?;
    let batches = c
        .app
        .list_batches(BatchQuery {
            host: Some(h.id.clone()),
            ..Default::default()
        })
        .await?;
    let mut live_rows: Vec<Vec<Markup>> = Vec::new();
    let mut past = Vec::new();
    for b in batches {
        if !b.status.is_live() {
            past.push(b);
            continue;
        }
        let detail = c.app.batch_detail(b.id.as_str()).await?;
        let reconcile = match &detail.latest_reconcile {
            Some(r) => html! { (badge(r.status.as_str())) " " (run_link(r)) },
            None => html! { span.muted { "not reconciled" } },
        };
        let last_check = match detail.access_checks.last() {
            Some(ch) => html! {
                (badge(ch.verdict.as_str()))
                @if let Some(f) = ch.failure_class { " " (badge(f.as_str())) }
            },
            None => html! { span.muted { "never checked" } },
        };
        live_rows.push(vec![
            provider_link(&b.provider),
            html! { (b.mode.as_str()) },
            batch_link(b.id.as_str()),
            badge(b.status.as_str()),
            badge(b.access_status.as_str()),
            last_check,
            reconcile,
        ]);
    }
    let runs = c.app.reconcile_runs_for_host(&h.id, 20).await?;
    let names: HashMap<String, String> = [(h.id.clone(), h.name.clone())].into();
    let statuses = c.app.provider_statuses(Some(&h.id)).await?;

    let caps = match &h.capabilities {
        Some(caps) => {
            let mut rows = vec![
                (
                    "Version",
                    html! { (caps.version.as_deref().unwrap_or("unknown")) },
                ),
                ("Probed", time(&caps.probed_at)),
                ("Summary", caps_summary(caps)),
                ("Max page size", html! { (caps.max_page_size) }),
            ];
            if let AdminAuth::Rejected { reason } = &caps.admin_auth {
                rows.push(("Admin auth", html! { (reason) }));
            }
            facts(&rows)
        }
        None => html! { p.muted { "Not probed yet." } },
    };
    let body = html! {
        // A plain-http host sends its keys in clear (crm_app::hosts::plain_http_warning).
        @for w in &h.warnings {
            p.error role="alert" { "Warning: " (w) }
        }
        (facts(&[
            ("Name", html! { (h.name) }),
            ("Base URL", code(&h.base_url)),
            ("Admin credential", html! { (h.admin_credential) }),
            ("Reconcile schedule", match h.reconcile_every_secs {
                Some(secs) => html! { "every " (secs) " s" },
                None => html! { "none" },
            }),
        ]))
        @if s.role == Role::Admin {
            section aria-labelledby="actions-h" class="actions" {
                h2 id="actions-h" { "Actions" }
                (action_link(&format!("/hosts/{}/probe", seg(&h.name)), "Probe host…"))
                " "
                (action_button(&s, &format!("/hosts/{}/reconcile", seg(&h.name)), "Check for drift", html! {}))
            }
        }
        section aria-labelledby="caps-h" { h2 id="caps-h" { "Capabilities" } (caps) }
        section aria-labelledby="status-h" { h2 id="status-h" { "Provider status" } (status_table(&statuses, false)) }
        section aria-labelledby="funds-h" {
            h2 id="funds-h" { "Funds and quota" }
            p {
                (link(&format!("/hosts/{}/funds", seg(&h.name)), "Funds and quota readings"))
                " of the accounts crm imported here, with their age, source and thresholds."
            }
        }
        section aria-labelledby="live-h" {
            h2 id="live-h" { "Providers live on this host" }
            (table(
                &["Provider", "Mode", "Batch", "Status", "Access", "Last access check", "Reconcile"],
                &live_rows,
                "No provider is live on this host.",
            ))
        }
        section aria-labelledby="runs-h" { h2 id="runs-h" { "Reconcile history" } (runs_table(&runs)) }
        section aria-labelledby="past-h" { h2 id="past-h" { "Past batches" } (batches_table(&past, &names)) }
    };
    Ok(page(&s, &format!("Host {}", h.name), body))
}

pub async fn reconcile_run(
    State(c): State<Console>,
    Viewer(s): Viewer,
    Path(id): Path<String>,
) -> Result<Response> {
    let run = c.app.reconcile_run(&id).await?;
    let names = host_names(&c).await?;
    let host = names
        .get(run.scope.host_id.as_str())
        .cloned()
        .unwrap_or_else(|| run.scope.host_id.to_string());
    let body = html! {
        (facts(&[
            ("Host", host_link(&host)),
            ("Status", badge(run.status.as_str())),
            ("Started", time(&run.started_at)),
            ("Finished", time(&run.finished_at)),
            ("Repaired", yes_no(run.repaired)),
            ("Host requests", html! { (run.host_requests) }),
            ("Error", html! { (run.error.as_deref().unwrap_or("none")) }),
        ]))
        section aria-labelledby="drift-h" { h2 id="drift-h" { "Drift" } (drift_table(&run)) }
        @if s.role == Role::Admin && !run.items.is_empty() { (repair_form(&s, &host, &run)) }
    };
    Ok(page(&s, "Reconcile run", body))
}

/// The repair step after a read-only run: the drift above is the preview.
pub(crate) fn repair_form(s: &Session, host: &str, run: &ReconcileRun) -> maud::Markup {
    maud::html! {
        section aria-labelledby="repair-h" class="actions" {
            h2 id="repair-h" { "Repair" }
            p { "Repair recreates missing objects and restores changed fields of objects carrying crm's marker. It never touches objects without the marker." }
            form method="post" action={ "/hosts/" (seg(host)) "/repair" } class="stack" {
                (crate::view::csrf_field(s))
                @match (&run.scope.batch_id, &run.scope.provider) {
                    (Some(b), _) => { input type="hidden" name="batch" value=(b.as_str()); }
                    (None, Some(p)) => { input type="hidden" name="provider" value=(p.to_string()); }
                    (None, None) => {}
                }
                label.check { input type="checkbox" name="prune" value="on"; " Also delete crm leftovers that no live batch owns (" code { "unmanaged_leftover" } ")" }
                label.check { input type="checkbox" name="clear_unhealthy" value="on"; " Also clear error status of " code { "unhealthy" } " accounts" }
                button type="submit" class="action danger" id="repair" { "Apply repair" }
            }
        }
    }
}
