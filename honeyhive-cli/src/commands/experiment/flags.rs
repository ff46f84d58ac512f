//! The values of `experiment run`'s flags that have a grammar of their
//! own: `--shard I/N`, `--fail-if 'METRIC drop > X'`, `--evaluator
//! NAME=CMD`. Each refusal says what was expected, with an example; clap
//! prints it after the flag's name and exits 2.

use std::fmt;

/// `--shard I/N`: this process runs the I-th of N shards, counted from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// From 1 to `count`.
    pub index: u32,
    pub count: u32,
}

/// Why a `--shard` value was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ShardError {
    /// Not two numbers around a `/`.
    Shape,
    /// N is 0.
    NoShards,
    /// I is 0 or above N.
    OutOfRange { index: u32, count: u32 },
}

impl fmt::Display for ShardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShardError::Shape => write!(
                f,
                "expected I/N, two whole numbers such as 2/4 (the second of four shards)"
            ),
            ShardError::NoShards => write!(f, "N is the number of shards: 1 or more"),
            ShardError::OutOfRange { index, count } => write!(
                f,
                "shard {index} of {count} does not exist: shards are counted from 1 to {count}"
            ),
        }
    }
}

impl std::error::Error for ShardError {}

pub fn parse_shard(text: &str) -> Result<Shard, ShardError> {
    let (index, count) = text.trim().split_once('/').ok_or(ShardError::Shape)?;
    let number = |s: &str| {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ShardError::Shape);
        }
        s.parse::<u32>().map_err(|_| ShardError::Shape)
    };
    let (index, count) = (number(index)?, number(count)?);
    if count == 0 {
        return Err(ShardError::NoShards);
    }
    if index == 0 || index > count {
        return Err(ShardError::OutOfRange { index, count });
    }
    Ok(Shard { index, count })
}

/// `--fail-if 'METRIC drop > X'`: the run fails its gate when METRIC's
/// aggregate is lower than the base run's (`--compare-to`) by more than X.
#[derive(Clone, Debug, PartialEq)]
pub struct Gate {
    pub metric: String,
    pub max_drop: f64,
}

/// Why a `--fail-if` value was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum GateError {
    /// Not `METRIC drop > X`.
    Shape,
    /// No metric before `drop`.
    NoMetric,
    /// X is not a number.
    NotANumber(String),
    /// X is negative, NaN or infinite.
    OutOfRange(String),
}

const GATE_EXAMPLE: &str = "expected 'METRIC drop > X', such as 'accuracy drop > 0.05'";

impl fmt::Display for GateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GateError::Shape => write!(f, "{GATE_EXAMPLE}"),
            GateError::NoMetric => write!(f, "no metric named before `drop`: {GATE_EXAMPLE}"),
            GateError::NotANumber(x) => write!(f, "`{x}` is not a number: {GATE_EXAMPLE}"),
            GateError::OutOfRange(x) => write!(
                f,
                "`{x}` cannot bound a drop: give a finite number, 0 or more (0: any drop fails)"
            ),
        }
    }
}

impl std::error::Error for GateError {}

pub fn parse_gate(text: &str) -> Result<Gate, GateError> {
    let (left, x) = text.rsplit_once('>').ok_or(GateError::Shape)?;
    let left = left.trim_end();
    let metric = left.strip_suffix("drop").ok_or(GateError::Shape)?;
    // `drop` is a word of its own: `accuracydrop > 1` names no metric.
    if !metric.is_empty() && !metric.ends_with(char::is_whitespace) {
        return Err(GateError::Shape);
    }
    let metric = metric.trim();
    if metric.is_empty() {
        return Err(GateError::NoMetric);
    }
    let x = x.trim();
    if x.is_empty() {
        return Err(GateError::Shape);
    }
    let max_drop: f64 = x.parse().map_err(|_| GateError::NotANumber(x.to_owned()))?;
    if !max_drop.is_finite() || max_drop < 0.0 {
        return Err(GateError::OutOfRange(x.to_owned()));
    }
    Ok(Gate {
        metric: metric.to_owned(),
        max_drop,
    })
}

/// `--evaluator NAME=CMD`: CMD (run by `sh -c`) scores each output; its
/// score is recorded as the metric NAME.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvaluatorCmd {
    pub name: String,
    pub command: String,
}

/// Why an `--evaluator` value was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum EvaluatorError {
    /// No `=`, or nothing before it.
    NoName,
    /// The name has a character other than letters, digits, `_`, `-`, `.`.
    BadName(String),
    /// Nothing after `=`.
    NoCommand(String),
}

impl fmt::Display for EvaluatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvaluatorError::NoName => write!(
                f,
                "expected NAME=CMD, the metric's name then the command, \
                 such as 'exact=python3 score.py'"
            ),
            EvaluatorError::BadName(name) => write!(
                f,
                "`{name}` cannot name a metric: use letters, digits, `_`, `-` and `.`"
            ),
            EvaluatorError::NoCommand(name) => {
                write!(
                    f,
                    "no command after `{name}=`: such as '{name}=python3 score.py'"
                )
            }
        }
    }
}

impl std::error::Error for EvaluatorError {}

pub fn parse_evaluator(text: &str) -> Result<EvaluatorCmd, EvaluatorError> {
    let (name, command) = text.split_once('=').ok_or(EvaluatorError::NoName)?;
    let name = name.trim();
    if name.is_empty() {
        return Err(EvaluatorError::NoName);
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(EvaluatorError::BadName(name.to_owned()));
    }
    let command = command.trim();
    if command.is_empty() {
        return Err(EvaluatorError::NoCommand(name.to_owned()));
    }
    Ok(EvaluatorCmd {
        name: name.to_owned(),
        command: command.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_is_i_of_n_counted_from_one() {
        assert_eq!(parse_shard("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(parse_shard(" 1 / 1 "), Ok(Shard { index: 1, count: 1 }));
        assert_eq!(
            parse_shard("0/4"),
            Err(ShardError::OutOfRange { index: 0, count: 4 })
        );
        assert_eq!(
            parse_shard("5/4"),
            Err(ShardError::OutOfRange { index: 5, count: 4 })
        );
        assert_eq!(parse_shard("1/0"), Err(ShardError::NoShards));
        for shape in ["2", "2/", "/4", "-1/4", "a/b", "1.5/4", "2/4/8", "+2/4"] {
            assert_eq!(parse_shard(shape), Err(ShardError::Shape), "{shape}");
        }
        assert!(ShardError::Shape.to_string().contains("such as 2/4"));
        assert!(
            parse_shard("5/4")
                .unwrap_err()
                .to_string()
                .contains("from 1 to 4")
        );
    }

    #[test]
    fn a_gate_names_a_metric_and_the_drop_it_allows() {
        let gate = |metric: &str, max_drop: f64| {
            Ok(Gate {
                metric: metric.to_owned(),
                max_drop,
            })
        };
        assert_eq!(parse_gate("accuracy drop > 0.05"), gate("accuracy", 0.05));
        assert_eq!(parse_gate("  accuracy   drop>0 "), gate("accuracy", 0.0));
        // A name with spaces, or with `>` in it: the last `>` is the one.
        assert_eq!(
            parse_gate("exact match drop > 1e-2"),
            gate("exact match", 0.01)
        );
        assert_eq!(parse_gate("a>b drop > 2"), gate("a>b", 2.0));
        assert_eq!(
            parse_gate("accuracy drop > 0.05x"),
            Err(GateError::NotANumber("0.05x".into()))
        );
        assert_eq!(
            parse_gate("accuracy drop > -1"),
            Err(GateError::OutOfRange("-1".into()))
        );
        assert_eq!(
            parse_gate("accuracy drop > inf"),
            Err(GateError::OutOfRange("inf".into()))
        );
        assert_eq!(
            parse_gate("accuracy drop > NaN"),
            Err(GateError::OutOfRange("NaN".into()))
        );
        assert_eq!(parse_gate("drop > 1"), Err(GateError::NoMetric));
        for shape in [
            "accuracy",
            "accuracy > 1",
            "accuracydrop > 1",
            "accuracy drop >",
            "accuracy drop < 1",
            "accuracy rises > 1",
        ] {
            assert_eq!(parse_gate(shape), Err(GateError::Shape), "{shape}");
        }
        assert!(
            GateError::Shape
                .to_string()
                .contains("'accuracy drop > 0.05'")
        );
    }

    #[test]
    fn an_evaluator_is_a_metric_name_and_a_shell_command() {
        assert_eq!(
            parse_evaluator("exact=python3 score.py --strict"),
            Ok(EvaluatorCmd {
                name: "exact".into(),
                command: "python3 score.py --strict".into()
            })
        );
        // Only the first `=` splits: the command may hold more.
        assert_eq!(
            parse_evaluator("len.v2=jq 'length == 3'").map(|e| e.command),
            Ok("jq 'length == 3'".into())
        );
        assert_eq!(
            parse_evaluator("python3 score.py"),
            Err(EvaluatorError::NoName)
        );
        assert_eq!(parse_evaluator("=cat"), Err(EvaluatorError::NoName));
        assert_eq!(
            parse_evaluator("my score=cat"),
            Err(EvaluatorError::BadName("my score".into()))
        );
        assert_eq!(
            parse_evaluator("exact= "),
            Err(EvaluatorError::NoCommand("exact".into()))
        );
    }
}
