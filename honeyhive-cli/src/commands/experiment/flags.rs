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

/// `--fail-if 'METRIC drop > X'` (or `X%`): the library's gate, its
/// grammar and its refusal.
pub fn parse_gate(text: &str) -> Result<honeyhive::experiment::Gate, String> {
    text.parse()
        .map_err(|e: honeyhive::Error| crate::config::for_the_shell(&e))
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
    fn a_gate_is_the_library_s_and_its_refusal_shows_the_grammar() {
        let gate = parse_gate("accuracy drop > 0.05").unwrap();
        assert_eq!(
            gate,
            honeyhive::experiment::Gate::max_drop("accuracy", 0.05)
        );
        let refused = parse_gate("accuracy < 3").unwrap_err();
        assert!(refused.contains("METRIC drop > X"), "{refused}");
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
