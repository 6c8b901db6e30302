//! What a diff compares: every live batch crm recorded on a host, and which
//! part of it a run is about.

use crm_domain::access::AccessCheck;
use crm_domain::batch::{ImportBatch, ManagedResource};
use crm_domain::reconcile::ReconcileScope;
use crm_domain::spec::ProviderSpec;
use crm_domain::{HostObjectId, ResourceKind, ResourceState};

/// One live batch and the resources it manages.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedBatch {
    pub batch: ImportBatch,
    pub resources: Vec<ManagedResource>,
    /// The batch's provider as its pack version declares it, when the pack
    /// is installed: what the platform choice is made from
    /// ([`crm_provision::desired::choose_platform`]).
    pub provider_spec: Option<ProviderSpec>,
}

impl RecordedBatch {
    /// Host ids of the live groups the batch manages (the default binding of
    /// its accounts and channels when their desired spec names none).
    pub fn groups(&self) -> Vec<HostObjectId> {
        let mut ids: Vec<HostObjectId> = self
            .resources
            .iter()
            .filter(|r| r.kind == ResourceKind::Group && r.state == ResourceState::Live)
            .map(|r| r.host_object_id)
            .collect();
        ids.sort();
        ids
    }
}

/// Everything crm recorded about one host, and which part of it a run is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// What the run compares. Items outside the scope are not reported.
    pub scope: ReconcileScope,
    /// Every live batch on the host, in scope or not: ownership questions
    /// ("is this marker's batch live?") need all of them.
    pub batches: Vec<RecordedBatch>,
    /// Optional access re-checks (one per batch) made for this run.
    pub access: Vec<AccessCheck>,
}

impl Recorded {
    /// Whether a batch is inside the run's scope.
    pub fn in_scope(&self, batch: &ImportBatch) -> bool {
        scope_contains(&self.scope, batch)
    }

    /// The in-scope batches.
    pub fn scoped(&self) -> impl Iterator<Item = &RecordedBatch> {
        self.batches.iter().filter(|b| self.in_scope(&b.batch))
    }
}

/// Whether `batch` is part of `scope`.
pub fn scope_contains(scope: &ReconcileScope, batch: &ImportBatch) -> bool {
    batch.host_id == scope.host_id
        && scope.batch_id.as_ref().is_none_or(|b| *b == batch.id)
        && scope.provider.as_ref().is_none_or(|p| *p == batch.provider)
}
