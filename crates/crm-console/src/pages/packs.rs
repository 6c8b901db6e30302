//! Installed packs and one pack's page.

use super::*;
use crate::html::{badge, esc, facts, link, seg, table, time, yes_no};
use crate::{Console, Result, Viewer};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use std::fmt::Write as _;

pub async fn packs(State(c): State<Console>, Viewer(s): Viewer) -> Result<Response> {
    let rows: Vec<Vec<String>> = c
        .app
        .list_packs()
        .await?
        .iter()
        .map(|p| {
            vec![
                link(
                    &format!(
                        "/packs/{}?version={}",
                        seg(p.manifest.pack_id.as_str()),
                        seg(&p.manifest.version)
                    ),
                    p.manifest.pack_id.as_str(),
                ),
                esc(&p.manifest.version),
                if p.current {
                    badge("current")
                } else {
                    String::new()
                },
                esc(&p.manifest.name),
                p.manifest.providers.len().to_string(),
                esc(&p.origin),
                time(&p.installed_at),
            ]
        })
        .collect();
    let body = table(
        &[
            "Pack",
            "Version",
            "",
            "Name",
            "Providers",
            "Origin",
            "Installed",
        ],
        &rows,
        "No pack installed. Install one with `crm pack install`.",
    );
    Ok(page(&s, "Packs", body))
}

#[derive(Debug, serde::Deserialize)]
pub struct PackQuery {
    #[serde(default)]
    version: Option<String>,
}

pub async fn pack(
    State(c): State<Console>,
    Viewer(s): Viewer,
    Path(pack_id): Path<String>,
    Query(q): Query<PackQuery>,
) -> Result<Response> {
    let p = c
        .app
        .get_pack(&pack_id, q.version.filter(|v| !v.is_empty()))
        .await?;
    let m = &p.manifest;
    let fx: Vec<Vec<String>> = m
        .fx_rates
        .iter()
        .map(|r| {
            vec![
                esc(r.currency.as_str()),
                r.usd_per_unit.to_string(),
                esc(&r.source),
                esc(&r.as_of),
            ]
        })
        .collect();
    let mut providers = String::new();
    for spec in &m.providers {
        let pref = m.provider_ref(spec);
        let _ = write!(
            providers,
            "<h3>{} <span class=\"muted\">{}</span></h3>{}",
            provider_link(&pref),
            esc(&spec.display_name),
            models_table(spec)
        );
    }
    let body = format!(
        "{}<section aria-labelledby=\"fx-h\"><h2 id=\"fx-h\">Exchange rates</h2>{}</section>\
         <section aria-labelledby=\"prov-h\"><h2 id=\"prov-h\">Providers, models and prices</h2>{providers}</section>",
        facts(&[
            ("Name", esc(&m.name)),
            ("Version", esc(&m.version)),
            ("Current", yes_no(p.current).into()),
            ("Description", esc(&m.description)),
            ("Checksum", format!("<code>{}</code>", esc(&p.checksum))),
            ("Origin", esc(&p.origin)),
            ("Installed", time(&p.installed_at)),
        ]),
        table(
            &["Currency", "USD per unit", "Source", "As of"],
            &fx,
            "No exchange rates declared."
        ),
    );
    Ok(page(&s, &format!("Pack {} {}", m.pack_id, m.version), body))
}
