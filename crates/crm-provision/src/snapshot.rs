//! Host observation (a [`HostSnapshot`]; named apart from crm-api's
//! `observe.rs`, which is observability): one read-only pass over a host with
//! list calls only.
//!
//! Preview, import, resume, rollback and reconcile all start from a
//! [`HostSnapshot`]. Observation never issues a GET per object: accounts,
//! groups, channels and crm's users come from their list endpoints (at the
//! host's maximum page size, which the host port handles), and subscriptions
//! and gateway keys are listed per crm-managed group.

use crate::error::Result;
use crm_domain::host::Capabilities;
use crm_domain::observed::{HostGroup, HostMonitor, HostSnapshot, HostUser};
use crm_domain::ownership::{self, NAME_PREFIX};
use crm_domain::ports::{HostApi, HostError};
use crm_domain::{HostObjectId, ResourceKind, ResourceState};

/// Whether a group looks like crm's: a crm name or a crm marker in its description.
pub fn is_crm_group(g: &HostGroup) -> bool {
    ownership::has_crm_name(&g.name)
        || g.description
            .as_deref()
            .and_then(ownership::parse_marker)
            .is_some()
}

/// Whether a user looks like crm's: a crm email/username or a marker in its notes.
pub fn is_crm_user(u: &HostUser) -> bool {
    ownership::has_crm_name(&u.email)
        || u.username.as_deref().is_some_and(ownership::has_crm_name)
        || u.notes
            .as_deref()
            .and_then(ownership::parse_marker)
            .is_some()
}

/// A user a live batch manages that does not carry crm's name (an
/// operator's existing user the access closure adopted): observation looks
/// it up by email so it is seen like crm's own users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedUser {
    pub id: HostObjectId,
    pub email: String,
}

/// The users `resources` manage that a crm-prefix listing would not return:
/// live `user` resources whose recorded email lacks crm's name.
pub fn wanted_users<'a>(
    resources: impl IntoIterator<Item = &'a crm_domain::batch::ManagedResource>,
) -> Vec<WantedUser> {
    let mut out: Vec<WantedUser> = resources
        .into_iter()
        .filter(|r| r.kind == ResourceKind::User && r.state == ResourceState::Live)
        .filter_map(|r| {
            let email = r.desired.get("email").and_then(|v| v.as_str())?;
            (!ownership::has_crm_name(email)).then(|| WantedUser {
                id: r.host_object_id,
                email: email.to_owned(),
            })
        })
        .collect();
    out.sort_by(|a, b| (a.id, &a.email).cmp(&(b.id, &b.email)));
    out.dedup();
    out
}

/// Observes `host` with list calls only.
///
/// - accounts and groups: every one on the host (lists, max page size);
/// - channels: `Some` when `caps.channels` (a `RouteMissing` answer is read as
///   "no channels" rather than an error), else `None`;
/// - users: those matching crm's name prefix or marker (and, with
///   [`observe_with`], the adopted users asked for);
/// - subscriptions and API keys: those of crm-managed groups (see [`is_crm_group`]).
///
/// `requests` is the number of host requests this observation made
/// (`HostApi::request_count` delta; concurrent use of the same handle inflates it).
pub async fn observe(host: &dyn HostApi, caps: &Capabilities) -> Result<HostSnapshot> {
    observe_with(host, caps, &[]).await
}

/// [`observe`], plus the `wanted` users that carry no crm name (one
/// `list_users(email)` each: bounded by the number of adopted users, not by
/// the users on the host).
pub async fn observe_with(
    host: &dyn HostApi,
    caps: &Capabilities,
    wanted: &[WantedUser],
) -> Result<HostSnapshot> {
    observe_bounded(
        host,
        caps,
        wanted,
        crate::concurrency::DEFAULT_MAX_CONCURRENCY,
    )
    .await
}

/// [`observe_with`] with at most `limit` host requests in flight.
///
/// The four listings are independent, so they are sent at once; the
/// per-group reads (and the lookups of adopted users) need the listings and
/// are sent together after them. Observation is two round trips deep
/// whatever the number of crm groups, instead of one per request.
pub async fn observe_bounded(
    host: &dyn HostApi,
    caps: &Capabilities,
    wanted: &[WantedUser],
    limit: usize,
) -> Result<HostSnapshot> {
    let before = host.request_count();
    let channels = async {
        if !caps.channels {
            return Ok(None);
        }
        match host.list_channels().await {
            Ok(c) => Ok(Some(c)),
            Err(HostError::RouteMissing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    };
    // Listings beyond the limit would wait for a slot anyway; with a limit
    // under 4 they go in two rounds.
    let (accounts, groups, channels, users) = if limit >= 4 {
        futures::try_join!(
            host.list_accounts(),
            host.list_groups(),
            channels,
            host.list_users(Some(NAME_PREFIX.to_owned())),
        )?
    } else {
        (
            host.list_accounts().await?,
            host.list_groups().await?,
            channels.await?,
            host.list_users(Some(NAME_PREFIX.to_owned())).await?,
        )
    };
    let mut users: Vec<HostUser> = users.into_iter().filter(is_crm_user).collect();

    enum Read {
        Subscriptions(HostObjectId),
        ApiKeys(HostObjectId),
        User(WantedUser),
    }
    enum Found {
        Subscriptions(Vec<crm_domain::observed::HostSubscription>),
        ApiKeys(Vec<crm_domain::observed::HostApiKey>),
        Users(WantedUser, Vec<HostUser>),
    }
    let mut reads: Vec<Read> = Vec::new();
    for w in wanted {
        if !users.iter().any(|u| u.id == w.id)
            && !reads.iter().any(|r| matches!(r, Read::User(x) if x == w))
        {
            reads.push(Read::User(w.clone()));
        }
    }
    for g in groups.iter().filter(|g| is_crm_group(g)) {
        reads.push(Read::Subscriptions(g.id));
        reads.push(Read::ApiKeys(g.id));
    }
    let found = crate::concurrency::bounded(limit, reads, |r| async move {
        Ok(match r {
            Read::Subscriptions(g) => Found::Subscriptions(host.list_group_subscriptions(g).await?),
            Read::ApiKeys(g) => Found::ApiKeys(host.list_group_api_keys(g).await?),
            Read::User(w) => {
                let found = host.list_users(Some(w.email.clone())).await?;
                Found::Users(w, found)
            }
        })
    })
    .await?;
    let mut subscriptions = Vec::new();
    let mut api_keys = Vec::new();
    for f in found {
        match f {
            Found::Subscriptions(s) => subscriptions.extend(s),
            Found::ApiKeys(k) => api_keys.extend(k),
            Found::Users(w, found) => users.extend(
                found
                    .into_iter()
                    .filter(|u| u.id == w.id || u.email.eq_ignore_ascii_case(&w.email)),
            ),
        }
    }
    users.sort_by_key(|u| u.id);
    users.dedup_by_key(|u| u.id);
    subscriptions.sort_by_key(|s| s.id);
    subscriptions.dedup_by_key(|s| s.id);
    api_keys.sort_by_key(|k| k.id);
    api_keys.dedup_by_key(|k| k.id);
    Ok(HostSnapshot {
        accounts,
        groups,
        channels,
        users,
        subscriptions,
        api_keys,
        monitors: None,
        requests: host.request_count().saturating_sub(before),
    })
}

/// The host's channel monitors (one listing, every page), or `None` on a
/// host without them (`caps.channel_monitors` false, or the route
/// missing). Asked only when a batch in scope has or wants a monitor, so
/// observation of every other batch costs what it did.
pub async fn observe_monitors(
    host: &dyn HostApi,
    caps: &Capabilities,
) -> Result<Option<Vec<HostMonitor>>> {
    if !caps.channel_monitors {
        return Ok(None);
    }
    match host.list_monitors().await {
        Ok(m) => Ok(Some(m)),
        Err(HostError::RouteMissing { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_domain::host::AdminAuth;
    use crm_domain::ports::MockHostApi;
    use crm_domain::{GroupBilling, HostObjectId, Platform};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    pub(crate) fn caps(channels: bool) -> Capabilities {
        Capabilities {
            probed_at: crate::fakes::t0(),
            version: Some("0.1.0".into()),
            admin_auth: AdminAuth::Ok,
            channels,
            chat_completions: true,
            native_platforms: vec![],
            subscriptions: true,
            payment_plans: false,
            admin_key_rebind: false,
            idempotency_key: false,
            credential_redaction: false,
            max_page_size: 100,
            cn_funds: false,
            channel_monitors: false,
            evidence: vec![],
        }
    }

    fn group(id: i64, name: &str) -> HostGroup {
        HostGroup {
            id: HostObjectId(id),
            name: name.into(),
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

    fn user(id: i64, email: &str) -> HostUser {
        HostUser {
            id: HostObjectId(id),
            email: email.into(),
            username: None,
            notes: None,
            role: "user".into(),
            balance: 0.0,
            status: "active".into(),
            allowed_groups: vec![],
        }
    }

    /// A mock whose every call counts as one request.
    fn host(channels_route: bool) -> MockHostApi {
        let n = Arc::new(AtomicU32::new(0));
        let mut h = MockHostApi::new();
        let c = n.clone();
        h.expect_request_count()
            .returning(move || c.load(Ordering::SeqCst));
        let c = n.clone();
        h.expect_list_accounts().times(1).returning(move || {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(vec![])
        });
        let c = n.clone();
        h.expect_list_groups().times(1).returning(move || {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(vec![
                group(1, "crm-a.b-self_service"),
                group(2, "operator's"),
            ])
        });
        let c = n.clone();
        h.expect_list_channels().returning(move || {
            c.fetch_add(1, Ordering::SeqCst);
            if channels_route {
                Ok(vec![])
            } else {
                Err(HostError::RouteMissing {
                    route: "/admin/channels".into(),
                })
            }
        });
        let c = n.clone();
        h.expect_list_users().times(1).returning(move |search| {
            assert_eq!(search.as_deref(), Some("crm-"));
            c.fetch_add(1, Ordering::SeqCst);
            Ok(vec![
                user(1, "crm-probe@crm.invalid"),
                user(2, "alice-crm-@x"),
            ])
        });
        let c = n.clone();
        h.expect_list_group_subscriptions()
            .withf(|g| *g == HostObjectId(1))
            .times(1)
            .returning(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(vec![])
            });
        let c = n;
        h.expect_list_group_api_keys()
            .withf(|g| *g == HostObjectId(1))
            .times(1)
            .returning(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(vec![])
            });
        h
    }

    #[tokio::test]
    async fn observes_with_lists_only_and_counts_requests() {
        let snap = observe(&host(true), &caps(true)).await.unwrap();
        assert_eq!(snap.requests, 6);
        assert_eq!(snap.channels, Some(vec![]));
        assert_eq!(snap.users.len(), 1, "only crm's users");
        assert_eq!(snap.groups.len(), 2, "every group is observed");
    }

    #[tokio::test]
    async fn hosts_without_channels_observe_none() {
        let snap = observe(&host(false), &caps(true)).await.unwrap();
        assert_eq!(snap.channels, None);
        // Without the capability the route is not even asked.
        let snap = observe(&host(true), &caps(false)).await.unwrap();
        assert_eq!((snap.channels, snap.requests), (None, 5));
    }
}
