//! The steps of one run, each turning what crm-app did into a
//! [`Concluded`]: a verdict, a failure class, one sentence and the evidence.

use super::runner::{Chain, Concluded, HOST_NAME, Imported, Runner};
use crate::config::PackSource;
use crate::folder::SecretKind;
use crate::summary::PackInfo;
use crate::verdict::{class_of_error, worst_of};
use crm_access::KeyRefusal;
use crm_app::acceptance::smoke_upstream_model;
use crm_app::hosts::{AdminKeySource, NewHost};
use crm_app::providers::{ImportInput, RollbackView};
use crm_app::reconcile::ReconcileRequest;
use crm_domain::host::AdminAuth;
use crm_domain::spec::{InstalledPack, ProviderSpec};
use crm_domain::{AccessMode, BatchStatus, FailureClass, ProviderRef, ReconcileStatus, Verdict};
use serde_json::json;

impl Runner {
    pub(super) async fn install_pack(
        &mut self,
        c: &Chain,
    ) -> (Concluded, Option<(ProviderRef, ProviderSpec)>) {
        let installed: crm_app::Result<InstalledPack> = match &c.pack {
            PackSource::File(p) => self.app.install_pack_file(p, false).await,
            PackSource::Bundled(id) => self.app.install_bundled_pack(id).await,
        };
        let pack = match installed {
            Ok(p) => p,
            Err(e) => {
                return (
                    Concluded::error(&e, "the pack could not be installed"),
                    None,
                );
            }
        };
        self.header.pack = Some(PackInfo {
            id: pack.manifest.pack_id.to_string(),
            version: pack.manifest.version.clone(),
            checksum: pack.checksum.clone(),
            source: c.pack.to_string(),
        });
        let mut data = json!({
            "pack_id": pack.manifest.pack_id,
            "version": pack.manifest.version,
            "checksum": pack.checksum,
            "origin": pack.origin,
            "installed_at": pack.installed_at,
            "providers": pack.manifest.providers.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        });
        let reference = match c.provider.split_once('/') {
            Some(_) => ProviderRef::parse(&c.provider).map_err(|e| e.to_string()),
            None => Ok(ProviderRef::new(
                pack.manifest.pack_id.as_str(),
                c.provider.as_str(),
            )),
        };
        let reference = match reference {
            Ok(r) if r.pack == pack.manifest.pack_id => r,
            Ok(r) => {
                return (
                    Concluded::new(
                        Verdict::Fail,
                        format!(
                            "provider {r} is not in the pack under test ({} {})",
                            pack.manifest.pack_id, pack.manifest.version
                        ),
                        data,
                    ),
                    None,
                );
            }
            Err(e) => return (Concluded::new(Verdict::Fail, e, data), None),
        };
        let spec = match self.app.provider_spec(&reference, None).await {
            Ok(s) => s,
            Err(e) => {
                let mut c = Concluded::error(&e, "the provider is not usable");
                c.data = data;
                return (c, None);
            }
        };
        let modes: Vec<AccessMode> = c.keys_by_mode.iter().map(|(m, _)| *m).collect();
        let unsold: Vec<&str> = modes
            .iter()
            .filter(|m| !spec.access.modes.contains(m))
            .map(|m| m.as_str())
            .collect();
        data["provider"] = json!({
            "ref": reference,
            "display_name": spec.display_name,
            "openai_base_url": spec.openai_base_url,
            "platform": spec.platform,
            "account_mode": spec.account_mode,
            "smoke_test_model": spec.smoke_test_model,
            "smoke_upstream_model": smoke_upstream_model(&spec),
            "modes": spec.access.modes,
            "quota_limited": spec.quota_limited,
            "models": spec.models.iter().map(|m| json!({
                "name": m.name, "upstream_name": m.upstream_name, "price": m.price,
            })).collect::<Vec<_>>(),
        });
        let concluded = if unsold.is_empty() {
            Concluded::new(
                Verdict::Pass,
                format!(
                    "pack {} {} installed (checksum {}); {} declares the modes under test",
                    pack.manifest.pack_id,
                    pack.manifest.version,
                    short(&pack.checksum),
                    reference
                ),
                data,
            )
        } else {
            Concluded::new(
                Verdict::Fail,
                format!(
                    "{reference} is not sold in {} mode (the pack allows: {})",
                    unsold.join(", "),
                    spec.access
                        .modes
                        .iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                data,
            )
        };
        // Known even when a mode is not sold: the direct upstream probes
        // (17, 19) still have something to say about the keys.
        (concluded, Some((reference, spec)))
    }

    pub(super) async fn probe(&mut self, c: &Chain) -> Concluded {
        // A database kept from an earlier run (`--db`) may know the host.
        match self.app.host(HOST_NAME).await {
            Ok(known) if same_url(&known.base_url, &c.url) => {}
            Ok(known) => {
                return Concluded::new(
                    Verdict::Fail,
                    format!(
                        "this database registers host {HOST_NAME:?} at {}, not {}; use another --db",
                        known.base_url, c.url
                    ),
                    json!({ "registered_url": known.base_url }),
                );
            }
            Err(_) => {
                let added = self
                    .app
                    .add_host(NewHost {
                        name: HOST_NAME.into(),
                        base_url: c.url.clone(),
                        admin_key: AdminKeySource::Value(c.admin_key.clone()),
                        reconcile_every_secs: None,
                    })
                    .await;
                if let Err(e) = added {
                    return Concluded::error(&e, "the host could not be registered");
                }
            }
        }
        let view = match self.app.probe_host(HOST_NAME).await {
            Ok(v) => v,
            Err(e) => return Concluded::error(&e, "the host probe failed"),
        };
        self.header.host.version = view.version.clone();
        let data =
            serde_json::to_value(&view).unwrap_or_else(|e| json!({ "error": e.to_string() }));
        let version = view.version.clone().unwrap_or_else(|| "unknown".into());
        let Some(caps) = &view.capabilities else {
            return Concluded::new(Verdict::Fail, "the probe stored no capabilities", data);
        };
        match &caps.admin_auth {
            AdminAuth::Ok if caps.chat_completions => Concluded::new(
                Verdict::Pass,
                format!("sub2api {version}: admin key accepted, /v1/chat/completions present"),
                data,
            ),
            // Older hosts serve /v1/messages instead (sub2api d3e73f1
            // routes/gateway.go); the access check completes through it.
            AdminAuth::Ok => Concluded::new(
                Verdict::Pass,
                format!(
                    "sub2api {version}: admin key accepted; no /v1/chat/completions, so access is checked through /v1/messages (Anthropic Messages)"
                ),
                data,
            ),
            AdminAuth::ComplianceGate { document_url } => Concluded::new(
                Verdict::Fail,
                format!(
                    "sub2api {version}: admin routes answer 423 until an administrator accepts the compliance notice{}",
                    document_url
                        .as_deref()
                        .map(|u| format!(" at {u}"))
                        .unwrap_or_default()
                ),
                data,
            )
            .class(Some(FailureClass::AuthIssue)),
            AdminAuth::Rejected { reason } => Concluded::new(
                Verdict::Fail,
                format!("sub2api {version}: the admin key is rejected ({reason})"),
                data,
            )
            .class(Some(FailureClass::AuthIssue)),
        }
    }

    pub(super) async fn preview(&mut self, r: &ProviderRef, c: &Chain) -> Concluded {
        let mut per_mode = Vec::new();
        let mut verdicts = Vec::new();
        let mut notes = Vec::new();
        let mut class = None;
        for (mode, keys) in &c.keys_by_mode {
            match self.app.preview(HOST_NAME, r, *mode, keys.clone()).await {
                Ok(p) => {
                    let blocked: Vec<String> = p
                        .plan
                        .blocked()
                        .map(|i| {
                            format!(
                                "{} {}: {}",
                                i.kind,
                                i.name,
                                i.reason.as_deref().unwrap_or("blocked")
                            )
                        })
                        .collect();
                    if blocked.is_empty() {
                        verdicts.push(Verdict::Pass);
                        notes.push(format!(
                            "{mode}: {} to create, {} to adopt, {} unchanged",
                            p.plan.count(crm_domain::PlanAction::Create),
                            p.plan.count(crm_domain::PlanAction::Adopt),
                            p.plan.count(crm_domain::PlanAction::NoOp)
                        ));
                    } else {
                        verdicts.push(Verdict::Fail);
                        notes.push(format!("{mode}: blocked: {}", blocked.join("; ")));
                    }
                    per_mode.push(json!({ "mode": mode, "report": p }));
                }
                Err(e) => {
                    verdicts.push(Verdict::Fail);
                    class = class.or(class_of_error(&e));
                    notes.push(format!("{mode}: preview failed: {e}"));
                    per_mode.push(json!({ "mode": mode, "error": e.to_string() }));
                }
            }
        }
        let verdict = worst_of(verdicts).unwrap_or(Verdict::Fail);
        Concluded::new(verdict, notes.join("; "), json!({ "previews": per_mode })).class(class)
    }

    pub(super) async fn import(
        &mut self,
        r: &ProviderRef,
        c: &Chain,
    ) -> (Concluded, Vec<Imported>) {
        let mut per_mode = Vec::new();
        let mut verdicts = Vec::new();
        let mut notes = Vec::new();
        let mut class = None;
        let mut done = Vec::new();
        for (mode, keys) in &c.keys_by_mode {
            let input = ImportInput {
                host: HOST_NAME.into(),
                provider: r.clone(),
                mode: *mode,
                upstream_keys: keys.clone(),
                user: c
                    .user
                    .as_ref()
                    .map(|u| (u.email.clone(), u.password.clone())),
                starting_balance: None,
                verify: true,
                accept_url_change: false,
                monitor: None,
            };
            match self.app.import(input).await {
                Ok(report) => {
                    let ok = report.succeeded();
                    verdicts.push(if ok { Verdict::Pass } else { Verdict::Fail });
                    notes.push(format!(
                        "{mode}: batch {} {}{}",
                        report.batch.id,
                        report.batch.status,
                        report
                            .error
                            .as_deref()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default()
                    ));
                    per_mode.push(json!({ "mode": mode, "report": report }));
                    done.push(Imported {
                        mode: *mode,
                        result: Ok(report),
                    });
                }
                Err(e) => {
                    verdicts.push(Verdict::Fail);
                    class = class.or(class_of_error(&e));
                    notes.push(format!("{mode}: import failed: {e}"));
                    per_mode.push(json!({ "mode": mode, "error": e.to_string() }));
                    done.push(Imported {
                        mode: *mode,
                        result: Err(e.to_string()),
                    });
                }
            }
        }
        let verdict = worst_of(verdicts).unwrap_or(Verdict::Fail);
        (
            Concluded::new(verdict, notes.join("; "), json!({ "imports": per_mode })).class(class),
            done,
        )
    }

    pub(super) async fn access_status(&mut self, imported: &[Imported]) -> Concluded {
        let mut per_mode = Vec::new();
        let mut verdicts = Vec::new();
        let mut classes = Vec::new();
        let mut notes = Vec::new();
        for i in imported {
            let report = match &i.result {
                Ok(r) => r,
                Err(e) => {
                    notes.push(format!("{}: no access check, the import failed", i.mode));
                    per_mode.push(json!({ "mode": i.mode, "import_error": e }));
                    continue;
                }
            };
            // Read back: closing the second mode can move the first to `fully_ready`.
            let batch = self.app.batch(report.batch.id.as_str()).await.ok();
            let access_status = batch
                .as_ref()
                .map(|b| b.access_status)
                .unwrap_or(report.access_status);
            match &report.access_check {
                Some(check) => {
                    verdicts.push(check.verdict);
                    if check.verdict != Verdict::Pass {
                        classes.push((check.verdict, check.failure_class));
                    }
                    notes.push(format!(
                        "{}: {} ({}){}",
                        i.mode,
                        check.verdict,
                        access_status,
                        check
                            .failure_class
                            .map(|c| format!(" {c}: {}", check.summary))
                            .unwrap_or_else(|| format!(": {}", check.summary))
                    ));
                }
                None => {
                    verdicts.push(Verdict::Fail);
                    notes.push(format!(
                        "{}: access was not verified (batch {})",
                        i.mode, report.batch.status
                    ));
                }
            }
            per_mode.push(json!({
                "mode": i.mode,
                "batch_id": report.batch.id,
                "access_status": access_status,
                "access_plan": report.access_plan,
                "check": report.access_check,
            }));
        }
        let verdict = worst_of(verdicts.iter().copied()).unwrap_or(Verdict::Fail);
        // The class of the worst check decides (a failure over an advisory).
        let class = classes
            .iter()
            .filter(|(v, _)| *v == verdict)
            .find_map(|(_, c)| *c);
        Concluded::new(verdict, notes.join("; "), json!({ "checks": per_mode })).class(class)
    }

    /// Reads the closure secrets back so the leak scan covers them. Returns
    /// what could not be read (reported, not fatal).
    pub(super) async fn reveal_closure_secrets(&mut self, imported: &[Imported]) -> Vec<String> {
        let mut unchecked = Vec::new();
        for i in imported {
            let Ok(report) = &i.result else { continue };
            match self.app.closure_secrets(&report.batch.id).await {
                Ok(Some(s)) => {
                    self.secrets.add(SecretKind::UserPassword, s.user_password);
                    self.secrets.add(SecretKind::UserKey, s.user_key);
                }
                Ok(None) => {}
                Err(e) => unchecked.push(format!("batch {}: {e}", report.batch.id)),
            }
        }
        unchecked
    }

    pub(super) async fn reconcile(&mut self, r: &ProviderRef) -> Concluded {
        let report = match self
            .app
            .reconcile(ReconcileRequest {
                host: HOST_NAME.into(),
                provider: Some(r.clone()),
                ..ReconcileRequest::default()
            })
            .await
        {
            Ok(rep) => rep,
            Err(e) => return Concluded::error(&e, "reconcile failed"),
        };
        let items = report.run.items.len();
        let data = json!({ "report": report });
        match report.run.status {
            ReconcileStatus::InSync => Concluded::new(
                Verdict::Pass,
                format!("{r} is in sync with the journal right after import"),
                data,
            ),
            ReconcileStatus::Drifted => Concluded::new(
                Verdict::Fail,
                format!(
                    "{items} drift item(s) right after crm's own import: the host does not keep what crm wrote"
                ),
                data,
            ),
            ReconcileStatus::Unreachable => Concluded::new(
                Verdict::Fail,
                "the host became unreachable during reconcile",
                data,
            )
            .class(Some(FailureClass::HostUnreachable)),
            ReconcileStatus::Error => Concluded::new(
                Verdict::Fail,
                format!(
                    "reconcile ended in error: {}",
                    report.run.error.as_deref().unwrap_or("no detail")
                ),
                data,
            ),
        }
    }

    pub(super) async fn rollback(&mut self, r: &ProviderRef) -> (Concluded, Concluded) {
        let views: Vec<RollbackView> = match self.app.rollback_provider(HOST_NAME, r).await {
            Ok(v) => v,
            Err(e) => {
                let c = Concluded::error(&e, "rollback failed");
                return (
                    c,
                    Concluded::skipped("skipped: the rollback failed (11-rollback.json)"),
                );
            }
        };
        let mut verdicts = Vec::new();
        let mut notes = Vec::new();
        for v in &views {
            let ok = v.report.status == BatchStatus::RolledBack;
            verdicts.push(if ok { Verdict::Pass } else { Verdict::Fail });
            notes.push(format!(
                "batch {} {}: {} deleted, {} kept, {} left{}",
                v.report.batch,
                v.report.status,
                v.report.deleted.len(),
                v.report.kept.len(),
                v.report.left.len(),
                if v.report.left.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", v.report.left.join("; "))
                }
            ));
        }
        let rollback = if views.is_empty() {
            Concluded::new(
                Verdict::Pass,
                "no live batch to roll back",
                json!({ "rollbacks": [] }),
            )
        } else {
            Concluded::new(
                worst_of(verdicts).unwrap_or(Verdict::Fail),
                notes.join("; "),
                json!({ "rollbacks": views }),
            )
        };

        let mut verdicts = Vec::new();
        let mut notes = Vec::new();
        let mut per_batch = Vec::new();
        for v in &views {
            let batch = self.app.batch(v.report.batch.as_str()).await.ok();
            let checks = self
                .app
                .batch_detail(v.report.batch.as_str())
                .await
                .map(|d| d.access_checks)
                .unwrap_or_default();
            let refusal_check = checks.last().cloned();
            let (verdict, note) = match v.key_refusal {
                Some(KeyRefusal::Refused) => (
                    Some(Verdict::Pass),
                    format!("batch {}: the user key is refused", v.report.batch),
                ),
                Some(KeyRefusal::StillServed) => (
                    Some(Verdict::Fail),
                    format!(
                        "batch {}: the user key is STILL served after rollback; delete it on the host by hand",
                        v.report.batch
                    ),
                ),
                Some(KeyRefusal::Inconclusive) => (
                    Some(Verdict::PassWithAdvisories),
                    format!(
                        "batch {}: could not tell whether the user key is refused",
                        v.report.batch
                    ),
                ),
                None => (
                    None,
                    format!("batch {}: had no access closure to check", v.report.batch),
                ),
            };
            if let Some(v) = verdict {
                verdicts.push(v);
            }
            notes.push(note);
            per_batch.push(json!({
                "batch_id": v.report.batch,
                "batch_status": batch.as_ref().map(|b| b.status),
                "access_status": batch.as_ref().map(|b| b.access_status),
                "key_refusal": v.key_refusal,
                "check": refusal_check,
            }));
        }
        let post = match worst_of(verdicts) {
            Some(v) => Concluded::new(v, notes.join("; "), json!({ "batches": per_batch })),
            None => Concluded::skipped("skipped: no batch had an access closure to check"),
        };
        (rollback, post)
    }
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim().trim_end_matches('/')
}

fn short(checksum: &str) -> &str {
    &checksum[..checksum.len().min(12)]
}
