//! The OpenAPI validator: checks JSON, and whole requests, against the
//! spec this crate was generated from (embedded at build time), as
//! HoneyHive's server would. Feature `validate` (no HTTP server; the
//! `honeyhive` command's `validate` uses it), which `testing` builds on.
//!
//! OpenAPI 3.0 schemas are JSON Schema draft 4 with a few keywords of
//! their own; `nullable: true` is rewritten into a `null` alternative,
//! and `format: uuid` is checked.

#![cfg_attr(
    not(feature = "testing"),
    allow(
        dead_code,
        reason = "whole requests are checked by the mock (feature `testing`) only"
    )
)]

use std::sync::OnceLock;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fields::is_uuid;

/// Checks a JSON value against the spec's request body schema for
/// `logEvent` (the `Event` schema), and lists every problem with its JSON
/// pointer. For tests and tools that build event JSON themselves.
///
/// # Errors
/// Every problem found, each as `"<JSON pointer>: <what is wrong>"`.
///
/// # Panics
/// Only if the embedded spec had no `logEvent` operation, which a unit test
/// rules out for this build.
///
/// ```
/// use honeyhive::validate;
/// use serde_json::json;
///
/// assert!(validate::event(&json!({"event_name": "search", "duration": 12})).is_ok());
/// let problems = validate::event(&json!({"duration": "12ms"})).unwrap_err();
/// assert!(problems[0].starts_with("/duration:"), "{problems:?}");
/// ```
pub fn event(event: &Value) -> Result<(), Vec<String>> {
    request_body("logEvent", event)
}

/// Checks a JSON value against the request body schema of the spec's
/// operation `operation_id` (such as `createEventBatch`), and lists every
/// problem with its JSON pointer.
///
/// ```
/// use honeyhive::validate;
/// use serde_json::json;
///
/// let batch = json!({"events": [{"event_type": "tool", "inputs": {}}]});
/// assert!(validate::request_body("createEventBatch", &batch).is_ok());
/// let problems = validate::request_body("createEventBatch", &json!({"events": [{"inputs": {}, "project": "p"}]}))
///     .unwrap_err();
/// assert_eq!(problems.len(), 2, "{problems:?}"); // event_type missing, project unknown
/// ```
///
/// # Errors
/// Every problem found, each as `"<JSON pointer>: <what is wrong>"`.
///
/// # Panics
/// When the spec has no operation `operation_id` with a JSON body: the
/// caller's mistake, said with the operations there are.
pub fn request_body(operation_id: &str, body: &Value) -> Result<(), Vec<String>> {
    let spec = Spec::embedded();
    let Some(validator) = spec
        .operations
        .iter()
        .find(|op| op.id == operation_id)
        .and_then(|op| op.body.as_ref())
    else {
        let known: Vec<&str> = spec
            .operations
            .iter()
            .filter(|op| op.body.is_some())
            .map(|op| op.id.as_str())
            .collect();
        panic!(
            "the embedded spec has no operation {operation_id:?} with a JSON body; it has {}",
            known.join(", ")
        );
    };
    schema_problems(validator, body)
}

/// Checks a JSON value against the schema of the answer the spec's
/// operation `operation_id` documents for `status` (such as
/// `getEvent`, 200), and lists every problem with its JSON pointer: for
/// tests of servers, mocks and recorded answers.
///
/// ```
/// use honeyhive::{StatusCode, validate};
/// use serde_json::json;
///
/// let ok = StatusCode::OK;
/// assert!(validate::response_body("getEvent", ok, &json!({"event": {"event_id": "e-1"}})).is_ok());
/// let problems = validate::response_body("getEvent", ok, &json!({"event": {}})).unwrap_err();
/// assert!(problems[0].contains("event_id"), "{problems:?}");
/// ```
///
/// # Errors
/// Every problem found, each as `"<JSON pointer>: <what is wrong>"`; a
/// single problem when the operation documents no JSON answer for `status`.
///
/// # Panics
/// When the spec has no operation `operation_id`: the caller's mistake.
pub fn response_body(
    operation_id: &str,
    status: StatusCode,
    body: &Value,
) -> Result<(), Vec<String>> {
    let spec = Spec::embedded();
    let operation = spec
        .operations
        .iter()
        .find(|op| op.id == operation_id)
        .unwrap_or_else(|| panic!("the embedded spec has no operation {operation_id:?}"));
    spec.check_answer(operation, status.as_u16(), Some(body))
        .map_err(|problem| vec![problem])
}

/// What sending `event` (an event's JSON, children nested) would cut so
/// that its JSON fits `max_body_bytes`, as the client cuts an oversize
/// event ([`ClientBuilder::cut_oversize`](crate::ClientBuilder::cut_oversize)):
/// the JSON pointers of the strings it would shorten, with the event's
/// place in the tree when it is not the root. Empty when it fits.
///
/// # Errors
/// Why it cannot be cut to fit (its bulk is not in strings of `inputs`,
/// `outputs`, `metadata` or `config`), or that it is not an event.
///
/// ```
/// use honeyhive::validate;
/// use serde_json::json;
///
/// let event = json!({"event_type": "model", "inputs": {"prompt": "x".repeat(10_000)}});
/// assert_eq!(validate::cuts(&event, 5_000)?, ["/inputs/prompt"]);
/// assert!(validate::cuts(&event, 50_000)?.is_empty());
/// # Ok::<(), String>(())
/// ```
pub fn cuts(event: &Value, max_body_bytes: usize) -> Result<Vec<String>, String> {
    let wire: crate::api::types::Event =
        serde_json::from_value(event.clone()).map_err(|e| format!("not an event: {e}"))?;
    let len = serde_json::to_vec(&wire)
        .map_err(|e| format!("could not be serialized: {e}"))?
        .len();
    if len <= max_body_bytes {
        return Ok(Vec::new());
    }
    crate::cut::plan(&wire, len - max_body_bytes)
        .map(|plan| plan.paths())
        .map_err(|why| format!("{len} bytes as JSON, over {max_body_bytes}: {why}"))
}

pub(crate) fn schema_problems(
    validator: &jsonschema::Validator,
    value: &Value,
) -> Result<(), Vec<String>> {
    let problems: Vec<String> = validator
        .iter_errors(value)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!("{}: {e}", if at.is_empty() { "/" } else { &at })
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The operations of the embedded spec, ready to match requests against.
pub(crate) struct Spec {
    operations: Vec<Operation>,
    /// The document with its schemas rewritten into JSON Schema: the root
    /// every schema compiled later (answers, query parameters) resolves
    /// its `$ref`s in.
    schema_root: Value,
}

/// A schema compiled the first time it is needed: the spec's answers and
/// query parameters are many and most tests use few of them.
struct Lazy {
    schema: Value,
    what: String,
    compiled: OnceLock<jsonschema::Validator>,
}

impl Lazy {
    fn new(schema: Value, what: String) -> Self {
        Lazy {
            schema,
            what,
            compiled: OnceLock::new(),
        }
    }

    fn get(&self, root: &Value) -> &jsonschema::Validator {
        self.compiled
            .get_or_init(|| compile(root, &self.schema, &self.what))
    }
}

/// A query parameter of an operation.
struct QueryParam {
    name: String,
    required: bool,
    schema: Lazy,
}

struct Operation {
    /// The operationId: what the mock answers by.
    id: String,
    method: String,
    /// `/session/{session_id}/event` split at `/`.
    segments: Vec<String>,
    /// Each path parameter's schema, in the order they appear.
    params: Vec<(String, jsonschema::Validator)>,
    bearer: bool,
    body: Option<jsonschema::Validator>,
    query: Vec<QueryParam>,
    /// Each documented status with the schema of its JSON answer (`None`
    /// for an answer without a body).
    answers: Vec<(u16, Option<Lazy>)>,
}

/// A request as the validator sees it.
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    /// The query string, without the `?` (empty when there is none).
    pub(crate) query: &'a str,
    /// Each `Authorization` header; `None` for one that is not UTF-8.
    pub(crate) authorization: Vec<Option<&'a str>>,
    pub(crate) content_type: Option<&'a str>,
    pub(crate) body: &'a [u8],
}

/// A request that holds to the spec.
pub(crate) struct Accepted {
    pub(crate) operation: &'static str,
    /// The path parameters, percent-decoded, in order.
    pub(crate) params: Vec<String>,
    /// The body as JSON (`Null` for an operation without one).
    pub(crate) body: Value,
    /// The query parameters the spec names, as the types their schemas
    /// give (an integer as a JSON number, an array from repeated or
    /// comma-separated values, an object from JSON text).
    pub(crate) query: serde_json::Map<String, Value>,
}

/// Why a request does not hold to the spec: the HTTP status a server
/// would answer, and what is wrong.
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl Spec {
    /// The spec compiled into honeyhive-gen from the same file the client was
    /// generated from, parsed once per process.
    pub(crate) fn embedded() -> &'static Spec {
        static SPEC: OnceLock<Spec> = OnceLock::new();
        SPEC.get_or_init(|| {
            // honeyhive-gen's build wrote this JSON from the YAML it parsed,
            // so it is JSON and an OpenAPI document.
            let document: Value = serde_json::from_str(honeyhive_gen::OPENAPI_JSON)
                .unwrap_or_else(|e| panic!("the embedded OpenAPI spec is not JSON: {e}"));
            Self::from_document(&document)
        })
    }

    fn from_document(document: &Value) -> Self {
        let schema_root = document_to_json_schema(document.clone());
        let global_bearer = requires_bearer(document, document.get("security"));
        let mut operations = Vec::new();
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for (method, operation) in item.as_object().into_iter().flatten() {
                let what = |part: &str| format!("{part} schema for {method} {path}");
                let compile =
                    |schema: &Value, part: &str| compile(&schema_root, schema, &what(part));
                let body = operation
                    .pointer("/requestBody/content/application~1json/schema")
                    .map(|schema| compile(schema, "body"));
                let parameters_in = |place: &'static str| {
                    let all = operation["parameters"].as_array().into_iter().flatten();
                    all.filter(move |p| p["in"] == place)
                };
                let params = parameters_in("path")
                    .map(|p| {
                        let name = p["name"].as_str().unwrap_or_default().to_owned();
                        let schema = compile(&p["schema"], &format!("parameter {name}"));
                        (name, schema)
                    })
                    .collect();
                let bearer = match operation.get("security") {
                    Some(security) => requires_bearer(document, Some(security)),
                    None => global_bearer,
                };
                let query = parameters_in("query")
                    .map(|p| {
                        let name = p["name"].as_str().unwrap_or_default().to_owned();
                        QueryParam {
                            required: p["required"] == Value::Bool(true),
                            schema: Lazy::new(
                                p["schema"].clone(),
                                what(&format!("query parameter {name}")),
                            ),
                            name,
                        }
                    })
                    .collect();
                let answers = operation["responses"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(status, answer)| {
                        let status: u16 = status.parse().ok()?;
                        let schema =
                            answer
                                .pointer("/content/application~1json/schema")
                                .map(|schema| {
                                    Lazy::new(schema.clone(), what(&format!("{status} answer")))
                                });
                        Some((status, schema))
                    })
                    .collect();
                operations.push(Operation {
                    id: operation["operationId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    method: method.to_ascii_uppercase(),
                    segments: path.split('/').map(str::to_owned).collect(),
                    params,
                    bearer,
                    body,
                    query,
                    answers,
                });
            }
        }
        Spec {
            operations,
            schema_root,
        }
    }

    /// Whether `body` (`None`: no body) is an answer the spec documents for
    /// `operation` with `status`.
    fn check_answer(
        &self,
        operation: &Operation,
        status: u16,
        body: Option<&Value>,
    ) -> Result<(), String> {
        let id = &operation.id;
        let Some((_, schema)) = operation.answers.iter().find(|(s, _)| *s == status) else {
            return Err(format!("{id} documents no {status} answer"));
        };
        match (schema, body) {
            (None, None) => Ok(()),
            (None, Some(_)) => Err(format!("{id}'s {status} answer has no body in the spec")),
            (Some(_), None) => Err(format!(
                "{id}'s {status} answer has a JSON body in the spec"
            )),
            (Some(schema), Some(body)) => schema_problems(schema.get(&self.schema_root), body)
                .map_err(|problems| {
                    format!(
                        "{id}'s {status} answer does not match its schema: {}",
                        problems.join("; ")
                    )
                }),
        }
    }

    /// [`check_answer`](Self::check_answer) by operation id.
    pub(crate) fn check_answer_of(
        &self,
        operation_id: &str,
        status: u16,
        body: Option<&Value>,
    ) -> Result<(), String> {
        match self.operations.iter().find(|op| op.id == operation_id) {
            Some(operation) => self.check_answer(operation, status, body),
            None => Err(format!("the spec has no operation {operation_id}")),
        }
    }

    /// The operation ids, in the spec's order.
    #[cfg(test)]
    pub(crate) fn operation_ids(&self) -> impl Iterator<Item = &str> {
        self.operations.iter().map(|op| op.id.as_str())
    }

    /// The query parameters of `request` that `operation` names, as the
    /// types their schemas give, each checked against its schema.
    fn query(
        &self,
        operation: &Operation,
        query: &str,
    ) -> Result<serde_json::Map<String, Value>, String> {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut found = serde_json::Map::new();
        for param in &operation.query {
            let values: Vec<&str> = pairs
                .iter()
                .filter(|(k, _)| *k == param.name || *k == format!("{}[]", param.name))
                .map(|(_, v)| v.as_str())
                .collect();
            if values.is_empty() {
                if param.required {
                    return Err(format!("query parameter {} is required", param.name));
                }
                continue;
            }
            let value = typed(&param.schema.schema, &values);
            if let Err(problems) = schema_problems(param.schema.get(&self.schema_root), &value) {
                return Err(format!(
                    "query parameter {} = {value} does not match its schema: {}",
                    param.name,
                    problems.join("; ")
                ));
            }
            found.insert(param.name.clone(), value);
        }
        Ok(found)
    }

    /// The operation `request` is for, when it holds to the spec: path,
    /// method, path parameters, bearer token (`api_key`), content type and
    /// body.
    pub(crate) fn check(
        &'static self,
        request: &Request<'_>,
        api_key: &str,
    ) -> Result<Accepted, Refusal> {
        let Request { method, path, .. } = *request;
        let refuse = |status: StatusCode, message: String| Refusal { status, message };

        let on_path: Vec<(&Operation, Vec<String>)> = self
            .operations
            .iter()
            .filter_map(|op| op.match_path(path).map(|params| (op, params)))
            .collect();
        if on_path.is_empty() {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                format!("no operation in the spec has the path {path}"),
            ));
        }
        let Some((operation, params)) = on_path.into_iter().find(|(op, _)| op.method == method)
        else {
            return Err(refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("the spec has no {method} operation on {path}"),
            ));
        };
        for ((name, schema), value) in operation.params.iter().zip(&params) {
            if value.is_empty() {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    format!("path parameter {name} is empty"),
                ));
            }
            if let Err(problems) = schema_problems(schema, &Value::String(value.clone())) {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "path parameter {name} = {value:?} does not match its schema: {}",
                        problems.join("; ")
                    ),
                ));
            }
        }

        if operation.bearer {
            let token =
                match request.authorization.as_slice() {
                    [] => return Err(refuse(
                        StatusCode::UNAUTHORIZED,
                        "the Authorization header is missing; send `Authorization: Bearer <key>`"
                            .into(),
                    )),
                    [one] => one.and_then(|v| v.strip_prefix("Bearer ")),
                    _ => {
                        return Err(refuse(
                            StatusCode::UNAUTHORIZED,
                            "more than one Authorization header".into(),
                        ));
                    }
                };
            match token {
                None => {
                    return Err(refuse(
                        StatusCode::UNAUTHORIZED,
                        "the Authorization header is not of the form `Bearer <key>`".into(),
                    ));
                }
                Some(token) if token != api_key => {
                    return Err(refuse(
                        StatusCode::UNAUTHORIZED,
                        "the bearer token is not the mock's API key (MockHoneyHive::API_KEY)"
                            .into(),
                    ));
                }
                Some(_) => {}
            }
        }

        let body = request.body;
        let value = match &operation.body {
            None => Value::Null,
            Some(validator) => {
                let content_type = request.content_type.unwrap_or("");
                let essence = content_type.split(';').next().unwrap_or("").trim();
                if !essence.eq_ignore_ascii_case("application/json") {
                    return Err(refuse(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        format!(
                            "Content-Type is {content_type:?}; the spec takes application/json"
                        ),
                    ));
                }
                let value: Value = serde_json::from_slice(body).map_err(|e| {
                    refuse(
                        StatusCode::BAD_REQUEST,
                        format!("the body is not JSON: {e}"),
                    )
                })?;
                if let Err(problems) = schema_problems(validator, &value) {
                    return Err(refuse(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "the body does not match the schema: {}",
                            problems.join("; ")
                        ),
                    ));
                }
                value
            }
        };
        let query = self
            .query(operation, request.query)
            .map_err(|message| refuse(StatusCode::BAD_REQUEST, message))?;
        Ok(Accepted {
            operation: &operation.id,
            params,
            body: value,
            query,
        })
    }
}

impl Operation {
    /// The percent-decoded path parameters, when `path` fits this operation.
    fn match_path(&self, path: &str) -> Option<Vec<String>> {
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (template, part) in self.segments.iter().zip(parts) {
            if template.starts_with('{') && template.ends_with('}') {
                params.push(
                    percent_encoding::percent_decode_str(part)
                        .decode_utf8_lossy()
                        .into_owned(),
                );
            } else if template != part {
                return None;
            }
        }
        Some(params)
    }
}

/// Compiles `schema` (an OpenAPI schema of the spec) with the document's
/// schemas for its `$ref`s.
fn compile(schema_root: &Value, schema: &Value, what: &str) -> jsonschema::Validator {
    let mut root = schema_root.clone();
    root["allOf"] = json!([to_json_schema(schema.clone())]);
    jsonschema::draft4::options()
        .should_validate_formats(true)
        .with_format("uuid", is_uuid)
        .build(&root)
        .unwrap_or_else(|e| panic!("the spec's {what} does not compile: {e}"))
}

/// A query parameter's values as the JSON its schema types: a number, a
/// boolean, an array (of repeated or comma-separated values), an object
/// from JSON text; a string otherwise, or when the text is not of the type
/// (the schema check then says so).
fn typed(schema: &Value, values: &[&str]) -> Value {
    let one = |text: &str, schema: &Value| -> Value {
        let parsed = match schema["type"].as_str() {
            Some("integer" | "number" | "boolean") => serde_json::from_str(text).ok(),
            Some("object") => serde_json::from_str(text).ok(),
            None if text.starts_with(['{', '[']) => serde_json::from_str(text).ok(),
            _ => None,
        };
        parsed.unwrap_or_else(|| Value::String(text.to_owned()))
    };
    if schema["type"] == "array" {
        let items = &schema["items"];
        let list = values
            .iter()
            .flat_map(|v| v.split(','))
            .filter(|v| !v.is_empty())
            .map(|v| one(v, items))
            .collect();
        return Value::Array(list);
    }
    one(values[values.len() - 1], schema)
}

fn requires_bearer(document: &Value, security: Option<&Value>) -> bool {
    let Some(requirements) = security.and_then(Value::as_array) else {
        return false;
    };
    requirements.iter().any(|requirement| {
        requirement
            .as_object()
            .into_iter()
            .flatten()
            .any(|(name, _)| {
                let scheme = document.pointer(&format!("/components/securitySchemes/{name}"));
                scheme
                    .and_then(|s| s["scheme"].as_str())
                    .is_some_and(|s| s.eq_ignore_ascii_case("bearer"))
            })
    })
}

/// Rewrites an OpenAPI 3.0 document's schemas into JSON Schema, so that
/// `$ref`s into `#/components/schemas` resolve to rewritten schemas.
fn document_to_json_schema(mut document: Value) -> Value {
    if let Some(Value::Object(schemas)) = document.pointer_mut("/components/schemas") {
        for schema in schemas.values_mut() {
            *schema = to_json_schema(schema.take());
        }
    }
    document
}

/// Rewrites one OpenAPI 3.0 schema into JSON Schema: `nullable: true`
/// becomes a `null` alternative, here and in every schema nested inside.
/// Only the keyword is rewritten: a property that happens to be *named*
/// `nullable` is a property like any other.
fn to_json_schema(mut schema: Value) -> Value {
    let Value::Object(map) = &mut schema else {
        return schema;
    };
    for (keyword, value) in map.iter_mut() {
        match (keyword.as_str(), value) {
            // Maps from names to schemas.
            ("properties" | "patternProperties" | "definitions", Value::Object(named)) => {
                for child in named.values_mut() {
                    *child = to_json_schema(child.take());
                }
            }
            // Lists of schemas.
            ("allOf" | "anyOf" | "oneOf" | "items", Value::Array(list)) => {
                for child in list.iter_mut() {
                    *child = to_json_schema(child.take());
                }
            }
            // One schema.
            ("items" | "additionalProperties" | "not", child @ Value::Object(_)) => {
                *child = to_json_schema(child.take());
            }
            _ => {}
        }
    }
    if map.remove("nullable") != Some(Value::Bool(true)) {
        return schema;
    }
    if let Some(Value::Array(values)) = map.get_mut("enum") {
        values.push(Value::Null);
    }
    match map.get("type").cloned() {
        Some(Value::String(t)) => {
            map.insert("type".into(), json!([t, "null"]));
            schema
        }
        // No single type (a $ref, allOf, ...): null, or the schema.
        _ => json!({"anyOf": [schema, {"type": "null"}]}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_becomes_a_null_type() {
        let schema =
            to_json_schema(json!({"properties": {"e": {"type": "string", "nullable": true}}}));
        assert_eq!(
            schema,
            json!({"properties": {"e": {"type": ["string", "null"]}}})
        );
    }

    #[test]
    fn only_the_keyword_nullable_is_rewritten_not_a_property_so_named() {
        let schema = to_json_schema(json!({
            "type": "object",
            "properties": {
                "nullable": {"type": "boolean"},
                "kind": {"type": "string", "enum": ["a"], "nullable": true},
                "list": {"type": "array", "items": {"type": "integer", "nullable": true}},
                "ref": {"allOf": [{"type": "object"}], "nullable": true}
            }
        }));
        assert_eq!(
            schema,
            json!({
                "type": "object",
                "properties": {
                    "nullable": {"type": "boolean"},
                    "kind": {"type": ["string", "null"], "enum": ["a", null]},
                    "list": {"type": "array", "items": {"type": ["integer", "null"]}},
                    "ref": {"anyOf": [{"allOf": [{"type": "object"}]}, {"type": "null"}]}
                }
            })
        );
        // The mock holds such a property to its schema.
        let validator = jsonschema::draft4::new(&schema).unwrap();
        assert!(validator.is_valid(&json!({"nullable": true, "kind": null, "list": [1, null]})));
        assert!(!validator.is_valid(&json!({"nullable": "yes"})));
        assert!(!validator.is_valid(&json!({"kind": "b"})));
    }

    #[test]
    fn embedded_spec_has_the_log_event_operation() {
        let spec = Spec::embedded();
        let op = spec
            .operations
            .iter()
            .find(|op| op.id == "logEvent")
            .unwrap();
        assert_eq!(
            op.match_path("/session/a%20b/event"),
            Some(vec!["a b".to_owned()])
        );
        assert_eq!(op.match_path("/session/a/b/event"), None);
        assert!(op.bearer);
        assert!(op.body.is_some());
    }

    #[test]
    fn query_values_take_the_type_their_schema_gives() {
        let strings = json!({"type": "array", "items": {"type": "string"}});
        assert_eq!(typed(&strings, &["a", "b,c"]), json!(["a", "b", "c"]));
        assert_eq!(typed(&json!({"type": "integer"}), &["20"]), json!(20));
        assert_eq!(typed(&json!({"type": "integer"}), &["ten"]), json!("ten"));
        assert_eq!(typed(&json!({"type": "boolean"}), &["true"]), json!(true));
        // No single type (oneOf string or object): JSON text is read as JSON.
        let either = json!({"oneOf": [{"type": "string"}, {"type": "object"}]});
        assert_eq!(typed(&either, &[r#"{"$gte": 1}"#]), json!({"$gte": 1}));
        assert_eq!(typed(&either, &["last week"]), json!("last week"));
        // The last of repeated values.
        assert_eq!(typed(&json!({"type": "string"}), &["a", "b"]), json!("b"));
    }

    #[test]
    fn an_answer_is_checked_against_its_status_schema_and_body() {
        let spec = Spec::embedded();
        let ok = json!({"event_id": "e", "success": true});
        assert!(spec.check_answer_of("logEvent", 200, Some(&ok)).is_ok());
        let missing = spec.check_answer_of("logEvent", 200, Some(&json!({"success": true})));
        assert!(missing.unwrap_err().contains("event_id"));
        // A status the operation does not document, a body where the spec
        // has none, none where it has one, an operation it does not have.
        let problem = |op: &str, status: u16, body: Option<&Value>| {
            spec.check_answer_of(op, status, body).unwrap_err()
        };
        assert!(problem("logEvent", 201, Some(&ok)).contains("no 201 answer"));
        assert!(problem("updateEvent", 200, Some(&ok)).contains("has no body"));
        assert!(problem("getEvent", 200, None).contains("has a JSON body"));
        assert!(problem("noSuchThing", 200, None).contains("no operation noSuchThing"));
        assert!(spec.check_answer_of("updateEvent", 200, None).is_ok());
    }
}
