//! What a slow mask costs the application: a 25 ms mask on a Logger whose
//! runtime has 2 workers, and a 5 ms timer on the same runtime that has
//! nothing to do with logging. Prints how late the timer fires while the
//! Logger masks and sends, and how long the events took to go.
//!
//!   cargo bench -p honeyhive --features testing --bench hooks
//!   honeyhive/benches/hooks.sh     # this code next to BASELINE_REV's
//!
//! Uses only the public API, so hooks.sh runs the same file against an
//! earlier commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use honeyhive::testing::MockHoneyHive;
use honeyhive::{Event, FreeForm, Logger, LoggerConfig};
use serde_json::{Map, Value, json};

const MASK: Duration = Duration::from_millis(25);
const TIMER: Duration = Duration::from_millis(5);
const EVENTS: usize = 40;

fn main() {
    let label = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "this code".to_owned());
    let mock = MockHoneyHive::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mut late, took) = runtime.block_on(async {
        let client = mock
            .client_builder()
            .mask(|_field: FreeForm, _value: &mut Map<String, Value>| std::thread::sleep(MASK))
            .build()
            .unwrap();
        let logger = Logger::new(&client, LoggerConfig::default()).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let timer = tokio::spawn(async move {
            let mut late = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                let asked = Instant::now();
                tokio::time::sleep(TIMER).await;
                late.push(asked.elapsed().saturating_sub(TIMER));
            }
            late
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        for i in 0..EVENTS {
            let event = Event::model("gpt-4o")
                .inputs(json!({"prompt": format!("question {i}")}))
                .outputs(json!({"text": "answer"}));
            logger.log(format!("session-{}", i % 4), event).unwrap();
        }
        let report = logger.flush(Duration::from_secs(120)).await;
        let took = started.elapsed();
        assert!(report.complete, "every event settled");
        assert_eq!(report.stats.sent, EVENTS as u64);
        stop.store(true, Ordering::Relaxed);
        (timer.await.unwrap(), took)
    });
    late.sort();
    let at = |q: f64| late[((late.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    println!(
        "{label}: a {} ms mask, {EVENTS} events, 2 workers: the {} ms timer was late by p50 {:.1} ms, \
         p99 {:.1} ms, max {:.1} ms ({} ticks); the events took {:.2} s",
        MASK.as_millis(),
        TIMER.as_millis(),
        at(0.5),
        at(0.99),
        at(1.0),
        late.len(),
        took.as_secs_f64()
    );
}
