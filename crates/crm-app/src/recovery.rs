//! Finishing an interrupted import end to end: provisioning first (the
//! journal's pending intents resolved by natural key), then the access
//! closure the import would have closed, then its verification.
//!
//! [`App::resume_batch`] finishes provisioning only. A process killed while
//! closing access leaves an `applied` batch whose closure intents (user, key,
//! subscription, balance) are still pending; closing access again resolves
//! them by natural key (`crm-access`), so the same user and key are adopted
//! rather than created twice.

use crate::App;
use crate::error::Result;
use crm_access::{ClosureRequest, KeyChoice, UserChoice, VerifyOptions};
use crm_domain::access::AccessCheck;
use crm_domain::batch::ImportBatch;
use crm_domain::ops::Target;
use crm_domain::plan::Plan;
use crm_domain::ports::BatchRepo;
use crm_domain::{AccessStatus, BatchStatus, JournalState, ResourceKind, SecretString};
use crm_provision::ApplyReport;

/// What finishing a batch did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FinishReport {
    pub batch: ImportBatch,
    /// Provisioning resumed (only when the batch was not applied yet).
    pub resumed: Option<ApplyReport>,
    /// The access closure applied afterwards, when it was not complete.
    pub access_plan: Option<Plan>,
    pub access_check: Option<AccessCheck>,
    pub access_status: AccessStatus,
    /// Whether anything on the host changed.
    pub changed: bool,
}

/// How to finish a batch.
#[derive(Debug, Default)]
pub struct FinishInput {
    /// The batch's upstream keys: crm keeps only their fingerprints, so
    /// accounts still to be created need them again.
    pub upstream_keys: Vec<SecretString>,
    /// The existing host user the import closed access for, if not crm's probe user.
    pub user: Option<(String, SecretString)>,
    /// Verify access after closing it.
    pub verify: bool,
}

fn closure_kind(k: ResourceKind) -> bool {
    matches!(
        k,
        ResourceKind::User
            | ResourceKind::UserApiKey
            | ResourceKind::Subscription
            | ResourceKind::BalanceGrant
    )
}

impl App {
    /// Resumes provisioning if needed, then closes and verifies access if
    /// the import was interrupted before it had.
    pub async fn finish_batch(&self, id: &str, input: FinishInput) -> Result<FinishReport> {
        let batch = self.batch(id).await?;
        let ctx = self.host_ctx(batch.host_id.as_str()).await?;
        let target = Target::batch(&batch.id).to_string();
        let resumed = if batch.status.is_resumable() {
            let r = ctx
                .prov
                .resume(&batch.id, input.upstream_keys.clone())
                .await;
            self.audit(
                "batch.resume",
                &target,
                match &r {
                    Ok(r) => r.batch.status.as_str(),
                    Err(_) => "error",
                },
                r.as_ref().err().map(|e| e.to_string()),
            )
            .await;
            Some(r?)
        } else {
            None
        };
        let mut changed = resumed.as_ref().is_some_and(|r| !r.noop);
        let batch = self.store.get_batch(&batch.id).await?;
        let mut report = FinishReport {
            access_status: batch.access_status,
            batch,
            resumed,
            access_plan: None,
            access_check: None,
            changed,
        };
        if report.batch.status != BatchStatus::Applied {
            return Ok(report);
        }
        let journal = self.store.journal(&report.batch.id).await?;
        let closure_pending = journal
            .iter()
            .any(|e| closure_kind(e.kind) && e.state == JournalState::Pending);
        let never_closed = !journal.iter().any(|e| closure_kind(e.kind));
        // Killed after the closure but before its verification: the
        // closure is complete, its access status was never set.
        let unverified = input.verify && !report.access_status.is_ready();
        if !closure_pending && !never_closed && !unverified {
            return Ok(report);
        }

        let spec = self
            .provider_spec(
                &report.batch.provider,
                Some(report.batch.pack_version.clone()),
            )
            .await?;
        let lease = ctx.prov.acquire(&report.batch.provider, "resume").await?;
        let p = self.access_ports(ctx.api.as_ref());
        let request = ClosureRequest {
            user: match input.user {
                Some((email, password)) => UserChoice::Existing { email, password },
                None => UserChoice::Probe,
            },
            key: KeyChoice::Create,
            starting_balance: None,
            validity_days: None,
        };
        let outcome = async {
            let closure =
                crm_access::close_access(&p, &ctx.caps, &report.batch.id, &spec, &request).await?;
            let plan = closure.plan.to_plan();
            let check = if input.verify {
                lease.heartbeat().await?;
                Some(
                    crm_access::verify_access(
                        &p,
                        &report.batch.id,
                        &spec,
                        &closure.key,
                        &VerifyOptions {
                            skip_completion: false,
                            upstream_keys: input.upstream_keys,
                            fingerprinter: Some(self.fingerprinter.clone()),
                            caps: Some(ctx.caps.clone()),
                        },
                    )
                    .await?,
                )
            } else {
                None
            };
            Ok::<_, crate::AppError>((plan, check))
        }
        .await;
        let released = lease.release().await;
        self.audit(
            "batch.close_access",
            &target,
            if outcome.is_ok() { "ok" } else { "error" },
            outcome.as_ref().err().map(|e| e.to_string()),
        )
        .await;
        let (plan, check) = outcome?;
        released?;
        changed |= !plan.is_noop();
        report.access_plan = Some(plan);
        report.access_check = check;
        report.batch = self.store.get_batch(&report.batch.id).await?;
        report.access_status = report.batch.access_status;
        report.changed = changed;
        Ok(report)
    }
}
