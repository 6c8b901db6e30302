//! API keys across the border: an observed key keeps its last four
//! characters only; the full key string leaves the adapter once, in the
//! [`CreatedApiKey`] of a create or reveal (docs/design.md, "Secrets").

use crate::wire;
use crm_domain::HostObjectId;
use crm_domain::observed::{CreatedApiKey, HostApiKey};
use crm_domain::ports::{HostError, HostResult};

/// An observed key: only the last four characters of the key survive.
pub fn api_key_from_wire(k: &wire::ApiKey) -> HostApiKey {
    HostApiKey {
        id: HostObjectId(k.id),
        user_id: HostObjectId(k.user_id),
        name: k.name.clone(),
        group_id: k.group_id.filter(|g| *g > 0).map(HostObjectId),
        status: k.status.clone(),
        key_last4: k.key_last4(),
    }
}

pub(super) fn created_key(k: wire::ApiKey) -> HostResult<CreatedApiKey> {
    let key = api_key_from_wire(&k);
    let secret = k.key.ok_or_else(|| HostError::Decode {
        detail: format!("the host returned key {} without its key string", k.id),
    })?;
    Ok(CreatedApiKey { key, secret })
}
