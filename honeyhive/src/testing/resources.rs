//! Metrics, configurations, annotation queues and charts: one generic
//! create / list / get / update / delete over a table each, the answers
//! shaped as the spec has them; and metric versions.

use serde_json::{Value, json};

use super::State;
use super::call::{Call, Reply, not_found};
use super::store::{Kind, merge, merge_all, new_id, now_iso};

/// What a generic operation does to its resource's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Action {
    List,
    Create,
    Get,
    Update,
    Delete,
}

use Action::{Create, Delete, Get, List, Update};
use Kind::{Chart, Configuration, Metric, Queue};

/// The operations answered generically.
const OPERATIONS: &[(&str, Kind, Action)] = &[
    ("getMetrics", Metric, List),
    ("createMetric", Metric, Create),
    ("updateMetric", Metric, Update),
    ("updateMetricLegacy", Metric, Update),
    ("deleteMetric", Metric, Delete),
    ("deleteMetricLegacy", Metric, Delete),
    ("getConfigurations", Configuration, List),
    ("createConfiguration", Configuration, Create),
    ("updateConfiguration", Configuration, Update),
    ("deleteConfiguration", Configuration, Delete),
    ("getQueues", Queue, List),
    ("createQueue", Queue, Create),
    ("getQueue", Queue, Get),
    ("updateQueue", Queue, Update),
    ("deleteQueue", Queue, Delete),
    ("getCharts", Chart, List),
    ("createChart", Chart, Create),
    ("getChart", Chart, Get),
    ("updateChart", Chart, Update),
    ("deleteChart", Chart, Delete),
];

/// The resource and action of a generic operation.
pub(super) fn generic(operation: &str) -> Option<(Kind, Action)> {
    OPERATIONS
        .iter()
        .find(|(id, _, _)| *id == operation)
        .map(|(_, kind, action)| (*kind, *action))
}

/// The resource's name in a 404.
fn what(kind: Kind) -> &'static str {
    match kind {
        Metric => "metric",
        Configuration => "configuration",
        Queue => "queue",
        Chart => "chart",
    }
}

/// The fields every row of the resource has (the answers' schemas require
/// them) before the body's are laid over.
fn defaults(kind: Kind) -> Value {
    let scope = json!({"scope_id": "mock-project", "scope_type": "project", "is_active": true});
    let mut row = match kind {
        Metric => metric_defaults(),
        Configuration => json!({"type": "LLM", "env": [], "tags": []}),
        Queue => json!({
            "description": "", "enabled": true, "filters": {"filterArray": []}, "event_ids": [],
        }),
        Chart => json!({
            "description": null, "func": null, "groupBy": null, "bucketing": "day",
            "dateRange": null, "query": [], "owner_id": null, "is_active": true,
        }),
    };
    if kind == Queue {
        merge_all(&mut row, &scope);
    }
    row
}

/// What a metric (and a metric version's content) has when the body does
/// not say.
fn metric_defaults() -> Value {
    json!({
        "description": "", "return_type": "float", "enabled_in_prod": false,
        "needs_ground_truth": false, "sampling_percentage": 10, "filters": {"filterArray": []},
    })
}

/// The id a call names: in the path, or the body's `id`, or the query's
/// `metric_id` (the deprecated metric routes).
fn id_of(call: &Call<'_>) -> String {
    if !call.params.is_empty() {
        return call.param(0);
    }
    match call.body["id"].as_str() {
        Some(id) => id.to_owned(),
        None => call.query_text("metric_id"),
    }
}

/// Whether a row passes a list's query (`type`, `id`; `name`, `env`,
/// `tags`; `enabled`).
fn listed(row: &Value, query: &serde_json::Map<String, Value>) -> bool {
    query.iter().all(|(name, wanted)| match &row[name] {
        Value::Array(items) => wanted
            .as_str()
            .unwrap_or_default()
            .split(',')
            .all(|w| items.iter().any(|i| i == w)),
        value => value == wanted,
    })
}

/// A generic operation's answer.
pub(super) fn answer(state: &mut State, call: &Call<'_>, kind: Kind, action: Action) -> Reply {
    let table = state.store.table(kind);
    let now = now_iso();
    let row = match action {
        List => {
            let rows: Vec<&Value> = table
                .rows()
                .iter()
                .filter(|row| listed(row, &call.query))
                .collect();
            return Reply::ok(match kind {
                Metric => json!({ "metrics": rows }),
                Configuration => json!({ "configurations": rows }),
                Queue => json!({ "queues": rows }),
                Chart => json!({ "success": true, "data": rows }),
            });
        }
        Create => {
            let mut row = defaults(kind);
            merge_all(&mut row, &call.body);
            merge(
                &mut row,
                &json!({"id": new_id(), "created_at": now, "updated_at": now}),
                &["id", "created_at", "updated_at"],
            );
            table.put(row.clone());
            row
        }
        Get | Update | Delete => {
            let id = id_of(call);
            let Some(row) = table.get_mut(&id) else {
                return not_found(what(kind), &id);
            };
            if action == Update {
                update(row, &call.body);
                row["updated_at"] = Value::String(now);
            }
            let row = row.clone();
            if action == Delete {
                table.remove(&id);
                if kind == Metric {
                    state.store.versions.remove(&id);
                }
            }
            row
        }
    };
    let id = row["id"].clone();
    let queue = |message: &str| json!({ "queue": row, "message": message });
    match (kind, action) {
        (Metric, Create) => Reply::ok(json!({ "inserted": true, "metric_id": id })),
        (Metric, Update) => Reply::ok(json!({ "updated": true })),
        (Metric, _) => Reply::ok(json!({ "deleted": true })),
        (Configuration, Create) => Reply::ok(json!({ "acknowledged": true, "insertedId": id })),
        (Configuration, Update) => Reply::ok(json!({
            "acknowledged": true, "modifiedCount": 1, "matchedCount": 1,
            "upsertedCount": 0, "upsertedId": id,
        })),
        (Configuration, _) => Reply::ok(json!({ "acknowledged": true, "deletedCount": 1 })),
        (Queue, Create) => Reply::Json(201, queue("queue created")),
        (Queue, Update) => Reply::ok(queue("queue updated")),
        (Queue, Delete) => Reply::ok(json!({ "message": "queue deleted" })),
        (Queue, _) => Reply::ok(row),
        (Chart, Delete) => Reply::ok(json!({ "success": true, "message": "chart deleted" })),
        (Chart, _) => Reply::ok(json!({ "success": true, "data": row })),
    }
}

/// A row updated from a body: its fields replaced (the id kept); a
/// queue's `add_event_ids` and `remove_event_ids` applied to its
/// `event_ids`.
fn update(row: &mut Value, body: &Value) {
    let mut changes = body.clone();
    let Some(fields) = changes.as_object_mut() else {
        return;
    };
    fields.remove("id");
    let add = fields.remove("add_event_ids");
    let remove = fields.remove("remove_event_ids");
    merge_all(row, &changes);
    // Only a queue's body has these, and every queue has `event_ids`.
    let Some(list) = row.get_mut("event_ids").and_then(Value::as_array_mut) else {
        return;
    };
    for id in add.as_ref().and_then(Value::as_array).into_iter().flatten() {
        if !list.contains(id) {
            list.push(id.clone());
        }
    }
    if let Some(Value::Array(remove)) = remove {
        list.retain(|id| !remove.contains(id));
    }
}

/// `getMetricVersions`.
pub(super) fn versions(state: &mut State, call: &Call<'_>) -> Reply {
    let metric = call.param(0);
    if state.store.table(Metric).get(&metric).is_none() {
        return not_found("metric", &metric);
    }
    let versions = state
        .store
        .versions
        .get(&metric)
        .cloned()
        .unwrap_or_default();
    Reply::ok(json!({ "success": true, "data": versions }))
}

/// `createMetricVersion`: a version `v1`, `v2`... whose content is the
/// metric as it stands with the body's `content` laid over it, deployed
/// at once with `deploy_immediately`.
pub(super) fn create_version(state: &mut State, call: &Call<'_>) -> Reply {
    let metric = call.param(0);
    let Some(row) = state.store.table(Metric).get(&metric) else {
        return not_found("metric", &metric);
    };
    let mut content = row.clone();
    if let Some(fields) = content.as_object_mut() {
        // The content's schema has the definition only.
        for field in ["id", "created_at", "updated_at"] {
            fields.remove(field);
        }
    }
    merge_all(&mut content, &call.body["content"]);
    let list = state.store.versions.entry(metric.clone()).or_default();
    let name = format!("v{}", list.len() + 1);
    list.push(json!({
        "name": name,
        "full_sha": format!("{}{}", uuid::Uuid::new_v4().simple(), &uuid::Uuid::new_v4().simple().to_string()[..8]),
        "message": call.body["message"],
        "date": now_iso(),
        "deployed": false,
        "content": content,
    }));
    if call.body["deploy_immediately"] == true {
        deploy(state, &metric, &name);
    }
    let version = state.store.versions[&metric]
        .iter()
        .find(|v| v["name"] == name.as_str())
        .cloned()
        .unwrap_or_default();
    Reply::ok(json!({ "success": true, "data": version }))
}

/// `deployMetricVersion`: the version deployed (the others not), its
/// content the metric's.
pub(super) fn deploy_version(state: &mut State, call: &Call<'_>) -> Reply {
    let (metric, name) = (call.param(0), call.param(1));
    if state.store.table(Metric).get(&metric).is_none() {
        return not_found("metric", &metric);
    }
    match deploy(state, &metric, &name) {
        Some(version) => Reply::ok(json!({ "success": true, "data": version })),
        None => not_found("metric version", &name),
    }
}

fn deploy(state: &mut State, metric: &str, name: &str) -> Option<Value> {
    let list = state.store.versions.get_mut(metric)?;
    if !list.iter().any(|v| v["name"] == name) {
        return None;
    }
    for version in list.iter_mut() {
        version["deployed"] = json!(version["name"] == name);
    }
    let version = list.iter().find(|v| v["name"] == name).cloned()?;
    if let Some(row) = state.store.table(Metric).get_mut(metric) {
        merge_all(row, &version["content"]);
        row["updated_at"] = Value::String(now_iso());
    }
    Some(version)
}

/// `runMetric` and `runMetricLegacy`: a placeholder, for the mock runs no
/// metric: `{"success": true, "loading": false, "result": null, ...}`.
pub(super) fn run_metric(_: &mut State, _: &Call<'_>) -> Reply {
    Reply::ok(json!({
        "success": true, "loading": false, "result": null,
        "explanation": "the mock does not run metrics",
    }))
}
