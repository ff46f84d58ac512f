//! Experiments: run a task over a dataset, score each output, record it
//! all as a HoneyHive run, then resume, shard, compare and gate it.
//!
//! ```no_run
//! use std::time::Duration;
//! use honeyhive::experiment::{Datapoint, Experiment, Gate};
//! use serde_json::{Value, json};
//!
//! # async fn run(client: honeyhive::Client) -> Result<(), Box<dyn std::error::Error>> {
//! let report = Experiment::new("capitals v2")
//!     .datapoints([
//!         Datapoint::new(json!({"country": "France"})).ground_truth("Paris"),
//!         Datapoint::new(json!({"country": "Japan"})).ground_truth("Tokyo"),
//!     ])
//!     .task(|row: Datapoint| async move {
//!         // Call the model here; its `tracing` spans land in the row's session.
//!         Ok::<_, std::io::Error>(json!({"answer": "Paris"}))
//!     })
//!     .evaluator("exact", |outputs: &Value, row: &Datapoint| {
//!         Some(&outputs["answer"]) == row.ground_truth.as_ref()
//!     })
//!     .concurrency(8)
//!     .timeout(Duration::from_secs(30))
//!     .compare_to("0b1e6f4e-3d59-4a8e-9c53-1f0a2b3c4d5e")
//!     .gate(Gate::max_drop("exact", 0.05))
//!     .run(&client)
//!     .await?;
//! println!("{report}");
//! # Ok(()) }
//! ```
//!
//! # What goes over the wire
//! Only HoneyHive's `/v1` routes:
//! 1. the run, created first: `POST /v1/runs` with the run's id (a UUIDv4
//!    chosen here, or [`run_id`](Experiment::run_id)), its name, status
//!    `running`, the datapoint ids, and the hosted dataset's id, or for a
//!    local dataset `dataset_id: null` and a content-derived id in
//!    `metadata.offline_dataset_id` (as HoneyHive's Python SDK does);
//! 2. each datapoint (each repetition) a session: one `session` event
//!    whose `event_id` is the session id, with the inputs, the outputs, the
//!    scores as `metrics`, the task's error, and `metadata` `run_id`,
//!    `dataset_id`, `datapoint_id`, `repetition`; logged through a
//!    [`Logger`] on [`Route::EventBatch`](crate::Route::EventBatch)
//!    (`POST /v1/events/batch`), so recording never waits on the network
//!    and a hundred sessions share a request;
//! 3. when every datapoint is done, the Logger flushed (within
//!    [`flush_timeout`](Experiment::flush_timeout)), the run closed:
//!    `PUT /v1/runs/{id}` with the sessions' ids and a status that says
//!    what happened ([`RunStatus`](crate::RunStatus));
//! 4. the summary read back (`GET /v1/runs/{id}/summary`), and with
//!    [`compare_to`](Experiment::compare_to) the comparison
//!    (`GET /v1/runs/{id}/compare/{base}`).
//!
//! # Isolation
//! Each datapoint's task runs in a tokio task of its own: an error, a panic
//! or a [`timeout`](Experiment::timeout) marks that datapoint
//! [`Errored`](Outcome::Errored) with the reason and the others go on. An
//! evaluator that returns an error or panics gives no score for that
//! datapoint (the report says why; the session has no such metric, not a
//! zero). The report counts every datapoint once.
//!
//! # Tracing
//! The task runs inside an `INFO` span named `honeyhive.experiment` with
//! `honeyhive.event_type = "session"` and the datapoint's
//! `honeyhive.session_id`: with [`tracing::HoneyHiveLayer`](crate#feature-flags)
//! installed, the task's own spans are logged into the datapoint's session
//! (the span is a session scope that sends no event of its own:
//! `honeyhive.scope_only = true`). The layer's Logger is the app's: give it
//! to [`logger`](Experiment::logger) so the run waits for its spans too.
//! A subscriber filter that drops the span (above `INFO`) leaves the
//! task's spans outside the datapoint's session.

mod calls;
mod datapoint;
mod error;
mod gate;
mod ids;
mod job;
mod report;
mod run;
mod score;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

pub use datapoint::Datapoint;
pub use error::ExperimentError;
pub use gate::{Gate, GateFailure};
pub use report::{
    Comparison, DatapointResult, ExperimentReport, MetricDelta, MetricStats, Outcome, TaskFailure,
};
pub use score::{IntoScore, Score, TaskOutput};

use crate::{client::Client, logger::Logger};

/// Closes the run `run_id` as it stands: reads its summary, and marks it
/// `status` with every session the summary links to it (its other
/// metadata kept). The explicit close of a sharded run whose last shard
/// will not come (or whose summary a shard could not read), or of any run
/// left `running`; a resume closes a run too, after running what is
/// missing. Returns the summary after the close.
///
/// # Errors
/// [`Error::InvalidInput`](crate::Error::InvalidInput) naming `run_id` when
/// it is not a UUID, or `status` when it is not an ending
/// (`Completed`, `Failed`, `Cancelled`); [`Error::NotFound`](crate::Error::NotFound)
/// when there is no such run; any call's.
///
/// ```
/// use honeyhive::{NewRun, RunStatus, testing::MockHoneyHive};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), honeyhive::Error> {
/// let mock = MockHoneyHive::start_async().await;
/// let client = mock.client()?;
/// let run_id = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
/// client.runs().create(NewRun::new("sharded").run_id(run_id).status(RunStatus::Running)).await?;
/// honeyhive::experiment::close_run(&client, run_id, RunStatus::Completed).await?;
/// assert_eq!(client.runs().get(run_id).await?.status.as_deref(), Some("completed"));
/// # Ok(()) }
/// ```
pub async fn close_run(
    client: &Client,
    run_id: &str,
    status: crate::resources::RunStatus,
) -> Result<crate::api::types::GetExperimentRunResultResponse, crate::error::Error> {
    run::close(client, run_id, status).await
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type TaskFn = Arc<dyn Fn(Datapoint) -> BoxFuture<Result<TaskOutput, String>> + Send + Sync>;
type SyncEvaluator = Arc<dyn Fn(&Value, &Datapoint) -> Result<Score, String> + Send + Sync>;
type OnStart = Box<dyn Fn(&RunStart) + Send + Sync>;
type OnResult = Arc<dyn Fn(&DatapointResult) + Send + Sync>;
type AsyncEvaluator =
    Arc<dyn Fn(Value, Datapoint) -> BoxFuture<Result<Score, String>> + Send + Sync>;

/// An evaluator, by how it runs.
#[derive(Clone)]
enum Evaluate {
    Sync(SyncEvaluator),
    Async(AsyncEvaluator),
}

/// Where the datapoints come from.
enum Source {
    None,
    Hosted(String),
    Local(Vec<Datapoint>),
}

/// What the run started with, for [`Experiment::on_start`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunStart {
    /// The run's id.
    pub run_id: String,
    /// Datapoints (times repetitions) this process will run.
    pub to_run: usize,
    /// Datapoints of the run left to other shards or recorded before.
    pub skipped: usize,
}

/// An experiment: a named task over a dataset, with evaluators, settings,
/// and what to do with the run. Build it with the setters, then
/// [`run`](Self::run) it.
#[must_use = "an Experiment does nothing until it is run"]
pub struct Experiment {
    name: String,
    source: Source,
    task: Option<TaskFn>,
    evaluators: Vec<(String, Evaluate)>,
    concurrency: usize,
    timeout: Option<Duration>,
    repetitions: u32,
    metadata: Map<String, Value>,
    run_id: Option<String>,
    resume: Option<String>,
    shard: Option<(u32, u32)>,
    compare_to: Option<String>,
    gates: Vec<Gate>,
    logger: Option<Logger>,
    flush_timeout: Duration,
    record: bool,
    stop: Option<BoxFuture<()>>,
    on_start: Option<OnStart>,
    on_result: Option<OnResult>,
    /// The first problem a setter met: reported by `run` before any request.
    invalid: Option<(String, String)>,
}

impl Experiment {
    /// The default of [`concurrency`](Self::concurrency).
    pub const DEFAULT_CONCURRENCY: usize = 10;
    /// The default of [`timeout`](Self::timeout).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
    /// The default of [`flush_timeout`](Self::flush_timeout).
    pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

    /// An experiment named `name` (the run's name in HoneyHive).
    pub fn new(name: impl Into<String>) -> Self {
        Experiment {
            name: name.into(),
            source: Source::None,
            task: None,
            evaluators: Vec::new(),
            concurrency: Self::DEFAULT_CONCURRENCY,
            timeout: Some(Self::DEFAULT_TIMEOUT),
            repetitions: 1,
            metadata: Map::new(),
            run_id: None,
            resume: None,
            shard: None,
            compare_to: None,
            gates: Vec::new(),
            logger: None,
            flush_timeout: Self::DEFAULT_FLUSH_TIMEOUT,
            record: true,
            stop: None,
            on_start: None,
            on_result: None,
            invalid: None,
        }
    }

    /// Runs over the datapoints of the hosted dataset `dataset_id`, read
    /// when the run starts (`GET /v1/datapoints?dataset_id=…`).
    pub fn dataset(mut self, dataset_id: impl Into<String>) -> Self {
        self.source = Source::Hosted(dataset_id.into());
        self
    }

    /// Runs over these local datapoints (ids derived from their content,
    /// see [`Datapoint`]).
    pub fn datapoints(mut self, datapoints: impl IntoIterator<Item = Datapoint>) -> Self {
        self.source = Source::Local(datapoints.into_iter().collect());
        self
    }

    /// The task: an async function of a datapoint that returns its outputs
    /// (any `Into<`[`TaskOutput`]`>`: a JSON value, or outputs with
    /// metrics) or an error (anything `Display`).
    pub fn task<F, Fut, O, E>(mut self, task: F) -> Self
    where
        F: Fn(Datapoint) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
        O: Into<TaskOutput>,
        E: fmt::Display,
    {
        self.task = Some(Arc::new(move |row| {
            let fut = task(row);
            Box::pin(async move { fut.await.map(Into::into).map_err(|e| e.to_string()) })
        }));
        self
    }

    /// Adds an evaluator `name`: a function of the task's outputs and the
    /// datapoint that returns a score (a number, a bool, JSON), or a
    /// `Result` of one (see [`IntoScore`]). It runs after the task, on
    /// tokio's blocking pool (so it may block), within the datapoint's
    /// [`timeout`](Self::timeout); a panic is caught and gives no score.
    pub fn evaluator<F, S>(mut self, name: impl Into<String>, evaluator: F) -> Self
    where
        F: Fn(&Value, &Datapoint) -> S + Send + Sync + 'static,
        S: IntoScore,
    {
        let evaluate = Evaluate::Sync(Arc::new(move |outputs, row| {
            evaluator(outputs, row).into_score()
        }));
        self.add_evaluator(name.into(), evaluate);
        self
    }

    /// Adds an async evaluator `name` (an LLM judge, a subprocess): given
    /// the outputs and the datapoint, it returns what
    /// [`evaluator`](Self::evaluator)'s functions return. It runs in a
    /// tokio task of its own, under the same [`timeout`](Self::timeout).
    pub fn evaluator_async<F, Fut>(mut self, name: impl Into<String>, evaluator: F) -> Self
    where
        F: Fn(Value, Datapoint) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoScore,
    {
        let evaluate = Evaluate::Async(Arc::new(move |outputs, row| {
            let fut = evaluator(outputs, row);
            Box::pin(async move { fut.await.into_score() })
        }));
        self.add_evaluator(name.into(), evaluate);
        self
    }

    fn add_evaluator(&mut self, name: String, evaluate: Evaluate) {
        if name.trim().is_empty() {
            self.remember("evaluator", "has an empty name; name it after its metric");
        } else if self.evaluators.iter().any(|(n, _)| *n == name) {
            self.remember(
                "evaluator",
                format!("{name:?} is added twice; give each evaluator its own name"),
            );
        }
        self.evaluators.push((name, evaluate));
    }

    /// How many datapoints run at once (default
    /// [`DEFAULT_CONCURRENCY`](Self::DEFAULT_CONCURRENCY); at least 1).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        if concurrency == 0 {
            self.remember("concurrency", "is 0; give at least 1");
        }
        self.concurrency = concurrency;
        self
    }

    /// How long a datapoint's task (and each async evaluator) may run
    /// before it is stopped and the datapoint marked
    /// [`TaskFailure::Timeout`] (default
    /// [`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT); [`Duration::MAX`]: no
    /// limit).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        if timeout.is_zero() {
            self.remember("timeout", "is 0; give the longest a task may run");
        }
        self.timeout = (timeout != Duration::MAX).then_some(timeout);
        self
    }

    /// Runs each datapoint `k` times (default 1), each a session of its own.
    pub fn repetitions(mut self, k: u32) -> Self {
        if k == 0 {
            self.remember("repetitions", "is 0; give at least 1");
        }
        self.repetitions = k;
        self
    }

    /// Metadata of the run: anything that serializes to a JSON object.
    pub fn metadata(mut self, metadata: impl Serialize) -> Self {
        match serde_json::to_value(metadata) {
            Ok(Value::Object(object)) => self.metadata = object,
            Ok(other) => self.remember(
                "metadata",
                format!(
                    "must be a JSON object, got {}",
                    crate::fields::json_kind(&other)
                ),
            ),
            Err(e) => self.remember("metadata", format!("could not be made JSON: {e}")),
        }
        self
    }

    /// The run's id (a UUID), instead of a new one: what shards of one run
    /// share (such as the CI pipeline's id mapped to a UUIDv5). Without
    /// [`shard`](Self::shard) or [`resume`](Self::resume), an id that names
    /// a run already is refused (the datapoints would run twice).
    pub fn run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = Some(run_id.into());
        self
    }

    /// Resumes the run `run_id`: reads it, runs only its datapoints that
    /// have no session yet (after a crash, a kill or a stop), and closes
    /// it. The datapoints are the run's dataset's (hosted), or the ones
    /// given to [`datapoints`](Self::datapoints) again (local: the same
    /// content gives the same ids).
    pub fn resume(mut self, run_id: impl Into<String>) -> Self {
        self.resume = Some(run_id.into());
        self
    }

    /// Runs only shard `index` of `count` (from 0): the datapoints whose id
    /// hashes to it (64-bit FNV-1a, then MurmurHash3's finalizer, modulo
    /// `count`). Shards share the run through [`run_id`](Self::run_id): the
    /// first creates it, the others join, and the one that finds every
    /// datapoint recorded when it finishes completes it.
    pub fn shard(mut self, index: u32, count: u32) -> Self {
        if count == 0 || index >= count {
            self.remember(
                "shard",
                format!("is {index} of {count}; give an index from 0 to count - 1"),
            );
        }
        self.shard = Some((index, count));
        self
    }

    /// Compares the run with the run `base_run_id` when it is done: per
    /// metric deltas, and datapoints whose pass/fail changed, in
    /// [`ExperimentReport::comparison`]. A base run that does not exist is
    /// refused before any task runs.
    pub fn compare_to(mut self, base_run_id: impl Into<String>) -> Self {
        self.compare_to = Some(base_run_id.into());
        self
    }

    /// Adds a gate, checked against [`compare_to`](Self::compare_to)'s run:
    /// a broken gate ends the run in [`ExperimentError::Gate`].
    pub fn gate(mut self, gate: Gate) -> Self {
        self.gates.push(gate);
        self
    }

    /// Records through this Logger (whose route must be
    /// [`Route::EventBatch`](crate::Route::EventBatch)) instead of one of
    /// the run's own: the one the `tracing` layer logs to, so the run
    /// flushes the task's spans before it closes. The run flushes it and
    /// does not shut it down.
    pub fn logger(mut self, logger: Logger) -> Self {
        self.logger = Some(logger);
        self
    }

    /// How long the run waits for its sessions to be delivered before it
    /// closes (default [`DEFAULT_FLUSH_TIMEOUT`](Self::DEFAULT_FLUSH_TIMEOUT)).
    /// Sessions still undelivered then make the run
    /// [`Failed`](crate::RunStatus::Failed), and are in the report's
    /// [`recording`](ExperimentReport::recording) as dead letters.
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// Whether to record (default `true`). With `false` nothing is sent:
    /// the task and evaluators run and the report has the results, under a
    /// run id that HoneyHive never saw.
    pub fn record(mut self, record: bool) -> Self {
        self.record = record;
        self
    }

    /// Stops the run when `signal` completes (such as
    /// `tokio::signal::ctrl_c()`): no datapoint starts after it, the ones
    /// running are stopped and marked [`TaskFailure::Cancelled`], what was
    /// recorded is flushed, and the run is closed
    /// [`Cancelled`](crate::RunStatus::Cancelled). [`resume`](Self::resume)
    /// finishes it later.
    pub fn stop_when(mut self, signal: impl Future<Output = ()> + Send + 'static) -> Self {
        self.stop = Some(Box::pin(signal));
        self
    }

    /// Called once the run is created (or joined), before the first
    /// datapoint starts: to print the run's id.
    pub fn on_start(mut self, callback: impl Fn(&RunStart) + Send + Sync + 'static) -> Self {
        self.on_start = Some(Box::new(callback));
        self
    }

    /// Called as each datapoint ends, from the task that ran it: for a
    /// progress bar.
    pub fn on_result(
        mut self,
        callback: impl Fn(&DatapointResult) + Send + Sync + 'static,
    ) -> Self {
        self.on_result = Some(Arc::new(callback));
        self
    }

    /// Runs the experiment, records it, and reports.
    ///
    /// # Errors
    /// [`ExperimentError::Api`] with [`Error::InvalidInput`](crate::Error::InvalidInput)
    /// before any request: no task, no dataset or an empty one, a setter's
    /// problem (naming the setting, or `datapoints[i].field`), a run id
    /// that is not a UUID. [`ExperimentError::Api`] when creating or
    /// reading the run, or reading the dataset, fails (nothing ran). A run
    /// that went through returns its report, whatever its datapoints did;
    /// with gates, [`ExperimentError::Gate`] holds the report when one is
    /// broken, and [`ExperimentError::Close`] holds it when the run could
    /// not be closed.
    pub async fn run(self, client: &Client) -> Result<ExperimentReport, ExperimentError> {
        run::run(self, client).await
    }

    fn remember(&mut self, field: &str, problem: impl Into<String>) {
        if self.invalid.is_none() {
            self.invalid = Some((field.to_owned(), problem.into()));
        }
    }
}

impl fmt::Debug for Experiment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Experiment")
            .field("name", &self.name)
            .field(
                "evaluators",
                &self.evaluators.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .field("repetitions", &self.repetitions)
            .field("run_id", &self.run_id)
            .field("resume", &self.resume)
            .field("shard", &self.shard)
            .field("compare_to", &self.compare_to)
            .finish_non_exhaustive()
    }
}
