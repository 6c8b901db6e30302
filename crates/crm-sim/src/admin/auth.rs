//! Admin authentication (`x-api-key` or an admin JWT), the compliance gate,
//! the version and public settings, and the admin API key settings.

use super::*;

/// `x-api-key` is always taken as the admin key; otherwise an admin user's JWT.
pub(super) async fn admin_auth(AxState(app): App, req: Request, next: Next) -> Response {
    let verdict = {
        let st = app.lock();
        if let Some(k) = req.headers().get("x-api-key") {
            if st
                .admin_key
                .as_ref()
                .is_some_and(|a| a.as_bytes() == k.as_bytes())
            {
                Ok(())
            } else {
                Err(mw_err(
                    StatusCode::UNAUTHORIZED,
                    "INVALID_ADMIN_KEY",
                    "Invalid admin API key",
                ))
            }
        } else if let Some(token) = bearer(req.headers()) {
            match st.sessions.get(token).and_then(|u| st.users.get(u)) {
                None => Err(mw_err(
                    StatusCode::UNAUTHORIZED,
                    "INVALID_TOKEN",
                    "Invalid token",
                )),
                Some(u) if u.status != "active" => Err(mw_err(
                    StatusCode::UNAUTHORIZED,
                    "USER_INACTIVE",
                    "User is not active",
                )),
                Some(u) if u.role != "admin" => Err(mw_err(
                    StatusCode::FORBIDDEN,
                    "FORBIDDEN",
                    "Admin access required",
                )),
                Some(_) => Ok(()),
            }
        } else {
            Err(mw_err(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "Authorization required",
            ))
        }
    };
    if let Err(r) = verdict {
        return r;
    }
    let path = req.uri().path();
    let compliance_route =
        path.starts_with("/compliance") || path.starts_with("/api/v1/admin/compliance");
    let gated = {
        let st = app.lock();
        st.profile.compliance_gate && !st.compliance_accepted && !compliance_route
    };
    if gated {
        return json_response(
            StatusCode::LOCKED,
            json!({
                "code": "ADMIN_COMPLIANCE_ACK_REQUIRED",
                "message": "An administrator must read and accept the compliance notice before using the admin API",
                "metadata": {
                    "version": COMPLIANCE_VERSION,
                    "document_path_zh": "/compliance/zh", "document_path_en": "/compliance/en",
                    "document_url_zh": "https://example.invalid/compliance/zh",
                    "document_url_en": "https://example.invalid/compliance/en",
                },
            }),
        );
    }
    next.run(req).await
}

pub(super) const COMPLIANCE_VERSION: &str = "2026-09";
/// The phrase a human types to accept the notice.
pub(crate) const COMPLIANCE_PHRASE: &str = "I have read and accept the compliance notice";

pub(super) async fn compliance_status(AxState(app): App) -> Response {
    let st = app.lock();
    ok(
        json!({"accepted": st.compliance_accepted, "version": COMPLIANCE_VERSION, "phrase": COMPLIANCE_PHRASE}),
    )
}

#[derive(Deserialize)]
pub(super) struct AcceptBody {
    phrase: Option<String>,
}

pub(super) async fn accept_compliance(AxState(app): App, body: Bytes) -> HResult {
    let req: AcceptBody = parse(&body)?;
    let phrase = required(&req.phrase, "AcceptComplianceRequest", "Phrase")?;
    if phrase.trim() != COMPLIANCE_PHRASE {
        return Err(app_err(
            StatusCode::BAD_REQUEST,
            "COMPLIANCE_PHRASE_MISMATCH",
            "the confirmation phrase does not match",
        ));
    }
    app.lock().compliance_accepted = true;
    Ok(ok(json!({"accepted": true, "version": COMPLIANCE_VERSION})))
}

pub(super) async fn version(AxState(app): App) -> Response {
    ok(json!({"version": app.profile.version}))
}

pub(super) async fn public_settings(AxState(app): App) -> Response {
    ok(json!({
        "site_name": "Sub2API", "site_subtitle": "", "registration_enabled": false,
        "email_verify_enabled": false, "version": app.profile.version,
    }))
}

pub(super) async fn admin_key_status(AxState(app): App) -> Response {
    let st = app.lock();
    let masked = st.admin_key.as_deref().map(|k| {
        let head: String = k.chars().take(10).collect();
        let tail: String = k
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("{head}...{tail}")
    });
    ok(json!({"exists": masked.is_some(), "masked_key": masked.unwrap_or_default()}))
}

pub(super) async fn regenerate_admin_key(AxState(app): App) -> Response {
    let key = format!("admin-{}", crate::model::random_hex(32));
    app.lock().admin_key = Some(key.clone());
    ok(json!({"key": key}))
}

pub(super) async fn delete_admin_key(AxState(app): App) -> Response {
    app.lock().admin_key = None;
    ok(json!({"message": "Admin API key deleted"}))
}
