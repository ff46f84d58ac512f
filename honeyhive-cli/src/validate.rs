//! `honeyhive validate FILE...`: each line against the embedded OpenAPI
//! spec, offline.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;

use serde_json::Value;

use crate::event_line::{field_problem, split};
use crate::{Exit, Fail};

/// Checks each line (an event, or `{"session_id": ..., "event": {...}}`)
/// against the spec the client was generated from, without sending
/// anything; prints `FILE:LINE: field: problem` for each problem.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// JSONL files to check; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Session of bare events, so that a line without one is not a problem.
    #[arg(long, value_name = "ID")]
    session: Option<String>,
}

pub fn run(args: &Args) -> Result<Exit, Fail> {
    let mut problems = 0u64;
    let mut lines = 0u64;
    for path in &args.files {
        let name = path.display().to_string();
        let input: Box<dyn BufRead> = if name == "-" {
            Box::new(io::stdin().lock())
        } else {
            let file = File::open(path)
                .map_err(|e| Fail::new(Exit::Usage, format!("cannot read {name}: {e}")))?;
            Box::new(BufReader::new(file))
        };
        for (index, line) in input.lines().enumerate() {
            let line = line.map_err(|e| Fail::new(Exit::Usage, format!("reading {name}: {e}")))?;
            if line.trim().is_empty() {
                continue;
            }
            lines += 1;
            let found = check(&line, args.session.as_deref());
            problems += found.len() as u64;
            for problem in found {
                crate::out(&format!("{name}:{}: {problem}", index + 1));
            }
        }
    }
    eprintln!("honeyhive validate: {lines} lines, {problems} problems");
    Ok(if problems == 0 {
        Exit::Ok
    } else {
        Exit::Partial
    })
}

/// The problems of one line: its shape, then the event against the spec.
fn check(line: &str, session: Option<&str>) -> Vec<String> {
    // Validation does not need a session: any placeholder will do.
    let session = session.or(Some("-"));
    match split(line, session) {
        Err(problem) => vec![problem],
        Ok((_, event)) => match honeyhive::testing::validate_event(&Value::Object(event)) {
            Ok(()) => Vec::new(),
            Err(problems) => problems.iter().map(|p| field_problem(p)).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_problem_names_its_field() {
        assert!(check(r#"{"event_name":"n","duration":5}"#, None).is_empty());
        let problems = check(r#"{"event":{"event_name":7,"duration":"5"}}"#, None);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems.iter().any(|p| p.starts_with("event_name: ")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("duration: ")),
            "{problems:?}"
        );
        assert_eq!(check("nope", None).len(), 1);
    }
}
