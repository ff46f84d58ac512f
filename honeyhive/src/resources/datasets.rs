//! [`Datasets`]: datasets (`/v1/datasets`).

use serde::Serialize;

use super::{none_found, path_id, typed};
use crate::api::types;
use crate::fields::Invalid;
use crate::{client::Client, error::Error};

/// Datasets: made by [`Client::datasets`].
///
/// ```no_run
/// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
/// use honeyhive::api::types::DatapointMapping;
/// use serde_json::json;
///
/// let created = client.datasets().create("qa-golden", Some("questions with answers")).await?;
/// let id = created.result.inserted_id.to_string();
/// let mapping = DatapointMapping {
///     inputs: vec!["question".into()],
///     ground_truth: vec!["answer".into()],
///     history: vec![],
/// };
/// let rows = [json!({"question": "2 + 2?", "answer": "4"})];
/// let added = client.datasets().add_datapoints(&id, rows, mapping).await?;
/// println!("added {:?}", added.datapoint_ids);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Datasets {
    client: Client,
}

impl Client {
    /// Datasets: list, read, create, change and delete them, add and
    /// remove datapoints (see [`Datasets`]).
    pub fn datasets(&self) -> Datasets {
        Datasets {
            client: self.clone(),
        }
    }
}

/// What to change in a dataset, for [`Datasets::update`]: only what is set
/// is sent.
///
/// ```
/// let update = honeyhive::DatasetUpdate::new().name("qa-golden-v2").description("checked twice");
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a DatasetUpdate does nothing until given to Datasets::update"]
pub struct DatasetUpdate {
    name: Option<String>,
    description: Option<String>,
    datapoints: Option<Vec<String>>,
}

impl DatasetUpdate {
    /// An update that changes nothing yet.
    pub fn new() -> Self {
        DatasetUpdate::default()
    }

    /// The dataset's new name: not empty, at most 200 characters.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The dataset's new description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// The ids of the dataset's datapoints after the change (at least one:
    /// the API takes no empty list here; remove the last one with
    /// [`Datasets::remove_datapoint`]).
    pub fn datapoints<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ids: I) -> Self {
        self.datapoints = Some(ids.into_iter().map(Into::into).collect());
        self
    }

    fn into_body(self) -> Result<types::UpdateDatasetRequest, Error> {
        let name = match self.name {
            Some(name) => Some(dataset_name(name)?),
            None => None,
        };
        let datapoints = match self.datapoints {
            Some(ids) if ids.is_empty() => {
                return Err(Error::invalid(
                    "datapoints",
                    "is empty, which the API reads as no change; remove datapoints one by one \
                     with Datasets::remove_datapoint",
                ));
            }
            Some(ids) => ids
                .into_iter()
                .enumerate()
                .map(|(i, id)| typed(&format!("datapoints[{i}]"), id))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(types::UpdateDatasetRequest {
            name,
            description: self.description,
            datapoints,
        })
    }
}

/// A dataset name, checked: not blank, at most 200 characters.
fn dataset_name<T>(name: String) -> Result<T, Error>
where
    T: TryFrom<String>,
    T::Error: std::fmt::Display,
{
    if name.trim().is_empty() {
        return Err(Error::invalid(
            "name",
            "is empty; give the dataset a name (at most 200 characters)",
        ));
    }
    let chars = name.chars().count();
    if chars > 200 {
        return Err(Error::invalid(
            "name",
            format!("is {chars} characters long; the API takes at most 200"),
        ));
    }
    typed("name", name)
}

impl Datasets {
    /// Every dataset of the project (`GET /v1/datasets`, getDatasets).
    /// Retried: a GET.
    ///
    /// # Errors
    /// Any call's ([`Error::Api`], [`Error::Timeout`], …).
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// for dataset in client.datasets().list().await? {
    ///     println!("{} {}", dataset.id.as_str(), dataset.name.as_str());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list(&self) -> Result<Vec<types::Dataset>, Error> {
        let answer = self
            .client
            .call(self.client.raw().get_datasets().send())
            .await?;
        Ok(answer.datasets)
    }

    /// The datasets named exactly `name` (`GET /v1/datasets?name=`,
    /// getDatasets; an answer's datasets of other names are left out).
    /// Retried: a GET.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `name` when it is empty; any call's.
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// let found = client.datasets().find("qa-golden").await?;
    /// # Ok(()) }
    /// ```
    pub async fn find(&self, name: &str) -> Result<Vec<types::Dataset>, Error> {
        if name.trim().is_empty() {
            return Err(Error::invalid("name", "is empty; give the dataset's name"));
        }
        let call = self
            .client
            .raw()
            .get_datasets()
            .name(name.to_owned())
            .send();
        // Only those of exactly that name, whatever the server's filter
        // matched.
        let mut found = self.client.call(call).await?.datasets;
        found.retain(|d| d.name.as_str() == name);
        Ok(found)
    }

    /// The dataset `dataset_id` (`GET /v1/datasets?dataset_id=`,
    /// getDatasets). Retried: a GET.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `dataset_id` when it is empty;
    /// [`Error::NotFound`] when there is no such dataset (a 404, or an
    /// answer listing none); any call's.
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// let dataset = client.datasets().get("ds-1").await?;
    /// println!("{} datapoints", dataset.datapoints.len());
    /// # Ok(()) }
    /// ```
    pub async fn get(&self, dataset_id: &str) -> Result<types::Dataset, Error> {
        let id = path_id("dataset_id", dataset_id)?;
        let call = self
            .client
            .raw()
            .get_datasets()
            .dataset_id(id.to_owned())
            .send();
        let answer = self.client.call_for("dataset", dataset_id, call).await?;
        answer
            .datasets
            .into_iter()
            .find(|d| d.id.as_str() == dataset_id)
            .ok_or_else(|| none_found("dataset", dataset_id))
    }

    /// Creates an empty dataset named `name` (`POST /v1/datasets`,
    /// createDataset). Sent once: the server chooses the new dataset's id,
    /// so a repeat could make a second dataset; sent again only when the
    /// connection was never made.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `name` when it is empty or longer
    /// than 200 characters; any call's.
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// let created = client.datasets().create("qa-golden", None).await?;
    /// println!("dataset {}", created.result.inserted_id.as_str());
    /// # Ok(()) }
    /// ```
    pub async fn create(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<types::CreateDatasetResponse, Error> {
        let body = types::CreateDatasetRequest {
            name: dataset_name(name.to_owned())?,
            description: description.map(str::to_owned),
            datapoints: Vec::new(),
        };
        self.client
            .call(self.client.raw().create_dataset().body(body).send())
            .await
    }

    /// Changes the dataset `dataset_id` (`PUT /v1/datasets/{dataset_id}`,
    /// updateDataset): only what `update` sets. Retried: a PUT.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `dataset_id` or the field of `update`
    /// that cannot be sent; [`Error::NotFound`] when there is no such
    /// dataset; any call's.
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// let update = honeyhive::DatasetUpdate::new().description("checked twice");
    /// let dataset = client.datasets().update("ds-1", update).await?;
    /// # Ok(()) }
    /// ```
    pub async fn update(
        &self,
        dataset_id: &str,
        update: DatasetUpdate,
    ) -> Result<types::Dataset, Error> {
        let id = path_id("dataset_id", dataset_id)?;
        let body = update.into_body()?;
        let call = self
            .client
            .raw()
            .update_dataset()
            .dataset_id(id.to_owned())
            .body(body)
            .send();
        let answer = self.client.call_for("dataset", dataset_id, call).await?;
        Ok(answer.result)
    }

    /// Deletes the dataset `dataset_id` (`DELETE /v1/datasets/{dataset_id}`,
    /// deleteDataset). Retried: a DELETE.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// client.datasets().delete("ds-1").await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self, dataset_id: &str) -> Result<types::DeleteDatasetResponse, Error> {
        let id = path_id("dataset_id", dataset_id)?;
        let call = self
            .client
            .raw()
            .delete_dataset()
            .dataset_id(id.to_owned())
            .send();
        self.client.call_for("dataset", dataset_id, call).await
    }

    /// Adds one datapoint per row to the dataset `dataset_id`
    /// (`POST /v1/datasets/{dataset_id}/datapoints`, addDatapoints):
    /// `mapping` names which fields of each row are the datapoint's inputs,
    /// ground truth and history. Sent once: the server chooses the new
    /// datapoints' ids, so a repeat could add them twice; sent again only
    /// when the connection was never made.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] before sending: `dataset_id` empty, no rows,
    /// a row that is not a JSON object (`rows[i]`), a mapping that names no
    /// field; [`Error::NotFound`] when there is no such dataset; any
    /// call's.
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// use honeyhive::api::types::DatapointMapping;
    /// use serde_json::json;
    /// let mapping = DatapointMapping { inputs: vec!["q".into()], ..Default::default() };
    /// client.datasets().add_datapoints("ds-1", [json!({"q": "hi"})], mapping).await?;
    /// # Ok(()) }
    /// ```
    pub async fn add_datapoints<I, R>(
        &self,
        dataset_id: &str,
        rows: I,
        mapping: types::DatapointMapping,
    ) -> Result<types::AddDatapointsResponse, Error>
    where
        I: IntoIterator<Item = R>,
        R: Serialize,
    {
        let id = path_id("dataset_id", dataset_id)?;
        let mut invalid = Invalid::default();
        let data: Vec<_> = rows
            .into_iter()
            .enumerate()
            .map(|(i, row)| invalid.object(&format!("rows[{i}]"), row))
            .collect();
        invalid.check()?;
        if data.is_empty() {
            return Err(Error::invalid("rows", "is empty; give at least one row"));
        }
        if mapping.inputs.is_empty()
            && mapping.ground_truth.is_empty()
            && mapping.history.is_empty()
        {
            return Err(Error::invalid(
                "mapping",
                "names no field; list the row fields that are the inputs (and the ground truth, \
                 the history)",
            ));
        }
        let body = types::AddDatapointsToDatasetRequest { data, mapping };
        let call = self
            .client
            .raw()
            .add_datapoints()
            .dataset_id(id.to_owned())
            .body(body)
            .send();
        self.client.call_for("dataset", dataset_id, call).await
    }

    /// Takes the datapoint `datapoint_id` out of the dataset `dataset_id`
    /// (`DELETE /v1/datasets/{dataset_id}/datapoints/{datapoint_id}`,
    /// removeDatapoint); the datapoint itself stays. Retried: a DELETE.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming an empty id; [`Error::NotFound`]
    /// (of the datapoint) on a 404; any call's.
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// client.datasets().remove_datapoint("ds-1", "dp-7").await?;
    /// # Ok(()) }
    /// ```
    pub async fn remove_datapoint(
        &self,
        dataset_id: &str,
        datapoint_id: &str,
    ) -> Result<types::RemoveDatapointResponse, Error> {
        let dataset = path_id("dataset_id", dataset_id)?;
        let datapoint = path_id("datapoint_id", datapoint_id)?;
        let call = self
            .client
            .raw()
            .remove_datapoint()
            .dataset_id(dataset.to_owned())
            .datapoint_id(datapoint.to_owned())
            .send();
        // A 404 does not say which of the two is missing.
        let both = format!("{datapoint_id} in dataset {dataset_id}");
        self.client
            .call_for("datapoint (or its dataset)", &both, call)
            .await
    }
}
