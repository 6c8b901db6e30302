//! A batch's actions: roll it back, resume it.

use super::{CsrfForm, confirm_page, no_keys, split_keys, to_operation};
use crate::html::seg;
use crate::ops::{self, WorkDone};
use crate::view::{badge, batch_link, code, facts, host_link, provider_link};
use crate::{Admin, Console, ConsoleError, Result, check_csrf};
use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use crm_app::OperationSpec;
use crm_domain::{BatchStatus, ResourceState, SecretString};
use maud::html;

pub async fn rollback_confirm(
    State(c): State<Console>,
    Admin(s): Admin,
    Path(id): Path<String>,
) -> Result<Response> {
    let d = c.app.batch_detail(&id).await?;
    let live: Vec<_> = d
        .resources
        .iter()
        .filter(|r| r.state != ResourceState::Deleted)
        .collect();
    let explain = html! {
        p {
            "crm will delete what this batch created on " (host_link(&d.host_name))
            ", access closure first, then in reverse order; objects it adopted or that other "
            "batches use are kept. Afterwards it checks that the batch's user key is refused."
        }
        (facts(&[
            ("Batch", batch_link(d.batch.id.as_str())),
            ("Provider", provider_link(&d.batch.provider)),
            ("Status", badge(d.batch.status.as_str())),
        ]))
        h2 { "Objects" }
        ul {
            @for r in &live {
                li { (r.kind.as_str()) " " (code(&r.name)) " (host id " (r.host_object_id) ")" }
            }
            @if live.is_empty() { li { "none recorded" } }
        }
    };
    Ok(confirm_page(
        &s,
        &format!("Roll back batch {}?", d.batch.id),
        explain,
        &format!("/batches/{}/rollback", seg(d.batch.id.as_str())),
        html! {},
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

/// The resume form. The keys are a secret from the moment they are parsed.
#[derive(serde::Deserialize)]
pub struct ResumeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default = "no_keys")]
    keys: SecretString,
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
