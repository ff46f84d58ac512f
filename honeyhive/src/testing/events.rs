//! Events and sessions: logged through every route into one flat store,
//! read back by id, searched, exported and updated.

use std::cmp::Ordering;
use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::call::{Call, Reply, found, one_page, paging};
use super::store::{merge, merge_all, millis, new_id, now_ms};
use super::{ReceivedEvent, ReceivedSession, ReceivedUpdate, State};

/// The fields an event keeps, with the JSON type each must have to be
/// stored (anything else, `null` included, is left out so that every
/// answer holds to the spec's event schemas).
const FIELDS: &[(&str, &str)] = &[
    ("event_id", "string"),
    ("session_id", "string"),
    ("parent_id", "string"),
    ("children_ids", "array"),
    ("event_type", "string"),
    ("event_name", "string"),
    ("source", "string"),
    ("project", "string"),
    ("project_id", "string"),
    ("config", "object"),
    ("inputs", "object"),
    ("outputs", "object"),
    ("metadata", "object"),
    ("metrics", "object"),
    ("feedback", "object"),
    ("user_properties", "object"),
    ("error", "string"),
    ("start_time", "number"),
    ("end_time", "number"),
    ("duration", "number"),
];

/// The event types the answers' schemas allow.
const TYPES: &[&str] = &["model", "tool", "chain", "session"];

/// The fields of an `updateEvent` body that are replaced; the free-form
/// objects among them (`metadata`, `metrics`, `feedback`,
/// `user_properties`) are merged key by key instead.
const UPDATED: &[&str] = &["outputs", "config", "duration", "end_time", "children_ids"];
const MERGED: &[&str] = &["metadata", "metrics", "feedback", "user_properties"];

fn is_type(value: &Value, kind: &str) -> bool {
    match kind {
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => value.is_number(),
    }
}

/// `event` as the store keeps it: the known fields of the right type, the
/// ids filled, a start time (now) when it has none.
fn stored(event: &Value, session_id: &str) -> Value {
    let mut kept = Map::new();
    for (field, kind) in FIELDS {
        if let Some(value) = event.get(*field).filter(|v| is_type(v, kind)) {
            kept.insert((*field).to_owned(), value.clone());
        }
    }
    if kept
        .get("event_type")
        .and_then(Value::as_str)
        .is_some_and(|t| !TYPES.contains(&t))
    {
        kept.remove("event_type");
    }
    kept.entry("event_id")
        .or_insert_with(|| Value::String(new_id()));
    kept.insert("session_id".into(), Value::String(session_id.to_owned()));
    kept.entry("start_time").or_insert_with(|| json!(now_ms()));
    Value::Object(kept)
}

/// Keeps `event` (children nested in `children`, as `logEvent` takes
/// them) and every child, each flat with its `parent_id` and
/// `children_ids`; any update that came for one before it is applied.
/// Returns the top event's id.
fn keep(state: &mut State, event: &Value, session_id: &str, parent: Option<&str>) -> String {
    let mut flat = stored(event, session_id);
    if let Some(parent) = parent {
        flat["parent_id"] = Value::String(parent.to_owned());
    }
    let id = flat["event_id"].as_str().unwrap_or_default().to_owned();
    let children: Vec<String> = event["children"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|child| keep(state, child, session_id, Some(&id)))
        .collect();
    if !children.is_empty() {
        flat["children_ids"] = json!(children);
    }
    if let Some(updates) = state.early_updates.remove(&id) {
        for update in &updates {
            apply(&mut flat, update);
        }
    }
    state.store.events.put(flat);
    id
}

/// An event accepted by `call`: kept, and recorded for
/// [`MockHoneyHive::events`](super::MockHoneyHive::events).
fn accept(state: &mut State, call: &Call<'_>, session_id: String, event: Value) -> String {
    let id = keep(state, &event, &session_id, None);
    state.recorded.stats.events += 1;
    state.recorded.events.push(ReceivedEvent {
        operation: call.operation,
        session_id: session_id.into(),
        event,
        body: call.raw.clone(),
    });
    id
}

/// A session started by `call` from `body` (`session_name` or
/// `event_name` naming it): kept as an event of type `session` whose
/// `event_id` is the session id, recorded for
/// [`MockHoneyHive::sessions`](super::MockHoneyHive::sessions). Returns the
/// session event as `createSession` answers it. A session a batch starts
/// (`single_session`) is kept, not recorded (`record` false).
fn start(state: &mut State, body: &Value, record: bool) -> Value {
    let session_id = id_in(body, "session_id");
    let mut event = super::session_event(&session_id, body);
    let kept = stored(&event, &session_id);
    let mut kept = kept;
    kept["event_id"] = Value::String(session_id.clone());
    event["event_id"] = Value::String(session_id.clone());
    state.store.events.put(kept);
    if record {
        state.recorded.stats.sessions += 1;
        state.recorded.sessions.push(ReceivedSession {
            session_id: session_id.into(),
            session: body.clone(),
        });
    }
    event
}

/// `body[field]` when it is a string; a new id otherwise.
pub(super) fn id_in(body: &Value, field: &str) -> String {
    body[field].as_str().map_or_else(new_id, str::to_owned)
}

/// `logEvent`: one event (children nested) in the path's session.
pub(super) fn log_event(state: &mut State, call: &Call<'_>) -> Reply {
    let id = accept(state, call, call.param(0), call.body.clone());
    Reply::ok(json!({ "event_id": id, "success": true }))
}

/// `createEvent`, `createEventLegacy` (`{event}`), `createModelEventLegacy`
/// (`{model_event}`, of type `model`): one flat event.
pub(super) fn create_event(state: &mut State, call: &Call<'_>) -> Reply {
    let event = match call.operation {
        "createEventLegacy" => call.body["event"].clone(),
        "createModelEventLegacy" => model(&call.body["model_event"]),
        _ => call.body.clone(),
    };
    let id = accept(state, call, id_in(&event, "session_id"), event);
    Reply::ok(json!({ "event_id": id, "success": true }))
}

/// A model event of the deprecated routes: of type `model`.
fn model(event: &Value) -> Value {
    let mut event = event.clone();
    if let Some(fields) = event.as_object_mut() {
        fields
            .entry("event_type")
            .or_insert_with(|| Value::String("model".into()));
    }
    event
}

/// `createEventBatch`, `createEventBatchLegacy` and
/// `createModelEventBatchLegacy`: many events, in one new session (made
/// from `session_properties`) when `single_session` is set.
pub(super) fn create_event_batch(state: &mut State, call: &Call<'_>) -> Reply {
    let body = &call.body;
    let (events, single) = match call.operation {
        "createModelEventBatchLegacy" => (
            body["model_events"]
                .as_array()
                .into_iter()
                .flatten()
                .map(model)
                .collect(),
            body["single_session"] == true || body["is_single_session"] == true,
        ),
        operation => (
            body["events"].as_array().cloned().unwrap_or_default(),
            body["single_session"] == true
                || (operation != "createEventBatch" && body["is_single_session"] == true),
        ),
    };
    let shared = single.then(|| {
        let properties = match body.get("session_properties") {
            Some(p) => p.clone(),
            None => body.get("session").cloned().unwrap_or_else(|| json!({})),
        };
        let mut session = json!({"session_id": new_id()});
        merge(
            &mut session,
            &properties,
            &["session_name", "metadata", "start_time", "user_properties"],
        );
        let started = start(state, &session, false);
        started["session_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    });
    let ids: Vec<String> = events
        .into_iter()
        .map(|event| {
            let session = shared
                .clone()
                .unwrap_or_else(|| id_in(&event, "session_id"));
            accept(state, call, session, event)
        })
        .collect();
    let mut answer = json!({ "event_ids": ids, "success": true });
    if let Some(session) = shared {
        answer["session_id"] = Value::String(session);
    }
    Reply::ok(answer)
}

/// `createSessionEventBatch` and `addSessionTracesLegacy`: events in the
/// path's session.
pub(super) fn session_batch(state: &mut State, call: &Call<'_>) -> Reply {
    let session = call.param(0);
    let body = &call.body;
    let events = ["events", "logs"]
        .iter()
        .flat_map(|field| body[*field].as_array().cloned().unwrap_or_default());
    for event in events.collect::<Vec<_>>() {
        accept(state, call, session.clone(), event);
    }
    Reply::ok(json!({ "success": true }))
}

/// `createSession` and `startSessionLegacy` (`{session}`).
pub(super) fn create_session(state: &mut State, call: &Call<'_>) -> Reply {
    let body = match call.operation {
        "startSessionLegacy" => call.body["session"].clone(),
        _ => call.body.clone(),
    };
    Reply::ok(start(state, &body, true))
}

/// `updateEvent` and `updateEventLegacy` (the id in the body): the stored
/// event updated; an update for an event not logged yet is kept and
/// applied when it comes (the Logger may send them in either order).
pub(super) fn update_event(state: &mut State, call: &Call<'_>) -> Reply {
    let event_id = match call.operation {
        "updateEventLegacy" => id_in(&call.body, "event_id"),
        _ => call.param(0),
    };
    match state.store.events.get_mut(&event_id) {
        Some(event) => apply(event, &call.body),
        None => state
            .early_updates
            .entry(event_id.clone())
            .or_default()
            .push(call.body.clone()),
    }
    state.recorded.stats.updates += 1;
    state.recorded.updates.push(ReceivedUpdate {
        event_id,
        update: call.body.clone(),
    });
    Reply::Empty
}

fn apply(event: &mut Value, update: &Value) {
    let mut typed = stored(update, "");
    if let Some(fields) = typed.as_object_mut() {
        fields.retain(|field, _| {
            UPDATED.contains(&field.as_str()) || MERGED.contains(&field.as_str())
        });
    }
    for field in MERGED {
        if let Some(changes) = typed.get(*field) {
            if !event[*field].is_object() {
                event[*field] = json!({});
            }
            merge_all(&mut event[*field], changes);
        }
    }
    merge(event, &typed, UPDATED);
}

/// `getEvent`.
pub(super) fn get_event(state: &mut State, call: &Call<'_>) -> Reply {
    let id = call.param(0);
    found(state.store.events.get(&id), "event", "event", &id)
}

/// `searchEvents` and `exportEventsLegacy`: the stored events that pass
/// every filter, the date range and `evaluation_id`, newest `start_time`
/// first, one page of `limit` (default 1000); `count` is every match.
pub(super) fn search(state: &mut State, call: &Call<'_>) -> Reply {
    let body = &call.body;
    let (start, end) = match call.operation {
        "exportEventsLegacy" => (&body["dateRange"]["$gte"], &body["dateRange"]["$lte"]),
        _ => (
            &body["dateRange"]["start_time"],
            &body["dateRange"]["end_time"],
        ),
    };
    let (start, end) = (millis(start), millis(end));
    let filters = Filter::all(body.get("filters"));
    let run = body["evaluation_id"].as_str();
    let rows = state.store.events.rows();
    let sessions = run.map(|run| run_sessions(rows, run)).unwrap_or_default();
    // Each match with its start time, read once.
    let mut found: Vec<(f64, &Value)> = rows
        .iter()
        .map(|event| (event["start_time"].as_f64().unwrap_or(0.0), event))
        .filter(|(at, event)| {
            start.is_none_or(|s| *at >= s)
                && end.is_none_or(|e| *at <= e)
                && run.is_none_or(|run| in_run(event, run, &sessions))
                && Filter::pass_all(&filters, event)
        })
        .collect();
    // Newest first; of the same time, the last to arrive first.
    found.reverse();
    found.sort_by(|(a, _), (b, _)| b.partial_cmp(a).unwrap_or(Ordering::Equal));
    let found = found.into_iter().map(|(_, event)| event);
    let count = found.len();
    let projections: Option<Vec<&str>> = body["projections"]
        .as_array()
        .map(|p| p.iter().filter_map(Value::as_str).collect());
    let page = paging(body.get("page"), body.get("limit"), 1000);
    let events: Vec<Value> = one_page(found, page)
        .into_iter()
        .map(|event| match &projections {
            Some(fields) => {
                let mut projected = json!({});
                merge(&mut projected, event, fields);
                projected
            }
            None => event.clone(),
        })
        .collect();
    Reply::ok(json!({ "events": events, "count": count }))
}

/// Whether `event` belongs to the run whose sessions are `sessions`
/// ([`run_sessions`]): its own `metadata.run_id`, or its session's.
fn in_run(event: &Value, run: &str, sessions: &HashSet<&str>) -> bool {
    event["metadata"]["run_id"] == run
        || event["session_id"]
            .as_str()
            .is_some_and(|s| sessions.contains(s))
}

/// The ids of the sessions whose session event has `metadata.run_id` =
/// `run`.
fn run_sessions<'a>(events: &'a [Value], run: &str) -> HashSet<&'a str> {
    events
        .iter()
        .filter(|e| e["event_type"] == "session" && e["metadata"]["run_id"] == run)
        .filter_map(|e| e["session_id"].as_str())
        .collect()
}

/// Text to compare: a string as it is, anything else as JSON.
fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

/// A number to compare: a number, or text that is one (or a time).
fn number(value: &Value) -> Option<f64> {
    match value {
        // Only text that may be a time is parsed as one (it is slow).
        Value::String(t) if t.contains('T') => t.parse().ok().or_else(|| millis(value)),
        Value::String(t) => t.parse().ok(),
        other => other.as_f64(),
    }
}

/// A filter (`{field, operator, value}`), read once to test many events.
pub(super) struct Filter {
    /// The field's dotted path (`metadata.run_id`), split.
    path: Vec<String>,
    operator: String,
    wanted: Value,
    wanted_text: String,
    wanted_number: Option<f64>,
}

impl Filter {
    pub(super) fn new(filter: &Value) -> Self {
        let wanted = filter["value"].clone();
        Filter {
            path: filter["field"]
                .as_str()
                .unwrap_or_default()
                .split('.')
                .map(str::to_owned)
                .collect(),
            operator: filter["operator"].as_str().unwrap_or_default().to_owned(),
            wanted_text: text(&wanted),
            wanted_number: number(&wanted),
            wanted,
        }
    }

    /// The filters of a list, or the one filter an object is (none
    /// otherwise).
    pub(super) fn all(filters: Option<&Value>) -> Vec<Filter> {
        match filters {
            Some(Value::Array(list)) => list.iter().map(Filter::new).collect(),
            Some(one @ Value::Object(_)) => vec![Filter::new(one)],
            _ => Vec::new(),
        }
    }

    /// Whether `event` passes every filter of `filters`.
    pub(super) fn pass_all(filters: &[Filter], event: &Value) -> bool {
        filters.iter().all(|filter| filter.passes(event))
    }

    fn equal(&self, found: &Value) -> bool {
        match (found, &self.wanted) {
            (Value::String(a), Value::String(b)) => a == b,
            _ => match (number(found), self.wanted_number) {
                (Some(a), Some(b)) => a == b,
                _ => text(found) == self.wanted_text,
            },
        }
    }

    fn contains(&self, found: &Value) -> bool {
        match found {
            Value::Array(items) => items.iter().any(|item| self.equal(item)),
            other => text(other).contains(&self.wanted_text),
        }
    }

    fn compare(&self, found: &Value) -> Option<Ordering> {
        number(found)?.partial_cmp(&self.wanted_number?)
    }

    /// Whether `event` passes.
    pub(super) fn passes(&self, event: &Value) -> bool {
        let found = self
            .path
            .iter()
            .try_fold(event, |value, part| value.get(part))
            .filter(|v| !v.is_null());
        match self.operator.as_str() {
            "exists" => found.is_some(),
            "not exists" => found.is_none(),
            "is" => found.is_some_and(|f| self.equal(f)),
            "is not" => !found.is_some_and(|f| self.equal(f)),
            "contains" => found.is_some_and(|f| self.contains(f)),
            "not contains" => !found.is_some_and(|f| self.contains(f)),
            "greater than" | "after" => {
                found.and_then(|f| self.compare(f)) == Some(Ordering::Greater)
            }
            "less than" | "before" => found.and_then(|f| self.compare(f)) == Some(Ordering::Less),
            _ => false,
        }
    }
}

/// `getEventsSchemaLegacy`, `getRunsSchema` and `getRunSchema`: the
/// fields the stored events (of the run, for `getRunSchema`; of
/// `evaluation_id`, for the first) carry in their free-form objects, as
/// `metrics.score` with the event type; the dataset ids of the runs;
/// `mappings` empty.
pub(super) fn schema(state: &mut State, call: &Call<'_>) -> Reply {
    let run = match call.operation {
        "getRunSchema" => Some(call.param(0)),
        _ => call.query.get("evaluation_id").map(text),
    };
    let rows = state.store.events.rows();
    let sessions = run
        .as_deref()
        .map(|run| run_sessions(rows, run))
        .unwrap_or_default();
    let mut fields: Vec<Value> = Vec::new();
    for event in rows {
        if run
            .as_deref()
            .is_some_and(|run| !in_run(event, run, &sessions))
        {
            continue;
        }
        let kind = event["event_type"].as_str().unwrap_or("tool");
        for object in ["inputs", "outputs", "metadata", "metrics", "feedback"] {
            for key in event[object]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                let field = json!({"name": format!("{object}.{key}"), "event_type": kind});
                if !fields.contains(&field) {
                    fields.push(field);
                }
            }
        }
    }
    let mut datasets: Vec<Value> = Vec::new();
    for run in state.store.runs.rows() {
        let dataset = &run["dataset_id"];
        if dataset.is_string() && !datasets.contains(dataset) {
            datasets.push(dataset.clone());
        }
    }
    Reply::ok(json!({ "fields": fields, "datasets": datasets, "mappings": {} }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compare_by_operator_on_dotted_fields() {
        let event = json!({
            "event_name": "search", "metadata": {"run_id": "r", "n": 3, "tags": ["a", "b"]},
            "start_time": 1000.0
        });
        let f = |field: &str, operator: &str, value: Value| {
            Filter::new(&json!({"field": field, "operator": operator, "value": value}))
                .passes(&event)
        };
        assert!(f("metadata.run_id", "is", json!("r")));
        assert!(!f("metadata.run_id", "is", json!("s")));
        assert!(f("metadata.run_id", "is not", json!("s")));
        assert!(f("metadata.n", "is", json!("3")));
        assert!(f("metadata.n", "greater than", json!(2)));
        assert!(!f("metadata.n", "less than", json!(2)));
        assert!(f("metadata.tags", "contains", json!("b")));
        assert!(f("event_name", "contains", json!("ear")));
        assert!(f("event_name", "not contains", json!("x")));
        assert!(f("metadata.gone", "not exists", Value::Null));
        assert!(!f("metadata.gone", "exists", Value::Null));
        assert!(f("start_time", "after", json!("1970-01-01T00:00:00.500Z")));
        assert!(f("start_time", "before", json!("1970-01-01T00:00:02Z")));
        assert!(!f("event_name", "sounds like", json!("search")));
    }

    #[test]
    fn an_update_replaces_outputs_and_merges_free_form_objects() {
        let mut event = json!({"event_id": "e", "outputs": {"a": 1}, "metadata": {"k": 1}});
        apply(
            &mut event,
            &json!({"outputs": {"b": 2}, "metadata": {"j": 2}, "metrics": {"m": 1}, "event_name": "x"}),
        );
        assert_eq!(event["outputs"], json!({"b": 2}));
        assert_eq!(event["metadata"], json!({"k": 1, "j": 2}));
        assert_eq!(event["metrics"], json!({"m": 1}));
        assert!(event.get("event_name").is_none());
    }
}
