//! `honeyhive experiment run`, run as a user would: commands in `sh` (and
//! `cat`) over small JSONL files, recorded on a server on loopback.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

mod support;
use support::{KEY, honeyhive, run};

/// A file of `n` datapoints, `{"inputs": {"i": i}, "ground_truth": {"double": 2i}}`.
fn write_data(dir: &Path, n: usize, extra: &[&str]) -> PathBuf {
    let path = dir.join("data.jsonl");
    let mut file = std::fs::File::create(&path).unwrap();
    for i in 0..n {
        writeln!(
            file,
            "{}",
            serde_json::json!({"inputs": {"i": i}, "ground_truth": {"double": 2 * i}})
        )
        .unwrap();
    }
    for line in extra {
        writeln!(file, "{line}").unwrap();
    }
    path
}

/// A listener on loopback that never answers: a request reaching it
/// shows as an accepted connection.
struct Silent(TcpListener);

impl Silent {
    fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Silent(listener)
    }

    fn url(&self) -> String {
        format!("http://{}", self.0.local_addr().unwrap())
    }

    fn connected(&self) -> bool {
        self.0.accept().is_ok()
    }
}

#[test]
fn a_line_that_is_not_a_datapoint_stops_the_run_before_any_request_naming_each() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(
        dir.path(),
        3,
        &[
            "not json",
            r#"{"inputs": {"q": 1}, "ground_truths": "4"}"#,
            r#"{"inputs": "q"}"#,
        ],
    );
    let server = Silent::start();
    let (code, stdout, stderr) = run(honeyhive(&server.url(), KEY)
        .args(["experiment", "run", "--name", "t", "--data"])
        .arg(&data)
        .args(["--", "cat"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    let name = data.display();
    for expected in [
        format!("3 line(s) of {name} are not datapoints; nothing was run"),
        format!("{name}:4: not JSON"),
        format!(
            "{name}:5: `ground_truths` is not a key of a datapoint (did you mean `ground_truth`?)"
        ),
        format!("{name}:6: invalid inputs: is a string"),
    ] {
        assert!(stderr.contains(&expected), "{expected} in {stderr}");
    }
    assert!(!server.connected(), "a request was sent");
    assert!(!stderr.contains(KEY));
}

#[test]
fn flags_with_a_grammar_are_refused_with_an_example_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path(), 1, &[]);
    let server = Silent::start();
    let refused = |flags: &[&str], expected: &str| {
        let (code, _, stderr) = run(honeyhive(&server.url(), KEY)
            .args(["experiment", "run", "--name", "t", "--data"])
            .arg(&data)
            .args(flags)
            .args(["--", "cat"]));
        assert_eq!(code, 2, "{flags:?}: {stderr}");
        assert!(stderr.contains(expected), "{expected} in {stderr}");
        assert!(!stderr.contains(KEY));
    };
    refused(
        &["--shard", "5/4"],
        "shard 5 of 4 does not exist: shards are counted from 1 to 4",
    );
    refused(&["--shard", "2"], "such as 2/4");
    refused(
        &["--compare-to", "r", "--fail-if", "accuracy < 3"],
        "METRIC drop > X",
    );
    refused(&["--fail-if", "accuracy drop > 0.1"], "--compare-to");
    refused(&["--evaluator", "python3 score.py"], "expected NAME=CMD");
    refused(&["--timeout", "0"], "not a number of seconds above 0");
    refused(&["--resume", "a", "--run-id", "b"], "cannot be used with");
    // Neither or both datasets.
    let (code, _, stderr) =
        run(honeyhive(&server.url(), KEY).args(["experiment", "run", "--name", "t", "--", "cat"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--dataset <ID>|--data <FILE.jsonl>"),
        "{stderr}"
    );
    // No CMD.
    let (code, _, stderr) = run(honeyhive(&server.url(), KEY)
        .args(["experiment", "run", "--name", "t", "--data"])
        .arg(&data));
    assert_eq!(code, 2, "{stderr}");
    assert!(!server.connected(), "a request was sent");
}
