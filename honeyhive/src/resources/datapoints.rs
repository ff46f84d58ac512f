//! [`Datapoints`]: datapoints (`/v1/datapoints`).

use std::time::SystemTime;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{none_found, path_id, typed};
use crate::api::types;
use crate::fields::Invalid;
use crate::{client::Client, error::Error};

/// Datapoints: made by [`Client::datapoints`].
///
/// ```no_run
/// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
/// use honeyhive::NewDatapoint;
/// use serde_json::json;
///
/// let created = client
///     .datapoints()
///     .create(
///         NewDatapoint::new()
///             .inputs(json!({"question": "2 + 2?"}))
///             .ground_truth(json!({"answer": "4"}))
///             .linked_datasets(["ds-1"]),
///     )
///     .await?;
/// for datapoint in client.datapoints().list_in_dataset("qa-golden").await? {
///     println!("{} {:?}", datapoint.id.as_str(), datapoint.inputs);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Datapoints {
    client: Client,
}

impl Client {
    /// Datapoints: list, read, create, change and delete them (see
    /// [`Datapoints`]).
    pub fn datapoints(&self) -> Datapoints {
        Datapoints {
            client: self.clone(),
        }
    }
}

/// What [`NewDatapoint`] and [`DatapointUpdate`] hold.
#[derive(Clone, Debug, Default)]
struct DatapointFields {
    inputs: Map<String, Value>,
    ground_truth: Map<String, Value>,
    history: Vec<Map<String, Value>>,
    metadata: Map<String, Value>,
    linked_datasets: Vec<String>,
    linked_event: Option<String>,
    invalid: Invalid,
}

/// The setters [`NewDatapoint`] and [`DatapointUpdate`] share.
macro_rules! datapoint_setters {
    () => {
        /// What goes into the task under test: a JSON object (a struct or
        /// a map); anything else is refused when sent, naming `inputs`.
        pub fn inputs(mut self, inputs: impl Serialize) -> Self {
            self.fields.inputs = self.fields.invalid.object("inputs", inputs);
            self
        }

        /// What the task should answer: a JSON object.
        pub fn ground_truth(mut self, ground_truth: impl Serialize) -> Self {
            self.fields.ground_truth = self.fields.invalid.object("ground_truth", ground_truth);
            self
        }

        /// The conversation before the inputs: one JSON object per message.
        pub fn history<I: IntoIterator<Item = M>, M: Serialize>(mut self, messages: I) -> Self {
            let invalid = &mut self.fields.invalid;
            self.fields.history = messages
                .into_iter()
                .enumerate()
                .map(|(i, m)| invalid.object(&format!("history[{i}]"), m))
                .collect();
            self
        }

        /// Free-form facts about the datapoint: a JSON object.
        pub fn metadata(mut self, metadata: impl Serialize) -> Self {
            self.fields.metadata = self.fields.invalid.object("metadata", metadata);
            self
        }

        /// The ids of the datasets the datapoint belongs to.
        pub fn linked_datasets<I: IntoIterator<Item = S>, S: Into<String>>(
            mut self,
            ids: I,
        ) -> Self {
            self.fields.linked_datasets = ids.into_iter().map(Into::into).collect();
            self
        }

        /// The event the datapoint was made from.
        pub fn linked_event(mut self, event_id: impl Into<String>) -> Self {
            self.fields.linked_event = Some(event_id.into());
            self
        }
    };
}

/// A datapoint to create, for [`Datapoints::create`].
///
/// ```
/// use serde_json::json;
/// let datapoint = honeyhive::NewDatapoint::new()
///     .inputs(json!({"question": "2 + 2?"}))
///     .ground_truth(json!({"answer": "4"}));
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a NewDatapoint does nothing until given to Datapoints::create"]
pub struct NewDatapoint {
    fields: DatapointFields,
}

impl NewDatapoint {
    /// A datapoint with nothing in it yet.
    pub fn new() -> Self {
        NewDatapoint::default()
    }

    datapoint_setters!();
}

/// What to change in a datapoint, for [`Datapoints::update`]: only what is
/// set is sent.
///
/// ```
/// use serde_json::json;
/// let update = honeyhive::DatapointUpdate::new().ground_truth(json!({"answer": "four"}));
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a DatapointUpdate does nothing until given to Datapoints::update"]
pub struct DatapointUpdate {
    fields: DatapointFields,
}

impl DatapointUpdate {
    /// An update that changes nothing yet.
    pub fn new() -> Self {
        DatapointUpdate::default()
    }

    datapoint_setters!();
}

/// Datapoints to make from events already logged, for
/// [`Datapoints::create_batch`]: the events the filters and the time range
/// select become datapoints of the dataset.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use serde_json::json;
///
/// let now = SystemTime::now();
/// let batch = honeyhive::DatapointBatch::new("ds-1")
///     .filters([json!({"field": "event_type", "operator": "is", "value": "model", "type": "string"})])
///     .date_range(now - Duration::from_secs(86_400), now);
/// ```
#[derive(Clone, Debug)]
#[must_use = "a DatapointBatch does nothing until given to Datapoints::create_batch"]
pub struct DatapointBatch {
    dataset_id: String,
    filters: Vec<Map<String, Value>>,
    date_range: Option<(SystemTime, SystemTime)>,
    select_all: Option<bool>,
    invalid: Invalid,
}

impl DatapointBatch {
    /// Datapoints for the dataset `dataset_id`.
    pub fn new(dataset_id: impl Into<String>) -> Self {
        DatapointBatch {
            dataset_id: dataset_id.into(),
            filters: Vec::new(),
            date_range: None,
            select_all: None,
            invalid: Invalid::default(),
        }
    }

    /// The filters an event must pass, each a JSON object
    /// (`{field, operator, value, type}`).
    pub fn filters<I: IntoIterator<Item = F>, F: Serialize>(mut self, filters: I) -> Self {
        let invalid = &mut self.invalid;
        self.filters = filters
            .into_iter()
            .enumerate()
            .map(|(i, f)| invalid.object(&format!("filters[{i}]"), f))
            .collect();
        self
    }

    /// Only events from `start` to `end`, both included.
    pub fn date_range(mut self, start: SystemTime, end: SystemTime) -> Self {
        self.date_range = Some((start, end));
        self
    }

    /// Every event the filters select, not only those picked by hand in
    /// HoneyHive's interface.
    pub fn select_all(mut self, all: bool) -> Self {
        self.select_all = Some(all);
        self
    }

    fn into_body(self) -> Result<types::BatchCreateDatapointsRequest, Error> {
        self.invalid.check()?;
        let dataset_id = typed("dataset_id", path_id("dataset_id", &self.dataset_id)?)?;
        let date_range = match self.date_range {
            Some((start, end)) if end < start => {
                return Err(Error::invalid(
                    "date_range",
                    "ends before it starts; give the earlier time first",
                ));
            }
            Some((start, end)) => Some(types::BatchDateRange {
                gte: Some(iso(start)),
                lte: Some(iso(end)),
            }),
            None => None,
        };
        Ok(types::BatchCreateDatapointsRequest {
            dataset_id: Some(dataset_id),
            filters: (!self.filters.is_empty()).then_some(
                types::BatchCreateDatapointsRequestFilters::Array(self.filters),
            ),
            date_range,
            select_all: self.select_all,
            check_state: None,
            events: Vec::new(),
            mapping: None,
        })
    }
}

/// `at` as an ISO 8601 time in UTC, to the millisecond.
pub(super) fn iso(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The body of createDatapoint or updateDatapoint (the same fields, two
/// generated types) from checked [`DatapointFields`], or the first problem.
macro_rules! datapoint_body {
    ($body:path, $fields:expr) => {{
        let f: DatapointFields = $fields;
        f.invalid.check()?;
        $body {
            inputs: f.inputs,
            ground_truth: f.ground_truth,
            history: f.history,
            metadata: f.metadata,
            linked_datasets: linked(f.linked_datasets)?,
            linked_event: f.linked_event,
        }
    }};
}

/// Each id as the generated newtype, the first refused named `field[i]`.
fn linked<T>(ids: Vec<String>) -> Result<Vec<T>, Error>
where
    T: TryFrom<String>,
    T::Error: std::fmt::Display,
{
    ids.into_iter()
        .enumerate()
        .map(|(i, id)| typed(&format!("linked_datasets[{i}]"), id))
        .collect()
}

impl Datapoints {
    /// The datapoints with these ids (`GET /v1/datapoints?datapoint_ids=`,
    /// getDatapoints). Retried: a GET.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `datapoint_ids` when there are none
    /// or one is empty; any call's.
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// let found = client.datapoints().list_by_ids(["dp-1", "dp-2"]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn list_by_ids<I, S>(&self, ids: I) -> Result<Vec<types::Datapoint>, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let ids: Vec<String> = ids.into_iter().map(Into::into).collect();
        if ids.is_empty() {
            return Err(Error::invalid(
                "datapoint_ids",
                "is empty; give at least one id (or use list_in_dataset)",
            ));
        }
        for (i, id) in ids.iter().enumerate() {
            path_id(&format!("datapoint_ids[{i}]"), id)?;
        }
        let call = self.client.raw().get_datapoints().datapoint_ids(ids).send();
        Ok(self.client.call(call).await?.datapoints)
    }

    /// Every datapoint of the dataset named `dataset_name`
    /// (`GET /v1/datapoints?dataset_name=`, getDatapoints). Retried: a GET.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `dataset_name` when it is empty; any
    /// call's.
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// let all = client.datapoints().list_in_dataset("qa-golden").await?;
    /// # Ok(()) }
    /// ```
    pub async fn list_in_dataset(
        &self,
        dataset_name: &str,
    ) -> Result<Vec<types::Datapoint>, Error> {
        if dataset_name.trim().is_empty() {
            return Err(Error::invalid(
                "dataset_name",
                "is empty; give the dataset's name",
            ));
        }
        let call = self
            .client
            .raw()
            .get_datapoints()
            .dataset_name(dataset_name.to_owned())
            .send();
        Ok(self.client.call(call).await?.datapoints)
    }

    /// The datapoint `datapoint_id` (`GET /v1/datapoints/{datapoint_id}`,
    /// getDatapoint). Retried: a GET.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `datapoint_id` when it is empty;
    /// [`Error::NotFound`] when there is no such datapoint (a 404, or an
    /// answer listing none); any call's.
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// let datapoint = client.datapoints().get("dp-1").await?;
    /// # Ok(()) }
    /// ```
    pub async fn get(&self, datapoint_id: &str) -> Result<types::Datapoint, Error> {
        let id = path_id("datapoint_id", datapoint_id)?;
        let call = self
            .client
            .raw()
            .get_datapoint()
            .datapoint_id(id.to_owned())
            .send();
        let answer = self
            .client
            .call_for("datapoint", datapoint_id, call)
            .await?;
        answer
            .datapoint
            .into_iter()
            .next()
            .ok_or_else(|| none_found("datapoint", datapoint_id))
    }

    /// Creates a datapoint (`POST /v1/datapoints`, createDatapoint). Sent
    /// once: the server chooses its id, so a repeat could make a second
    /// one; sent again only when the connection was never made.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field a setter could not take, or
    /// an empty linked dataset id; any call's.
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// use serde_json::json;
    /// let created = client
    ///     .datapoints()
    ///     .create(honeyhive::NewDatapoint::new().inputs(json!({"q": "hi"})))
    ///     .await?;
    /// println!("{:?}", created.result.inserted_ids);
    /// # Ok(()) }
    /// ```
    pub async fn create(
        &self,
        datapoint: NewDatapoint,
    ) -> Result<types::CreateDatapointResponse, Error> {
        let body = datapoint_body!(types::CreateDatapointRequest, datapoint.fields);
        self.client
            .call(self.client.raw().create_datapoint().body(body).send())
            .await
    }

    /// Makes datapoints from events already logged
    /// (`POST /v1/datapoints/batch`, batchCreateDatapoints). Sent once, as
    /// [`create`](Self::create) is.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] before sending: the dataset id empty, a
    /// filter that is not an object, a date range that ends before it
    /// starts; any call's.
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// let made = client
    ///     .datapoints()
    ///     .create_batch(honeyhive::DatapointBatch::new("ds-1").select_all(true))
    ///     .await?;
    /// println!("{} datapoints", made.inserted_ids.len());
    /// # Ok(()) }
    /// ```
    pub async fn create_batch(
        &self,
        batch: DatapointBatch,
    ) -> Result<types::BatchCreateDatapointsResponse, Error> {
        let body = batch.into_body()?;
        self.client
            .call(
                self.client
                    .raw()
                    .batch_create_datapoints()
                    .body(body)
                    .send(),
            )
            .await
    }

    /// Changes the datapoint `datapoint_id`
    /// (`PUT /v1/datapoints/{datapoint_id}`, updateDatapoint): only what
    /// `update` sets. Retried: a PUT.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `datapoint_id` or the field of
    /// `update` that cannot be sent; [`Error::NotFound`] when there is no
    /// such datapoint; any call's.
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// use serde_json::json;
    /// let update = honeyhive::DatapointUpdate::new().metadata(json!({"checked": true}));
    /// client.datapoints().update("dp-1", update).await?;
    /// # Ok(()) }
    /// ```
    pub async fn update(
        &self,
        datapoint_id: &str,
        update: DatapointUpdate,
    ) -> Result<types::UpdateDatapointResponse, Error> {
        let id = path_id("datapoint_id", datapoint_id)?;
        let body = datapoint_body!(types::UpdateDatapointRequest, update.fields);
        let call = self
            .client
            .raw()
            .update_datapoint()
            .datapoint_id(id.to_owned())
            .body(body)
            .send();
        self.client.call_for("datapoint", datapoint_id, call).await
    }

    /// Deletes the datapoint `datapoint_id`
    /// (`DELETE /v1/datapoints/{datapoint_id}`, deleteDatapoint). Retried:
    /// a DELETE.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// client.datapoints().delete("dp-1").await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete(
        &self,
        datapoint_id: &str,
    ) -> Result<types::DeleteDatapointResponse, Error> {
        let id = path_id("datapoint_id", datapoint_id)?;
        let call = self
            .client
            .raw()
            .delete_datapoint()
            .datapoint_id(id.to_owned())
            .send();
        self.client.call_for("datapoint", datapoint_id, call).await
    }
}
