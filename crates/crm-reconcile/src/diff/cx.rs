//! The context every check of a diff reads from and writes its items into.

use super::recorded::Recorded;
use crm_domain::batch::ManagedResource;
use crm_domain::host::Capabilities;
use crm_domain::observed::{HostAccount, HostSnapshot};
use crm_domain::plan::FieldChange;
use crm_domain::reconcile::DriftItem;
use crm_domain::{BatchId, DriftCategory, HostObjectId, ProviderRef, ResourceKind, ResourceState};
use crm_provision::desired::AccountKey;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub(super) struct Cx<'a> {
    pub(super) recorded: &'a Recorded,
    pub(super) observed: &'a HostSnapshot,
    pub(super) caps: &'a Capabilities,
    /// Live batch -> provider, for ownership questions.
    pub(super) live: BTreeMap<&'a BatchId, &'a ProviderRef>,
    /// Every (kind, host id) any live batch records (any resource state but
    /// deleted), so a recorded object is never called a leftover.
    pub(super) recorded_ids: BTreeSet<(ResourceKind, HostObjectId)>,
    /// Accounts already reported as duplicates.
    pub(super) flagged: BTreeSet<HostObjectId>,
    /// Observed accounts by id, and by natural key in observed order:
    /// every recorded account looks itself and its duplicates up, so a scan
    /// per account made a host with thousands of accounts quadratic.
    pub(super) account_by_id: HashMap<HostObjectId, &'a HostAccount>,
    pub(super) accounts_by_key: HashMap<AccountKey, Vec<&'a HostAccount>>,
    pub(super) items: Vec<DriftItem>,
}

impl<'a> Cx<'a> {
    pub(super) fn new(
        recorded: &'a Recorded,
        observed: &'a HostSnapshot,
        caps: &'a Capabilities,
    ) -> Self {
        let live = recorded
            .batches
            .iter()
            .filter(|b| b.batch.status.is_live())
            .map(|b| (&b.batch.id, &b.batch.provider))
            .collect();
        let recorded_ids = recorded
            .batches
            .iter()
            .filter(|b| b.batch.status.is_live())
            .flat_map(|b| &b.resources)
            .filter(|r| r.state != ResourceState::Deleted)
            .map(|r| (r.kind, r.host_object_id))
            .collect();
        let account_by_id = observed.accounts.iter().map(|a| (a.id, a)).collect();
        let mut accounts_by_key: HashMap<AccountKey, Vec<&HostAccount>> = HashMap::new();
        for a in &observed.accounts {
            if let Some(key) = AccountKey::of(a) {
                accounts_by_key.entry(key).or_default().push(a);
            }
        }
        Cx {
            recorded,
            observed,
            caps,
            live,
            recorded_ids,
            flagged: BTreeSet::new(),
            account_by_id,
            accounts_by_key,
            items: vec![],
        }
    }

    pub(super) fn push(
        &mut self,
        category: DriftCategory,
        r: &ManagedResource,
        fields: Vec<FieldChange>,
        detail: String,
    ) {
        self.items.push(DriftItem {
            category,
            reason: None,
            kind: r.kind,
            name: r.name.clone(),
            host_object_id: Some(r.host_object_id),
            batch_id: Some(r.batch_id.clone()),
            fields,
            detail,
        });
    }

    /// An `unhealthy` item whose reason is not the host object's own state
    /// (repair leaves these alone: nothing on the host can fix them).
    pub(super) fn unhealthy(
        &mut self,
        r: &ManagedResource,
        reason: crm_domain::DriftReason,
        detail: String,
    ) {
        self.push(DriftCategory::Unhealthy, r, vec![], detail);
        if let Some(last) = self.items.last_mut() {
            last.reason = Some(reason);
        }
    }

    pub(super) fn missing(&mut self, r: &ManagedResource, detail: String) {
        self.push(DriftCategory::Missing, r, vec![], detail);
    }

    pub(super) fn changed(&mut self, r: &ManagedResource, fields: Vec<FieldChange>) {
        if fields.is_empty() {
            return;
        }
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        let detail = format!("differs from the recorded spec in {}", names.join(", "));
        self.push(DriftCategory::Changed, r, fields, detail);
    }

    /// Whether this host keeps notes on accounts (older hosts do not, and
    /// then crm's name is the only mark).
    pub(super) fn account_notes(&self) -> bool {
        // Same rule as provisioning uses when it decides to write notes.
        crm_provision::desired::account_notes_supported(self.caps)
            || self.observed.accounts.iter().any(|a| a.notes.is_some())
    }

    pub(super) fn user_notes(&self) -> bool {
        self.caps.channels || self.observed.users.iter().any(|u| u.notes.is_some())
    }
}
