//! A provider's actions: preview an import onto a host, import it, verify
//! access to it.

use super::{confirm_page, last4, no_keys, split_keys, to_operation};
use crate::html::yes_no;
use crate::ops::{self, WorkDone};
use crate::pages::plan_table;
use crate::view::{badge, batch_link, code, facts, host_link, provider_link, provider_path};
use crate::{Admin, Console, ConsoleError, PendingImport, Result, check_csrf};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use crm_app::OperationSpec;
use crm_app::providers::ImportInput;
use crm_domain::{AccessMode, BatchStatus, ProviderRef, SecretString, Verdict};
use maud::html;
use std::time::Instant;

/// The import form. The keys are a secret from the moment they are parsed.
#[derive(serde::Deserialize)]
pub struct PreviewForm {
    #[serde(default)]
    csrf: String,
    host: String,
    mode: String,
    keys: SecretString,
    /// `true`, `false`, or empty for the pack's default (`--monitor`).
    #[serde(default)]
    monitor: String,
}

impl std::fmt::Debug for PreviewForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviewForm")
            .field("host", &self.host)
            .field("mode", &self.mode)
            .field("monitor", &self.monitor)
            .finish_non_exhaustive()
    }
}

pub async fn import_preview(
    State(c): State<Console>,
    Admin(s): Admin,
    Path((pack, provider)): Path<(String, String)>,
    Form(form): Form<PreviewForm>,
) -> Result<Response> {
    check_csrf(&s, &form.csrf)?;
    let pref = ProviderRef::new(pack.as_str(), provider.as_str());
    let mode: AccessMode = form
        .mode
        .parse()
        .map_err(|e: crm_domain::UnknownWord| ConsoleError::BadRequest(e.to_string()))?;
    let keys = split_keys(&form.keys);
    if keys.is_empty() {
        return Err(ConsoleError::BadRequest(
            "paste at least one upstream key, one per line".into(),
        ));
    }
    let monitor = match form.monitor.as_str() {
        "" => None,
        "true" => Some(true),
        "false" => Some(false),
        other => {
            return Err(ConsoleError::BadRequest(format!(
                "monitor {other:?}: expected true, false or empty (the pack's default)"
            )));
        }
    };
    let app = c.app_for(&s);
    let report = app
        .preview_with(&form.host, &pref, mode, keys.clone(), monitor)
        .await?;
    let key_list = html! {
        @for (n, k) in keys.iter().enumerate() {
            @if n > 0 { ", " }
            code { "…" (last4(k)) }
        }
    };
    let pack_urls =
        std::iter::once(&report.base_urls.openai).chain(report.base_urls.anthropic.as_ref());
    let blocked = report.plan.blocked().count();
    let url_changes = !report.url_changes.is_empty();
    let explain = html! {
        p {
            "Nothing has changed yet. This is what importing would do on the host; "
            "confirm to apply it, close access in " (mode.as_str()) " mode and verify it."
        }
        (facts(&[
            ("Provider", provider_link(&pref)),
            ("Host", host_link(&report.host)),
            ("Mode", html! { (mode.as_str()) }),
            ("Pack version", html! { (report.pack_version) }),
            (
                "Base URL (accounts)",
                match report.base_urls.accounts.as_deref() {
                    Some(u) => code(u),
                    None => html! { "none: no platform is available" },
                },
            ),
            (
                "Pack base URLs",
                html! {
                    @for (n, u) in pack_urls.enumerate() {
                        @if n > 0 { ", " }
                        (code(u))
                    }
                },
            ),
            (
                "Existing batch",
                match &report.batch {
                    Some(b) => batch_link(b.as_str()),
                    None => html! { "none: a new batch will be created" },
                },
            ),
            ("Upstream keys", html! { (keys.len()) " (" (key_list) ")" }),
            ("Changes", html! { (yes_no(report.changes)) }),
            ("Host requests made", html! { (report.host_requests) }),
        ]))
        h2 { "Plan" }
        (plan_table(&report.plan))
        @if let Some(access) = &report.access_plan {
            h2 { "Access closure" }
            (plan_table(access))
        }
        @if url_changes {
            h2 { "Base URL changes" }
            p.error role="alert" {
                "Pack version " (report.pack_version) " moves " (report.url_changes.len())
                " account(s) to another base URL: their upstream keys would be sent there. "
                "Check the new URL with the provider; the import applies it only if you tick "
                "the box below."
            }
            table {
                thead { tr {
                    th { "Kind" } th { "Account" } th { "Host id" }
                    th { "From (recorded)" } th { "To (pack)" }
                } }
                tbody {
                    @for c in &report.url_changes {
                        tr {
                            td { (crm_domain::plan::UrlChange::KIND) }
                            td { (c.account) }
                            td { @if let Some(i) = c.host_object_id { (i) } }
                            td { (code(&c.from)) }
                            td { (code(&c.to)) }
                        }
                    }
                }
            }
        }
        @if blocked > 0 {
            p.error role="alert" {
                (blocked) " item(s) are " (badge("blocked")) ": the import would stop there."
            }
        }
    };
    let pending = c.hold_import(PendingImport {
        session_id: s.id.clone(),
        host: report.host.clone(),
        provider: pref.clone(),
        mode,
        keys,
        url_changes,
        monitor,
        expires: Instant::now() + crate::PENDING_TTL,
    });
    let fields = html! {
        input type="hidden" name="pending" value=(pending);
        @if url_changes {
            p { label {
                input type="checkbox" name="accept_url_change" value="true" id="accept_url_change";
                " Move the accounts to the new base URL (accept_url_change)"
            } }
        }
    };
    Ok(confirm_page(
        &s,
        &format!("Import {pref} onto {}?", report.host),
        explain,
        &format!("{}/import", provider_path(&pref)),
        fields,
        "Import",
        &provider_path(&pref),
    ))
}

#[derive(Debug, serde::Deserialize)]
pub struct ImportForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pending: String,
    /// The checkbox shown when the preview listed base URL changes.
    #[serde(default)]
    accept_url_change: Option<String>,
}

pub async fn import(
    State(c): State<Console>,
    Admin(s): Admin,
    Path((pack, provider)): Path<(String, String)>,
    Form(form): Form<ImportForm>,
) -> Result<Response> {
    check_csrf(&s, &form.csrf)?;
    let pref = ProviderRef::new(pack.as_str(), provider.as_str());
    let held = c
        .take_import(&form.pending, &s)
        .filter(|p| p.provider == pref)
        .ok_or_else(|| {
            ConsoleError::BadRequest(
                "this preview has expired or was already used; preview the import again".into(),
            )
        })?;
    let app = c.app_for(&s);
    // Only what the operator saw: a tick confirms the URL changes of the
    // preview it was shown with.
    let accept_url_change = held.url_changes && form.accept_url_change.is_some();
    let spec = OperationSpec::import(
        &held.host,
        &held.provider,
        held.mode,
        held.keys.len(),
        None,
        None,
        true,
    )
    .accepting_url_change(accept_url_change)
    .with_monitor(held.monitor);
    let op = c
        .launch(&app, spec, move |app, id| async move {
            ops::progress(
                &app,
                &id,
                format!(
                    "importing {} onto {} ({} mode, {} upstream key(s))",
                    held.provider,
                    held.host,
                    held.mode,
                    held.keys.len()
                ),
            )
            .await;
            let report = app
                .import(ImportInput {
                    host: held.host,
                    provider: held.provider,
                    mode: held.mode,
                    upstream_keys: held.keys,
                    user: None,
                    starting_balance: None,
                    verify: true,
                    accept_url_change,
                    monitor: held.monitor,
                })
                .await?;
            ops::progress(
                &app,
                &id,
                format!(
                    "batch {} {}; access {}",
                    report.batch.id, report.batch.status, report.access_status
                ),
            )
            .await;
            Ok(WorkDone {
                result: ops::to_json(&report)?,
                succeeded: report.succeeded(),
                problem: report.error.clone().or_else(|| {
                    (report.batch.status != BatchStatus::Applied).then(|| {
                        format!(
                            "batch ended {}{}",
                            report.batch.status,
                            report
                                .batch
                                .status_reason
                                .as_deref()
                                .map(|r| format!(": {r}"))
                                .unwrap_or_default()
                        )
                    })
                }),
            })
        })
        .await?;
    Ok(to_operation(&op))
}

#[derive(Debug, serde::Deserialize)]
pub struct HostQuery {
    host: String,
}

pub async fn verify_confirm(
    State(c): State<Console>,
    Admin(s): Admin,
    Path((pack, provider)): Path<(String, String)>,
    Query(q): Query<HostQuery>,
) -> Result<Response> {
    let pref = ProviderRef::new(pack.as_str(), provider.as_str());
    let batches = c.app.provider_batches(&q.host, &pref).await?;
    let explain = html! {
        p {
            "crm will check that an ordinary user can call " (provider_link(&pref)) " on "
            (host_link(&q.host)) ": the model list, then one minimal completion (about 16 tokens) "
            "per live batch. A failure is classified."
        }
        ul {
            @for b in &batches {
                li {
                    (batch_link(b.id.as_str())) " (" (b.mode.as_str()) ", access "
                    (badge(b.access_status.as_str())) ")"
                }
            }
        }
    };
    Ok(confirm_page(
        &s,
        &format!("Verify access to {pref} on {}?", q.host),
        explain,
        &format!("{}/verify", provider_path(&pref)),
        html! {
            input type="hidden" name="host" value=(q.host);
            label for="verify-keys" {
                "Upstream keys, one per line (optional: the upstream is then probed directly "
                "where the host's answer may be its doing; used for this check only, never stored)"
            }
            textarea id="verify-keys" name="keys" rows="3" autocomplete="off" spellcheck="false" {}
        },
        "Verify access",
        &provider_path(&pref),
    ))
}

/// The verify form. Upstream keys (optional) are a secret from the moment
/// they are parsed, used for this check only and never stored.
#[derive(serde::Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    csrf: String,
    host: String,
    #[serde(default = "no_keys")]
    keys: SecretString,
}

impl std::fmt::Debug for VerifyForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyForm")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

pub async fn verify(
    State(c): State<Console>,
    Admin(s): Admin,
    Path((pack, provider)): Path<(String, String)>,
    Form(form): Form<VerifyForm>,
) -> Result<Response> {
    check_csrf(&s, &form.csrf)?;
    let pref = ProviderRef::new(pack.as_str(), provider.as_str());
    let app = c.app_for(&s);
    let host = app.show_host(&form.host).await?.name;
    let keys = split_keys(&form.keys);
    let op = c
        .launch(
            &app,
            OperationSpec::access_check(&host, &pref, 0),
            move |app, id| async move {
                ops::progress(&app, &id, format!("verifying access to {pref} on {host}")).await;
                let checks = app
                    .verify_provider_access_with_keys(&host, &pref, false, keys)
                    .await?;
                for ch in &checks {
                    ops::progress(
                        &app,
                        &id,
                        format!(
                            "batch {}: {}{}",
                            ch.batch_id,
                            ch.verdict,
                            ch.failure_class
                                .map(|f| format!(" ({f})"))
                                .unwrap_or_default()
                        ),
                    )
                    .await;
                }
                let failed = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
                Ok(WorkDone {
                    result: serde_json::json!({ "checks": ops::to_json(&checks)? }),
                    succeeded: failed == 0,
                    problem: (failed > 0).then(|| format!("{failed} access check(s) failed")),
                })
            },
        )
        .await?;
    Ok(to_operation(&op))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_import_form_never_shows_its_keys_in_debug() {
        let form = PreviewForm {
            csrf: String::new(),
            host: "h".into(),
            mode: "self_service".into(),
            keys: SecretString::from("sk-secret-value"),
            monitor: String::new(),
        };
        assert!(!format!("{form:?}").contains("sk-secret"));
    }
}
