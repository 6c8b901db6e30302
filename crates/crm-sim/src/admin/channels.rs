//! `/admin/channels` (current): pricing rows, one channel per group.

use super::*;

#[derive(Deserialize, Default)]
pub(super) struct ChannelBody {
    name: Option<String>,
    description: Option<String>,
    status: Option<String>,
    group_ids: Option<Vec<i64>>,
    model_pricing: Option<Vec<Value>>,
    model_mapping: Option<Map<String, Value>>,
    billing_model_source: Option<String>,
    restrict_models: Option<bool>,
}

pub(super) fn channel_not_found() -> Response {
    not_found("CHANNEL_NOT_FOUND", "channel not found")
}

pub(super) fn validation(msg: &str) -> Response {
    app_err(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", msg)
}

/// Normalises pricing rows (defaults, ids) and rejects what the host rejects.
pub(super) fn normalise_pricing(st: &mut State, rows: &[Value]) -> Result<Vec<Value>, Response> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(obj) = row.as_object() else {
            return Err(validation("model_pricing rows must be objects"));
        };
        let mut obj = obj.clone();
        let models = obj
            .get("models")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if models.is_empty()
            || models.len() > 100
            || !models
                .iter()
                .all(|m| m.as_str().is_some_and(|s| !s.is_empty()))
        {
            return Err(validation(
                "each model_pricing row needs 1 to 100 model names",
            ));
        }
        let mode = obj
            .get("billing_mode")
            .and_then(Value::as_str)
            .unwrap_or("token")
            .to_owned();
        if !["token", "per_request", "image"].contains(&mode.as_str()) {
            return Err(validation(&format!("invalid billing_mode '{mode}'")));
        }
        obj.entry("platform").or_insert(json!("anthropic"));
        obj.insert("billing_mode".into(), json!(mode));
        obj.entry("intervals").or_insert(json!([]));
        let id = st.id();
        obj.insert("id".into(), json!(id));
        out.push(Value::Object(obj));
    }
    Ok(out)
}

pub(super) fn check_channel_groups(
    st: &State,
    ids: &[i64],
    this: Option<i64>,
) -> Result<(), Response> {
    check_groups_exist(st, ids)?;
    for gid in ids {
        if let Some(other) = st
            .channels
            .values()
            .find(|c| Some(c.id) != this && c.group_ids.contains(gid))
        {
            return Err(app_err(
                StatusCode::CONFLICT,
                "GROUP_ALREADY_IN_CHANNEL",
                &format!("group {gid} already belongs to channel '{}'", other.name),
            ));
        }
    }
    Ok(())
}

pub(super) fn check_billing_source(s: Option<&str>) -> Result<(), Response> {
    match s {
        None | Some("requested" | "upstream" | "channel_mapped") => Ok(()),
        Some(other) => Err(validation(&format!(
            "billing_model_source must be one of requested, upstream, channel_mapped (got '{other}')"
        ))),
    }
}

pub(super) async fn list_channels(AxState(app): App, Query(q): Q) -> Response {
    let st = app.lock();
    let mut items: Vec<&Channel> = st
        .channels
        .values()
        .filter(|c| {
            q.get("status")
                .is_none_or(|v| v.is_empty() || c.status == *v)
        })
        .filter(|c| q.get("search").is_none_or(|v| contains_ci(&c.name, v)))
        .collect();
    items.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let items = items.into_iter().map(|c| st.channel_json(c)).collect();
    ok(Page::from_query(&q, st.profile.max_page_size).render(items))
}

pub(super) async fn get_channel(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "channel")?;
    let st = app.lock();
    let c = st.channels.get(&id).ok_or_else(channel_not_found)?;
    Ok(ok(st.channel_json(c)))
}

pub(super) async fn create_channel(AxState(app): App, body: Bytes) -> HResult {
    let req: ChannelBody = parse(&body)?;
    let mut st = app.lock();
    let name = required(&req.name, "CreateChannelRequest", "Name")?.to_owned();
    if name.chars().count() > 100 {
        return Err(validation("name must be at most 100 characters"));
    }
    if st.channels.values().any(|c| c.name == name) {
        return Err(app_err(
            StatusCode::CONFLICT,
            "CHANNEL_EXISTS",
            "channel name already exists",
        ));
    }
    check_billing_source(req.billing_model_source.as_deref())?;
    let group_ids = req.group_ids.unwrap_or_default();
    check_channel_groups(&st, &group_ids, None)?;
    let pricing = normalise_pricing(&mut st, &req.model_pricing.unwrap_or_default())?;
    let t = now();
    let id = st.id();
    let c = Channel {
        id,
        name,
        description: req.description.unwrap_or_default(),
        status: "active".into(),
        group_ids,
        model_pricing: pricing,
        model_mapping: req.model_mapping.unwrap_or_default(),
        billing_model_source: req
            .billing_model_source
            .unwrap_or_else(|| "requested".into()),
        restrict_models: req.restrict_models.unwrap_or(false),
        created_at: t,
        updated_at: t,
    };
    let v = st.channel_json(&c);
    st.channels.insert(id, c);
    Ok(ok(v))
}

pub(super) async fn update_channel(
    AxState(app): App,
    Path(id): Path<String>,
    body: Bytes,
) -> HResult {
    let id = path_id(&id, "channel")?;
    let req: ChannelBody = parse(&body)?;
    let mut st = app.lock();
    st.channels.get(&id).ok_or_else(channel_not_found)?;
    check_billing_source(req.billing_model_source.as_deref())?;
    if let Some(s) = req.status.as_deref()
        && s != "active"
        && s != "disabled"
    {
        return Err(validation(&format!(
            "status must be active or disabled (got '{s}')"
        )));
    }
    if let Some(n) = &req.name
        && st.channels.values().any(|c| c.name == *n && c.id != id)
    {
        return Err(app_err(
            StatusCode::CONFLICT,
            "CHANNEL_EXISTS",
            "channel name already exists",
        ));
    }
    if let Some(g) = &req.group_ids {
        check_channel_groups(&st, g, Some(id))?;
    }
    let pricing = match &req.model_pricing {
        Some(rows) => Some(normalise_pricing(&mut st, rows)?),
        None => None,
    };
    let c = st.channels.get_mut(&id).ok_or_else(channel_not_found)?;
    if let Some(v) = req.name {
        c.name = v;
    }
    if let Some(v) = req.description {
        c.description = v;
    }
    if let Some(v) = req.status {
        c.status = v;
    }
    if let Some(v) = req.group_ids {
        c.group_ids = v;
    }
    if let Some(v) = pricing {
        c.model_pricing = v;
    }
    if let Some(v) = req.model_mapping {
        c.model_mapping = v;
    }
    if let Some(v) = req.billing_model_source {
        c.billing_model_source = v;
    }
    if let Some(v) = req.restrict_models {
        c.restrict_models = v;
    }
    c.updated_at = now();
    let c = c.clone();
    Ok(ok(st.channel_json(&c)))
}

pub(super) async fn delete_channel(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "channel")?;
    let mut st = app.lock();
    st.channels.remove(&id).ok_or_else(channel_not_found)?;
    Ok(ok(json!({"message": "Channel deleted successfully"})))
}
