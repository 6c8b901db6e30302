//! Groups: `missing` and `changed`.

use super::cx::Cx;
use super::fields::{change, marker_field};
use super::platform::platform_migration;
use super::recorded::RecordedBatch;
use crate::desired::{self, DesiredGroup, same_f64, same_limit};
use crm_domain::batch::ManagedResource;
use serde_json::json;

impl Cx<'_> {
    pub(super) fn check_group(&mut self, rb: &RecordedBatch, r: &ManagedResource) {
        let d: DesiredGroup = desired::read(&r.desired);
        let Some(g) = self
            .observed
            .groups
            .iter()
            .find(|g| g.id == r.host_object_id)
        else {
            self.missing(r, "group is gone from the host".into());
            return;
        };
        let mut f = Vec::new();
        marker_field(
            &mut f,
            "description",
            d.description.as_deref(),
            g.description.as_deref(),
        );
        if let Some(n) = &d.name
            && *n != g.name
        {
            f.push(change("name", json!(g.name), json!(n)));
        }
        // The group's platform follows its accounts' (see check_account).
        if let Some(Ok(c)) = platform_migration(rb, &g.platform, self.caps) {
            f.push(change("platform", json!(g.platform), json!(c.platform)));
        } else if let Some(p) = &d.platform
            && *p != g.platform
        {
            f.push(change("platform", json!(g.platform), json!(p)));
        }
        if let Some(b) = d.billing
            && b != g.billing
        {
            f.push(change("subscription_type", json!(g.billing), json!(b)));
        }
        if let Some(m) = d.rate_multiplier
            && !same_f64(m, g.rate_multiplier)
        {
            f.push(change(
                "rate_multiplier",
                json!(g.rate_multiplier),
                json!(m),
            ));
        }
        for (field, want, seen) in [
            ("daily_limit_usd", d.daily_limit_usd, g.daily_limit_usd),
            ("weekly_limit_usd", d.weekly_limit_usd, g.weekly_limit_usd),
            (
                "monthly_limit_usd",
                d.monthly_limit_usd,
                g.monthly_limit_usd,
            ),
        ] {
            // `null` in a desired spec means "unlimited", which differs from
            // a spec that does not state the limit at all.
            if desired::states(&r.desired, field) && !same_limit(want, seen) {
                f.push(change(field, json!(seen), json!(want)));
            }
        }
        if let Some(x) = d.is_exclusive
            && x != g.is_exclusive
        {
            f.push(change("is_exclusive", json!(g.is_exclusive), json!(x)));
        }
        if g.status != "active" {
            f.push(change("status", json!(g.status), json!("active")));
        }
        self.changed(r, f);
    }
}
