//! The overview: hosts, batch counts by status, providers.

use super::*;
use crate::html::{badge, esc, link, opt_time, table};
use crate::{Console, Result, Viewer};
use axum::extract::State;
use axum::response::Response;
use crm_app::batches::BatchQuery;
use crm_domain::BatchStatus;
use std::collections::BTreeMap;

pub async fn overview(State(c): State<Console>, Viewer(s): Viewer) -> Result<Response> {
    let hosts = c.app.list_hosts().await?;
    let mut host_rows = Vec::new();
    for h in &hosts {
        let latest = c.app.reconcile_runs_for_host(&h.id, 1).await?;
        let drift = match latest.first() {
            Some(r) => format!(
                "{} {} drift item{} <span class=\"muted\">({})</span>",
                badge(r.status.as_str()),
                r.items.len(),
                if r.items.len() == 1 { "" } else { "s" },
                run_link(r)
            ),
            None => "<span class=\"muted\">not reconciled yet</span>".into(),
        };
        host_rows.push(vec![
            host_link(&h.name),
            esc(h.version.as_deref().unwrap_or("unknown")),
            h.capabilities
                .as_ref()
                .map(caps_summary)
                .unwrap_or_else(|| "<span class=\"muted\">not probed</span>".into()),
            opt_time(h.probed_at.as_ref()),
            drift,
        ]);
    }
    let batches = c.app.list_batches(BatchQuery::default()).await?;
    let mut counts: BTreeMap<BatchStatus, usize> = BTreeMap::new();
    for b in &batches {
        *counts.entry(b.status).or_default() += 1;
    }
    let count_rows: Vec<Vec<String>> = BatchStatus::ALL
        .iter()
        .map(|st| {
            let n = counts.get(st).copied().unwrap_or(0);
            vec![
                link(&format!("/batches?status={}", st.as_str()), st.as_str()),
                n.to_string(),
            ]
        })
        .filter(|row| row[1] != "0")
        .collect();
    let providers = c.app.list_providers(None).await?;
    let provider_rows: Vec<Vec<String>> = providers
        .iter()
        .map(|p| {
            vec![
                provider_link(&p.provider),
                esc(&p.display_name),
                esc(&p.pack_version),
                p.models.to_string(),
                esc(&p
                    .modes
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")),
            ]
        })
        .collect();

    let body = format!(
        "<section aria-labelledby=\"hosts-h\"><h2 id=\"hosts-h\">Hosts</h2>{}</section>\
         <section aria-labelledby=\"batches-h\"><h2 id=\"batches-h\">Batches by status</h2>{}\
         <p>{}</p></section>\
         <section aria-labelledby=\"providers-h\"><h2 id=\"providers-h\">Providers</h2>{}</section>",
        table(
            &["Host", "Version", "Capabilities", "Last probe", "Drift"],
            &host_rows,
            "No hosts registered. Add one with `crm host add`."
        ),
        table(&["Status", "Batches"], &count_rows, "No batches yet."),
        link("/batches", "All batches"),
        table(
            &["Provider", "Name", "Pack version", "Models", "Modes"],
            &provider_rows,
            "No pack installed. Install one with `crm pack install`."
        ),
    );
    Ok(page(&s, "Overview", body))
}
