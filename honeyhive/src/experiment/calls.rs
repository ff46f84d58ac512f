//! The run's requests, through the generated client (`client.raw()`): the
//! one place that knows the operations.
//!
//! Answers are read as JSON and only the fields the run needs are taken:
//! the generated types of answers that hold a run object do not decode
//! HoneyHive's `created_at` (an `anyOf` of strings in the spec), so a
//! typed decode would refuse answers that are fine.

use std::future::Future;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::api::ResponseValue;
use crate::{Client, Error, api};

/// Datapoint ids asked for per `GET /v1/datapoints` (the query string
/// stays short).
const IDS_PER_READ: usize = 100;

/// The answer of a generated call as JSON, whether or not its generated
/// type could decode it.
async fn answer<T: Serialize, E>(
    call: impl Future<Output = Result<ResponseValue<T>, api::Error<E>>>,
) -> Result<Value, Error> {
    match call.await {
        Ok(answer) => serde_json::to_value(answer.into_inner()).map_err(|e| Error::Decode {
            status: 200,
            problem: e.to_string(),
            body: String::new(),
            attempts: 1,
            source: Some(e),
            url: None,
        }),
        Err(api::Error::InvalidResponsePayload(bytes, source)) => serde_json::from_slice(&bytes)
            .map_err(|_| Error::from(api::Error::<E>::InvalidResponsePayload(bytes, source))),
        Err(e) => Err(Error::from(e)),
    }
}

/// A request body from JSON: the generated types check what they must.
fn body<T: serde::de::DeserializeOwned>(json: Value) -> Result<T, Error> {
    serde_json::from_value(json).map_err(|e| Error::invalid("run", e.to_string()))
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// What the run needs of an existing run.
pub(super) struct RunInfo {
    pub(super) dataset_id: Option<String>,
    pub(super) metadata: Map<String, Value>,
}

/// One datapoint's session in a run's summary.
pub(super) struct Recorded {
    pub(super) datapoint_id: Option<String>,
    pub(super) session_id: String,
    pub(super) passed: bool,
}

/// `POST /v1/runs`. Whether it was created: `false` when the API answered
/// 409 (a run with this id exists: another shard made it).
pub(super) async fn create_run(client: &Client, json: Value) -> Result<bool, Error> {
    let run: api::types::PostExperimentRunRequest = body(json)?;
    match answer(client.raw().create_run().body(run).send()).await {
        Ok(_) => Ok(true),
        Err(e) if e.status() == Some(reqwest::StatusCode::CONFLICT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `GET /v1/runs/{run_id}`; `None` when the API answers 404.
pub(super) async fn get_run(client: &Client, run_id: &str) -> Result<Option<RunInfo>, Error> {
    match answer(client.raw().get_run().run_id(run_id).send()).await {
        Ok(read) => {
            let run = read.get("evaluation").unwrap_or(&read);
            Ok(Some(RunInfo {
                dataset_id: text(run, "dataset_id"),
                metadata: run
                    .get("metadata")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
            }))
        }
        Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `PUT /v1/runs/{run_id}`.
pub(super) async fn update_run(client: &Client, run_id: &str, json: Value) -> Result<(), Error> {
    let update: api::types::PutExperimentRunRequest = body(json)?;
    answer(client.raw().update_run().run_id(run_id).body(update).send())
        .await
        .map(drop)
}

/// `GET /v1/runs/{run_id}/summary`: the answer, and its datapoints.
pub(super) async fn summary(
    client: &Client,
    run_id: &str,
) -> Result<(Value, Vec<Recorded>), Error> {
    let read = answer(client.raw().get_experiment_summary().run_id(run_id).send()).await?;
    let recorded = read
        .get("datapoints")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|d| Recorded {
                    datapoint_id: text(d, "datapoint_id"),
                    session_id: text(d, "session_id").unwrap_or_default(),
                    passed: d.get("passed").and_then(Value::as_bool).unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((read, recorded))
}

/// `GET /v1/runs/{new}/compare/{old}`: per metric, `(name, old, new)`;
/// and the datapoints both runs have.
pub(super) async fn compare(
    client: &Client,
    new: &str,
    old: &str,
) -> Result<(Vec<(String, Option<f64>, Option<f64>)>, Vec<String>), Error> {
    let read = answer(
        client
            .raw()
            .get_experiment_comparison()
            .new_run_id(new)
            .old_run_id(old)
            .send(),
    )
    .await?;
    let metrics = read
        .get("metrics")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|m| {
                    Some((
                        text(m, "metric_name")?,
                        m.get("old_aggregate").and_then(Value::as_f64),
                        m.get("new_aggregate").and_then(Value::as_f64),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let common = read
        .get("commonDatapoints")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok((metrics, common))
}

/// The datapoints of the hosted dataset `dataset_id`, in the dataset's
/// order: `GET /v1/datasets?dataset_id=…`, then `GET /v1/datapoints` by
/// ids, a hundred at a time.
pub(super) async fn dataset(
    client: &Client,
    dataset_id: &str,
) -> Result<Vec<api::types::Datapoint>, Error> {
    let datasets = client
        .call(client.raw().get_datasets().dataset_id(dataset_id).send())
        .await?
        .datasets;
    let Some(dataset) = datasets.into_iter().find(|d| *d.id == dataset_id) else {
        return Err(Error::invalid(
            "dataset",
            format!(
                "{dataset_id:?} names no dataset of this project (the API listed none with \
                 it); check the id"
            ),
        ));
    };
    let ids: Vec<String> = dataset.datapoints.iter().map(|id| id.to_string()).collect();
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_READ) {
        let read = client
            .call(
                client
                    .raw()
                    .get_datapoints()
                    .datapoint_ids(chunk.to_vec())
                    .send(),
            )
            .await?;
        found.extend(read.datapoints);
    }
    // The dataset's order, whatever order the answers came in.
    let mut ordered = Vec::with_capacity(ids.len());
    for id in &ids {
        if let Some(at) = found.iter().position(|d| *d.id == *id) {
            ordered.push(found.swap_remove(at));
        }
    }
    Ok(ordered)
}
