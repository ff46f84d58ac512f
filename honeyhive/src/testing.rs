//! A mock of the HoneyHive API for tests, built on
//! [httpmock](https://docs.rs/httpmock), that holds every request to the
//! OpenAPI spec this crate was generated from.
//!
//! [`MockHoneyHive`] listens on loopback (127.0.0.1). For each request it
//! finds the spec operation by method and path, checks the bearer token,
//! the path parameters, the `Content-Type` and the JSON body against the
//! operation's schemas (an unknown field is refused where the spec sets
//! `additionalProperties: false`), and either records what came and
//! answers the documented 200, or answers a 4xx whose JSON body names the
//! violation. Tests read back what it recorded.
//!
//! | operation | recorded as | answer |
//! |---|---|---|
//! | `logEvent` `POST /session/{session_id}/event` | one [`ReceivedEvent`] (children nested) | `{event_id, success}` |
//! | `createEvent` `POST /v1/events` | one [`ReceivedEvent`] | `{event_id, success}` |
//! | `createEventBatch` `POST /v1/events/batch` | a [`ReceivedEvent`] per event | `{event_ids, success}` (and `session_id` with `single_session`) |
//! | `createSessionEventBatch` `POST /v1/sessions/{session_id}/events/batch` | a [`ReceivedEvent`] per event, in the path's session | `{success}` |
//! | `createSession` `POST /v1/sessions` | a [`ReceivedSession`] | the session event |
//! | `updateEvent` `PUT /v1/events/{event_id}` | a [`ReceivedUpdate`] | 200, no body |
//!
//! An event, session or update without an id is given a new UUIDv4, as
//! HoneyHive gives one.
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

use bytes::Bytes;
use httpmock::{HttpMockRequest, HttpMockResponse, MockServer};
use serde_json::{Map, Value, json};

use crate::fields::is_uuid;
use crate::{Client, ClientBuilder, Error};

/// An event the mock accepted.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ReceivedEvent {
    /// The operation that carried it: `logEvent`, `createEvent`,
    /// `createEventBatch` or `createSessionEventBatch`.
    pub operation: &'static str,
    /// The session it was logged in: the path's (percent-decoded) for
    /// `logEvent` and `createSessionEventBatch`, the event's `session_id`
    /// for the others (a new one when it has none).
    pub session_id: String,
    /// The event as JSON: the body of `logEvent` and `createEvent`, one of
    /// the `events` of a batch.
    pub event: Value,
    /// The body of the request that carried it, as it came over the wire.
    pub body: Bytes,
}

/// A session the mock started (`createSession`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ReceivedSession {
    /// The session's id: the body's, or a new one.
    pub session_id: String,
    /// The request body as JSON.
    pub session: Value,
}

/// An update the mock accepted (`updateEvent`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ReceivedUpdate {
    /// The event id from the path.
    pub event_id: String,
    /// The request body as JSON.
    pub update: Value,
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
    sessions: Vec<ReceivedSession>,
    updates: Vec<ReceivedUpdate>,
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
    /// Events accepted (each event of a batch counts), including those
    /// already taken by [`MockHoneyHive::take_events`].
    pub events: u64,
    /// Sessions started.
    pub sessions: u64,
    /// Updates accepted.
    pub updates: u64,
    /// Requests refused for breaking the spec.
    pub violations: u64,
}

impl MockStats {
    /// The stats as the stats route answers them:
    /// `{"requests": 3, "events": 2, "sessions": 0, "updates": 0,
    /// "violations": 1}`.
    pub fn to_json(&self) -> Value {
        json!({
            "requests": self.requests,
            "events": self.events,
            "sessions": self.sessions,
            "updates": self.updates,
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

    /// The sessions started so far, in the order they arrived.
    pub fn sessions(&self) -> Vec<ReceivedSession> {
        lock(&self.recorded).sessions.clone()
    }

    /// The updates accepted so far, in the order they arrived.
    pub fn updates(&self) -> Vec<ReceivedUpdate> {
        lock(&self.recorded).updates.clone()
    }

    /// The sessions and updates accepted since the last call, moved out
    /// of the mock (as [`take_events`](Self::take_events) does for events).
    pub fn take_sessions_and_updates(&self) -> (Vec<ReceivedSession>, Vec<ReceivedUpdate>) {
        let mut recorded = lock(&self.recorded);
        (
            std::mem::take(&mut recorded.sessions),
            std::mem::take(&mut recorded.updates),
        )
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
    validate_body("logEvent", event)
}

/// Checks a JSON value against the request body schema of the spec's
/// operation `operation_id` (such as `createEventBatch`), and lists every
/// problem with its JSON pointer.
///
/// ```
/// use honeyhive::testing::validate_body;
/// use serde_json::json;
///
/// let batch = json!({"events": [{"event_type": "tool", "inputs": {}}]});
/// assert!(validate_body("createEventBatch", &batch).is_ok());
/// let problems = validate_body("createEventBatch", &json!({"events": [{"inputs": {}, "project": "p"}]}))
///     .unwrap_err();
/// assert_eq!(problems.len(), 2, "{problems:?}"); // event_type missing, project unknown
/// ```
///
/// # Panics
/// When the spec has no operation `operation_id` with a JSON body: the
/// caller's mistake, said with the operations there are.
pub fn validate_body(operation_id: &str, body: &Value) -> Result<(), Vec<String>> {
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

fn answer(
    spec: &'static Spec,
    recorded: &Mutex<Recorded>,
    request: &HttpMockRequest,
) -> HttpMockResponse {
    if request.method() == "GET" && request.uri().path() == MockHoneyHive::STATS_PATH {
        return respond(200, lock(recorded).stats.to_json());
    }
    let refused = |violation: Violation| {
        let response = respond(
            violation.status,
            json!({ "error": "request does not match the OpenAPI spec", "violation": violation.message }),
        );
        let mut recorded = lock(recorded);
        recorded.stats.requests += 1;
        recorded.stats.violations += 1;
        recorded.violations.push(violation);
        response
    };
    let accepted = match spec.check(request, MockHoneyHive::API_KEY) {
        Ok(accepted) => accepted,
        Err(violation) => return refused(violation),
    };
    let Accepted {
        operation,
        mut params,
        body,
        raw,
    } = accepted;
    let path_param = |params: &mut Vec<String>| {
        if params.is_empty() {
            String::new()
        } else {
            params.remove(0)
        }
    };
    let event = |session_id: String, event: Value| ReceivedEvent {
        operation,
        session_id,
        event,
        body: raw.clone(),
    };
    let (events, sessions, updates, answer) = match operation {
        "logEvent" => {
            let event_id = id_in(&body, "event_id");
            let received = event(path_param(&mut params), body);
            (
                vec![received],
                vec![],
                vec![],
                Some(json!({ "event_id": event_id, "success": true })),
            )
        }
        "createEvent" => {
            let event_id = id_in(&body, "event_id");
            let received = event(id_in(&body, "session_id"), body);
            (
                vec![received],
                vec![],
                vec![],
                Some(json!({ "event_id": event_id, "success": true })),
            )
        }
        "createEventBatch" => {
            let single = body["single_session"] == Value::Bool(true);
            let shared_session = single.then(|| uuid::Uuid::new_v4().to_string());
            let mut ids = Vec::new();
            let mut received = Vec::new();
            for item in events_of(&body) {
                ids.push(id_in(&item, "event_id"));
                let session = shared_session
                    .clone()
                    .unwrap_or_else(|| id_in(&item, "session_id"));
                received.push(event(session, item));
            }
            let mut answer = json!({ "event_ids": ids, "success": true });
            if let Some(session) = shared_session {
                answer["session_id"] = Value::String(session);
            }
            (received, vec![], vec![], Some(answer))
        }
        "createSessionEventBatch" => {
            let session = path_param(&mut params);
            let received = events_of(&body)
                .map(|item| event(session.clone(), item))
                .collect();
            (received, vec![], vec![], Some(json!({ "success": true })))
        }
        "createSession" => {
            let session_id = id_in(&body, "session_id");
            let answer = session_event(&session_id, &body);
            let session = ReceivedSession {
                session_id,
                session: body,
            };
            (vec![], vec![session], vec![], Some(answer))
        }
        "updateEvent" => {
            let update = ReceivedUpdate {
                event_id: path_param(&mut params),
                update: body,
            };
            (vec![], vec![], vec![update], None)
        }
        other => {
            return refused(Violation {
                status: 501,
                request: format!("{} {}", request.method(), request.uri().path()),
                message: format!(
                    "the mock does not answer {other} yet, though the spec has it; \
                     teach testing::answer how"
                ),
            });
        }
    };
    let mut recorded = lock(recorded);
    recorded.stats.requests += 1;
    recorded.stats.events += events.len() as u64;
    recorded.stats.sessions += sessions.len() as u64;
    recorded.stats.updates += updates.len() as u64;
    recorded.events.extend(events);
    recorded.sessions.extend(sessions);
    recorded.updates.extend(updates);
    drop(recorded);
    match answer {
        Some(answer) => respond(200, answer),
        None => HttpMockResponse::builder().status(200).build(),
    }
}

/// `body[field]` when it is a string; a new UUIDv4 otherwise, as HoneyHive
/// gives an event or session without an id one.
fn id_in(body: &Value, field: &str) -> String {
    body[field]
        .as_str()
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// The `events` of a batch body (the schema checked it is a list).
fn events_of(body: &Value) -> impl Iterator<Item = Value> + '_ {
    body["events"].as_array().into_iter().flatten().cloned()
}

/// The session event `createSession` answers: the body's fields, with the
/// ids HoneyHive adds.
fn session_event(session_id: &str, body: &Value) -> Value {
    let mut event: Map<String, Value> = body.as_object().cloned().unwrap_or_default();
    let name = event
        .get("event_name")
        .or_else(|| event.get("session_name"))
        .cloned()
        .unwrap_or_else(|| Value::String("unknown".into()));
    event.remove("session_name");
    event.insert("event_name".into(), name);
    event.insert("event_type".into(), Value::String("session".into()));
    event.insert(
        "event_id".into(),
        Value::String(uuid::Uuid::new_v4().to_string()),
    );
    event.insert("session_id".into(), Value::String(session_id.to_owned()));
    for (field, value) in [
        ("org_id", "mock-org"),
        ("workspace_id", "mock-workspace"),
        ("project_id", "mock-project"),
    ] {
        event.insert(field.into(), Value::String(value.into()));
    }
    Value::Object(event)
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
    /// The operationId: what the mock answers by.
    id: String,
    method: String,
    /// `/session/{session_id}/event` split at `/`.
    segments: Vec<String>,
    /// Each path parameter's schema, in the order they appear.
    params: Vec<(String, jsonschema::Validator)>,
    bearer: bool,
    body: Option<jsonschema::Validator>,
}

/// A request that holds to the spec.
struct Accepted {
    operation: &'static str,
    /// The path parameters, percent-decoded, in order.
    params: Vec<String>,
    /// The body as JSON (`Null` for an operation without one).
    body: Value,
    raw: Bytes,
}

impl Spec {
    /// The spec compiled into honeyhive-gen from the same file the client was
    /// generated from, parsed once per process.
    fn embedded() -> &'static Spec {
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
                let compile = |schema: &Value, what: &str| {
                    let mut root = schema_root.clone();
                    root["allOf"] = json!([to_json_schema(schema.clone())]);
                    jsonschema::draft4::options()
                        .should_validate_formats(true)
                        .with_format("uuid", is_uuid)
                        .build(&root)
                        .unwrap_or_else(|e| {
                            panic!(
                                "the spec's {what} schema for {method} {path} does not compile: {e}"
                            )
                        })
                };
                let body = operation
                    .pointer("/requestBody/content/application~1json/schema")
                    .map(|schema| compile(schema, "body"));
                let params = operation["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
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
                });
            }
        }
        Spec { operations }
    }

    fn check(
        &'static self,
        request: &HttpMockRequest,
        api_key: &str,
    ) -> Result<Accepted, Violation> {
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
        for ((name, schema), value) in operation.params.iter().zip(&params) {
            if value.is_empty() {
                return Err(refuse(400, format!("path parameter {name} is empty")));
            }
            if let Err(problems) = schema_problems(schema, &Value::String(value.clone())) {
                return Err(refuse(
                    400,
                    format!(
                        "path parameter {name} = {value:?} does not match its schema: {}",
                        problems.join("; ")
                    ),
                ));
            }
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

        let raw = Bytes::copy_from_slice(request.body_ref());
        let body = &raw;
        let value = match &operation.body {
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
                let value: Value = serde_json::from_slice(body)
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
        Ok(Accepted {
            operation: &operation.id,
            params,
            body: value,
            raw,
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
}
