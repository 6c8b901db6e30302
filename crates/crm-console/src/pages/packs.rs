//! Installed packs and one pack's page.

use crate::view::{badge, code, facts, link, pack_version_path, page, provider_link, table, time};
use crate::{Console, Result, Viewer};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use crm_domain::spec::ProviderSpec;
use maud::{Markup, html};

fn yes_no(v: bool) -> Markup {
    html! { (crate::html::yes_no(v)) }
}

pub async fn packs(State(c): State<Console>, Viewer(s): Viewer) -> Result<Response> {
    let rows: Vec<Vec<Markup>> = c
        .app
        .list_packs()
        .await?
        .iter()
        .map(|p| {
            vec![
                link(
                    &pack_version_path(p.manifest.pack_id.as_str(), &p.manifest.version),
                    p.manifest.pack_id.as_str(),
                ),
                html! { (p.manifest.version) },
                html! { @if p.current { (badge("current")) } },
                html! { (p.manifest.name) },
                html! { (p.manifest.providers.len()) },
                html! { (p.origin) },
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
    let fx: Vec<Vec<Markup>> = m
        .fx_rates
        .iter()
        .map(|r| {
            vec![
                html! { (r.currency.as_str()) },
                html! { (r.usd_per_unit.to_string()) },
                html! { (r.source) },
                html! { (r.as_of) },
            ]
        })
        .collect();
    let body = html! {
        (facts(&[
            ("Name", html! { (m.name) }),
            ("Version", html! { (m.version) }),
            ("Current", yes_no(p.current)),
            ("Description", html! { (m.description) }),
            ("Checksum", code(&p.checksum)),
            ("Origin", html! { (p.origin) }),
            ("Installed", time(&p.installed_at)),
        ]))
        section aria-labelledby="fx-h" {
            h2 id="fx-h" { "Exchange rates" }
            (table(&["Currency", "USD per unit", "Source", "As of"], &fx, "No exchange rates declared."))
        }
        section aria-labelledby="prov-h" {
            h2 id="prov-h" { "Providers, models and prices" }
            @for spec in &m.providers {
                h3 { (provider_link(&m.provider_ref(spec))) " " span.muted { (spec.display_name) } }
                (models_table(spec))
            }
        }
    };
    Ok(page(&s, &format!("Pack {} {}", m.pack_id, m.version), body))
}

/// A provider's models and prices (also on the provider's page).
pub(crate) fn models_table(spec: &ProviderSpec) -> Markup {
    let opt = |v: Option<f64>| html! { @if let Some(x) = v { (x.to_string()) } };
    let rows: Vec<Vec<Markup>> = spec
        .models
        .iter()
        .map(|m| {
            vec![
                code(&m.name),
                code(&m.upstream_name),
                html! { (m.price.currency.as_str()) },
                html! { (m.price.unit.as_str()) },
                html! { (m.price.input.to_string()) },
                html! { (m.price.output.to_string()) },
                opt(m.price.cache_read),
                opt(m.price.cache_write),
                html! { (m.price.source) },
                html! { (m.price.as_of) },
            ]
        })
        .collect();
    table(
        &[
            "Model",
            "Upstream name",
            "Currency",
            "Unit",
            "Input",
            "Output",
            "Cache read",
            "Cache write",
            "Source",
            "As of",
        ],
        &rows,
        "No models.",
    )
}
