//! `/admin/groups`: list, `/all`, CRUD, a group's keys and subscriptions.

use super::*;

#[derive(Deserialize, Default)]
pub(super) struct GroupBody {
    name: Option<String>,
    description: Option<String>,
    platform: Option<String>,
    rate_multiplier: Option<f64>,
    is_exclusive: Option<bool>,
    status: Option<String>,
    subscription_type: Option<String>,
    daily_limit_usd: Option<f64>,
    weekly_limit_usd: Option<f64>,
    monthly_limit_usd: Option<f64>,
}

pub(super) fn check_group_enums(
    p: &Profile,
    req: &GroupBody,
    strukt: &str,
) -> Result<(), Response> {
    let oneof = |field: &str, got: &str| {
        bad_request(&format!(
            "Invalid request: Key: '{strukt}.{field}' Error:Field validation for '{field}' failed on the 'oneof' tag (got '{got}')"
        ))
    };
    if let Some(pl) = req.platform.as_deref().filter(|s| !s.is_empty())
        && !p.group_platforms.contains(&pl)
    {
        return Err(oneof("Platform", pl));
    }
    if let Some(s) = req.subscription_type.as_deref().filter(|s| !s.is_empty())
        && s != "standard"
        && s != "subscription"
    {
        return Err(oneof("SubscriptionType", s));
    }
    if let Some(s) = req.status.as_deref().filter(|s| !s.is_empty())
        && s != "active"
        && s != "inactive"
    {
        return Err(oneof("Status", s));
    }
    Ok(())
}

pub(super) async fn list_groups(AxState(app): App, Query(q): Q) -> Response {
    let st = app.lock();
    let counts = st.group_account_counts();
    let items: Vec<&crate::model::Group> = st
        .groups
        .values()
        .filter(|g| {
            q.get("platform")
                .is_none_or(|v| v.is_empty() || g.platform == *v)
        })
        .filter(|g| {
            q.get("status")
                .is_none_or(|v| v.is_empty() || g.status == *v)
        })
        .filter(|g| {
            q.get("is_exclusive")
                .is_none_or(|v| v.is_empty() || g.is_exclusive.to_string() == *v)
        })
        .filter(|g| q.get("search").is_none_or(|v| contains_ci(&g.name, v)))
        .collect();
    ok(
        Page::from_query(&q, st.profile.max_page_size).render_with(items, |g| {
            st.group_json_counted(g, counts.get(&g.id).copied().unwrap_or_default())
        }),
    )
}

pub(super) async fn all_groups(AxState(app): App, Query(q): Q) -> Response {
    let st = app.lock();
    let counts = st.group_account_counts();
    let items: Vec<Value> = st
        .groups
        .values()
        .filter(|g| g.status == "active")
        .filter(|g| {
            q.get("platform")
                .is_none_or(|v| v.is_empty() || g.platform == *v)
        })
        .map(|g| st.group_json_counted(g, counts.get(&g.id).copied().unwrap_or_default()))
        .collect();
    ok(Value::Array(items))
}

pub(super) async fn get_group(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "group")?;
    let st = app.lock();
    let g = st.groups.get(&id).ok_or_else(group_not_found)?;
    Ok(ok(st.group_json(g)))
}

pub(super) async fn create_group(AxState(app): App, body: Bytes) -> HResult {
    let req: GroupBody = parse(&body)?;
    let mut st = app.lock();
    let name = required(&req.name, "CreateGroupRequest", "Name")?.to_owned();
    check_group_enums(&st.profile, &req, "CreateGroupRequest")?;
    if st.groups.values().any(|g| g.name == name) {
        return Err(app_err(
            StatusCode::CONFLICT,
            "GROUP_EXISTS",
            "group name already exists",
        ));
    }
    let t = now();
    let id = st.id();
    let g = Group {
        id,
        name,
        description: req.description.unwrap_or_default(),
        platform: req
            .platform
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "anthropic".into()),
        rate_multiplier: req.rate_multiplier.unwrap_or(1.0),
        is_exclusive: req.is_exclusive.unwrap_or(false),
        status: "active".into(),
        subscription_type: req
            .subscription_type
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "standard".into()),
        daily_limit_usd: req.daily_limit_usd,
        weekly_limit_usd: req.weekly_limit_usd,
        monthly_limit_usd: req.monthly_limit_usd,
        created_at: t,
        updated_at: t,
    };
    let v = st.group_json(&g);
    st.groups.insert(id, g);
    Ok(ok(v))
}

pub(super) async fn update_group(
    AxState(app): App,
    Path(id): Path<String>,
    body: Bytes,
) -> HResult {
    let id = path_id(&id, "group")?;
    let req: GroupBody = parse(&body)?;
    let mut st = app.lock();
    check_group_enums(&st.profile, &req, "UpdateGroupRequest")?;
    if let Some(n) = &req.name
        && st.groups.values().any(|g| g.name == *n && g.id != id)
    {
        return Err(app_err(
            StatusCode::CONFLICT,
            "GROUP_EXISTS",
            "group name already exists",
        ));
    }
    let g = st.groups.get_mut(&id).ok_or_else(group_not_found)?;
    if let Some(v) = req.name {
        g.name = v;
    }
    if let Some(v) = req.description {
        g.description = v;
    }
    if let Some(v) = req.platform.filter(|s| !s.is_empty()) {
        g.platform = v;
    }
    if let Some(v) = req.rate_multiplier {
        g.rate_multiplier = v;
    }
    if let Some(v) = req.is_exclusive {
        g.is_exclusive = v;
    }
    if let Some(v) = req.status.filter(|s| !s.is_empty()) {
        g.status = v;
    }
    if let Some(v) = req.subscription_type.filter(|s| !s.is_empty()) {
        g.subscription_type = v;
    }
    if req.daily_limit_usd.is_some() {
        g.daily_limit_usd = req.daily_limit_usd;
    }
    if req.weekly_limit_usd.is_some() {
        g.weekly_limit_usd = req.weekly_limit_usd;
    }
    if req.monthly_limit_usd.is_some() {
        g.monthly_limit_usd = req.monthly_limit_usd;
    }
    g.updated_at = now();
    let g = g.clone();
    Ok(ok(st.group_json(&g)))
}

pub(super) async fn delete_group(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "group")?;
    let mut st = app.lock();
    if !st.delete_group(id) {
        return Err(group_not_found());
    }
    Ok(ok(json!({"message": "Group deleted successfully"})))
}

pub(super) async fn group_keys(AxState(app): App, Path(id): Path<String>, Query(q): Q) -> HResult {
    let id = path_id(&id, "group")?;
    let st = app.lock();
    st.groups.get(&id).ok_or_else(group_not_found)?;
    let items = st
        .keys
        .values()
        .filter(|k| k.group_id == Some(id))
        .map(|k| st.key_json(k))
        .collect();
    Ok(ok(
        Page::from_query(&q, st.profile.max_page_size).render(items)
    ))
}

pub(super) async fn group_subscriptions(
    AxState(app): App,
    Path(id): Path<String>,
    Query(q): Q,
) -> HResult {
    let id = path_id(&id, "group")?;
    let st = app.lock();
    st.groups.get(&id).ok_or_else(group_not_found)?;
    let items = st
        .subscriptions
        .values()
        .filter(|s| s.group_id == id)
        .map(|s| st.subscription_json(s))
        .collect();
    Ok(ok(
        Page::from_query(&q, st.profile.max_page_size).render(items)
    ))
}
