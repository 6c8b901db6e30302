//! `/admin/accounts`: list, CRUD, schedulable, clear-error, temp-unschedulable, models.

use super::*;

pub(super) async fn list_accounts(AxState(app): App, Query(q): Q) -> Response {
    let st = app.lock();
    let p = &st.profile;
    let group_filter = if p.account_group_filter {
        q.get("group").cloned()
    } else {
        None
    };
    let mut items: Vec<&Account> = st
        .accounts
        .values()
        .filter(|a| {
            q.get("platform")
                .is_none_or(|v| v.is_empty() || a.platform == *v)
        })
        .filter(|a| q.get("type").is_none_or(|v| v.is_empty() || a.kind == *v))
        .filter(|a| {
            q.get("status")
                .is_none_or(|v| v.is_empty() || a.status == *v)
        })
        .filter(|a| q.get("search").is_none_or(|v| contains_ci(&a.name, v)))
        .filter(|a| match group_filter.as_deref() {
            None | Some("") => true,
            Some("ungrouped") => a.group_ids.is_empty(),
            Some(g) => g.parse::<i64>().is_ok_and(|g| a.group_ids.contains(&g)),
        })
        .collect();
    if p.account_extended_fields {
        // Newer hosts sort by name by default.
        items.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        if q.get("sort_order").is_some_and(|o| o == "desc") {
            items.reverse();
        }
    }
    let page = Page::from_query(&q, p.max_page_size);
    let counts = st.group_account_counts();
    ok(page.render_with(items, |a| st.account_json_counted(a, Some(&counts))))
}

pub(super) async fn get_account(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "account")?;
    let st = app.lock();
    let a = st.accounts.get(&id).ok_or_else(account_not_found)?;
    Ok(ok(st.account_json(a)))
}

#[derive(Deserialize, Default)]
pub(super) struct AccountBody {
    name: Option<String>,
    notes: Option<String>,
    platform: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    credentials: Option<Map<String, Value>>,
    extra: Option<Map<String, Value>>,
    proxy_id: Option<i64>,
    concurrency: Option<i64>,
    priority: Option<i64>,
    rate_multiplier: Option<f64>,
    status: Option<String>,
    group_ids: Option<Vec<i64>>,
}

pub(super) async fn create_account(AxState(app): App, headers: HeaderMap, body: Bytes) -> HResult {
    let req: AccountBody = parse(&body)?;
    let mut st = app.lock();
    idempotent(&mut st, &headers, "admin.accounts.create", &body, |st| {
        let name = required(&req.name, "CreateAccountRequest", "Name")?.to_owned();
        let platform = required(&req.platform, "CreateAccountRequest", "Platform")?.to_owned();
        let kind = required(&req.kind, "CreateAccountRequest", "Type")?.to_owned();
        if !st.profile.account_types.contains(&kind.as_str()) {
            return Err(bad_request(&format!(
                "Invalid request: Key: 'CreateAccountRequest.Type' Error:Field validation for 'Type' failed on the 'oneof' tag (got '{kind}')"
            )));
        }
        let Some(credentials) = req.credentials.clone() else {
            return Err(bad_request(
                "Invalid request: Key: 'CreateAccountRequest.Credentials' Error:Field validation for 'Credentials' failed on the 'required' tag",
            ));
        };
        let group_ids = req.group_ids.clone().unwrap_or_default();
        check_groups_exist(st, &group_ids)?;
        let t = now();
        let id = st.id();
        let a = Account {
            id,
            name,
            notes: req
                .notes
                .clone()
                .filter(|_| st.profile.account_extended_fields),
            platform,
            kind,
            credentials,
            extra: req.extra.clone().unwrap_or_default(),
            proxy_id: req.proxy_id,
            concurrency: req.concurrency.unwrap_or(3),
            priority: req.priority.unwrap_or(50),
            rate_multiplier: req.rate_multiplier.unwrap_or(1.0),
            status: "active".into(),
            error_message: String::new(),
            schedulable: true,
            temp_unschedulable_until: None,
            temp_unschedulable_reason: String::new(),
            group_ids,
            created_at: t,
            updated_at: t,
        };
        let v = st.account_json(&a);
        st.accounts.insert(id, a);
        Ok(v)
    })
}

pub(super) async fn update_account(
    AxState(app): App,
    Path(id): Path<String>,
    body: Bytes,
) -> HResult {
    let id = path_id(&id, "account")?;
    let req: AccountBody = parse(&body)?;
    let mut st = app.lock();
    let profile = st.profile.clone();
    if let Some(s) = &req.status
        && !profile.account_statuses.contains(&s.as_str())
    {
        return Err(bad_request(&format!(
            "Invalid request: Key: 'UpdateAccountRequest.Status' Error:Field validation for 'Status' failed on the 'oneof' tag (got '{s}')"
        )));
    }
    if let Some(g) = &req.group_ids {
        check_groups_exist(&st, g)?;
    }
    let a = st.accounts.get_mut(&id).ok_or_else(account_not_found)?;
    if let Some(v) = &req.name {
        a.name.clone_from(v);
    }
    if profile.account_extended_fields {
        if let Some(v) = &req.notes {
            a.notes = Some(v.clone());
        }
        if let Some(v) = req.rate_multiplier {
            a.rate_multiplier = v;
        }
    }
    if let Some(v) = &req.kind {
        a.kind.clone_from(v);
    }
    if let Some(new) = &req.credentials {
        let mut merged = new.clone();
        if profile.credential_redaction {
            // Newer hosts keep secrets the client could not have seen.
            for k in crate::model::SENSITIVE_CREDENTIALS {
                if !merged.contains_key(*k)
                    && let Some(old) = a.credentials.get(*k)
                {
                    merged.insert((*k).into(), old.clone());
                }
            }
        }
        a.credentials = merged;
    }
    if let Some(v) = &req.extra {
        a.extra = v.clone();
    }
    if req.proxy_id.is_some() {
        a.proxy_id = req.proxy_id;
    }
    if let Some(v) = req.concurrency {
        a.concurrency = v;
    }
    if let Some(v) = req.priority {
        a.priority = v;
    }
    if let Some(v) = &req.status {
        a.status.clone_from(v);
        if v == "active" {
            a.error_message.clear();
        }
    }
    if let Some(v) = &req.group_ids {
        a.group_ids.clone_from(v);
    }
    a.updated_at = now();
    let a = a.clone();
    Ok(ok(st.account_json(&a)))
}

pub(super) async fn delete_account(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "account")?;
    let mut st = app.lock();
    st.accounts.remove(&id).ok_or_else(account_not_found)?;
    Ok(ok(json!({"message": "Account deleted successfully"})))
}

pub(super) async fn get_temp_unschedulable(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "account")?;
    let st = app.lock();
    let a = st.accounts.get(&id).ok_or_else(account_not_found)?;
    Ok(ok(
        match a.temp_unschedulable_until.filter(|t| *t > now()) {
            None => json!({"active": false}),
            Some(until) => json!({"active": true, "state": {
                "until_unix": until.timestamp(), "triggered_at_unix": a.updated_at.timestamp(),
                "status_code": 429, "matched_keyword": "", "rule_index": 0,
                "error_message": a.temp_unschedulable_reason,
            }}),
        },
    ))
}

pub(super) async fn clear_temp_unschedulable(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "account")?;
    let mut st = app.lock();
    let a = st.accounts.get_mut(&id).ok_or_else(account_not_found)?;
    a.temp_unschedulable_until = None;
    a.temp_unschedulable_reason.clear();
    a.updated_at = now();
    Ok(ok(
        json!({"message": "Temporary unschedulable state cleared"}),
    ))
}

#[derive(Deserialize)]
pub(super) struct SchedulableBody {
    schedulable: bool,
}

pub(super) async fn set_schedulable(
    AxState(app): App,
    Path(id): Path<String>,
    body: Bytes,
) -> HResult {
    let id = path_id(&id, "account")?;
    let req: SchedulableBody = parse(&body)?;
    let mut st = app.lock();
    let a = st.accounts.get_mut(&id).ok_or_else(account_not_found)?;
    a.schedulable = req.schedulable;
    a.updated_at = now();
    let a = a.clone();
    Ok(ok(st.account_json(&a)))
}

pub(super) async fn clear_error(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "account")?;
    let mut st = app.lock();
    let a = st.accounts.get_mut(&id).ok_or_else(account_not_found)?;
    a.status = "active".into();
    a.error_message.clear();
    a.updated_at = now();
    let a = a.clone();
    Ok(ok(st.account_json(&a)))
}

pub(super) async fn account_models(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "account")?;
    let st = app.lock();
    let a = st.accounts.get(&id).ok_or_else(account_not_found)?;
    let models: Vec<Value> = a
        .model_mapping()
        .map(|m| m.keys().map(|k| crate::model::claude_item(k)).collect())
        .unwrap_or_default();
    Ok(ok(Value::Array(models)))
}
