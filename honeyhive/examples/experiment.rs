//! Runs an experiment: a task over local datapoints, two evaluators, the
//! run recorded, then its summary table.
//!
//! ```text
//! cargo run --example experiment
//! ```
//!
//! With `HH_API_URL` set, it records there (the key from `HH_API_KEY`, or
//! a placeholder for a local server); without it, on `MockHoneyHive` on
//! 127.0.0.1, which checks every request against openapi.yaml. No key, no
//! network. The load is set by the environment, for benchmarks
//! (`honeyhive/benches/experiment.sh`):
//!
//! | variable | default | what |
//! |---|---|---|
//! | `EXP_DATAPOINTS` | 12 | local datapoints |
//! | `EXP_TASK_MS` | 50 | how long the task waits |
//! | `EXP_CONCURRENCY` | 10 | datapoints at once |
//! | `EXP_RECORD` | 1 | 0: run without recording anything |
//!
//! Its last line is machine-readable: `wall_ms=… datapoints=… concurrency=…
//! task_ms=… record=… passed=…`.

use std::time::{Duration, Instant};

use honeyhive::Client;
use honeyhive::experiment::{Datapoint, Experiment};
use honeyhive::testing::MockHoneyHive;
use serde_json::{Value, json};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let datapoints = setting("EXP_DATAPOINTS", 12);
    let task_ms = setting("EXP_TASK_MS", 50);
    let concurrency = usize::try_from(setting("EXP_CONCURRENCY", 10))?;
    let record = setting("EXP_RECORD", 1) != 0;

    let mock;
    let client = match std::env::var("HH_API_URL") {
        Ok(url) => {
            mock = None;
            let key = std::env::var("HH_API_KEY").unwrap_or_else(|_| "local-placeholder".into());
            Client::builder().api_key(key).base_url(url).build()?
        }
        Err(_) => {
            let started = MockHoneyHive::start_async().await;
            eprintln!(
                "recording on a local mock of the HoneyHive API at {}",
                started.base_url()
            );
            let client = started.client()?;
            mock = Some(started);
            client
        }
    };

    let rows = (0..datapoints).map(|i| {
        Datapoint::new(json!({"question": format!("What is {i} + {i}?")}))
            .ground_truth(json!({"answer": i * 2}))
    });
    let clock = Instant::now();
    let report = Experiment::new("arithmetic")
        .datapoints(rows)
        .task(move |row: Datapoint| async move {
            // A model call would go here.
            tokio::time::sleep(Duration::from_millis(task_ms)).await;
            let question = row.inputs["question"].as_str().unwrap_or_default();
            let n: u64 = question
                .split_whitespace()
                .nth(2)
                .and_then(|n| n.parse().ok())
                .ok_or("no number in the question")?;
            // Wrong on every seventh, so the table has something to show.
            let answer = if n % 7 == 6 { n } else { n * 2 };
            Ok::<_, String>(json!({"answer": answer}))
        })
        .evaluator("exact", |outputs: &Value, row: &Datapoint| {
            row.ground_truth.as_ref() == Some(outputs)
        })
        .evaluator("distance", |outputs: &Value, row: &Datapoint| {
            let truth = row.ground_truth.as_ref().and_then(|t| t["answer"].as_f64());
            match (outputs["answer"].as_f64(), truth) {
                (Some(got), Some(want)) => Ok((got - want).abs()),
                _ => Err("no answer to measure"),
            }
        })
        .concurrency(concurrency)
        .record(record)
        .run(&client)
        .await?;
    let wall = clock.elapsed();

    println!("{report}");
    if let Some(mock) = &mock {
        let violations = mock.violations();
        if violations.is_empty() {
            println!("No request broke the spec.");
        } else {
            println!(
                "{} requests broke the spec: {violations:?}",
                violations.len()
            );
        }
    }
    println!(
        "wall_ms={} datapoints={datapoints} concurrency={concurrency} task_ms={task_ms} record={} passed={}",
        wall.as_millis(),
        u8::from(record),
        report.passed()
    );
    Ok(())
}
