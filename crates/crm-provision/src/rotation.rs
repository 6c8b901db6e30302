//! Upstream key rotation (docs/design.md §5): an account's key replaced in
//! place, journaled as `rotate_key`, under the batch's lease.

use crate::desired::account_name;
use crate::error::{ProvisionError, Result};
use crate::journal::{Intent, Step};
use crate::lease::HeldLease;
use crate::lookup::hmac_of_nk;
use crate::planner::recorded_key_hmac;
use crate::provisioner::{Provisioner, applied_or_refuse, live};
use crm_domain::batch::ImportBatch;
use crm_domain::observed::AccountPatch;
use crm_domain::{BatchId, JournalOp, ResourceKind, SecretString};
use serde_json::{Value, json};

impl Provisioner {
    /// Replaces the upstream key `old` (a fingerprint hmac, or a prefix of at
    /// least 8 hex digits) on the batch's account with `new`, in place
    /// (credentials update, no downtime). Journaled as `rotate_key`; the new
    /// fingerprint is recorded on the batch and in the resource's desired spec.
    pub async fn rotate_key(
        &self,
        batch: &BatchId,
        old: &str,
        new: SecretString,
    ) -> Result<ImportBatch> {
        let b = self.batches.get_batch(batch).await?;
        let lease = self.acquire(&b.provider, "rotate_key").await?;
        let r = self.rotate_key_holding(&lease, batch, old, new).await;
        lease.release_after(r).await
    }

    pub async fn rotate_key_holding(
        &self,
        lease: &HeldLease,
        batch: &BatchId,
        old: &str,
        new: SecretString,
    ) -> Result<ImportBatch> {
        let mut b = self.batches.get_batch(batch).await?;
        applied_or_refuse(
            &b,
            "keys can be rotated on applied or partially_applied batches only",
        )?;
        if old.len() < 8 {
            return Err(ProvisionError::Invalid(
                "name the old key by at least 8 hex digits of its fingerprint".into(),
            ));
        }
        let old_fp = b
            .upstream_keys
            .iter()
            .find(|k| k.hmac.starts_with(old))
            .cloned()
            .ok_or_else(|| {
                ProvisionError::Invalid(format!(
                    "batch {batch} has no upstream key with fingerprint {old} (it has: {})",
                    b.upstream_keys
                        .iter()
                        .map(|k| k.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let new_fp = self.fingerprinter.fingerprint(&new);
        if b.upstream_keys.iter().any(|k| k.hmac == new_fp.hmac) {
            return Err(ProvisionError::Invalid(format!(
                "the new key ({new_fp}) is already one of batch {batch}'s keys"
            )));
        }
        let resources = live(self.batches.resources(batch).await?);
        let r = resources
            .iter()
            .find(|r| {
                r.kind == ResourceKind::Account
                    && recorded_key_hmac(r).unwrap_or_else(|| hmac_of_nk(&r.natural_key))
                        == old_fp.hmac
            })
            .ok_or_else(|| {
                ProvisionError::Invalid(format!(
                    "batch {batch} has no live account for key {old_fp}; resume the batch first"
                ))
            })?;
        lease.heartbeat().await?;
        let pp = self
            .pack_provider(&b.provider, Some(b.pack_version.clone()))
            .await?;
        let mut desired = r.desired.clone();
        let new_name = account_name(&b.provider, &new_fp);
        desired["name"] = json!(new_name);
        desired["upstream_key"] = json!(new_fp);
        // Records written before keys were kept as fingerprints only.
        if let Some(o) = desired.as_object_mut() {
            o.remove(LEGACY_SEALED_KEY_FIELD);
        }
        let patch = AccountPatch {
            name: Some(new_name.clone()),
            api_key: Some(new),
            // Legacy hosts replace credentials wholesale: resend the rest.
            // The account's own base URL: it depends on the platform the
            // import chose (the Anthropic endpoint on hosts without chat
            // completions), not only on the pack.
            base_url: Some(
                desired
                    .get("base_url")
                    .and_then(Value::as_str)
                    .map(crate::desired::normalize_url)
                    .unwrap_or_else(|| crate::desired::normalize_url(&pp.spec.openai_base_url)),
            ),
            model_mapping: Some(pp.spec.model_mapping.clone()),
            ..AccountPatch::default()
        };
        let id = r.host_object_id;
        let host = &*self.host;
        let patch_ref = &patch;
        let intent = Intent {
            batch_id: b.id.clone(),
            op: JournalOp::RotateKey,
            kind: ResourceKind::Account,
            natural_key: r.natural_key.clone(),
            name: new_name,
            host_object_id: Some(id),
            desired,
        };
        self.update_recorded(Step::new(intent, move |_| {
            host.update_account(id, patch_ref)
        }))
        .await?;
        for k in b.upstream_keys.iter_mut() {
            if k.hmac == old_fp.hmac {
                *k = new_fp.clone();
            }
        }
        b.updated_at = self.clock.now();
        self.batches.update_batch(&b).await?;
        Ok(b)
    }
}

/// The field older records used for a sealed upstream key; removed when met.
pub(crate) const LEGACY_SEALED_KEY_FIELD: &str = "upstream_key_sealed";
