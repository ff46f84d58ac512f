//! The examples say what they did: their words checked against their own
//! output. `cargo test` builds the examples before it runs the tests.

use std::path::PathBuf;
use std::process::Command;

/// An example's binary, built by `cargo test` beside the test binaries.
fn example(name: &str) -> PathBuf {
    let deps = std::env::current_exe().expect("the test binary's path");
    let path = deps
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run the whole suite (`cargo test`), which builds the examples, \
         or `cargo build --example {name}` first",
        path.display()
    );
    path
}

#[test]
fn the_quickstart_counts_the_events_it_sent_children_included() {
    let output = Command::new(example("quickstart"))
        .env_remove("HH_API_KEY")
        .output()
        .expect("the quickstart runs");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    // Every event the mock received, nested or not, has an event_type.
    let received = stdout.matches("\"event_type\":").count();
    assert_eq!(received, 4, "{stdout}");
    assert!(
        stdout.contains("accepted 3 requests carrying 4 events"),
        "{stdout}"
    );
    assert!(stdout.contains("No request broke the spec."), "{stdout}");
}

#[test]
fn the_experiment_example_prints_its_table_and_keeps_to_the_spec() {
    let output = Command::new(example("experiment"))
        .env_remove("HH_API_URL")
        .env("EXP_TASK_MS", "1")
        .output()
        .expect("the experiment example runs");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains(" completed\n12 datapoints: 11 passed, 1 failed, 0 errored"),
        "{stdout}"
    );
    assert!(
        stdout.contains("exact                         12     0.9167"),
        "{stdout}"
    );
    assert!(stdout.contains("No request broke the spec."), "{stdout}");
    assert!(
        stdout.trim_end().ends_with("record=1 passed=11"),
        "{stdout}"
    );
}
