//! The write-ahead journal executor every host mutation goes through
//! (docs/design.md §4 step 4 and §5 "Crash safety"; docs/design.md §5 "Crash safety").
//!
//! One [`Step`] is one mutation: its [`Intent`] is committed to the batch
//! journal **before** the host call, and resolved after it. The rules:
//!
//! - success: the entry becomes `applied` with the host id;
//! - a refusal (`HostError::is_refusal`): `failed`, nothing changed remotely;
//! - an unknown outcome (`HostError::outcome_unknown`) of a create-like step
//!   (create, balance grant): the step's natural-key lookup decides: exactly one
//!   match is adopted (`applied`, the detail says so), none is `failed` (a later
//!   resume creates it again under a new attempt), several is `needs_operator`.
//!   Without a lookup it is `needs_operator`. Creates are never retried blindly.
//! - an unknown outcome of an idempotent step (update, bind, delete, ...):
//!   `failed` with a detail saying it is safe to re-issue;
//! - a delete answered 404: `applied` (already absent counts as done).
//!
//! Replays are safe: a create whose intent already ended `applied` is not sent
//! again, and a `pending` leftover of a crash is resolved (lookup for
//! create-like steps, re-issue for idempotent ones) before anything new.

use crate::error::{ProvisionError, Result};
use crm_domain::batch::{JournalEntry, JournalResolution, NewJournalEntry};
use crm_domain::observed::{
    CreatedApiKey, HostAccount, HostApiKey, HostChannel, HostGroup, HostMonitor, HostSubscription,
    HostUser,
};
use crm_domain::ports::{BatchRepo, HostError, HostResult};
use crm_domain::secret::sha256_hex;
use crm_domain::{BatchId, HostObjectId, JournalOp, JournalState, ResourceKind};
use futures::future::BoxFuture;

/// What a mutation intends, before it is sent. No secrets in `desired`
/// (sealed secrets are fine: they are ciphertext).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Intent {
    pub batch_id: BatchId,
    pub op: JournalOp,
    pub kind: ResourceKind,
    /// How to find the object again (accounts: `platform|base_url|fingerprint`;
    /// groups and channels: their deterministic name; closure kinds: chosen by crm-access).
    pub natural_key: String,
    pub name: String,
    /// Target for updates, binds, deletes and adoptions.
    pub host_object_id: Option<HostObjectId>,
    pub desired: serde_json::Value,
}

impl Intent {
    /// `batch/op/kind/natural_key`: the deterministic part of the intent key.
    /// Attempts after the first get `#2`, `#3`, ... appended.
    pub fn base_key(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.batch_id, self.op, self.kind, self.natural_key
        )
    }

    /// Digest of the desired spec (sha256 of its JSON).
    pub fn spec_digest(&self) -> String {
        spec_digest(&self.desired)
    }

    /// The `Idempotency-Key` sent for this intent to hosts that honour one:
    /// stable across attempts, at most 128 printable ASCII characters.
    pub fn idempotency_key(&self) -> String {
        format!("crm-{}", &sha256_hex(self.base_key().as_bytes())[..40])
    }

    fn is_create_like(&self) -> bool {
        matches!(self.op, JournalOp::Create | JournalOp::GrantBalance)
    }
}

/// The journal natural key of a re-creation of the object `old` that had
/// `natural_key`: `<natural key>~recreated-from-<old id>`.
///
/// The executor replays (skips) a create whose intent already ended
/// `applied`, which the original create did; a re-creation is a new intent,
/// so its key names the object it replaces. It is deterministic, so an
/// interrupted re-creation finds its own intent again and is resolved by
/// natural-key lookup instead of creating twice. Shared by crm-provision
/// (re-import) and crm-reconcile (repair).
pub fn recreation_key(natural_key: &str, old: HostObjectId) -> String {
    format!("{}~recreated-from-{old}", base_natural_key(natural_key))
}

/// The natural key without any `~recreated-from-…` suffix.
pub fn base_natural_key(natural_key: &str) -> &str {
    natural_key.split('~').next().unwrap_or(natural_key)
}

/// sha256 of a desired spec's JSON text.
pub fn spec_digest(desired: &serde_json::Value) -> String {
    sha256_hex(desired.to_string().as_bytes())
}

/// A host object (or nothing, for `()`) a mutation returns; gives its host id.
pub trait HostObject {
    fn host_object_id(&self) -> Option<HostObjectId>;
}

macro_rules! host_object {
    ($($t:ty),*) => {$(
        impl HostObject for $t {
            fn host_object_id(&self) -> Option<HostObjectId> { Some(self.id) }
        }
    )*};
}
host_object!(
    HostAccount,
    HostGroup,
    HostChannel,
    HostUser,
    HostSubscription,
    HostApiKey,
    HostMonitor
);

impl HostObject for CreatedApiKey {
    fn host_object_id(&self) -> Option<HostObjectId> {
        Some(self.key.id)
    }
}

impl HostObject for () {
    fn host_object_id(&self) -> Option<HostObjectId> {
        None
    }
}

/// The boxed host call of a [`Step`].
pub type CallFn<'a, T> =
    Box<dyn FnOnce(Option<String>) -> BoxFuture<'a, HostResult<T>> + Send + 'a>;
/// A boxed natural-key lookup (fresh list calls; ids of every match).
pub type LookupFn<'a> =
    Box<dyn Fn() -> BoxFuture<'a, HostResult<Vec<HostObjectId>>> + Send + Sync + 'a>;

/// One journaled mutation: the intent, the host call, and how to find the
/// object by natural key when the call's outcome is unknown.
pub struct Step<'a, T> {
    pub intent: Intent,
    call: CallFn<'a, T>,
    lookup: Option<LookupFn<'a>>,
}

impl<T> std::fmt::Debug for Step<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("intent", &self.intent)
            .field("has_lookup", &self.lookup.is_some())
            .finish()
    }
}

impl<'a, T> Step<'a, T> {
    /// `call` receives the `Idempotency-Key` to send: `Some` only for creates
    /// on hosts whose capabilities say they honour one.
    pub fn new(
        intent: Intent,
        call: impl FnOnce(Option<String>) -> BoxFuture<'a, HostResult<T>> + Send + 'a,
    ) -> Self {
        Step {
            intent,
            call: Box::new(call),
            lookup: None,
        }
    }

    /// Natural-key lookup with fresh list calls: the ids of every host object
    /// that matches the intent's natural key. Required for create-like steps
    /// to recover from an unknown outcome without an operator.
    pub fn with_lookup(
        mut self,
        lookup: impl Fn() -> BoxFuture<'a, HostResult<Vec<HostObjectId>>> + Send + Sync + 'a,
    ) -> Self {
        self.lookup = Some(Box::new(lookup));
        self
    }
}

/// How an applied step came to be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AppliedHow {
    /// The host call succeeded now.
    Called,
    /// The outcome was unknown (or a crash left the intent pending) and the
    /// natural-key lookup found exactly one object, which was adopted.
    Adopted,
    /// An earlier run already applied this create; nothing was sent.
    Replayed,
    /// Recorded without a host call (`JournalExecutor::adopt`).
    Recorded,
}

/// A step that ended `applied`.
#[derive(Debug)]
pub struct Applied<T> {
    pub seq: u32,
    pub host_object_id: Option<HostObjectId>,
    pub how: AppliedHow,
    /// The host's answer, only when `how == Called`.
    pub value: Option<T>,
    /// The error that made the outcome unknown, when `how == Adopted` right
    /// after a failed call. Import stops on it (resume continues).
    pub host_error: Option<HostError>,
}

impl<T> Applied<T> {
    /// `Err(StepFailed)` (entry `applied`) when the step was adopted after a
    /// host error: a batch apply stops there, like on any host error.
    pub fn stop_on_host_error(self, kind: ResourceKind, name: &str) -> Result<Self> {
        match self.host_error {
            Some(source) => Err(ProvisionError::StepFailed {
                seq: self.seq,
                kind,
                name: name.to_owned(),
                state: JournalState::Applied,
                source,
            }),
            None => Ok(self),
        }
    }
}

/// Runs [`Step`]s against the batch journal.
#[derive(Clone, Copy)]
pub struct JournalExecutor<'a> {
    batches: &'a dyn BatchRepo,
    host_honours_idempotency_key: bool,
}

impl std::fmt::Debug for JournalExecutor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalExecutor")
            .field(
                "host_honours_idempotency_key",
                &self.host_honours_idempotency_key,
            )
            .finish()
    }
}

enum Slot {
    /// A fresh or re-issued entry to call the host under.
    Call(JournalEntry),
    /// Resolved without a call.
    Done(Applied<()>),
}

impl<'a> JournalExecutor<'a> {
    /// `host_honours_idempotency_key` is `Capabilities::idempotency_key`.
    pub fn new(batches: &'a dyn BatchRepo, host_honours_idempotency_key: bool) -> Self {
        JournalExecutor {
            batches,
            host_honours_idempotency_key,
        }
    }

    /// Records, calls, resolves. See the module doc for the rules.
    ///
    /// Errors: [`ProvisionError::StepFailed`] (the entry is `failed`, or still
    /// `pending` when even the lookup failed), [`ProvisionError::NeedsOperator`]
    /// (the entry is `needs_operator`), [`ProvisionError::Store`].
    pub async fn run<T: HostObject + Send>(&self, step: Step<'_, T>) -> Result<Applied<T>> {
        let Step {
            intent,
            call,
            lookup,
        } = step;
        let entry = match self.prepare(&intent, lookup.as_ref()).await? {
            Slot::Done(a) => {
                return Ok(Applied {
                    seq: a.seq,
                    host_object_id: a.host_object_id,
                    how: a.how,
                    value: None,
                    host_error: None,
                });
            }
            Slot::Call(e) => e,
        };
        let key = (self.host_honours_idempotency_key && intent.op == JournalOp::Create)
            .then(|| intent.idempotency_key());
        match call(key).await {
            Ok(v) => {
                let id = v.host_object_id().or(intent.host_object_id);
                self.resolve(&entry, JournalState::Applied, id, None)
                    .await?;
                Ok(Applied {
                    seq: entry.seq,
                    host_object_id: id,
                    how: AppliedHow::Called,
                    value: Some(v),
                    host_error: None,
                })
            }
            Err(e) => {
                let a = self
                    .after_error(&intent, &entry, e, lookup.as_ref())
                    .await?;
                Ok(Applied {
                    seq: a.seq,
                    host_object_id: a.host_object_id,
                    how: a.how,
                    value: None,
                    host_error: a.host_error,
                })
            }
        }
    }

    /// Journals taking over an existing object without a host call
    /// (op `adopt`, resolved `applied` at once). Replays return the first adoption.
    pub async fn adopt(&self, intent: Intent, reason: &str) -> Result<Applied<()>> {
        debug_assert_eq!(intent.op, JournalOp::Adopt);
        let prior = self.prior(&intent).await?;
        if let Some(done) = prior.iter().find(|e| e.state == JournalState::Applied) {
            return Ok(Applied {
                seq: done.seq,
                host_object_id: done.host_object_id,
                how: AppliedHow::Replayed,
                value: None,
                host_error: None,
            });
        }
        let entry = self.record(&intent, prior.len()).await?;
        self.resolve(
            &entry,
            JournalState::Applied,
            intent.host_object_id,
            Some(reason.to_owned()),
        )
        .await?;
        Ok(Applied {
            seq: entry.seq,
            host_object_id: intent.host_object_id,
            how: AppliedHow::Recorded,
            value: None,
            host_error: None,
        })
    }

    /// Resolves one `pending` entry left by a crash, by natural-key lookup for
    /// create-like ops. Returns the new state. Idempotent ops are resolved
    /// `failed` ("re-issue"): the caller's plan sends them again.
    pub async fn recover_pending(
        &self,
        entry: &JournalEntry,
        lookup: Option<&LookupFn<'_>>,
    ) -> Result<JournalEntry> {
        let create_like = matches!(entry.op, JournalOp::Create | JournalOp::GrantBalance);
        if !create_like {
            return self
                .resolve(
                    entry,
                    JournalState::Failed,
                    entry.host_object_id,
                    Some("interrupted before its result was recorded; safe to re-issue".into()),
                )
                .await;
        }
        let Some(lookup) = lookup else {
            return self
                .resolve(
                    entry,
                    JournalState::NeedsOperator,
                    None,
                    Some("interrupted create and no way to look the object up; check the host and resolve by hand".into()),
                )
                .await;
        };
        let found = lookup().await?;
        let (state, id, detail) =
            classify_lookup(&found, "interrupted before its result was recorded");
        self.resolve(entry, state, id, Some(detail)).await
    }

    /// Entries of this intent so far (any attempt), in journal order.
    async fn prior(&self, intent: &Intent) -> Result<Vec<JournalEntry>> {
        Ok(self
            .batches
            .intent_attempts(&intent.batch_id, &intent.base_key())
            .await?)
    }

    async fn prepare(&self, intent: &Intent, lookup: Option<&LookupFn<'_>>) -> Result<Slot> {
        let prior = self.prior(intent).await?;
        if intent.is_create_like()
            && let Some(done) = prior.iter().find(|e| e.state == JournalState::Applied)
        {
            return Ok(Slot::Done(Applied {
                seq: done.seq,
                host_object_id: done.host_object_id,
                how: AppliedHow::Replayed,
                value: None,
                host_error: None,
            }));
        }
        if let Some(stuck) = prior
            .iter()
            .find(|e| e.state == JournalState::NeedsOperator)
        {
            return Err(ProvisionError::NeedsOperator {
                seq: Some(stuck.seq),
                kind: intent.kind,
                name: intent.name.clone(),
                reason: format!(
                    "journal entry {} is needs_operator ({}); resolve it before retrying",
                    stuck.seq,
                    stuck.detail.as_deref().unwrap_or("no detail")
                ),
            });
        }
        if let Some(pending) = prior.iter().find(|e| e.state == JournalState::Pending) {
            if !intent.is_create_like() {
                // Idempotent: send it again under the same entry.
                return Ok(Slot::Call(pending.clone()));
            }
            let resolved = self.recover_pending(pending, lookup).await?;
            match resolved.state {
                JournalState::Applied => {
                    return Ok(Slot::Done(Applied {
                        seq: resolved.seq,
                        host_object_id: resolved.host_object_id,
                        how: AppliedHow::Adopted,
                        value: None,
                        host_error: None,
                    }));
                }
                JournalState::NeedsOperator => {
                    return Err(ProvisionError::NeedsOperator {
                        seq: Some(resolved.seq),
                        kind: intent.kind,
                        name: intent.name.clone(),
                        reason: resolved.detail.unwrap_or_default(),
                    });
                }
                _ => {}
            }
        }
        let entry = self.record(intent, prior.len()).await?;
        match entry.state {
            JournalState::Pending => Ok(Slot::Call(entry)),
            JournalState::Applied => Ok(Slot::Done(Applied {
                seq: entry.seq,
                host_object_id: entry.host_object_id,
                how: AppliedHow::Replayed,
                value: None,
                host_error: None,
            })),
            other => Err(ProvisionError::NeedsOperator {
                seq: Some(entry.seq),
                kind: intent.kind,
                name: intent.name.clone(),
                reason: format!(
                    "intent {} was already resolved as {other} by someone else",
                    entry.intent_key
                ),
            }),
        }
    }

    async fn record(&self, intent: &Intent, prior_attempts: usize) -> Result<JournalEntry> {
        let base = intent.base_key();
        let intent_key = if prior_attempts == 0 {
            base
        } else {
            format!("{base}#{}", prior_attempts + 1)
        };
        Ok(self
            .batches
            .record_intent(NewJournalEntry {
                batch_id: intent.batch_id.clone(),
                intent_key,
                op: intent.op,
                kind: intent.kind,
                natural_key: intent.natural_key.clone(),
                name: intent.name.clone(),
                host_object_id: intent.host_object_id,
                spec_digest: intent.spec_digest(),
                desired: intent.desired.clone(),
            })
            .await?)
    }

    async fn resolve(
        &self,
        entry: &JournalEntry,
        state: JournalState,
        host_object_id: Option<HostObjectId>,
        detail: Option<String>,
    ) -> Result<JournalEntry> {
        Ok(self
            .batches
            .resolve_intent(
                &entry.batch_id,
                entry.seq,
                JournalResolution {
                    state,
                    host_object_id,
                    detail,
                },
            )
            .await?)
    }

    async fn after_error(
        &self,
        intent: &Intent,
        entry: &JournalEntry,
        err: HostError,
        lookup: Option<&LookupFn<'_>>,
    ) -> Result<Applied<()>> {
        let failed = |state| ProvisionError::StepFailed {
            seq: entry.seq,
            kind: intent.kind,
            name: intent.name.clone(),
            state,
            source: err.clone(),
        };
        if intent.op == JournalOp::Delete && err.is_not_found() {
            self.resolve(
                entry,
                JournalState::Applied,
                intent.host_object_id,
                Some("already absent (404 counts as done)".into()),
            )
            .await?;
            return Ok(Applied {
                seq: entry.seq,
                host_object_id: intent.host_object_id,
                how: AppliedHow::Called,
                value: None,
                host_error: None,
            });
        }
        if err.is_refusal() {
            self.resolve(entry, JournalState::Failed, None, Some(err.to_string()))
                .await?;
            return Err(failed(JournalState::Failed));
        }
        if !intent.is_create_like() {
            self.resolve(
                entry,
                JournalState::Failed,
                intent.host_object_id,
                Some(format!(
                    "outcome unknown ({err}); the operation is idempotent and will be re-issued"
                )),
            )
            .await?;
            return Err(failed(JournalState::Failed));
        }
        let Some(lookup) = lookup else {
            self.resolve(
                entry,
                JournalState::NeedsOperator,
                None,
                Some(format!(
                    "outcome unknown ({err}) and no way to look the object up; check the host"
                )),
            )
            .await?;
            return Err(ProvisionError::NeedsOperator {
                seq: Some(entry.seq),
                kind: intent.kind,
                name: intent.name.clone(),
                reason: format!("outcome of the create is unknown ({err})"),
            });
        };
        let found = match lookup().await {
            Ok(found) => found,
            // Cannot tell: the entry stays pending for resume to resolve.
            Err(_) => return Err(failed(JournalState::Pending)),
        };
        let (state, id, detail) = classify_lookup(&found, &format!("outcome unknown ({err})"));
        self.resolve(entry, state, id, Some(detail.clone())).await?;
        match state {
            JournalState::Applied => Ok(Applied {
                seq: entry.seq,
                host_object_id: id,
                how: AppliedHow::Adopted,
                value: None,
                host_error: Some(err.clone()),
            }),
            JournalState::NeedsOperator => Err(ProvisionError::NeedsOperator {
                seq: Some(entry.seq),
                kind: intent.kind,
                name: intent.name.clone(),
                reason: detail,
            }),
            _ => Err(failed(state)),
        }
    }
}

/// Maps a natural-key lookup to the journal state it proves.
fn classify_lookup(
    found: &[HostObjectId],
    why: &str,
) -> (JournalState, Option<HostObjectId>, String) {
    match found {
        [] => (
            JournalState::Failed,
            None,
            format!(
                "{why}; no object with this natural key exists, so it was not created (resume creates it)"
            ),
        ),
        [one] => (
            JournalState::Applied,
            Some(*one),
            format!("{why}; adopted the single object {one} found by natural key"),
        ),
        many => (
            JournalState::NeedsOperator,
            None,
            format!(
                "{why}; {} objects match the natural key (ids {}); keep one and delete the rest, then resume",
                many.len(),
                many.iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_share_an_intent_but_prefixes_do_not() {
        use crm_domain::batch::is_attempt_of as same_intent;
        assert!(same_intent("b/create/account/x", "b/create/account/x"));
        assert!(same_intent("b/create/account/x#2", "b/create/account/x"));
        assert!(!same_intent("b/create/account/xy", "b/create/account/x"));
        assert!(!same_intent("b/create/account/x#", "b/create/account/x"));
        assert!(!same_intent("b/create/account/x#2a", "b/create/account/x"));
    }

    #[test]
    fn idempotency_keys_are_short_and_stable() {
        let i = Intent {
            batch_id: BatchId::new("b-1"),
            op: JournalOp::Create,
            kind: ResourceKind::Account,
            natural_key: "x".repeat(300),
            name: "crm-x".into(),
            host_object_id: None,
            desired: serde_json::json!({}),
        };
        let k = i.idempotency_key();
        assert!(k.len() <= 128 && k.is_ascii());
        assert_eq!(k, i.clone().idempotency_key());
    }
}

#[cfg(test)]
mod executor_tests {
    use super::*;
    use crate::fakes::FakeStore;
    use crm_domain::observed::{GroupDraft, HostGroup};
    use crm_domain::ports::{HostApi, MockHostApi};
    use crm_domain::{GroupBilling, Platform};

    fn group(id: i64) -> HostGroup {
        HostGroup {
            id: HostObjectId(id),
            name: "crm-g".into(),
            description: None,
            platform: Platform::openai(),
            billing: GroupBilling::Standard,
            rate_multiplier: 1.0,
            daily_limit_usd: None,
            weekly_limit_usd: None,
            monthly_limit_usd: None,
            is_exclusive: false,
            status: "active".into(),
        }
    }

    fn draft() -> GroupDraft {
        GroupDraft {
            name: "crm-g".into(),
            description: None,
            platform: Platform::openai(),
            billing: GroupBilling::Standard,
            rate_multiplier: 1.0,
            daily_limit_usd: None,
            weekly_limit_usd: None,
            monthly_limit_usd: None,
            is_exclusive: false,
        }
    }

    fn intent(op: JournalOp) -> Intent {
        Intent {
            batch_id: BatchId::new("b-1"),
            op,
            kind: ResourceKind::Group,
            natural_key: "crm-g".into(),
            name: "crm-g".into(),
            host_object_id: (op != JournalOp::Create).then_some(HostObjectId(7)),
            desired: serde_json::json!({"name": "crm-g"}),
        }
    }

    /// A create step whose lookup lists groups named `crm-g`.
    fn create_step<'a>(host: &'a MockHostApi, d: &'a GroupDraft) -> Step<'a, HostGroup> {
        Step::new(intent(JournalOp::Create), move |_key| host.create_group(d)).with_lookup(
            move || {
                Box::pin(async move {
                    Ok(host
                        .list_groups()
                        .await?
                        .into_iter()
                        .filter(|g| g.name == "crm-g")
                        .map(|g| g.id)
                        .collect())
                })
            },
        )
    }

    fn states(store: &FakeStore) -> Vec<(String, JournalState, Option<i64>)> {
        store
            .journal
            .lock()
            .unwrap()
            .iter()
            .map(|e| (e.intent_key.clone(), e.state, e.host_object_id.map(|i| i.0)))
            .collect()
    }

    const BASE: &str = "b-1/create/group/crm-g";

    #[tokio::test]
    async fn success_records_intent_then_host_id_and_resource() {
        let store = FakeStore::default();
        let mut host = MockHostApi::new();
        host.expect_create_group()
            .times(1)
            .returning(|_| Ok(group(7)));
        let d = draft();
        let exec = JournalExecutor::new(&store, true);
        let a = exec.run(create_step(&host, &d)).await.unwrap();
        assert_eq!(
            (a.how, a.host_object_id),
            (AppliedHow::Called, Some(HostObjectId(7)))
        );
        assert_eq!(
            states(&store),
            vec![(BASE.into(), JournalState::Applied, Some(7))]
        );
        assert_eq!(store.resources.lock().unwrap().len(), 1);
        // A replay sends nothing (times(1) above).
        let again = exec.run(create_step(&host, &d)).await.unwrap();
        assert_eq!(again.how, AppliedHow::Replayed);
    }

    #[tokio::test]
    async fn unknown_outcome_with_one_match_is_adopted() {
        let store = FakeStore::default();
        let mut host = MockHostApi::new();
        host.expect_create_group().times(1).returning(|_| {
            Err(HostError::Timeout {
                operation: "POST /groups".into(),
            })
        });
        host.expect_list_groups()
            .times(1)
            .returning(|| Ok(vec![group(9)]));
        let d = draft();
        let a = JournalExecutor::new(&store, false)
            .run(create_step(&host, &d))
            .await
            .unwrap();
        assert_eq!(
            (a.how, a.host_object_id),
            (AppliedHow::Adopted, Some(HostObjectId(9)))
        );
        let j = store.journal.lock().unwrap();
        assert!(
            j[0].detail
                .as_deref()
                .unwrap()
                .contains("adopted the single object 9")
        );
    }

    #[tokio::test]
    async fn unknown_outcome_with_no_match_fails_and_a_retry_is_a_new_attempt() {
        let store = FakeStore::default();
        let mut host = MockHostApi::new();
        let mut n = 0;
        host.expect_create_group().times(2).returning(move |_| {
            n += 1;
            if n == 1 {
                Err(HostError::Unavailable {
                    status: 502,
                    message: "bad gateway".into(),
                })
            } else {
                Ok(group(11))
            }
        });
        host.expect_list_groups().times(1).returning(|| Ok(vec![]));
        let d = draft();
        let exec = JournalExecutor::new(&store, false);
        let err = exec.run(create_step(&host, &d)).await.unwrap_err();
        assert!(matches!(
            err,
            ProvisionError::StepFailed {
                state: JournalState::Failed,
                ..
            }
        ));
        exec.run(create_step(&host, &d)).await.unwrap();
        assert_eq!(
            states(&store),
            vec![
                (BASE.into(), JournalState::Failed, None),
                (format!("{BASE}#2"), JournalState::Applied, Some(11)),
            ]
        );
    }

    #[tokio::test]
    async fn unknown_outcome_with_several_matches_needs_an_operator() {
        let store = FakeStore::default();
        let mut host = MockHostApi::new();
        host.expect_create_group().returning(|_| {
            Err(HostError::Unreachable {
                detail: "connection reset".into(),
            })
        });
        host.expect_list_groups()
            .returning(|| Ok(vec![group(3), group(4)]));
        let d = draft();
        let exec = JournalExecutor::new(&store, false);
        let err = exec.run(create_step(&host, &d)).await.unwrap_err();
        assert!(matches!(err, ProvisionError::NeedsOperator { .. }), "{err}");
        assert_eq!(
            states(&store),
            vec![(BASE.into(), JournalState::NeedsOperator, None)]
        );
        // And it stays stuck: no new attempt is made behind the operator's back.
        assert!(matches!(
            exec.run(create_step(&host, &d)).await.unwrap_err(),
            ProvisionError::NeedsOperator { .. }
        ));
        assert_eq!(store.journal.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn refusal_fails_without_looking() {
        let store = FakeStore::default();
        let mut host = MockHostApi::new();
        host.expect_create_group().returning(|_| {
            Err(HostError::Validation {
                message: "bad platform".into(),
            })
        });
        host.expect_list_groups().never();
        let d = draft();
        let err = JournalExecutor::new(&store, false)
            .run(create_step(&host, &d))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("bad platform"), "{err}");
        assert_eq!(
            states(&store),
            vec![(BASE.into(), JournalState::Failed, None)]
        );
    }

    #[tokio::test]
    async fn lookup_failure_leaves_the_intent_pending() {
        let store = FakeStore::default();
        let mut host = MockHostApi::new();
        host.expect_create_group().returning(|_| {
            Err(HostError::Timeout {
                operation: "POST".into(),
            })
        });
        host.expect_list_groups().returning(|| {
            Err(HostError::Unreachable {
                detail: "down".into(),
            })
        });
        let d = draft();
        let err = JournalExecutor::new(&store, false)
            .run(create_step(&host, &d))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            ProvisionError::StepFailed {
                state: JournalState::Pending,
                ..
            }
        ));
        assert_eq!(
            states(&store),
            vec![(BASE.into(), JournalState::Pending, None)]
        );
    }

    #[tokio::test]
    async fn crash_leftover_is_resolved_by_lookup_before_any_create() {
        let store = FakeStore::default();
        // The crashed run committed its intent and died.
        let i = intent(JournalOp::Create);
        store
            .record_intent(NewJournalEntry {
                batch_id: i.batch_id.clone(),
                intent_key: i.base_key(),
                op: i.op,
                kind: i.kind,
                natural_key: i.natural_key.clone(),
                name: i.name.clone(),
                host_object_id: None,
                spec_digest: i.spec_digest(),
                desired: i.desired.clone(),
            })
            .await
            .unwrap();
        let mut host = MockHostApi::new();
        host.expect_create_group().never();
        host.expect_list_groups().returning(|| Ok(vec![group(5)]));
        let d = draft();
        let a = JournalExecutor::new(&store, false)
            .run(create_step(&host, &d))
            .await
            .unwrap();
        assert_eq!(
            (a.how, a.host_object_id),
            (AppliedHow::Adopted, Some(HostObjectId(5)))
        );
        assert_eq!(
            states(&store),
            vec![(BASE.into(), JournalState::Applied, Some(5))]
        );
    }

    #[tokio::test]
    async fn idempotency_key_is_sent_only_when_honoured() {
        for honoured in [false, true] {
            let store = FakeStore::default();
            let host = MockHostApi::new();
            let seen = std::sync::Mutex::new(None);
            let i = intent(JournalOp::Create);
            let expected = i.idempotency_key();
            JournalExecutor::new(&store, honoured)
                .run(Step::new(i, |key| {
                    *seen.lock().unwrap() = Some(key);
                    Box::pin(async { Ok(group(1)) })
                }))
                .await
                .unwrap();
            let _ = host;
            assert_eq!(
                seen.into_inner().unwrap().unwrap(),
                honoured.then_some(expected)
            );
        }
    }

    #[tokio::test]
    async fn delete_answered_404_counts_as_done() {
        let store = FakeStore::default();
        let mut host = MockHostApi::new();
        host.expect_delete_group().returning(|_| {
            Err(HostError::NotFound {
                what: "group 7".into(),
            })
        });
        let h = &host;
        let a = JournalExecutor::new(&store, false)
            .run(Step::new(intent(JournalOp::Delete), move |_| {
                h.delete_group(HostObjectId(7))
            }))
            .await
            .unwrap();
        assert_eq!(a.host_object_id, Some(HostObjectId(7)));
        assert_eq!(
            states(&store),
            vec![(
                "b-1/delete/group/crm-g".into(),
                JournalState::Applied,
                Some(7)
            )]
        );
    }
}
