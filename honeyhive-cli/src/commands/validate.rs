//! `honeyhive validate FILE...`: each line as `send` would read it, checked
//! against the embedded OpenAPI spec, offline.

use std::fs::File;
use std::io::{self, BufRead, BufReader};

use honeyhive::Route;

use crate::event_line;
use crate::exit::{Exit, Fail};
use crate::input;

/// Checks each line (an event, or `{"session_id": ..., "event": {...}}`)
/// with the checker `send` uses, for the same route (--batch), without
/// sending anything; prints `FILE:LINE: field: problem` for each problem.
/// A line `send` would refuse is a problem here, and only those. A line
/// over the body limit that `send` would cut to fit is reported as
/// `FILE:LINE: cut to fit: POINTER, ...` (not a problem); one that cannot
/// be cut to fit is a problem.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    input: input::Inputs,
    #[command(flatten)]
    route: input::RouteArgs,
    /// The body limit `send` would hold events to, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = honeyhive::ClientBuilder::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
}

pub fn run(args: &Args) -> Result<Exit, Fail> {
    let mut problems = 0u64;
    let mut lines = 0u64;
    let mut cut = 0u64;
    for path in &args.input.files {
        let name = path.display().to_string();
        let mut input: Box<dyn BufRead> = if name == "-" {
            Box::new(io::stdin().lock())
        } else {
            let file = File::open(path)
                .map_err(|e| Fail::new(Exit::Usage, format!("cannot read {name}: {e}")))?;
            Box::new(BufReader::new(file))
        };
        let reading = |e: io::Error| Fail::new(Exit::Usage, format!("reading {name}: {e}"));
        let start = input.fill_buf().map_err(reading)?;
        let skip = input::sniff(start)
            .map_err(|e| Fail::new(Exit::Usage, format!("cannot read {name}: {e}")))?;
        input.consume(skip);
        let mut bytes = Vec::new();
        let mut number = 0u64;
        while input::read_line(&mut *input, &mut bytes).map_err(reading)? > 0 {
            number += 1;
            let found = match input::text(&bytes) {
                Ok(line) if line.trim().is_empty() => continue,
                Ok(line) => check(
                    line,
                    number,
                    args.input.session.as_deref(),
                    args.route.route(),
                    args.max_body_bytes,
                ),
                Err(problem) => Found::problem(problem),
            };
            lines += 1;
            problems += found.problems.len() as u64;
            for problem in found.problems {
                crate::exit::out(&format!("{name}:{number}: {problem}"));
            }
            if !found.cuts.is_empty() {
                cut += 1;
                crate::exit::out(&format!(
                    "{name}:{number}: cut to fit: {}",
                    found.cuts.join(", ")
                ));
            }
        }
    }
    let cut = if cut > 0 {
        format!(", {cut} cut to fit {} bytes", args.max_body_bytes)
    } else {
        String::new()
    };
    eprintln!("honeyhive validate: {lines} lines, {problems} problems{cut}");
    Ok(if problems == 0 {
        Exit::Ok
    } else {
        Exit::Partial
    })
}

/// What checking a line found.
#[derive(Debug, Default)]
struct Found {
    /// What `send` would refuse it for.
    problems: Vec<String>,
    /// What `send` would cut so that it fits the body limit.
    cuts: Vec<String>,
}

impl Found {
    fn problem(problem: String) -> Found {
        Found {
            problems: vec![problem],
            cuts: Vec::new(),
        }
    }
}

/// What line `number` holds for `send`: problems, and cuts to fit
/// `max_body_bytes`.
fn check(
    line: &str,
    number: u64,
    session: Option<&str>,
    route: Route,
    max_body_bytes: usize,
) -> Found {
    match event_line::parse(line, number, session, route) {
        Ok(parsed) => {
            let event = serde_json::to_value(parsed.event.as_api()).unwrap_or_default();
            match honeyhive::validate::cuts(&event, max_body_bytes) {
                Ok(cuts) => Found {
                    problems: Vec::new(),
                    cuts,
                },
                Err(why) => Found::problem(format!("event: cannot be cut to fit: {why}")),
            }
        }
        Err(refused) => Found {
            problems: refused.problems,
            cuts: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_problem_names_its_field() {
        assert!(
            check(
                r#"{"event_name":"n","duration":5}"#,
                1,
                Some("s"),
                Route::Event,
                1 << 20
            )
            .problems
            .is_empty()
        );
        let problems = check(
            r#"{"event":{"event_name":7,"duration":"5"}}"#,
            1,
            Some("s"),
            Route::Event,
            1 << 20,
        )
        .problems;
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems.iter().any(|p| p.starts_with("event_name: ")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("duration: ")),
            "{problems:?}"
        );
        assert_eq!(
            check("nope", 1, Some("s"), Route::Event, 1 << 20)
                .problems
                .len(),
            1
        );
    }

    #[test]
    fn a_line_send_would_refuse_is_a_problem_here_too() {
        // A bare event and no --session: send cannot tell its session.
        let problems = check(r#"{"event_name":"n"}"#, 1, None, Route::Event, 1 << 20).problems;
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("session_id: missing"),
            "{problems:?}"
        );
        assert!(
            check(
                r#"{"session_id":"own","event_name":"n"}"#,
                1,
                None,
                Route::Event,
                1 << 20
            )
            .problems
            .is_empty()
        );
    }
}
