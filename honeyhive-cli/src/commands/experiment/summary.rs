//! The table printed at the end of a run: how many datapoints passed and
//! failed, each metric's aggregate beside the base run's and the delta,
//! each failure with its datapoint and reason, each gate's verdict.

use std::fmt::Write as _;

use honeyhive::experiment::{DatapointResult, ExperimentReport, Gate, GateFailure};

/// What the table shows, taken from the library's report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub name: String,
    pub run_id: String,
    /// The status the run was closed with, and why when not completed.
    pub status: String,
    pub status_reason: Option<String>,
    /// What could not be read back: the run's summary, the comparison.
    pub unread: Vec<String>,
    pub passed: usize,
    /// An evaluator gave no score.
    pub failed: usize,
    /// The command gave no output.
    pub errored: usize,
    /// Left to other shards, or recorded before (--resume).
    pub skipped: usize,
    /// Every datapoint that did not pass: how it is named, and why.
    pub problems: Vec<(String, String)>,
    pub metrics: Vec<MetricRow>,
    /// Each `--fail-if`: its text, and how it broke (None: held).
    pub gates: Vec<(String, Option<String>)>,
    /// Whether a base run was compared (`--compare-to`).
    pub compared: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricRow {
    pub name: String,
    /// The mean over the datapoints with a numeric score (None: none).
    pub mean: Option<f64>,
    /// How many datapoints have a numeric score.
    pub scored: usize,
    /// The base run's value, and this run's less it.
    pub base: Option<f64>,
    pub delta: Option<f64>,
}

impl Summary {
    /// The summary of `report`; `named` names a datapoint in the list of
    /// problems; `broken`: the gates the run broke, of `gates`.
    pub fn of(
        name: &str,
        report: &ExperimentReport,
        gates: &[Gate],
        broken: &[GateFailure],
        named: impl Fn(&DatapointResult) -> String,
    ) -> Summary {
        let comparison = report.comparison.as_ref();
        let metrics = report
            .aggregates
            .iter()
            .map(|(metric, aggregate)| {
                let base = comparison
                    .and_then(|c| c.metrics.iter().find(|m| m.metric == *metric))
                    .and_then(|m| m.old);
                MetricRow {
                    name: metric.clone(),
                    mean: (aggregate.count > 0).then_some(aggregate.mean),
                    scored: aggregate.count,
                    base,
                    delta: comparison.and_then(|c| c.delta(metric)),
                }
            })
            .collect();
        Summary {
            name: name.to_owned(),
            run_id: report.run_id.clone(),
            status: report.status.to_string(),
            status_reason: report.status_reason.clone(),
            unread: [
                ("the run's summary could not be read", &report.summary_error),
                (
                    "the comparison with the base run failed",
                    &report.comparison_error,
                ),
            ]
            .into_iter()
            .filter_map(|(what, error)| Some(format!("{what}: {}", error.as_ref()?)))
            .collect(),
            passed: report.passed(),
            failed: report.failed(),
            errored: report.errored(),
            skipped: report.skipped,
            problems: report
                .failures()
                .map(|(result, why)| (named(result), why))
                .collect(),
            metrics,
            gates: gates
                .iter()
                .map(|gate| {
                    let broke = broken
                        .iter()
                        .find(|failure| failure.gate == *gate)
                        .map(ToString::to_string);
                    (gate.to_string(), broke)
                })
                .collect(),
            compared: comparison.is_some(),
        }
    }

    pub fn total(&self) -> usize {
        self.passed + self.failed + self.errored
    }

    /// The table, lines ending with `\n`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "experiment {}  run {}  {}",
            self.name, self.run_id, self.status
        );
        for line in self.status_reason.iter().chain(&self.unread) {
            let _ = writeln!(out, "  {line}");
        }
        let _ = write!(
            out,
            "datapoints {}  passed {}  failed {}  errored {}",
            self.total(),
            self.passed,
            self.failed,
            self.errored
        );
        if self.skipped > 0 {
            let _ = write!(out, "  skipped {}", self.skipped);
        }
        out.push('\n');
        if !self.metrics.is_empty() {
            let mut rows = vec![vec![
                "metric".to_owned(),
                "mean".to_owned(),
                "scored".to_owned(),
            ]];
            if self.compared {
                rows[0].extend(["base".to_owned(), "delta".to_owned()]);
            }
            for metric in &self.metrics {
                let mut row = vec![
                    metric.name.clone(),
                    number(metric.mean),
                    format!("{}/{}", metric.scored, self.total()),
                ];
                if self.compared {
                    row.push(number(metric.base));
                    row.push(match metric.delta {
                        Some(delta) if delta > 0.0 => format!("+{}", number(Some(delta))),
                        delta => number(delta),
                    });
                }
                rows.push(row);
            }
            out.push('\n');
            table(&mut out, &rows);
        }
        if !self.problems.is_empty() {
            out.push_str("\nnot passed:\n");
            for (datapoint, reason) in &self.problems {
                let _ = writeln!(out, "  {datapoint}: {reason}");
            }
        }
        if !self.gates.is_empty() {
            out.push('\n');
            for (gate, broke) in &self.gates {
                let _ = match broke {
                    None => writeln!(out, "gate '{gate}': held"),
                    Some(how) => writeln!(out, "gate '{gate}': FAILED: {how}"),
                };
            }
        }
        out
    }
}

/// A figure with up to 4 decimals, trailing zeros cut; `-` for none.
fn number(value: Option<f64>) -> String {
    match value {
        None => "-".to_owned(),
        Some(v) => {
            let text = format!("{v:.4}");
            let text = text.trim_end_matches('0').trim_end_matches('.');
            if text == "-0" {
                "0".to_owned()
            } else {
                text.to_owned()
            }
        }
    }
}

/// Left-aligned columns two spaces apart.
fn table(out: &mut String, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_counts_datapoints_aligns_metrics_and_names_each_problem() {
        let summary = Summary {
            name: "nightly".into(),
            run_id: "0b9f".into(),
            status: "completed".into(),
            passed: 2,
            errored: 1,
            problems: vec![(
                "line 3".into(),
                "the task failed: exited with status 1".into(),
            )],
            metrics: vec![
                MetricRow {
                    name: "accuracy".into(),
                    mean: Some(0.5),
                    scored: 2,
                    base: Some(0.75),
                    delta: Some(-0.25),
                },
                MetricRow {
                    name: "len".into(),
                    mean: Some(12.0),
                    scored: 3,
                    base: None,
                    delta: None,
                },
                MetricRow {
                    name: "f".into(),
                    mean: Some(1.0 / 3.0),
                    scored: 3,
                    base: Some(0.0),
                    delta: Some(1.0 / 3.0),
                },
            ],
            gates: vec![
                (
                    "accuracy drop > 0.1".into(),
                    Some("accuracy went from 0.75 to 0.5".into()),
                ),
                ("f drop > 0".into(), None),
            ],
            compared: true,
            ..Summary::default()
        };
        assert_eq!(
            summary.render(),
            "experiment nightly  run 0b9f  completed\n\
             datapoints 3  passed 2  failed 0  errored 1\n\
             \n\
             metric    mean    scored  base  delta\n\
             accuracy  0.5     2/3     0.75  -0.25\n\
             len       12      3/3     -     -\n\
             f         0.3333  3/3     0     +0.3333\n\
             \n\
             not passed:\n  line 3: the task failed: exited with status 1\n\
             \n\
             gate 'accuracy drop > 0.1': FAILED: accuracy went from 0.75 to 0.5\n\
             gate 'f drop > 0': held\n"
        );
    }

    #[test]
    fn without_a_base_run_there_are_no_base_and_delta_columns() {
        let summary = Summary {
            name: "n".into(),
            run_id: "r".into(),
            status: "cancelled".into(),
            status_reason: Some("stopped by Ctrl-C".into()),
            unread: vec!["the run's summary could not be read: HTTP 500".into()],
            passed: 1,
            skipped: 4,
            metrics: vec![MetricRow {
                name: "ok".into(),
                ..MetricRow::default()
            }],
            ..Summary::default()
        };
        assert_eq!(
            summary.render(),
            "experiment n  run r  cancelled\n  stopped by Ctrl-C\n\
             \x20 the run's summary could not be read: HTTP 500\n\
             datapoints 1  passed 1  failed 0  errored 0  skipped 4\n\
             \nmetric  mean  scored\nok      -     0/1\n"
        );
    }
}
