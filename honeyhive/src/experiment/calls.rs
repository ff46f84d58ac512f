//! The run's requests, through the generated client (`client.raw()`): the
//! one place that knows the operations and turns their failures into
//! [`Error`]s.

use serde::Serialize;
use serde_json::Value;

use crate::api::types::{
    Datapoint as ApiDatapoint, ExperimentRunObject, GetExperimentRunCompareResponse,
    GetExperimentRunResultResponse,
};
use crate::{Client, Error, api};

/// Datapoint ids asked for per `GET /v1/datapoints` (the query string
/// stays short).
const IDS_PER_READ: usize = 100;

/// A generated call's failure as the crate's [`Error`].
async fn error<E: Serialize>(client: &Client, operation: &str, e: api::Error<E>) -> Error {
    let host = url::Url::parse(client.base_url())
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
        .unwrap_or_default();
    let answered = |status: u16, body: String| match status {
        401 | 403 => Error::Unauthorized {
            status,
            body,
            attempts: 1,
        },
        429 => Error::RateLimited {
            body,
            retry_after: None,
            attempts: 1,
        },
        _ => Error::Api {
            status,
            body: format!("{operation}: {body}"),
            attempts: 1,
        },
    };
    match e {
        api::Error::InvalidRequest(problem) => Error::invalid(operation, problem),
        api::Error::ErrorResponse(answer) => {
            let status = answer.status().as_u16();
            let body = serde_json::to_string(answer.as_ref()).unwrap_or_default();
            answered(status, body)
        }
        api::Error::UnexpectedResponse(response) => {
            let status = response.status().as_u16();
            let mut body = response.text().await.unwrap_or_default();
            body.truncate(crate::status::MAX_ANSWER_BYTES.min(512));
            answered(status, body)
        }
        api::Error::InvalidResponsePayload(bytes, source) => Error::Decode {
            status: 200,
            problem: format!("{operation}'s answer is not the documented JSON: {source}"),
            body: String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned(),
            attempts: 1,
            source: Some(source),
        },
        api::Error::CommunicationError(source)
        | api::Error::ResponseBodyError(source)
        | api::Error::InvalidUpgrade(source) => Error::Transport {
            host,
            problem: format!("{operation} failed"),
            attempts: 1,
            source: Some(Box::new(source.without_url())),
        },
        api::Error::Custom(problem) => Error::Transport {
            host,
            problem: format!("{operation}: {problem}"),
            attempts: 1,
            source: None,
        },
    }
}

/// A request body from JSON: the generated types check what they must.
fn body<T: serde::de::DeserializeOwned>(what: &str, json: Value) -> Result<T, Error> {
    serde_json::from_value(json).map_err(|e| Error::invalid(what, e.to_string()))
}

/// `POST /v1/runs`. Whether it was created: `false` when the API answered
/// 409 (a run with this id exists: another shard made it).
pub(super) async fn create_run(client: &Client, json: Value) -> Result<bool, Error> {
    match client.raw().create_run().body(body::<api::types::PostExperimentRunRequest>("run", json)?).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.status() == Some(reqwest::StatusCode::CONFLICT) => Ok(false),
        Err(e) => Err(error(client, "createRun", e).await),
    }
}

/// `GET /v1/runs/{run_id}`; `None` when the API answers 404.
pub(super) async fn get_run(
    client: &Client,
    run_id: &str,
) -> Result<Option<ExperimentRunObject>, Error> {
    match client.raw().get_run().run_id(run_id).send().await {
        Ok(answer) => Ok(Some(answer.into_inner().evaluation)),
        Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => Ok(None),
        Err(e) => Err(error(client, "getRun", e).await),
    }
}

/// `PUT /v1/runs/{run_id}`.
pub(super) async fn update_run(client: &Client, run_id: &str, json: Value) -> Result<(), Error> {
    let update = body::<api::types::PutExperimentRunRequest>("run", json)?;
    match client.raw().update_run().run_id(run_id).body(update).send().await {
        Ok(_) => Ok(()),
        Err(e) => Err(error(client, "updateRun", e).await),
    }
}

/// `GET /v1/runs/{run_id}/summary`.
pub(super) async fn summary(
    client: &Client,
    run_id: &str,
) -> Result<GetExperimentRunResultResponse, Error> {
    match client.raw().get_experiment_summary().run_id(run_id).send().await {
        Ok(answer) => Ok(answer.into_inner()),
        Err(e) => Err(error(client, "getExperimentSummary", e).await),
    }
}

/// `GET /v1/runs/{new}/compare/{old}`.
pub(super) async fn compare(
    client: &Client,
    new: &str,
    old: &str,
) -> Result<GetExperimentRunCompareResponse, Error> {
    match client
        .raw()
        .get_experiment_comparison()
        .new_run_id(new)
        .old_run_id(old)
        .send()
        .await
    {
        Ok(answer) => Ok(answer.into_inner()),
        Err(e) => Err(error(client, "getExperimentComparison", e).await),
    }
}

/// The datapoints of the hosted dataset `dataset_id`, in the dataset's
/// order: `GET /v1/datasets?dataset_id=…`, then `GET /v1/datapoints` by
/// ids, a hundred at a time.
pub(super) async fn dataset(client: &Client, dataset_id: &str) -> Result<Vec<ApiDatapoint>, Error> {
    let datasets = match client.raw().get_datasets().dataset_id(dataset_id).send().await {
        Ok(answer) => answer.into_inner().datasets,
        Err(e) => return Err(error(client, "getDatasets", e).await),
    };
    let Some(dataset) = datasets.into_iter().find(|d| *d.id == dataset_id) else {
        return Err(Error::invalid(
            "dataset",
            format!("{dataset_id:?} names no dataset of this project; check the id (the API listed none with it)"),
        ));
    };
    let ids: Vec<String> = dataset.datapoints.iter().map(|id| id.to_string()).collect();
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_READ) {
        match client.raw().get_datapoints().datapoint_ids(chunk.to_vec()).send().await {
            Ok(answer) => found.extend(answer.into_inner().datapoints),
            Err(e) => return Err(error(client, "getDatapoints", e).await),
        }
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
