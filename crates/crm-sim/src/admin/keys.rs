//! `PUT /admin/api-keys/:id` (current): rebinding a user key to a group.

use super::*;

#[derive(Deserialize, Default)]
pub(super) struct RebindBody {
    group_id: Option<i64>,
}

pub(super) async fn rebind_key(AxState(app): App, Path(id): Path<String>, body: Bytes) -> HResult {
    let id = path_id(&id, "API key")?;
    let req: RebindBody = parse_or_default(&body)?;
    let mut st = app.lock();
    let key = st
        .keys
        .get(&id)
        .cloned()
        .ok_or_else(|| not_found("API_KEY_NOT_FOUND", "api key not found"))?;
    let mut granted: Option<(i64, String)> = None;
    match req.group_id {
        None => {}
        Some(0) => {
            if let Some(k) = st.keys.get_mut(&id) {
                k.group_id = None;
            }
        }
        Some(gid) => {
            let g = st.groups.get(&gid).cloned().ok_or_else(group_not_found)?;
            if g.is_exclusive
                && g.subscription_type == "standard"
                && let Some(u) = st.users.get_mut(&key.user_id)
                && !u.allowed_groups.contains(&gid)
            {
                u.allowed_groups.push(gid);
                granted = Some((gid, g.name.clone()));
            }
            if let Some(k) = st.keys.get_mut(&id) {
                k.group_id = Some(gid);
                k.updated_at = now();
            }
        }
    }
    let k = st
        .keys
        .get(&id)
        .cloned()
        .ok_or_else(|| not_found("API_KEY_NOT_FOUND", "api key not found"))?;
    let mut data =
        json!({"api_key": st.key_json(&k), "auto_granted_group_access": granted.is_some()});
    if let (Some((gid, name)), Some(o)) = (granted, data.as_object_mut()) {
        o.insert("granted_group_id".into(), json!(gid));
        o.insert("granted_group_name".into(), json!(name));
    }
    Ok(ok(data))
}
