//! `/admin/users`: search, CRUD, balance, a user's keys and subscriptions.

use super::*;

#[derive(Deserialize, Default)]
pub(super) struct UserBody {
    email: Option<String>,
    password: Option<String>,
    username: Option<String>,
    notes: Option<String>,
    balance: Option<f64>,
    concurrency: Option<i64>,
    status: Option<String>,
    allowed_groups: Option<Vec<i64>>,
}

pub(crate) fn user_not_found() -> Response {
    not_found("USER_NOT_FOUND", "user not found")
}

pub(super) async fn list_users(AxState(app): App, Query(q): Q) -> Response {
    let st = app.lock();
    let items = st
        .users
        .values()
        .filter(|u| {
            q.get("status")
                .is_none_or(|v| v.is_empty() || u.status == *v)
        })
        .filter(|u| q.get("role").is_none_or(|v| v.is_empty() || u.role == *v))
        .filter(|u| {
            q.get("search")
                .is_none_or(|v| contains_ci(&u.email, v) || contains_ci(&u.username, v))
        })
        .map(|u| st.user_json(u))
        .collect();
    ok(Page::from_query(&q, st.profile.max_page_size).render(items))
}

pub(super) async fn get_user(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "user")?;
    let st = app.lock();
    let u = st.users.get(&id).ok_or_else(user_not_found)?;
    Ok(ok(st.user_json(u)))
}

pub(super) async fn create_user(AxState(app): App, body: Bytes) -> HResult {
    let req: UserBody = parse(&body)?;
    let mut st = app.lock();
    let email = required(&req.email, "CreateUserRequest", "Email")?.to_owned();
    if !email.contains('@') {
        return Err(bad_request(
            "Invalid request: Key: 'CreateUserRequest.Email' Error:Field validation for 'Email' failed on the 'email' tag",
        ));
    }
    let password = required(&req.password, "CreateUserRequest", "Password")?.to_owned();
    if password.chars().count() < 6 {
        return Err(bad_request(
            "Invalid request: Key: 'CreateUserRequest.Password' Error:Field validation for 'Password' failed on the 'min' tag",
        ));
    }
    if st
        .users
        .values()
        .any(|u| u.email.eq_ignore_ascii_case(&email))
    {
        return Err(app_err(
            StatusCode::CONFLICT,
            "EMAIL_EXISTS",
            "email already exists",
        ));
    }
    let t = now();
    let id = st.id();
    let u = User {
        id,
        email,
        username: req.username.unwrap_or_default(),
        password,
        role: "user".into(),
        balance: req.balance.unwrap_or(0.0),
        concurrency: req.concurrency.unwrap_or(5),
        status: "active".into(),
        allowed_groups: req.allowed_groups.unwrap_or_default(),
        notes: req.notes.unwrap_or_default(),
        created_at: t,
        updated_at: t,
    };
    let v = st.user_json(&u);
    st.users.insert(id, u);
    Ok(ok(v))
}

pub(super) async fn update_user(AxState(app): App, Path(id): Path<String>, body: Bytes) -> HResult {
    let id = path_id(&id, "user")?;
    let req: UserBody = parse(&body)?;
    let mut st = app.lock();
    if let Some(s) = req.status.as_deref()
        && s != "active"
        && s != "disabled"
    {
        return Err(bad_request(&format!(
            "Invalid request: Key: 'UpdateUserRequest.Status' Error:Field validation for 'Status' failed on the 'oneof' tag (got '{s}')"
        )));
    }
    if let Some(e) = &req.email
        && st
            .users
            .values()
            .any(|u| u.email.eq_ignore_ascii_case(e) && u.id != id)
    {
        return Err(app_err(
            StatusCode::CONFLICT,
            "EMAIL_EXISTS",
            "email already exists",
        ));
    }
    let u = st.users.get_mut(&id).ok_or_else(user_not_found)?;
    if let Some(v) = req.email {
        u.email = v;
    }
    if let Some(v) = req.password.filter(|p| !p.is_empty()) {
        u.password = v;
    }
    if let Some(v) = req.username {
        u.username = v;
    }
    if let Some(v) = req.notes {
        u.notes = v;
    }
    if let Some(v) = req.balance {
        u.balance = v;
    }
    if let Some(v) = req.concurrency {
        u.concurrency = v;
    }
    if let Some(v) = req.status {
        u.status = v;
    }
    if let Some(v) = req.allowed_groups {
        u.allowed_groups = v;
    }
    u.updated_at = now();
    let u = u.clone();
    Ok(ok(st.user_json(&u)))
}

pub(super) async fn delete_user(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "user")?;
    let mut st = app.lock();
    let u = st.users.get(&id).ok_or_else(user_not_found)?;
    if u.role == "admin" {
        return Err(bad_request("cannot delete admin user"));
    }
    st.delete_user(id);
    Ok(ok(json!({"message": "User deleted successfully"})))
}

#[derive(Deserialize)]
pub(super) struct BalanceBody {
    balance: f64,
    operation: String,
}

pub(super) async fn user_balance(
    AxState(app): App,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> HResult {
    let id = path_id(&id, "user")?;
    let req: BalanceBody = parse(&body)?;
    if req.balance <= 0.0 || !req.balance.is_finite() {
        return Err(bad_request(
            "Invalid request: Key: 'UpdateBalanceRequest.Balance' Error:Field validation for 'Balance' failed on the 'gt' tag",
        ));
    }
    if !["set", "add", "subtract"].contains(&req.operation.as_str()) {
        return Err(bad_request(
            "Invalid request: Key: 'UpdateBalanceRequest.Operation' Error:Field validation for 'Operation' failed on the 'oneof' tag",
        ));
    }
    let mut st = app.lock();
    idempotent(
        &mut st,
        &headers,
        "admin.users.balance.update",
        &body,
        |st| {
            let u = st.users.get_mut(&id).ok_or_else(user_not_found)?;
            let new = match req.operation.as_str() {
                "set" => req.balance,
                "add" => u.balance + req.balance,
                _ => u.balance - req.balance,
            };
            if new < 0.0 {
                return Err(app_err(
                    StatusCode::BAD_REQUEST,
                    "INSUFFICIENT_BALANCE",
                    "balance cannot go below zero",
                ));
            }
            u.balance = new;
            u.updated_at = now();
            let u = u.clone();
            Ok(st.user_json(&u))
        },
    )
}

pub(super) async fn user_keys(AxState(app): App, Path(id): Path<String>, Query(q): Q) -> HResult {
    let id = path_id(&id, "user")?;
    let st = app.lock();
    st.users.get(&id).ok_or_else(user_not_found)?;
    let items = st
        .keys
        .values()
        .filter(|k| k.user_id == id)
        .map(|k| st.key_json(k))
        .collect();
    Ok(ok(
        Page::from_query(&q, st.profile.max_page_size).render(items)
    ))
}

pub(super) async fn user_subscriptions(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "user")?;
    let st = app.lock();
    st.users.get(&id).ok_or_else(user_not_found)?;
    let items: Vec<Value> = st
        .subscriptions
        .values()
        .filter(|s| s.user_id == id)
        .map(|s| st.subscription_json(s))
        .collect();
    Ok(ok(Value::Array(items)))
}
