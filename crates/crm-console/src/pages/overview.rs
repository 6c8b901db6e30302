//! The overview: hosts, batch counts by status, providers.

use super::caps_summary;
use crate::view::{badge, host_link, link, opt_time, page, provider_link, run_link, table};
use crate::{Console, Result, Viewer};
use axum::extract::State;
use axum::response::Response;
use crm_app::batches::BatchQuery;
use crm_domain::BatchStatus;
use maud::{Markup, html};
use std::collections::BTreeMap;

pub async fn overview(State(c): State<Console>, Viewer(s): Viewer) -> Result<Response> {
    let hosts = c.app.list_hosts().await?;
    let mut host_rows: Vec<Vec<Markup>> = Vec::new();
    for h in &hosts {
        let latest = c.app.reconcile_runs_for_host(&h.id, 1).await?;
        let drift = match latest.first() {
            Some(r) => html! {
                (badge(r.status.as_str())) " " (r.items.len()) " drift item"
                @if r.items.len() != 1 { "s" }
                " " span.muted { "(" (run_link(r)) ")" }
            },
            None => html! { span.muted { "not reconciled yet" } },
        };
        host_rows.push(vec![
            host_link(&h.name),
            html! { (h.version.as_deref().unwrap_or("unknown")) },
            match &h.capabilities {
                Some(caps) => caps_summary(caps),
                None => html! { span.muted { "not probed" } },
            },
            opt_time(h.probed_at.as_ref()),
            drift,
        ]);
    }
    let batches = c.app.list_batches(BatchQuery::default()).await?;
    let mut counts: BTreeMap<BatchStatus, usize> = BTreeMap::new();
    for b in &batches {
        *counts.entry(b.status).or_default() += 1;
    }
    let count_rows: Vec<Vec<Markup>> = BatchStatus::ALL
        .iter()
        .filter_map(|st| {
            let n = counts.get(st).copied().unwrap_or(0);
            (n > 0).then(|| {
                vec![
                    link(&format!("/batches?status={}", st.as_str()), st.as_str()),
                    html! { (n) },
                ]
            })
        })
        .collect();
    let providers = c.app.list_providers(None).await?;
    let provider_rows: Vec<Vec<Markup>> = providers
        .iter()
        .map(|p| {
            let modes = p
                .modes
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                provider_link(&p.provider),
                html! { (p.display_name) },
                html! { (p.pack_version) },
                html! { (p.models) },
                html! { (modes) },
            ]
        })
        .collect();

    let body = html! {
        section aria-labelledby="hosts-h" {
            h2 id="hosts-h" { "Hosts" }
            (table(
                &["Host", "Version", "Capabilities", "Last probe", "Drift"],
                &host_rows,
                "No hosts registered. Add one with `crm host add`.",
            ))
        }
        section aria-labelledby="batches-h" {
            h2 id="batches-h" { "Batches by status" }
            (table(&["Status", "Batches"], &count_rows, "No batches yet."))
            p { (link("/batches", "All batches")) }
        }
        section aria-labelledby="providers-h" {
            h2 id="providers-h" { "Providers" }
            (table(
                &["Provider", "Name", "Pack version", "Models", "Modes"],
                &provider_rows,
                "No pack installed. Install one with `crm pack install`.",
            ))
        }
    };
    Ok(page(&s, "Overview", body))
}
