//! Experiment runs: created, listed, updated, deleted; and what is
//! computed from the sessions linked to them (summary, comparison,
//! metrics, paired events).

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::{Value, json};

use super::State;
use super::call::{Call, Reply, found, not_found, one_page, paging};
use super::datasets::ids;
use super::events::Filter;
use super::store::{Kind, merge, millis, now_iso};

/// The fields of a run that `createRun` and `updateRun` set.
const RUN: &[&str] = &[
    "name",
    "status",
    "dataset_id",
    "datapoint_ids",
    "event_ids",
    "session_ids",
    "configuration",
    "metadata",
    "results",
    "evaluators",
    "passing_ranges",
];

/// `createRun`: a run of the body's `run_id` (a new one without), or the
/// run already under that id, unchanged (a repeated create is harmless).
pub(super) fn create_run(state: &mut State, call: &Call<'_>) -> Reply {
    let run_id = super::events::id_in(&call.body, "run_id");
    if let Some(run) = state.store.runs.get(&run_id) {
        return Reply::ok(json!({ "run_id": run_id, "evaluation": run }));
    }
    let now = now_iso();
    let mut run = json!({
        "id": run_id, "run_id": run_id, "name": null, "status": "pending",
        "dataset_id": null, "datapoint_ids": [], "event_ids": [], "session_ids": [],
        "configuration": {}, "metadata": {}, "results": {}, "evaluators": [],
        "passing_ranges": {}, "is_active": true, "created_at": now, "updated_at": now,
        "scope_type": "project", "scope_id": "mock-project",
    });
    merge(&mut run, &call.body, RUN);
    state.store.runs.put(run.clone());
    Reply::ok(json!({ "run_id": run_id, "evaluation": run }))
}

/// `getRun`.
pub(super) fn get_run(state: &mut State, call: &Call<'_>) -> Reply {
    let id = call.param(0);
    found(state.store.runs.get(&id), "evaluation", "run", &id)
}

/// `updateRun`: the fields given replaced.
pub(super) fn update_run(state: &mut State, call: &Call<'_>) -> Reply {
    let id = call.param(0);
    let Some(run) = state.store.runs.get_mut(&id) else {
        return not_found("run", &id);
    };
    merge(run, &call.body, RUN);
    run["updated_at"] = Value::String(now_iso());
    Reply::ok(json!({ "evaluation": run }))
}

/// `deleteRun`.
pub(super) fn delete_run(state: &mut State, call: &Call<'_>) -> Reply {
    let id = call.param(0);
    match state.store.runs.remove(&id) {
        Some(_) => Reply::ok(json!({ "id": id, "deleted": true })),
        None => not_found("run", &id),
    }
}

/// `getRuns`: filtered by `dataset_id`, `run_ids`, `name`, `status` and
/// `dateRange` (`{"$gte", "$lte"}` on `created_at`), sorted by `sort_by`
/// and `sort_order`, one page of `limit` (default 20).
pub(super) fn get_runs(state: &mut State, call: &Call<'_>) -> Reply {
    let q = &call.query;
    let all = state.store.runs.rows();
    let range = q.get("dateRange").filter(|r| r.is_object());
    let bound = |key: &str| range.and_then(|r| millis(&r[key]));
    let (from, to) = (bound("$gte"), bound("$lte"));
    let wanted: Option<Vec<String>> = q.get("run_ids").map(ids);
    let mut runs: Vec<&Value> = all
        .iter()
        .filter(|run| {
            let created = millis(&run["created_at"]).unwrap_or(0.0);
            ["dataset_id", "name", "status"]
                .iter()
                .all(|field| q.get(*field).is_none_or(|v| run[*field] == *v))
                && wanted
                    .as_ref()
                    .is_none_or(|w| w.iter().any(|id| run["run_id"] == **id))
                && from.is_none_or(|f| created >= f)
                && to.is_none_or(|t| created <= t)
        })
        .collect();
    let by = q
        .get("sort_by")
        .and_then(Value::as_str)
        .unwrap_or("created_at");
    runs.sort_by(|a, b| text_order(&a[by], &b[by]));
    if q.get("sort_order").and_then(Value::as_str) != Some("asc") {
        runs.reverse();
    }
    let (page, limit) = paging(q.get("page"), q.get("limit"), 20);
    let total = runs.len() as u64;
    let pages = total.div_ceil(limit);
    let mut metrics: Vec<String> = Vec::new();
    for run in &runs {
        for name in run["metrics"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            if !metrics.contains(name) {
                metrics.push(name.clone());
            }
        }
    }
    let evaluations = one_page(runs, (page, limit));
    Reply::ok(json!({
        "evaluations": evaluations,
        "metrics": metrics,
        "pagination": {
            "page": page, "limit": limit, "total": total, "total_unfiltered": all.len(),
            "total_pages": pages, "has_next": page < pages, "has_prev": page > 1,
        },
    }))
}

fn text_order(a: &Value, b: &Value) -> Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// One metric value an event of a run's session carried.
struct Sample {
    name: String,
    event_name: String,
    event_type: String,
    value: f64,
    passed: bool,
}

/// A session linked to a run, with what was measured in it.
struct Outcome {
    session_id: String,
    /// The session's `metadata.datapoint_id` (the session id without one).
    datapoint: String,
    datapoint_id: Option<String>,
    samples: Vec<Sample>,
    passed: bool,
    /// The `(event_name, event_type)` of each of its events.
    events: Vec<(String, String)>,
}

/// The sessions linked to `run`: events of type `session` whose
/// `metadata.run_id` is the run's, or listed in its `session_ids` (by
/// session id) or `event_ids` (by event id), that
/// pass `filters`; each with the metrics of its events (the session's
/// own included) judged against the run's `passing_ranges`.
fn outcomes(state: &State, run: &Value, filters: &[Filter]) -> Vec<Outcome> {
    let run_id = run["run_id"].as_str().unwrap_or_default();
    let listed = ids(&run["session_ids"]);
    let events_listed = ids(&run["event_ids"]);
    let events = state.store.events.rows();
    let mut by_session: HashMap<&str, Vec<&Value>> = HashMap::new();
    for event in events {
        if let Some(session) = event["session_id"].as_str() {
            by_session.entry(session).or_default().push(event);
        }
    }
    let ranges = &run["passing_ranges"];
    events
        .iter()
        .filter(|e| e["event_type"] == "session")
        .filter(|e| {
            e["metadata"]["run_id"] == run_id
                || listed.iter().any(|s| e["session_id"] == **s)
                || events_listed.iter().any(|id| e["event_id"] == **id)
        })
        .filter(|e| Filter::pass_all(filters, e))
        .map(|session| {
            let session_id = session["session_id"].as_str().unwrap_or_default();
            let datapoint_id = session["metadata"]["datapoint_id"]
                .as_str()
                .map(str::to_owned);
            let mine = by_session.get(session_id).cloned().unwrap_or_default();
            let mut samples = Vec::new();
            for event in &mine {
                let name = |field: &str, or: &str| event[field].as_str().unwrap_or(or).to_owned();
                for (metric, value) in event["metrics"].as_object().into_iter().flatten() {
                    let (value, passed) = match value {
                        Value::Bool(b) => (f64::from(u8::from(*b)), *b),
                        other => match other.as_f64() {
                            Some(v) => (v, in_range(&ranges[metric], v)),
                            None => continue,
                        },
                    };
                    samples.push(Sample {
                        name: metric.clone(),
                        event_name: name("event_name", "unknown"),
                        event_type: name("event_type", "tool"),
                        value,
                        passed,
                    });
                }
            }
            let errored = mine.iter().any(|e| e["error"].is_string());
            Outcome {
                session_id: session_id.to_owned(),
                datapoint: datapoint_id
                    .clone()
                    .unwrap_or_else(|| session_id.to_owned()),
                datapoint_id,
                passed: !errored && samples.iter().all(|s| s.passed),
                events: mine
                    .iter()
                    .map(|e| {
                        (
                            e["event_name"].as_str().unwrap_or("unknown").to_owned(),
                            e["event_type"].as_str().unwrap_or("tool").to_owned(),
                        )
                    })
                    .collect(),
                samples,
            }
        })
        .collect()
}

/// Whether `value` is inside a `{min, max}` passing range (each bound
/// optional; no range: inside).
fn in_range(range: &Value, value: f64) -> bool {
    range["min"].as_f64().is_none_or(|min| value >= min)
        && range["max"].as_f64().is_none_or(|max| value <= max)
}

/// `values` aggregated by `function`: `average`, `sum`, `min`, `max`,
/// `count`, `median`, `p90`, `p95`, `p99` (nearest rank). `None` for no
/// values (or an unknown function).
pub(super) fn aggregate(function: &str, values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return (function == "count").then_some(0.0);
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
    let rank = |p: f64| {
        let at = (p / 100.0 * sorted.len() as f64).ceil() as usize;
        sorted[at.clamp(1, sorted.len()) - 1]
    };
    let sum: f64 = values.iter().sum();
    Some(match function {
        "average" => sum / values.len() as f64,
        "sum" => sum,
        "min" => sorted[0],
        "max" => sorted[sorted.len() - 1],
        "count" => values.len() as f64,
        "median" => {
            let n = sorted.len();
            if n % 2 == 1 {
                sorted[n / 2]
            } else {
                (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
            }
        }
        "p90" => rank(90.0),
        "p95" => rank(95.0),
        "p99" => rank(99.0),
        _ => return None,
    })
}

/// The aggregate function a call asks for (`average` by default).
fn function(call: &Call<'_>) -> String {
    call.query
        .get("aggregate_function")
        .and_then(Value::as_str)
        .unwrap_or("average")
        .to_owned()
}

/// The `filters` of a call's query: a list of filters, or one.
fn filters(call: &Call<'_>, name: &str) -> Vec<Filter> {
    Filter::all(call.query.get(name))
}

/// The type of the stored metric named `name`, when it is one the
/// summary's schema allows.
fn metric_type(state: &State, name: &str) -> Option<Value> {
    const TYPES: &[&str] = &["COMPOSITE", "PYTHON", "LLM", "HUMAN", "CLIENT_SIDE"];
    state
        .store
        .resources(Kind::Metric)
        .iter()
        .find(|m| m["name"] == name)
        .map(|m| m["type"].clone())
        .filter(|t| t.as_str().is_some_and(|t| TYPES.contains(&t)))
}

/// The summary of `run`, as `getExperimentSummary` answers it.
fn summary(state: &State, run: &Value, function: &str, filters: &[Filter]) -> Value {
    let outcomes = outcomes(state, run, filters);
    let list = |passed: bool| -> Vec<&str> {
        outcomes
            .iter()
            .filter(|o| o.passed == passed)
            .map(|o| o.datapoint.as_str())
            .collect()
    };
    let mut details: Vec<Value> = Vec::new();
    let mut keys: Vec<(&str, &str, &str)> = Vec::new();
    for sample in outcomes.iter().flat_map(|o| &o.samples) {
        let key = (
            sample.name.as_str(),
            sample.event_name.as_str(),
            sample.event_type.as_str(),
        );
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    for (name, event_name, event_type) in keys {
        let mut values = Vec::new();
        let (mut passed, mut failed) = (Vec::new(), Vec::new());
        for outcome in &outcomes {
            for s in outcome.samples.iter().filter(|s| {
                s.name == name && s.event_name == event_name && s.event_type == event_type
            }) {
                values.push(s.value);
                let side = if s.passed { &mut passed } else { &mut failed };
                if !side.contains(&outcome.datapoint) {
                    side.push(outcome.datapoint.clone());
                }
            }
        }
        let mut detail = json!({
            "metric_name": name, "event_name": event_name, "event_type": event_type,
            "values": values, "datapoints": { "passed": passed, "failed": failed },
        });
        if let Some(value) = aggregate(function, &values) {
            detail["aggregate"] = json!(value);
        }
        let range = &run["passing_ranges"][name];
        if range.is_object() {
            detail["passing_range"] = range.clone();
        }
        if let Some(kind) = metric_type(state, name) {
            detail["metric_type"] = kind;
        }
        details.push(detail);
    }
    let datapoints: Vec<Value> = outcomes
        .iter()
        .map(|o| {
            let metrics: Vec<Value> = o
                .samples
                .iter()
                .map(|s| {
                    json!({
                        "name": s.name, "event_name": s.event_name, "event_type": s.event_type,
                        "value": s.value, "passed": s.passed,
                    })
                })
                .collect();
            json!({
                "session_id": o.session_id, "datapoint_id": o.datapoint_id,
                "passed": o.passed, "metrics": metrics,
            })
        })
        .collect();
    let mut event_details: Vec<Value> = Vec::new();
    for (name, kind) in outcomes.iter().flat_map(|o| &o.events) {
        let detail = json!({ "event_name": name, "event_type": kind });
        if !event_details.contains(&detail) {
            event_details.push(detail);
        }
    }
    json!({
        "status": run["status"].as_str().unwrap_or("pending"),
        "success": true,
        "passed": list(true),
        "failed": list(false),
        "metrics": { "aggregation_function": function, "details": details },
        "datapoints": datapoints,
        "event_details": event_details,
        "run_object": run,
    })
}

/// `getExperimentSummary` and `getExperimentResultLegacy`.
pub(super) fn get_summary(state: &mut State, call: &Call<'_>) -> Reply {
    let id = call.param(0);
    let Some(run) = state.store.runs.get(&id) else {
        return not_found("run", &id);
    };
    Reply::ok(summary(
        state,
        run,
        &function(call),
        &filters(call, "filters"),
    ))
}

/// `getExperimentComparison` and `getExperimentComparisonLegacy`: the two
/// summaries side by side.
pub(super) fn compare(state: &mut State, call: &Call<'_>) -> Reply {
    let (new, old) = match two_runs(state, call) {
        Ok(runs) => runs,
        Err(reply) => return reply,
    };
    let function = function(call);
    let filters = filters(call, "filters");
    let (new_sum, old_sum) = (
        summary(state, new, &function, &filters),
        summary(state, old, &function, &filters),
    );
    let (new_points, old_points) = (datapoints_of(state, new), datapoints_of(state, old));
    let common: Vec<&String> = new_points
        .iter()
        .filter(|d| old_points.contains(d))
        .collect();
    // A metric's aggregate over every event type it was measured on.
    let values = |summary: &Value, name: &str| -> Vec<f64> {
        summary["metrics"]["details"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["metric_name"] == name)
            .flat_map(|d| d["values"].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v.as_f64())
            .collect()
    };
    let mut names: Vec<String> = Vec::new();
    for summary in [&new_sum, &old_sum] {
        for detail in summary["metrics"]["details"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let name = detail["metric_name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let metrics: Vec<Value> = names
        .iter()
        .map(|name| {
            let mut row = json!({ "metric_name": name });
            let new_value = aggregate(&function, &values(&new_sum, name));
            let old_value = aggregate(&function, &values(&old_sum, name));
            if let Some(v) = new_value {
                row["new_aggregate"] = json!(v);
            }
            if let Some(v) = old_value {
                row["old_aggregate"] = json!(v);
            }
            if let (Some(n), Some(o)) = (new_value, old_value) {
                row["difference"] = json!(n - o);
                if o != 0.0 {
                    row["percentage_change"] = json!((n - o) / o.abs() * 100.0);
                }
            }
            if let Some(kind) = metric_type(state, name) {
                row["metric_type"] = kind;
            }
            row
        })
        .collect();
    let seen = |summary: &Value| -> Vec<Value> {
        summary["event_details"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let (in_new, in_old) = (seen(&new_sum), seen(&old_sum));
    let mut event_details: Vec<Value> = Vec::new();
    for detail in in_new.iter().chain(&in_old) {
        let presence = match (in_new.contains(detail), in_old.contains(detail)) {
            (true, true) => "both",
            (true, false) => "new",
            _ => "old",
        };
        let mut row = detail.clone();
        row["presence"] = json!(presence);
        if !event_details.contains(&row) {
            event_details.push(row);
        }
    }
    Reply::ok(json!({
        "metrics": metrics,
        "commonDatapoints": common,
        "event_details": event_details,
        "new_run": new,
        "old_run": old,
    }))
}

/// The runs of a comparison: the path's two, or the legacy query's
/// `run_id_1` (new) and `run_id_2` (old).
fn two_runs<'s>(state: &'s State, call: &Call<'_>) -> Result<(&'s Value, &'s Value), Reply> {
    let (new, old) = match call.operation {
        "getExperimentCompareEventsLegacy" => {
            (call.query_text("run_id_1"), call.query_text("run_id_2"))
        }
        _ => (call.param(0), call.param(1)),
    };
    let find = |id: &str| state.store.runs.get(id).ok_or_else(|| not_found("run", id));
    Ok((find(&new)?, find(&old)?))
}

/// The datapoint ids of a run's sessions.
fn datapoints_of(state: &State, run: &Value) -> Vec<String> {
    outcomes(state, run, &[])
        .into_iter()
        .filter_map(|o| o.datapoint_id)
        .collect()
}

/// `getExperimentCompareEvents` and `getExperimentCompareEventsLegacy`:
/// for each datapoint both runs have, the new run's event and the old
/// run's of the same name and type (the session events, without
/// `event_name` or `event_type`), paged by `page` and `limit`.
pub(super) fn compare_events(state: &mut State, call: &Call<'_>) -> Reply {
    let (new, old) = match two_runs(state, call) {
        Ok(runs) => runs,
        Err(reply) => return reply,
    };
    let events = state.store.events.rows();
    let (new_outcomes, old_outcomes) = (outcomes(state, new, &[]), outcomes(state, old, &[]));
    let session_of = |outcomes: &[Outcome], datapoint: &str| -> Option<String> {
        outcomes
            .iter()
            .find(|o| o.datapoint_id.as_deref() == Some(datapoint))
            .map(|o| o.session_id.clone())
    };
    let name = call.query.get("event_name");
    let kind = call.query.get("event_type");
    let filter = filters(call, "filter");
    let chosen = |e: &&Value| match (name, kind) {
        (None, None) => e["event_type"] == "session",
        _ => {
            name.is_none_or(|n| e["event_name"] == *n) && kind.is_none_or(|k| e["event_type"] == *k)
        }
    } && Filter::pass_all(&filter, e);
    let mut pairs = Vec::new();
    let datapoints = new_outcomes.iter().filter_map(|o| o.datapoint_id.clone());
    for datapoint in datapoints {
        let (Some(a), Some(b)) = (
            session_of(&new_outcomes, &datapoint),
            session_of(&old_outcomes, &datapoint),
        ) else {
            continue;
        };
        for first in events
            .iter()
            .filter(|e| e["session_id"] == *a)
            .filter(chosen)
        {
            let second = events.iter().find(|e| {
                e["session_id"] == *b
                    && e["event_name"] == first["event_name"]
                    && e["event_type"] == first["event_type"]
            });
            if let Some(second) = second {
                pairs.push(json!({
                    "datapoint_id": datapoint, "event_1": first, "event_2": second,
                }));
            }
        }
    }
    let total = pairs.len();
    let q = &call.query;
    let page = one_page(pairs, paging(q.get("page"), q.get("limit"), 1000));
    Reply::ok(json!({ "events": page, "totalEvents": total }))
}

/// `getExperimentRunMetrics`: each event of the run's sessions that has
/// metrics (numbers and booleans), with its session and datapoint.
pub(super) fn run_metrics(state: &mut State, call: &Call<'_>) -> Reply {
    let id = call.param(0);
    let Some(run) = state.store.runs.get(&id) else {
        return not_found("run", &id);
    };
    let filters = filters(call, "filters");
    let outcomes = outcomes(state, run, &[]);
    let events: Vec<Value> = state
        .store
        .events
        .rows()
        .iter()
        .filter_map(|e| {
            let outcome = outcomes.iter().find(|o| e["session_id"] == *o.session_id)?;
            let metrics: serde_json::Map<String, Value> = e["metrics"]
                .as_object()?
                .iter()
                .filter(|(_, v)| v.is_number() || v.is_boolean())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if metrics.is_empty() || !Filter::pass_all(&filters, e) {
                return None;
            }
            let mut metadata = json!({});
            if let Some(datapoint) = &outcome.datapoint_id {
                metadata["datapoint_id"] = json!(datapoint);
            }
            Some(json!({
                "event_name": e["event_name"].as_str().unwrap_or("unknown"),
                "event_type": e["event_type"].as_str().unwrap_or("tool"),
                "session_id": outcome.session_id,
                "metadata": metadata,
                "metrics": metrics,
            }))
        })
        .collect();
    Reply::ok(json!({ "totalEvents": events.len(), "events": events }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_follow_the_function() {
        let values = [4.0, 1.0, 3.0, 2.0];
        let f = |name| aggregate(name, &values);
        assert_eq!(f("average"), Some(2.5));
        assert_eq!(f("sum"), Some(10.0));
        assert_eq!(f("min"), Some(1.0));
        assert_eq!(f("max"), Some(4.0));
        assert_eq!(f("count"), Some(4.0));
        assert_eq!(f("median"), Some(2.5));
        assert_eq!(f("p90"), Some(4.0));
        assert_eq!(aggregate("median", &[3.0, 1.0, 2.0]), Some(2.0));
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(aggregate("p95", &hundred), Some(95.0));
        assert_eq!(aggregate("p99", &hundred), Some(99.0));
        assert_eq!(aggregate("average", &[]), None);
        assert_eq!(aggregate("count", &[]), Some(0.0));
        assert_eq!(f("mode"), None);
    }

    #[test]
    fn a_passing_range_bounds_either_side() {
        assert!(in_range(&json!({"min": 0.5}), 0.7));
        assert!(!in_range(&json!({"min": 0.5}), 0.2));
        assert!(!in_range(&json!({"min": 0, "max": 1}), 1.5));
        assert!(in_range(&Value::Null, -3.0));
    }
}
