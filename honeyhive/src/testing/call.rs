//! What the answers share: the request as they read it ([`Call`]), what
//! they answer ([`Reply`]), the 404, and paging.

use bytes::Bytes;
use serde_json::{Map, Value, json};

/// A request the validator accepted, as the answers read it.
pub(super) struct Call<'a> {
    /// The operationId.
    pub(super) operation: &'static str,
    /// The path parameters, percent-decoded, in order.
    pub(super) params: Vec<String>,
    /// The query parameters the spec names, typed.
    pub(super) query: Map<String, Value>,
    /// The body as JSON (`Null` without one).
    pub(super) body: Value,
    /// The body as it came over the wire.
    pub(super) raw: &'a Bytes,
}

impl Call<'_> {
    /// The `n`th path parameter (empty when there is none).
    pub(super) fn param(&self, n: usize) -> String {
        self.params.get(n).cloned().unwrap_or_default()
    }

    /// A query parameter as text (empty when absent).
    pub(super) fn query_text(&self, name: &str) -> String {
        match self.query.get(name) {
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }
}

/// What the mock answers.
#[derive(Debug, PartialEq)]
pub(super) enum Reply {
    /// A status and a JSON body.
    Json(u16, Value),
    /// 200 without a body (`updateEvent`).
    Empty,
}

impl Reply {
    pub(super) fn ok(body: Value) -> Self {
        Reply::Json(200, body)
    }

    /// The status, and the body when there is one.
    pub(super) fn parts(&self) -> (u16, Option<&Value>) {
        match self {
            Reply::Json(status, body) => (*status, Some(body)),
            Reply::Empty => (200, None),
        }
    }
}

/// The 404 for an id the mock does not have. The spec gives 404s no body;
/// the mock's names the resource and the id: `{"error": "run 42 not
/// found", "resource": "run", "id": "42"}`.
pub(super) fn not_found(resource: &str, id: &str) -> Reply {
    Reply::Json(
        404,
        json!({ "error": format!("{resource} {id} not found"), "resource": resource, "id": id }),
    )
}

/// `{field: row}` for a row found, the 404 for `resource` `id` otherwise.
pub(super) fn found(row: Option<&Value>, field: &str, resource: &str, id: &str) -> Reply {
    match row {
        Some(row) => Reply::ok(json!({ field: row })),
        None => not_found(resource, id),
    }
}

/// The page asked for and its size: the spec's `page` (from 1) and
/// `limit`, 1 and `default_limit` when absent.
pub(super) fn paging(
    page: Option<&Value>,
    limit: Option<&Value>,
    default_limit: u64,
) -> (u64, u64) {
    let number = |value: Option<&Value>, default: u64| {
        value.and_then(Value::as_u64).unwrap_or(default).max(1)
    };
    (number(page, 1), number(limit, default_limit))
}

/// Page `page` of `items`, `limit` to a page.
pub(super) fn one_page<T>(items: impl IntoIterator<Item = T>, (page, limit): (u64, u64)) -> Vec<T> {
    let skip = (page - 1).saturating_mul(limit);
    items
        .into_iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect()
}
