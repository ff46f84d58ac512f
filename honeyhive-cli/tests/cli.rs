//! The `honeyhive` binary, run as a user would, against servers on
//! loopback: the spec-validating mock, and a sink that counts event ids and
//! injects faults.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use honeyhive::testing::MockHoneyHive;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

mod support;
use support::{BIN, KEY, honeyhive, run};

/// `n` wrapped lines named `e0`, `e1`, ... in sessions `s0`..`s4`.
fn write_events(path: &Path, n: usize, extra: &[&str]) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..n {
        let line = json!({"session_id": format!("s{}", i % 5), "event": {"event_name": format!("e{i}"), "event_type": "tool", "duration": i}});
        writeln!(file, "{line}").unwrap();
    }
    for line in extra {
        writeln!(file, "{line}").unwrap();
    }
}

fn summary(stdout: &str) -> Value {
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// How the sink answers.
#[derive(Clone, Copy)]
enum Mode {
    /// 200 after `latency`; 400 for events named `bad...`.
    Answer { latency: Duration },
    /// As `Answer`, after a latency that varies from 0 to `most` per
    /// request, so that answers come back out of order.
    Jitter { most: Duration },
    /// 503 to everything.
    Unavailable,
    /// 503 (`Retry-After: 0`) to each event's first `failures` requests,
    /// then 200.
    Flaky { failures: usize },
}

/// A loopback API stand-in that records each event id it accepts, of
/// events sent one per request or in batches (`{"events": [...]}`): a batch
/// is refused whole when one of its events is.
struct Sink {
    url: String,
    ids: Arc<Mutex<Vec<String>>>,
    requests: Arc<AtomicU64>,
    /// Connections open now (accepted, not yet done).
    connections: Arc<AtomicU64>,
    /// Serves until the sink is dropped.
    _runtime: tokio::runtime::Runtime,
}

impl Sink {
    fn start(mode: Mode) -> Sink {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let ids: Arc<Mutex<Vec<String>>> = Arc::default();
        let requests = Arc::new(AtomicU64::new(0));
        let tries: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let connections = Arc::new(AtomicU64::new(0));
        let (seen, count, open) = (
            Arc::clone(&ids),
            Arc::clone(&requests),
            Arc::clone(&connections),
        );
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen, count, tries) =
                    (Arc::clone(&seen), Arc::clone(&count), Arc::clone(&tries));
                open.fetch_add(1, Ordering::SeqCst);
                let open = Arc::clone(&open);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: Request<hyper::body::Incoming>| {
                            let (seen, count, tries) =
                                (Arc::clone(&seen), Arc::clone(&count), Arc::clone(&tries));
                            async move {
                                count.fetch_add(1, Ordering::Relaxed);
                                let body = request
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let body: Value =
                                    serde_json::from_slice(&body).unwrap_or(Value::Null);
                                let batch = body.get("events").is_some();
                                let events = match body.get("events") {
                                    Some(Value::Array(events)) => events.clone(),
                                    _ => vec![body],
                                };
                                let ids: Vec<String> = events
                                    .iter()
                                    .map(|e| e["event_id"].as_str().unwrap_or("").to_owned())
                                    .collect();
                                let id = ids.first().cloned().unwrap_or_default();
                                let accepted = if batch {
                                    json!({"event_ids": ids, "success": true})
                                } else {
                                    json!({"event_id": id, "success": true})
                                };
                                let tried = {
                                    let mut tries = tries.lock().unwrap();
                                    let n = tries.entry(id.clone()).or_insert(0);
                                    *n += 1;
                                    *n
                                };
                                let latency = match mode {
                                    Mode::Answer { latency } => latency,
                                    Mode::Jitter { most } => {
                                        most.mul_f64(f64::from(fastrand_ms() as u32) / 300.0)
                                    }
                                    _ => Duration::ZERO,
                                };
                                let (status, answer) = match mode {
                                    Mode::Unavailable => (503, json!({"error": "down"})),
                                    Mode::Flaky { failures } if tried <= failures => {
                                        (503, json!({"error": "try again"}))
                                    }
                                    Mode::Flaky { .. } => {
                                        seen.lock().unwrap().extend(ids);
                                        (200, accepted)
                                    }
                                    Mode::Answer { .. } | Mode::Jitter { .. } => {
                                        tokio::time::sleep(latency).await;
                                        let bad = events.iter().any(|e| {
                                            e["event_name"]
                                                .as_str()
                                                .unwrap_or("")
                                                .starts_with("bad")
                                        });
                                        if bad {
                                            (400, json!({"error": "refused"}))
                                        } else {
                                            seen.lock().unwrap().extend(ids);
                                            (200, accepted)
                                        }
                                    }
                                };
                                let response = Response::builder()
                                    .status(status)
                                    .header("retry-after", "0")
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(answer.to_string())))
                                    .unwrap();
                                Ok::<_, Infallible>(response)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Sink {
            url,
            ids,
            requests,
            connections,
            _runtime: runtime,
        }
    }

    fn ids(&self) -> Vec<String> {
        self.ids.lock().unwrap().clone()
    }

    /// Waits until every connection of a client that is gone is done, so
    /// that every request it sent is recorded (or was never whole): then
    /// `ids` is what that client delivered, however slowly the sink ran.
    fn settled(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut closed_looks = 0;
        while closed_looks < 3 {
            assert!(Instant::now() < deadline, "the sink still has connections");
            if self.connections.load(Ordering::SeqCst) == 0 {
                closed_looks += 1;
            } else {
                closed_looks = 0;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.ids()
    }
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn send_delivers_every_line_once_and_hands_back_the_bad_ones_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    write_events(
        &file,
        300,
        &[
            "not json",
            "",
            r#"{"session_id":"s","event":{"event_name":"n","duration":"12ms"}}"#,
            r#"{"session_id":"s","event":{"event_name":"bad-one","event_type":"tool"}}"#,
        ],
    );
    let sink = Sink::start(Mode::Answer {
        latency: Duration::from_millis(1),
    });
    let (code, stdout, stderr) = run(honeyhive(&sink.url, KEY)
        .arg("send")
        .arg(&file)
        .arg("--json"));
    assert_eq!(code, 1, "{stderr}");
    let s = summary(&stdout);
    assert_eq!(
        (
            &s["lines"],
            &s["sent"],
            &s["rejected"],
            &s["failed"],
            &s["skipped"]
        ),
        (&json!(303), &json!(300), &json!(3), &json!(0), &json!(0)),
        "{s}"
    );
    assert_eq!(sink.ids().len(), 300);
    assert!(!stderr.contains(KEY));

    let rejects = read_jsonl(&dir.path().join("events.jsonl.rejects.jsonl"));
    let by_line: HashMap<u64, &Value> = rejects
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r))
        .collect();
    assert_eq!(rejects.len(), 3);
    assert_eq!(by_line[&301]["raw"], "not json");
    assert!(
        by_line[&301]["reason"]
            .as_str()
            .unwrap()
            .starts_with("not JSON")
    );
    assert!(
        by_line[&303]["reason"]
            .as_str()
            .unwrap()
            .starts_with("duration: "),
        "{}",
        by_line[&303]
    );
    let refused = by_line[&304];
    assert_eq!(refused["status"], 400);
    assert_eq!(refused["session_id"], "s");
    assert_eq!(refused["event"]["event_name"], "bad-one");
    assert!(
        refused["event"]["event_id"].is_string(),
        "the exact body, id included"
    );

    // Sent again: the same ids, so the API records nothing twice.
    let first: std::collections::HashSet<_> = sink.ids().into_iter().collect();
    let (code, _, _) = run(honeyhive(&sink.url, KEY).arg("send").arg(&file).arg("-q"));
    assert_eq!(code, 1);
    let all = sink.ids();
    assert_eq!(all.len(), 600);
    assert_eq!(
        all.into_iter().collect::<std::collections::HashSet<_>>(),
        first
    );
}

#[test]
fn send_batch_sends_n_lines_per_request_and_maps_a_refused_event_to_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    let bad = |n: usize| {
        json!({"session_id": "s", "event": {"event_name": format!("bad-{n}"), "event_type": "tool"}})
            .to_string()
    };
    let (bad_a, bad_b) = (bad(1), bad(2));
    write_events(
        &file,
        1_000,
        &[
            &bad_a,
            r#"{"session_id":"s","event":{"event_name":"untyped"}}"#,
            &bad_b,
        ],
    );
    let sink = Sink::start(Mode::Answer {
        latency: Duration::from_millis(1),
    });
    let checkpoint = dir.path().join("progress.json");
    let (code, stdout, stderr) = run(honeyhive(&sink.url, KEY)
        .arg("send")
        .arg(&file)
        .args(["--batch", "100", "--json", "--checkpoint"])
        .arg(&checkpoint));
    assert_eq!(code, 1, "{stderr}");
    let s = summary(&stdout);
    assert_eq!(
        (&s["lines"], &s["sent"], &s["rejected"], &s["failed"]),
        (&json!(1003), &json!(1000), &json!(3), &json!(0)),
        "{s}"
    );
    let first: std::collections::HashSet<_> = sink.ids().into_iter().collect();
    assert_eq!((sink.ids().len(), first.len()), (1000, 1000));
    let requests = sink.requests.load(Ordering::Relaxed);
    assert!(
        requests < 60,
        "{requests} requests for 1000 lines in batches of 100"
    );

    let rejects = read_jsonl(&dir.path().join("events.jsonl.rejects.jsonl"));
    let lines: Vec<u64> = rejects
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [1001, 1002, 1003]);
    assert_eq!(rejects[0]["status"], 400);
    assert_eq!(rejects[0]["event"]["event_name"], "bad-1");
    let reason = rejects[1]["reason"].as_str().unwrap();
    // The fix said in the line's terms, not the Rust API's.
    assert!(
        reason.contains("give the event an \"event_type\"") && !reason.contains("Event::"),
        "{}",
        rejects[1]
    );
    assert_eq!(rejects[2]["event"]["event_name"], "bad-2");

    // Sent again from the checkpoint: every line was settled (sent or
    // rejected), so nothing is sent twice.
    let (code, stdout, _) = run(honeyhive(&sink.url, KEY)
        .arg("send")
        .arg(&file)
        .args(["--batch", "100", "--json", "--checkpoint"])
        .arg(&checkpoint));
    assert_eq!(code, 0);
    let s = summary(&stdout);
    assert_eq!(
        (&s["sent"], &s["skipped"]),
        (&json!(0), &json!(1003)),
        "{s}"
    );
    assert_eq!(sink.ids().len(), 1000);
}

#[test]
fn send_batch_to_the_mock_holds_to_the_spec() {
    let mock = MockHoneyHive::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    write_events(&file, 25, &[]);
    let (code, stdout, stderr) = run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY)
        .arg("send")
        .arg(&file)
        .args(["--batch", "10", "--json"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary(&stdout)["sent"], 25);
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    let events = mock.events();
    assert_eq!(events.len(), 25);
    assert!(events.iter().all(|e| e.operation == "createEventBatch"));
    assert!(mock.stats().requests <= 5, "{:?}", mock.stats());
}

#[test]
fn killed_mid_file_and_rerun_with_the_checkpoint_every_event_is_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.jsonl");
    let lines = 4_000;
    write_events(&file, lines, &[]);
    let checkpoint = dir.path().join("cp.json");
    let sink = Sink::start(Mode::Answer {
        latency: Duration::from_millis(5),
    });
    // Killed (SIGKILL: no chance to save) once a checkpoint was written,
    // at a point that varies per run.
    let mut child = honeyhive(&sink.url, KEY)
        .args(["send", "--concurrency", "8", "-q", "--checkpoint"])
        .arg(&checkpoint)
        .arg(&file)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !checkpoint.exists() {
        assert!(Instant::now() < deadline, "no checkpoint written");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(fastrand_ms()));
    child.kill().unwrap();
    child.wait().unwrap();
    // Requests in flight at the kill may still be recorded: count them.
    let before = sink.settled().len();
    eprintln!("killed after {before} sent");
    assert!(
        before > 0 && before < lines,
        "killed mid-file: {before} of {lines} sent"
    );
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&checkpoint).unwrap()).unwrap();
    let delivered = saved["inputs"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()["events"]
        .as_u64()
        .unwrap();
    assert!(
        delivered as usize <= before,
        "the checkpoint never claims more than was sent"
    );

    let (code, stdout, stderr) = run(honeyhive(&sink.url, KEY)
        .args(["send", "--json", "--checkpoint"])
        .arg(&checkpoint)
        .arg(&file));
    assert_eq!(code, 0, "{stderr}");
    let s = summary(&stdout);
    assert_eq!(s["skipped"], json!(delivered));
    assert_eq!(s["sent"].as_u64().unwrap() + delivered, lines as u64, "{s}");

    let ids = sink.ids();
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), lines, "every event recorded");
    // What was re-sent is only what was in flight or unsaved at the kill,
    // and each of those has the same id as the first time.
    assert!(ids.len() - lines <= before - delivered as usize);

    // A third run sends nothing.
    let (code, stdout, _) = run(honeyhive(&sink.url, KEY)
        .args(["send", "--json", "--checkpoint"])
        .arg(&checkpoint)
        .arg(&file));
    assert_eq!(code, 0);
    assert_eq!(summary(&stdout)["skipped"], json!(lines));
    assert_eq!(sink.ids().len(), ids.len());
}

/// 0 to 299 ms, different per run.
fn fastrand_ms() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    u64::from(nanos % 300)
}

#[test]
fn an_api_that_cannot_be_reached_exits_4_and_keeps_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.jsonl");
    write_events(&file, 50, &[]);
    let url = format!("http://127.0.0.1:{}", closed_port());
    let started = Instant::now();
    let (code, stdout, stderr) = run(honeyhive(&url, KEY)
        .env("HH_MAX_RETRIES", "0")
        .args(["send", "--json"])
        .arg(&file));
    assert_eq!(code, 4, "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(stderr.contains("could not reach 127.0.0.1"), "{stderr}");
    assert_eq!(
        stderr.matches("could not reach").count(),
        1,
        "said once: {stderr}"
    );
    let s = summary(&stdout);
    assert_eq!(s["sent"], 0);
    let failed = s["failed"].as_u64().unwrap();
    assert!(failed > 0);
    assert_eq!(
        s["lines"].as_u64().unwrap(),
        failed,
        "every line read is in the rejects file"
    );
    let rejects = read_jsonl(&dir.path().join("e.jsonl.rejects.jsonl"));
    assert_eq!(rejects.len() as u64, failed);
    assert!(
        rejects
            .iter()
            .all(|r| r["status"].is_null() && r["event"]["event_id"].is_string())
    );
}

#[test]
fn log_names_its_new_session_when_the_event_may_have_been_recorded() {
    // 503 on every attempt: the server may hold the event all the same.
    let sink = Sink::start(Mode::Unavailable);
    let (code, stdout, stderr) = run(honeyhive(&sink.url, KEY)
        .env("HH_MAX_RETRIES", "1")
        .args(["log", "--type", "tool", "--name", "t"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("honeyhive log: session ") && stderr.contains("may have been recorded"),
        "{stderr}"
    );
}

#[test]
fn a_server_that_keeps_failing_gives_failed_lines_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.jsonl");
    write_events(&file, 20, &[]);
    let sink = Sink::start(Mode::Unavailable);
    let (code, stdout, stderr) = run(honeyhive(&sink.url, KEY)
        .env("HH_MAX_RETRIES", "1")
        .args(["send", "--json"])
        .arg(&file));
    assert_eq!(code, 1, "{stderr}");
    let s = summary(&stdout);
    assert_eq!(
        (&s["sent"], &s["failed"], &s["rejected"]),
        (&json!(0), &json!(20), &json!(0))
    );
    assert!(sink.requests.load(Ordering::Relaxed) >= 20);
    let rejects = read_jsonl(&dir.path().join("e.jsonl.rejects.jsonl"));
    assert!(rejects.iter().all(|r| r["status"] == 503), "{rejects:?}");
}

#[test]
fn configuration_and_usage_errors_have_their_exit_codes_and_never_show_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.jsonl");
    write_events(&file, 3, &[]);
    let mock = MockHoneyHive::start();

    // The mock refuses any key but its own: 401 → exit 3.
    let (code, _, stderr) = run(honeyhive(&mock.base_url(), KEY).arg("send").arg(&file));
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr
            .contains("refused the API key (HTTP 401): check it; set HH_API_KEY or pass --api-key"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("refused").count(), 1, "said once: {stderr}");
    assert!(!stderr.contains("::"), "no Rust API at the shell: {stderr}");
    assert!(!stderr.contains(KEY), "{stderr}");

    // No key at all.
    let (code, _, stderr) = run(honeyhive(&mock.base_url(), KEY)
        .env_remove("HH_API_KEY")
        .arg("send")
        .arg(&file));
    assert_eq!(code, 3);
    assert!(
        stderr.contains(
            "configuration: invalid HH_API_KEY: is not set; set it to your HoneyHive API key"
        ),
        "{stderr}"
    );

    // A bad setting names its variable.
    let (code, _, stderr) = run(honeyhive(&mock.base_url(), KEY)
        .env("HH_API_TIMEOUT", "soon")
        .arg("send")
        .arg(&file));
    assert_eq!(code, 3);
    assert!(stderr.contains("HH_API_TIMEOUT"), "{stderr}");

    // Usage: no file, a file that is not there, an unknown flag.
    assert_eq!(run(honeyhive(&mock.base_url(), KEY).arg("send")).0, 2);
    let (code, _, stderr) = run(honeyhive(&mock.base_url(), KEY)
        .arg("send")
        .arg(dir.path().join("missing.jsonl")));
    assert_eq!(code, 2);
    assert!(stderr.contains("missing.jsonl"), "{stderr}");
    assert_eq!(
        run(honeyhive(&mock.base_url(), KEY)
            .args(["send", "--nope"])
            .arg(&file))
        .0,
        2
    );

    // The key is not in the help either (its variable is named, not shown).
    let (_, help, _) = run(honeyhive(&mock.base_url(), KEY).args(["send", "--help"]));
    assert!(help.contains("HH_API_KEY") && !help.contains(KEY), "{help}");
}

#[test]
fn standard_input_and_bare_events_with_a_session_reach_the_mock_valid() {
    let mock = MockHoneyHive::start();
    let mut child = honeyhive(&mock.base_url(), MockHoneyHive::API_KEY)
        .args(["send", "-", "--session", "from-flag", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for i in 0..10 {
            writeln!(
                stdin,
                "{}",
                json!({"event_name": format!("bare{i}"), "event_type": "model"})
            )
            .unwrap();
        }
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        summary(&String::from_utf8_lossy(&output.stdout))["sent"],
        10
    );
    let events = mock.events();
    assert_eq!(events.len(), 10);
    assert!(events.iter().all(|e| e.session_id == "from-flag"));
    assert!(mock.violations().is_empty());
}

#[test]
fn validate_prints_file_line_field_problem_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v.jsonl");
    std::fs::write(
        &file,
        "{\"event_name\":\"ok\",\"duration\":3}\n\n{\"event\":{\"event_name\":\"n\",\"duration\":\"3\"}}\n{oops\n",
    )
    .unwrap();
    let (code, stdout, _) = run(Command::new(BIN)
        .args(["validate", "--session", "s"])
        .arg(&file));
    assert_eq!(code, 1);
    let name = file.display().to_string();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with(&format!("{name}:3: duration: ")),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with(&format!("{name}:4: not JSON")),
        "{stdout}"
    );

    std::fs::write(&file, "{\"session_id\":\"s\",\"event_name\":\"ok\"}\n").unwrap();
    assert_eq!(run(Command::new(BIN).arg("validate").arg(&file)).0, 0);
}

#[test]
fn log_sends_one_event_and_prints_its_id() {
    let mock = MockHoneyHive::start();
    let (code, stdout, stderr) = run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY).args([
        "log",
        "--type",
        "model",
        "--name",
        "gpt-4o",
        "--session",
        "s-1",
        "--inputs",
        r#"{"q":"hi"}"#,
        "--duration-ms",
        "12.5",
    ]));
    assert_eq!(code, 0, "{stderr}");
    let events = mock.events();
    assert_eq!(events.len(), 1);
    assert_eq!(stdout.trim(), events[0].event["event_id"].as_str().unwrap());
    assert_eq!(events[0].session_id, "s-1");
    assert_eq!(events[0].event["inputs"], json!({"q": "hi"}));
    assert_eq!(events[0].event["event_type"], "model");
    assert_eq!(events[0].event["duration"], json!(12.5));

    let (code, _, stderr) = run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY)
        .args(["log", "--type", "tool", "--name", "t", "--inputs", "[1]"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("--inputs"), "{stderr}");

    // A new session is named once it holds the event, and not when the
    // event is refused.
    let (code, stdout, stderr) = run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY)
        .args(["log", "--type", "tool", "--name", "t"]));
    assert_eq!(code, 0, "{stderr}");
    let events = mock.events();
    let last = events.last().unwrap();
    assert_eq!(stdout.trim(), last.event["event_id"].as_str().unwrap());
    assert!(
        stderr.contains(&format!("session {}", last.session_id)),
        "{stderr}"
    );
    let (code, _, stderr) = run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY).args([
        "log",
        "--type",
        "tool",
        "--name",
        "t",
        "--start-time-ms",
        "2000",
        "--end-time-ms",
        "1000",
    ]));
    assert_eq!(code, 2, "{stderr}");
    assert!(!stderr.contains("session "), "{stderr}");
    assert_eq!(mock.events().len(), events.len());
}

/// `honeyhive mock` with `args` started: the process, its stdout after the
/// first line, and that line (the mock's URL).
fn spawn_mock(
    args: &[&str],
    stderr: Stdio,
) -> (
    std::process::Child,
    BufReader<std::process::ChildStdout>,
    String,
) {
    let mut mock = Command::new(BIN)
        .arg("mock")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut out = BufReader::new(mock.stdout.take().unwrap());
    let mut url = String::new();
    out.read_line(&mut url).unwrap();
    let url = url.trim().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    (mock, out, url)
}

#[test]
fn the_mock_process_remembers_a_dataset_it_created() {
    let (mut mock, _out, url) = spawn_mock(&[], Stdio::null());
    let key = Some(MockHoneyHive::API_KEY);
    let body = json!({"name": "qa", "description": "questions"});
    let (status, created) = http(&format!("{url}/v1/datasets"), "POST", key, Some(&body));
    assert_eq!(status, 200, "{created}");
    let id = created["result"]["insertedId"].as_str().unwrap().to_owned();
    let (status, listed) = http(
        &format!("{url}/v1/datasets?dataset_id={id}"),
        "GET",
        key,
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(listed["datasets"][0]["name"], "qa");
    assert_eq!(listed["datasets"][0]["description"], "questions");
    assert_eq!(listed["datasets"][0]["datapoints"], json!([]));
    // A dataset it never made: none listed, and a 404 to delete.
    let (_, none) = http(
        &format!("{url}/v1/datasets?dataset_id=other"),
        "GET",
        key,
        None,
    );
    assert_eq!(none["datasets"], json!([]));
    let (status, gone) = http(&format!("{url}/v1/datasets/other"), "DELETE", key, None);
    assert_eq!((status, gone["resource"].as_str()), (404, Some("dataset")));
    let stats = http_get(&format!("{url}{}", MockHoneyHive::STATS_PATH));
    assert_eq!(
        (stats["requests"].as_u64(), stats["violations"].as_u64()),
        (Some(4), Some(0))
    );
    mock.kill().unwrap();
    mock.wait().unwrap();
}

#[test]
fn mock_runs_as_a_process_prints_what_it_accepts_and_counts_violations() {
    let (mut mock, mut out, url) = spawn_mock(&["--print"], Stdio::null());
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.jsonl");
    write_events(&file, 5, &[]);
    let (code, _, stderr) = run(honeyhive(&url, MockHoneyHive::API_KEY)
        .arg("send")
        .arg(&file));
    assert_eq!(code, 0, "{stderr}");
    // A request that breaks the spec, sent by hand.
    let (code, _, _) =
        run(honeyhive(&url, "wrong-key").args(["log", "--type", "tool", "--name", "t"]));
    assert_eq!(code, 3);

    let mut printed = Vec::new();
    for _ in 0..5 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        printed.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    let names: std::collections::HashSet<_> = printed
        .iter()
        .map(|p| p["event"]["event_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, (0..5).map(|i| format!("e{i}")).collect());

    let stats = http_get(&format!("{url}{}", MockHoneyHive::STATS_PATH));
    assert_eq!(
        stats,
        json!({"requests": 6, "events": 5, "sessions": 0, "updates": 0, "violations": 1})
    );

    // Ctrl-C stops it; a violation seen makes the exit code 1.
    // The shell's own `kill`: no extra binary or unsafe code needed.
    let stopped = Command::new("sh")
        .args(["-c", &format!("kill -INT {}", mock.id())])
        .status()
        .unwrap();
    assert!(stopped.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = mock.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the mock did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
}

/// A GET on loopback with the standard library (the test needs no client).
fn http_get(url: &str) -> Value {
    http(url, "GET", None, None).1
}

/// A request on loopback with the standard library: the status and the
/// JSON answer (`Null` for none).
fn http(url: &str, method: &str, key: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    use std::io::Read;
    let address = url.trim_start_matches("http://");
    let (host, path) = address.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let json = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/json\r\n"
    };
    write!(
        stream,
        "{method} /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{auth}{json}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).unwrap().parse().unwrap();
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
    };
    (status, value)
}

#[test]
fn a_utf8_byte_order_mark_is_skipped_and_utf16_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bom.jsonl");
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(b"{\"session_id\":\"s\",\"event\":{\"event_name\":\"first\"}}\r\n");
    bytes.extend_from_slice(b"{\"session_id\":\"s\",\"event\":{\"event_name\":\"second\"}}\r\n");
    std::fs::write(&file, &bytes).unwrap();
    let (code, stdout, stderr) = run(Command::new(BIN).arg("validate").arg(&file));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let mock = MockHoneyHive::start();
    let (code, stdout, stderr) = run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY)
        .args(["send", "--json"])
        .arg(&file));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary(&stdout)["sent"], 2);
    let names: Vec<_> = mock
        .events()
        .iter()
        .map(|e| e.event["event_name"].clone())
        .collect();
    assert!(names.contains(&json!("first")), "{names:?}");

    // The same text in UTF-16 (as Windows' "Unicode" saves it): refused
    // whole, naming the encoding, before anything is sent.
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    std::fs::write(&file, &utf16).unwrap();
    for command in ["validate", "send"] {
        let (code, _, stderr) = run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY)
            .arg(command)
            .arg(&file));
        assert_eq!(code, 2, "{command}: {stderr}");
        assert!(
            stderr.contains("UTF-16 (little-endian)"),
            "{command}: {stderr}"
        );
        assert!(!stderr.contains("column"), "{command}: {stderr}");
    }
    assert_eq!(mock.events().len(), 2, "nothing more was sent");

    // A line in Latin-1 among UTF-8 ones is that line's problem.
    std::fs::write(
        &file,
        b"{\"session_id\":\"s\",\"event\":{\"event_name\":\"caf\xE9\"}}\n{\"session_id\":\"s\",\"event\":{\"event_name\":\"ok\"}}\n",
    )
    .unwrap();
    let (code, stdout, _) = run(Command::new(BIN).arg("validate").arg(&file));
    assert_eq!(code, 1);
    assert!(stdout.contains(":1: not UTF-8: byte 0xE9"), "{stdout}");
    let (code, stdout, _) = run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY)
        .args(["send", "--json"])
        .arg(&file));
    assert_eq!(code, 1);
    let s = summary(&stdout);
    assert_eq!((&s["sent"], &s["rejected"]), (&json!(1), &json!(1)), "{s}");
}

#[test]
fn a_backfill_retries_a_flaky_line_until_its_deadline_not_for_five_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.jsonl");
    write_events(&file, 30, &[]);
    // Each event fails seven times before it goes through: five attempts
    // (the library's default) would give up on every one.
    let sink = Sink::start(Mode::Flaky { failures: 7 });
    let (code, stdout, stderr) = run(honeyhive(&sink.url, KEY)
        .env_remove("HH_MAX_RETRIES")
        .args(["send", "--json", "--retry-deadline", "60"])
        .arg(&file));
    assert_eq!(code, 0, "{stderr}");
    let s = summary(&stdout);
    assert_eq!((&s["sent"], &s["failed"]), (&json!(30), &json!(0)), "{s}");
    assert_eq!(sink.ids().len(), 30);
    // A number of retries, given, still bounds them.
    let sink = Sink::start(Mode::Flaky { failures: 7 });
    let (code, stdout, _) = run(honeyhive(&sink.url, KEY)
        .env("HH_MAX_RETRIES", "2")
        .args(["send", "--json"])
        .arg(&file));
    assert_eq!(code, 1);
    assert_eq!(summary(&stdout)["failed"], 30);
}

/// The checkpoint's position for the one input it holds.
fn checkpoint_line(path: &Path) -> u64 {
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    saved["inputs"]
        .as_object()
        .and_then(|inputs| inputs.values().next())
        .map_or(0, |position| position["line"].as_u64().unwrap())
}

#[test]
fn the_checkpoint_never_passes_a_line_that_failed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.jsonl");
    write_events(&file, 6, &[]);
    let checkpoint = dir.path().join("cp.json");
    let mock = MockHoneyHive::start();
    // The wrong key: every line fails, exit 3, and the checkpoint stays at
    // the start.
    let (code, _, stderr) = run(honeyhive(&mock.base_url(), "wrong")
        .args(["send", "--checkpoint"])
        .arg(&checkpoint)
        .arg(&file));
    assert_eq!(code, 3, "{stderr}");
    if checkpoint.exists() {
        assert_eq!(checkpoint_line(&checkpoint), 0);
    }
    // The right key: every line is sent, none skipped.
    let (code, stdout, stderr) = run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY)
        .args(["send", "--json", "--checkpoint"])
        .arg(&checkpoint)
        .arg(&file));
    assert_eq!(code, 0, "{stderr}");
    let s = summary(&stdout);
    assert_eq!((&s["sent"], &s["skipped"]), (&json!(6), &json!(0)), "{s}");
    assert_eq!(checkpoint_line(&checkpoint), 6);

    // The API unreachable (exit 4): the checkpoint does not move either.
    let other = dir.path().join("f.jsonl");
    write_events(&other, 4, &[]);
    let unreachable = format!("http://127.0.0.1:{}", closed_port());
    let cp2 = dir.path().join("cp2.json");
    let (code, _, _) = run(honeyhive(&unreachable, KEY)
        .env("HH_MAX_RETRIES", "0")
        .args(["send", "--checkpoint"])
        .arg(&cp2)
        .arg(&other));
    assert_eq!(code, 4);
    if cp2.exists() {
        assert_eq!(checkpoint_line(&cp2), 0);
    }
}

#[test]
fn validate_refuses_what_send_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bare.jsonl");
    std::fs::write(
        &file,
        "{\"event_name\":\"no-session\",\"event_type\":\"tool\"}\n",
    )
    .unwrap();
    let (code, stdout, _) = run(Command::new(BIN).arg("validate").arg(&file));
    assert_eq!(code, 1);
    assert!(stdout.contains(":1: session_id: missing"), "{stdout}");
    let mock = MockHoneyHive::start();
    let (code, stdout, _) = run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY)
        .args(["send", "--json"])
        .arg(&file));
    assert_eq!(code, 1);
    assert_eq!(summary(&stdout)["rejected"], 1);
    // With the session given, both take it.
    let (code, _, _) = run(Command::new(BIN)
        .args(["validate", "--session", "s"])
        .arg(&file));
    assert_eq!(code, 0);
}

#[test]
fn rejects_are_in_line_order_whole_and_not_listed_again_by_a_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mixed.jsonl");
    let mut lines = Vec::new();
    for i in 0..200 {
        lines.push(match i % 20 {
            3 => "not json at all".to_owned(),
            7 => json!({"session_id": "s", "event": {"event_name": format!("e{i}"), "duration": "12ms"}}).to_string(),
            11 => json!({"session_id": "s", "event": {"event_name": format!("bad-{i}")}}).to_string(),
            _ => json!({"session_id": "s", "event": {"event_name": format!("e{i}")}}).to_string(),
        });
    }
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    // Answers come back out of order.
    let sink = Sink::start(Mode::Jitter {
        most: Duration::from_millis(20),
    });
    let rejects_path = dir.path().join("mixed.jsonl.rejects.jsonl");
    let (code, _, stderr) = run(honeyhive(&sink.url, KEY).arg("send").arg(&file));
    assert_eq!(code, 1, "{stderr}");
    let rejects = read_jsonl(&rejects_path);
    assert_eq!(rejects.len(), 30, "{rejects:?}");
    let numbers: Vec<u64> = rejects
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    let mut sorted = numbers.clone();
    sorted.sort_unstable();
    assert_eq!(numbers, sorted, "in line order");
    for record in &rejects {
        assert!(
            record.get("status").is_some(),
            "status, null or not: {record}"
        );
        match record["line"].as_u64().unwrap() % 20 {
            4 => assert_eq!(record["raw"], "not json at all"),
            8 => {
                // Fails the schema: kept as its session and event, to fix
                // in place, with the id it would be sent under.
                assert!(record.get("raw").is_none(), "{record}");
                assert_eq!(record["session_id"], "s");
                assert_eq!(record["event"]["duration"], "12ms");
                assert!(record["event"]["event_id"].is_string(), "{record}");
                assert!(record["status"].is_null());
            }
            12 => assert_eq!(record["status"], 400),
            other => panic!("line {other} mod 20 is not a bad one: {record}"),
        }
    }
    // Again, without a checkpoint: the same records, not twice as many.
    let (code, _, _) = run(honeyhive(&sink.url, KEY).arg("send").arg(&file));
    assert_eq!(code, 1);
    assert_eq!(read_jsonl(&rejects_path), rejects);
}

#[test]
fn messages_name_flags_not_rust_and_say_each_thing_once() {
    let mock = MockHoneyHive::start();
    // Plain http to a host that is not loopback: the fix is a flag.
    let (code, _, stderr) =
        run(honeyhive("http://example.com", KEY).args(["log", "--type", "tool", "--name", "t"]));
    assert_eq!(code, 3);
    assert!(
        stderr.contains("; use https://, or --allow-insecure-http if you mean it"),
        "{stderr}"
    );
    assert!(!stderr.contains("::"), "{stderr}");
    // A session id the API cannot take.
    let (code, _, stderr) = run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY).args([
        "log",
        "--type",
        "tool",
        "--name",
        "t",
        "--session",
        ".",
    ]));
    assert_eq!(code, 2);
    assert!(stderr.contains("session_id"), "{stderr}");
    assert!(!stderr.contains("::"), "{stderr}");
    // A negative number is a value, refused for what it is.
    let (code, _, stderr) = run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY).args([
        "log",
        "--type",
        "tool",
        "--name",
        "t",
        "--duration-ms",
        "-5",
    ]));
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid duration"), "{stderr}");
}

#[test]
fn the_mock_says_every_violation_it_counted_before_it_exits() {
    let (mock, _out, url) = spawn_mock(&[], Stdio::piped());
    // A violation, then Ctrl-C at once: within the mock's 50 ms tick.
    let (code, _, _) =
        run(honeyhive(&url, "wrong-key").args(["log", "--type", "tool", "--name", "t"]));
    assert_eq!(code, 3);
    let stopped = Command::new("sh")
        .args(["-c", &format!("kill -INT {}", mock.id())])
        .status()
        .unwrap();
    assert!(stopped.success());
    let output = mock.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("refused POST"), "{stderr}");
    assert!(stderr.contains("1 violations"), "{stderr}");
}

#[test]
fn send_redacts_the_keys_given_and_samples_sessions_with_the_library_s_rule() {
    let mock = MockHoneyHive::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let mut file = std::fs::File::create(&path).unwrap();
    for i in 0..100 {
        let line = json!({"session_id": format!("sess-{i}"), "event": {
            "event_name": format!("e{i}"), "event_type": "tool",
            "inputs": {"Password": "hunter2", "note": "mail bob@example.com", "q": i}
        }});
        writeln!(file, "{line}").unwrap();
    }
    drop(file);
    let (code, stdout, stderr) = run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY).args([
        "send",
        path.to_str().unwrap(),
        "--redact-keys",
        "password,api_key",
        "--sample",
        "0.5",
        "--json",
    ]));
    assert_eq!(code, 0, "{stderr}");
    let summary = summary(&stdout);
    let events = mock.events();
    let sent = events.len() as u64;
    assert_eq!(summary["sent"], sent);
    assert_eq!(summary["sampled_out"], 100 - sent);
    assert!((25..=75).contains(&sent), "{sent} of 100 sessions at 0.5");
    // The same sessions as the library keeps at that rate.
    let client = mock.client_builder().sample_rate(0.5).build().unwrap();
    for event in &events {
        assert!(client.keeps_session(&event.session_id));
        assert_eq!(event.event["inputs"]["Password"], "[redacted]");
        assert_eq!(event.event["inputs"]["note"], "mail [redacted]");
    }
    let kept = (0..100)
        .filter(|i| client.keeps_session(format!("sess-{i}")))
        .count() as u64;
    assert_eq!(kept, sent);
}

#[test]
fn validate_reports_lines_that_would_be_cut_and_those_that_cannot_fit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    let long = json!({"session_id": "s", "event": {"event_type": "model", "inputs": {"prompt": "x".repeat(5_000)}}});
    let numbers: Vec<u32> = (0..3_000).collect();
    let numeric =
        json!({"session_id": "s", "event": {"event_type": "model", "inputs": {"v": numbers}}});
    let small = json!({"session_id": "s", "event": {"event_type": "tool"}});
    std::fs::write(&path, format!("{long}\n{numeric}\n{small}\n")).unwrap();
    let (code, stdout, stderr) = run(honeyhive("http://127.0.0.1:9", KEY).args([
        "validate",
        path.to_str().unwrap(),
        "--max-body-bytes",
        "2000",
    ]));
    assert_eq!(
        code, 1,
        "the line that cannot fit is a problem: {stdout}{stderr}"
    );
    let name = path.display().to_string();
    assert!(
        stdout.contains(&format!("{name}:1: cut to fit: /inputs/prompt")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{name}:2: event: cannot be cut to fit")),
        "{stdout}"
    );
    assert!(!stdout.contains(&format!("{name}:3:")), "{stdout}");
    assert!(
        stderr.contains("3 lines, 1 problems, 1 cut to fit 2000 bytes"),
        "{stderr}"
    );
}

#[test]
fn send_cuts_a_line_over_the_body_limit_to_fit_and_sends_it() {
    let mock = MockHoneyHive::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    let prompt = "p".repeat(6 * 1024 * 1024);
    let line =
        json!({"session_id": "s", "event": {"event_type": "model", "inputs": {"prompt": prompt}}});
    std::fs::write(&path, format!("{line}\n")).unwrap();
    let (code, stdout, stderr) = run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY).args([
        "send",
        path.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(summary(&stdout)["sent"], 1);
    let events = mock.events();
    assert!(events[0].body.len() <= honeyhive::ClientBuilder::DEFAULT_MAX_BODY_BYTES);
    let sent = events[0].event["inputs"]["prompt"].as_str().unwrap();
    assert!(
        sent.ends_with(" bytes cut]"),
        "{}",
        &sent[sent.len() - 40..]
    );
    assert_eq!(
        events[0].event["metadata"][honeyhive::ClientBuilder::CUT_METADATA_KEY],
        json!(["/inputs/prompt"])
    );
}

/// Lines `send` refuses for what they hold, each of a kind, with good
/// lines among them.
const CORPUS: [&str; 12] = [
    r#"{"session_id":"s1","event":{"event_name":"ok","event_type":"tool"}}"#,
    r#"{"session_id":"","event":{"event_name":"empty-session","event_type":"tool"}}"#,
    r#"{"session_id":"s1","event":{"event_name":"ends-first","event_type":"tool","start_time":2000,"end_time":1000}}"#,
    r#"{"session_id":"s1","event":{"event_name":"untyped"}}"#,
    r#"{"session_id":"s1","event":{"event_name":"llm-typed","event_type":"llm"}}"#,
    r#"{"session_id":"s1","event":{"event_name":"misspelled","event_type":"tool","metdata":{"a":1}}}"#,
    r#"{"session_id":"s1","event_name":"bare-misspelled","event_type":"tool","output":{"a":1}}"#,
    r#"{"session_id":"s1","event":{"event_name":"child-key","event_type":"chain","children":[{"event_name":"c","event_type":"tool","colour":"red"}]}}"#,
    r#"{"session_id":"s1","event":{"event_name":"untyped-child","event_type":"chain","children":[{"event_name":"c"}]}}"#,
    r#"{"session_id":"s2","event_name":"ok-bare","event_type":"model"}"#,
    r#"{"session_id":"s1","event":{"event_name":7}}"#,
    r#"{nope"#,
];

/// The line numbers `validate` finds a problem in.
fn validate_verdicts(file: &Path, route: &[&str]) -> Vec<u64> {
    let (_, stdout, _) = run(Command::new(BIN).arg("validate").args(route).arg(file));
    let prefix = format!("{}:", file.display());
    let mut lines: Vec<u64> = stdout
        .lines()
        .filter(|l| !l.contains(": cut to fit: "))
        .filter_map(|l| l.strip_prefix(&prefix)?.split(':').next()?.parse().ok())
        .collect();
    lines.dedup();
    lines
}

#[test]
fn send_and_validate_give_every_line_the_same_verdict_on_either_route() {
    for (route, refused) in [
        (&[][..], vec![2, 3, 6, 7, 8, 11, 12]),
        (&["--batch", "10"][..], vec![2, 3, 4, 5, 6, 7, 8, 9, 11, 12]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("corpus.jsonl");
        std::fs::write(&file, CORPUS.join("\n") + "\n").unwrap();
        assert_eq!(
            validate_verdicts(&file, route),
            refused,
            "validate {route:?}"
        );
        let mock = MockHoneyHive::start();
        let (code, stdout, stderr) = run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY)
            .args(["send", "--json"])
            .args(route)
            .arg(&file));
        assert_eq!(code, 1, "{stderr}");
        let rejected: Vec<u64> = read_jsonl(&dir.path().join("corpus.jsonl.rejects.jsonl"))
            .iter()
            .map(|r| r["line"].as_u64().unwrap())
            .collect();
        assert_eq!(rejected, refused, "send {route:?}: {stderr}");
        let s = summary(&stdout);
        assert_eq!(
            s["sent"].as_u64().unwrap() as usize,
            12 - refused.len(),
            "{s}"
        );
        assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    }
}

#[test]
fn a_key_that_is_not_a_field_is_refused_by_name_with_the_nearest_field_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.jsonl");
    std::fs::write(
        &file,
        "{\"event_name\":\"n\",\"event_type\":\"tool\",\"metdata\":{\"user\":\"u-1\"}}\n\
         {\"event_name\":\"n\",\"event_type\":\"tool\",\"colour\":\"red\"}\n",
    )
    .unwrap();
    let (code, stdout, _) = run(Command::new(BIN)
        .args(["validate", "--session", "s"])
        .arg(&file));
    assert_eq!(code, 1);
    assert!(
        stdout.contains(
            ":1: metdata: not a field of an event, so it would be dropped; did you mean `metadata`?"
        ),
        "{stdout}"
    );
    assert!(stdout.contains(":2: colour: not a field"), "{stdout}");
    let mock = MockHoneyHive::start();
    let (code, stdout, stderr) = run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY)
        .args(["send", "--json", "--session", "s"])
        .arg(&file));
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(summary(&stdout)["rejected"], 2);
    assert!(mock.events().is_empty(), "nothing half-sent");
    let rejects = read_jsonl(&dir.path().join("keys.jsonl.rejects.jsonl"));
    assert!(
        rejects[0]["reason"]
            .as_str()
            .unwrap()
            .contains("`metadata`"),
        "{rejects:?}"
    );
    // The event is kept whole, so it can be fixed where it is.
    assert_eq!(rejects[0]["event"]["metdata"]["user"], "u-1", "{rejects:?}");
}

#[test]
fn a_blank_variable_is_refused_by_name_and_help_shows_no_empty_values() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.jsonl");
    std::fs::write(&file, "{\"event_name\":\"n\",\"event_type\":\"tool\"}\n").unwrap();
    let mock = MockHoneyHive::start();
    for blank in ["", "  "] {
        let (code, _, stderr) = run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY)
            .env("HH_SAMPLE_RATE", blank)
            .args(["send", "--session", "s"])
            .arg(&file));
        assert_eq!(code, 3, "{stderr}");
        assert!(
            stderr.contains("HH_SAMPLE_RATE: is set but blank"),
            "{stderr}"
        );
    }
    assert!(
        mock.events().is_empty(),
        "nothing sent at a rate nobody chose"
    );
    let (_, help, _) = run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY)
        .env_remove("HH_API_URL")
        .args(["send", "--help"]));
    assert!(help.contains("[env: HH_API_URL]"), "{help}");
    assert!(!help.contains("=]"), "{help}");
}

#[test]
fn a_checkpoint_resumes_a_file_that_grew_and_refuses_one_replaced_by_another() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.jsonl");
    let checkpoint = dir.path().join("cp.json");
    write_events(&file, 100, &[]);
    let mock = MockHoneyHive::start();
    let send = || {
        run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY)
            .args(["send", "--json", "--checkpoint"])
            .arg(&checkpoint)
            .arg(&file))
    };
    let (code, _, stderr) = send();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(checkpoint_line(&checkpoint), 100);
    // Lines added at its end: only those are sent.
    let mut grown = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    writeln!(
        grown,
        r#"{{"session_id":"s9","event":{{"event_name":"late","event_type":"tool"}}}}"#
    )
    .unwrap();
    drop(grown);
    let (code, stdout, stderr) = send();
    assert_eq!(code, 0, "{stderr}");
    let s = summary(&stdout);
    assert_eq!((&s["sent"], &s["skipped"]), (&json!(1), &json!(100)), "{s}");
    // Replaced by another, longer file: refused by name, nothing sent.
    let before = mock.events().len();
    let other: String = (0..300)
        .map(|i| format!("{{\"session_id\":\"o\",\"event\":{{\"event_name\":\"other-{i}\",\"event_type\":\"chain\"}}}}\n"))
        .collect();
    std::fs::write(&file, other).unwrap();
    let (code, _, stderr) = send();
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("is not the file it was made for") && stderr.contains("e.jsonl"),
        "{stderr}"
    );
    assert_eq!(
        mock.events().len(),
        before,
        "nothing of the other file was sent"
    );
    // Nor of a file before it in the same run: every input is checked first.
    let first = dir.path().join("first.jsonl");
    write_events(&first, 3, &[]);
    let (code, _, stderr) = run(honeyhive(&mock.base_url(), MockHoneyHive::API_KEY)
        .args(["send", "--checkpoint"])
        .arg(&checkpoint)
        .arg(&first)
        .arg(&file));
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(
        mock.events().len(),
        before,
        "nothing sent before the refusal"
    );
}

#[test]
fn against_a_server_that_never_answers_send_says_why_at_the_first_failed_attempt() {
    // Takes connections and never answers them.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.jsonl");
    write_events(&file, 3, &[]);
    let mut child = honeyhive(&url, KEY)
        .env_remove("HH_MAX_RETRIES")
        .env("HH_API_TIMEOUT", "0.3")
        .args(["send", "--retry-deadline", "120"])
        .arg(&file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let started = Instant::now();
    let mut seen = Vec::new();
    let said = loop {
        match lines_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.contains("retrying: ") => break Some(line),
            Ok(line) => seen.push(line),
            Err(_) => break None,
        }
    };
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    let said = said.unwrap_or_else(|| panic!("no reason said: {seen:?}"));
    assert!(running, "said while still retrying, not at the end");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        said.contains("timed out") || said.contains("no answer"),
        "{said}"
    );
    assert!(said.contains("--retry-deadline 120 s"), "{said}");
    assert!(!said.contains(KEY));
}

#[test]
fn a_key_beside_a_wrapped_event_is_refused_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wrapped.jsonl");
    std::fs::write(
        &file,
        "{\"session_id\":\"s\",\"event\":{\"event_name\":\"n\",\"event_type\":\"tool\"},\"metadata\":{\"user\":\"u-1\"}}\n\
         {\"sesion_id\":\"mine\",\"event\":{\"event_name\":\"n\",\"event_type\":\"tool\"}}\n\
         {\"session_id\":\"s\",\"event\":{\"event_name\":\"n\",\"event_type\":\"tool\"},\"reason\":\"x\",\"status\":null,\"at_ms\":1}\n",
    )
    .unwrap();
    let (code, stdout, _) = run(Command::new(BIN)
        .args(["validate", "--session", "given"])
        .arg(&file));
    assert_eq!(code, 1);
    assert!(stdout.contains(":1: metadata: beside `event`"), "{stdout}");
    assert!(
        stdout.contains(":2: sesion_id: not a key of a line"),
        "{stdout}"
    );
    assert!(!stdout.contains(":3:"), "a dead letter replays: {stdout}");
}
