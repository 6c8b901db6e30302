//! The names crm gives closure objects: the probe user's email, the key's
//! name and the natural keys, all deterministic from the batch and provider.

use crm_domain::ownership::provider_slug;
use crm_domain::{BatchId, ProviderRef};

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The last 12 alphanumeric characters of a batch id: short, and random
/// enough for uuid-style ids (whose leading part is a timestamp).
pub fn short_batch(batch: &BatchId) -> String {
    let alnum: Vec<char> = batch
        .as_str()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    alnum[alnum.len().saturating_sub(12)..].iter().collect()
}

fn slug(provider: &ProviderRef) -> String {
    let s = sanitize(&provider_slug(provider));
    s.chars()
        .take(30)
        .collect::<String>()
        .trim_matches(['.', '-'])
        .to_owned()
}

/// Email of the probe user of a batch: deterministic, starts with `crm-` (so
/// observation sees it), and in the reserved `.invalid` domain so it can
/// never reach a mailbox.
pub fn probe_email(batch: &BatchId, provider: &ProviderRef) -> String {
    format!(
        "crm-probe-{}-{}@crm.invalid",
        slug(provider),
        short_batch(batch)
    )
}

/// Deterministic name of the key crm creates for a batch.
pub fn key_name(batch: &BatchId, provider: &ProviderRef) -> String {
    format!("crm-{}-{}", slug(provider), short_batch(batch))
}

/// Natural keys of closure objects. They use the user's email (known before
/// the user exists) so a plan is complete even when the user is still to be created.
pub mod natural_key {
    use crm_domain::HostObjectId;

    pub fn user(email: &str) -> String {
        email.to_ascii_lowercase()
    }
    pub fn balance(email: &str) -> String {
        format!("balance:{}", email.to_ascii_lowercase())
    }
    pub fn subscription(email: &str, group: HostObjectId) -> String {
        format!("subscription:{}:{group}", email.to_ascii_lowercase())
    }
    pub fn key(email: &str, name: &str) -> String {
        format!("key:{}:{name}", email.to_ascii_lowercase())
    }
}
