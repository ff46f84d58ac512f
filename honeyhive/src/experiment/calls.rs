//! The run's requests, through the client's handles (`client.runs()`,
//! `datasets()`, `datapoints()`): the one place that knows them.

use crate::api::types::{
    Datapoint as ApiDatapoint, ExperimentRunObject, GetExperimentRunCompareResponse,
    GetExperimentRunResultResponse,
};
use crate::{
    client::Client, error::Error, resources::Aggregate, resources::NewRun, resources::RunUpdate,
};

/// Datapoint ids asked for per `GET /v1/datapoints` (the query string
/// stays short).
const IDS_PER_READ: usize = 100;

/// `POST /v1/runs` (retried: the run's id is in the body).
pub(super) async fn create_run(client: &Client, run: NewRun) -> Result<(), Error> {
    client.runs().create(run).await.map(drop)
}

/// `GET /v1/runs/{run_id}`; `None` when there is no such run.
pub(super) async fn get_run(
    client: &Client,
    run_id: &str,
) -> Result<Option<ExperimentRunObject>, Error> {
    match client.runs().get(run_id).await {
        Ok(run) => Ok(Some(run)),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `PUT /v1/runs/{run_id}`.
pub(super) async fn update_run(
    client: &Client,
    run_id: &str,
    update: RunUpdate,
) -> Result<(), Error> {
    client.runs().update(run_id, update).await.map(drop)
}

/// `GET /v1/runs/{run_id}/summary`, metrics averaged.
pub(super) async fn summary(
    client: &Client,
    run_id: &str,
) -> Result<GetExperimentRunResultResponse, Error> {
    client.runs().summary(run_id, Aggregate::Average).await
}

/// `GET /v1/runs/{new}/compare/{old}`, metrics averaged.
pub(super) async fn compare(
    client: &Client,
    new: &str,
    old: &str,
) -> Result<GetExperimentRunCompareResponse, Error> {
    client.runs().compare(new, old, Aggregate::Average).await
}

/// The datapoints of the hosted dataset `dataset_id`, in the dataset's
/// order: the dataset, then its datapoints by id, a hundred at a time.
pub(super) async fn dataset(client: &Client, dataset_id: &str) -> Result<Vec<ApiDatapoint>, Error> {
    let dataset = client.datasets().get(dataset_id).await?;
    let ids: Vec<String> = dataset.datapoints.iter().map(|id| id.to_string()).collect();
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_READ) {
        found.extend(
            client
                .datapoints()
                .list_by_ids(chunk.iter().cloned())
                .await?,
        );
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
