//! `honeyhive datasets` and `honeyhive events` against the stateful mock
//! (`MockHoneyHive`, in this process): what they print, what they leave in
//! the mock, and their exit codes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use honeyhive::testing::MockHoneyHive;
use honeyhive::{Event, SessionId};
use serde_json::{Value, json};

mod support;
use support::{BIN, run};

/// The binary with a clean environment, pointed at the mock.
fn honeyhive(mock: &MockHoneyHive) -> Command {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("HH_") {
            command.env_remove(name);
        }
    }
    command
        .env("HH_API_URL", mock.base_url())
        .env("HH_API_KEY", "hh-mock-key")
        .stdin(Stdio::null());
    command
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn write(path: &Path, lines: &[Value]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// The one dataset named `name`: its id and its datapoints' ids.
fn dataset(mock: &MockHoneyHive, name: &str) -> (String, Vec<String>) {
    let (code, out, err) = run(honeyhive(mock).args(["datasets", "list"]));
    assert_eq!(code, 0, "{err}");
    let found: Vec<Value> = lines(&out)
        .into_iter()
        .filter(|d| d["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "{out}");
    let ids = found[0]["datapoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    (found[0]["id"].as_str().unwrap().to_owned(), ids)
}

/// `honeyhive datasets push NAME FILE --json`: its exit code, the counts it
/// printed, and its stderr.
fn push(mock: &MockHoneyHive, name: &str, file: &Path) -> (i32, Value, String) {
    let (code, out, err) = run(honeyhive(mock)
        .args(["datasets", "push", name, "--json"])
        .arg(file));
    let counts =
        serde_json::from_str(&out).unwrap_or_else(|_| panic!("counts, not {out:?}: {err}"));
    (code, counts, err)
}

/// Waits (60 s at most) until the dataset `name` holds at least `n`
/// datapoints, and says how many it held then.
fn wait_until_held(mock: &MockHoneyHive, name: &str, n: usize) -> usize {
    let client = mock.client().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let held = runtime.block_on(async {
            client
                .datasets()
                .find(name)
                .await
                .unwrap()
                .first()
                .map_or(0, |d| d.datapoints.len())
        });
        if held >= n || Instant::now() > deadline {
            return held;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn datapoint(i: usize) -> Value {
    json!({"inputs": {"q": format!("{i} + {i}")}, "ground_truth": {"a": i * 2}, "metadata": {"i": i}})
}

#[test]
fn push_then_pull_gives_every_datapoint_back_and_a_rerun_adds_none() {
    let mock = MockHoneyHive::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("qa.jsonl");
    let mut rows: Vec<Value> = (0..25).map(datapoint).collect();
    rows.push(json!({"inputs": {"q": "history"}, "history": [{"role": "user", "content": "hi"}]}));
    write(&file, &rows);

    let (code, counts, err) = push(&mock, "qa", &file);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        counts,
        json!({"added": 26, "already_there": 0, "rejected": 0, "failed": 0})
    );
    assert!(err.contains("made dataset qa"), "{err}");
    assert!(!dir.path().join("qa.jsonl.rejects.jsonl").exists());

    let (id, ids) = dataset(&mock, "qa");
    assert_eq!(ids.len(), 26);
    let (code, out, err) = run(honeyhive(&mock).args(["datasets", "pull", &id]));
    assert_eq!(code, 0, "{err}");
    let mut pulled: Vec<Value> = lines(&out)
        .into_iter()
        .map(|mut l| {
            assert!(l.as_object_mut().unwrap().remove("id").is_some(), "{l}");
            l
        })
        .collect();
    let key = |v: &Value| v.to_string();
    pulled.sort_by_key(key);
    rows.sort_by_key(key);
    assert_eq!(pulled, rows);

    // The same file again: nothing added, every line accounted for.
    let (code, counts, err) = push(&mock, "qa", &file);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        counts,
        json!({"added": 0, "already_there": 26, "rejected": 0, "failed": 0})
    );
    assert_eq!(dataset(&mock, "qa").1.len(), 26);
}

#[test]
fn a_push_cut_short_and_run_again_adds_each_datapoint_once() {
    let mock = MockHoneyHive::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.jsonl");
    let rows: Vec<Value> = (0..400).map(datapoint).collect();
    write(&file, &rows);

    // Killed once the dataset holds some of the file (SIGKILL: no clean-up).
    let mut child = honeyhive(&mock)
        .args(["datasets", "push", "big", "--concurrency", "2"])
        .arg(&file)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let held_at_kill = wait_until_held(&mock, "big", 20);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!((20..400).contains(&held_at_kill), "{held_at_kill}");

    let (code, counts, err) = push(&mock, "big", &file);
    assert_eq!(code, 0, "{err}");
    let (added, there) = (
        counts["added"].as_u64().unwrap(),
        counts["already_there"].as_u64().unwrap(),
    );
    assert_eq!(added + there, 400, "{counts}");
    assert!(
        there >= held_at_kill as u64,
        "{counts} after {held_at_kill}"
    );
    // Exactly one datapoint per line, whatever was in flight at the kill.
    let (id, ids) = dataset(&mock, "big");
    assert_eq!(ids.len(), 400);
    let (code, out, _) = run(honeyhive(&mock).args(["datasets", "pull", &id]));
    assert_eq!(code, 0);
    let mut inputs: Vec<String> = lines(&out)
        .iter()
        .map(|l| l["inputs"]["q"].to_string())
        .collect();
    inputs.sort();
    inputs.dedup();
    assert_eq!(inputs.len(), 400);
}

#[test]
fn a_push_interrupted_by_ctrl_c_exits_130_saying_where_and_a_rerun_adds_the_rest() {
    let mock = MockHoneyHive::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.jsonl");
    let rows: Vec<Value> = (0..3000).map(datapoint).collect();
    write(&file, &rows);
    let child = honeyhive(&mock)
        .args(["datasets", "push", "big", "--concurrency", "2", "--json"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_held(&mock, "big", 20);
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted after line"), "{err}");
    let counts: Value = serde_json::from_slice(&output.stdout).unwrap();
    let accounted: u64 = ["added", "already_there", "rejected", "failed"]
        .iter()
        .map(|k| counts[k].as_u64().unwrap())
        .sum();
    assert!(accounted < 3000, "{counts}");

    let (code, again, err) = push(&mock, "big", &file);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        again["added"].as_u64().unwrap() + again["already_there"].as_u64().unwrap(),
        3000
    );
    assert_eq!(dataset(&mock, "big").1.len(), 3000);
}

#[test]
fn lines_that_are_not_datapoints_go_to_the_rejects_file_with_their_line_and_exit_1() {
    let mock = MockHoneyHive::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mixed.jsonl");
    std::fs::write(
        &file,
        "{\"inputs\": {\"q\": 1}}\nnot json\n\n{\"input\": {\"q\": 2}}\n{\"inputs\": {\"q\": 1}}\n",
    )
    .unwrap();
    let (code, counts, err) = push(&mock, "mixed", &file);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        counts,
        json!({"added": 1, "already_there": 1, "rejected": 2, "failed": 0})
    );
    let rejects_path = dir.path().join("mixed.jsonl.rejects.jsonl");
    let rejects = lines(&std::fs::read_to_string(&rejects_path).unwrap());
    assert_eq!(rejects.len(), 2);
    assert_eq!(
        (rejects[0]["line"].as_u64(), rejects[0]["raw"].as_str()),
        (Some(2), Some("not json"))
    );
    assert_eq!(rejects[1]["line"], 4);
    assert!(
        rejects[1]["reason"]
            .as_str()
            .unwrap()
            .contains("did you mean inputs?"),
        "{}",
        rejects[1]
    );
    assert!(err.contains("mixed.jsonl.rejects.jsonl"), "{err}");

    // Fixed in place, the rejects file is pushed as it is.
    let fixed = std::fs::read_to_string(&rejects_path)
        .unwrap()
        .replace("\"input\"", "\"inputs\"")
        .lines()
        .filter(|l| !l.contains("not json"))
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    std::fs::write(&rejects_path, fixed).unwrap();
    let (code, counts, err) = push(&mock, "mixed", &rejects_path);
    assert_eq!(code, 0, "{err}");
    assert_eq!(counts["added"], 1);
    assert_eq!(dataset(&mock, "mixed").1.len(), 2);
}

#[test]
fn events_search_prints_every_page_of_what_the_filters_select() {
    let mock = MockHoneyHive::start();
    let client = mock.client().unwrap();
    let session = SessionId::new();
    let other = SessionId::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut ids = Vec::new();
    runtime.block_on(async {
        for i in 0..7 {
            let event = Event::tool("search")
                .metadata(json!({"customer": if i % 2 == 0 { "acme" } else { "zeta" }}));
            ids.push(client.log_event(&session, event).await.unwrap().event_id);
        }
        client
            .log_event(&other, Event::model("gpt-4o"))
            .await
            .unwrap();
    });

    let search = |extra: &[&str]| {
        let (code, out, err) = run(honeyhive(&mock).args(["events", "search"]).args(extra));
        assert_eq!(code, 0, "{extra:?}: {err}");
        lines(&out)
    };
    // Pages of 2: four requests, seven events, each once.
    let found = search(&["--session", session.as_str(), "--page-size", "2"]);
    let mut found_ids: Vec<String> = found
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    found_ids.sort();
    ids.sort();
    assert_eq!(found_ids, ids);
    assert_eq!(
        search(&[
            "--session",
            session.as_str(),
            "--filter",
            "metadata.customer=acme"
        ])
        .len(),
        4
    );
    assert_eq!(search(&["--type", "model"]).len(), 1);
    assert_eq!(search(&["--name", "search", "--since", "1h"]).len(), 7);
    assert_eq!(search(&[]).len(), 8);

    let (code, out, err) = run(honeyhive(&mock).args(["events", "get", &ids[0]]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(lines(&out)[0]["event_id"], ids[0].as_str());
}

#[test]
fn bad_input_is_refused_before_sending_and_a_missing_id_is_named() {
    let mock = MockHoneyHive::start();
    for (args, code, said) in [
        (vec!["events", "get", "evt-1"], 2, "invalid event_id"),
        (vec!["events", "search", "--page-size", "0"], 2, "page_size"),
        (
            vec!["events", "search", "--until", "1h"],
            2,
            "--until needs --since",
        ),
        (
            vec!["events", "search", "--filter", "customer"],
            2,
            "FIELD=VALUE",
        ),
        (
            vec!["events", "search", "--type", "llm"],
            2,
            "unknown event type",
        ),
        (
            vec!["datasets", "pull", "no-such-dataset"],
            1,
            "no dataset with id no-such-dataset",
        ),
        (
            vec!["events", "get", "3fa85f64-5717-4562-b3fc-2c963f66afa6"],
            1,
            "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        ),
        (
            vec!["datasets", "push", "x", "/no/such/file.jsonl"],
            2,
            "cannot read /no/such/file.jsonl",
        ),
    ] {
        let (got, _, err) = run(honeyhive(&mock).args(&args));
        assert_eq!(got, code, "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: {err}");
        assert!(!err.contains("hh-mock-key"), "{err}");
    }
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}
