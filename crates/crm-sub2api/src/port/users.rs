//! Users and their subscriptions across the border.

use crate::admin::NewUser;
use crate::wire;
use crm_domain::HostObjectId;
use crm_domain::observed::{HostSubscription, HostUser, UserDraft};

/// An observed user.
pub fn user_from_wire(u: wire::User) -> HostUser {
    HostUser {
        id: HostObjectId(u.id),
        email: u.email,
        username: u.username,
        notes: u.notes,
        role: u.role,
        balance: u.balance,
        status: u.status,
        allowed_groups: u.allowed_groups.into_iter().map(HostObjectId).collect(),
    }
}

/// The create body for a user draft.
pub fn new_user(d: &UserDraft) -> NewUser {
    NewUser {
        email: d.email.clone(),
        password: d.password.clone(),
        username: d.username.clone(),
        notes: d.notes.clone(),
        balance: d.balance,
        concurrency: None,
        allowed_groups: d.allowed_groups.iter().map(|g| g.0).collect(),
    }
}

/// An observed subscription.
pub fn subscription_from_wire(s: wire::Subscription) -> HostSubscription {
    HostSubscription {
        id: HostObjectId(s.id),
        user_id: HostObjectId(s.user_id),
        group_id: HostObjectId(s.group_id),
        status: s.status,
        starts_at: s.starts_at,
        expires_at: s.expires_at,
        notes: s.notes,
    }
}
