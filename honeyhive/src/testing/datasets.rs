//! Datasets and datapoints, and the links between them (a dataset's
//! `datapoints`, a datapoint's `linked_datasets`, kept in step).

use serde_json::{Map, Value, json};

use super::State;
use super::call::{Call, Reply, not_found};
use super::events::Filter;
use super::store::{merge, new_id, now_iso};

/// The fields of a datapoint that `createDatapoint` and `updateDatapoint`
/// set.
const DATAPOINT: &[&str] = &[
    "inputs",
    "ground_truth",
    "history",
    "metadata",
    "linked_event",
    "linked_datasets",
];

/// `createDataset`: `{name, description, datapoints}`.
pub(super) fn create_dataset(state: &mut State, call: &Call<'_>) -> Reply {
    let id = new_id();
    let now = now_iso();
    let mut dataset = json!({
        "id": id, "name": "Untitled Dataset", "datapoints": [],
        "created_at": now, "updated_at": now,
    });
    merge(
        &mut dataset,
        &call.body,
        &["name", "description", "datapoints"],
    );
    let datapoints = ids(&dataset["datapoints"]);
    state.store.datasets.put(dataset);
    for datapoint in datapoints {
        link(state, &id, &datapoint);
    }
    Reply::ok(json!({ "inserted": true, "result": { "insertedId": id } }))
}

/// `getDatasets`: every dataset, or those of `dataset_id` and `name`.
pub(super) fn get_datasets(state: &mut State, call: &Call<'_>) -> Reply {
    let wanted = |field: &str, dataset: &Value| {
        call.query
            .get(if field == "id" { "dataset_id" } else { field })
            .is_none_or(|v| dataset[field] == *v)
    };
    let datasets: Vec<&Value> = state
        .store
        .datasets
        .rows()
        .iter()
        .filter(|d| wanted("id", d) && wanted("name", d))
        .collect();
    Reply::ok(json!({ "datasets": datasets }))
}

/// `updateDataset` (the id in the path) and `updateDatasetLegacy` (in the
/// body): `name`, `description`, `datapoints` replaced.
pub(super) fn update_dataset(state: &mut State, call: &Call<'_>) -> Reply {
    let id = match call.operation {
        "updateDatasetLegacy" => call.body["dataset_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        _ => call.param(0),
    };
    let Some(dataset) = state.store.datasets.get_mut(&id) else {
        return not_found("dataset", &id);
    };
    let before = ids(&dataset["datapoints"]);
    merge(dataset, &call.body, &["name", "description", "datapoints"]);
    dataset["updated_at"] = Value::String(now_iso());
    let after = ids(&dataset["datapoints"]);
    let answer = dataset.clone();
    for gone in before.iter().filter(|d| !after.contains(d)) {
        unlink(state, &id, gone);
    }
    for added in after.iter().filter(|d| !before.contains(d)) {
        link(state, &id, added);
    }
    Reply::ok(json!({ "result": answer }))
}

/// `deleteDataset` (path) and `deleteDatasetLegacy` (`?dataset_id=`):
/// the dataset gone, and from its datapoints' `linked_datasets`.
pub(super) fn delete_dataset(state: &mut State, call: &Call<'_>) -> Reply {
    let id = match call.operation {
        "deleteDatasetLegacy" => call.query_text("dataset_id"),
        _ => call.param(0),
    };
    let Some(dataset) = state.store.datasets.remove(&id) else {
        return not_found("dataset", &id);
    };
    for datapoint in ids(&dataset["datapoints"]) {
        unlink(state, &id, &datapoint);
    }
    Reply::ok(json!({ "result": { "id": id } }))
}

/// `addDatapoints`: a datapoint per row of `data`, its `inputs`,
/// `ground_truth` and `history` the row's fields the `mapping` names for
/// each, `metadata` the row's other fields.
pub(super) fn add_datapoints(state: &mut State, call: &Call<'_>) -> Reply {
    let dataset = call.param(0);
    if state.store.datasets.get(&dataset).is_none() {
        return not_found("dataset", &dataset);
    }
    let mapping = &call.body["mapping"];
    let named = |part: &str| -> Vec<String> { ids(&mapping[part]) };
    let (inputs, truth, history) = (named("inputs"), named("ground_truth"), named("history"));
    let mut added = Vec::new();
    for row in call.body["data"].as_array().into_iter().flatten() {
        let pick = |fields: &[String]| -> Map<String, Value> {
            fields
                .iter()
                .filter_map(|f| row.get(f).map(|v| (f.clone(), v.clone())))
                .collect()
        };
        let metadata: Map<String, Value> = row
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| {
                ![&inputs, &truth, &history]
                    .iter()
                    .any(|part| part.contains(k))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let history: Vec<Value> = pick(&history)
            .into_values()
            .flat_map(|v| match v {
                Value::Array(items) => items,
                other => vec![other],
            })
            .filter(Value::is_object)
            .collect();
        let fields = json!({
            "inputs": pick(&inputs),
            "ground_truth": pick(&truth),
            "history": history,
            "metadata": metadata,
            "linked_datasets": [dataset],
        });
        added.push(put_datapoint(state, &fields));
    }
    Reply::ok(json!({ "inserted": true, "datapoint_ids": added }))
}

/// `removeDatapoint` and `removeDatapointLegacy`: the datapoint taken out
/// of the dataset (it stays, as HoneyHive keeps it).
pub(super) fn remove_datapoint(state: &mut State, call: &Call<'_>) -> Reply {
    let (dataset, datapoint) = (call.param(0), call.param(1));
    let Some(row) = state.store.datasets.get(&dataset) else {
        return not_found("dataset", &dataset);
    };
    if !ids(&row["datapoints"]).contains(&datapoint) {
        return not_found("datapoint in the dataset", &datapoint);
    }
    unlink(state, &dataset, &datapoint);
    Reply::ok(json!({
        "dereferenced": true,
        "message": format!("datapoint {datapoint} removed from dataset {dataset}"),
    }))
}

/// `createDatapoint`.
pub(super) fn create_datapoint(state: &mut State, call: &Call<'_>) -> Reply {
    let id = put_datapoint(state, &call.body);
    Reply::ok(json!({ "inserted": true, "result": { "insertedIds": [id] } }))
}

/// Keeps a new datapoint of `fields`, linked to its `linked_datasets`.
fn put_datapoint(state: &mut State, fields: &Value) -> String {
    let id = new_id();
    let now = now_iso();
    let mut datapoint = json!({
        "id": id, "inputs": {}, "history": [], "ground_truth": null, "metadata": null,
        "linked_event": null, "linked_datasets": [], "created_at": now, "updated_at": now,
    });
    merge(&mut datapoint, fields, DATAPOINT);
    let datasets = ids(&datapoint["linked_datasets"]);
    datapoint["linked_datasets"] = json!([]);
    state.store.datapoints.put(datapoint);
    for dataset in datasets {
        link(state, &dataset, &id);
    }
    id
}

/// `batchCreateDatapoints`: a datapoint from each stored event named in
/// `events`, or (with none named) each that passes `filters`, in
/// `dataset_id`: the event's `inputs` (only the fields `mapping.inputs`
/// names, when it names any), its `outputs` as `ground_truth`, linked to
/// the event.
pub(super) fn batch_create(state: &mut State, call: &Call<'_>) -> Reply {
    let body = &call.body;
    let named = ids(&body["events"]);
    let filters = Filter::all(body.get("filters"));
    let chosen: Vec<Value> = state
        .store
        .events
        .rows()
        .iter()
        .filter(|e| {
            if named.is_empty() {
                Filter::pass_all(&filters, e)
            } else {
                named.iter().any(|id| e["event_id"] == **id)
            }
        })
        .cloned()
        .collect();
    let inputs = ids(&body["mapping"]["inputs"]);
    let dataset = body["dataset_id"].as_str();
    let mut inserted = Vec::new();
    for event in chosen {
        let mut fields = json!({
            "inputs": event.get("inputs").cloned().unwrap_or_else(|| json!({})),
            "linked_event": event["event_id"],
            "linked_datasets": dataset.into_iter().collect::<Vec<_>>(),
        });
        if let Some(outputs) = event.get("outputs") {
            fields["ground_truth"] = outputs.clone();
        }
        if let Some(all) = fields["inputs"].as_object_mut()
            && !inputs.is_empty()
        {
            all.retain(|k, _| inputs.contains(k));
        }
        inserted.push(put_datapoint(state, &fields));
    }
    Reply::ok(json!({ "inserted": true, "insertedIds": inserted }))
}

/// `getDatapoints`: those of `datapoint_ids`, or of the datasets named
/// `dataset_name`, or every one.
pub(super) fn get_datapoints(state: &mut State, call: &Call<'_>) -> Reply {
    let store = &state.store;
    let wanted: Option<Vec<String>> = match (
        call.query.get("datapoint_ids"),
        call.query.get("dataset_name"),
    ) {
        (Some(listed), _) => Some(ids(listed)),
        (None, Some(name)) => Some(
            store
                .datasets
                .rows()
                .iter()
                .filter(|d| d["name"] == *name)
                .flat_map(|d| ids(&d["datapoints"]))
                .collect(),
        ),
        (None, None) => None,
    };
    let datapoints: Vec<&Value> = match wanted {
        Some(wanted) => wanted
            .iter()
            .filter_map(|id| store.datapoints.get(id))
            .collect(),
        None => store.datapoints.rows().iter().collect(),
    };
    Reply::ok(json!({ "datapoints": datapoints }))
}

/// `getDatapoint`: the datapoint, in a list of one as the spec has it.
pub(super) fn get_datapoint(state: &mut State, call: &Call<'_>) -> Reply {
    let id = call.param(0);
    match state.store.datapoints.get(&id) {
        Some(datapoint) => Reply::ok(json!({ "datapoint": [datapoint] })),
        None => not_found("datapoint", &id),
    }
}

/// `updateDatapoint`: the fields given replaced (`linked_datasets` kept
/// in step with the datasets).
pub(super) fn update_datapoint(state: &mut State, call: &Call<'_>) -> Reply {
    let id = call.param(0);
    let Some(datapoint) = state.store.datapoints.get_mut(&id) else {
        return not_found("datapoint", &id);
    };
    let before = ids(&datapoint["linked_datasets"]);
    merge(datapoint, &call.body, DATAPOINT);
    datapoint["updated_at"] = Value::String(now_iso());
    let after = ids(&datapoint["linked_datasets"]);
    datapoint["linked_datasets"] = json!(before);
    for gone in before.iter().filter(|d| !after.contains(d)) {
        unlink(state, gone, &id);
    }
    for added in after.iter().filter(|d| !before.contains(d)) {
        link(state, added, &id);
    }
    Reply::ok(json!({ "updated": true, "result": { "modifiedCount": 1 } }))
}

/// `deleteDatapoint`: gone, and from every dataset.
pub(super) fn delete_datapoint(state: &mut State, call: &Call<'_>) -> Reply {
    let id = call.param(0);
    let Some(datapoint) = state.store.datapoints.remove(&id) else {
        return not_found("datapoint", &id);
    };
    for dataset in ids(&datapoint["linked_datasets"]) {
        unlink(state, &dataset, &id);
    }
    Reply::ok(json!({ "deleted": true }))
}

/// The strings of a JSON list (or the one string).
pub(super) fn ids(list: &Value) -> Vec<String> {
    match list {
        Value::String(one) => vec![one.clone()],
        other => other
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
    }
}

/// Adds `item` to the list of strings at `list`, once.
fn add_to(list: &mut Value, item: &str) {
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(items) = list.as_array_mut()
        && !items.iter().any(|v| v == item)
    {
        items.push(Value::String(item.to_owned()));
    }
}

fn remove_from(list: &mut Value, item: &str) {
    if let Some(items) = list.as_array_mut() {
        items.retain(|v| v != item);
    }
}

/// The datapoint in the dataset, both sides.
fn link(state: &mut State, dataset: &str, datapoint: &str) {
    if let Some(row) = state.store.datasets.get_mut(dataset) {
        add_to(&mut row["datapoints"], datapoint);
    }
    if let Some(row) = state.store.datapoints.get_mut(datapoint) {
        add_to(&mut row["linked_datasets"], dataset);
    }
}

/// The datapoint out of the dataset, both sides.
fn unlink(state: &mut State, dataset: &str, datapoint: &str) {
    if let Some(row) = state.store.datasets.get_mut(dataset) {
        remove_from(&mut row["datapoints"], datapoint);
    }
    if let Some(row) = state.store.datapoints.get_mut(datapoint) {
        remove_from(&mut row["linked_datasets"], dataset);
    }
}
