//! `honeyhive experiment run`, run as a user would: commands in `sh` (and
//! `cat`) over small JSONL files, recorded on a server on loopback.

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use honeyhive::testing::MockHoneyHive;
use serde_json::Value;

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

/// The run's id, from the line the command prints on stderr before the
/// first datapoint starts.
fn run_id(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("honeyhive experiment: run "))
        .unwrap_or_else(|| panic!("no run line in {stderr}"));
    line["honeyhive experiment: run ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// The session events the mock holds for `run`, by datapoint id.
fn sessions_of(mock: &MockHoneyHive, run: &str) -> HashMap<String, Vec<Value>> {
    let mut sessions: HashMap<String, Vec<Value>> = HashMap::new();
    for received in mock.events() {
        let event = received.event;
        if event["event_type"] == "session" && event["metadata"]["run_id"] == run {
            let datapoint = event["metadata"]["datapoint_id"]
                .as_str()
                .unwrap()
                .to_owned();
            sessions.entry(datapoint).or_default().push(event);
        }
    }
    sessions
}

fn experiment(mock: &MockHoneyHive, name: &str, data: &Path) -> Command {
    let mut command = honeyhive(&mock.base_url(), MockHoneyHive::API_KEY);
    command
        .args(["experiment", "run", "--name", name, "--data"])
        .arg(data);
    command
}

/// A shell script in `dir`, executable.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    let mut permissions = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&path, permissions).unwrap();
    path
}

#[test]
fn cat_over_a_small_file_records_every_datapoint_once_with_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path(), 5, &[]);
    let mock = MockHoneyHive::start();
    // The evaluator keeps what it was given, to show its shape.
    let seen = dir.path().join("seen");
    std::fs::create_dir(&seen).unwrap();
    let evaluator = format!("seen=cat > {}/$$.json; echo true", seen.display());
    let (code, stdout, stderr) = run(experiment(&mock, "cat", &data).args([
        "--concurrency",
        "3",
        "--evaluator",
        &evaluator,
        "--",
        "cat",
    ]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let run = run_id(&stderr);
    assert!(stderr.starts_with("honeyhive experiment: run "), "{stderr}");
    assert!(
        stdout.contains(&format!("run {run}  completed")),
        "{stdout}"
    );
    assert!(
        stdout.contains("datapoints 5  passed 5  failed 0  errored 0"),
        "{stdout}"
    );
    assert!(stdout.contains("seen    1     5/5"), "{stdout}");
    let sessions = sessions_of(&mock, &run);
    assert_eq!(sessions.len(), 5);
    for events in sessions.values() {
        assert_eq!(events.len(), 1);
        let event = &events[0];
        // `cat` gave the datapoint back: it got the datapoint on stdin.
        assert_eq!(event["outputs"]["inputs"], event["inputs"]);
        assert_eq!(event["outputs"]["id"], event["metadata"]["datapoint_id"]);
        assert_eq!(event["metrics"]["seen"], true);
    }
    let given: Vec<Value> = std::fs::read_dir(&seen)
        .unwrap()
        .map(|f| serde_json::from_slice(&std::fs::read(f.unwrap().path()).unwrap()).unwrap())
        .collect();
    assert_eq!(given.len(), 5);
    for shape in given {
        let keys: Vec<&String> = shape.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["datapoint", "outputs"]);
        assert_eq!(shape["outputs"]["inputs"], shape["datapoint"]["inputs"]);
        assert!(shape["datapoint"]["ground_truth"]["double"].is_number());
    }
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    assert!(!stdout.contains(MockHoneyHive::API_KEY) && !stderr.contains(MockHoneyHive::API_KEY));
}

#[test]
fn a_cmd_that_fails_for_one_datapoint_fails_it_alone_named_with_its_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path(), 5, &[]);
    let task = script(
        dir.path(),
        "task.sh",
        r#"input=$(cat)
case "$input" in
  *'"i":2'*) echo "no model for 2" >&2; exit 3 ;;
esac
printf '{"outputs": %s, "metrics": {"chars": %d}}' "$input" "${#input}""#,
    );
    let mock = MockHoneyHive::start();
    let (code, stdout, stderr) = run(experiment(&mock, "one fails", &data).arg("--").arg(&task));
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("datapoints 5  passed 4  failed 0  errored 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("chars   "),
        "the task's own metric: {stdout}"
    );
    let said = stdout
        .lines()
        .find(|l| l.contains("(line 3)"))
        .unwrap_or_else(|| panic!("no line 3 in {stdout}"));
    assert!(
        said.ends_with("the task failed: exited with status 3; stderr ends: no model for 2"),
        "{said}"
    );
    // Every datapoint is recorded, the failed one with its error.
    let sessions = sessions_of(&mock, &run_id(&stderr));
    assert_eq!(sessions.len(), 5);
    let errors: Vec<&Value> = sessions
        .values()
        .map(|events| &events[0]["error"])
        .filter(|e| !e.is_null())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].as_str().unwrap().contains("no model for 2"));
}

#[test]
fn output_that_is_not_json_a_cmd_that_never_returns_and_bad_metrics_each_fail_their_datapoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path(), 4, &[]);
    let task = script(
        dir.path(),
        "task.sh",
        r#"input=$(cat)
case "$input" in
  *'"i":0'*) echo "The answer is 4" ;;
  *'"i":1'*) exec sleep 30 ;;
  *'"i":2'*) echo '{"outputs": 1, "metrics": [1]}' ;;
  *) echo '{"answer": 4}' ;;
esac"#,
    );
    let mock = MockHoneyHive::start();
    let started = Instant::now();
    let (code, stdout, stderr) = run(experiment(&mock, "bad output", &data)
        .args(["--timeout", "1", "--"])
        .arg(&task));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the timeout did not kill"
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("datapoints 4  passed 1  failed 0  errored 3"),
        "{stdout}"
    );
    let reason = |line: u64| {
        stdout
            .lines()
            .find(|l| l.contains(&format!("(line {line})")))
            .unwrap_or_else(|| panic!("no line {line} in {stdout}"))
            .to_owned()
    };
    assert!(
        reason(1).contains("the task failed: stdout is not JSON (expected value at line 1 column 1); it begins: The answer is 4"),
        "{}",
        reason(1)
    );
    assert!(
        reason(2).contains("the task failed: still running after 1.000 s (--timeout): killed"),
        "{}",
        reason(2)
    );
    assert!(reason(3).contains("`metrics` is an array"), "{}", reason(3));
}

#[test]
fn a_broken_gate_exits_5_and_a_held_one_0() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path(), 3, &[]);
    let mock = MockHoneyHive::start();
    let scored = |name: &str, score: &str, flags: &[&str]| {
        run(experiment(&mock, name, &data)
            .env("SCORE", score)
            .args(["--evaluator", "accuracy=echo $SCORE"])
            .args(flags)
            .args(["--", "cat"]))
    };
    let (code, _, stderr) = scored("base", "0.9", &[]);
    assert_eq!(code, 0, "{stderr}");
    let base = run_id(&stderr);
    let gate = ["--compare-to", &base, "--fail-if", "accuracy drop > 0.1"];
    let (code, stdout, stderr) = scored("held", "0.85", &gate);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("accuracy  0.85  3/3     0.9   -0.05"),
        "{stdout}"
    );
    assert!(
        stdout.contains("gate 'accuracy drop > 0.1': held"),
        "{stdout}"
    );
    let (code, stdout, stderr) = scored("broken", "0.5", &gate);
    assert_eq!(code, 5, "{stdout}{stderr}");
    assert!(stdout.contains("datapoints 3  passed 3"), "{stdout}");
    assert!(
        stdout.contains("gate 'accuracy drop > 0.1': FAILED: accuracy went from 0.9 to 0.5"),
        "{stdout}"
    );
}

#[test]
fn killed_mid_run_then_resumed_every_datapoint_is_recorded_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path(), 30, &[]);
    let mock = MockHoneyHive::start();
    let id = "7d0c2a1e-5b8f-4c3a-9e6d-2f1b0a9c8d7e";
    let mut first = experiment(&mock, "killed", &data)
        .args([
            "--run-id",
            id,
            "--concurrency",
            "2",
            "--",
            "sh",
            "-c",
            "sleep 0.1; cat",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once some sessions are recorded, long before all are.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sessions_of(&mock, id).len() < 6 {
        assert!(Instant::now() < deadline, "no session recorded");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let before = sessions_of(&mock, id).len();
    assert!(before < 30, "the run ended before the kill");

    let (code, stdout, stderr) = run(experiment(&mock, "killed", &data).args([
        "--resume",
        id,
        "--concurrency",
        "4",
        "--",
        "cat",
    ]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("run {id}  completed")), "{stdout}");
    let sessions = sessions_of(&mock, id);
    assert_eq!(sessions.len(), 30, "every datapoint");
    for (datapoint, events) in &sessions {
        assert_eq!(
            events.len(),
            1,
            "{datapoint} recorded {} times",
            events.len()
        );
    }
    let skipped: usize = stdout
        .split("skipped ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no skipped count in {stdout}"));
    assert!(
        skipped >= before,
        "{skipped} skipped, {before} recorded before"
    );
    assert!(
        stdout.contains(&format!("passed {}", 30 - skipped)),
        "{stdout}"
    );
}

#[test]
fn two_shards_with_one_run_id_fill_the_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path(), 12, &[]);
    let mock = MockHoneyHive::start();
    let id = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f";
    let shard = |which: &str| {
        run(experiment(&mock, "sharded", &data)
            .args(["--run-id", id, "--shard", which, "--", "cat"]))
    };
    let (code, first, stderr) = shard("1/2");
    assert_eq!(code, 0, "{first}{stderr}");
    let after_first = sessions_of(&mock, id).len();
    assert!(
        0 < after_first && after_first < 12,
        "{after_first}: {first}"
    );
    assert!(
        first.contains(&format!("skipped {}", 12 - after_first)),
        "{first}"
    );
    let (code, second, stderr) = shard("2/2");
    assert_eq!(code, 0, "{second}{stderr}");
    assert!(second.contains(&format!("run {id}  completed")), "{second}");
    let sessions = sessions_of(&mock, id);
    assert_eq!(sessions.len(), 12);
    assert!(sessions.values().all(|events| events.len() == 1));
}

#[test]
fn close_ends_a_run_whose_last_shard_never_came() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path(), 12, &[]);
    let mock = MockHoneyHive::start();
    let id = "1a0b9c8d-7e6f-4c3d-8e2f-0f9e8d7c6b5a";
    let (code, first, stderr) =
        run(experiment(&mock, "sharded", &data)
            .args(["--run-id", id, "--shard", "1/2", "--", "cat"]));
    assert_eq!(code, 0, "{first}{stderr}");
    let recorded = sessions_of(&mock, id).len();
    let close = |args: &[&str]| {
        run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY)
            .args(["experiment", "close"])
            .args(args))
    };
    let (code, out, err) = close(&[id, "--status", "failed"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with(&format!("run {id} failed: ")), "{out}");
    let (code, _, err) = close(&["not-a-run"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("run_id"), "{err}");
    let (code, _, err) = close(&["00000000-0000-4000-8000-000000000000"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no run with id"), "{err}");
    // Closing recorded nothing more.
    assert_eq!(sessions_of(&mock, id).len(), recorded);
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

#[test]
fn commands_do_not_get_the_api_key_and_what_they_print_never_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path(), 2, &[]);
    let mock = MockHoneyHive::start();
    let key = MockHoneyHive::API_KEY;
    // The task says whether it got the key, and prints the key it found
    // elsewhere; the evaluator too.
    let task = script(
        dir.path(),
        "task.sh",
        &format!(
            r#"case "$(cat)" in *'"i":1'*) echo '{{}}'; exit 0 ;; esac
echo "got ${{HH_API_KEY:-no key}}; found {key}" >&2; exit 1"#
        ),
    );
    let evaluator = format!(r#"echo "eval got ${{HH_API_KEY:-no key}}; found {key}" >&2; exit 1"#);
    let (_, stdout, stderr) = run(experiment(&mock, "key", &data)
        .args(["--evaluator", &format!("e={evaluator}"), "--"])
        .arg(&task));
    assert!(stdout.contains("got no key; found [redacted]"), "{stdout}");
    assert!(
        stdout.contains("eval got no key; found [redacted]"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(key) && !stderr.contains(key),
        "{stdout}{stderr}"
    );
    for events in sessions_of(&mock, &run_id(&stderr)).values() {
        assert!(!events[0].to_string().contains(key), "{}", events[0]);
    }
}

#[test]
fn a_false_score_is_a_measurement_exit_0_and_a_score_not_had_is_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path(), 4, &[]);
    let mock = MockHoneyHive::start();
    // Right for even i only.
    let judge = r#"e=case "$(cat)" in *'"i":1'*|*'"i":3'*) echo false ;; *) echo true ;; esac"#;
    let (code, stdout, stderr) =
        run(experiment(&mock, "judged", &data).args(["--evaluator", judge, "--", "cat"]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("datapoints 4  passed 2  failed 2  errored 0"),
        "{stdout}"
    );
    assert!(stdout.contains("not passed:"), "{stdout}");
    // An evaluator that gives no score is an error.
    let (code, stdout, stderr) = run(experiment(&mock, "broken judge", &data).args([
        "--evaluator",
        "e=exit 2",
        "--",
        "cat",
    ]));
    assert_eq!(code, 1, "{stdout}{stderr}");
}

#[test]
fn a_base_run_that_does_not_exist_is_refused_before_any_datapoint_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path(), 2, &[]);
    let ran = dir.path().join("ran");
    let mock = MockHoneyHive::start();
    let (code, stdout, stderr) = run(experiment(&mock, "v2", &data)
        .args(["--compare-to", "3f4a5b6c-7d8e-4f9a-8b1c-2d3e4f5a6b7c", "--"])
        .args(["sh", "-c", &format!("touch {}; cat", ran.display())]));
    assert_ne!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("compare_to"), "{stderr}");
    assert!(!ran.exists(), "a datapoint ran");
}

/// A proxy on loopback in front of `upstream` that answers 404 to every
/// `PUT /v1/runs/...` (closing a run) and passes the rest on.
fn refusing_close(upstream: String) -> String {
    use std::io::{BufRead, BufReader, Read};
    use std::net::TcpStream;
    fn message(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
        let mut raw = Vec::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().ok()?;
            }
            raw.extend_from_slice(line.as_bytes());
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        raw.extend(body);
        Some(raw)
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let upstream = upstream.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                while let Some(request) = message(&mut reader) {
                    let answer = if request.starts_with(b"PUT /v1/runs/") {
                        let body = r#"{"error": "no closing today"}"#;
                        format!(
                            "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .into_bytes()
                    } else {
                        let mut to = TcpStream::connect(&upstream).unwrap();
                        to.write_all(&request).unwrap();
                        message(&mut BufReader::new(to)).unwrap()
                    };
                    if writer.write_all(&answer).is_err() {
                        break;
                    }
                }
            });
        }
    });
    url
}

#[test]
fn a_run_that_cannot_be_closed_still_prints_its_table_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path(), 2, &[]);
    let mock = MockHoneyHive::start();
    let proxy = refusing_close(mock.base_url());
    let (code, stdout, stderr) = run(honeyhive(&proxy, MockHoneyHive::API_KEY)
        .args(["experiment", "run", "--name", "unclosed", "--data"])
        .arg(&data)
        .args(["--", "cat"]));
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("datapoints 2  passed 2  failed 0  errored 0"),
        "{stdout}"
    );
    let run = run_id(&stderr);
    assert!(
        stderr.contains(&format!(
            "run {run} ran, but closing it failed (--resume {run} closes it)"
        )),
        "{stderr}"
    );
}

#[test]
fn sigterm_stops_the_run_as_ctrl_c_does_closed_as_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path(), 50, &[]);
    let started = dir.path().join("started");
    let mock = MockHoneyHive::start();
    let mut child = experiment(&mock, "terminated", &data)
        .args(["--concurrency", "2", "--quiet", "--"])
        .args([
            "sh",
            "-c",
            &format!("touch {}; sleep 0.3; cat", started.display()),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !started.exists() {
        assert!(Instant::now() < deadline, "no datapoint started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert_eq!(output.status.code(), Some(130), "{stdout}{stderr}");
    let run = run_id(&stderr);
    assert!(
        stdout.contains(&format!("run {run}  cancelled")),
        "{stdout}"
    );
    assert!(stderr.contains("stopping:"), "{stderr}");
}
