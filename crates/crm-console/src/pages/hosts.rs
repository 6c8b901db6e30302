//! A host's page, and one reconcile run with its repair form.

use super::*;
use crate::html::{action_button, action_link, badge, esc, facts, seg, table, time, yes_no};
use crate::session::{Role, Session};
use crate::{Console, Result, Viewer};
use axum::extract::{Path, State};
use axum::response::Response;
use crm_app::HostView;
use crm_app::batches::BatchQuery;
use crm_domain::host::AdminAuth;
use crm_domain::reconcile::ReconcileRun;
use std::collections::HashMap;

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
    let mut live_rows = Vec::new();
    let mut past = Vec::new();
    for b in batches {
        if !b.status.is_live() {
            past.push(b);
            continue;
        }
        let detail = c.app.batch_detail(b.id.as_str()).await?;
        let reconcile = detail
            .latest_reconcile
            .as_ref()
            .map(|r| format!("{} {}", badge(r.status.as_str()), run_link(r)))
            .unwrap_or_else(|| "<span class=\"muted\">not reconciled</span>".into());
        let last_check = detail
            .access_checks
            .last()
            .map(|ch| {
                format!(
                    "{}{}",
                    badge(ch.verdict.as_str()),
                    ch.failure_class
                        .map(|f| format!(" {}", badge(f.as_str())))
                        .unwrap_or_default()
                )
            })
            .unwrap_or_else(|| "<span class=\"muted\">never checked</span>".into());
        live_rows.push(vec![
            provider_link(&b.provider),
            esc(b.mode.as_str()),
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

    let actions = if s.role == Role::Admin {
        format!(
            "<section aria-labelledby=\"actions-h\" class=\"actions\"><h2 id=\"actions-h\">Actions</h2>{} {}</section>",
            action_link(&format!("/hosts/{}/probe", seg(&h.name)), "Probe host…"),
            action_button(
                &s,
                &format!("/hosts/{}/reconcile", seg(&h.name)),
                "Check for drift",
                ""
            ),
        )
    } else {
        String::new()
    };
    let caps = match &h.capabilities {
        Some(caps) => {
            let mut rows = vec![
                ("Version", esc(caps.version.as_deref().unwrap_or("unknown"))),
                ("Probed", time(&caps.probed_at)),
                ("Summary", caps_summary(caps).into_string()),
                ("Max page size", caps.max_page_size.to_string()),
            ];
            if let AdminAuth::Rejected { reason } = &caps.admin_auth {
                rows.push(("Admin auth", esc(reason)));
            }
            facts(&rows)
        }
        None => "<p class=\"muted\">Not probed yet.</p>".into(),
    };
    let body = format!(
        "{}{actions}\
         <section aria-labelledby=\"caps-h\"><h2 id=\"caps-h\">Capabilities</h2>{caps}</section>\
         <section aria-labelledby=\"status-h\"><h2 id=\"status-h\">Provider status</h2>{}</section>\
         <section aria-labelledby=\"live-h\"><h2 id=\"live-h\">Providers live on this host</h2>{}</section>\
         <section aria-labelledby=\"runs-h\"><h2 id=\"runs-h\">Reconcile history</h2>{}</section>\
         <section aria-labelledby=\"past-h\"><h2 id=\"past-h\">Past batches</h2>{}</section>",
        facts(&[
            ("Name", esc(&h.name)),
            ("Base URL", format!("<code>{}</code>", esc(&h.base_url))),
            ("Admin credential", esc(&h.admin_credential)),
            (
                "Reconcile schedule",
                h.reconcile_every_secs
                    .map(|s| format!("every {s} s"))
                    .unwrap_or_else(|| "none".into())
            ),
        ]),
        status_table(&statuses, false).into_string(),
        table(
            &[
                "Provider",
                "Mode",
                "Batch",
                "Status",
                "Access",
                "Last access check",
                "Reconcile"
            ],
            &live_rows,
            "No provider is live on this host."
        ),
        runs_table(&runs).into_string(),
        batches_table(&past, &names).into_string(),
    );
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
    let repair = if s.role == Role::Admin && !run.items.is_empty() {
        repair_form(&s, &host, &run).into_string()
    } else {
        String::new()
    };
    let body = format!(
        "{}<section aria-labelledby=\"drift-h\"><h2 id=\"drift-h\">Drift</h2>{}</section>{repair}",
        facts(&[
            ("Host", host_link(&host)),
            ("Status", badge(run.status.as_str())),
            ("Started", time(&run.started_at)),
            ("Finished", time(&run.finished_at)),
            ("Repaired", yes_no(run.repaired).into()),
            ("Host requests", run.host_requests.to_string()),
            ("Error", esc(run.error.as_deref().unwrap_or("none"))),
        ]),
        drift_table(&run).into_string(),
    );
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
