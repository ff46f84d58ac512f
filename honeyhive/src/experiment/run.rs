//! The run: checked, planned, created or joined, executed datapoint by
//! datapoint, flushed, closed, and read back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use serde_json::{Map, Value, json};

use super::job::{Ctx, execute};
use super::report::{Comparison, MetricDelta, MetricStats};
use super::{
    Datapoint, DatapointResult, Experiment, ExperimentError, ExperimentReport, Outcome, RunStart,
    Source, TaskFailure, TaskFn, calls, ids,
};
use crate::api::types::DatapointResult as Recorded;
use crate::fields::is_uuid;
use crate::{
    client::Client, error::Error, logger::Logger, logger::LoggerConfig, logger::LoggerReport,
    logger::Route, resources::NewRun, resources::RunStatus, resources::RunUpdate,
    session::SessionId,
};

fn invalid(field: &str, problem: impl Into<String>) -> ExperimentError {
    ExperimentError::Api(Error::invalid(field, problem))
}

/// The datapoints, from where the experiment says, and the dataset's id.
struct Rows {
    rows: Vec<Datapoint>,
    /// The hosted dataset's id, or `None` for local rows.
    hosted: Option<String>,
    /// The id the run records: hosted, or derived from the local rows.
    dataset_id: String,
}

#[allow(
    clippy::too_many_lines,
    reason = "the run's steps, in order, each short"
)]
pub(super) async fn run(
    mut exp: Experiment,
    client: &Client,
) -> Result<ExperimentReport, ExperimentError> {
    let clock = Instant::now();
    // Checked before any request.
    if let Some((field, problem)) = exp.invalid.take() {
        return Err(invalid(&field, problem));
    }
    let Some(task) = exp.task.take() else {
        return Err(invalid(
            "task",
            "is not set; call Experiment::task with the function to evaluate",
        ));
    };
    for (field, id) in [
        ("run_id", &exp.run_id),
        ("resume", &exp.resume),
        ("compare_to", &exp.compare_to),
    ] {
        if let Some(id) = id
            && !is_uuid(id)
        {
            return Err(invalid(
                field,
                format!("is {id:?}, not a UUID; HoneyHive's run ids are UUIDs"),
            ));
        }
    }
    if let (Some(resume), Some(given)) = (&exp.resume, &exp.run_id)
        && resume != given
    {
        return Err(invalid(
            "run_id",
            format!("is {given}, but resume names {resume}; set one of them"),
        ));
    }
    if exp.shard.is_some() && exp.run_id.is_none() && exp.resume.is_none() {
        return Err(invalid(
            "shard",
            "needs the run's id that every shard shares: set Experiment::run_id (such as a \
             UUIDv5 of the CI pipeline's id)",
        ));
    }
    if !exp.gates.is_empty() && exp.compare_to.is_none() {
        return Err(invalid(
            "gate",
            "needs a base run to compare with: set Experiment::compare_to",
        ));
    }
    if let Some(logger) = &exp.logger
        && logger.route() != Route::EventBatch
    {
        return Err(invalid(
            "logger",
            "sends on Route::Event, and an experiment records on HoneyHive's /v1 routes; give \
             a Logger made with LoggerConfig::default().route(Route::EventBatch)",
        ));
    }
    let needs_record = [
        (exp.resume.is_some(), "resume"),
        (exp.shard.is_some(), "shard"),
        (exp.compare_to.is_some(), "compare_to"),
    ];
    if let Some((_, setting)) = needs_record.iter().find(|(set, _)| *set && !exp.record) {
        return Err(invalid(
            "record",
            format!(
                "is false, but {setting} needs a recorded run to read; record, or drop {setting}"
            ),
        ));
    }
    let source = std::mem::replace(&mut exp.source, Source::None);
    let local = match source {
        Source::Local(mut rows) => {
            for (i, row) in rows.iter().enumerate() {
                if let Some((field, problem)) = &row.invalid {
                    return Err(invalid(
                        &format!("datapoints[{i}].{field}"),
                        problem.clone(),
                    ));
                }
            }
            if rows.is_empty() {
                return Err(invalid(
                    "datapoints",
                    "is empty; give at least one datapoint",
                ));
            }
            ids::derive(&mut rows);
            Some(rows)
        }
        Source::Hosted(id) if id.trim().is_empty() => {
            return Err(invalid("dataset", "is empty; give a HoneyHive dataset id"));
        }
        Source::Hosted(id) => {
            return run_rows(exp, client, task, clock, None, Some(id)).await;
        }
        Source::None => None,
    };
    if local.is_none() && exp.resume.is_none() {
        return Err(invalid(
            "dataset",
            "is not set; call Experiment::dataset with a HoneyHive dataset id, or \
             Experiment::datapoints with local rows",
        ));
    }
    run_rows(exp, client, task, clock, local, None).await
}

/// The run, once the local rows (if any) are checked.
#[allow(
    clippy::too_many_lines,
    reason = "the run's steps, in order, each short"
)]
async fn run_rows(
    mut exp: Experiment,
    client: &Client,
    task: TaskFn,
    clock: Instant,
    local: Option<Vec<Datapoint>>,
    hosted: Option<String>,
) -> Result<ExperimentReport, ExperimentError> {
    let run_id = exp
        .resume
        .clone()
        .or_else(|| exp.run_id.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    // The base run, before any task runs.
    if let Some(base) = &exp.compare_to
        && exp.record
        && calls::get_run(client, base).await?.is_none()
    {
        return Err(invalid(
            "compare_to",
            format!("{base} names no run (the API answered 404); check the id, or drop compare_to"),
        ));
    }
    // An existing run: resumed, a shard's to join, or (a run id given
    // again) one not to run over a second time.
    let joins = exp.resume.is_some() || exp.shard.is_some();
    let existing = if exp.record && (joins || exp.run_id.is_some()) {
        calls::get_run(client, &run_id).await?
    } else {
        None
    };
    if existing.is_some() && !joins {
        return Err(invalid(
            "run_id",
            format!(
                "{run_id} names a run that exists already; to run what it is missing, call \
                 Experiment::resume({run_id:?}) (--resume on the command line), or give a new \
                 run id"
            ),
        ));
    }
    if exp.resume.is_some() && existing.is_none() {
        return Err(invalid(
            "resume",
            format!(
                "{run_id} names no run (the API answered 404); check the id, or drop resume to \
                 start a new run"
            ),
        ));
    }
    if let Some(run) = &existing {
        same_dataset(run, &run_id, local.is_some(), hosted.as_deref())?;
    }
    let hosted = hosted.or_else(|| {
        if local.is_some() {
            return None;
        }
        existing.as_ref().and_then(|run| run.dataset_id.clone())
    });
    let Rows {
        rows,
        hosted,
        dataset_id,
    } = match (local, hosted) {
        (Some(rows), _) => {
            let dataset_id = ids::offline_dataset(&rows);
            if let Some(recorded) = existing
                .as_ref()
                .and_then(|run| run.metadata.get("offline_dataset_id"))
                .and_then(Value::as_str)
                && recorded != dataset_id
            {
                return Err(invalid(
                    "datapoints",
                    format!(
                        "are not the ones run {run_id} ran over (their content-derived dataset \
                         id is {dataset_id}, the run's {recorded}); give the same rows, in the \
                         same order"
                    ),
                ));
            }
            Rows {
                rows,
                hosted: None,
                dataset_id,
            }
        }
        (None, Some(id)) => {
            let rows: Vec<Datapoint> = calls::dataset(client, &id)
                .await?
                .into_iter()
                .map(|d| {
                    let mut row = Datapoint::new(Map::new());
                    row.id = d.id.to_string();
                    row.inputs = d.inputs;
                    row.ground_truth = d.ground_truth.map(Value::Object);
                    row.metadata = d.metadata.unwrap_or_default();
                    row
                })
                .collect();
            if rows.is_empty() {
                return Err(invalid(
                    "dataset",
                    format!("{id} has no datapoints; add some, or run over another dataset"),
                ));
            }
            Rows {
                rows,
                hosted: Some(id.clone()),
                dataset_id: id,
            }
        }
        (None, None) => {
            return Err(invalid(
                "datapoints",
                format!(
                    "are needed: run {run_id} ran over local datapoints; give them again with \
                     Experiment::datapoints"
                ),
            ));
        }
    };

    let mut metadata = exp.metadata.clone();
    if hosted.is_none() {
        metadata.insert("offline_dataset_id".into(), dataset_id.clone().into());
    }
    let k = exp.repetitions;
    let created = exp.record && existing.is_none();
    if created {
        let mut run = NewRun::new(exp.name.clone())
            .run_id(run_id.clone())
            .status(RunStatus::Running)
            .datapoint_ids(rows.iter().map(|r| r.id.clone()))
            .metadata(&metadata)
            .configuration(json!({ "repetitions": k }));
        if let Some(hosted) = &hosted {
            run = run.dataset_id(hosted.clone());
        }
        calls::create_run(client, run).await?;
    }
    // What the run has already: resumed, or joined (another shard's).
    let mut done: HashMap<String, u32> = HashMap::new();
    let mut prior_sessions: Vec<String> = Vec::new();
    if exp.record && !created {
        let summary = calls::summary(client, &run_id).await?;
        for datapoint in summary.datapoints {
            if let Some(id) = datapoint.datapoint_id {
                *done.entry(id).or_default() += 1;
            }
            prior_sessions.push(datapoint.session_id);
        }
    }
    // The plan: every (datapoint, repetition) of this shard not done yet.
    let mut plan = Vec::new();
    let mut skipped = 0;
    for row in &rows {
        let ours = exp
            .shard
            .is_none_or(|(index, count)| ids::shard_of(&row.id, count) == index);
        let had = done.get(&row.id).copied().unwrap_or(0);
        for repetition in 0..k {
            if ours && repetition >= had {
                let mut row = row.clone();
                row.repetition = repetition;
                plan.push((row, SessionId::new()));
            } else {
                skipped += 1;
            }
        }
    }
    if let Some(on_start) = &exp.on_start {
        on_start(&RunStart {
            run_id: run_id.clone(),
            to_run: plan.len(),
            skipped,
        });
    }

    let (logger, own_logger) = match (exp.record, exp.logger.take()) {
        (false, _) => (None, false),
        (true, Some(logger)) => (Some(logger), false),
        (true, None) => (
            Some(Logger::new(
                client,
                LoggerConfig::default().route(Route::EventBatch),
            )?),
            true,
        ),
    };
    let ctx = Arc::new(Ctx {
        task,
        evaluators: std::mem::take(&mut exp.evaluators),
        timeout: exp.timeout,
        name: exp.name.clone(),
        run_id: run_id.clone(),
        dataset_id: dataset_id.clone(),
        logger: logger.clone(),
        on_result: exp.on_result.take(),
        logged: Mutex::new(Vec::new()),
        refused: Mutex::new(Vec::new()),
    });
    let (results, stopped) = execute(&ctx, plan, exp.concurrency, exp.stop.take()).await;

    // Flushed before the run closes.
    let recording = match &logger {
        Some(logger) if own_logger => Some(logger.shutdown(exp.flush_timeout).await),
        Some(logger) => Some(logger.flush(exp.flush_timeout).await),
        None => None,
    };
    let logged: Vec<SessionId> = std::mem::take(&mut *ctx.logged.lock());
    let refused = std::mem::take(&mut *ctx.refused.lock());
    let undelivered = undelivered(recording.as_ref(), &logged, &refused);

    let ran = results.len();
    let mut status = RunStatus::Completed;
    let mut status_reason = None;
    if stopped {
        status = RunStatus::Cancelled;
        let finished = results
            .iter()
            .filter(|r| r.outcome != Outcome::Errored(TaskFailure::Cancelled))
            .count();
        status_reason = Some(format!(
            "stopped with {finished} of {ran} datapoints done; resume the run to finish it"
        ));
    } else if let Some(report) = &recording
        && (!report.complete || !undelivered.is_empty())
    {
        status = RunStatus::Failed;
        status_reason = Some(format!(
            "{} of {} sessions were not delivered within {} ms ({}); they are the recording's \
             dead letters",
            undelivered.len().max(usize::from(!report.complete)),
            logged.len() + refused.len(),
            crate::millis::rounded(exp.flush_timeout),
            report
                .dead_letters
                .first()
                .map_or_else(|| "the flush timed out".to_owned(), |l| l.reason.clone()),
        ));
    }
    let delivered: Vec<String> = logged
        .iter()
        .map(ToString::to_string)
        .filter(|id| !undelivered.contains(id))
        .collect();

    let mut summary = None;
    let mut summary_error = None;
    let mut close_error = None;
    if exp.record {
        let mut session_ids = prior_sessions;
        session_ids.extend(delivered);
        if status == RunStatus::Completed && exp.shard.is_some() {
            // The shard that finds every datapoint recorded completes the
            // run, with every shard's sessions.
            match calls::summary(client, &run_id).await {
                Ok(read) => {
                    let mut counts: HashMap<&str, u32> = HashMap::new();
                    for datapoint in &read.datapoints {
                        if let Some(id) = &datapoint.datapoint_id {
                            *counts.entry(id.as_str()).or_default() += 1;
                        }
                    }
                    let recorded: usize = rows
                        .iter()
                        .map(|r| counts.get(r.id.as_str()).copied().unwrap_or(0).min(k) as usize)
                        .sum();
                    let expected = rows.len() * k as usize;
                    if recorded < expected {
                        status = RunStatus::Running;
                        status_reason = Some(format!(
                            "{recorded} of {expected} datapoints are recorded; the run stays \
                             open for the other shards (the last to finish completes it)"
                        ));
                    } else {
                        session_ids = read
                            .datapoints
                            .iter()
                            .map(|d| d.session_id.clone())
                            .collect();
                    }
                }
                Err(e) => {
                    status = RunStatus::Running;
                    status_reason = Some(format!(
                        "could not tell whether the other shards are done, so the run stays \
                         open: {e}"
                    ));
                }
            }
        }
        if status != RunStatus::Running {
            dedup(&mut session_ids);
            // The run's metadata as it stands (a resume or a shard may
            // give none), this process's on top, the old reason dropped.
            let mut closing = existing
                .as_ref()
                .map(|run| run.metadata.clone())
                .unwrap_or_default();
            closing.extend(metadata.clone());
            closing.remove("status_reason");
            if let Some(reason) = &status_reason {
                closing.insert("status_reason".into(), reason.clone().into());
            }
            let update = RunUpdate::new()
                .status(status)
                .session_ids(session_ids.iter().cloned())
                .event_ids(session_ids)
                .metadata(closing);
            close_error = calls::update_run(client, &run_id, update).await.err();
        }
        match calls::summary(client, &run_id).await {
            Ok(read) => summary = Some(read),
            Err(e) => summary_error = Some(e.to_string()),
        }
    }

    let mut comparison = None;
    let mut comparison_error = None;
    if let Some(base) = &exp.compare_to
        && exp.record
    {
        let ours = summary.as_ref().map(|read| read.datapoints.as_slice());
        match compare(client, &run_id, base, ours).await {
            Ok(c) => comparison = Some(c),
            Err(e) => comparison_error = Some(e.to_string()),
        }
    }
    let aggregates = aggregate(&results);
    let report = ExperimentReport {
        run_id,
        status,
        status_reason,
        results,
        skipped,
        aggregates,
        recording,
        summary,
        summary_error,
        comparison,
        comparison_error,
        wall_time: clock.elapsed(),
    };
    if let Some(error) = close_error {
        return Err(ExperimentError::Close {
            report: Box::new(report),
            error,
        });
    }
    let failures: Vec<_> = match &report.comparison {
        Some(c) => exp.gates.iter().filter_map(|g| g.check(c)).collect(),
        None => exp
            .gates
            .iter()
            .map(|g| super::GateFailure {
                gate: g.clone(),
                old: None,
                new: None,
            })
            .collect(),
    };
    if failures.is_empty() {
        Ok(report)
    } else {
        Err(ExperimentError::Gate {
            report: Box::new(report),
            failures,
        })
    }
}

/// Refuses a dataset other than the one the existing run (resumed, or a
/// shard's to join) ran over: hosted against hosted, local against hosted,
/// and hosted against local. Local rows against local rows are checked by
/// their content-derived id.
fn same_dataset(
    run: &crate::api::types::ExperimentRunObject,
    run_id: &str,
    local: bool,
    hosted: Option<&str>,
) -> Result<(), ExperimentError> {
    let recorded = run.dataset_id.as_deref().filter(|id| !id.is_empty());
    let offline = run.metadata.contains_key("offline_dataset_id");
    match (recorded, local, hosted) {
        (Some(ran), true, _) => Err(invalid(
            "datapoints",
            format!(
                "are local, but run {run_id} ran over the hosted dataset {ran}; give \
                 Experiment::dataset({ran:?}) instead"
            ),
        )),
        (Some(ran), false, Some(given)) if ran != given => Err(invalid(
            "dataset",
            format!(
                "is {given}, but run {run_id} ran over the dataset {ran}; give {ran}, or \
                 start a new run"
            ),
        )),
        (None, false, Some(given)) if offline => Err(invalid(
            "dataset",
            format!(
                "is {given}, but run {run_id} ran over local datapoints; give them again \
                 with Experiment::datapoints"
            ),
        )),
        _ => Ok(()),
    }
}

fn dedup(ids: &mut Vec<String>) {
    let mut seen = HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
}

/// Sessions of this run that did not reach HoneyHive: refused by the
/// Logger, or its dead letters.
fn undelivered(
    recording: Option<&LoggerReport>,
    logged: &[SessionId],
    refused: &[(SessionId, String)],
) -> HashSet<String> {
    let ours: HashSet<&str> = logged.iter().map(SessionId::as_str).collect();
    let mut out: HashSet<String> = refused.iter().map(|(id, _)| id.to_string()).collect();
    if let Some(report) = recording {
        out.extend(
            report
                .dead_letters
                .iter()
                .filter(|l| ours.contains(l.session_id.as_str()))
                .map(|l| l.session_id.to_string()),
        );
    }
    out
}

/// Each metric over the results.
fn aggregate(results: &[DatapointResult]) -> BTreeMap<String, MetricStats> {
    let mut out: BTreeMap<String, MetricStats> = BTreeMap::new();
    let empty = || MetricStats {
        count: 0,
        mean: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        missing: 0,
    };
    for result in results {
        for (name, score) in &result.scores {
            if let Some(value) = score.as_f64() {
                let a = out.entry(name.clone()).or_insert_with(empty);
                a.count += 1;
                a.mean += value;
                a.min = a.min.min(value);
                a.max = a.max.max(value);
            }
        }
        for name in result.evaluator_errors.keys() {
            out.entry(name.clone()).or_insert_with(empty).missing += 1;
        }
    }
    for a in out.values_mut() {
        if a.count > 0 {
            #[allow(clippy::cast_precision_loss, reason = "a count of datapoints")]
            let n = a.count as f64;
            a.mean /= n;
        } else {
            a.min = f64::NAN;
            a.max = f64::NAN;
            a.mean = f64::NAN;
        }
    }
    out
}

/// This run against `base`: the API's per-metric comparison, and the
/// datapoints whose pass/fail changed between the two summaries.
async fn compare(
    client: &Client,
    run_id: &str,
    base: &str,
    ours: Option<&[Recorded]>,
) -> Result<Comparison, Error> {
    let answer = calls::compare(client, run_id, base).await?;
    let number = |n: &Option<serde_json::Number>| n.as_ref().and_then(serde_json::Number::as_f64);
    let metrics = answer
        .metrics
        .iter()
        .map(|m| MetricDelta {
            metric: m.metric_name.clone(),
            old: number(&m.old_aggregate),
            new: number(&m.new_aggregate),
        })
        .collect();
    let mut changed = Vec::new();
    if let Some(ours) = ours {
        let before = calls::summary(client, base).await?;
        let passed: HashMap<&str, bool> = before
            .datapoints
            .iter()
            .filter_map(|d| Some((d.datapoint_id.as_deref()?, d.passed)))
            .collect();
        for d in ours {
            if let Some(id) = d.datapoint_id.as_deref()
                && let Some(&was) = passed.get(id)
                && was != d.passed
            {
                changed.push((id.to_owned(), was, d.passed));
            }
        }
    }
    Ok(Comparison {
        base_run_id: base.to_owned(),
        metrics,
        common_datapoints: answer.common_datapoints,
        changed,
    })
}

/// [`super::close_run`].
pub(super) async fn close(
    client: &Client,
    run_id: &str,
    status: RunStatus,
) -> Result<crate::api::types::GetExperimentRunResultResponse, Error> {
    if !is_uuid(run_id) {
        return Err(Error::invalid(
            "run_id",
            format!("is {run_id:?}, not a UUID; pass the run's id (printed when the run started)"),
        ));
    }
    if !matches!(
        status,
        RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
    ) {
        return Err(Error::invalid(
            "status",
            "closes nothing: give Completed, Failed or Cancelled",
        ));
    }
    let run = client.runs().get(run_id).await?;
    let read = calls::summary(client, run_id).await?;
    let mut session_ids: Vec<String> = read
        .datapoints
        .iter()
        .map(|d| d.session_id.clone())
        .collect();
    dedup(&mut session_ids);
    let mut metadata = run.metadata.clone();
    metadata.remove("status_reason");
    let update = RunUpdate::new()
        .status(status)
        .session_ids(session_ids.iter().cloned())
        .event_ids(session_ids)
        .metadata(metadata);
    calls::update_run(client, run_id, update).await?;
    calls::summary(client, run_id).await
}
