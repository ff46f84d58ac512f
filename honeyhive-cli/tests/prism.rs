//! What the `datasets`, `events` and `experiment` commands send, checked by Prism (run
//! by `.ci/run` against our spec and HoneyHive's published one, with
//! `HONEYHIVE_PRISM_URL` set; see honeyhive/tests/prism.rs). A request off
//! the spec is answered 4xx (the command then exits 1 naming the status)
//! and shows in Prism's log, which `.ci/run` checks.

use std::process::{Command, Stdio};

fn honeyhive(args: &[&str]) -> (i32, String) {
    let url = std::env::var("HONEYHIVE_PRISM_URL").expect("set HONEYHIVE_PRISM_URL (.ci/run does)");
    let mut command = Command::new(env!("CARGO_BIN_EXE_honeyhive"));
    for (name, _) in std::env::vars() {
        if name.starts_with("HH_") {
            command.env_remove(name);
        }
    }
    let output = command
        .args(args)
        .env("HH_API_URL", url)
        .env("HH_API_KEY", "prism-test-key")
        .env("HH_MAX_RETRIES", "0")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Ran to the end and was not refused (exit 0, no 4xx).
fn accepted(args: &[&str]) {
    let (code, err) = honeyhive(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    for status in ["400", "401", "403", "405", "415", "422"] {
        assert!(
            !err.contains(&format!("status {status}")) && !err.contains(&format!("HTTP {status}")),
            "{args:?}: {err}"
        );
    }
}

#[test]
#[ignore = "needs Prism; .ci/run starts it"]
fn prism_accepts_what_the_datasets_commands_send() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("qa.jsonl");
    std::fs::write(
        &file,
        "{\"inputs\": {\"q\": \"2+2\"}, \"ground_truth\": {\"a\": \"4\"}, \"metadata\": {\"k\": 1}, \"history\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n",
    )
    .unwrap();
    accepted(&["datasets", "list"]);
    accepted(&["datasets", "push", "qa", file.to_str().unwrap()]);
    // Prism's example dataset has the id "string" and one datapoint id:
    // pulling it sends the datapoints request too.
    accepted(&["datasets", "pull", "string"]);
}

#[test]
#[ignore = "needs Prism; .ci/run starts it"]
fn prism_accepts_what_the_events_commands_send() {
    accepted(&["events", "get", "3fa85f64-5717-4562-b3fc-2c963f66afa6"]);
    accepted(&[
        "events",
        "search",
        "--session",
        "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "--type",
        "model",
        "--name",
        "gpt-4o",
        "--since",
        "24h",
        "--filter",
        "metadata.customer=acme",
        "--page-size",
        "10",
    ]);
}

#[test]
#[ignore = "needs Prism; .ci/run starts it"]
fn prism_accepts_what_the_experiment_commands_send() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.jsonl");
    std::fs::write(
        &data,
        "{\"inputs\": {\"q\": 1}, \"ground_truth\": {\"a\": 1}}\n{\"inputs\": {\"q\": 2}}\n",
    )
    .unwrap();
    // The run created, two sessions in a batch, the run closed, its summary
    // read; then an explicit close (summary, run read, run updated).
    accepted(&[
        "experiment",
        "run",
        "--name",
        "prism",
        "--data",
        data.to_str().unwrap(),
        "--quiet",
        "--",
        "cat",
    ]);
    accepted(&[
        "experiment",
        "close",
        "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    ]);
}
