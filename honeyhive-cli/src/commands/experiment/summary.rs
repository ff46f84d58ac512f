//! The table printed at the end of a run: how many datapoints passed and
//! failed, each metric's aggregate beside the base run's and the delta,
//! each failure with its datapoint and reason, each gate's verdict.

use std::fmt::Write as _;

/// What the table shows, taken from the library's report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub run_id: String,
    pub name: String,
    pub passed: usize,
    /// Each failed datapoint: how it is named, and why.
    pub failed: Vec<(String, String)>,
    pub metrics: Vec<MetricRow>,
    /// Each `--fail-if`: its text, and the drop that broke it (None: held).
    pub gates: Vec<(String, Option<f64>)>,
    /// Whether a base run was compared (`--compare-to`).
    pub compared: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricRow {
    pub name: String,
    /// The mean over the datapoints that have a score (None: no number).
    pub aggregate: Option<f64>,
    /// How many datapoints have a score.
    pub scored: usize,
    pub base: Option<f64>,
    pub delta: Option<f64>,
}

impl Summary {
    pub fn total(&self) -> usize {
        self.passed + self.failed.len()
    }

    /// Whether a gate failed.
    pub fn gate_failed(&self) -> bool {
        self.gates.iter().any(|(_, broke)| broke.is_some())
    }

    /// The table, lines ending with `\n`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "experiment {}  run {}", self.name, self.run_id);
        let _ = writeln!(
            out,
            "datapoints {}  passed {}  failed {}",
            self.total(),
            self.passed,
            self.failed.len()
        );
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
                    number(metric.aggregate),
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
        if !self.failed.is_empty() {
            out.push_str("\nfailed:\n");
            for (datapoint, reason) in &self.failed {
                let _ = writeln!(out, "  {datapoint}: {reason}");
            }
        }
        if !self.gates.is_empty() {
            out.push('\n');
            for (gate, broke) in &self.gates {
                let _ = match broke {
                    None => writeln!(out, "gate '{gate}': held"),
                    Some(drop) => writeln!(
                        out,
                        "gate '{gate}': FAILED (dropped by {})",
                        number(Some(*drop))
                    ),
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
    fn the_table_counts_datapoints_aligns_metrics_and_names_failures() {
        let summary = Summary {
            run_id: "0b9f".into(),
            name: "nightly".into(),
            passed: 2,
            failed: vec![("line 3".into(), "exited with status 1".into())],
            metrics: vec![
                MetricRow {
                    name: "accuracy".into(),
                    aggregate: Some(0.5),
                    scored: 2,
                    base: Some(0.75),
                    delta: Some(-0.25),
                },
                MetricRow {
                    name: "len".into(),
                    aggregate: Some(12.0),
                    scored: 3,
                    base: None,
                    delta: None,
                },
                MetricRow {
                    name: "f".into(),
                    aggregate: Some(1.0 / 3.0),
                    scored: 3,
                    base: Some(0.0),
                    delta: Some(1.0 / 3.0),
                },
            ],
            gates: vec![
                ("accuracy drop > 0.1".into(), Some(0.25)),
                ("f drop > 0".into(), None),
            ],
            compared: true,
        };
        assert_eq!(
            summary.render(),
            "experiment nightly  run 0b9f\n\
             datapoints 3  passed 2  failed 1\n\
             \n\
             metric    mean    scored  base  delta\n\
             accuracy  0.5     2/3     0.75  -0.25\n\
             len       12      3/3     -     -\n\
             f         0.3333  3/3     0     +0.3333\n\
             \n\
             failed:\n  line 3: exited with status 1\n\
             \n\
             gate 'accuracy drop > 0.1': FAILED (dropped by 0.25)\n\
             gate 'f drop > 0': held\n"
        );
        assert!(summary.gate_failed());
    }

    #[test]
    fn without_a_base_run_there_are_no_base_and_delta_columns() {
        let summary = Summary {
            run_id: "r".into(),
            name: "n".into(),
            passed: 1,
            metrics: vec![MetricRow {
                name: "ok".into(),
                aggregate: None,
                scored: 0,
                ..MetricRow::default()
            }],
            ..Summary::default()
        };
        assert_eq!(
            summary.render(),
            "experiment n  run r\ndatapoints 1  passed 1  failed 0\n\nmetric  mean  scored\nok      -     0/1\n"
        );
        assert!(!summary.gate_failed());
    }
}
