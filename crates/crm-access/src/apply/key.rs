//! Reading a batch's closure key back from the host, as the closure user.

use super::guard::bad;
use crate::ports::{AccessPorts, HeldKey};
use crate::{Error, Result};
use crm_domain::host::{SealContext, SealedSecret};
use crm_domain::observed::UserLogin;
use crm_domain::{BatchId, ResourceKind, ResourceState};

/// Reads the batch's closure key back from the host, logging in as the
/// closure user with the sealed password recorded in the key's resource.
pub async fn reveal_batch_key(p: &AccessPorts<'_>, batch_id: &BatchId) -> Result<HeldKey> {
    let recorded = p.batches.resources(batch_id).await?;
    let key = recorded
        .iter()
        .find(|r| r.kind == ResourceKind::UserApiKey && r.state == ResourceState::Live)
        .ok_or_else(|| Error::MissingResource {
            batch: batch_id.clone(),
            kind: ResourceKind::UserApiKey,
        })?;
    let login = login_of(p, batch_id, &key.desired)?;
    let revealed = p
        .host
        .reveal_user_api_key(&login, key.host_object_id)
        .await?;
    Ok(HeldKey {
        key_id: key.host_object_id,
        secret: revealed.secret,
    })
}

/// The login recorded in a `UserApiKey` resource's desired spec.
fn login_of(
    p: &AccessPorts<'_>,
    batch: &BatchId,
    desired: &serde_json::Value,
) -> Result<UserLogin> {
    let field = |name: &str| {
        desired
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| bad(batch, &format!("the key resource has no {name}")))
    };
    let email = field("login_email")?;
    let sealed = SealedSecret(field("login_password_sealed")?);
    let ctx = SealContext::batch_login_password(batch, &email);
    Ok(UserLogin {
        password: p.sealer.open(&ctx, &sealed)?,
        email,
    })
}
