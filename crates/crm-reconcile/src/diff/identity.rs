//! Which observed account is which: the natural key, and whether an account
//! counts for duplicates.

use crate::desired::normalize_url;
use crm_domain::observed::HostAccount;

/// An account is counted for duplicates unless someone switched it off.
pub fn is_active_account(a: &HostAccount) -> bool {
    !matches!(a.status.as_str(), "inactive" | "disabled")
}

/// The natural key of an account as far as an observation can tell: crm's
/// deterministic names embed the upstream key's fingerprint, so the same
/// name on the same platform and base URL means the same upstream key.
pub fn account_identity(name: &str, platform: &str, base_url: Option<&str>) -> String {
    format!(
        "{platform}|{}|{name}",
        base_url.map(normalize_url).unwrap_or_default()
    )
}
