//! `/admin/subscriptions`: assign, list, get, revoke.

use super::*;

pub(super) fn subscription_not_found() -> Response {
    not_found("SUBSCRIPTION_NOT_FOUND", "subscription not found")
}

pub(super) async fn list_subscriptions(AxState(app): App, Query(q): Q) -> Response {
    let st = app.lock();
    let num = |k: &str| q.get(k).and_then(|v| v.parse::<i64>().ok());
    let items = st
        .subscriptions
        .values()
        .filter(|s| num("user_id").is_none_or(|u| s.user_id == u))
        .filter(|s| num("group_id").is_none_or(|g| s.group_id == g))
        .filter(|s| {
            q.get("status")
                .is_none_or(|v| v.is_empty() || s.effective_status() == v)
        })
        .map(|s| st.subscription_json(s))
        .collect();
    ok(Page::from_query(&q, st.profile.max_page_size).render(items))
}

pub(super) async fn get_subscription(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "subscription")?;
    let st = app.lock();
    let s = st
        .subscriptions
        .get(&id)
        .ok_or_else(subscription_not_found)?;
    Ok(ok(st.subscription_json(s)))
}

#[derive(Deserialize)]
pub(super) struct AssignBody {
    user_id: i64,
    group_id: i64,
    #[serde(default)]
    validity_days: i64,
    #[serde(default)]
    notes: String,
}

pub(super) async fn assign_subscription(AxState(app): App, body: Bytes) -> HResult {
    let req: AssignBody = parse(&body)?;
    let mut st = app.lock();
    st.users.get(&req.user_id).ok_or_else(user_not_found)?;
    let g = st.groups.get(&req.group_id).ok_or_else(group_not_found)?;
    if g.subscription_type != "subscription" {
        return Err(app_err(
            StatusCode::BAD_REQUEST,
            "GROUP_NOT_SUBSCRIPTION_TYPE",
            "group is not a subscription type group",
        ));
    }
    if st
        .subscriptions
        .values()
        .any(|s| s.user_id == req.user_id && s.group_id == req.group_id)
    {
        return Err(app_err(
            StatusCode::CONFLICT,
            "SUBSCRIPTION_ALREADY_EXISTS",
            "user already has a subscription for this group",
        ));
    }
    let days = if req.validity_days <= 0 {
        30
    } else {
        req.validity_days.min(36_500)
    };
    let t = now();
    let id = st.id();
    let s = Subscription {
        id,
        user_id: req.user_id,
        group_id: req.group_id,
        starts_at: t,
        expires_at: t + chrono::Duration::days(days),
        status: "active".into(),
        notes: req.notes,
        assigned_by: 1,
        usage_usd: 0.0,
        created_at: t,
        updated_at: t,
    };
    let v = st.subscription_json(&s);
    st.subscriptions.insert(id, s);
    Ok(ok(v))
}

pub(super) async fn revoke_subscription(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "subscription")?;
    let mut st = app.lock();
    st.subscriptions
        .remove(&id)
        .ok_or_else(subscription_not_found)?;
    Ok(ok(json!({"message": "Subscription revoked successfully"})))
}
