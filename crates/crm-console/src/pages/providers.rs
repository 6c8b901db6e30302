//! A provider's page: spec, status per host, batches, import form, models, pack versions.

use super::{batches_table, host_names, short, status_table};
use crate::html::seg;
use crate::session::{Role, Session};
use crate::view::{
    action_link, badge, code, csrf_field, facts, host_link, link, pack_version_path, page,
    provider_path, table, time,
};
use crate::{Console, Result, Viewer};
use axum::extract::{Path, State};
use axum::response::Response;
use crm_app::batches::BatchQuery;
use crm_domain::ProviderRef;
use crm_domain::batch::ImportBatch;
use maud::{Markup, html};
use std::collections::{BTreeMap, HashMap};

pub async fn provider(
    State(c): State<Console>,
    Viewer(s): Viewer,
    Path((pack, provider)): Path<(String, String)>,
) -> Result<Response> {
    let pref = ProviderRef::new(pack.as_str(), provider.as_str());
    let spec = c.app.provider_spec(&pref, None).await?;
    let versions: Vec<Vec<Markup>> = c
        .app
        .list_packs()
        .await?
        .into_iter()
        .filter(|p| p.manifest.pack_id == pref.pack)
        .map(|p| {
            vec![
                link(
                    &pack_version_path(p.manifest.pack_id.as_str(), &p.manifest.version),
                    &p.manifest.version,
                ),
                html! { @if p.current { (badge("current")) } },
                html! { (crate::html::yes_no(p.manifest.provider(pref.provider.as_str()).is_some())) },
                code(short(&p.checksum)),
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
    let verify_href = |host: &str| format!("{}/verify?host={}", provider_path(&pref), seg(host));
    let mut statuses = c.app.provider_statuses(None).await?;
    statuses.retain(|st| st.provider == pref);
    let modes = spec
        .access
        .modes
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let body = html! {
        (facts(&[
            ("Name", html! { (spec.display_name) }),
            ("OpenAI base URL", code(&spec.openai_base_url)),
            (
                "Platform",
                html! { (spec.platform.native.as_str()) " (fallback " (spec.platform.fallback.as_str()) ")" },
            ),
            ("Account mode", html! { (spec.account_mode.as_str()) }),
            ("Smoke-test model", html! { (spec.smoke_test_model) }),
            ("Access modes", html! { (modes) }),
        ]))
        @if s.role == Role::Admin { (import_form(&s, &pref, &spec, &names)) }
        section aria-labelledby="status-h" {
            h2 id="status-h" { "Status per host" }
            (status_table(&statuses, true))
        }
        section aria-labelledby="hosts-h" {
            h2 id="hosts-h" { "Batches per host" }
            @for (host, list) in &by_host {
                h3 {
                    "On " (host_link(host)) " "
                    @if s.role == Role::Admin && list.iter().any(|b| b.status.is_live()) {
                        (action_link(&verify_href(host), "Verify access…"))
                    }
                }
                (batches_table(list, &names))
            }
            @if by_host.is_empty() { p.muted { "Not imported on any host yet." } }
        }
        section aria-labelledby="models-h" {
            h2 id="models-h" { "Models and prices" }
            (super::packs::models_table(&spec))
        }
        section aria-labelledby="versions-h" {
            h2 id="versions-h" { "Pack versions" }
            (table(
                &["Version", "", "Declares this provider", "Checksum", "Installed"],
                &versions,
                "No version installed.",
            ))
        }
    };
    Ok(page(&s, &format!("Provider {pref}"), body))
}

fn import_form(
    s: &Session,
    pref: &ProviderRef,
    spec: &crm_domain::spec::ProviderSpec,
    names: &HashMap<String, String>,
) -> Markup {
    let mut hosts: Vec<&String> = names.values().collect();
    hosts.sort();
    let action = format!("{}/preview", provider_path(pref));
    html! {
        section aria-labelledby="import-h" class="actions" {
            h2 id="import-h" { "Import onto a host" }
            form method="post" action=(action) class="stack" {
                (csrf_field(s))
                label for="import-host" { "Host" }
                select id="import-host" name="host" required {
                    @for h in &hosts { option value=(h) { (h) } }
                }
                label for="import-mode" { "Access mode" }
                select id="import-mode" name="mode" {
                    @for m in &spec.access.modes { option value=(m.as_str()) { (m.as_str()) } }
                }
                label for="import-monitor" { "Host-side channel monitor" }
                select id="import-monitor" name="monitor" {
                    option value="" { "the pack's default (" (if spec.funds.monitor { "on" } else { "off" }) ")" }
                    option value="true" { "create one (--monitor)" }
                    option value="false" { "none (--no-monitor)" }
                }
                label for="import-keys" { "Upstream keys, one per line" }
                textarea id="import-keys" name="keys" rows="3" autocomplete="off" spellcheck="false" required {}
                p.muted { "Keys are held in memory until you confirm, then used and forgotten; crm stores only fingerprints." }
                button type="submit" class="action" id="preview" { "Preview import" }
            }
        }
    }
}
