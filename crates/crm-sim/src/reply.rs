//! The host's response shapes: the handler envelope (integer `code`), the
//! middleware errors (string `code`), OpenAI-style gateway errors and gin's
//! plain-text 404.

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Handlers answer `Ok` or an already-shaped error response.
pub(crate) type HResult = Result<Response, Response>;

pub(crate) fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// `{"code":0,"message":"success","data":…}` with 200.
pub(crate) fn ok(data: Value) -> Response {
    json_response(
        StatusCode::OK,
        json!({"code": 0, "message": "success", "data": data}),
    )
}

/// The same envelope with 201 (payment plans and some newer creates).
pub(crate) fn created(data: Value) -> Response {
    json_response(
        StatusCode::CREATED,
        json!({"code": 0, "message": "success", "data": data}),
    )
}

/// An `ApplicationError`: integer code, message and machine reason.
pub(crate) fn app_err(status: StatusCode, reason: &str, message: &str) -> Response {
    json_response(
        status,
        json!({"code": status.as_u16(), "message": message, "reason": reason}),
    )
}

/// A plain `BadRequest`: no reason.
pub(crate) fn bad_request(message: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({"code": 400, "message": message}),
    )
}

pub(crate) fn not_found(reason: &str, message: &str) -> Response {
    app_err(StatusCode::NOT_FOUND, reason, message)
}

/// A middleware error: the `code` is a string.
pub(crate) fn mw_err(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, json!({"code": code, "message": message}))
}

/// An OpenAI-route gateway error.
pub(crate) fn oai_err(status: StatusCode, kind: &str, message: &str) -> Response {
    json_response(status, json!({"error": {"type": kind, "message": message}}))
}

/// gin's answer for an unknown route (and for a known path with another method).
pub(crate) fn gin_404() -> Response {
    let mut r = (StatusCode::NOT_FOUND, "404 page not found").into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// Parses a JSON body the way gin's binding reports failures.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    if body.is_empty() {
        return Err(bad_request("Invalid request: EOF"));
    }
    serde_json::from_slice(body).map_err(|e| bad_request(&format!("Invalid request: {e}")))
}

/// Parses a body that may be empty.
pub(crate) fn parse_or_default<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse(body)
}

/// Parses a path id like the handlers' `strconv.ParseInt`.
pub(crate) fn path_id(raw: &str, what: &str) -> Result<i64, Response> {
    raw.parse::<i64>()
        .map_err(|_| bad_request(&format!("Invalid {what} ID")))
}

/// A required string field, reported like gin's `required` tag.
pub(crate) fn required<'a>(
    v: &'a Option<String>,
    strukt: &str,
    field: &str,
) -> Result<&'a str, Response> {
    match v.as_deref() {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(bad_request(&format!(
            "Invalid request: Key: '{strukt}.{field}' Error:Field validation for '{field}' failed on the 'required' tag"
        ))),
    }
}

/// `page`, `page_size` (alias `limit`) as `response.ParsePagination` reads
/// them (d3e73f1 and 1f93938 `backend/internal/pkg/response/response.go`): a
/// value outside `1..=max` is ignored, so the default 20 applies and is echoed.
pub(crate) struct Page {
    pub page: u64,
    pub size: u64,
}

impl Page {
    pub fn from_query(q: &HashMap<String, String>, max: u64) -> Page {
        let num = |k: &str| q.get(k).and_then(|v| v.parse::<u64>().ok());
        let page = num("page").filter(|p| *p >= 1).unwrap_or(1);
        // `page_size` wins over `limit` whenever it is present, valid or not.
        let asked = if q.contains_key("page_size") {
            num("page_size")
        } else {
            num("limit")
        };
        let size = asked.filter(|s| (1..=max).contains(s)).unwrap_or(20);
        Page { page, size }
    }

    /// A handler's own cap applied after `ParsePagination`, as the monitor
    /// handler's `List` does (`if pageSize > monitorMaxPageSize`): a size
    /// the host accepted is lowered to `cap`, never reset to the default.
    pub fn capped(self, cap: u64) -> Page {
        Page {
            page: self.page,
            size: self.size.min(cap),
        }
    }

    /// The `{items,total,page,page_size,pages}` object for one page of `items`.
    pub fn render(&self, items: Vec<Value>) -> Value {
        self.render_with(items, |v| v)
    }

    /// [`Page::render`], turning only the page's items into JSON: a listing
    /// of thousands of objects renders the thousand it returns.
    pub fn render_with<T>(&self, items: Vec<T>, to_json: impl FnMut(T) -> Value) -> Value {
        let total = items.len() as u64;
        let skip = usize::try_from((self.page - 1).saturating_mul(self.size)).unwrap_or(usize::MAX);
        let take = usize::try_from(self.size).unwrap_or(usize::MAX);
        let page_items: Vec<Value> = items
            .into_iter()
            .skip(skip)
            .take(take)
            .map(to_json)
            .collect();
        json!({
            "items": page_items, "total": total, "page": self.page,
            // `Paginated` never answers fewer than one page.
            "page_size": self.size, "pages": total.div_ceil(self.size).max(1),
        })
    }
}

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive).
pub(crate) fn bearer(h: &HeaderMap) -> Option<&str> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_over_the_limit_falls_back_to_the_default() {
        // response.go ParsePagination: `val > 0 && val <= 100` else keep 20.
        let q: HashMap<String, String> = [("page_size".to_owned(), "500".to_owned())]
            .into_iter()
            .collect();
        let p = Page::from_query(&q, 100);
        assert_eq!(p.size, 20);
        let q: HashMap<String, String> = [("page_size".to_owned(), "100".to_owned())]
            .into_iter()
            .collect();
        let p = Page::from_query(&q, 100);
        let v = p.render((0..250).map(|i| json!(i)).collect());
        assert_eq!(v["page_size"], 100);
        assert_eq!(v["pages"], 3);
        assert_eq!(v["items"].as_array().map(Vec::len), Some(100));
        assert_eq!(p.render(vec![])["pages"], 1);
    }

    #[test]
    fn limit_is_an_alias_and_defaults_apply() {
        let q: HashMap<String, String> =
            [("limit".to_owned(), "7".to_owned())].into_iter().collect();
        assert_eq!(Page::from_query(&q, 1000).size, 7);
        assert_eq!(Page::from_query(&HashMap::new(), 1000).size, 20);
    }
}
