//! `/api/packs`: install (upload, or a file inside the configured packs
//! directory), list, show, lint.

use super::{ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::ApiState;
use crate::auth::Principal;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use crm_domain::spec::InstalledPack;
use std::path::{Path, PathBuf};

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// Name used in diagnostics (`file:line:column`); default `upload.toml`.
    pub file_name: Option<String>,
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InstallQuery {
    /// Name used in diagnostics (`file:line:column`); default `upload.toml`.
    pub file_name: Option<String>,
    /// Install a pack that takes a bundled pack's id (`cn-official`) with
    /// other content, replacing the bundled one on purpose (audited). Without
    /// it such a pack is refused with 409 `/problems/pack-reserved`.
    pub replace_bundled: Option<bool>,
}

/// A pack file on the server.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackPathBody {
    /// Relative to the server's packs directory (or absolute inside it).
    pub path: String,
    /// As for uploads: take a bundled pack's id with other content on
    /// purpose (audited); refused with 409 `/problems/pack-reserved` otherwise.
    #[serde(default)]
    pub replace_bundled: bool,
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    /// A version other than the current one.
    pub version: Option<String>,
}

fn text(body: Result<Bytes, BytesRejection>) -> ApiResult<String> {
    let bytes = body.map_err(|r| {
        ApiError::new(
            r.status(),
            "invalid-body",
            "Invalid request body",
            r.body_text(),
        )
    })?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::bad_request("the pack must be UTF-8 TOML text"))
}

fn installed(pack: InstalledPack) -> Response {
    let location = format!("/api/packs/{}", pack.manifest.pack_id);
    let mut resp = (StatusCode::CREATED, Json(pack)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Installs an uploaded pack and makes it current.
///
/// A pack that takes a bundled pack's id (`cn-official`) with other content is refused with 409
/// `/problems/pack-reserved` unless `replace_bundled=true`; an invalid pack
/// is 422 `/problems/pack-invalid` with every diagnostic.
#[utoipa::path(post, path = "/api/packs", tag = "packs", params(InstallQuery),
    request_body(content = String, content_type = "text/plain", description = "The pack file (TOML)"),
    responses((status = 201, description = "Installed and made current", body = serde_json::Value,
        headers(("location" = String, description = "The pack's URL")))))]
pub async fn install_pack(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiQuery(q): ApiQuery<InstallQuery>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let name = q.file_name.unwrap_or_else(|| "upload.toml".into());
    let replace = q.replace_bundled.unwrap_or(false);
    let pack = st
        .app_for(p)
        .install_pack_text(&name, &text(body)?, replace)
        .await?;
    Ok(installed(pack))
}

/// Resolves `raw` inside `dir`, refusing anything that leaves it (`..`,
/// absolute paths elsewhere, symlinks pointing out).
pub fn resolve_in(dir: &Path, raw: &str) -> ApiResult<PathBuf> {
    let base = dir.canonicalize().map_err(|e| {
        ApiError::internal(format!(
            "the packs directory {} is unreadable: {e}",
            dir.display()
        ))
    })?;
    let candidate = base.join(raw);
    let resolved = candidate.canonicalize().map_err(|_| {
        ApiError::not_found(format!(
            "no pack file {raw:?} in the server's packs directory"
        ))
    })?;
    if !resolved.starts_with(&base) || !resolved.is_file() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "outside-packs-dir",
            "Path outside the packs directory",
            format!("{raw:?} is not a file inside the server's packs directory"),
        ));
    }
    Ok(resolved)
}

/// Installs a pack file from the server's packs directory, made current.
///
/// A bundled pack id is reserved as for uploads (409
/// `/problems/pack-reserved` unless `"replace_bundled": true`).
#[utoipa::path(post, path = "/api/packs/from-path", tag = "packs", request_body = PackPathBody,
    responses((status = 201, description = "Installed and made current", body = serde_json::Value,
        headers(("location" = String, description = "The pack's URL")))))]
pub async fn install_pack_from_path(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiJson(body): ApiJson<PackPathBody>,
) -> ApiResult<Response> {
    let Some(dir) = st.inner.config.packs_dir.clone() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "no-packs-dir",
            "No packs directory",
            "this server has no packs directory configured (--packs-dir / CRM_PACKS_DIR); upload the pack with POST /api/packs instead",
        ));
    };
    let path = resolve_in(&dir, &body.path)?;
    Ok(installed(
        st.app_for(p)
            .install_pack_file(&path, body.replace_bundled)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/packs", tag = "packs",
    responses((status = 200, description = "Installed pack versions", body = serde_json::Value)))]
pub async fn list_packs(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Vec<InstalledPack>>> {
    Ok(Json(st.app_for(p).list_packs().await?))
}

#[utoipa::path(get, path = "/api/packs/{pack}", tag = "packs",
    params(("pack" = String, Path, description = "Pack id"), VersionQuery),
    responses((status = 200, description = "The pack (current version unless asked)", body = serde_json::Value)))]
pub async fn get_pack(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath(pack): ApiPath<String>,
    ApiQuery(q): ApiQuery<VersionQuery>,
) -> ApiResult<Json<InstalledPack>> {
    Ok(Json(st.app_for(p).get_pack(&pack, q.version).await?))
}

/// What linting found.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LintView {
    pub valid: bool,
    pub pack_id: Option<String>,
    pub version: Option<String>,
    pub checksum: Option<String>,
    pub providers: usize,
    /// `file:line:column: message`, one per problem.
    pub diagnostics: Vec<String>,
}

#[utoipa::path(post, path = "/api/packs/lint", tag = "packs", params(UploadQuery),
    request_body(content = String, content_type = "text/plain", description = "The pack file (TOML)"),
    responses((status = 200, description = "Every diagnostic at once; nothing is stored", body = LintView)))]
pub async fn lint_pack(
    ApiQuery(q): ApiQuery<UploadQuery>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<LintView>> {
    let name = q.file_name.unwrap_or_else(|| "upload.toml".into());
    let view = match crm_pack::parse_pack(&name, &text(body)?) {
        Ok(parsed) => LintView {
            valid: true,
            pack_id: Some(parsed.manifest.pack_id.to_string()),
            version: Some(parsed.manifest.version.clone()),
            providers: parsed.manifest.providers.len(),
            checksum: Some(parsed.checksum),
            diagnostics: vec![],
        },
        Err(crm_pack::PackError::Invalid { diagnostics, .. }) => LintView {
            valid: false,
            pack_id: None,
            version: None,
            checksum: None,
            providers: 0,
            diagnostics: diagnostics.iter().map(|d| d.to_string()).collect(),
        },
        Err(other) => LintView {
            valid: false,
            pack_id: None,
            version: None,
            checksum: None,
            providers: 0,
            diagnostics: vec![other.to_string()],
        },
    };
    Ok(Json(view))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_packs_dir_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let packs = root.path().join("packs");
        std::fs::create_dir(&packs).unwrap();
        std::fs::write(packs.join("a.toml"), "x").unwrap();
        std::fs::write(root.path().join("secret.toml"), "x").unwrap();
        assert!(resolve_in(&packs, "a.toml").is_ok());
        assert_eq!(
            resolve_in(&packs, "../secret.toml").unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        let abs = root.path().join("secret.toml");
        assert_eq!(
            resolve_in(&packs, abs.to_str().unwrap())
                .unwrap_err()
                .status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            resolve_in(&packs, "missing.toml").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
    }
}
