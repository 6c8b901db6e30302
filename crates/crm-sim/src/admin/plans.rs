//! `/admin/payment/plans` (current).

use super::*;

pub(super) async fn list_plans(AxState(app): App) -> Response {
    let st = app.lock();
    ok(Value::Array(st.plans.values().cloned().collect()))
}

pub(super) fn plan_from(id: i64, req: &Map<String, Value>, base: Option<&Value>) -> Value {
    let mut v = base.cloned().unwrap_or_else(|| {
        json!({"description": "", "price": 0.0, "original_price": null, "validity_days": 30,
               "validity_unit": "day", "features": "", "product_name": "", "for_sale": true, "sort_order": 0})
    });
    if let Some(o) = v.as_object_mut() {
        for (k, val) in req {
            o.insert(k.clone(), val.clone());
        }
        o.insert("id".into(), json!(id));
        o.insert("updated_at".into(), json!(ts(&now())));
        o.entry("created_at").or_insert(json!(ts(&now())));
    }
    v
}

pub(super) async fn create_plan(AxState(app): App, body: Bytes) -> HResult {
    let req: Map<String, Value> = parse(&body)?;
    let mut st = app.lock();
    let gid = req.get("group_id").and_then(Value::as_i64).ok_or_else(|| {
        bad_request("Invalid request: Key: 'CreatePlanRequest.GroupID' Error:Field validation for 'GroupID' failed on the 'required' tag")
    })?;
    if req
        .get("name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(bad_request(
            "Invalid request: Key: 'CreatePlanRequest.Name' Error:Field validation for 'Name' failed on the 'required' tag",
        ));
    }
    st.groups.get(&gid).ok_or_else(group_not_found)?;
    let id = st.id();
    let v = plan_from(id, &req, None);
    st.plans.insert(id, v.clone());
    Ok(created(v))
}

pub(super) async fn update_plan(AxState(app): App, Path(id): Path<String>, body: Bytes) -> HResult {
    let id = path_id(&id, "plan")?;
    let req: Map<String, Value> = parse(&body)?;
    let mut st = app.lock();
    let old = st
        .plans
        .get(&id)
        .cloned()
        .ok_or_else(|| not_found("PLAN_NOT_FOUND", "plan not found"))?;
    let v = plan_from(id, &req, Some(&old));
    st.plans.insert(id, v.clone());
    Ok(ok(v))
}

pub(super) async fn delete_plan(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "plan")?;
    let mut st = app.lock();
    st.plans
        .remove(&id)
        .ok_or_else(|| not_found("PLAN_NOT_FOUND", "plan not found"))?;
    Ok(ok(json!({"message": "Plan deleted successfully"})))
}
