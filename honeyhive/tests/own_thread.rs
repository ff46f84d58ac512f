//! A Logger on its own thread: programs without a tokio runtime log,
//! flush and shut down through it, the `tracing` layer works in them, and
//! the thread ends with the last handle.

mod support;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use honeyhive::testing::MockHoneyHive;
use honeyhive::{Event, Logger, LoggerConfig};
use support::fault_server::{Fault, FaultServer};

/// Held by each test that starts an own-thread Logger, so that counting
/// the process's logger threads sees only its own.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Threads of this process named `name` (Linux: `/proc/self/task/*/comm`).
#[cfg(target_os = "linux")]
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

#[test]
fn a_program_without_a_runtime_logs_from_four_threads_and_every_event_arrives() {
    let _serial = one_at_a_time();
    assert!(tokio::runtime::Handle::try_current().is_err());
    let mock = MockHoneyHive::start();
    let logger = Logger::on_own_thread(&mock.client().unwrap(), LoggerConfig::default()).unwrap();
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let logger = &logger;
            scope.spawn(move || {
                for i in 0..25 {
                    logger
                        .log(
                            format!("s{thread}"),
                            Event::tool("t").event_id(format!("e-{thread}-{i}")),
                        )
                        .unwrap();
                }
            });
        }
    });
    let flushed = logger.flush_blocking(Duration::from_secs(10));
    assert!(flushed.complete);
    assert_eq!(flushed.stats.sent, 100);
    let report = logger.shutdown_blocking(Duration::from_secs(10));
    assert!(report.complete);
    assert_eq!(report.stats.sent, 100);
    assert_eq!(mock.events().len(), 100);
    assert!(mock.violations().is_empty());
    assert!(matches!(
        logger.log("s", Event::tool("late")),
        Err(honeyhive::LogError::ShutDown(_))
    ));
}

#[cfg(feature = "tracing")]
#[test]
fn the_tracing_layer_sends_span_trees_from_a_synchronous_program() {
    let _serial = one_at_a_time();
    use honeyhive::tracing::HoneyHiveLayer;
    use tracing_subscriber::layer::SubscriberExt;

    let mock = MockHoneyHive::start();
    let logger = Logger::on_own_thread(&mock.client().unwrap(), LoggerConfig::default()).unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(HoneyHiveLayer::new(logger.clone()).session_id("sync-app"));
    tracing::subscriber::with_default(subscriber, || {
        let root = tracing::info_span!("handle_request", honeyhive.event_type = "chain");
        let _entered = root.enter();
        tracing::info_span!("llm_call", honeyhive.event_type = "model").in_scope(|| {});
    });
    let report = logger.shutdown_blocking(Duration::from_secs(10));
    assert!(report.complete);
    let events = mock.events();
    assert_eq!(events.len(), 1, "one tree, children nested");
    assert_eq!(events[0].session_id, "sync-app");
    assert_eq!(events[0].event["event_name"], "handle_request");
    assert_eq!(events[0].event["children"][0]["event_name"], "llm_call");
    assert_eq!(events[0].event["children"][0]["event_type"], "model");
}

#[cfg(target_os = "linux")]
#[test]
fn the_thread_ends_when_the_last_handle_is_dropped_and_hands_back_what_was_queued() {
    let _serial = one_at_a_time();
    // Nothing listens there: the event cannot be sent before the drop.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = honeyhive::Client::builder()
        .api_key("hh-own-thread-test")
        .base_url(format!("http://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let before = threads_named("honeyhive-log");
    let letters = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&letters);
    let logger = Logger::on_own_thread(
        &client,
        LoggerConfig::default().outcomes(move |outcome: honeyhive::Outcome<'_>| {
            if let honeyhive::Outcome::DeadLetter(_) = outcome {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }),
    )
    .unwrap();
    // At least: a thread it starts carries its name until it names itself.
    assert!(threads_named("honeyhive-log") > before);
    let clone = logger.clone();
    drop(logger);
    assert!(threads_named("honeyhive-log") > before, "a clone is left");
    clone.log("s", Event::tool("t")).unwrap();
    drop(clone);
    // Drop joins the thread: it is gone when drop returns, and the event
    // it could not send was handed back, not lost.
    assert_eq!(threads_named("honeyhive-log"), before);
    assert_eq!(letters.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn an_own_thread_logger_may_be_flushed_blocking_from_async_code() {
    let _serial = one_at_a_time();
    let mock = MockHoneyHive::start();
    let logger = Logger::on_own_thread(&mock.client().unwrap(), LoggerConfig::default()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(async {
        logger.log("s", Event::tool("t")).unwrap();
        logger.shutdown_blocking(Duration::from_secs(10))
    });
    assert!(report.complete);
    assert_eq!(mock.events().len(), 1);
}

#[test]
#[should_panic(expected = "was called from async code")]
fn the_blocking_calls_refuse_async_code_instead_of_blocking_its_thread() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mock = MockHoneyHive::start_async().await;
        let logger = Logger::new(&mock.client().unwrap(), LoggerConfig::default()).unwrap();
        let _never = logger.shutdown_blocking(Duration::from_secs(1));
    });
}

#[test]
fn the_blocking_calls_report_at_once_when_the_runtime_bound_logger_lost_its_runtime() {
    let mock = MockHoneyHive::start();
    let made_on = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let logger = made_on
        .block_on(async { Logger::new(&mock.client().unwrap(), LoggerConfig::default()) })
        .unwrap();
    drop(made_on);
    let started = Instant::now();
    let report = logger.shutdown_blocking(Duration::from_secs(30));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "returns, does not wait 30 s"
    );
    assert_eq!(report.stats.sent, 0);
}

/// A loopback server answering every request after `delay`, on a runtime
/// of its own (the tests below have none), kept alive with it.
fn slow_server(delay: Duration) -> (tokio::runtime::Runtime, FaultServer) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(FaultServer::always(Fault::Slow(delay)));
    (runtime, server)
}

fn client_of(server: &FaultServer) -> honeyhive::Client {
    honeyhive::Client::builder()
        .api_key("hh-own-thread-test")
        .base_url(server.base_url())
        .build()
        .unwrap()
}

#[test]
fn a_sync_main_that_logs_and_returns_delivers_through_the_last_drop() {
    let _serial = one_at_a_time();
    let (_runtime, server) = slow_server(Duration::from_millis(150));
    let logger = Logger::on_own_thread(&client_of(&server), LoggerConfig::default()).unwrap();
    for i in 0..20 {
        logger.log("s", Event::tool(format!("t{i}"))).unwrap();
    }
    let started = Instant::now();
    drop(logger); // what the end of `main` does
    assert_eq!(server.recorded().len(), 20, "every event was sent");
    assert!(
        started.elapsed() < Logger::DROP_BUDGET + Logger::SINK_GRACE + Duration::from_secs(2),
        "bounded by the drop's budget: {:?}",
        started.elapsed()
    );
}

#[test]
fn a_static_logger_sends_at_exit_through_its_guard() {
    static LOGGER: OnceLock<Logger> = OnceLock::new();
    let _serial = one_at_a_time();
    let (_runtime, server) = slow_server(Duration::from_millis(150));
    LOGGER.get_or_init(|| {
        Logger::on_own_thread(&client_of(&server), LoggerConfig::default()).unwrap()
    });
    {
        let _guard = LOGGER
            .get()
            .unwrap()
            .shutdown_guard(Duration::from_secs(10));
        for i in 0..20 {
            LOGGER
                .get()
                .unwrap()
                .log("s", Event::tool(format!("t{i}")))
                .unwrap();
        }
    } // the end of main
    assert_eq!(server.recorded().len(), 20);
    assert!(matches!(
        LOGGER.get().unwrap().log("s", Event::tool("late")),
        Err(honeyhive::LogError::ShutDown(_))
    ));
}

#[test]
fn the_blocking_calls_work_on_the_blocking_pool_of_either_runtime() {
    for multi_thread in [false, true] {
        let runtime = if multi_thread {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        .unwrap();
        let (flushed, shut, events) = runtime.block_on(async {
            let mock = MockHoneyHive::start_async().await;
            let logger = Logger::new(&mock.client().unwrap(), LoggerConfig::default()).unwrap();
            logger.log("s", Event::tool("t")).unwrap();
            let (flushed, shut) = tokio::task::spawn_blocking(move || {
                let flushed = logger.flush_blocking(Duration::from_secs(10));
                logger.log("s", Event::tool("u")).unwrap();
                (flushed, logger.shutdown_blocking(Duration::from_secs(10)))
            })
            .await
            .expect("no panic on the blocking pool");
            (flushed, shut, mock.events().len())
        });
        assert!(
            flushed.complete && shut.complete,
            "multi-thread: {multi_thread}"
        );
        assert_eq!(shut.stats.sent, 2);
        assert_eq!(events, 2);
    }
}

#[test]
fn the_blocking_calls_work_on_a_multi_thread_runtimes_worker() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(async {
        let mock = MockHoneyHive::start_async().await;
        let logger = Logger::new(&mock.client().unwrap(), LoggerConfig::default()).unwrap();
        tokio::spawn(async move {
            logger.log("s", Event::tool("t")).unwrap();
            logger.shutdown_blocking(Duration::from_secs(10))
        })
        .await
        .unwrap()
    });
    assert!(report.complete);
    assert_eq!(report.stats.sent, 1);
}

#[cfg(target_os = "linux")]
#[test]
fn the_drop_warning_of_an_own_thread_logger_names_shutdown_blocking() {
    use std::sync::{Arc, Mutex};
    let _serial = one_at_a_time();
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // Nothing listens there: nothing can be sent within the drop's budget.
    let port = support::closed_port();
    let client = honeyhive::Client::builder()
        .api_key("hh-own-thread-test")
        .base_url(format!("http://127.0.0.1:{port}"))
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        let logger = Logger::on_own_thread(&client, LoggerConfig::default()).unwrap();
        logger.log("s", Event::tool("t")).unwrap();
        drop(logger);
    });
    let said = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    assert!(said.contains("1 events were not delivered"), "{said}");
    assert!(said.contains("logger.shutdown_blocking(timeout)"), "{said}");
}

#[test]
fn an_own_thread_logger_dropped_inside_a_current_thread_runtime_still_sends() {
    let _serial = one_at_a_time();
    let mock = MockHoneyHive::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let logger =
            Logger::on_own_thread(&mock.client().unwrap(), LoggerConfig::default()).unwrap();
        logger.log("s", Event::tool("t")).unwrap();
        drop(logger); // its runtime is its own: waiting here stops nothing
    });
    assert_eq!(mock.events().len(), 1);
}
