//! [`Gate`]: a regression against the base run turned into an error.

use std::fmt;
use std::str::FromStr;

use super::Comparison;
use crate::error::Error;

/// A condition on a metric against the base run
/// ([`Experiment::compare_to`](super::Experiment::compare_to)): the metric's
/// aggregate must not drop by more than a bound, absolute or in percent of
/// the base. A run that breaks a gate ends in
/// [`ExperimentError::Gate`](super::ExperimentError::Gate), with the report.
///
/// A gate on a metric that either run lacks fails too (a gate that cannot
/// be checked does not pass).
///
/// ```
/// use honeyhive::experiment::Gate;
///
/// let gate: Gate = "accuracy drop > 0.05".parse()?;
/// assert_eq!(gate, Gate::max_drop("accuracy", 0.05));
/// let relative: Gate = "latency_score drop > 10%".parse()?;
/// assert_eq!(relative, Gate::max_drop_percent("latency_score", 10.0));
/// assert!("accuracy < 3".parse::<Gate>().is_err());
/// # Ok::<(), honeyhive::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Gate {
    metric: String,
    bound: f64,
    percent: bool,
}

/// A gate a run broke, with the figures.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct GateFailure {
    /// The gate.
    pub gate: Gate,
    /// The base run's aggregate, when it had the metric.
    pub old: Option<f64>,
    /// This run's aggregate, when it has the metric.
    pub new: Option<f64>,
}

impl fmt::Display for GateFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.old, self.new) {
            (Some(old), Some(new)) => write!(
                f,
                "{} went from {} to {} ({}{}): the gate \"{}\" fails",
                self.gate.metric,
                short(old),
                short(new),
                if new >= old { "+" } else { "" },
                short(new - old),
                self.gate
            ),
            (None, _) => write!(
                f,
                "the base run has no {} to compare with, so \"{}\" cannot be checked",
                self.gate.metric, self.gate
            ),
            (_, None) => write!(
                f,
                "this run has no {}, so \"{}\" cannot be checked",
                self.gate.metric, self.gate
            ),
        }
    }
}

impl Gate {
    /// `metric` must not drop by more than `bound` (in the metric's unit).
    pub fn max_drop(metric: impl Into<String>, bound: f64) -> Gate {
        Gate {
            metric: metric.into(),
            bound,
            percent: false,
        }
    }

    /// `metric` must not drop by more than `percent` % of the base run's
    /// value.
    pub fn max_drop_percent(metric: impl Into<String>, percent: f64) -> Gate {
        Gate {
            metric: metric.into(),
            bound: percent,
            percent: true,
        }
    }

    /// The metric it watches.
    pub fn metric(&self) -> &str {
        &self.metric
    }

    /// The failure, if the comparison breaks this gate.
    pub fn check(&self, comparison: &Comparison) -> Option<GateFailure> {
        let found = comparison.metrics.iter().find(|m| m.metric == self.metric);
        let (old, new) = found.map_or((None, None), |m| (m.old, m.new));
        let fail = || {
            Some(GateFailure {
                gate: self.clone(),
                old,
                new,
            })
        };
        let (Some(o), Some(n)) = (old, new) else {
            return fail();
        };
        let drop = o - n;
        let allowed = if self.percent {
            o.abs() * self.bound / 100.0
        } else {
            self.bound
        };
        if drop > allowed { fail() } else { None }
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.percent { "%" } else { "" };
        write!(f, "{} drop > {}{unit}", self.metric, self.bound)
    }
}

impl FromStr for Gate {
    type Err = Error;

    /// `METRIC drop > X` or `METRIC drop > X%` (spaces optional around `>`).
    fn from_str(text: &str) -> Result<Gate, Error> {
        let bad = |why: &str| {
            Error::invalid(
                "gate",
                format!(
                    "{text:?} {why}; write `METRIC drop > X` (absolute) or `METRIC drop > X%` \
                     (of the base run's value), such as `accuracy drop > 0.05`"
                ),
            )
        };
        let (left, bound) = text.split_once('>').ok_or_else(|| bad("has no `>`"))?;
        let metric = left
            .trim()
            .strip_suffix("drop")
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| bad("does not read `METRIC drop`"))?;
        let bound = bound.trim();
        let (number, percent) = match bound.strip_suffix('%') {
            Some(number) => (number.trim(), true),
            None => (bound, false),
        };
        let bound: f64 = number
            .parse()
            .ok()
            .filter(|b: &f64| b.is_finite() && *b >= 0.0)
            .ok_or_else(|| bad("has no bound that is a number of 0 or more"))?;
        Ok(Gate {
            metric: metric.to_owned(),
            bound,
            percent,
        })
    }
}

/// A figure to four decimals, trailing zeros dropped: `0.6667`, `0.5`, `1`.
fn short(x: f64) -> String {
    let text = format!("{x:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}
