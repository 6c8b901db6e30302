//! Provider use cases: list and show pack providers; preview, import (with
//! access closure and verification), verify, roll back, rotate keys and
//! assign subscriptions on a host. Each runs the use-case crates over the
//! store and a connected host, and audits what it changed.

use crate::App;
use crate::error::{AppError, Result};
use crm_access::{AccessPorts, ClosureRequest, KeyChoice, KeyRefusal, UserChoice, VerifyOptions};
use crm_domain::access::AccessCheck;
use crm_domain::batch::ImportBatch;
use crm_domain::host::{Capabilities, HostRecord};
use crm_domain::ops::Target;
use crm_domain::plan::{Plan, UrlChange};
use crm_domain::ports::{BatchRepo, HostApi, PackRepo};
use crm_domain::spec::ProviderSpec;
use crm_domain::{
    AccessMode, AccessStatus, BatchId, BatchStatus, HostObjectId, ProviderRef, SecretString,
};
use crm_provision::{ApplyReport, ImportRequest, Provisioner, RollbackReport};
use std::sync::Arc;

/// A provider of an installed pack, for listings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProviderSummary {
    pub provider: ProviderRef,
    pub display_name: String,
    pub pack_version: String,
    pub native_platform: String,
    pub fallback_platform: String,
    pub models: usize,
    pub smoke_test_model: String,
    pub modes: Vec<AccessMode>,
}

/// Everything an import needs.
#[derive(Debug)]
pub struct ImportInput {
    pub host: String,
    pub provider: ProviderRef,
    pub mode: AccessMode,
    pub upstream_keys: Vec<SecretString>,
    /// An existing host user for the closure; crm creates a probe user otherwise.
    pub user: Option<(String, SecretString)>,
    pub starting_balance: Option<f64>,
    /// Verify access after closing it.
    pub verify: bool,
    /// The operator confirmed that accounts move to the current pack
    /// version's base URLs (the preview's `url_changes`).
    pub accept_url_change: bool,
    /// Create a host-side channel monitor (`--monitor`); `None` takes the
    /// pack's `monitor` default. Hosts without channel monitors get a plan
    /// note instead (crm_provision::ImportRequest::monitor).
    pub monitor: Option<bool>,
}

/// What a preview found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PreviewReport {
    pub host: String,
    pub provider: ProviderRef,
    pub mode: AccessMode,
    pub pack_version: String,
    /// The live batch the plan applies to, if any.
    pub batch: Option<BatchId>,
    /// Where the upstream keys go: the provider's base URLs.
    pub base_urls: BaseUrls,
    pub plan: Plan,
    /// Accounts this pack version moves away from their recorded base URL
    /// (each also a `base_url` change of its account item); an import
    /// applies them only with `accept_url_change`.
    pub url_changes: Vec<UrlChange>,
    /// What closing access would create (only when a batch exists already).
    pub access_plan: Option<Plan>,
    /// Whether applying would change anything.
    pub changes: bool,
    pub host_requests: u32,
}

/// A provider's base URLs in one preview: the ones the pack declares and
/// the one the import's accounts use on this host.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BaseUrls {
    /// The pack's OpenAI-compatible base URL.
    pub openai: String,
    /// The pack's Anthropic base URL, if the provider has one.
    pub anthropic: Option<String>,
    /// The one the accounts use on this host (by the platform chosen);
    /// `None` when no platform is available (the plan is blocked).
    pub accounts: Option<String>,
}

/// What an import did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportReport {
    pub host: String,
    pub batch: ImportBatch,
    pub plan: Plan,
    pub noop: bool,
    pub error: Option<String>,
    /// The access closure applied after the import, if the import applied.
    pub access_plan: Option<Plan>,
    pub access_check: Option<AccessCheck>,
    pub access_status: AccessStatus,
    pub host_requests: u32,
}

impl ImportReport {
    /// Whether the import ended with everything in place.
    pub fn succeeded(&self) -> bool {
        self.batch.status == BatchStatus::Applied && self.error.is_none()
    }
}

/// What rolling back one batch did, including the check that its key is refused.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RollbackView {
    pub report: RollbackReport,
    /// `None` when the batch had no access closure.
    pub key_refusal: Option<KeyRefusal>,
}

/// Per-host wiring of the use-case crates.
pub(crate) struct HostCtx {
    pub record: HostRecord,
    pub api: Arc<dyn HostApi>,
    pub caps: Capabilities,
    pub prov: Provisioner,
}

impl App {
    pub(crate) async fn host_ctx(&self, host: &str) -> Result<HostCtx> {
        let mut record = self.host(host).await?;
        let caps = self.capabilities(&mut record).await?;
        let api = self.connect(&record).await?;
        let store = Arc::new(self.store.clone());
        let prov = Provisioner {
            host_id: record.id.clone(),
            host: api.clone(),
            caps: caps.clone(),
            batches: store.clone(),
            leases: store.clone(),
            packs: store,
            clock: self.clock.clone(),
            ids: self.ids.clone(),
            sealer: self.store.sealer(),
            fingerprinter: self.fingerprinter.clone(),
            holder: self.holder(),
            lease_ttl: self.lease_ttl,
            max_concurrency: self.host_concurrency,
        };
        Ok(HostCtx {
            record,
            api,
            caps,
            prov,
        })
    }

    /// Who holds leases taken by this process: the actor, and the process
    /// as `pid N@host` (plus `CRM_REPLICA_ID` when set), so operators and
    /// other replicas sharing a PostgreSQL store can tell replicas apart
    /// and a dead holder is only judged dead on its own machine.
    pub(crate) fn holder(&self) -> String {
        crate::leases::holder_name(&self.actor)
    }

    pub(crate) fn access_ports<'a>(&'a self, api: &'a dyn HostApi) -> AccessPorts<'a> {
        AccessPorts {
            host: api,
            upstream: self.upstream.as_ref(),
            batches: &self.store,
            checks: &self.store,
            funds: &self.store,
            clock: self.clock.as_ref(),
            ids: self.ids.as_ref(),
            sealer: &self.store,
        }
    }

    /// The provider spec of an installed pack version (current when `None`).
    pub async fn provider_spec(
        &self,
        provider: &ProviderRef,
        version: Option<String>,
    ) -> Result<ProviderSpec> {
        let pack = self
            .store
            .get_pack(&provider.pack, version)
            .await
            .map_err(|e| match e {
                crm_domain::ports::StoreError::NotFound { .. } => AppError::NotFound {
                    what: format!("pack {}", provider.pack),
                    hint: Some("install it with `crm pack install`".into()),
                },
                other => other.into(),
            })?;
        pack.manifest
            .provider(provider.provider.as_str())
            .cloned()
            .ok_or_else(|| AppError::NotFound {
                what: format!("provider {provider}"),
                hint: Some(format!(
                    "pack {} {} declares: {}",
                    pack.manifest.pack_id,
                    pack.manifest.version,
                    pack.manifest
                        .providers
                        .iter()
                        .map(|p| p.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            })
    }

    /// Providers of the current version of every installed pack (or one pack).
    pub async fn list_providers(&self, pack: Option<&str>) -> Result<Vec<ProviderSummary>> {
        let mut out = Vec::new();
        for p in self.store.list_packs().await? {
            if !p.current || pack.is_some_and(|want| p.manifest.pack_id.as_str() != want) {
                continue;
            }
            for spec in &p.manifest.providers {
                out.push(ProviderSummary {
                    provider: p.manifest.provider_ref(spec),
                    display_name: spec.display_name.clone(),
                    pack_version: p.manifest.version.clone(),
                    native_platform: spec.platform.native.to_string(),
                    fallback_platform: spec.platform.fallback.to_string(),
                    models: spec.models.len(),
                    smoke_test_model: spec.smoke_test_model.clone(),
                    modes: spec.access.modes.clone(),
                });
            }
        }
        out.sort_by(|a, b| a.provider.cmp(&b.provider));
        Ok(out)
    }

    /// Read-only: what importing would do.
    pub async fn preview(
        &self,
        host: &str,
        provider: &ProviderRef,
        mode: AccessMode,
        upstream_keys: Vec<SecretString>,
    ) -> Result<PreviewReport> {
        self.preview_with(host, provider, mode, upstream_keys, None)
            .await
    }

    /// [`App::preview`] of an import with `monitor` (`--monitor`; `None`
    /// takes the pack's default).
    pub async fn preview_with(
        &self,
        host: &str,
        provider: &ProviderRef,
        mode: AccessMode,
        upstream_keys: Vec<SecretString>,
        monitor: Option<bool>,
    ) -> Result<PreviewReport> {
        let spec = self.provider_spec(provider, None).await?;
        let ctx = self.host_ctx(host).await?;
        let preview = ctx
            .prov
            .preview(&ImportRequest {
                provider: provider.clone(),
                pack_version: None,
                mode,
                upstream_keys,
                accept_url_change: false,
                monitor,
            })
            .await?;
        let access_plan = match &preview.batch {
            Some(b) => {
                let p = self.access_ports(ctx.api.as_ref());
                let plan = crm_access::apply::preview_access(
                    &p,
                    &ctx.caps,
                    b,
                    &spec,
                    mode,
                    &ClosureRequest::probe(),
                )
                .await?;
                Some(plan.to_plan())
            }
            None => None,
        };
        let changes = !preview.plan.is_noop()
            || access_plan.as_ref().is_some_and(|p| !p.is_noop())
            || preview.batch.is_none();
        Ok(PreviewReport {
            host: ctx.record.name,
            provider: provider.clone(),
            mode,
            pack_version: preview.pack_version,
            batch: preview.batch,
            base_urls: BaseUrls {
                openai: spec.openai_base_url.clone(),
                anthropic: spec.anthropic_base_url.clone(),
                accounts: preview.base_url,
            },
            url_changes: preview.plan.url_changes(),
            plan: preview.plan,
            access_plan,
            changes,
            host_requests: preview.host_requests,
        })
    }

    /// Imports a provider, closes access in the batch's mode and verifies it,
    /// all under one (host, provider) lease.
    pub async fn import(&self, input: ImportInput) -> Result<ImportReport> {
        let spec = self.provider_spec(&input.provider, None).await?;
        let ctx = self.host_ctx(&input.host).await?;
        if !spec.access.modes.contains(&input.mode) {
            return Err(AppError::invalid(format!(
                "{} is not sold in {} mode (pack allows: {})",
                input.provider,
                input.mode,
                spec.access
                    .modes
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let target = Target::provider(&ctx.record.name, &input.provider).to_string();
        let accepted = input.accept_url_change;
        let lease = ctx.prov.acquire(&input.provider, "import").await?;
        let result = self.import_holding(&ctx, &lease, &spec, input).await;
        let released = lease.release().await;
        match &result {
            Ok(r) => {
                let moved = r.plan.url_changes();
                let confirmed = match (accepted, moved.is_empty()) {
                    (false, _) => String::new(),
                    (true, true) => "; accept_url_change (no URL changed)".into(),
                    (true, false) => format!(
                        "; accept_url_change: {}",
                        moved
                            .iter()
                            .map(|c| c.to_string())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                };
                self.audit(
                    "provider.import",
                    &target,
                    r.batch.status.as_str(),
                    Some(format!(
                        "batch {} access {}{confirmed}",
                        r.batch.id, r.access_status
                    )),
                )
                .await
            }
            Err(e) => {
                let confirmed = if accepted { "; accept_url_change" } else { "" };
                self.audit(
                    "provider.import",
                    &target,
                    "error",
                    Some(format!("{e}{confirmed}")),
                )
                .await
            }
        }
        let report = result?;
        released?;
        Ok(report)
    }

    async fn import_holding(
        &self,
        ctx: &HostCtx,
        lease: &crm_provision::HeldLease,
        spec: &ProviderSpec,
        input: ImportInput,
    ) -> Result<ImportReport> {
        let keys = input.upstream_keys.clone();
        let apply: ApplyReport = ctx
            .prov
            .import_holding(
                lease,
                ImportRequest {
                    provider: input.provider.clone(),
                    pack_version: None,
                    mode: input.mode,
                    upstream_keys: input.upstream_keys,
                    accept_url_change: input.accept_url_change,
                    monitor: input.monitor,
                },
            )
            .await?;
        let mut report = ImportReport {
            host: ctx.record.name.clone(),
            batch: apply.batch.clone(),
            plan: apply.plan.clone(),
            noop: apply.noop,
            error: apply.error.clone(),
            access_plan: None,
            access_check: None,
            access_status: apply.batch.access_status,
            host_requests: apply.host_requests,
        };
        if apply.batch.status != BatchStatus::Applied {
            return Ok(report);
        }
        lease.heartbeat().await?;
        let p = self.access_ports(ctx.api.as_ref());
        let request = ClosureRequest {
            user: match input.user {
                Some((email, password)) => UserChoice::Existing { email, password },
                None => UserChoice::Probe,
            },
            key: KeyChoice::Create,
            starting_balance: input.starting_balance,
            validity_days: None,
        };
        let batch_id = apply.batch.id.clone();
        let closure = crm_access::close_access(&p, &ctx.caps, &batch_id, spec, &request).await?;
        report.access_plan = Some(closure.plan.to_plan());
        if input.verify {
            lease.heartbeat().await?;
            let check = crm_access::verify_access(
                &p,
                &batch_id,
                spec,
                &closure.key,
                &VerifyOptions {
                    skip_completion: false,
                    upstream_keys: keys,
                    fingerprinter: Some(self.fingerprinter.clone()),
                    caps: Some(ctx.caps.clone()),
                },
            )
            .await?;
            report.access_check = Some(check);
        }
        report.batch = self.store.get_batch(&batch_id).await?;
        report.access_status = report.batch.access_status;
        report.host_requests = report
            .host_requests
            .saturating_add(ctx.api.request_count().saturating_sub(report.host_requests));
        Ok(report)
    }

    /// Live batches of a provider on a host.
    pub async fn provider_batches(
        &self,
        host: &str,
        provider: &ProviderRef,
    ) -> Result<Vec<ImportBatch>> {
        let record = self.host(host).await?;
        Ok(self.store.live_batches(&record.id, Some(provider)).await?)
    }

    /// Verifies access of every live, closed batch of a provider on a host.
    pub async fn verify_provider_access(
        &self,
        host: &str,
        provider: &ProviderRef,
        skip_completion: bool,
    ) -> Result<Vec<AccessCheck>> {
        self.verify_provider_access_with_keys(host, provider, skip_completion, Vec::new())
            .await
    }

    /// [`App::verify_provider_access`] with upstream keys in hand: each is
    /// matched to its account by fingerprint and probed directly (at that
    /// account's base URL) when the gateway's answer may be the upstream's
    /// doing. The keys are used for this check only, never stored.
    pub async fn verify_provider_access_with_keys(
        &self,
        host: &str,
        provider: &ProviderRef,
        skip_completion: bool,
        upstream_keys: Vec<SecretString>,
    ) -> Result<Vec<AccessCheck>> {
        let batches = self.provider_batches(host, provider).await?;
        if batches.is_empty() {
            return Err(AppError::NotFound {
                what: format!("a live batch of {provider} on host {host}"),
                hint: Some("import it first with `crm provider import`".into()),
            });
        }
        let ctx = self.host_ctx(host).await?;
        let mut checks = Vec::new();
        for b in batches {
            checks.push(
                self.verify_batch_with(&ctx, &b, skip_completion, upstream_keys.clone())
                    .await?,
            );
        }
        self.audit(
            "provider.access_check",
            &Target::provider(&ctx.record.name, provider).to_string(),
            "ok",
            Some(
                checks
                    .iter()
                    .map(|c| format!("{} {}", c.batch_id, c.verdict))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        )
        .await;
        Ok(checks)
    }

    pub(crate) async fn verify_batch_with(
        &self,
        ctx: &HostCtx,
        batch: &ImportBatch,
        skip_completion: bool,
        upstream_keys: Vec<SecretString>,
    ) -> Result<AccessCheck> {
        let spec = self
            .provider_spec(&batch.provider, Some(batch.pack_version.clone()))
            .await?;
        let p = self.access_ports(ctx.api.as_ref());
        Ok(crm_access::verify_batch(
            &p,
            &batch.id,
            &spec,
            &VerifyOptions {
                skip_completion,
                upstream_keys,
                fingerprinter: Some(self.fingerprinter.clone()),
                caps: Some(ctx.caps.clone()),
            },
        )
        .await?)
    }

    /// Rolls back every live batch of a provider on a host (pack-scoped).
    pub async fn rollback_provider(
        &self,
        host: &str,
        provider: &ProviderRef,
    ) -> Result<Vec<RollbackView>> {
        let batches = self.provider_batches(host, provider).await?;
        let ctx = self.host_ctx(host).await?;
        let mut out = Vec::new();
        for b in batches {
            out.push(self.rollback_with(&ctx, &b.id).await?);
        }
        Ok(out)
    }

    /// Rolls back one batch: closure first, then reverse apply order; then
    /// checks that the batch's user key is refused.
    pub(crate) async fn rollback_with(
        &self,
        ctx: &HostCtx,
        batch: &BatchId,
    ) -> Result<RollbackView> {
        let p = self.access_ports(ctx.api.as_ref());
        let target = Target::batch(batch).to_string();
        // A process killed while closing access leaves closure intents
        // pending; rollback refuses those, so resolve them by natural key
        // first (exactly what resuming would do) and roll back what exists.
        if let Err(e) = crm_access::apply::recover_closure_intents(&p, &ctx.caps, batch).await {
            self.audit("batch.rollback", &target, "error", Some(e.to_string()))
                .await;
            return Err(e.into());
        }
        // The key must be read back before the rollback deletes its user.
        let held = crm_access::apply::reveal_batch_key(&p, batch).await.ok();
        let report = match ctx.prov.rollback(batch).await {
            Ok(r) => r,
            Err(e) => {
                self.audit("batch.rollback", &target, "error", Some(e.to_string()))
                    .await;
                return Err(e.into());
            }
        };
        let key_refusal = match &held {
            Some(key) => Some(crm_access::check_key_refused(&p, batch, key).await?.0),
            None => None,
        };
        self.audit(
            "batch.rollback",
            &target,
            report.status.as_str(),
            (!report.left.is_empty()).then(|| format!("left: {}", report.left.join("; "))),
        )
        .await;
        Ok(RollbackView {
            report,
            key_refusal,
        })
    }

    /// Replaces one upstream key of a provider's batch in place.
    pub async fn rotate_key(
        &self,
        host: &str,
        provider: &ProviderRef,
        mode: AccessMode,
        old: &str,
        new: SecretString,
    ) -> Result<ImportBatch> {
        let ctx = self.host_ctx(host).await?;
        let batch =
            ctx.prov
                .live_batch(provider, mode)
                .await?
                .ok_or_else(|| AppError::NotFound {
                    what: format!("a live {mode} batch of {provider} on host {host}"),
                    hint: None,
                })?;
        let result = ctx.prov.rotate_key(&batch.id, old, new).await;
        self.audit(
            "provider.rotate_key",
            &Target::batch(&batch.id).to_string(),
            if result.is_ok() { "ok" } else { "error" },
            result.as_ref().err().map(|e| e.to_string()),
        )
        .await;
        Ok(result?)
    }

    /// Gives more host users a subscription to the provider's subscription group.
    pub async fn assign_subscriptions(
        &self,
        host: &str,
        provider: &ProviderRef,
        users: &[String],
        days: Option<u32>,
    ) -> Result<Vec<crm_access::apply::Assigned>> {
        let ctx = self.host_ctx(host).await?;
        let batch = ctx
            .prov
            .live_batch(provider, AccessMode::Subscription)
            .await?
            .ok_or_else(|| AppError::NotFound {
                what: format!("a live subscription batch of {provider} on host {host}"),
                hint: Some("import it with --mode subscription first".into()),
            })?;
        let spec = self
            .provider_spec(provider, Some(batch.pack_version.clone()))
            .await?;
        let refs: Vec<crm_access::apply::UserRef> = users
            .iter()
            .map(|u| match u.parse::<i64>() {
                Ok(id) => crm_access::apply::UserRef::Id(HostObjectId(id)),
                Err(_) => crm_access::apply::UserRef::Email(u.clone()),
            })
            .collect();
        let p = self.access_ports(ctx.api.as_ref());
        let result =
            crm_access::apply::assign_subscriptions(&p, &ctx.caps, &batch.id, &spec, &refs, days)
                .await;
        self.audit(
            "provider.assign_subscriptions",
            &Target::batch(&batch.id).to_string(),
            if result.is_ok() { "ok" } else { "error" },
            result.as_ref().err().map(|e| e.to_string()),
        )
        .await;
        Ok(result?)
    }
}
