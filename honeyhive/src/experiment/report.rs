//! [`ExperimentReport`]: what a run did, datapoint by datapoint.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::Value;

use super::Score;
use crate::api::types::GetExperimentRunResultResponse;
use crate::{logger::LoggerReport, resources::RunStatus, session::SessionId};

/// The status as the API spells it.
pub(super) fn status_name(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Pending => "pending",
        RunStatus::Running => "running",
        RunStatus::Completed => "completed",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled => "cancelled",
    }
}

/// Why a task produced no outputs for a datapoint.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskFailure {
    /// The task returned an error (its `Display`).
    Error(String),
    /// The task panicked (the panic's message).
    Panic(String),
    /// The task ran past [`Experiment::timeout`](super::Experiment::timeout).
    Timeout(Duration),
    /// The run was stopped while the task ran, or before it started.
    Cancelled,
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskFailure::Error(e) => write!(f, "the task failed: {e}"),
            TaskFailure::Panic(p) => write!(f, "the task panicked: {p}"),
            TaskFailure::Timeout(after) => write!(
                f,
                "the task did not finish within {} ms",
                crate::millis::rounded(*after)
            ),
            TaskFailure::Cancelled => f.write_str("the run was stopped before the task finished"),
        }
    }
}

/// How one datapoint (one repetition of it) ended. Every datapoint of the
/// run is counted once, in exactly one of these.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Outcome {
    /// The task returned outputs, every evaluator gave a score, and no
    /// score is `false`.
    Passed,
    /// The task returned outputs, but a score is `false` (a pass/fail
    /// evaluator said fail), or an evaluator gave no score (see
    /// [`DatapointResult::evaluator_errors`]).
    Failed,
    /// The task gave no outputs: it failed, panicked, timed out, or the run
    /// was stopped.
    Errored(TaskFailure),
}

/// What happened to one datapoint (one repetition of it).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct DatapointResult {
    /// The datapoint's id.
    pub datapoint_id: String,
    /// Which repetition, from 0.
    pub repetition: u32,
    /// The session it was recorded as.
    pub session_id: SessionId,
    /// How it ended.
    pub outcome: Outcome,
    /// The task's outputs, when it gave some.
    pub outputs: Option<Value>,
    /// Scores by metric: the task's own metrics, then the evaluators'.
    pub scores: BTreeMap<String, Score>,
    /// Evaluators that gave no score, by name, with the reason.
    pub evaluator_errors: BTreeMap<String, String>,
    /// How long the task took (to its end, error or timeout).
    pub duration: Duration,
}

/// A metric over the run's datapoints (numbers, and bools as 1 or 0).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct MetricStats {
    /// Datapoints with a numeric score for it.
    pub count: usize,
    /// Their mean.
    pub mean: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// Datapoints whose evaluator for it gave no score.
    pub missing: usize,
}

/// One metric of this run against the base run ([`Experiment::compare_to`](super::Experiment::compare_to)).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct MetricDelta {
    /// The metric.
    pub metric: String,
    /// The base run's aggregate, when it had the metric.
    pub old: Option<f64>,
    /// This run's aggregate, when it has the metric.
    pub new: Option<f64>,
}

impl MetricDelta {
    /// `new - old`, when both are known.
    pub fn delta(&self) -> Option<f64> {
        Some(self.new? - self.old?)
    }
}

/// This run against a base run, as `GET /v1/runs/{new}/compare/{old}`
/// answered.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Comparison {
    /// The base run.
    pub base_run_id: String,
    /// Per metric, by name.
    pub metrics: Vec<MetricDelta>,
    /// Datapoints both runs have.
    pub common_datapoints: Vec<String>,
    /// Datapoints whose pass/fail changed: `(datapoint_id, passed_before,
    /// passed_now)`, from both runs' summaries.
    pub changed: Vec<(String, bool, bool)>,
}

impl Comparison {
    /// The delta of `metric`, if both runs have it.
    pub fn delta(&self, metric: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|m| m.metric == metric)
            .and_then(MetricDelta::delta)
    }
}

/// What a run did: its id and status, every datapoint's result, the
/// metrics aggregated, the recording, the summary HoneyHive gives back, and
/// the comparison with a base run.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ExperimentReport {
    /// The run's id.
    pub run_id: String,
    /// The status the run was closed with: [`Completed`](RunStatus::Completed)
    /// (every datapoint's session delivered), [`Failed`](RunStatus::Failed)
    /// (sessions not delivered within the flush budget),
    /// [`Cancelled`](RunStatus::Cancelled) (stopped,
    /// [`Experiment::stop_when`](super::Experiment::stop_when)), or
    /// [`Running`](RunStatus::Running) (a shard finished while others have
    /// datapoints left: the run stays open, and the last completes it).
    pub status: RunStatus,
    /// Why the status is not [`Completed`](RunStatus::Completed), in a
    /// sentence.
    pub status_reason: Option<String>,
    /// Every datapoint this process ran, once each, in the dataset's order
    /// (repetitions together).
    pub results: Vec<DatapointResult>,
    /// Datapoints of the run this process did not run: recorded before
    /// ([`Experiment::resume`](super::Experiment::resume)) or in other
    /// shards ([`Experiment::shard`](super::Experiment::shard)).
    pub skipped: usize,
    /// Per metric, over [`results`](Self::results).
    pub aggregates: BTreeMap<String, MetricStats>,
    /// The Logger's report after the flush that preceded the run's close:
    /// sessions not delivered are its dead letters.
    pub recording: Option<LoggerReport>,
    /// The run's summary, read back (`GET /v1/runs/{id}/summary`).
    pub summary: Option<GetExperimentRunResultResponse>,
    /// Why the summary could not be read, when it could not.
    pub summary_error: Option<String>,
    /// Against the base run, with [`Experiment::compare_to`](super::Experiment::compare_to).
    pub comparison: Option<Comparison>,
    /// Why the comparison could not be read, when it could not (a gate
    /// then fails: it cannot be checked).
    pub comparison_error: Option<String>,
    /// How long the run took, from its creation to its close.
    pub wall_time: Duration,
}

impl ExperimentReport {
    /// Results that [`Passed`](Outcome::Passed).
    pub fn passed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Passed))
    }

    /// Results that [`Failed`](Outcome::Failed) (a score `false`, or an
    /// evaluator gave no score).
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed))
    }

    /// Results that [`Errored`](Outcome::Errored) (the task gave no outputs).
    pub fn errored(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Errored(_)))
    }

    /// The results that did not pass, with the reason in a sentence.
    pub fn failures(&self) -> impl Iterator<Item = (&DatapointResult, String)> {
        self.results.iter().filter_map(|r| match &r.outcome {
            Outcome::Passed => None,
            Outcome::Errored(why) => Some((r, why.to_string())),
            Outcome::Failed => Some((
                r,
                r.scores
                    .iter()
                    .filter(|(_, score)| **score == Score::Bool(false))
                    .map(|(name, _)| format!("{name} is false"))
                    .chain(
                        r.evaluator_errors
                            .iter()
                            .map(|(name, why)| format!("evaluator {name} gave no score: {why}")),
                    )
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        })
    }

    fn count(&self, which: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|r| which(&r.outcome)).count()
    }
}

impl fmt::Display for ExperimentReport {
    /// A summary table: the run, the counts, each metric's aggregate (and
    /// delta against the base run), and the failures (at most 10).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "run {} {}", self.run_id, status_name(self.status))?;
        if let Some(reason) = &self.status_reason {
            writeln!(f, "  {reason}")?;
        }
        if let Some(error) = &self.summary_error {
            writeln!(f, "  the run's summary could not be read: {error}")?;
        }
        if let Some(error) = &self.comparison_error {
            writeln!(f, "  the comparison with the base run failed: {error}")?;
        }
        writeln!(
            f,
            "{} datapoint{}: {} passed, {} failed, {} errored{} in {} ms",
            self.results.len(),
            if self.results.len() == 1 { "" } else { "s" },
            self.passed(),
            self.failed(),
            self.errored(),
            if self.skipped > 0 {
                format!(", {} skipped", self.skipped)
            } else {
                String::new()
            },
            crate::millis::rounded(self.wall_time)
        )?;
        if !self.aggregates.is_empty() {
            writeln!(
                f,
                "{:<24} {:>7} {:>10} {:>10} {:>10} {:>10}",
                "metric", "n", "mean", "min", "max", "delta"
            )?;
            for (name, a) in &self.aggregates {
                let delta = self
                    .comparison
                    .as_ref()
                    .and_then(|c| c.delta(name))
                    .map_or_else(|| "-".to_owned(), |d| format!("{d:+.4}"));
                // A metric no datapoint was scored on has no figures.
                let figure = |x: f64| {
                    if a.count == 0 || !x.is_finite() {
                        "-".to_owned()
                    } else {
                        format!("{x:.4}")
                    }
                };
                writeln!(
                    f,
                    "{name:<24} {:>7} {:>10} {:>10} {:>10} {delta:>10}",
                    a.count,
                    figure(a.mean),
                    figure(a.min),
                    figure(a.max)
                )?;
            }
        }
        for (result, why) in self.failures().take(10) {
            writeln!(f, "  {} #{}: {why}", result.datapoint_id, result.repetition)?;
        }
        Ok(())
    }
}
