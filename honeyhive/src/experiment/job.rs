//! One datapoint's job: the task in a tokio task of its own (inside the
//! session's span), within the timeout; the evaluators; the session event
//! logged. And the plan run at most `concurrency` jobs at once.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use serde_json::{Map, Value, json};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tracing::Instrument;

use super::{Datapoint, DatapointResult, Evaluate, Outcome, Score, TaskFailure, TaskFn};
use crate::{event::Event, logger::Logger, session::SessionId};

/// What every datapoint's job shares.
pub(super) struct Ctx {
    pub(super) task: TaskFn,
    pub(super) evaluators: Vec<(String, Evaluate)>,
    pub(super) timeout: Option<Duration>,
    pub(super) name: String,
    pub(super) run_id: String,
    pub(super) dataset_id: String,
    pub(super) logger: Option<Logger>,
    pub(super) on_result: Option<super::OnResult>,
    /// Sessions handed to the Logger.
    pub(super) logged: Mutex<Vec<SessionId>>,
    /// Sessions the Logger refused, with why.
    pub(super) refused: Mutex<Vec<(SessionId, String)>>,
}

/// A spawned task stopped when its handle is dropped: a datapoint's job
/// that is stopped (timeout, run stopped) stops the task it spawned.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the plan, at most `concurrency` at once, until done or stopped.
/// Every planned datapoint gets exactly one result, in the plan's order.
pub(super) async fn execute(
    ctx: &Arc<Ctx>,
    plan: Vec<(Datapoint, SessionId)>,
    concurrency: usize,
    mut stop: Option<super::BoxFuture<()>>,
) -> (Vec<DatapointResult>, bool) {
    let mut results: Vec<Option<DatapointResult>> = vec![None; plan.len()];
    let mut set = JoinSet::new();
    let mut by_task = HashMap::new();
    let mut next = 0;
    let mut stopped = false;
    loop {
        while !stopped && next < plan.len() && set.len() < concurrency.max(1) {
            let (row, session_id) = plan[next].clone();
            let handle = set.spawn(job(Arc::clone(ctx), row, session_id));
            by_task.insert(handle.id(), next);
            next += 1;
        }
        if set.is_empty() {
            break;
        }
        let joined = match stop.as_mut() {
            Some(signal) => tokio::select! {
                joined = set.join_next_with_id() => joined,
                () = signal.as_mut() => {
                    stopped = true;
                    stop = None;
                    set.abort_all();
                    continue;
                }
            },
            None => set.join_next_with_id().await,
        };
        let Some(joined) = joined else { break };
        match joined {
            Ok((id, result)) => {
                if let Some(index) = by_task.remove(&id) {
                    results[index] = Some(result);
                }
            }
            Err(e) => {
                if let Some(index) = by_task.remove(&e.id()) {
                    let (row, session_id) = &plan[index];
                    let failure = if e.is_cancelled() {
                        TaskFailure::Cancelled
                    } else {
                        TaskFailure::Panic(panic_message(e))
                    };
                    let result = unrecorded(row, session_id, failure);
                    if let Some(on_result) = &ctx.on_result {
                        on_result(&result);
                    }
                    results[index] = Some(result);
                }
            }
        }
    }
    let results = results
        .into_iter()
        .zip(plan)
        .map(|(result, (row, session_id))| {
            result.unwrap_or_else(|| unrecorded(&row, &session_id, TaskFailure::Cancelled))
        })
        .collect();
    (results, stopped)
}

/// The result of a datapoint whose job never finished: not recorded, so a
/// resume runs it.
fn unrecorded(row: &Datapoint, session_id: &SessionId, failure: TaskFailure) -> DatapointResult {
    DatapointResult {
        datapoint_id: row.id.clone(),
        repetition: row.repetition,
        session_id: session_id.clone(),
        outcome: Outcome::Errored(failure),
        outputs: None,
        scores: BTreeMap::new(),
        evaluator_errors: BTreeMap::new(),
        duration: Duration::ZERO,
    }
}

fn panic_message(e: JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => payload_message(payload.as_ref()),
        Err(e) => e.to_string(),
    }
}

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Waits for a spawned task, at most `timeout`.
async fn within<T>(
    timeout: Option<Duration>,
    mut handle: AbortOnDrop<T>,
) -> Result<T, TaskFailure> {
    let joined = match timeout {
        Some(limit) => match tokio::time::timeout(limit, &mut handle.0).await {
            Ok(joined) => joined,
            Err(_) => return Err(TaskFailure::Timeout(limit)),
        },
        None => (&mut handle.0).await,
    };
    joined.map_err(|e| {
        if e.is_panic() {
            TaskFailure::Panic(panic_message(e))
        } else {
            TaskFailure::Cancelled
        }
    })
}

/// One datapoint: the task in a tokio task of its own (inside the
/// session's span), the evaluators, the session logged.
async fn job(ctx: Arc<Ctx>, row: Datapoint, session_id: SessionId) -> DatapointResult {
    let started = SystemTime::now();
    let clock = Instant::now();
    let span = tracing::info_span!(
        "honeyhive.experiment",
        honeyhive.event_type = "session",
        honeyhive.session_id = %session_id,
        honeyhive.scope_only = true,
    );
    let task = AbortOnDrop(tokio::spawn((ctx.task)(row.clone()).instrument(span)));
    let ran = within(ctx.timeout, task)
        .await
        .and_then(|out| out.map_err(TaskFailure::Error));
    let duration = clock.elapsed();
    let mut scores = BTreeMap::new();
    let mut evaluator_errors = BTreeMap::new();
    let (outcome, outputs) = match ran {
        Ok(out) => {
            for (name, value) in out.metrics {
                scores.insert(name, Score::from(value));
            }
            for (name, evaluate) in &ctx.evaluators {
                match evaluate_one(evaluate, &out.outputs, &row, ctx.timeout).await {
                    Ok(score) => {
                        scores.insert(name.clone(), score);
                    }
                    Err(why) => {
                        // No score of that name, not even one the task gave.
                        scores.remove(name);
                        evaluator_errors.insert(name.clone(), why);
                    }
                }
            }
            let said_no = scores.values().any(|s| *s == Score::Bool(false));
            let outcome = if evaluator_errors.is_empty() && !said_no {
                Outcome::Passed
            } else {
                Outcome::Failed
            };
            (outcome, Some(out.outputs))
        }
        Err(failure) => (Outcome::Errored(failure), None),
    };
    let result = DatapointResult {
        datapoint_id: row.id.clone(),
        repetition: row.repetition,
        session_id: session_id.clone(),
        outcome,
        outputs,
        scores,
        evaluator_errors,
        duration,
    };
    if let Some(logger) = &ctx.logger {
        let event = session_event(&ctx, &row, &result, started);
        match logger.log_wait(&session_id, event).await {
            Ok(()) => ctx.logged.lock().push(session_id),
            Err(e) => ctx.refused.lock().push((session_id, e.to_string())),
        }
    }
    if let Some(on_result) = &ctx.on_result {
        on_result(&result);
    }
    result
}

/// One evaluator's score, or why there is none.
async fn evaluate_one(
    evaluate: &Evaluate,
    outputs: &Value,
    row: &Datapoint,
    timeout: Option<Duration>,
) -> Result<Score, String> {
    match evaluate {
        Evaluate::Sync(f) => {
            // On the blocking pool, not the runtime's workers: a sync
            // evaluator may take its time (a model call, a file) without
            // holding up the tasks. A blocking call cannot be stopped: at
            // the timeout the datapoint stops waiting for it.
            let (f, outputs, row) = (Arc::clone(f), outputs.clone(), row.clone());
            let handle = AbortOnDrop(tokio::task::spawn_blocking(move || {
                std::panic::catch_unwind(AssertUnwindSafe(|| f(&outputs, &row))).unwrap_or_else(
                    |payload| Err(format!("panicked: {}", payload_message(payload.as_ref()))),
                )
            }));
            settle_evaluation(within(timeout, handle).await)
        }
        Evaluate::Async(f) => {
            let handle = AbortOnDrop(tokio::spawn(f(outputs.clone(), row.clone())));
            settle_evaluation(within(timeout, handle).await)
        }
    }
}

/// An evaluator's score, or why there is none (its error, a panic, the
/// timeout).
fn settle_evaluation(
    finished: Result<Result<Score, String>, TaskFailure>,
) -> Result<Score, String> {
    match finished {
        Ok(score) => score,
        Err(TaskFailure::Panic(p)) => Err(format!("panicked: {p}")),
        Err(TaskFailure::Timeout(limit)) => Err(format!(
            "did not finish within {} ms",
            crate::millis::rounded(limit)
        )),
        Err(other) => Err(other.to_string()),
    }
}

/// The session event of one datapoint: its id is the session's.
fn session_event(
    ctx: &Ctx,
    row: &Datapoint,
    result: &DatapointResult,
    started: SystemTime,
) -> Event {
    let mut metadata = json!({
        "run_id": ctx.run_id,
        "dataset_id": ctx.dataset_id,
        "datapoint_id": row.id,
        "repetition": row.repetition,
        "source": "evaluation",
    });
    if !result.evaluator_errors.is_empty() {
        metadata["evaluator_errors"] = json!(result.evaluator_errors);
    }
    let mut event = Event::session(ctx.name.clone())
        .event_id(result.session_id.as_str())
        .source("evaluation")
        .inputs(&row.inputs)
        .metadata(metadata)
        .start_time(started)
        .duration(result.duration);
    if let Some(outputs) = &result.outputs {
        event = event.outputs(outputs);
    }
    if !result.scores.is_empty() {
        let metrics: Map<String, Value> = result
            .scores
            .iter()
            .map(|(name, score)| (name.clone(), score.to_json()))
            .collect();
        event = event.metrics(metrics);
    }
    if let Some(truth) = &row.ground_truth {
        event = event.feedback(json!({ "ground_truth": truth }));
    }
    if let Outcome::Errored(failure) = &result.outcome {
        event = event.error(failure.to_string());
    }
    event
}
