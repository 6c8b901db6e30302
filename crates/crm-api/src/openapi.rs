//! The OpenAPI document, generated from the handlers (utoipa-axum keeps the
//! routes and the document from diverging), plus what every `/api` route
//! shares: bearer auth, `Idempotency-Key` on mutating routes and the
//! problem+json error answers.

use crate::ApiState;
use crate::error::Problem;
use crate::routes::{batches, hosts, operations, packs, providers};
use utoipa::OpenApi;
use utoipa::openapi::path::{HttpMethod, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, Required, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "crm API",
        description = "Manage sub2api hosts and sell Chinese LLM providers through them. \
            Every /api route needs `Authorization: Bearer <token>`; mutating routes accept \
            `Idempotency-Key` (see docs/api.md). Errors are application/problem+json.",
    ),
    components(schemas(Problem, crate::schemas::ReconcileReport)),
    tags(
        (name = "hosts"), (name = "packs"), (name = "providers"), (name = "batches"),
        (name = "reconcile"), (name = "operations"), (name = "audit"),
    )
)]
struct ApiDoc;

/// Every `/api` route with its documentation.
pub fn api_router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(hosts::list_hosts, hosts::create_host))
        .routes(routes!(hosts::get_host, hosts::delete_host))
        .routes(routes!(hosts::probe_host))
        .routes(routes!(hosts::host_provider_status))
        .routes(routes!(hosts::host_funds))
        .routes(routes!(hosts::set_host_thresholds))
        .routes(routes!(hosts::host_reconcile_runs))
        .routes(routes!(hosts::get_reconcile_run))
        .routes(routes!(packs::list_packs, packs::install_pack))
        .routes(routes!(packs::install_pack_from_path))
        .routes(routes!(packs::lint_pack))
        .routes(routes!(packs::get_pack))
        .routes(routes!(providers::list_providers))
        .routes(routes!(providers::get_provider))
        .routes(routes!(providers::preview))
        .routes(routes!(providers::import))
        .routes(routes!(providers::rollback))
        .routes(routes!(providers::reconcile))
        .routes(routes!(providers::access_check))
        .routes(routes!(providers::assign_subscriptions))
        .routes(routes!(providers::provider_status))
        .routes(routes!(providers::provider_batches))
        .routes(routes!(batches::get_batch))
        .routes(routes!(batches::rollback_batch))
        .routes(routes!(batches::resume_batch))
        .routes(routes!(batches::reconcile_batch))
        .routes(routes!(operations::get_operation))
        .routes(routes!(operations::list_audit))
}

const COMMON: &[(u16, &str)] = &[
    (400, "The request is malformed"),
    (
        401,
        "Missing or wrong token (the answer carries `WWW-Authenticate: Bearer`)",
    ),
    (
        408,
        "The request (or its body) took longer than the server's request timeout",
    ),
    (404, "Not found"),
    (
        409,
        "Conflict: exists already, busy, or the same Idempotency-Key is still running",
    ),
    (
        422,
        "Invalid input, or an Idempotency-Key reused with a different request",
    ),
    (
        429,
        "A wrong token from a source (address, or X-Forwarded-For behind a trusted proxy) that failed too often; a correct token is never refused",
    ),
    (500, "crm failed"),
    (502, "The sub2api host failed, refused or timed out"),
    (
        503,
        "The database is unavailable or the server is shutting down",
    ),
];

const MUTATING: &[(u16, &str)] = &[
    (
        403,
        "The read-only token cannot change anything, or a path is outside the packs directory",
    ),
    (
        413,
        "The request body is larger than 4 MiB (one limit for every route)",
    ),
    (415, "The body must be application/json"),
];

fn problem_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            crate::error::PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

fn idempotency_param() -> Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Makes the request safe to retry: the same key with the same body replays the first \
             response; with another body it is refused (422); while the first runs, 409. Keys \
             are scoped to the token and kept at least 24 hours.",
        ))
        .schema(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .min_length(Some(1))
                .max_length(Some(crate::idempotency::MAX_KEY_LEN))
                .pattern(Some("^[!-~]+$")),
        ))
        .build()
}

/// Adds what every `/api` route shares.
pub fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    doc.security = Some(vec![SecurityRequirement::new(
        "bearer",
        Vec::<String>::new(),
    )]);
    for item in doc.paths.paths.values_mut() {
        for (method, op) in [
            (HttpMethod::Get, item.get.as_mut()),
            (HttpMethod::Post, item.post.as_mut()),
            (HttpMethod::Delete, item.delete.as_mut()),
            (HttpMethod::Put, item.put.as_mut()),
            (HttpMethod::Patch, item.patch.as_mut()),
        ] {
            let Some(op) = op else { continue };
            let mutating = method != HttpMethod::Get;
            let extra: &[(u16, &str)] = if mutating { MUTATING } else { &[] };
            for (code, text) in COMMON.iter().chain(extra) {
                op.responses
                    .responses
                    .entry(code.to_string())
                    .or_insert_with(|| problem_response(text).into());
            }
            if mutating {
                op.parameters
                    .get_or_insert_with(Vec::new)
                    .push(idempotency_param().into());
            }
        }
    }
    doc
}

/// `(METHOD, route template)` of every documented operation that changes
/// something: the ones `Idempotency-Key` applies to.
pub fn mutating_operations() -> std::collections::HashSet<(String, String)> {
    let doc = api_router().into_openapi();
    let mut out = std::collections::HashSet::new();
    for (path, item) in &doc.paths.paths {
        for (method, present) in [
            ("POST", item.post.is_some()),
            ("PUT", item.put.is_some()),
            ("PATCH", item.patch.is_some()),
            ("DELETE", item.delete.is_some()),
        ] {
            if present {
                out.insert((method.to_owned(), path.clone()));
            }
        }
    }
    out
}

/// The document as served and committed (`docs/openapi.json`).
pub fn document() -> utoipa::openapi::OpenApi {
    finish(api_router().into_openapi())
}

/// Pretty JSON of [`document`], newline-terminated.
pub fn document_json() -> String {
    let mut s = document().to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}
