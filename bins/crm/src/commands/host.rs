//! `crm host add|list|show|probe|remove|set`.

use crm_app::HostView;
use crm_app::hosts::NewHost;
use crm_domain::funds::FundsThreshold;
use crm_domain::host::AdminAuth;

use super::{Ctx, Outcome};
use crate::cli::HostCommand;
use crate::render::{emit, fields, opt, table, yes_no};
use crate::secrets;

pub async fn run(ctx: &Ctx, cmd: HostCommand) -> anyhow::Result<Outcome> {
    match cmd {
        HostCommand::Add {
            name,
            url,
            admin_key,
            reconcile_every,
        } => {
            let view = ctx
                .app
                .add_host(NewHost {
                    name,
                    base_url: url,
                    admin_key: secrets::admin_key_source(&admin_key)?,
                    reconcile_every_secs: reconcile_every,
                })
                .await?;
            // On stderr too, so a script reading the JSON still shows it.
            for w in &view.warnings {
                eprintln!("warning: {w}");
            }
            emit(ctx.output, &view, host_fields);
        }
        HostCommand::List => {
            let hosts = ctx.app.list_hosts().await?;
            emit(ctx.output, &hosts, |hs| {
                table(
                    &["Name", "URL", "Version", "Probed", "Admin key"],
                    hs.iter()
                        .map(|h| {
                            vec![
                                h.name.clone(),
                                h.base_url.clone(),
                                opt(&h.version),
                                h.probed_at
                                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                                    .unwrap_or_else(|| "never".into()),
                                h.admin_credential.clone(),
                            ]
                        })
                        .collect(),
                )
            });
        }
        HostCommand::Show { host } => {
            let view = ctx.app.show_host(&host).await?;
            emit(ctx.output, &view, host_fields);
        }
        HostCommand::Probe { host } => {
            let pb = ctx.progress(&format!("probing {host}"));
            let view = ctx.app.probe_host(&host).await;
            pb.finish_and_clear();
            let view = view?;
            emit(ctx.output, &view, host_fields);
            if let Some(caps) = &view.capabilities {
                match &caps.admin_auth {
                    AdminAuth::Ok => {}
                    AdminAuth::ComplianceGate { document_url } => {
                        return Ok(Outcome::Failed {
                            message: format!(
                                "host returned 423: an administrator must accept the compliance notice{}",
                                document_url
                                    .as_deref()
                                    .map(|u| format!(" at {u}"))
                                    .unwrap_or_default()
                            ),
                            hint: Some(format!("then run `crm host probe {}` again", view.name)),
                        });
                    }
                    AdminAuth::Rejected { reason } => {
                        return Ok(Outcome::Failed {
                            message: format!("host rejected the admin key: {reason}"),
                            hint: Some(format!(
                                "check the key behind {} (see `crm host show {}`)",
                                view.admin_credential, view.name
                            )),
                        });
                    }
                }
            }
        }
        HostCommand::Set {
            host,
            provider,
            thresholds,
            clear,
        } => {
            let provider = provider.as_deref().map(super::provider_ref).transpose()?;
            let thresholds = super::funds::thresholds(&thresholds)?;
            let view = ctx
                .app
                .set_host_thresholds(&host, provider.as_ref(), &thresholds, clear)
                .await?;
            emit(ctx.output, &view, host_fields);
        }
        HostCommand::Remove { host } => {
            ctx.app.remove_host(&host).await?;
            emit(ctx.output, &serde_json::json!({ "removed": host }), |_| {
                format!("removed host {host}")
            });
        }
    }
    Ok(Outcome::Unchanged)
}

fn host_fields(h: &HostView) -> String {
    let mut pairs = vec![
        ("name", h.name.clone()),
        ("id", h.id.clone()),
        ("url", h.base_url.clone()),
        ("admin key", h.admin_credential.clone()),
        ("version", opt(&h.version)),
        (
            "probed",
            h.probed_at
                .map(|t| t.to_rfc3339())
                .unwrap_or_else(|| "never (run `crm host probe`)".into()),
        ),
        (
            "reconcile every",
            h.reconcile_every_secs
                .map(|s| format!("{s}s"))
                .unwrap_or_else(|| "-".into()),
        ),
        ("funds thresholds", thresholds_line(&h.funds_thresholds)),
    ];
    pairs.extend(h.warnings.iter().map(|w| ("warning", w.clone())));
    if let Some(c) = &h.capabilities {
        let auth = match &c.admin_auth {
            AdminAuth::Ok => "ok".to_owned(),
            AdminAuth::ComplianceGate { .. } => "compliance gate (423)".to_owned(),
            AdminAuth::Rejected { reason } => format!("rejected: {reason}"),
        };
        pairs.extend([
            ("admin auth", auth),
            ("channels", yes_no(c.channels)),
            ("chat completions", yes_no(c.chat_completions)),
            (
                "native platforms",
                c.native_platforms
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("subscriptions", yes_no(c.subscriptions)),
            ("payment plans", yes_no(c.payment_plans)),
            ("admin key rebind", yes_no(c.admin_key_rebind)),
            ("idempotency key", yes_no(c.idempotency_key)),
            ("credential redaction", yes_no(c.credential_redaction)),
            ("max page size", c.max_page_size.to_string()),
        ]);
    }
    fields(&pairs)
}

/// `every provider: low balance 50 CNY; cn-official/kimi: low quota 15%`,
/// or where the thresholds come from when the host sets none.
fn thresholds_line(t: &crm_domain::funds::HostThresholds) -> String {
    fn one(t: &FundsThreshold) -> String {
        let mut parts = vec![];
        if let Some(b) = &t.low_balance {
            parts.push(format!("low balance {} {}", b.amount, b.currency));
        }
        if let Some(p) = t.low_quota_percent {
            parts.push(format!("low quota {p}%"));
        }
        parts.join(", ")
    }
    if t.is_empty() {
        return "the packs' (set with `crm host set`)".into();
    }
    let mut scopes = vec![];
    if !t.all.is_empty() {
        scopes.push(format!("every provider: {}", one(&t.all)));
    }
    for (p, th) in &t.providers {
        scopes.push(format!("{p}: {}", one(th)));
    }
    scopes.join("; ")
}
