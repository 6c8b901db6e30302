//! Whether an observed account counts for duplicates. Which account is
//! which is crm-provision's one natural-key rule,
//! [`crm_provision::desired::AccountKey`].

use crm_domain::observed::HostAccount;

/// An account is counted for duplicates unless someone switched it off.
pub fn is_active_account(a: &HostAccount) -> bool {
    !matches!(a.status.as_str(), "inactive" | "disabled")
}
