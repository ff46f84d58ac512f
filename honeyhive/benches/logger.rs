//! Benchmarks of the background logger. A bench binary rather than criterion,
//! because the targets are percentiles of single calls and end-to-end rates
//! against a sink in another process. Results and the commands that produce
//! them are in BENCHMARKS.md; `benches/e2e.sh` runs the end-to-end pairs.
//!
//! ```text
//! cargo bench -p honeyhive --bench logger -- enqueue
//! cargo bench -p honeyhive --bench logger -- memory
//! cargo bench -p honeyhive --bench logger -- sink --port 18080 [--delay-ms 50] [--rate 2000 [--limiter fixed|sliding|bucket|bucket-1s]] [--h2c]
//! cargo bench -p honeyhive --bench logger -- e2e --url http://127.0.0.1:18080 --events 200000 --in-flight 8 [--batch 100]
//! cargo bench -p honeyhive --bench logger -- e2e --url http://127.0.0.1:18080 --events 20000 --in-flight 0 --shutdown-secs 60 [--h2c] [--cold]
//! cargo bench -p honeyhive --bench logger -- loop --url http://127.0.0.1:18080 --events 200000 --in-flight 8 [--batch 100]
//! cargo bench -p honeyhive --bench logger -- floor --url http://127.0.0.1:18080 --client reqwest|hyper
//! cargo bench -p honeyhive --bench logger -- body > body.json
//! ```
//!
//! Everything talks to 127.0.0.1 only, runs a bounded number of events and
//! stops by itself (the sink stops after `--seconds`, 600 by default).

#[path = "support/event.rs"]
mod event;
#[path = "../tests/support/h2c.rs"]
mod h2c;
use event::sample_event;
#[path = "../tests/support/http.rs"]
mod http;
#[path = "../tests/support/limiters.rs"]
mod limiters;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use honeyhive::{Client, Event, Logger, LoggerConfig, RetryPolicy, SessionId};
use tokio::net::TcpListener;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let flag = |name: &str| -> Option<String> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let number = |name: &str, default: u64| -> u64 {
        flag(name).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
    };
    match args.first().map(String::as_str) {
        Some("enqueue") => enqueue(
            number("--calls", 200_000) as usize,
            args.iter().any(|a| a == "--cold"),
        ),
        Some("memory") => memory(
            number("--events", 1_000_000) as usize,
            number("--cap-mb", 100) as usize,
        ),
        Some("sink") => sink(
            number("--port", 18080) as u16,
            Duration::from_millis(number("--delay-ms", 0)),
            number("--rate", 0),
            &flag("--limiter").unwrap_or_else(|| "bucket-1s".to_owned()),
            Duration::from_secs(number("--seconds", 600)),
        ),
        Some("e2e") => e2e(
            &flag("--url").expect("--url http://127.0.0.1:PORT"),
            number("--events", 200_000) as usize,
            number("--in-flight", 8) as usize,
            number("--threads", 2) as usize,
            number("--queue", 0) as usize,
            number("--shutdown-secs", 0),
            !args.iter().any(|a| a == "--cold"),
            number("--batch", 0) as usize,
        ),
        Some("loop") => match number("--batch", 0) as usize {
            0 => hand_loop(
                &flag("--url").expect("--url http://127.0.0.1:PORT"),
                number("--events", 200_000) as usize,
                number("--in-flight", 8) as usize,
                number("--threads", 2) as usize,
            ),
            batch => hand_batch_loop(
                &flag("--url").expect("--url http://127.0.0.1:PORT"),
                number("--events", 200_000) as usize,
                number("--in-flight", 8) as usize,
                number("--threads", 2) as usize,
                batch,
            ),
        },
        Some("floor") => floor(
            &flag("--url").expect("--url http://127.0.0.1:PORT"),
            &flag("--client").unwrap_or_else(|| "reqwest".to_owned()),
            number("--events", 200_000) as usize,
            number("--in-flight", 8) as usize,
        ),
        Some("body") => print!("{}", String::from_utf8_lossy(&sample_body())),
        _ => {
            eprintln!(
                "usage: logger (enqueue | memory | sink | e2e | loop | floor | body) [options]; see the file's docs"
            );
            std::process::exit(2);
        }
    }
}

fn client(url: &str) -> Client {
    let builder = Client::builder()
        .api_key("bench-key")
        .base_url(url)
        .retry_policy(RetryPolicy::default().max_attempts(3));
    // `e2e --h2c`: cleartext HTTP/2 to a `sink --h2c`.
    let h2c = std::env::args().any(|a| a == "--h2c");
    let builder = if h2c {
        builder.http2_prior_knowledge()
    } else {
        builder
    };
    builder.build().expect("loopback URL")
}

/// The exact bytes the client sends for a sample event, for the reference
/// load generator.
fn sample_body() -> Vec<u8> {
    let wire = sample_event(0)
        .event_id("0f8e2a8c-2f57-4d8e-9a39-0c6a4f1b2d11")
        .into_api()
        .expect("valid");
    serde_json::to_vec(&wire).expect("serializable")
}

/// A multi-thread runtime with `threads` workers, or the current-thread
/// runtime for 0.
fn runtime_for(threads: usize) -> tokio::runtime::Runtime {
    if threads == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    } else {
        runtime(threads)
    }
}

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime")
}

/// What the sink has answered, and over how many connections.
#[derive(Default)]
struct SinkCounts {
    ok: AtomicU64,
    limited: AtomicU64,
    connections: AtomicU64,
}

/// A minimal HTTP sink: answers every request with the documented 200 after
/// `delay`, on one thread; when `limiter` refuses a request (`None`: no
/// limit) it answers 429 with `Retry-After: 1` instead.
async fn serve_sink(
    listener: TcpListener,
    delay: Duration,
    limiter: Option<limiters::Limiter>,
    counts: Arc<SinkCounts>,
) {
    let limiter = Arc::new(std::sync::Mutex::new(limiter));
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let _ = stream.set_nodelay(true);
        counts.connections.fetch_add(1, Ordering::Relaxed);
        let (counts, limiter) = (Arc::clone(&counts), Arc::clone(&limiter));
        tokio::spawn(async move {
            let mut buffer = Vec::with_capacity(4096);
            while let Some(request) = http::read_request(&mut stream, &mut buffer).await {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let admitted = limiter
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_mut()
                    .is_none_or(|limiter| limiter.admit(Instant::now()));
                let written = if admitted {
                    counts.ok.fetch_add(1, Ordering::Relaxed);
                    // A batch (createEventBatch) gets its documented answer.
                    let body = if request.starts_with(b"{\"events\":") {
                        r#"{"event_ids":[],"success":true}"#
                    } else {
                        r#"{"event_id":"sink","success":true}"#
                    };
                    http::write(&mut stream, 200, &[], "application/json", body).await
                } else {
                    counts.limited.fetch_add(1, Ordering::Relaxed);
                    let headers = [("retry-after", "1")];
                    http::write(&mut stream, 429, &headers, "text/plain", "slow down").await
                };
                if !written {
                    return;
                }
            }
        });
    }
}

fn sink(port: u16, delay: Duration, rate: u64, shape: &str, seconds: Duration) {
    let limiter = (rate > 0).then(|| {
        limiters::Limiter::named(shape, rate as u32).unwrap_or_else(|| {
            panic!("--limiter takes fixed, sliding, bucket or bucket-1s, not {shape}")
        })
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("port free");
        let counts = Arc::new(SinkCounts::default());
        eprintln!(
            "sink on http://127.0.0.1:{port}, delay {delay:?}, rate limit {rate}/s (0: none; shape {shape}), stopping after {seconds:?}"
        );
        // Says what it answered after each busy spell (one quiet second).
        let said = Arc::clone(&counts);
        let reporter = async move {
            let mut last = (0, 0, 0);
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = (
                    said.ok.load(Ordering::Relaxed),
                    said.limited.load(Ordering::Relaxed),
                    said.connections.load(Ordering::Relaxed),
                );
                if now == last && now != (0, 0, 0) {
                    println!("sink: answered 200 {}, 429 {}; connections opened {}", now.0, now.1, now.2);
                    said.ok.store(0, Ordering::Relaxed);
                    said.limited.store(0, Ordering::Relaxed);
                    said.connections.store(0, Ordering::Relaxed);
                    last = (0, 0, 0);
                } else {
                    last = now;
                }
            }
        };
        if std::env::args().any(|a| a == "--h2c") {
            let h2 = Arc::new(h2c::H2cCounts::default());
            let said = Arc::clone(&h2);
            let reporter = async move {
                let mut last = (0, 0);
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let now = (
                        said.http2_requests.load(Ordering::Relaxed),
                        said.connections.load(Ordering::Relaxed),
                    );
                    if now == last && now != (0, 0) {
                        println!("sink (h2c): answered 200 {}; connections opened {}", now.0, now.1);
                        said.http2_requests.store(0, Ordering::Relaxed);
                        said.connections.store(0, Ordering::Relaxed);
                        last = (0, 0);
                    } else {
                        last = now;
                    }
                }
            };
            let serve = h2c::serve(listener, delay, h2);
            let _ = tokio::time::timeout(seconds, async { tokio::join!(serve, reporter) }).await;
            return;
        }
        let serve = serve_sink(listener, delay, limiter, counts);
        let _ = tokio::time::timeout(seconds, async { tokio::join!(serve, reporter) }).await;
    });
}

fn percentiles(label: &str, samples: &mut [u32]) {
    samples.sort_unstable();
    let at = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "{label:<34} n={:<8} p50={:>5} ns  p90={:>5} ns  p99={:>6} ns  p99.9={:>7} ns  max={:>8} ns",
        samples.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        at(0.999),
        samples[samples.len() - 1]
    );
}

fn nanos(d: Duration) -> u32 {
    u32::try_from(d.as_nanos()).unwrap_or(u32::MAX)
}

/// Timed `log` calls from `tasks` tokio tasks on the logger's own runtime,
/// as an application would make them, each making `calls` calls. A task
/// logs `batch` events, then sleeps a millisecond (paced) or yields
/// (unpaced, `paced == false`) so the workers get the threads too. The event
/// is built before the clock starts.
fn timed_logs(
    rt: &tokio::runtime::Runtime,
    logger: &honeyhive::Logger,
    tasks: usize,
    calls: usize,
    batch: usize,
    paced: bool,
    control: bool,
) -> Vec<u32> {
    let session = SessionId::new();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (logger, session) = (logger.clone(), session.clone());
            rt.spawn(async move {
                let mut samples = Vec::with_capacity(calls);
                for i in 0..calls {
                    let event = sample_event(t * calls + i);
                    let (logged, took) = if control {
                        // The same work, but the clock times an empty
                        // region next to the call: what the machine adds.
                        let started = Instant::now();
                        let took = started.elapsed();
                        (logger.log(&session, event), took)
                    } else {
                        let started = Instant::now();
                        let logged = logger.log(&session, event);
                        (logged, started.elapsed())
                    };
                    assert!(logged.is_ok(), "the queue is sized for the whole run");
                    samples.push(nanos(took));
                    if (i + 1) % batch == 0 {
                        if paced {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        } else {
                            tokio::task::yield_now().await;
                        }
                    }
                }
                samples
            })
        })
        .collect();
    rt.block_on(async {
        let mut all = Vec::with_capacity(tasks * calls);
        for handle in handles {
            all.extend(handle.await.expect("producer task"));
        }
        all
    })
}

fn enqueue(calls: usize, cold: bool) {
    // Timer overhead: what an empty timed region measures.
    let mut empty: Vec<u32> = (0..calls)
        .map(|_| {
            let started = Instant::now();
            nanos(started.elapsed())
        })
        .collect();
    percentiles("timer overhead (empty region)", &mut empty);

    let rt = runtime(2);
    let _in_runtime = rt.enter();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    rt.spawn(serve_sink(listener, Duration::ZERO, None, Arc::default()));
    let config = LoggerConfig::default()
        .max_queue_events(usize::MAX)
        .max_queue_bytes(usize::MAX / 2)
        .max_in_flight(8);
    let logger = Logger::new(&client(&url), config).expect("in a runtime");

    // Warm up: connections, allocator, and the queue's blocks at the size
    // the unpaced runs reach, as in an application that has been running.
    // `--cold` skips this, to show what a first burst costs.
    if !cold {
        for tasks in [1, 8] {
            timed_logs(&rt, &logger, tasks, calls / tasks, 64, false, false);
            rt.block_on(logger.flush(Duration::from_secs(120)));
        }
    }

    for tasks in [1, 8] {
        // About 20 000 events/s in all: 20 per task per millisecond sleep,
        // divided among the tasks. The queue stays near empty.
        let batch = (20 / tasks).max(1);
        let mut paced = timed_logs(&rt, &logger, tasks, calls / tasks, batch, true, false);
        percentiles(&format!("{tasks} task(s), ~20k events/s"), &mut paced);
        rt.block_on(logger.flush(Duration::from_secs(120)));
        let mut control = timed_logs(&rt, &logger, tasks, calls / tasks, batch, true, true);
        percentiles("  control: empty region, same load", &mut control);
        rt.block_on(logger.flush(Duration::from_secs(120)));
        // As fast as they can, yielding every 64 calls: the queue grows.
        let mut burst = timed_logs(&rt, &logger, tasks, calls / tasks, 64, false, false);
        percentiles(&format!("{tasks} task(s), unpaced"), &mut burst);
        rt.block_on(logger.flush(Duration::from_secs(120)));
    }
    let report = rt.block_on(logger.shutdown(Duration::from_secs(60)));
    eprintln!(
        "  ({} sent, {} handed back)",
        report.stats.sent, report.stats.failed
    );
}

/// `queue` > 0: a queue of that many events, filled with `log_wait`, so a
/// producer faster than the sink waits instead of piling events up.
/// Logs `events` pre-built events and times until they are settled.
/// `in_flight` 0 keeps the default (adaptive) concurrency. `shutdown_secs`
/// 0 times until `flush` reports all sent; otherwise the run is
/// `shutdown(shutdown_secs)` right after logging, and the rate is what was
/// sent over the whole run. `warm` false (`--cold`): no warm-up, the events
/// meet the server from a new logger, as an application's first burst does.
/// `batch` > 0: batches of that many events (`Route::EventBatch`).
#[allow(clippy::too_many_arguments)]
fn e2e(
    url: &str,
    events: usize,
    in_flight: usize,
    threads: usize,
    queue: usize,
    shutdown_secs: u64,
    warm: bool,
    batch: usize,
) {
    let rt = runtime_for(threads);
    rt.block_on(async {
        let mut config = LoggerConfig::default()
            .max_queue_events(if queue > 0 { queue } else { events + 1 })
            .max_queue_bytes(usize::MAX / 2);
        if in_flight > 0 {
            config = config.max_in_flight(in_flight);
        }
        if batch > 0 {
            config = config
                .route(honeyhive::Route::EventBatch)
                .max_batch_events(batch);
        }
        let logger = Logger::new(&client(url), config).expect("in a runtime");
        let session = SessionId::new();
        // Warm the connection pool (and, adaptive, the limit's baseline).
        for i in 0..if warm { in_flight.max(8) * 4 * batch.max(1) } else { 0 } {
            logger.log(&session, sample_event(i)).expect("room");
        }
        logger.flush(Duration::from_secs(30)).await;
        let warm = logger.stats();

        // Built before the clock starts, as `loop` builds its own: both
        // time sending only (and the Logger its `log` calls too).
        let prepared: Vec<Event> = (0..events).map(sample_event).collect();
        let (started, cpu) = (Instant::now(), cpu_time());
        let mut refused = 0u64;
        for event in prepared {
            let logged = if queue > 0 {
                logger.log_wait(&session, event).await
            } else {
                logger.log(&session, event)
            };
            refused += u64::from(logged.is_err());
        }
        let report = if shutdown_secs > 0 {
            logger.shutdown(Duration::from_secs(shutdown_secs)).await
        } else {
            let report = logger.flush(Duration::from_secs(600)).await;
            assert!(report.complete, "{report:?}");
            report
        };
        let (took, cpu) = (started.elapsed(), cpu_time() - cpu);
        let limit = report.stats.in_flight_limit;
        let stats = if shutdown_secs > 0 {
            report.stats
        } else {
            logger.shutdown(Duration::from_secs(5)).await.stats
        };
        let sent = stats.sent - warm.sent;
        let failed = stats.failed - warm.failed;
        println!(
            "e2e{}: {events} events, in-flight {}, runtime threads {threads}: {:.3} s, {:.0} events/s, {:.1} µs CPU/event (sent {sent}, failed {failed}, refused {refused}, retried {}, in-flight limit at the end {limit}; all accounted for: {})",
            if batch > 0 { format!(" (batches of {batch})") } else { String::new() },
            if in_flight > 0 { in_flight.to_string() } else { "default".into() },
            took.as_secs_f64(),
            sent as f64 / took.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / events as f64,
            stats.retried - warm.retried,
            sent + failed + refused == events as u64,
        );
    });
}

/// What a user would write instead of the Logger: `in_flight` tasks, each
/// taking its share of the same pre-built events, giving each a UUIDv4 (as
/// the Logger does, so that the bodies are the same), serializing it with
/// serde_json and posting it with reqwest, then decoding the answer. Same
/// runtime, same sink, same events as `e2e`.
fn hand_loop(url: &str, events: usize, in_flight: usize, threads: usize) {
    let rt = runtime_for(threads);
    let endpoint = format!("{url}/session/{}/event", SessionId::new());
    #[allow(deprecated)] // ring, as the client has it (see client/builder.rs)
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        )
        .build()
        .expect("reqwest client");
    let post = |http: reqwest::Client, endpoint: String, event: Event| async move {
        let mut wire = event.into_api().expect("valid");
        wire.event_id = Some(uuid::Uuid::new_v4().to_string());
        let body = serde_json::to_vec(&wire).expect("serializable");
        let answer = http
            .post(&endpoint)
            .bearer_auth("bench-key")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("sink answers");
        let answer: honeyhive::api::types::LogEventResponse =
            answer.json().await.expect("the documented answer");
        assert!(answer.success);
    };
    let took = rt.block_on(async {
        // Warm the connection pool, as `e2e` does: in_flight at a time, so
        // that every connection is open before the clock starts.
        let warm: Vec<_> = (0..in_flight)
            .map(|t| {
                let (http, endpoint) = (http.clone(), endpoint.clone());
                tokio::spawn(async move {
                    for i in 0..4 {
                        post(http.clone(), endpoint.clone(), sample_event(t * 4 + i)).await;
                    }
                })
            })
            .collect();
        for task in warm {
            task.await.expect("warm-up");
        }
        let mut shares: Vec<Vec<Event>> = (0..in_flight).map(|_| Vec::new()).collect();
        for i in 0..events {
            shares[i % in_flight].push(sample_event(i));
        }
        let (started, cpu) = (Instant::now(), cpu_time());
        let tasks: Vec<_> = shares
            .into_iter()
            .map(|share| {
                let (http, endpoint) = (http.clone(), endpoint.clone());
                tokio::spawn(async move {
                    for event in share {
                        post(http.clone(), endpoint.clone(), event).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("poster");
        }
        (started.elapsed(), cpu_time() - cpu)
    });
    let (took, cpu) = took;
    println!(
        "loop: {events} events, in-flight {in_flight}, runtime threads {threads}: {:.3} s, {:.0} events/s, {:.1} µs CPU/event",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / events as f64
    );
}

/// What a user would write instead of a batching Logger: `in_flight` tasks,
/// each taking its share of the same pre-built events in chunks of
/// `batch`, turning each event into the v1 event type (a UUIDv4 id, the
/// session, `inputs`), serializing the batch with serde_json, posting it
/// with reqwest to `/v1/events/batch` and decoding the answer. Same
/// runtime, sink and events as `e2e --batch`.
fn hand_batch_loop(url: &str, events: usize, in_flight: usize, threads: usize, batch: usize) {
    use honeyhive::api::types::{
        PostEventBatchRequest, PostEventBatchResponse, PostEventRequest, PostEventRequestEventType,
    };
    let rt = runtime_for(threads);
    let endpoint = format!("{url}/v1/events/batch");
    let session = SessionId::new();
    #[allow(deprecated)] // ring, as the client has it (see client/builder.rs)
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        )
        .build()
        .expect("reqwest client");
    let post = move |http: reqwest::Client,
                     endpoint: String,
                     session: SessionId,
                     chunk: Vec<Event>| async move {
        let events = chunk
            .into_iter()
            .map(|event| {
                let wire = event.into_api().expect("valid");
                PostEventRequest {
                    children_ids: Vec::new(),
                    config: wire.config,
                    duration: wire.duration,
                    end_time: wire.end_time,
                    error: wire.error,
                    event_id: Some(uuid::Uuid::new_v4().to_string()),
                    event_name: wire.event_name,
                    event_type: PostEventRequestEventType::Model,
                    feedback: wire.feedback,
                    inputs: wire.inputs,
                    metadata: wire.metadata,
                    metrics: wire.metrics,
                    outputs: wire.outputs,
                    parent_id: None,
                    project_id: None,
                    session_id: Some(session.to_string()),
                    source: wire.source,
                    start_time: wire.start_time,
                    user_properties: wire.user_properties,
                }
            })
            .collect();
        let body = serde_json::to_vec(&PostEventBatchRequest {
            events,
            session_properties: None,
            single_session: None,
        })
        .expect("serializable");
        let answer = http
            .post(&endpoint)
            .bearer_auth("bench-key")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("sink answers");
        let answer: PostEventBatchResponse = answer.json().await.expect("the documented answer");
        assert!(answer.success);
    };
    let took = rt.block_on(async {
        let warm: Vec<_> = (0..in_flight)
            .map(|t| {
                let (http, endpoint, session) = (http.clone(), endpoint.clone(), session.clone());
                tokio::spawn(async move {
                    for i in 0..4 {
                        let chunk = (0..batch).map(|j| sample_event(t * 4 + i + j)).collect();
                        post(http.clone(), endpoint.clone(), session.clone(), chunk).await;
                    }
                })
            })
            .collect();
        for task in warm {
            task.await.expect("warm-up");
        }
        let mut chunks: Vec<Vec<Event>> = Vec::new();
        for i in 0..events {
            if i % batch == 0 {
                chunks.push(Vec::with_capacity(batch));
            }
            chunks.last_mut().expect("pushed").push(sample_event(i));
        }
        let mut shares: Vec<Vec<Vec<Event>>> = (0..in_flight).map(|_| Vec::new()).collect();
        for (i, chunk) in chunks.into_iter().enumerate() {
            shares[i % in_flight].push(chunk);
        }
        let (started, cpu) = (Instant::now(), cpu_time());
        let tasks: Vec<_> = shares
            .into_iter()
            .map(|share| {
                let (http, endpoint, session) = (http.clone(), endpoint.clone(), session.clone());
                tokio::spawn(async move {
                    for chunk in share {
                        post(http.clone(), endpoint.clone(), session.clone(), chunk).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("poster");
        }
        (started.elapsed(), cpu_time() - cpu)
    });
    let (took, cpu) = took;
    println!(
        "loop (batches of {batch}): {events} events, in-flight {in_flight}, runtime threads {threads}: {:.3} s, {:.0} events/s, {:.1} µs CPU/event",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / events as f64
    );
}

/// The floor under the logger: the sample event's bytes, serialized once,
/// posted `events` times over `in_flight` concurrent requests on a
/// current-thread runtime, through a shared reqwest client or straight
/// through hyper's HTTP/1 connection API (one connection per task). No
/// queue, no serialization, no retries: what the HTTP stack alone allows.
fn floor(url: &str, client: &str, events: usize, in_flight: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let body = bytes::Bytes::from(sample_body());
    let url: reqwest::Url = format!("{url}/session/bench/event")
        .parse()
        .expect("--url is a URL");
    let per_task = events / in_flight;
    #[allow(deprecated)] // ring, as the client has it (see client/builder.rs)
    let shared = reqwest::Client::builder()
        .use_preconfigured_tls(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        )
        .build()
        .expect("reqwest client");
    let took = rt.block_on(async {
        let started = Instant::now();
        let tasks: Vec<_> = (0..in_flight)
            .map(|_| {
                let (body, url, shared) = (body.clone(), url.clone(), shared.clone());
                let client = client.to_owned();
                tokio::spawn(async move {
                    if client == "hyper" {
                        hyper_posts(&url, body, per_task).await;
                    } else {
                        for _ in 0..per_task {
                            let answer = shared
                                .post(url.clone())
                                .header("content-type", "application/json")
                                .header("accept", "application/json")
                                .header("authorization", "Bearer bench-key")
                                .body(body.clone())
                                .send()
                                .await
                                .expect("sink answers");
                            assert_eq!(answer.status(), 200);
                            assert!(!answer.bytes().await.expect("body").is_empty());
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("poster");
        }
        started.elapsed()
    });
    let sent = per_task * in_flight;
    println!(
        "floor ({client}, pre-built body): {sent} requests, in-flight {in_flight}: {:.3} s, {:.0} requests/s",
        took.as_secs_f64(),
        sent as f64 / took.as_secs_f64()
    );
}

async fn hyper_posts(url: &reqwest::Url, body: bytes::Bytes, count: usize) {
    use http_body_util::{BodyExt, Full};
    let authority = format!(
        "{}:{}",
        url.host_str().expect("host"),
        url.port_or_known_default().expect("port")
    );
    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .expect("sink listens");
    stream.set_nodelay(true).expect("nodelay");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    for _ in 0..count {
        let request = hyper::Request::post(url.path())
            .header("host", &authority)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("authorization", "Bearer bench-key")
            .body(Full::new(body.clone()))
            .expect("request");
        sender.ready().await.expect("connection ready");
        let answer = sender.send_request(request).await.expect("sink answers");
        assert_eq!(answer.status(), 200);
        let answer = answer.into_body().collect().await.expect("body");
        assert!(!answer.to_bytes().is_empty());
    }
}

/// CPU time this process has used (user + system, all threads), from
/// `/proc/self/stat`, in clock ticks of 10 ms.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ")".
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 11 and 12 here.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    field("VmHWM:")
}

fn memory(events: usize, cap_mb: usize) {
    let rt = runtime(2);
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let sink = tokio::spawn(serve_sink(listener, Duration::from_secs(3600), None, Arc::default()));
        let cap = cap_mb * 1000 * 1000;
        let logger = Logger::new(&client(&url), LoggerConfig::default().max_queue_events(usize::MAX).max_queue_bytes(cap).max_in_flight(1))
            .expect("in a runtime");
        let session = SessionId::new();
        let before = peak_rss_kib();
        let started = Instant::now();
        let mut dropped = 0u64;
        for i in 0..events {
            if logger.log(&session, sample_event(i)).is_err() {
                dropped += 1;
            }
        }
        let took = started.elapsed();
        let after = peak_rss_kib();
        let stats = logger.stats();
        let grew_mb = (after.saturating_sub(before)) as f64 * 1024.0 / 1e6;
        println!(
            "memory: {events} events in {:.2} s into a {cap_mb} MB queue: {} queued, {dropped} dropped; \
             peak RSS {:.1} MB -> {:.1} MB, grew {grew_mb:.1} MB = {:.0}% of the cap (target <= 120%)",
            took.as_secs_f64(),
            stats.pending,
            before as f64 * 1024.0 / 1e6,
            after as f64 * 1024.0 / 1e6,
            grew_mb * 100.0 / cap_mb as f64
        );
        drop(logger.shutdown(Duration::ZERO).await);
        sink.abort();
    });
}
