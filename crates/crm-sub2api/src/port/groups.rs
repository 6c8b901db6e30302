//! Groups across the border.

use crate::admin::GroupInput;
use crate::wire;
use crm_domain::observed::{GroupDraft, HostGroup};
use crm_domain::{GroupBilling, HostObjectId, Platform};

/// Negative limits mean "unlimited" on newer hosts (`null` is stored as -1).
fn limit(v: Option<f64>) -> Option<f64> {
    v.filter(|l| *l >= 0.0)
}

/// An observed group; negative limits read as unlimited.
pub fn group_from_wire(g: wire::Group) -> HostGroup {
    HostGroup {
        id: HostObjectId(g.id),
        name: g.name,
        description: g.description,
        platform: Platform::new(g.platform),
        billing: g
            .subscription_type
            .parse()
            .unwrap_or(GroupBilling::Standard),
        rate_multiplier: g.rate_multiplier.unwrap_or(1.0),
        daily_limit_usd: limit(g.daily_limit_usd),
        weekly_limit_usd: limit(g.weekly_limit_usd),
        monthly_limit_usd: limit(g.monthly_limit_usd),
        is_exclusive: g.is_exclusive,
        status: g.status,
    }
}

/// The create/update body for a group draft.
pub fn group_input(d: &GroupDraft) -> GroupInput {
    GroupInput {
        name: d.name.clone(),
        description: d.description.clone(),
        platform: d.platform.as_str().to_owned(),
        rate_multiplier: Some(d.rate_multiplier),
        is_exclusive: d.is_exclusive,
        subscription_type: d.billing.as_str().to_owned(),
        daily_limit_usd: d.daily_limit_usd,
        weekly_limit_usd: d.weekly_limit_usd,
        monthly_limit_usd: d.monthly_limit_usd,
        status: None,
    }
}
