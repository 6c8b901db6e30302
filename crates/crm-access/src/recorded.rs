//! What crm recorded about the upstream accounts it created or adopted, and
//! the one lookup that finds the account an upstream key belongs to.
//!
//! A direct upstream probe sends the key only to the base URL recorded for
//! the account it checks (docs/design.md §4 step 5), never to the current
//! pack's URL: a pack version may have moved the provider since, and the
//! key was given for the recorded one. Both direct probes (the access
//! check's and the acceptance harness's, through `crm-app`) find that
//! account here.

use crm_domain::batch::ManagedResource;
use crm_domain::{Fingerprint, HostObjectId, Platform, ResourceKind};

/// What a batch recorded about one of its accounts.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedAccount {
    pub id: HostObjectId,
    pub platform: Option<Platform>,
    /// Where the account's upstream key is sent (the account's `base_url`).
    pub base_url: Option<String>,
    /// The keyed fingerprint of the account's upstream key.
    pub key: Option<Fingerprint>,
}

impl RecordedAccount {
    /// The account a managed resource records; `None` for other kinds.
    pub fn of(r: &ManagedResource) -> Option<Self> {
        if r.kind != ResourceKind::Account {
            return None;
        }
        let d = &r.desired;
        Some(RecordedAccount {
            id: r.host_object_id,
            platform: d
                .get("platform")
                .and_then(|v| v.as_str())
                .map(Platform::new),
            base_url: d
                .get("base_url")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            key: d
                .get("upstream_key")
                .and_then(|v| serde_json::from_value(v.clone()).ok()),
        })
    }

    /// Whether the account talks Anthropic Messages upstream (an `anthropic`
    /// account at the provider's Anthropic base URL): its key is probed with
    /// `/messages`, never with the OpenAI-style listing and completion.
    pub fn speaks_messages(&self) -> bool {
        self.platform
            .as_ref()
            .is_some_and(|p| p.as_str() == Platform::ANTHROPIC)
    }
}

/// The first account in `accounts` recorded with the key `fp` and a base
/// URL, with that URL: the only place a direct probe may send the key.
pub fn account_for_key<'a>(
    accounts: impl IntoIterator<Item = &'a RecordedAccount>,
    fp: &Fingerprint,
) -> Option<(&'a RecordedAccount, &'a str)> {
    accounts
        .into_iter()
        .filter(|a| a.key.as_ref() == Some(fp))
        .find_map(|a| a.base_url.as_deref().map(|b| (a, b)))
}
