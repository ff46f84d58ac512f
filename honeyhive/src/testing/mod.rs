//! A mock of the HoneyHive API for tests, built on
//! [httpmock](https://docs.rs/httpmock), that holds every request to the
//! OpenAPI spec this crate was generated from (through
//! [`validate`](crate::validate)).
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

use parking_lot::Mutex;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use httpmock::{HttpMockRequest, HttpMockResponse, MockServer};
use serde_json::{Map, Value, json};

use crate::validate::{Accepted, Refusal, Request, Spec};
use crate::{Client, ClientBuilder, Error};

mod datasets;
mod events;
mod resources;
mod routes;
mod runs;
mod store;

use routes::Call;

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

/// All a mock holds, behind one lock: what it recorded for the test to
/// read, and what it remembers to answer with.
#[derive(Default)]
struct State {
    recorded: Recorded,
    store: store::Store,
    /// Updates of events not logged yet, by event id, applied when the
    /// event comes.
    early_updates: std::collections::HashMap<String, Vec<Value>>,
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
    pub(crate) fn to_json(self) -> Value {
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
    state: Arc<Mutex<State>>,
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
    ///
    /// # Panics
    /// When no loopback port can be bound (httpmock's server panics then).
    pub fn start() -> Self {
        Self::serve(MockServer::start())
    }

    /// Starts the mock on loopback, from async code.
    ///
    /// # Panics
    /// When no loopback port can be bound (httpmock's server panics then).
    pub async fn start_async() -> Self {
        Self::serve(MockServer::start_async().await)
    }

    fn serve(server: MockServer) -> Self {
        let spec = Spec::embedded();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        server.mock(move |_when, then| {
            then.respond_with(move |request| answer(spec, &shared, request));
        });
        MockHoneyHive { server, state }
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
    ///
    /// # Errors
    /// As [`ClientBuilder::build`]; the mock's own settings never fail it.
    pub fn client(&self) -> Result<Client, Error> {
        self.client_builder().build()
    }

    /// The events accepted so far, in the order they arrived.
    pub fn events(&self) -> Vec<ReceivedEvent> {
        self.state.lock().recorded.events.clone()
    }

    /// The sessions started so far, in the order they arrived.
    pub fn sessions(&self) -> Vec<ReceivedSession> {
        self.state.lock().recorded.sessions.clone()
    }

    /// The updates accepted so far, in the order they arrived.
    pub fn updates(&self) -> Vec<ReceivedUpdate> {
        self.state.lock().recorded.updates.clone()
    }

    /// The sessions and updates accepted since the last call, moved out
    /// of the mock (as [`take_events`](Self::take_events) does for events).
    pub fn take_sessions_and_updates(&self) -> (Vec<ReceivedSession>, Vec<ReceivedUpdate>) {
        let mut state = self.state.lock();
        let recorded = &mut state.recorded;
        (
            std::mem::take(&mut recorded.sessions),
            std::mem::take(&mut recorded.updates),
        )
    }

    /// The requests refused so far, in the order they arrived.
    pub fn violations(&self) -> Vec<Violation> {
        self.state.lock().recorded.violations.clone()
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
        std::mem::take(&mut self.state.lock().recorded.events)
    }

    /// How many requests, events and violations the mock has seen.
    pub fn stats(&self) -> MockStats {
        self.state.lock().recorded.stats
    }
}

fn answer(
    spec: &'static Spec,
    state: &Mutex<State>,
    request: &HttpMockRequest,
) -> HttpMockResponse {
    if request.method() == "GET" && request.uri().path() == MockHoneyHive::STATS_PATH {
        return respond(200, state.lock().recorded.stats.to_json());
    }
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let refused = |violation: Violation| {
        let response = respond(
            violation.status,
            json!({ "error": "request does not match the OpenAPI spec", "violation": violation.message }),
        );
        let mut state = state.lock();
        state.recorded.stats.requests += 1;
        state.recorded.stats.violations += 1;
        state.recorded.violations.push(violation);
        response
    };
    let headers = request.headers();
    let raw = Bytes::copy_from_slice(request.body_ref());
    let checked = spec.check(
        &Request {
            method: &method,
            path: &path,
            query: request.uri().query().unwrap_or(""),
            authorization: headers
                .get_all("authorization")
                .iter()
                .map(|v| v.to_str().ok())
                .collect(),
            content_type: headers.get("content-type").and_then(|v| v.to_str().ok()),
            body: &raw,
        },
        MockHoneyHive::API_KEY,
    );
    let Accepted {
        operation,
        params,
        body,
        query,
    } = match checked {
        Ok(accepted) => accepted,
        Err(Refusal { status, message }) => {
            return refused(Violation {
                status,
                request: format!("{method} {path}"),
                message,
            });
        }
    };
    let call = Call {
        operation,
        params,
        query,
        body,
        raw: &raw,
    };
    let mut locked = state.lock();
    let Some(reply) = routes::answer(&mut locked, &call) else {
        drop(locked);
        return refused(Violation {
            status: 501,
            request: format!("{method} {path}"),
            message: format!(
                "the mock does not answer {operation} yet, though the spec has it; \
                 teach testing::routes how"
            ),
        });
    };
    locked.recorded.stats.requests += 1;
    drop(locked);
    // The mock holds its own answers to the spec: one that breaks it is a
    // bug of the mock, answered 500 and listed with the violations.
    let (status, body) = reply.parts();
    if (200..300).contains(&status)
        && let Err(message) = spec.check_answer_of(operation, status, body)
    {
        let mut state = state.lock();
        state.recorded.stats.violations += 1;
        state.recorded.violations.push(Violation {
            status: 500,
            request: format!("{method} {path}"),
            message: format!("the mock's own answer breaks the spec: {message}"),
        });
        return respond(
            500,
            json!({ "error": "the mock's answer does not match the OpenAPI spec", "violation": message }),
        );
    }
    match body {
        Some(body) => respond(status, body.clone()),
        None => HttpMockResponse::builder().status(status).build(),
    }
}

/// The session event `createSession` answers: the body's fields, with the
/// ids HoneyHive adds.
pub(super) fn session_event(session_id: &str, body: &Value) -> Value {
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
