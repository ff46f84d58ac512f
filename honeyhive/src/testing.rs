//! A mock of the HoneyHive API for tests, built on
//! [httpmock](https://docs.rs/httpmock), that holds every request to the
//! OpenAPI spec this crate was generated from.
//!
//! [`MockHoneyHive`] listens on loopback (127.0.0.1). For each request it
//! finds the spec operation by method and path, checks the bearer token, the
//! `Content-Type` and the JSON body against the operation's schema, and
//! either records the event and answers the documented 200, or answers a 4xx
//! whose JSON body names the violation. Tests read back what it recorded.
//!
//! ```
//! use honeyhive::{Event, testing::MockHoneyHive};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), honeyhive::Error> {
//! let mock = MockHoneyHive::start_async().await;
//! let client = mock.client()?;
//! let logged = client
//!     .log_event("session-1", Event::tool("search").inputs(json!({"q": "rust"})))
//!     .await?;
//!
//! let events = mock.events();
//! assert_eq!(events.len(), 1);
//! assert_eq!(events[0].session_id, "session-1");
//! assert_eq!(events[0].event["event_id"], logged.event_id.as_str());
//! assert!(mock.violations().is_empty());
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use httpmock::{HttpMockRequest, HttpMockResponse, MockServer};
use serde_json::{Value, json};

use crate::{Client, ClientBuilder, Error};

/// An event the mock accepted.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ReceivedEvent {
    /// The session id from the path, percent-decoded.
    pub session_id: String,
    /// The request body as JSON.
    pub event: Value,
    /// The request body as it came over the wire.
    pub body: Vec<u8>,
}

/// A request the mock refused, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Violation {
    /// The status the mock answered with.
    pub status: u16,
    /// The method and path of the request.
    pub request: String,
    /// What the request got wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}: {}", self.request, self.status, self.message)
    }
}

#[derive(Default)]
struct Recorded {
    events: Vec<ReceivedEvent>,
    violations: Vec<Violation>,
    stats: MockStats,
}

/// What a [`MockHoneyHive`] has seen since it started: from
/// [`MockHoneyHive::stats`], or as JSON from `GET /_mock/stats`
/// ([`MockHoneyHive::STATS_PATH`]) for tests in any language.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MockStats {
    /// API requests received (the stats route not included).
    pub requests: u64,
    /// Events accepted, including those already taken by
    /// [`MockHoneyHive::take_events`].
    pub events: u64,
    /// Requests refused for breaking the spec.
    pub violations: u64,
}

impl MockStats {
    /// The stats as the stats route answers them:
    /// `{"requests": 3, "events": 2, "violations": 1}`.
    pub fn to_json(&self) -> Value {
        json!({
            "requests": self.requests,
            "events": self.events,
            "violations": self.violations,
        })
    }
}

/// A loopback mock of the HoneyHive API that validates every request against
/// the embedded OpenAPI spec. Stops when dropped.
///
/// It accepts the bearer token [`MockHoneyHive::API_KEY`] only, so a client
/// from [`MockHoneyHive::client`] passes and a client with another key gets
/// the 401 the real API would give.
pub struct MockHoneyHive {
    server: MockServer,
    recorded: Arc<Mutex<Recorded>>,
}

impl fmt::Debug for MockHoneyHive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockHoneyHive")
            .field("base_url", &self.server.base_url())
            .finish_non_exhaustive()
    }
}

impl MockHoneyHive {
    /// The one API key the mock accepts.
    pub const API_KEY: &'static str = "hh-mock-key";
    /// `GET` this path for [`MockStats`] as JSON. No key needed; not part
    /// of the API, so never counted as a request or a violation.
    pub const STATS_PATH: &'static str = "/_mock/stats";

    /// Starts the mock on loopback. In async code use
    /// [`start_async`](Self::start_async).
    pub fn start() -> Self {
        Self::serve(MockServer::start())
    }

    /// Starts the mock on loopback, from async code.
    pub async fn start_async() -> Self {
        Self::serve(MockServer::start_async().await)
    }

    fn serve(server: MockServer) -> Self {
        let spec = Spec::embedded();
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let sink = Arc::clone(&recorded);
        server.mock(move |_when, then| {
            then.respond_with(move |request| answer(spec, &sink, request));
        });
        MockHoneyHive { server, recorded }
    }

    /// The mock's base URL, such as `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// A client builder aimed at the mock with the key it accepts.
    pub fn client_builder(&self) -> ClientBuilder {
        Client::builder()
            .base_url(self.base_url())
            .api_key(Self::API_KEY)
    }

    /// A client aimed at the mock with the key it accepts.
    pub fn client(&self) -> Result<Client, Error> {
        self.client_builder().build()
    }

    /// The events accepted so far, in the order they arrived.
    pub fn events(&self) -> Vec<ReceivedEvent> {
        lock(&self.recorded).events.clone()
    }

    /// The requests refused so far, in the order they arrived.
    pub fn violations(&self) -> Vec<Violation> {
        lock(&self.recorded).violations.clone()
    }

    /// The events accepted since the last call, in the order they arrived,
    /// moved out of the mock: a mock that runs for long holds only what
    /// has not been taken yet. [`events`](Self::events) then starts again
    /// from the next one; [`stats`](Self::stats) still counts them all.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), honeyhive::Error> {
    /// let mock = honeyhive::testing::MockHoneyHive::start_async().await;
    /// mock.client()?.log_event("s", honeyhive::Event::tool("t")).await?;
    /// assert_eq!(mock.take_events().len(), 1);
    /// assert!(mock.take_events().is_empty());
    /// assert_eq!(mock.stats().events, 1);
    /// # Ok(()) }
    /// ```
    pub fn take_events(&self) -> Vec<ReceivedEvent> {
        std::mem::take(&mut lock(&self.recorded).events)
    }

    /// How many requests, events and violations the mock has seen.
    pub fn stats(&self) -> MockStats {
        lock(&self.recorded).stats
    }
}

/// Checks a JSON value against the spec's request body schema for
/// `logEvent` (the `Event` schema), and lists every problem with its JSON
/// pointer. For tests that build event JSON themselves.
///
/// ```
/// use honeyhive::testing::validate_event;
/// use serde_json::json;
///
/// assert!(validate_event(&json!({"event_name": "search", "duration": 12})).is_ok());
/// let problems = validate_event(&json!({"duration": "12ms"})).unwrap_err();
/// assert!(problems[0].starts_with("/duration:"), "{problems:?}");
/// ```
pub fn validate_event(event: &Value) -> Result<(), Vec<String>> {
    let validator = Spec::embedded()
        .operations
        .iter()
        .find(|op| op.method == "POST" && op.body.is_some())
        .and_then(|op| op.body.as_ref())
        .unwrap_or_else(|| panic!("the embedded spec has no POST operation with a JSON body"));
    schema_problems(validator, event)
}

fn schema_problems(validator: &jsonschema::Validator, value: &Value) -> Result<(), Vec<String>> {
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

fn lock(recorded: &Mutex<Recorded>) -> MutexGuard<'_, Recorded> {
    // A panic while recording leaves the lists whole (each push is one step),
    // so a poisoned lock is still safe to read.
    recorded.lock().unwrap_or_else(PoisonError::into_inner)
}

fn answer(spec: &Spec, recorded: &Mutex<Recorded>, request: &HttpMockRequest) -> HttpMockResponse {
    if request.method() == "GET" && request.uri().path() == MockHoneyHive::STATS_PATH {
        return respond(200, lock(recorded).stats.to_json());
    }
    match spec.check(request, MockHoneyHive::API_KEY) {
        Ok(accepted) => {
            let event_id = accepted.event["event_id"]
                .as_str()
                .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
            let mut recorded = lock(recorded);
            recorded.stats.requests += 1;
            recorded.stats.events += 1;
            recorded.events.push(accepted);
            respond(200, json!({ "event_id": event_id, "success": true }))
        }
        Err(violation) => {
            let response = respond(
                violation.status,
                json!({ "error": "request does not match the OpenAPI spec", "violation": violation.message }),
            );
            let mut recorded = lock(recorded);
            recorded.stats.requests += 1;
            recorded.stats.violations += 1;
            recorded.violations.push(violation);
            response
        }
    }
}

fn respond(status: u16, body: Value) -> HttpMockResponse {
    HttpMockResponse::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
        .build()
}

/// The operations of the embedded spec, ready to match requests against.
struct Spec {
    operations: Vec<Operation>,
}

struct Operation {
    method: String,
    /// `/session/{session_id}/event` split at `/`.
    segments: Vec<String>,
    bearer: bool,
    body: Option<jsonschema::Validator>,
}

impl Spec {
    /// The spec compiled into honeyhive-gen from the same file the client was
    /// generated from, parsed once per process.
    fn embedded() -> &'static Spec {
        static SPEC: OnceLock<Spec> = OnceLock::new();
        SPEC.get_or_init(|| {
            // honeyhive-gen's build wrote this JSON from the YAML it parsed,
            // so it is JSON and an OpenAPI document.
            let document: Value = serde_json::from_str(crate::api::OPENAPI_JSON)
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
                let body = operation
                    .pointer("/requestBody/content/application~1json/schema")
                    .map(|schema| {
                        let mut root = schema_root.clone();
                        root["allOf"] = json!([to_json_schema(schema.clone())]);
                        jsonschema::draft4::new(&root).unwrap_or_else(|e| {
                            panic!(
                                "the spec's body schema for {method} {path} does not compile: {e}"
                            )
                        })
                    });
                let bearer = match operation.get("security") {
                    Some(security) => requires_bearer(document, Some(security)),
                    None => global_bearer,
                };
                operations.push(Operation {
                    method: method.to_ascii_uppercase(),
                    segments: path.split('/').map(str::to_owned).collect(),
                    bearer,
                    body,
                });
            }
        }
        Spec { operations }
    }

    fn check(&self, request: &HttpMockRequest, api_key: &str) -> Result<ReceivedEvent, Violation> {
        let method = request.method().to_string();
        let path = request.uri().path().to_owned();
        let refuse = |status: u16, message: String| Violation {
            status,
            request: format!("{method} {path}"),
            message,
        };

        let on_path: Vec<(&Operation, Vec<String>)> = self
            .operations
            .iter()
            .filter_map(|op| op.match_path(&path).map(|params| (op, params)))
            .collect();
        if on_path.is_empty() {
            return Err(refuse(
                404,
                format!("no operation in the spec has the path {path}"),
            ));
        }
        let Some((operation, params)) = on_path.into_iter().find(|(op, _)| op.method == method)
        else {
            return Err(refuse(
                405,
                format!("the spec has no {method} operation on {path}"),
            ));
        };
        if let Some(empty) = params.iter().find(|p| p.is_empty()) {
            return Err(refuse(400, format!("path parameter {empty:?} is empty")));
        }

        let headers = request.headers();
        if operation.bearer {
            let values: Vec<_> = headers.get_all("authorization").iter().collect();
            let token =
                match values.as_slice() {
                    [] => return Err(refuse(
                        401,
                        "the Authorization header is missing; send `Authorization: Bearer <key>`"
                            .into(),
                    )),
                    [one] => one.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")),
                    _ => return Err(refuse(401, "more than one Authorization header".into())),
                };
            match token {
                None => {
                    return Err(refuse(
                        401,
                        "the Authorization header is not of the form `Bearer <key>`".into(),
                    ));
                }
                Some(token) if token != api_key => {
                    return Err(refuse(
                        401,
                        "the bearer token is not the mock's API key (MockHoneyHive::API_KEY)"
                            .into(),
                    ));
                }
                Some(_) => {}
            }
        }

        let body = request.body_ref().to_vec();
        let event = match &operation.body {
            None => Value::Null,
            Some(validator) => {
                let content_type = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let essence = content_type.split(';').next().unwrap_or("").trim();
                if !essence.eq_ignore_ascii_case("application/json") {
                    return Err(refuse(
                        415,
                        format!(
                            "Content-Type is {content_type:?}; the spec takes application/json"
                        ),
                    ));
                }
                let value: Value = serde_json::from_slice(&body)
                    .map_err(|e| refuse(400, format!("the body is not JSON: {e}")))?;
                if let Err(problems) = schema_problems(validator, &value) {
                    return Err(refuse(
                        400,
                        format!(
                            "the body does not match the schema: {}",
                            problems.join("; ")
                        ),
                    ));
                }
                value
            }
        };
        Ok(ReceivedEvent {
            session_id: params.into_iter().next().unwrap_or_default(),
            event,
            body,
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
            .find(|op| op.method == "POST")
            .unwrap();
        assert_eq!(
            op.match_path("/session/a%20b/event"),
            Some(vec!["a b".to_owned()])
        );
        assert_eq!(op.match_path("/session/a/b/event"), None);
        assert!(op.bearer);
        assert!(op.body.is_some());
    }
}
