//! A provider's page: spec, status per host, batches, import form, models, pack versions.

use super::*;
use crate::html::{self, action_link, badge, esc, facts, link, seg, table, time, yes_no};
use crate::session::{Role, Session};
use crate::{Console, Result, Viewer};
use axum::extract::{Path, State};
use axum::response::Response;
use crm_app::batches::BatchQuery;
use crm_domain::ProviderRef;
use crm_domain::batch::ImportBatch;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

pub async fn provider(
    State(c): State<Console>,
    Viewer(s): Viewer,
    Path((pack, provider)): Path<(String, String)>,
) -> Result<Response> {
    let pref = ProviderRef::new(pack.as_str(), provider.as_str());
    let spec = c.app.provider_spec(&pref, None).await?;
    let versions: Vec<Vec<String>> = c
        .app
        .list_packs()
        .await?
        .into_iter()
        .filter(|p| p.manifest.pack_id == pref.pack)
        .map(|p| {
            vec![
                link(
                    &format!(
                        "/packs/{}?version={}",
                        seg(p.manifest.pack_id.as_str()),
                        seg(&p.manifest.version)
                    ),
                    &p.manifest.version,
                ),
                if p.current {
                    badge("current")
                } else {
                    String::new()
                },
                yes_no(p.manifest.provider(pref.provider.as_str()).is_some()).into(),
                format!("<code>{}</code>", esc(short(&p.checksum))),
                time(&p.installed_at),
            ]
        })
        .collect();
    let names = host_names(&c).await?;
    let batches = c
        .app
        .list_batches(BatchQuery {
            provider: Some(pref.to_string()),
            ..Default::default()
        })
        .await?;
    let mut by_host: BTreeMap<String, Vec<ImportBatch>> = BTreeMap::new();
    for b in batches {
        let host = names
            .get(b.host_id.as_str())
            .cloned()
            .unwrap_or_else(|| b.host_id.to_string());
        by_host.entry(host).or_default().push(b);
    }
    let mut per_host = String::new();
    for (host, list) in &by_host {
        let verify = if s.role == Role::Admin && list.iter().any(|b| b.status.is_live()) {
            action_link(
                &format!(
                    "/providers/{}/{}/verify?host={}",
                    seg(pref.pack.as_str()),
                    seg(pref.provider.as_str()),
                    seg(host)
                ),
                "Verify access…",
            )
        } else {
            String::new()
        };
        let _ = write!(
            per_host,
            "<h3>On {} {verify}</h3>{}",
            host_link(host),
            batches_table(list, &names).into_string()
        );
    }
    if per_host.is_empty() {
        per_host = "<p class=\"muted\">Not imported on any host yet.</p>".into();
    }
    let mut statuses = c.app.provider_statuses(None).await?;
    statuses.retain(|st| st.provider == pref);
    let import = if s.role == Role::Admin {
        import_form(&s, &pref, &spec, &names)
    } else {
        String::new()
    };
    let body = format!(
        "{}{import}\
         <section aria-labelledby=\"status-h\"><h2 id=\"status-h\">Status per host</h2>{}</section>\
         <section aria-labelledby=\"hosts-h\"><h2 id=\"hosts-h\">Batches per host</h2>{per_host}</section>\
         <section aria-labelledby=\"models-h\"><h2 id=\"models-h\">Models and prices</h2>{}</section>\
         <section aria-labelledby=\"versions-h\"><h2 id=\"versions-h\">Pack versions</h2>{}</section>",
        facts(&[
            ("Name", esc(&spec.display_name)),
            (
                "OpenAI base URL",
                format!("<code>{}</code>", esc(&spec.openai_base_url))
            ),
            (
                "Platform",
                format!(
                    "{} (fallback {})",
                    esc(spec.platform.native.as_str()),
                    esc(spec.platform.fallback.as_str())
                )
            ),
            ("Account mode", esc(spec.account_mode.as_str())),
            ("Smoke-test model", esc(&spec.smoke_test_model)),
            (
                "Access modes",
                esc(&spec
                    .access
                    .modes
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", "))
            ),
        ]),
        status_table(&statuses, true).into_string(),
        // Already-escaped markup from the maud page of packs.
        super::packs::models_table(&spec).into_string(),
        table(
            &[
                "Version",
                "",
                "Declares this provider",
                "Checksum",
                "Installed"
            ],
            &versions,
            "No version installed."
        ),
    );
    Ok(page(&s, &format!("Provider {pref}"), body))
}

pub(crate) fn import_form(
    s: &Session,
    pref: &ProviderRef,
    spec: &crm_domain::spec::ProviderSpec,
    names: &HashMap<String, String>,
) -> String {
    let mut hosts: Vec<&String> = names.values().collect();
    hosts.sort();
    let host_options: String = hosts
        .iter()
        .map(|h| format!("<option value=\"{0}\">{0}</option>", esc(h)))
        .collect();
    let mode_options: String = spec
        .access
        .modes
        .iter()
        .map(|m| format!("<option value=\"{0}\">{0}</option>", m.as_str()))
        .collect();
    format!(
        "<section aria-labelledby=\"import-h\" class=\"actions\"><h2 id=\"import-h\">Import onto a host</h2>\
         <form method=\"post\" action=\"/providers/{}/{}/preview\" class=\"stack\">{}\
         <label for=\"import-host\">Host</label><select id=\"import-host\" name=\"host\" required>{host_options}</select>\
         <label for=\"import-mode\">Access mode</label><select id=\"import-mode\" name=\"mode\">{mode_options}</select>\
         <label for=\"import-keys\">Upstream keys, one per line</label>\
         <textarea id=\"import-keys\" name=\"keys\" rows=\"3\" autocomplete=\"off\" spellcheck=\"false\" required></textarea>\
         <p class=\"muted\">Keys are held in memory until you confirm, then used and forgotten; crm stores only fingerprints.</p>\
         <button type=\"submit\" class=\"action\" id=\"preview\">Preview import</button></form></section>",
        seg(pref.pack.as_str()),
        seg(pref.provider.as_str()),
        html::csrf_field(s)
    )
}
