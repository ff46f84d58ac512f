//! [`Runs`]: experiment runs (`/v1/runs`).

use std::num::NonZeroU64;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Page, Paged, page_size, typed, uuid};
use crate::api::types;
use crate::fields::Invalid;
use crate::session::SessionId;
use crate::{client::Client, error::Error};

/// Experiment runs: made by [`Client::runs`].
///
/// ```no_run
/// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
/// use honeyhive::{Aggregate, NewRun, RunStatus, RunUpdate};
///
/// let created = client.runs().create(NewRun::new("nightly").dataset_id("ds-1")).await?;
/// client
///     .runs()
///     .update(&created.run_id, RunUpdate::new().status(RunStatus::Completed))
///     .await?;
/// let summary = client.runs().summary(&created.run_id, Aggregate::Average).await?;
/// println!("{} passed, {} failed", summary.passed.len(), summary.failed.len());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Runs {
    client: Client,
}

impl Client {
    /// Experiment runs: create, read, list, update, delete, summarize and
    /// compare them (see [`Runs`]).
    pub fn runs(&self) -> Runs {
        Runs {
            client: self.clone(),
        }
    }
}

/// A run's status, as the API names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RunStatus {
    /// Not started (the API's default for a new run).
    Pending,
    /// Running.
    Running,
    /// Done.
    Completed,
    /// Ended in failure.
    Failed,
    /// Stopped before the end.
    Cancelled,
}

/// The API's name: `pending`, `running`, `completed`, `failed`,
/// `cancelled`.
///
/// ```
/// assert_eq!(honeyhive::RunStatus::Completed.to_string(), "completed");
/// ```
impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        types::GetRunsStatus::from(*self).fmt(f)
    }
}

/// `From<$from>` for a generated enum of the same variants.
macro_rules! same_variants {
    ($from:ident $variants:tt => $($target:ty),+) => {
        $(same_variants!(@one $from $variants $target);)+
    };
    (@one $from:ident [$($variant:ident),+] $target:ty) => {
        impl From<$from> for $target {
            fn from(value: $from) -> Self {
                match value {
                    $($from::$variant => Self::$variant,)+
                }
            }
        }
    };
}
same_variants!(
    RunStatus [Pending, Running, Completed, Failed, Cancelled] =>
    types::PostExperimentRunRequestStatus,
    types::PutExperimentRunRequestStatus,
    types::GetRunsStatus
);

/// How a run's metrics are aggregated over its datapoints, in
/// [`Runs::summary`] and [`Runs::compare`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Aggregate {
    /// The mean (the API's default).
    #[default]
    Average,
    /// The least value.
    Min,
    /// The greatest value.
    Max,
    /// The median.
    Median,
    /// The 90th percentile.
    P90,
    /// The 95th percentile.
    P95,
    /// The 99th percentile.
    P99,
    /// The sum.
    Sum,
    /// How many values there are.
    Count,
}

same_variants!(
    Aggregate [Average, Min, Max, Median, P90, P95, P99, Sum, Count] =>
    types::GetExperimentSummaryAggregateFunction,
    types::GetExperimentComparisonAggregateFunction
);

/// The ids and free-form fields a new run and a run update share.
#[derive(Clone, Debug, Default)]
struct RunFields {
    description: Option<String>,
    datapoint_ids: Vec<String>,
    event_ids: Vec<String>,
    session_ids: Vec<String>,
    metadata: Map<String, Value>,
    configuration: Map<String, Value>,
    results: Map<String, Value>,
    status: Option<RunStatus>,
    invalid: Invalid,
}

/// The setters [`NewRun`] and [`RunUpdate`] share.
macro_rules! run_setters {
    () => {
        /// What the run is for, in words.
        pub fn description(mut self, description: impl Into<String>) -> Self {
            self.fields.description = Some(description.into());
            self
        }

        /// The datapoints the run covers.
        pub fn datapoint_ids<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ids: I) -> Self {
            self.fields.datapoint_ids = ids.into_iter().map(Into::into).collect();
            self
        }

        /// The events the run recorded.
        pub fn event_ids<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ids: I) -> Self {
            self.fields.event_ids = ids.into_iter().map(Into::into).collect();
            self
        }

        /// The sessions the run recorded (one per datapoint, as
        /// HoneyHive's SDKs record them).
        pub fn session_ids<I: IntoIterator<Item = S>, S: Into<SessionId>>(
            mut self,
            ids: I,
        ) -> Self {
            self.fields.session_ids = ids.into_iter().map(|id| id.into().into()).collect();
            self
        }

        /// Free-form facts about the run: a JSON object (a struct or a
        /// map); anything else is refused when the run is sent, naming
        /// `metadata`.
        pub fn metadata(mut self, metadata: impl Serialize) -> Self {
            self.fields.metadata = self.fields.invalid.object("metadata", metadata);
            self
        }

        /// How what the run evaluates was configured (model, prompt…): a
        /// JSON object.
        pub fn configuration(mut self, configuration: impl Serialize) -> Self {
            self.fields.configuration = self.fields.invalid.object("configuration", configuration);
            self
        }

        /// The run's results: a JSON object.
        pub fn results(mut self, results: impl Serialize) -> Self {
            self.fields.results = self.fields.invalid.object("results", results);
            self
        }

        /// The run's status.
        pub fn status(mut self, status: RunStatus) -> Self {
            self.fields.status = Some(status);
            self
        }
    };
}

/// A run to create, for [`Runs::create`].
///
/// ```
/// use honeyhive::{NewRun, RunStatus};
/// use serde_json::json;
///
/// let run = NewRun::new("nightly")
///     .dataset_id("ds-1")
///     .status(RunStatus::Running)
///     .metadata(json!({"commit": "abc123"}));
/// ```
#[derive(Clone, Debug)]
#[must_use = "a NewRun does nothing until given to Runs::create"]
pub struct NewRun {
    name: String,
    run_id: Option<String>,
    dataset_id: Option<String>,
    fields: RunFields,
}

impl NewRun {
    /// A run named `name` (not empty).
    pub fn new(name: impl Into<String>) -> Self {
        NewRun {
            name: name.into(),
            run_id: None,
            dataset_id: None,
            fields: RunFields::default(),
        }
    }

    /// The run's id, a UUID: one is made (UUIDv4) when none is given, so
    /// that the create can be sent again safely.
    pub fn run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = Some(run_id.into());
        self
    }

    /// The dataset the run evaluates.
    pub fn dataset_id(mut self, dataset_id: impl Into<String>) -> Self {
        self.dataset_id = Some(dataset_id.into());
        self
    }

    run_setters!();

    fn into_body(self) -> Result<types::PostExperimentRunRequest, Error> {
        let NewRun {
            name,
            run_id,
            dataset_id,
            fields,
        } = self;
        fields.invalid.check()?;
        if name.trim().is_empty() {
            return Err(Error::invalid("name", "is empty; give the run a name"));
        }
        let run_id = match run_id {
            Some(id) => uuid("run_id", &id)?.to_string(),
            None => uuid::Uuid::new_v4().to_string(),
        };
        Ok(types::PostExperimentRunRequest {
            name: Some(typed("name", name)?),
            run_id: Some(run_id),
            dataset_id,
            description: fields.description,
            datapoint_ids: ids("datapoint_ids", fields.datapoint_ids)?,
            event_ids: fields.event_ids,
            session_ids: fields.session_ids,
            metadata: fields.metadata,
            configuration: fields.configuration,
            results: fields.results,
            status: fields
                .status
                .map_or(types::PostExperimentRunRequestStatus::Pending, Into::into),
            evaluators: Vec::new(),
            passing_ranges: Default::default(),
        })
    }
}

/// What to change in a run, for [`Runs::update`]: only what is set is
/// sent.
///
/// ```
/// use honeyhive::{RunStatus, RunUpdate};
/// use serde_json::json;
///
/// let update = RunUpdate::new()
///     .status(RunStatus::Completed)
///     .results(json!({"accuracy": 0.92}));
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a RunUpdate does nothing until given to Runs::update"]
pub struct RunUpdate {
    name: Option<String>,
    fields: RunFields,
}

impl RunUpdate {
    /// An update that changes nothing yet.
    pub fn new() -> Self {
        RunUpdate::default()
    }

    /// The run's new name (not empty).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    run_setters!();

    fn into_body(self) -> Result<types::PutExperimentRunRequest, Error> {
        let RunUpdate { name, fields } = self;
        fields.invalid.check()?;
        let name = match name {
            Some(name) if name.trim().is_empty() => {
                return Err(Error::invalid(
                    "name",
                    "is empty; give a new name, or leave the name out",
                ));
            }
            Some(name) => Some(typed("name", name)?),
            None => None,
        };
        Ok(types::PutExperimentRunRequest {
            name,
            description: fields.description,
            datapoint_ids: ids("datapoint_ids", fields.datapoint_ids)?,
            event_ids: fields.event_ids,
            session_ids: fields.session_ids,
            metadata: fields.metadata,
            configuration: fields.configuration,
            results: fields.results,
            status: fields.status.map(Into::into),
            evaluators: Vec::new(),
            passing_ranges: Default::default(),
        })
    }
}

/// Each id as the generated newtype (not empty), the first refused named
/// `field[i]`.
fn ids<T>(field: &str, ids: Vec<String>) -> Result<Vec<T>, Error>
where
    T: TryFrom<String>,
    T::Error: std::fmt::Display,
{
    ids.into_iter()
        .enumerate()
        .map(|(i, id)| typed(&format!("{field}[{i}]"), id))
        .collect()
}

/// Which runs [`Runs::list`] gives: every run unless narrowed.
///
/// ```
/// use honeyhive::{RunQuery, RunStatus};
///
/// let query = RunQuery::new().dataset_id("ds-1").status(RunStatus::Completed).page_size(100);
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a RunQuery does nothing until given to Runs::list"]
pub struct RunQuery {
    dataset_id: Option<String>,
    name: Option<String>,
    status: Option<RunStatus>,
    run_ids: Vec<String>,
    page_size: Option<u64>,
}

impl RunQuery {
    /// Every run.
    pub fn new() -> Self {
        RunQuery::default()
    }

    /// Only runs of this dataset.
    pub fn dataset_id(mut self, dataset_id: impl Into<String>) -> Self {
        self.dataset_id = Some(dataset_id.into());
        self
    }

    /// Only runs of this name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Only runs in this status.
    pub fn status(mut self, status: RunStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only these runs.
    pub fn run_ids<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ids: I) -> Self {
        self.run_ids = ids.into_iter().map(Into::into).collect();
        self
    }

    /// Runs fetched per request: 1 to [`RunQuery::MAX_PAGE_SIZE`] (the
    /// API's default, 20, unless set).
    pub fn page_size(mut self, size: u64) -> Self {
        self.page_size = Some(size);
        self
    }

    /// The largest page the API gives.
    pub const MAX_PAGE_SIZE: u64 = 100;
}

impl Runs {
    /// Creates a run (`POST /v1/runs`, createRun). The body always names
    /// the run's id ([`NewRun::run_id`], or a new UUID), so a failed
    /// attempt is retried: a repeat names the same run.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] before sending: an empty name, a `run_id`
    /// that is not a UUID, a free-form field that is not an object, an
    /// empty datapoint id; then the API's refusal, as any call's.
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// let created = client.runs().create(honeyhive::NewRun::new("nightly")).await?;
    /// println!("run {}", created.run_id);
    /// # Ok(()) }
    /// ```
    pub async fn create(&self, run: NewRun) -> Result<types::PostExperimentRunResponse, Error> {
        let body = run.into_body()?;
        self.client
            .call(self.client.raw().create_run().body(body).send())
            .await
    }

    /// The run `run_id` (`GET /v1/runs/{run_id}`, getRun). Retried: a GET.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `run_id` when it is not a UUID;
    /// [`Error::NotFound`] when there is no such run; any call's errors.
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// let run = client.runs().get("3fa85f64-5717-4562-b3fc-2c963f66afa6").await?;
    /// println!("{:?}", run.status);
    /// # Ok(()) }
    /// ```
    pub async fn get(&self, run_id: &str) -> Result<types::ExperimentRunObject, Error> {
        let id = uuid("run_id", run_id)?;
        let answer = self
            .client
            .call_for("run", run_id, self.client.raw().get_run().run_id(id).send())
            .await?;
        Ok(answer.evaluation)
    }

    /// Every run `query` selects (`GET /v1/runs`, getRuns), page by page as
    /// a [`Paged`] stream. Each page is a GET, retried.
    ///
    /// A page size outside 1 to [`RunQuery::MAX_PAGE_SIZE`] is refused as
    /// the stream's one item, before any request.
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// use futures_util::TryStreamExt;
    /// let mut runs = client.runs().list(honeyhive::RunQuery::new().dataset_id("ds-1"));
    /// while let Some(run) = runs.try_next().await? {
    ///     println!("{}", run.run_id);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn list(&self, query: RunQuery) -> Paged<types::ExperimentRunObject> {
        let limit = match query.page_size {
            Some(size) => match page_size("page_size", size, RunQuery::MAX_PAGE_SIZE) {
                Ok(size) => NonZeroU64::new(size),
                Err(error) => return Paged::refused(error),
            },
            None => None,
        };
        let client = self.client.clone();
        Paged::new(move |page| {
            let client = client.clone();
            let query = query.clone();
            async move {
                let mut call = client.raw().get_runs().page(page);
                if let Some(limit) = limit {
                    call = call.limit(limit);
                }
                if let Some(dataset_id) = query.dataset_id {
                    call = call.dataset_id(dataset_id);
                }
                if let Some(name) = query.name {
                    call = call.name(name);
                }
                if let Some(status) = query.status {
                    call = call.status(types::GetRunsStatus::from(status));
                }
                if !query.run_ids.is_empty() {
                    call = call.run_ids(query.run_ids);
                }
                let answer = client.call(call.send()).await?;
                Ok(Page {
                    items: answer.evaluations,
                    more: answer.pagination.has_next,
                })
            }
        })
    }

    /// Changes the run `run_id` (`PUT /v1/runs/{run_id}`, updateRun): only
    /// what `update` sets. Retried: a PUT.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `run_id` when it is not a UUID, or the
    /// field of `update` that cannot be sent; [`Error::NotFound`] when
    /// there is no such run; any call's errors.
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// use honeyhive::{RunStatus, RunUpdate};
    /// let id = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
    /// client.runs().update(id, RunUpdate::new().status(RunStatus::Completed)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn update(
        &self,
        run_id: &str,
        update: RunUpdate,
    ) -> Result<types::PutExperimentRunResponse, Error> {
        let id = uuid("run_id", run_id)?;
        let body = update.into_body()?;
        self.client
            .call_for(
                "run",
                run_id,
                self.client.raw().update_run().run_id(id).body(body).send(),
            )
            .await
    }

    /// Deletes the run `run_id` (`DELETE /v1/runs/{run_id}`, deleteRun).
    /// Retried: a DELETE.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// client.runs().delete("3fa85f64-5717-4562-b3fc-2c963f66afa6").await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self, run_id: &str) -> Result<types::DeleteExperimentRunResponse, Error> {
        let id = uuid("run_id", run_id)?;
        self.client
            .call_for(
                "run",
                run_id,
                self.client.raw().delete_run().run_id(id).send(),
            )
            .await
    }

    /// The run's summary (`GET /v1/runs/{run_id}/summary`,
    /// getExperimentSummary): pass or fail per datapoint, and each metric
    /// aggregated over the datapoints by `aggregate`. Retried: a GET.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// use honeyhive::Aggregate;
    /// let summary = client
    ///     .runs()
    ///     .summary("3fa85f64-5717-4562-b3fc-2c963f66afa6", Aggregate::Median)
    ///     .await?;
    /// println!("{} passed", summary.passed.len());
    /// # Ok(()) }
    /// ```
    pub async fn summary(
        &self,
        run_id: &str,
        aggregate: Aggregate,
    ) -> Result<types::GetExperimentRunResultResponse, Error> {
        let id = uuid("run_id", run_id)?;
        let call = self
            .client
            .raw()
            .get_experiment_summary()
            .run_id(id)
            .aggregate_function(types::GetExperimentSummaryAggregateFunction::from(
                aggregate,
            ))
            .send();
        self.client.call_for("run", run_id, call).await
    }

    /// The run `new_run_id` compared with `old_run_id`
    /// (`GET /v1/runs/{new_run_id}/compare/{old_run_id}`,
    /// getExperimentComparison): each metric of both, aggregated by
    /// `aggregate`, the datapoints they share, and the events. Retried: a
    /// GET.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `new_run_id` or `old_run_id` when it
    /// is not a UUID; [`Error::NotFound`] with the id `NEW or OLD` (the
    /// answer does not say which) when either is missing; any call's
    /// errors.
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// use honeyhive::Aggregate;
    /// let new = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
    /// let old = "9b2e1c4a-0f6d-4d7e-8a1b-5c3d2e1f0a9b";
    /// let compared = client.runs().compare(new, old, Aggregate::Average).await?;
    /// for metric in &compared.metrics {
    ///     println!("{metric:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn compare(
        &self,
        new_run_id: &str,
        old_run_id: &str,
        aggregate: Aggregate,
    ) -> Result<types::GetExperimentRunCompareResponse, Error> {
        let new = uuid("new_run_id", new_run_id)?;
        let old = uuid("old_run_id", old_run_id)?;
        let call = self
            .client
            .raw()
            .get_experiment_comparison()
            .new_run_id(new)
            .old_run_id(old)
            .aggregate_function(types::GetExperimentComparisonAggregateFunction::from(
                aggregate,
            ))
            .send();
        let either = format!("{new_run_id} or {old_run_id}");
        self.client.call_for("run", &either, call).await
    }
}
