//! The read-only pages: overview, host, provider, batch, pack, reconcile
//! run, operation and audit log. Each gathers data through `crm-app` use
//! cases and renders it; action controls appear only for admin sessions
//! (the action handlers refuse read-only sessions anyway).

use crate::html::{
    self, PageOpts, action_button, action_link, badge, esc, facts, link, opt_time, seg, table,
    time, yes_no,
};
use crate::session::{Role, Session};
use crate::{Console, Result, Viewer};
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use crm_app::HostView;
use crm_app::batches::BatchQuery;
use crm_app::status::ProviderStatusView;
use crm_domain::access::AccessCheck;
use crm_domain::batch::ImportBatch;
use crm_domain::host::{AdminAuth, Capabilities};
use crm_domain::ops::Operation;
use crm_domain::plan::{FieldChange, Plan};
use crm_domain::ports::ReconcileRepo;
use crm_domain::reconcile::ReconcileRun;
use crm_domain::{BatchStatus, OperationKind, OperationStatus, ProviderRef};
use std::collections::{BTreeMap, HashMap};
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
fn short(checksum: &str) -> &str {
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

fn run_link(run: &ReconcileRun) -> String {
    link(
        &format!("/reconcile-runs/{}", seg(run.id.as_str())),
        &run.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

/// Host id -> name, for tables that show batches of several hosts.
async fn host_names(c: &Console) -> Result<HashMap<String, String>> {
    Ok(c.app
        .list_hosts()
        .await?
        .into_iter()
        .map(|h| (h.id, h.name))
        .collect())
}

fn caps_summary(caps: &Capabilities) -> String {
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
    let mut out = String::from("<ul class=\"tags\">");
    for t in tags {
        let _ = write!(out, "<li>{}</li>", esc(&t));
    }
    out.push_str("</ul>");
    out
}

fn changes_text(changes: &[FieldChange]) -> String {
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

fn runs_table(runs: &[ReconcileRun]) -> String {
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

fn batches_table(batches: &[ImportBatch], names: &HashMap<String, String>) -> String {
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
fn status_table(statuses: &[ProviderStatusView], by_host: bool) -> String {
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

fn checks_table(checks: &[AccessCheck]) -> String {
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

// ---------------------------------------------------------------- overview

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

// ---------------------------------------------------------------- host

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
                ("Summary", caps_summary(caps)),
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
        status_table(&statuses, false),
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
        runs_table(&runs),
        batches_table(&past, &names),
    );
    Ok(page(&s, &format!("Host {}", h.name), body))
}

// ---------------------------------------------------------------- provider

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
            batches_table(list, &names)
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
        status_table(&statuses, true),
        models_table(&spec),
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

fn import_form(
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

fn models_table(spec: &crm_domain::spec::ProviderSpec) -> String {
    let rows: Vec<Vec<String>> = spec
        .models
        .iter()
        .map(|m| {
            let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
            vec![
                format!("<code>{}</code>", esc(&m.name)),
                format!("<code>{}</code>", esc(&m.upstream_name)),
                esc(m.price.currency.as_str()),
                esc(m.price.unit.as_str()),
                m.price.input.to_string(),
                m.price.output.to_string(),
                opt(m.price.cache_read),
                opt(m.price.cache_write),
                esc(&m.price.source),
                esc(&m.price.as_of),
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

// ---------------------------------------------------------------- batches

#[derive(Debug, serde::Deserialize)]
pub struct BatchListQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    provider: Option<String>,
}

pub async fn batches(
    State(c): State<Console>,
    Viewer(s): Viewer,
    Query(q): Query<BatchListQuery>,
) -> Result<Response> {
    let nonempty = |v: Option<String>| v.filter(|x| !x.is_empty());
    let filter = BatchQuery {
        status: nonempty(q.status),
        host: nonempty(q.host),
        provider: nonempty(q.provider),
        limit: Some(500),
    };
    let what = [
        filter.status.as_ref().map(|v| format!("status {v}")),
        filter.host.as_ref().map(|v| format!("host {v}")),
        filter.provider.as_ref().map(|v| format!("provider {v}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    let list = c.app.list_batches(filter).await?;
    let names = host_names(&c).await?;
    let body = format!(
        "{}{}",
        if what.is_empty() {
            String::new()
        } else {
            format!(
                "<p>Showing batches with {}. {}</p>",
                esc(&what),
                link("/batches", "Show all")
            )
        },
        batches_table(&list, &names)
    );
    Ok(page(&s, "Batches", body))
}

pub async fn batch(
    State(c): State<Console>,
    Viewer(s): Viewer,
    Path(id): Path<String>,
) -> Result<Response> {
    let d = c.app.batch_detail(&id).await?;
    let b = &d.batch;
    let runs = c
        .app
        .store()
        .runs_for_batch(&b.id, 20)
        .await
        .map_err(crm_app::AppError::from)?;
    let keys = b
        .upstream_keys
        .iter()
        .map(|f| format!("<code>{}</code>", esc(&f.to_string())))
        .collect::<Vec<_>>()
        .join(", ");
    let actions = if s.role == Role::Admin {
        let mut a = String::new();
        if b.status.is_live() {
            a.push_str(&action_link(
                &format!("/batches/{}/rollback", seg(b.id.as_str())),
                "Roll back…",
            ));
            a.push(' ');
            a.push_str(&action_link(
                &format!(
                    "/providers/{}/{}/verify?host={}",
                    seg(b.provider.pack.as_str()),
                    seg(b.provider.provider.as_str()),
                    seg(&d.host_name)
                ),
                "Verify access…",
            ));
            a.push(' ');
            a.push_str(&action_button(
                &s,
                &format!("/hosts/{}/reconcile", seg(&d.host_name)),
                "Check this batch for drift",
                &format!(
                    "<input type=\"hidden\" name=\"batch\" value=\"{}\">",
                    esc(b.id.as_str())
                ),
            ));
        }
        if b.status.is_resumable() {
            a.push_str(&resume_form(&s, b.id.as_str()));
        }
        if a.is_empty() {
            String::new()
        } else {
            format!(
                "<section aria-labelledby=\"actions-h\" class=\"actions\"><h2 id=\"actions-h\">Actions</h2>{a}</section>"
            )
        }
    } else {
        String::new()
    };
    let resources: Vec<Vec<String>> = d
        .resources
        .iter()
        .map(|r| {
            vec![
                esc(r.kind.as_str()),
                r.host_object_id.to_string(),
                format!("<code>{}</code>", esc(&r.name)),
                format!("<code>{}</code>", esc(&r.natural_key)),
                esc(r.origin.as_str()),
                badge(r.state.as_str()),
                r.journal_seq.to_string(),
            ]
        })
        .collect();
    let journal: Vec<Vec<String>> = d
        .journal
        .iter()
        .map(|j| {
            vec![
                j.seq.to_string(),
                esc(j.op.as_str()),
                esc(j.kind.as_str()),
                format!("<code>{}</code>", esc(&j.name)),
                j.host_object_id.map(|i| i.to_string()).unwrap_or_default(),
                badge(j.state.as_str()),
                esc(j.detail.as_deref().unwrap_or("")),
                time(&j.created_at),
            ]
        })
        .collect();
    let body = format!(
        "{}{actions}\
         <section aria-labelledby=\"plan-h\"><h2 id=\"plan-h\">Plan</h2>{}</section>\
         <section aria-labelledby=\"res-h\"><h2 id=\"res-h\">Managed resources</h2>\
         <p>Objects carry the ownership marker <code>{}</code> where the host has a notes field.</p>{}</section>\
         <section aria-labelledby=\"journal-h\"><h2 id=\"journal-h\">Journal</h2>{}</section>\
         <section aria-labelledby=\"checks-h\"><h2 id=\"checks-h\">Access checks</h2>{}</section>\
         <section aria-labelledby=\"runs-h\"><h2 id=\"runs-h\">Reconcile runs</h2>{}</section>",
        facts(&[
            ("Provider", provider_link(&b.provider)),
            ("Host", host_link(&d.host_name)),
            ("Mode", esc(b.mode.as_str())),
            (
                "Status",
                format!(
                    "<span id=\"batch-status\">{}</span>{}",
                    badge(b.status.as_str()),
                    b.status_reason
                        .as_deref()
                        .map(|r| format!(" {}", esc(r)))
                        .unwrap_or_default()
                )
            ),
            (
                "Access",
                format!(
                    "<span id=\"access-status\">{}</span>",
                    badge(b.access_status.as_str())
                )
            ),
            (
                "Pack",
                format!(
                    "{} <code>{}</code>",
                    esc(&b.pack_version),
                    esc(short(&b.pack_checksum))
                )
            ),
            ("Upstream keys", keys),
            ("Created", time(&b.created_at)),
            ("Updated", time(&b.updated_at)),
        ]),
        plan_table(&b.plan),
        esc(&crm_domain::ownership::marker(&b.id)),
        table(
            &[
                "Kind",
                "Host id",
                "Name",
                "Natural key",
                "Origin",
                "State",
                "Journal seq"
            ],
            &resources,
            "No resources."
        ),
        table(
            &[
                "Seq",
                "Operation",
                "Kind",
                "Name",
                "Host id",
                "State",
                "Detail",
                "Written"
            ],
            &journal,
            "The journal is empty."
        ),
        checks_table(&d.access_checks),
        runs_table(&runs),
    );
    Ok(page(&s, &format!("Batch {}", b.id), body))
}

/// Finishing a batch that stopped part-way. Upstream keys are never stored,
/// so accounts still to be created need their keys again.
fn resume_form(s: &Session, batch: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/batches/{}/resume\" class=\"stack resume\">{}\
         <p>This batch stopped before it finished. Resuming adopts what the journal shows was created \
         (looked up by natural key, never duplicated) and carries on from there.</p>\
         <label for=\"resume-keys\">Upstream keys again, one per line (needed only for accounts not created yet)</label>\
         <textarea id=\"resume-keys\" name=\"keys\" rows=\"3\" autocomplete=\"off\" spellcheck=\"false\"></textarea>\
         <button type=\"submit\" class=\"action\" id=\"resume\">Resume batch</button></form>",
        seg(batch),
        html::csrf_field(s)
    )
}

// ---------------------------------------------------------------- reconcile run

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
        repair_form(&s, &host, &run)
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
        drift_table(&run),
    );
    Ok(page(&s, "Reconcile run", body))
}

/// The repair step after a read-only run: the drift above is the preview.
pub(crate) fn repair_form(s: &Session, host: &str, run: &ReconcileRun) -> String {
    let scope = match (&run.scope.batch_id, &run.scope.provider) {
        (Some(b), _) => format!(
            "<input type=\"hidden\" name=\"batch\" value=\"{}\">",
            esc(b.as_str())
        ),
        (None, Some(p)) => format!(
            "<input type=\"hidden\" name=\"provider\" value=\"{}\">",
            esc(&p.to_string())
        ),
        (None, None) => String::new(),
    };
    format!(
        "<section aria-labelledby=\"repair-h\" class=\"actions\"><h2 id=\"repair-h\">Repair</h2>\
         <p>Repair recreates missing objects and restores changed fields of objects carrying crm's marker. \
         It never touches objects without the marker.</p>\
         <form method=\"post\" action=\"/hosts/{}/repair\" class=\"stack\">{}{scope}\
         <label class=\"check\"><input type=\"checkbox\" name=\"prune\" value=\"on\"> Also delete crm leftovers that no live batch owns (<code>unmanaged_leftover</code>)</label>\
         <label class=\"check\"><input type=\"checkbox\" name=\"clear_unhealthy\" value=\"on\"> Also clear error status of <code>unhealthy</code> accounts</label>\
         <button type=\"submit\" class=\"action danger\" id=\"repair\">Apply repair</button></form></section>",
        seg(host),
        html::csrf_field(s)
    )
}

// ---------------------------------------------------------------- packs

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

// ---------------------------------------------------------------- audit

pub async fn audit(State(c): State<Console>, Viewer(s): Viewer) -> Result<Response> {
    let rows: Vec<Vec<String>> = c
        .app
        .audit_log(300)
        .await?
        .iter()
        .map(|e| {
            vec![
                time(&e.at),
                esc(&e.actor),
                esc(&e.action),
                esc(&e.target),
                badge(&e.outcome),
                format!(
                    "<code>{}</code>",
                    esc(e.request_id.as_deref().unwrap_or(""))
                ),
                esc(e.detail.as_deref().unwrap_or("")),
            ]
        })
        .collect();
    let body = table(
        &[
            "When", "Who", "Action", "Target", "Outcome", "Request", "Detail",
        ],
        &rows,
        "Nothing recorded yet.",
    );
    Ok(page(&s, "Audit log", body))
}

// ---------------------------------------------------------------- operations

pub async fn operation(
    State(c): State<Console>,
    Viewer(s): Viewer,
    Path(id): Path<String>,
) -> Result<Response> {
    let op = c.app.operation(&id).await?;
    let running = matches!(
        op.status,
        OperationStatus::Running | OperationStatus::Queued
    );
    let progress: String = op
        .progress
        .iter()
        .map(|l| format!("<li>{}</li>", esc(l)))
        .collect();
    let body = format!(
        "{}<section aria-labelledby=\"prog-h\"><h2 id=\"prog-h\">Progress</h2><ol class=\"progress\" aria-live=\"polite\">{progress}</ol>{}</section>{}",
        facts(&[
            ("Kind", esc(op.kind.as_str())),
            ("Target", esc(&op.target)),
            (
                "Status",
                format!(
                    "<span id=\"op-status\">{}</span>",
                    badge(op.status.as_str())
                )
            ),
            ("Started", time(&op.created_at)),
            ("Updated", time(&op.updated_at)),
        ]),
        if running {
            "<p class=\"muted\">This page refreshes every two seconds until the operation ends.</p>"
        } else {
            ""
        },
        outcome(&s, &op),
    );
    Ok(Html(html::layout(
        Some(&s),
        &format!("Operation: {}", op.kind),
        &body,
        PageOpts {
            refresh_secs: running.then_some(2),
        },
    ))
    .into_response())
}

/// What a finished operation produced, with links to where to look next.
fn outcome(s: &Session, op: &Operation) -> String {
    let mut out = String::new();
    if let Some(e) = &op.error {
        let _ = write!(out, "<p class=\"error\" role=\"alert\">{}</p>", esc(e));
    }
    let Some(r) = &op.result else {
        return out;
    };
    let str_at = |ptr: &str| r.pointer(ptr).and_then(|v| v.as_str()).map(str::to_owned);
    out.push_str("<section aria-labelledby=\"res-h\"><h2 id=\"res-h\">Result</h2>");
    match op.kind {
        OperationKind::Import | OperationKind::Resume => {
            if let Some(id) = str_at("/batch/id") {
                let _ = write!(
                    out,
                    "{}",
                    facts(&[
                        ("Batch", batch_link(&id)),
                        (
                            "Batch status",
                            badge(&str_at("/batch/status").unwrap_or_default())
                        ),
                        (
                            "Access",
                            badge(&str_at("/access_status").unwrap_or_default())
                        ),
                        (
                            "Access check",
                            str_at("/access_check/verdict")
                                .map(|v| badge(&v))
                                .unwrap_or_else(|| "not run".into())
                        ),
                    ])
                );
            }
            if let Some(plan) = r
                .get("plan")
                .and_then(|p| serde_json::from_value::<Plan>(p.clone()).ok())
            {
                let _ = write!(out, "<h3>Plan applied</h3>{}", plan_table(&plan));
            }
        }
        OperationKind::Rollback => {
            let list = |key: &str| -> String {
                r.pointer(&format!("/report/{key}"))
                    .and_then(|v| v.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str())
                            .map(|x| format!("<li>{}</li>", esc(x)))
                            .collect::<String>()
                    })
                    .filter(|s| !s.is_empty())
                    .map(|s| format!("<ul>{s}</ul>"))
                    .unwrap_or_else(|| "none".into())
            };
            let batch = str_at("/report/batch").unwrap_or_default();
            let _ = write!(
                out,
                "{}",
                facts(&[
                    ("Batch", batch_link(&batch)),
                    (
                        "Batch status",
                        badge(&str_at("/report/status").unwrap_or_default())
                    ),
                    ("Deleted", list("deleted")),
                    ("Kept", list("kept")),
                    ("Left behind", list("left")),
                    (
                        "Access key refused afterwards",
                        match r.get("key_refusal").and_then(|v| v.as_str()) {
                            Some(v) => badge(v),
                            None => "no access closure".into(),
                        }
                    ),
                ])
            );
        }
        OperationKind::Reconcile => {
            if let Some(run) = r
                .get("run")
                .and_then(|v| serde_json::from_value::<ReconcileRun>(v.clone()).ok())
            {
                let host = str_at("/host").unwrap_or_default();
                let _ = write!(
                    out,
                    "{}{}",
                    facts(&[
                        ("Status", badge(run.status.as_str())),
                        ("Run", run_link(&run)),
                        ("Repaired", yes_no(run.repaired).into()),
                    ]),
                    drift_table(&run)
                );
                if let Some(plan) = r
                    .get("repair_plan")
                    .and_then(|p| serde_json::from_value::<Plan>(p.clone()).ok())
                {
                    let _ = write!(out, "<h3>Repair plan</h3>{}", plan_table(&plan));
                }
                if s.role == Role::Admin && !run.repaired && !run.items.is_empty() {
                    out.push_str(&repair_form(s, &host, &run));
                }
            }
        }
        OperationKind::Probe => {
            let name = str_at("/name").unwrap_or_default();
            let _ = write!(
                out,
                "{}",
                facts(&[
                    ("Host", host_link(&name)),
                    ("Version", esc(&str_at("/version").unwrap_or_default())),
                ])
            );
        }
        OperationKind::AccessCheck => {
            if let Some(checks) = r
                .get("checks")
                .and_then(|v| serde_json::from_value::<Vec<AccessCheck>>(v.clone()).ok())
            {
                let links = checks
                    .iter()
                    .map(|c| batch_link(c.batch_id.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ");
                let _ = write!(out, "<p>Batches: {links}</p>{}", checks_table(&checks));
            }
        }
        _ => {
            let _ = write!(
                out,
                "<pre>{}</pre>",
                esc(&serde_json::to_string_pretty(r).unwrap_or_default())
            );
        }
    }
    out.push_str("</section>");
    out
}
