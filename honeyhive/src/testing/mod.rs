//! A mock of the HoneyHive API for tests, built on
//! [httpmock](https://docs.rs/httpmock), that holds every request to the
//! OpenAPI spec this crate was generated from (through
//! [`validate`](crate::validate)) and remembers what it was given.
//!
//! [`MockHoneyHive`] listens on loopback (127.0.0.1). For each request it
//! finds the spec operation by method and path, checks the bearer token,
//! the path and query parameters, the `Content-Type` and the JSON body
//! against the operation's schemas (an unknown field is refused where the
//! spec sets `additionalProperties: false`); a request that breaks the spec
//! is answered a 4xx whose JSON body names the violation, and listed in
//! [`MockHoneyHive::violations`]. A request that holds to it is answered
//! from the mock's state, which it changes as the API would: a dataset
//! created is listed, a run updated shows the update, an event logged
//! through any route is found by `getEvent` and `searchEvents`. Each mock
//! has a state of its own, empty at the start.
//!
//! Every 2xx answer is itself checked against the spec's response schema
//! before it leaves: one that does not hold is a bug of the mock, answered
//! 500 and listed with the violations. An id the mock does not have is
//! answered 404 (the spec gives that answer no body; the mock's is
//! `{"error": "run 42 not found", "resource": "run", "id": "42"}`), and is
//! no violation. Ids the mock makes are UUIDv4s; times are now, in
//! milliseconds (`start_time`) or RFC 3339 (`created_at`).
//!
//! ```
//! use honeyhive::{api::types, testing::MockHoneyHive};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mock = MockHoneyHive::start_async().await;
//! let client = mock.client()?;
//! let raw = client.raw();
//! let body: types::CreateDatasetRequest = serde_json::from_value(json!({"name": "qa"}))?;
//! let created = raw.create_dataset().body(body).send().await?;
//! let id = created.result.inserted_id.to_string();
//! let rows: types::AddDatapointsToDatasetRequest = serde_json::from_value(json!({
//!     "data": [{"question": "2+2?", "answer": "4"}],
//!     "mapping": {"inputs": ["question"], "ground_truth": ["answer"]},
//! }))?;
//! raw.add_datapoints().dataset_id(&id).body(rows).send().await?;
//!
//! let listed = raw.get_datapoints().dataset_name("qa").send().await?;
//! assert_eq!(listed.datapoints[0].inputs["question"], "2+2?");
//! assert!(mock.violations().is_empty());
//! # Ok(()) }
//! ```
//!
//! # What each operation does
//!
//! "Kept" events are flat (a `logEvent` tree becomes one event per node,
//! with `parent_id` and `children_ids`), hold the known event fields of
//! the right type, and get a `start_time` of now when they have none. A
//! repeated id replaces the event (a retried batch is not doubled). Tests
//! read the events, sessions and updates as they came through
//! [`MockHoneyHive::events`], [`sessions`](MockHoneyHive::sessions) and
//! [`updates`](MockHoneyHive::updates) (the operations that record them
//! say so below).
//!
//! | operation | what the mock does | answer |
//! |---|---|---|
//! | `logEvent` `POST /session/{session_id}/event` | keeps the event and its children in the path's session; records a [`ReceivedEvent`] (children nested) | `{event_id, success}` |
//! | `createEvent` `POST /v1/events` | keeps the event (session: the body's, or a new one); records it | `{event_id, success}` |
//! | `createEventBatch` `POST /v1/events/batch` | keeps each event; with `single_session`, all in a new session kept from `session_properties`; records each | `{event_ids, success}` (and `session_id` with `single_session`) |
//! | `createSessionEventBatch` `POST /v1/sessions/{session_id}/events/batch` | keeps each event in the path's session; records each | `{success}` |
//! | `createSession` `POST /v1/sessions` | keeps a `session` event whose `event_id` is the session id; records a [`ReceivedSession`] | the session event |
//! | `updateEvent` `PUT /v1/events/{event_id}` | `outputs`, `config`, `duration`, `end_time`, `children_ids` replaced, `metadata`, `metrics`, `feedback`, `user_properties` merged by key; an update of an event not kept yet is applied when it comes; records a [`ReceivedUpdate`] | 200, no body |
//! | `getEvent` `GET /v1/events/{event_id}` | | `{event}`, or 404 |
//! | `searchEvents` `POST /v1/events/search` | the kept events passing every filter (below), `dateRange` (`start_time` within it) and `evaluation_id` (the event's or its session's `metadata.run_id`), newest `start_time` first | one page (`page`, `limit`: default 1, 1000) as `{events, count}`, `count` every match |
//! | `exportEventsLegacy` `POST /v1/events/export` | as `searchEvents`, `dateRange` as `{$gte, $lte}`; `projections` keeps only those fields | as `searchEvents` |
//! | `createEventLegacy` `POST /events`, `createModelEventLegacy` `POST /events/model` | as `createEvent` (`{event}`; `{model_event}`, of type `model`) | `{event_id, success}` |
//! | `createEventBatchLegacy` `POST /events/batch`, `createModelEventBatchLegacy` `POST /events/model/batch` | as `createEventBatch` (`events`; `model_events`, of type `model`; `is_single_session` and `session` too) | as `createEventBatch` |
//! | `updateEventLegacy` `PUT /events` | as `updateEvent`, the id in the body | 200, no body |
//! | `startSessionLegacy` `POST /session/start` | as `createSession` (`{session}`) | the session event |
//! | `addSessionTracesLegacy` `POST /session/{session_id}/traces` | as `createSessionEventBatch` (`events` and `logs`) | `{success}` |
//! | `getEventsSchemaLegacy` `GET /v1/events/schema`, `getRunsSchema` `GET /v1/runs/schema`, `getRunSchema` `GET /v1/runs/{run_id}/schema` | the keys of the kept events' `inputs`, `outputs`, `metadata`, `metrics`, `feedback` (of the run's events for `getRunSchema`, of `evaluation_id`'s for the first) | `{fields: [{name: "metrics.score", event_type}], datasets: the runs' dataset ids, mappings: {}}` (`mappings` a placeholder) |
//! | `createDataset` `POST /v1/datasets` | keeps `{id, name, description, datapoints, created_at, updated_at}` | `{inserted, result: {insertedId}}` |
//! | `getDatasets` `GET /v1/datasets` | every dataset, or those of `dataset_id` and `name` | `{datasets}` |
//! | `updateDataset` `PUT /v1/datasets/{dataset_id}`, `updateDatasetLegacy` `PUT /v1/datasets` | `name`, `description`, `datapoints` replaced (the datapoints' `linked_datasets` follow) | `{result: dataset}`, or 404 |
//! | `deleteDataset` `DELETE /v1/datasets/{dataset_id}`, `deleteDatasetLegacy` `DELETE /v1/datasets?dataset_id=` | removes it, and from its datapoints' `linked_datasets` | `{result: {id}}`, or 404 |
//! | `addDatapoints` `POST /v1/datasets/{dataset_id}/datapoints` | a datapoint per row of `data` in the dataset: the row's fields `mapping.inputs` names as `inputs`, `mapping.ground_truth`'s as `ground_truth`, `mapping.history`'s (objects, or lists of them) as `history`, the rest as `metadata` | `{inserted, datapoint_ids}`, or 404 |
//! | `removeDatapoint` `DELETE /v1/datasets/{dataset_id}/datapoints/{datapoint_id}`, `removeDatapointLegacy` `DELETE /v1/datasets/{dataset_id}/{datapoint_id}` | takes the datapoint out of the dataset (it stays) | `{dereferenced, message}`, or 404 |
//! | `createDatapoint` `POST /v1/datapoints` | keeps it, in its `linked_datasets` | `{inserted, result: {insertedIds}}` |
//! | `batchCreateDatapoints` `POST /v1/datapoints/batch` | a datapoint from each kept event named in `events` (none named: each passing `filters`) in `dataset_id`: the event's `inputs` (only `mapping.inputs`' fields, when it names any), its `outputs` as `ground_truth`, `linked_event` its id; `checkState`, `selectAll` and `dateRange` are not read | `{inserted, insertedIds}` |
//! | `getDatapoints` `GET /v1/datapoints` | those of `datapoint_ids`, or in the datasets named `dataset_name`, or every one | `{datapoints}` |
//! | `getDatapoint` `GET /v1/datapoints/{datapoint_id}` | | `{datapoint: [it]}`, or 404 |
//! | `updateDatapoint` `PUT /v1/datapoints/{datapoint_id}` | the fields given replaced (`linked_datasets` followed by the datasets) | `{updated, result: {modifiedCount: 1}}`, or 404 |
//! | `deleteDatapoint` `DELETE /v1/datapoints/{datapoint_id}` | removes it, and from every dataset | `{deleted}`, or 404 |
//! | `createRun` `POST /v1/runs` | keeps the run under the body's `run_id` (a new one without; `id` is the same), `status` `pending` unless given; a create with the id of a kept run changes nothing | `{run_id, evaluation}` |
//! | `getRuns` `GET /v1/runs` | filtered by `dataset_id`, `run_ids`, `name`, `status`, `dateRange` (`{$gte, $lte}` on `created_at`), sorted by `sort_by`, `sort_order` | one page (`page`, `limit`: default 1, 20) as `{evaluations, pagination, metrics}` |
//! | `getRun` `GET /v1/runs/{run_id}` | | `{evaluation}`, or 404 |
//! | `updateRun` `PUT /v1/runs/{run_id}` | the fields given replaced | `{evaluation}`, or 404 |
//! | `deleteRun` `DELETE /v1/runs/{run_id}` | removes it | `{id, deleted}`, or 404 |
//! | `getExperimentSummary` `GET /v1/runs/{run_id}/summary`, `getExperimentResultLegacy` `GET /v1/runs/{run_id}/result` | computed (see [The summary](#the-summary)) | `{status, success, passed, failed, metrics, datapoints, event_details, run_object}`, or 404 |
//! | `getExperimentComparison` `GET /v1/runs/{new_run_id}/compare/{old_run_id}`, `getExperimentComparisonLegacy` `.../compare-with/...` | both summaries side by side | `{metrics, commonDatapoints, event_details, new_run, old_run}`, or 404 |
//! | `getExperimentCompareEvents` `GET /v1/runs/{new_run_id}/compare/{old_run_id}/events`, `getExperimentCompareEventsLegacy` `GET /v1/runs/compare/events` | for each datapoint of both runs, the new run's event of `event_name` and `event_type` (the session event when neither is given) passing `filter`, paired with the old run's of the same name and type | one page (`page`, `limit`) as `{events: [{datapoint_id, event_1, event_2}], totalEvents}` |
//! | `getExperimentRunMetrics` `GET /v1/runs/{run_id}/metrics` | each event of the run's sessions with number or boolean metrics, passing `filters` (`dateRange` is not read) | `{events: [{event_name, event_type, session_id, metadata: {datapoint_id}, metrics}], totalEvents}` |
//! | `getMetrics`, `createMetric`, `updateMetric`, `updateMetricLegacy`, `deleteMetric`, `deleteMetricLegacy` (`/v1/metrics`) | a generic table: create (the spec's defaults filled, `id`, `created_at`, `updated_at` given), list (filtered by `type`, `id`), update (fields replaced), delete | `{metrics}`, `{inserted, metric_id}`, `{updated}`, `{deleted}`; 404 for an unknown id |
//! | `getMetricVersions`, `createMetricVersion`, `deployMetricVersion` (`/v1/metrics/{metric_id}/versions`) | versions `v1`, `v2`...: the metric as it stands with the body's `content` over it; deploying one makes its content the metric's (`deploy_immediately` at once) | `{success, data}`; 404 for an unknown metric or version |
//! | `runMetric` `POST /v1/metrics/run`, `runMetricLegacy` `POST /v1/metrics/run_metric` | nothing: a placeholder, the mock runs no metric | `{success: true, loading: false, result: null, explanation}` |
//! | `getConfigurations`, `createConfiguration`, `updateConfiguration`, `deleteConfiguration` (`/v1/configurations`) | a generic table (list filtered by `name`, `env`, `tags`) | `{configurations}`, `{acknowledged, insertedId}`, `{acknowledged, modifiedCount, ...}`, `{acknowledged, deletedCount}`; 404 for an unknown id |
//! | `getQueues`, `createQueue`, `getQueue`, `updateQueue`, `deleteQueue` (`/v1/queues`) | a generic table (list filtered by `enabled`; `add_event_ids` and `remove_event_ids` change `event_ids`) | `{queues}`, 201 `{queue, message}`, the queue, `{queue, message}`, `{message}`; 404 for an unknown id |
//! | `getCharts`, `createChart`, `getChart`, `updateChart`, `deleteChart` (`/v1/charts`) | a generic table | `{success, data}`, `{success, message}` for delete; 404 for an unknown id |
//!
//! Filters (`searchEvents`' `filters`, and the runs' `filters` and
//! `filter`) name a field by its dotted path (`event_name`,
//! `metadata.run_id`) and compare with `exists`, `not exists`, `is`, `is
//! not` (as numbers when both sides are, else as text), `contains`, `not
//! contains` (a substring, or an item of a list), `greater than`, `less
//! than`, `after`, `before` (as numbers, RFC 3339 text read as
//! milliseconds).
//!
//! # The summary
//!
//! A run's sessions are the kept events of type `session` whose
//! `metadata.run_id` is the run's id, whose session id is in the run's
//! `session_ids`, or whose event id is in its `event_ids` (the summary's
//! `filters` apply to them). A session's
//! datapoint is its `metadata.datapoint_id`. Its samples are the number
//! and boolean `metrics` of every event in the session, its own included
//! (a boolean counts as 1 or 0). Computed:
//!
//! - a sample **passes** when its metric has no range in the run's
//!   `passing_ranges` or is inside it (`min` and `max` inclusive, each
//!   optional); a boolean passes when true. A session passes when every
//!   sample passes and none of its events has an `error`;
//! - `passed` and `failed`: the datapoint ids of the sessions (the session
//!   id for one without);
//! - `metrics.details`: one per metric name, event name and event type,
//!   with every `values`, their `aggregate` by `aggregate_function`
//!   (`average` by default, `sum`, `min`, `max`, `count`, `median`, and
//!   `p90`, `p95`, `p99` by nearest rank; no `aggregate` without values),
//!   the datapoints that passed and failed, the run's `passing_range`;
//! - `datapoints`: per session, `{session_id, datapoint_id, passed,
//!   metrics: [{name, event_name, event_type, value, passed}]}`;
//! - `event_details`: each event name and type seen;
//! - the comparison: `commonDatapoints` the datapoints of both runs; per
//!   metric name (all event types together), `old_aggregate`,
//!   `new_aggregate`, `difference` (new - old), `percentage_change`
//!   (difference over old, in %, not given when old is 0); `event_details`
//!   with `presence` `old`, `new` or `both`.
//!
//! Placeholders: `success` is always true and `error` never given;
//! `status` is the run's (`pending` without one); `metric_type` is given
//! only for a metric created in the mock under that name.

use parking_lot::Mutex;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use httpmock::{HttpMockRequest, HttpMockResponse, MockServer};
use serde_json::{Map, Value, json};

use crate::session::SessionId;
use crate::validate::{Accepted, Refusal, Request, Spec};
use crate::{client::Client, client::ClientBuilder, error::Error};
use reqwest::StatusCode;

mod call;
mod datasets;
mod events;
mod resources;
mod routes;
mod runs;
mod store;

use call::Call;

/// An event the mock accepted.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ReceivedEvent {
    /// The operation that carried it: `logEvent`, `createEvent`,
    /// `createEventBatch`, `createSessionEventBatch`, or a deprecated
    /// route's (`createEventLegacy`, ...).
    pub operation: &'static str,
    /// The session it was logged in: the path's (percent-decoded) for
    /// `logEvent`, `createSessionEventBatch` and `addSessionTracesLegacy`,
    /// the batch's new session with `single_session`, the event's
    /// `session_id` for the others (a new one when it has none).
    pub session_id: SessionId,
    /// The event as JSON, as it came: the body of `logEvent` and
    /// `createEvent`, one of the `events` of a batch.
    pub event: Value,
    /// The body of the request that carried it, as it came over the wire.
    pub body: Bytes,
}

/// A session the mock started (`createSession`, `startSessionLegacy`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ReceivedSession {
    /// The session's id: the body's, or a new one.
    pub session_id: SessionId,
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
    pub status: StatusCode,
    /// The method and path of the request.
    pub request: String,
    /// What the request got wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {}: {}",
            self.request,
            self.status.as_u16(),
            self.message
        )
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
    /// Requests refused for breaking the spec, and answers of the mock's
    /// own that would have (answered 500).
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

    /// The events accepted so far, in the order they arrived: one entry per
    /// event a request carried as an event of its own. A tree sent whole
    /// (`logEvent`, `createEvent`) is one entry, its children nested in
    /// [`ReceivedEvent::event`]; the batch routes carry trees flat, one
    /// entry per event. So with children, count the nodes rather than the
    /// entries:
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), honeyhive::Error> {
    /// use honeyhive::{Event, testing::MockHoneyHive};
    ///
    /// let mock = MockHoneyHive::start_async().await;
    /// let tree = Event::chain("answer").child(Event::tool("search"));
    /// mock.client()?.log_event("s-1", tree).await?;
    /// let events = mock.events();
    /// assert_eq!(events.len(), 1);
    /// assert_eq!(events[0].event["children"].as_array().map(Vec::len), Some(1));
    /// # Ok(()) }
    /// ```
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
    /// moved out of the record: [`events`](Self::events) then starts again
    /// from the next one; [`stats`](Self::stats) still counts them all, and
    /// the mock's state still holds each (flat, as `getEvent` and
    /// `searchEvents` find it), so a mock that runs for long grows with
    /// what it is sent.
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
            violation.status.as_u16(),
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
            status: StatusCode::NOT_IMPLEMENTED,
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
            status: StatusCode::INTERNAL_SERVER_ERROR,
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
