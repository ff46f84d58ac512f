//! How long a Logger lives and how long its exits take: a Logger whose
//! runtime ended, and `flush` and `shutdown` held to their budgets whatever
//! the dead-letter sink does.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use honeyhive::{Client, DeadLetter, Event, LogError, Logger, LoggerConfig, Outcome};
use support::fault_server::{Fault, FaultServer};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A Logger made on a runtime that then ends, with three events in flight
/// to a server that never answers; the letters its sink took.
fn orphaned_logger() -> (Logger, Arc<Mutex<Vec<DeadLetter>>>) {
    let made_on = runtime();
    let taken: Arc<Mutex<Vec<DeadLetter>>> = Arc::default();
    let sink = Arc::clone(&taken);
    let logger = made_on.block_on(async {
        let server = FaultServer::always(Fault::Slow(Duration::from_secs(60))).await;
        let client = Client::builder()
            .api_key("hh-test")
            .base_url(server.base_url())
            .build()
            .unwrap();
        let logger = Logger::new(
            &client,
            LoggerConfig::default().outcomes(move |outcome: Outcome<'_>| {
                if let Outcome::DeadLetter(letter) = outcome {
                    sink.lock().unwrap().push(letter.clone());
                }
            }),
        )
        .unwrap();
        for i in 0..3 {
            logger
                .log("s", Event::tool("t").event_id(format!("e{i}")))
                .unwrap();
        }
        // In flight (the server holds them) when the runtime ends.
        while logger.stats().pending < 3 || server.requests() < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        std::mem::forget(server); // its task ends with the runtime
        logger
    });
    drop(made_on); // a #[tokio::test] returning, a worker pool shut down
    (logger, taken)
}

#[test]
fn a_logger_whose_runtime_ended_refuses_at_once_and_hands_everything_back() {
    let (logger, taken) = orphaned_logger();
    // From a plain thread: refused, with the event and the reason.
    match logger.log("s", Event::tool("late").event_id("late")) {
        Err(LogError::RuntimeGone(event)) => {
            assert_eq!(event.as_api().event_id.as_deref(), Some("late"));
        }
        other => panic!("expected RuntimeGone, got {other:?}"),
    }
    let refused = LogError::RuntimeGone(Box::new(Event::tool("t"))).to_string();
    assert!(refused.contains("runtime"), "{refused}");
    // From another runtime: no limit asked, an answer at once.
    let other = runtime();
    let asked = Instant::now();
    let report = other.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), logger.flush(Duration::MAX))
            .await
            .expect("flush(Duration::MAX) returned")
    });
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    assert!(report.complete, "{report:?}");
    let stats = report.stats;
    assert_eq!(
        (stats.failed, stats.pending, stats.dropped),
        (3, 0, 1),
        "{stats:?}"
    );
    assert_eq!(report.dead_letters.len(), 3);
    for letter in &report.dead_letters {
        assert!(letter.reason.contains("runtime"), "{}", letter.reason);
    }
    assert_eq!(taken.lock().unwrap().len(), 3, "the sink has them too");
    let asked = Instant::now();
    let last = other.block_on(logger.shutdown(Duration::from_secs(30)));
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    assert!(last.complete && last.dead_letters.is_empty());
}

/// Four events the API refuses (400) and a sink that takes `per_letter`
/// for each letter; gives the logger, its runtime and the letters taken.
fn slow_sink(
    per_letter: Duration,
) -> (
    Logger,
    tokio::runtime::Runtime,
    Arc<AtomicUsize>,
    FaultServer,
) {
    let rt = runtime();
    let taken = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&taken);
    let (logger, server) = rt.block_on(async {
        let server = FaultServer::always(Fault::Status(400)).await;
        let client = Client::builder()
            .api_key("hh-test")
            .base_url(server.base_url())
            .build()
            .unwrap();
        let logger = Logger::new(
            &client,
            LoggerConfig::default().outcomes(move |outcome: Outcome<'_>| {
                if let Outcome::DeadLetter(_) = outcome {
                    std::thread::sleep(per_letter);
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }),
        )
        .unwrap();
        for i in 0..4 {
            logger
                .log("s", Event::tool("t").event_id(format!("e{i}")))
                .unwrap();
        }
        (logger, server)
    });
    (logger, rt, taken, server)
}

#[test]
fn shutdown_returns_within_its_budget_whatever_the_sink_and_keeps_what_it_did_not_take() {
    let (logger, rt, taken, _server) = slow_sink(Duration::from_millis(500));
    let asked = Instant::now();
    let report = rt.block_on(logger.shutdown(Duration::from_secs(1)));
    let took = asked.elapsed();
    let budget = Duration::from_secs(1) + Logger::SINK_GRACE;
    // A small margin for the machine: scheduling, not the sink.
    assert!(took < budget + Duration::from_millis(250), "took {took:?}");
    assert!(!report.complete, "the sink did not take every letter");
    assert_eq!(
        report.dead_letters.len(),
        4,
        "every letter is in the report"
    );
    let not_in_sink = report.dead_letters_not_in_sink as usize;
    assert!(not_in_sink >= 1, "{report:?}");
    // The sink never gets those: it ends after the letter it was on.
    std::thread::sleep(Duration::from_millis(1_200));
    assert_eq!(taken.load(Ordering::SeqCst), 4 - not_in_sink);
}

#[test]
fn flush_returns_within_its_timeout_whatever_the_sink() {
    let (logger, rt, _taken, _server) = slow_sink(Duration::from_millis(500));
    let asked = Instant::now();
    let report = rt.block_on(logger.flush(Duration::from_millis(300)));
    let took = asked.elapsed();
    assert!(took < Duration::from_millis(300 + 250), "took {took:?}");
    assert!(!report.complete);
    // Later, with time enough, the sink has taken them all.
    let report = rt.block_on(logger.flush(Duration::from_secs(10)));
    assert!(report.complete, "{report:?}");
    rt.block_on(logger.shutdown(Duration::from_secs(1)));
}

#[test]
fn the_dead_letter_sink_runs_on_the_loggers_own_thread_whoever_hands_letters_back() {
    let rt = runtime();
    let threads: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let seen = Arc::clone(&threads);
    let sink = move |outcome: Outcome<'_>| {
        if let Outcome::DeadLetter(_) = outcome {
            let name = std::thread::current().name().map(str::to_owned);
            seen.lock().unwrap().push(name);
        }
    };
    let (logger, _server) = rt.block_on(async {
        let server = FaultServer::always(Fault::Status(422)).await;
        let client = Client::builder()
            .api_key("hh-test")
            .base_url(server.base_url())
            .build()
            .unwrap();
        let logger = Logger::new(&client, LoggerConfig::default().outcomes(sink)).unwrap();
        // Refused by the API: handed back by a delivery.
        logger.log("s", Event::tool("refused")).unwrap();
        let report = logger.flush(Duration::from_secs(10)).await;
        assert!(report.complete);
        (logger, server)
    });
    // Handed back by a drop, on this thread, with events still queued.
    let other = runtime();
    let dropped = other.block_on(async {
        let client = Client::builder()
            .api_key("hh-test")
            .base_url(format!("http://127.0.0.1:{}", support::closed_port()))
            .build()
            .unwrap();
        let seen = Arc::clone(&threads);
        let logger = Logger::new(
            &client,
            LoggerConfig::default()
                .max_in_flight(1)
                .outcomes(move |outcome: Outcome<'_>| {
                    if let Outcome::DeadLetter(_) = outcome {
                        let name = std::thread::current().name().map(str::to_owned);
                        seen.lock().unwrap().push(name);
                    }
                }),
        )
        .unwrap();
        for _ in 0..3 {
            logger.log("s", Event::tool("dropped")).unwrap();
        }
        logger
    });
    drop(dropped);
    drop(logger);
    let names = threads.lock().unwrap().clone();
    assert!(names.len() >= 4, "{names:?}");
    for name in &names {
        assert_eq!(name.as_deref(), Some("honeyhive-dead-letters"), "{names:?}");
    }
}
