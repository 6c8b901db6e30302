//! Sign-in, sign-out and the actions: probe a host, preview and import a
//! provider, verify access, check for drift and repair, roll back a batch.
//!
//! Each action is a confirmation step (a page, or the preview itself)
//! followed by a POST that checks the session's CSRF token, refuses
//! read-only sessions ([`Admin`] extractor: 403) and starts a recorded
//! operation whose page shows live progress.

use crate::html::{self, PageOpts, badge, esc, facts, seg};
use crate::ops::{self, WorkDone};
use crate::pages::{batch_link, host_link, page, plan_table, provider_link};
use crate::session::{self, Session};
use crate::{Admin, Console, ConsoleError, PendingImport, Result, Viewer, check_csrf};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use crm_app::OperationSpec;
use crm_app::providers::ImportInput;
use crm_app::reconcile::ReconcileRequest;
use crm_domain::ops::Operation;
use crm_domain::{
    AccessMode, BatchId, BatchStatus, ProviderRef, ResourceState, SecretString, Verdict,
};
use secrecy::ExposeSecret;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Instant;

fn to_operation(op: &Operation) -> Response {
    Redirect::to(&format!("/operations/{}", seg(op.id.as_str()))).into_response()
}

/// A form that carries only the CSRF token.
#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

// ---------------------------------------------------------------- sign-in

/// The login form's body. The token is a secret from the moment it is parsed.
#[derive(serde::Deserialize)]
pub struct LoginForm {
    token: SecretString,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginForm([redacted])")
    }
}

pub async fn login(
    State(c): State<Console>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: axum::http::HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    // A correct token always signs in: strangers' wrong guesses from the
    // same address (or a shared proxy) must not lock the operator out.
    if let Some(role) = c.tokens.role_for(form.token.expose_secret().trim()) {
        let s = match c.sessions.create(role).await {
            Ok(s) => s,
            Err(e) => return ConsoleError::from(e).into_response(),
        };
        tracing::info!(principal = role.actor(), "console sign-in");
        return (
            StatusCode::SEE_OTHER,
            [
                (
                    header::SET_COOKIE,
                    session::set_cookie(&s, c.secure_cookies),
                ),
                (header::LOCATION, "/".to_owned()),
            ],
        )
            .into_response();
    }
    let peer = peer
        .map(|Extension(ConnectInfo(addr))| addr.ip())
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let client = c.trusted_proxies.source(peer, forwarded).to_string();
    if c.failures.blocked(&client) {
        tracing::warn!(%client, "console sign-in refused: too many wrong tokens");
        let body = "<p class=\"error\" role=\"alert\">Too many wrong tokens from this address; \
            wait a minute and try again.</p>";
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "60")],
            Html(html::layout(None, "Sign in", body, PageOpts::default())),
        )
            .into_response();
    }
    c.failures.record_failure(&client);
    tracing::warn!(%client, "console sign-in refused: unknown token");
    let body = "<p class=\"error\" role=\"alert\">That token was not accepted.</p>\
        <p><a href=\"/login\">Try again</a></p>";
    (
        StatusCode::UNAUTHORIZED,
        Html(html::layout(None, "Sign in", body, PageOpts::default())),
    )
        .into_response()
}

pub async fn logout(
    State(c): State<Console>,
    Viewer(s): Viewer,
    Form(form): Form<CsrfForm>,
) -> Result<Response> {
    check_csrf(&s, &form.csrf)?;
    c.sessions.remove(&s.id).await?;
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, session::clear_cookie(c.secure_cookies)),
            (header::LOCATION, "/login".to_owned()),
        ],
    )
        .into_response())
}

/// A confirmation page: what will happen, and one button that does it.
fn confirm_page(
    s: &Session,
    title: &str,
    explain: String,
    action: &str,
    fields: &str,
    button: &str,
    cancel: &str,
) -> Response {
    let body = format!(
        "{explain}<form method=\"post\" action=\"{}\" class=\"confirm\">{}{fields}\
         <button type=\"submit\" class=\"action\" id=\"confirm\">{}</button> \
         <a href=\"{}\" class=\"button\">Cancel</a></form>",
        esc(action),
        html::csrf_field(s),
        esc(button),
        esc(cancel)
    );
    page(s, title, body)
}

// ---------------------------------------------------------------- probe

pub async fn probe_confirm(
    State(c): State<Console>,
    Admin(s): Admin,
    Path(host): Path<String>,
) -> Result<Response> {
    let h = c.app.show_host(&host).await?;
    let explain = format!(
        "<p>crm will call the host's admin API to find its version and capabilities \
         (read-only requests) and store what it finds.</p>{}",
        facts(&[
            ("Host", host_link(&h.name)),
            ("Base URL", format!("<code>{}</code>", esc(&h.base_url))),
            ("Last probe", html::opt_time(h.probed_at.as_ref())),
        ])
    );
    Ok(confirm_page(
        &s,
        &format!("Probe host {}?", h.name),
        explain,
        &format!("/hosts/{}/probe", seg(&h.name)),
        "",
        "Probe now",
        &format!("/hosts/{}", seg(&h.name)),
    ))
}

pub async fn probe(
    State(c): State<Console>,
    Admin(s): Admin,
    Path(host): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response> {
    check_csrf(&s, &form.csrf)?;
    let app = c.app_for(&s);
    let h = app.show_host(&host).await?;
    let name = h.name.clone();
    let op = c
        .launch(
            &app,
            OperationSpec::probe(&name),
            move |app, id| async move {
                ops::progress(&app, &id, format!("probing {name}")).await;
                let view = app.probe_host(&name).await?;
                ops::progress(
                    &app,
                    &id,
                    format!(
                        "found version {}",
                        view.version.as_deref().unwrap_or("unknown")
                    ),
                )
                .await;
                Ok(WorkDone {
                    result: ops::to_json(&view)?,
                    succeeded: true,
                    problem: None,
                })
            },
        )
        .await?;
    Ok(to_operation(&op))
}

// ---------------------------------------------------------------- reconcile

#[derive(Debug, serde::Deserialize)]
pub struct ReconcileForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    batch: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    prune: Option<String>,
    #[serde(default)]
    clear_unhealthy: Option<String>,
}

impl ReconcileForm {
    fn request(&self, host: String, apply: bool) -> Result<ReconcileRequest> {
        let provider = self
            .provider
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(ProviderRef::parse)
            .transpose()
            .map_err(|e| ConsoleError::BadRequest(e.to_string()))?;
        Ok(ReconcileRequest {
            host,
            provider,
            batch: self
                .batch
                .as_deref()
                .filter(|b| !b.is_empty())
                .map(BatchId::new),
            apply,
            prune: apply && self.prune.is_some(),
            clear_unhealthy: apply && self.clear_unhealthy.is_some(),
        })
    }
}

/// Read-only reconcile (its drift is the repair preview), or the repair itself.
async fn launch_reconcile(
    c: &Console,
    s: &Session,
    host: String,
    form: ReconcileForm,
    apply: bool,
) -> Result<Response> {
    check_csrf(s, &form.csrf)?;
    let app = c.app_for(s);
    let h = app.show_host(&host).await?;
    let req = form.request(h.name.clone(), apply)?;
    let spec = OperationSpec::reconcile(&h.name, &req);
    let op = c
        .launch(&app, spec, move |app, id| async move {
            let host = req.host.clone();
            ops::progress(
                &app,
                &id,
                if req.apply {
                    format!("repairing drift on {host}")
                } else {
                    format!("comparing {host} with what crm recorded (read-only)")
                },
            )
            .await;
            let report = app.reconcile(req).await?;
            ops::progress(
                &app,
                &id,
                format!(
                    "{}: {} drift items, {} repaired",
                    report.run.status,
                    report.run.items.len(),
                    report.repaired.len()
                ),
            )
            .await;
            let mut result = ops::to_json(&report)?;
            if let Some(obj) = result.as_object_mut() {
                obj.insert("host".into(), serde_json::Value::String(host));
            }
            Ok(WorkDone {
                result,
                succeeded: report.run.error.is_none(),
                problem: report.run.error.clone(),
            })
        })
        .await?;
    Ok(to_operation(&op))
}

pub async fn reconcile_check(
    State(c): State<Console>,
    Admin(s): Admin,
    Path(host): Path<String>,
    Form(form): Form<ReconcileForm>,
) -> Result<Response> {
    launch_reconcile(&c, &s, host, form, false).await
}

pub async fn repair(
    State(c): State<Console>,
    Admin(s): Admin,
    Path(host): Path<String>,
    Form(form): Form<ReconcileForm>,
) -> Result<Response> {
    launch_reconcile(&c, &s, host, form, true).await
}

// ---------------------------------------------------------------- import

/// The import form. The keys are a secret from the moment they are parsed.
#[derive(serde::Deserialize)]
pub struct PreviewForm {
    #[serde(default)]
    csrf: String,
    host: String,
    mode: String,
    keys: SecretString,
}

impl std::fmt::Debug for PreviewForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviewForm")
            .field("host", &self.host)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

fn split_keys(text: &SecretString) -> Vec<SecretString> {
    text.expose_secret()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| SecretString::from(l.to_owned()))
        .collect()
}

fn last4(key: &SecretString) -> String {
    let chars: Vec<char> = key.expose_secret().chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
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
    let app = c.app_for(&s);
    let report = app.preview(&form.host, &pref, mode, keys.clone()).await?;
    let key_list = keys
        .iter()
        .map(|k| format!("<code>…{}</code>", esc(&last4(k))))
        .collect::<Vec<_>>()
        .join(", ");
    let mut explain = String::new();
    let _ = write!(
        explain,
        "<p>Nothing has changed yet. This is what importing would do on the host; \
         confirm to apply it, close access in {} mode and verify it.</p>{}",
        esc(mode.as_str()),
        facts(&[
            ("Provider", provider_link(&pref)),
            ("Host", host_link(&report.host)),
            ("Mode", esc(mode.as_str())),
            ("Pack version", esc(&report.pack_version)),
            (
                "Base URL (accounts)",
                report
                    .base_urls
                    .accounts
                    .as_deref()
                    .map(|u| format!("<code>{}</code>", esc(u)))
                    .unwrap_or_else(|| "none: no platform is available".into())
            ),
            (
                "Pack base URLs",
                std::iter::once(&report.base_urls.openai)
                    .chain(report.base_urls.anthropic.as_ref())
                    .map(|u| format!("<code>{}</code>", esc(u)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (
                "Existing batch",
                report
                    .batch
                    .as_ref()
                    .map(|b| batch_link(b.as_str()))
                    .unwrap_or_else(|| "none: a new batch will be created".into())
            ),
            ("Upstream keys", format!("{} ({key_list})", keys.len())),
            ("Changes", html::yes_no(report.changes).into()),
            ("Host requests made", report.host_requests.to_string()),
        ])
    );
    let _ = write!(
        explain,
        "<h2>Plan</h2>{}",
        plan_table(&report.plan).into_string()
    );
    if let Some(access) = &report.access_plan {
        let _ = write!(
            explain,
            "<h2>Access closure</h2>{}",
            plan_table(access).into_string()
        );
    }
    let url_changes = !report.url_changes.is_empty();
    if url_changes {
        let rows: String = report
            .url_changes
            .iter()
            .map(|c| {
                format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                    esc(crm_domain::plan::UrlChange::KIND),
                    esc(&c.account),
                    c.host_object_id.map(|i| i.to_string()).unwrap_or_default(),
                    esc(&c.from),
                    esc(&c.to)
                )
            })
            .collect();
        let _ = write!(
            explain,
            "<h2>Base URL changes</h2><p class=\"error\" role=\"alert\">Pack version {} moves \
             {} account(s) to another base URL: their upstream keys would be sent there. \
             Check the new URL with the provider; the import applies it only if you tick \
             the box below.</p><table><thead><tr><th>Kind</th><th>Account</th><th>Host id</th>\
             <th>From (recorded)</th><th>To (pack)</th></tr></thead><tbody>{rows}</tbody></table>",
            esc(&report.pack_version),
            report.url_changes.len()
        );
    }
    let blocked = report.plan.blocked().count();
    if blocked > 0 {
        let _ = write!(
            explain,
            "<p class=\"error\" role=\"alert\">{blocked} item(s) are {}: the import would stop there.</p>",
            badge("blocked")
        );
    }
    let pending = c.hold_import(PendingImport {
        session_id: s.id.clone(),
        host: report.host.clone(),
        provider: pref.clone(),
        mode,
        keys,
        url_changes,
        expires: Instant::now() + crate::PENDING_TTL,
    });
    let mut fields = format!(
        "<input type=\"hidden\" name=\"pending\" value=\"{}\">",
        esc(&pending)
    );
    if url_changes {
        fields.push_str(
            "<p><label><input type=\"checkbox\" name=\"accept_url_change\" value=\"true\" \
             id=\"accept_url_change\"> Move the accounts to the new base URL \
             (accept_url_change)</label></p>",
        );
    }
    Ok(confirm_page(
        &s,
        &format!("Import {pref} onto {}?", report.host),
        explain,
        &format!(
            "/providers/{}/{}/import",
            seg(pref.pack.as_str()),
            seg(pref.provider.as_str())
        ),
        &fields,
        "Import",
        &format!(
            "/providers/{}/{}",
            seg(pref.pack.as_str()),
            seg(pref.provider.as_str())
        ),
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
    .accepting_url_change(accept_url_change);
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

// ---------------------------------------------------------------- verify access

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
    let list = batches
        .iter()
        .map(|b| {
            format!(
                "<li>{} ({}, access {})</li>",
                batch_link(b.id.as_str()),
                esc(b.mode.as_str()),
                badge(b.access_status.as_str())
            )
        })
        .collect::<String>();
    let explain = format!(
        "<p>crm will check that an ordinary user can call {} on {}: the model list, then one \
         minimal completion (about 16 tokens) per live batch. A failure is classified.</p><ul>{list}</ul>",
        provider_link(&pref),
        host_link(&q.host)
    );
    Ok(confirm_page(
        &s,
        &format!("Verify access to {pref} on {}?", q.host),
        explain,
        &format!(
            "/providers/{}/{}/verify",
            seg(pref.pack.as_str()),
            seg(pref.provider.as_str())
        ),
        &format!(
            "<input type=\"hidden\" name=\"host\" value=\"{}\">\
             <label for=\"verify-keys\">Upstream keys, one per line (optional: the upstream is then \
             probed directly where the host's answer may be its doing; used for this check only, never stored)</label>\
             <textarea id=\"verify-keys\" name=\"keys\" rows=\"3\" autocomplete=\"off\" spellcheck=\"false\"></textarea>",
            esc(&q.host)
        ),
        "Verify access",
        &format!(
            "/providers/{}/{}",
            seg(pref.pack.as_str()),
            seg(pref.provider.as_str())
        ),
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

// ---------------------------------------------------------------- rollback

pub async fn rollback_confirm(
    State(c): State<Console>,
    Admin(s): Admin,
    Path(id): Path<String>,
) -> Result<Response> {
    let d = c.app.batch_detail(&id).await?;
    let live: String = d
        .resources
        .iter()
        .filter(|r| r.state != ResourceState::Deleted)
        .map(|r| {
            format!(
                "<li>{} <code>{}</code> (host id {})</li>",
                esc(r.kind.as_str()),
                esc(&r.name),
                r.host_object_id
            )
        })
        .collect();
    let explain = format!(
        "<p>crm will delete what this batch created on {}, access closure first, then in reverse \
         order; objects it adopted or that other batches use are kept. Afterwards it checks that \
         the batch's user key is refused.</p>{}<h2>Objects</h2><ul>{}</ul>",
        host_link(&d.host_name),
        facts(&[
            ("Batch", batch_link(d.batch.id.as_str())),
            ("Provider", provider_link(&d.batch.provider)),
            ("Status", badge(d.batch.status.as_str())),
        ]),
        if live.is_empty() {
            "<li>none recorded</li>".to_owned()
        } else {
            live
        }
    );
    Ok(confirm_page(
        &s,
        &format!("Roll back batch {}?", d.batch.id),
        explain,
        &format!("/batches/{}/rollback", seg(d.batch.id.as_str())),
        "",
        "Roll back",
        &format!("/batches/{}", seg(d.batch.id.as_str())),
    ))
}

pub async fn rollback(
    State(c): State<Console>,
    Admin(s): Admin,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response> {
    check_csrf(&s, &form.csrf)?;
    let app = c.app_for(&s);
    let batch = app.batch(&id).await?;
    let batch_id = batch.id.to_string();
    let op = c
        .launch(
            &app,
            OperationSpec::rollback_batch(&batch_id),
            move |app, op_id| async move {
                ops::progress(&app, &op_id, format!("rolling back batch {batch_id}")).await;
                let view = app.rollback_batch(&batch_id).await?;
                ops::progress(
                    &app,
                    &op_id,
                    format!(
                        "batch {}: {} deleted, {} kept, {} left",
                        view.report.status,
                        view.report.deleted.len(),
                        view.report.kept.len(),
                        view.report.left.len()
                    ),
                )
                .await;
                let ok = view.report.status == BatchStatus::RolledBack;
                Ok(WorkDone {
                    result: ops::to_json(&view)?,
                    succeeded: ok,
                    problem: (!ok).then(|| {
                        format!(
                            "batch ended {}: {}",
                            view.report.status,
                            view.report.left.join("; ")
                        )
                    }),
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
    fn pasted_keys_split_by_line_and_show_only_their_last_four() {
        let keys = split_keys(&SecretString::from("  sk-aaaa1111 \n\n sk-bbbb2222\n"));
        assert_eq!(keys.len(), 2);
        assert_eq!(last4(&keys[1]), "2222");
        assert_eq!(last4(&SecretString::from("ab")), "ab");
        let form = PreviewForm {
            csrf: String::new(),
            host: "h".into(),
            mode: "self_service".into(),
            keys: SecretString::from("sk-secret-value"),
        };
        assert!(!format!("{form:?}").contains("sk-secret"));
    }
}

// ---------------------------------------------------------------- resume

/// The resume form. The keys are a secret from the moment they are parsed.
#[derive(serde::Deserialize)]
pub struct ResumeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default = "no_keys")]
    keys: SecretString,
}

fn no_keys() -> SecretString {
    SecretString::from(String::new())
}

impl std::fmt::Debug for ResumeForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResumeForm([redacted])")
    }
}

pub async fn resume(
    State(c): State<Console>,
    Admin(s): Admin,
    Path(id): Path<String>,
    Form(form): Form<ResumeForm>,
) -> Result<Response> {
    check_csrf(&s, &form.csrf)?;
    let app = c.app_for(&s);
    let batch = app.batch(&id).await?;
    if !batch.status.is_resumable() {
        return Err(ConsoleError::BadRequest(format!(
            "batch {} is {}: there is nothing to resume",
            batch.id, batch.status
        )));
    }
    let keys = split_keys(&form.keys);
    let batch_id = batch.id.to_string();
    let op = c
        .launch(
            &app,
            OperationSpec::resume(&batch_id, keys.len()),
            move |app, op_id| async move {
                ops::progress(&app, &op_id, format!("resuming batch {batch_id}")).await;
                let report = app.resume_batch(&batch_id, keys).await?;
                ops::progress(
                    &app,
                    &op_id,
                    format!("batch {} {}", report.batch.id, report.batch.status),
                )
                .await;
                let ok = report.batch.status == BatchStatus::Applied && report.error.is_none();
                Ok(WorkDone {
                    result: ops::to_json(&report)?,
                    succeeded: ok,
                    problem: report
                        .error
                        .clone()
                        .or_else(|| (!ok).then(|| format!("batch ended {}", report.batch.status))),
                })
            },
        )
        .await?;
    Ok(to_operation(&op))
}
