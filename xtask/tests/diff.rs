//! `cargo xtask diff`: every rule in `fixtures/diff/cases.yaml` is checked
//! against the binary, plus the output formats, exit codes, git revisions
//! and 3.1 input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/diff")
        .join(name)
}

fn yaml(path: &Path) -> Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("xtask runs")
}

/// Sets `value` at a JSON pointer, creating objects on the way; an index one
/// past the end of an array appends.
fn set(doc: &mut Value, pointer: &str, value: Value) {
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let key = last.replace("~1", "/").replace("~0", "~");
    if doc.pointer(parent).is_none() {
        set(doc, parent, Value::Object(Default::default()));
    }
    match doc.pointer_mut(parent).unwrap() {
        Value::Array(items) => {
            let index: usize = key.parse().unwrap();
            if index == items.len() {
                items.push(value);
            } else {
                items[index] = value;
            }
        }
        Value::Object(map) => {
            map.insert(key, value);
        }
        other => panic!("cannot set {pointer} in {other}"),
    }
}

fn remove(doc: &mut Value, pointer: &str) {
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let key = last.replace("~1", "/").replace("~0", "~");
    match doc.pointer_mut(parent).unwrap() {
        Value::Array(items) => {
            items.remove(key.parse::<usize>().unwrap());
        }
        Value::Object(map) => {
            map.remove(&key)
                .unwrap_or_else(|| panic!("nothing at {pointer}"));
        }
        other => panic!("cannot remove {pointer} from {other}"),
    }
}

fn patched(base: &Value, sets: Option<&Value>, removes: Option<&Value>) -> Value {
    let mut doc = base.clone();
    for (pointer, value) in sets.and_then(Value::as_object).into_iter().flatten() {
        set(&mut doc, pointer, value.clone());
    }
    for pointer in removes.and_then(Value::as_array).into_iter().flatten() {
        remove(&mut doc, pointer.as_str().unwrap());
    }
    doc
}

fn json_diff(old: &Path, new: &Path) -> (Value, Option<i32>) {
    let output = xtask(&[
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    (report, output.status.code())
}

#[test]
fn every_rule_is_classified_as_the_fixture_says() {
    let base = yaml(&fixture("base.yaml"));
    let cases = yaml(&fixture("cases.yaml"));
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let cases = cases.as_array().unwrap();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let old = patched(&base, case.get("old_set"), None);
        let new = patched(&base, case.get("set"), case.get("remove"));
        let (old_path, new_path) = (dir.path().join("old.json"), dir.path().join("new.json"));
        std::fs::write(&old_path, old.to_string()).unwrap();
        std::fs::write(&new_path, new.to_string()).unwrap();

        let (report, code) = json_diff(&old_path, &new_path);
        let expect = case["expect"].as_str().unwrap();
        let contains = case["contains"].as_str().unwrap_or("");
        let changes = report["changes"].as_array().unwrap();
        // `expect: none`: the two documents say the same, so no change at all.
        let matching = (expect == "none" && changes.is_empty())
            || changes.iter().any(|c| {
                c["severity"] == expect
                    && format!(
                        "{} {}",
                        c["location"].as_str().unwrap(),
                        c["message"].as_str().unwrap()
                    )
                    .contains(contains)
            });
        let breaking = report["breaking"].as_u64().unwrap();
        let exact = match expect {
            "breaking" => breaking > 0 && code == Some(1),
            _ => breaking == 0 && code == Some(0),
        };
        if !matching || !exact {
            failures.push(format!(
                "{name}: expected {expect} with {contains:?}, exit {code:?}, got {report:#}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rules failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 40, "the fixture covers every rule");
}

#[test]
fn a_31_document_and_its_30_transcription_do_not_differ() {
    let (report, code) = json_diff(&fixture("base.yaml"), &fixture("base-3.1.yaml"));
    assert_eq!(report["changes"], serde_json::json!([]), "{report:#}");
    assert_eq!(code, Some(0));
}

#[test]
fn text_output_names_each_change_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let base = yaml(&fixture("base.yaml"));
    let mut new = base.clone();
    remove(&mut new, "/components/schemas/Answer/properties/detail");
    set(
        &mut new,
        "/components/schemas/Item/properties/owner",
        serde_json::json!({"type": "string"}),
    );
    let new_path = dir.path().join("new.yaml");
    std::fs::write(&new_path, serde_yaml_ng::to_string(&new).unwrap()).unwrap();

    let output = xtask(&[
        "diff",
        fixture("base.yaml").to_str().unwrap(),
        new_path.to_str().unwrap(),
    ]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "breaking exits 1");
    assert!(
        text.contains(
            "BREAKING    POST /items/{id} response 200 .detail (postItem): property removed from the response"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "compatible  POST /items/{id} request body .owner (postItem): new optional property"
        ),
        "{text}"
    );
    assert!(
        text.contains("1 breaking, 1 compatible change(s)"),
        "{text}"
    );

    let allowed = xtask(&[
        "diff",
        fixture("base.yaml").to_str().unwrap(),
        new_path.to_str().unwrap(),
        "--allow-breaking",
    ]);
    assert_eq!(allowed.status.code(), Some(0));
}

#[test]
fn sides_can_be_git_revisions() {
    // The committed spec against the working tree's: the same file in CI.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "diff",
            "HEAD:openapi.yaml",
            root.join("openapi.yaml").to_str().unwrap(),
            "--format",
            "json",
        ])
        .current_dir(root)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["breaking"], 0, "{report:#}");

    let bad = xtask(&["diff", "no-such-rev:openapi.yaml", "openapi.yaml"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("git show no-such-rev:openapi.yaml"));
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly_with_the_diff_exit_code() {
    // `cargo xtask diff A B | head -1`: the pipe closes before (or while)
    // xtask writes. It must not panic, and its exit code must still say
    // whether the diff is breaking.
    let base = fixture("base.yaml");
    let removed = tempfile::NamedTempFile::new().unwrap();
    let mut doc = yaml(&base);
    doc["paths"].as_object_mut().unwrap().clear();
    std::fs::write(removed.path(), serde_json::to_string(&doc).unwrap()).unwrap();
    for (new, code) in [(base.as_path(), 0), (removed.path(), 1)] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["diff", base.to_str().unwrap(), new.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before xtask writes
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(output.status.code(), Some(code), "{stderr}");
    }
}
