//! `crm provider list|status|show|preview|import|access|reconcile|rollback|rotate-key|assign-subscriptions`.

use crm_app::providers::{ImportInput, ImportReport, PreviewReport};
use crm_app::reconcile::ReconcileRequest;
use crm_app::status::ProviderStatusView;
use crm_domain::Verdict;
use crm_domain::access::AccessCheck;

use super::reports::{
    reconcile_outcome, render_checks, render_plan, render_reconcile, render_rollback,
    rollback_outcome,
};
use super::{Ctx, Outcome, mode, provider_ref};
use crate::cli::ProviderCommand;
use crate::render::{emit, fields, opt, table, word};
use crate::secrets;

pub async fn run(ctx: &Ctx, cmd: ProviderCommand) -> anyhow::Result<Outcome> {
    match cmd {
        ProviderCommand::Funds {
            host,
            provider,
            thresholds,
            stored,
            keys,
        } => super::funds::run(ctx, host, provider, &thresholds, stored, keys).await,
        ProviderCommand::List {
            pack,
            host: Some(host),
        } => {
            let list = ctx.app.list_providers(pack.as_deref()).await?;
            let mut statuses = ctx.app.provider_statuses(Some(&host)).await?;
            let rows: Vec<ProviderOnHost> = list
                .into_iter()
                .filter_map(|summary| {
                    let at = statuses
                        .iter()
                        .position(|s| s.provider == summary.provider)?;
                    Some(ProviderOnHost {
                        summary,
                        status: statuses.swap_remove(at),
                    })
                })
                .collect();
            emit(ctx.output, &rows, |rs| {
                table(
                    &["Provider", "Name", "Models", "Status", "Batch", "Why"],
                    rs.iter()
                        .map(|r| {
                            vec![
                                r.summary.provider.to_string(),
                                r.summary.display_name.clone(),
                                r.summary.models.to_string(),
                                r.status.status.to_string(),
                                opt(&r.status.batch_id),
                                r.status.detail.clone(),
                            ]
                        })
                        .collect(),
                )
            });
            Ok(Outcome::Unchanged)
        }
        ProviderCommand::Status { provider, host } => {
            let want = provider.as_deref().map(provider_ref).transpose()?;
            let mut list = ctx.app.provider_statuses(host.as_deref()).await?;
            if let Some(p) = &want {
                list.retain(|s| s.provider == *p);
                if list.is_empty() {
                    // Named but unknown everywhere: say so instead of printing nothing.
                    ctx.app.provider_spec(p, None).await?;
                }
            }
            emit(ctx.output, &list, |ls| {
                table(
                    &[
                        "Host",
                        "Provider",
                        "Status",
                        "Reason",
                        "Batch",
                        "Access",
                        "Reconciled",
                    ],
                    ls.iter()
                        .map(|s| {
                            vec![
                                s.host.clone(),
                                s.provider.to_string(),
                                s.status.to_string(),
                                s.detail.clone(),
                                opt(&s.batch_id),
                                opt(&s.access_status),
                                opt(&s
                                    .reconciled_at
                                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())),
                            ]
                        })
                        .collect(),
                )
            });
            Ok(Outcome::Unchanged)
        }
        ProviderCommand::List { pack, host: None } => {
            let list = ctx.app.list_providers(pack.as_deref()).await?;
            emit(ctx.output, &list, |ps| {
                table(
                    &[
                        "Provider",
                        "Name",
                        "Platform",
                        "Models",
                        "Smoke model",
                        "Modes",
                    ],
                    ps.iter()
                        .map(|p| {
                            vec![
                                p.provider.to_string(),
                                p.display_name.clone(),
                                format!("{} / {}", p.native_platform, p.fallback_platform),
                                p.models.to_string(),
                                p.smoke_test_model.clone(),
                                p.modes
                                    .iter()
                                    .map(|m| m.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", "),
                            ]
                        })
                        .collect(),
                )
            });
            Ok(Outcome::Unchanged)
        }
        ProviderCommand::Show { provider } => {
            let spec = ctx
                .app
                .provider_spec(&provider_ref(&provider)?, None)
                .await?;
            emit(ctx.output, &spec, |s| {
                let head = fields(&[
                    ("provider", provider.clone()),
                    ("name", s.display_name.clone()),
                    ("base url", s.openai_base_url.clone()),
                    ("anthropic url", opt(&s.anthropic_base_url)),
                    (
                        "platform",
                        format!("{} (fallback {})", s.platform.native, s.platform.fallback),
                    ),
                    ("account mode", s.account_mode.to_string()),
                    ("smoke model", s.smoke_test_model.clone()),
                    (
                        "modes",
                        s.access
                            .modes
                            .iter()
                            .map(|m| m.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                    (
                        "rate multiplier",
                        s.access.group_rate_multiplier.to_string(),
                    ),
                ]);
                let models = table(
                    &["Model", "Upstream", "Input", "Output", "Unit", "As of"],
                    s.models
                        .iter()
                        .map(|m| {
                            vec![
                                m.name.clone(),
                                m.upstream_name.clone(),
                                m.price.input.to_string(),
                                m.price.output.to_string(),
                                format!("{} {}", m.price.currency, m.price.unit),
                                m.price.as_of.clone(),
                            ]
                        })
                        .collect(),
                );
                format!("{head}\n\n{models}")
            });
            Ok(Outcome::Unchanged)
        }
        ProviderCommand::Preview {
            target,
            mode: m,
            keys,
            monitor,
        } => {
            let keys = secrets::upstream_keys(&keys)?;
            let pb = ctx.progress("observing the host");
            let report = ctx
                .app
                .preview_with(
                    &target.host,
                    &provider_ref(&target.provider)?,
                    mode(m),
                    keys,
                    monitor.choice(),
                )
                .await;
            pb.finish_and_clear();
            let report = report?;
            emit(ctx.output, &report, render_preview);
            Ok(Outcome::changed_if(report.changes))
        }
        ProviderCommand::Import {
            target,
            mode: m,
            keys,
            user,
            balance,
            no_verify,
            accept_url_change,
            monitor,
        } => {
            let input = ImportInput {
                host: target.host.clone(),
                provider: provider_ref(&target.provider)?,
                mode: mode(m),
                upstream_keys: secrets::upstream_keys(&keys)?,
                user: secrets::user_login(&user)?,
                starting_balance: balance,
                verify: !no_verify,
                accept_url_change,
                monitor: monitor.choice(),
            };
            let pb = ctx.progress(&format!(
                "importing {} onto {}",
                target.provider, target.host
            ));
            let report = ctx.app.import(input).await;
            pb.finish_and_clear();
            let report = report?;
            emit(ctx.output, &report, render_import);
            Ok(import_outcome(&report))
        }
        ProviderCommand::Access {
            target,
            skip_completion,
            keys,
        } => {
            let keys = secrets::upstream_keys(&keys)?;
            let pb = ctx.progress("verifying access");
            let checks = ctx
                .app
                .verify_provider_access_with_keys(
                    &target.host,
                    &provider_ref(&target.provider)?,
                    skip_completion,
                    keys,
                )
                .await;
            pb.finish_and_clear();
            let checks = checks?;
            emit(ctx.output, &checks, |cs| render_checks(cs));
            let failed: Vec<&AccessCheck> = checks
                .iter()
                .filter(|c| c.verdict == Verdict::Fail)
                .collect();
            if let Some(first) = failed.first() {
                return Ok(Outcome::Failed {
                    message: format!(
                        "access is broken for {} of {} batches: {}",
                        failed.len(),
                        checks.len(),
                        first.summary
                    ),
                    hint: first.failure_class.map(|c| format!("failure class: {c}")),
                });
            }
            Ok(Outcome::Unchanged)
        }
        ProviderCommand::Reconcile {
            target,
            apply,
            prune,
            keys,
        } => {
            let keys = crate::secrets::upstream_keys(&keys)?;
            let pb = ctx.progress("reconciling");
            let report = ctx
                .app
                .reconcile_with_keys(
                    ReconcileRequest {
                        host: target.host,
                        provider: Some(provider_ref(&target.provider)?),
                        apply,
                        prune,
                        ..ReconcileRequest::default()
                    },
                    keys,
                )
                .await;
            pb.finish_and_clear();
            let report = report?;
            emit(ctx.output, &report, render_reconcile);
            Ok(reconcile_outcome(&report))
        }
        ProviderCommand::Rollback { target } => {
            let pb = ctx.progress("rolling back");
            let views = ctx
                .app
                .rollback_provider(&target.host, &provider_ref(&target.provider)?)
                .await;
            pb.finish_and_clear();
            let views = views?;
            emit(ctx.output, &views, |vs| {
                if vs.is_empty() {
                    "no live batch to roll back".into()
                } else {
                    vs.iter()
                        .map(render_rollback)
                        .collect::<Vec<_>>()
                        .join("\n\n")
                }
            });
            Ok(rollback_outcome(&views))
        }
        ProviderCommand::RotateKey {
            target,
            mode: m,
            old,
            new_key_env,
            new_key_file,
            new_key: _,
        } => {
            let new = secrets::new_key(new_key_env.as_deref(), new_key_file.as_deref())?;
            let batch = ctx
                .app
                .rotate_key(
                    &target.host,
                    &provider_ref(&target.provider)?,
                    mode(m),
                    &old,
                    new,
                )
                .await?;
            emit(ctx.output, &batch, |b| {
                fields(&[
                    ("batch", b.id.to_string()),
                    ("status", b.status.to_string()),
                    (
                        "upstream keys",
                        b.upstream_keys
                            .iter()
                            .map(|f| f.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                ])
            });
            Ok(Outcome::Changed)
        }
        ProviderCommand::AssignSubscriptions {
            target,
            users,
            days,
        } => {
            let assigned = ctx
                .app
                .assign_subscriptions(&target.host, &provider_ref(&target.provider)?, &users, days)
                .await?;
            emit(ctx.output, &assigned, |a| {
                table(
                    &["User", "Subscription", "How"],
                    a.iter()
                        .map(|x| {
                            vec![
                                x.user_id.to_string(),
                                x.subscription_id.to_string(),
                                word(&x.how),
                            ]
                        })
                        .collect(),
                )
            });
            Ok(Outcome::changed_if(
                assigned
                    .iter()
                    .any(|a| a.how == crm_access::apply::AssignHow::Created),
            ))
        }
    }
}

fn render_preview(r: &PreviewReport) -> String {
    let mut out = fields(&[
        ("host", r.host.clone()),
        ("provider", r.provider.to_string()),
        ("mode", r.mode.to_string()),
        ("pack version", r.pack_version.clone()),
        ("batch", opt(&r.batch)),
        // Where the upstream keys go (issue 19: a pack can steer them).
        ("base url", opt(&r.base_urls.accounts)),
        ("pack openai url", r.base_urls.openai.clone()),
        ("pack anthropic url", opt(&r.base_urls.anthropic)),
        ("host requests", r.host_requests.to_string()),
    ]);
    out.push_str("\n\n");
    out.push_str(&render_plan(&r.plan));
    if !r.url_changes.is_empty() {
        out.push_str(
            "\n\nbase URL changes (the accounts' upstream keys would go to the new URL; \
             import with --accept-url-change to apply):\n",
        );
        out.push_str(&table(
            &["Kind", "Account", "Host id", "From (recorded)", "To (pack)"],
            r.url_changes
                .iter()
                .map(|c| {
                    vec![
                        crm_domain::plan::UrlChange::KIND.into(),
                        c.account.clone(),
                        opt(&c.host_object_id),
                        c.from.clone(),
                        c.to.clone(),
                    ]
                })
                .collect(),
        ));
    }
    if let Some(a) = &r.access_plan {
        out.push_str("\n\naccess closure:\n");
        out.push_str(&render_plan(a));
    }
    out.push_str(if r.changes {
        "\n\nimporting would change the host"
    } else {
        "\n\nnothing to change"
    });
    out
}

fn render_import(r: &ImportReport) -> String {
    let mut out = fields(&[
        ("host", r.host.clone()),
        ("provider", r.batch.provider.to_string()),
        ("mode", r.batch.mode.to_string()),
        ("batch", r.batch.id.to_string()),
        ("status", r.batch.status.to_string()),
        ("reason", opt(&r.batch.status_reason)),
        ("access", r.access_status.to_string()),
        ("host requests", r.host_requests.to_string()),
    ]);
    out.push_str("\n\n");
    out.push_str(&render_plan(&r.plan));
    if let Some(a) = &r.access_plan {
        out.push_str("\n\naccess closure:\n");
        out.push_str(&render_plan(a));
    }
    if let Some(c) = &r.access_check {
        out.push_str("\n\n");
        out.push_str(&render_checks(std::slice::from_ref(c)));
    }
    out
}

fn import_outcome(r: &ImportReport) -> Outcome {
    if !r.succeeded() {
        let id = &r.batch.id;
        return Outcome::Failed {
            message: format!(
                "import ended {}: {}",
                r.batch.status,
                r.error
                    .as_deref()
                    .or(r.batch.status_reason.as_deref())
                    .unwrap_or("no reason recorded")
            ),
            hint: Some(format!(
                "finish it with `crm batch resume {id} --upstream-keys-file FILE`, or undo it \
                 with `crm batch rollback {id}`"
            )),
        };
    }
    if r.access_check
        .as_ref()
        .is_some_and(|c| c.verdict == Verdict::Fail)
    {
        let c = r
            .access_check
            .as_ref()
            .map(|c| c.summary.clone())
            .unwrap_or_default();
        return Outcome::Failed {
            message: format!(
                "the provider was imported but access is {}: {c}",
                r.access_status
            ),
            hint: Some("see `crm batch show` for the check's evidence".into()),
        };
    }
    let access_changed = r.access_plan.as_ref().is_some_and(|p| !p.is_noop());
    Outcome::changed_if(!r.noop || access_changed)
}

/// A provider of an installed pack with its status on the host asked about.
#[derive(Debug, serde::Serialize)]
struct ProviderOnHost {
    #[serde(flatten)]
    summary: crm_app::providers::ProviderSummary,
    status: ProviderStatusView,
}
