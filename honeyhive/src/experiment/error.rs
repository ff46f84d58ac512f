//! [`ExperimentError`]: how a run ends without a report, or with a broken
//! gate.

use super::{ExperimentReport, GateFailure};
use crate::error::Error;

/// Why [`Experiment::run`](super::Experiment::run) returned no report, or
/// a report with a gate broken.
///
/// A failing datapoint is not an error: it is in the report. An error is
/// what stops the run as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExperimentError {
    /// A request the run needed failed, or an input was refused before any
    /// request ([`Error::InvalidInput`] naming the setting or
    /// `datapoints[i]` field): no run was created, or (for the close and
    /// the reads after it) the run stands as the error says.
    #[error(transparent)]
    Api(#[from] Error),
    /// The run went through, and broke gates: each failure says how.
    #[error("{} gate{} broken: {}", failures.len(), if failures.len() == 1 { "" } else { "s" },
        failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Gate {
        /// The run, as it ended.
        report: Box<ExperimentReport>,
        /// The gates it broke.
        failures: Vec<GateFailure>,
    },
    /// The datapoints ran and were recorded, but closing the run
    /// (`PUT /v1/runs/{id}`) failed: the run stays open until a
    /// [`resume`](super::Experiment::resume) of it closes it. Gates are not
    /// checked.
    #[error("run {} ran, but closing it failed (resume it to close it): {error}", report.run_id)]
    Close {
        /// The run, as it ended here.
        report: Box<ExperimentReport>,
        /// Why the close failed.
        error: Error,
    },
}

impl ExperimentError {
    /// The report, when the run went through (a broken gate, a failed
    /// close).
    pub fn report(&self) -> Option<&ExperimentReport> {
        match self {
            ExperimentError::Gate { report, .. } | ExperimentError::Close { report, .. } => {
                Some(report)
            }
            ExperimentError::Api(_) => None,
        }
    }
}
