//! A host's actions: probe it, check it for drift (read-only), repair drift.

use super::{CsrfForm, confirm_page, to_operation};
use crate::html::seg;
use crate::ops::{self, WorkDone};
use crate::session::Session;
use crate::view::{code, facts, host_link, opt_time};
use crate::{Admin, Console, ConsoleError, Result, check_csrf};
use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use crm_app::OperationSpec;
use crm_app::reconcile::ReconcileRequest;
use crm_domain::{BatchId, ProviderRef};
use maud::html;

pub async fn probe_confirm(
    State(c): State<Console>,
    Admin(s): Admin,
    Path(host): Path<String>,
) -> Result<Response> {
    let h = c.app.show_host(&host).await?;
    let explain = html! {
        p {
            "crm will call the host's admin API to find its version and capabilities "
            "(read-only requests) and store what it finds."
        }
        (facts(&[
            ("Host", host_link(&h.name)),
            ("Base URL", code(&h.base_url)),
            ("Last probe", opt_time(h.probed_at.as_ref())),
        ]))
    };
    Ok(confirm_page(
        &s,
        &format!("Probe host {}?", h.name),
        explain,
        &format!("/hosts/{}/probe", seg(&h.name)),
        html! {},
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
