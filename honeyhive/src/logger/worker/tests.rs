//! The worker's logic against a scripted transport: no server, no TCP.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::super::{Logger, LoggerConfig};
use super::delivery::Slot;
use super::*;
use crate::client::Expect;
use crate::retry::Next;
use crate::{event::Event, retry::RetryPolicy};
use reqwest::StatusCode;

type Plan = Box<dyn Fn(&str, u32) -> AttemptFuture<'static> + Send + Sync>;

/// Answers each attempt as `plan` says, given the event id and the
/// attempt number, and remembers every body it was given.
struct Script {
    plan: Plan,
    bodies: Mutex<Vec<bytes::Bytes>>,
    attempts: AtomicU32,
    /// Each attempt's event id and timeout.
    timeouts: Mutex<Vec<(String, Duration)>>,
}

impl Transport for Script {
    fn attempt<'a>(&'a self, prepared: &'a Prepared, attempt: Attempt) -> AttemptFuture<'a> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        self.bodies.lock().push(prepared.body.clone());
        let id = ids(prepared);
        self.timeouts.lock().push((id.clone(), attempt.timeout));
        (self.plan)(&id, attempt.number)
    }
}

/// The event id a request is about; a batch's, joined by commas.
fn ids(prepared: &Prepared) -> String {
    match &prepared.expect {
        Expect::Event { event_id } => event_id.clone(),
        Expect::Batch { event_ids } => event_ids.join(","),
        other => panic!("the logger sends no {other}"),
    }
}

fn scripted(
    plan: impl Fn(&str, u32) -> AttemptFuture<'static> + Send + Sync + 'static,
) -> (Arc<Script>, Logger) {
    scripted_with(LoggerConfig::default(), plan)
}

fn scripted_with(
    config: LoggerConfig,
    plan: impl Fn(&str, u32) -> AttemptFuture<'static> + Send + Sync + 'static,
) -> (Arc<Script>, Logger) {
    scripted_under(RetryPolicy::default(), config, plan)
}

/// `policy` with back-offs of 1 ms.
fn scripted_under(
    policy: RetryPolicy,
    config: LoggerConfig,
    plan: impl Fn(&str, u32) -> AttemptFuture<'static> + Send + Sync + 'static,
) -> (Arc<Script>, Logger) {
    let client = Client::builder()
        .api_key("k")
        .retry_policy(
            policy
                .initial_backoff(Duration::from_millis(1))
                .max_backoff(Duration::from_millis(1)),
        )
        .build()
        .unwrap();
    let script = Arc::new(Script {
        plan: Box::new(plan),
        bodies: Mutex::default(),
        attempts: AtomicU32::new(0),
        timeouts: Mutex::default(),
    });
    let logger = Logger::start(&client, Arc::clone(&script) as _, config).unwrap();
    (script, logger)
}

fn ready(verdict: Verdict<Result<Answer, Error>>) -> AttemptFuture<'static> {
    Box::pin(async move { verdict })
}

fn unavailable() -> Verdict<Result<Answer, Error>> {
    Verdict::Retryable {
        outcome: Err(Error::Api {
            status: StatusCode::SERVICE_UNAVAILABLE,
            body: String::new(),
            attempts: 1,
            url: None,
        }),
        next: Next::default(),
    }
}

/// A 503 asking for `after`: a failure worth a retry after that wait (not
/// a throttle).
fn unavailable_for(after: Duration) -> Verdict<Result<Answer, Error>> {
    Verdict::Retryable {
        outcome: Err(Error::Api {
            status: StatusCode::SERVICE_UNAVAILABLE,
            body: String::new(),
            attempts: 1,
            url: None,
        }),
        next: Next {
            retry_after: Some(after),
            ..Next::default()
        },
    }
}

fn rate_limited(after: Duration) -> Verdict<Result<Answer, Error>> {
    Verdict::Retryable {
        outcome: Err(Error::RateLimited {
            body: String::new(),
            retry_after: Some(after),
            attempts: 1,
            url: None,
        }),
        next: Next {
            retry_after: Some(after),
            throttled: true,
            ask_first: false,
        },
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_429_makes_only_its_own_event_wait_and_pauses_no_other() {
    let started = Instant::now();
    let seen: Arc<Mutex<Vec<(String, u32, Duration)>>> = Arc::default();
    let log = Arc::clone(&seen);
    let (script, logger) = scripted_with(
        LoggerConfig::default().linger(Duration::from_millis(1)),
        move |id, attempt| {
            log.lock().push((id.to_owned(), attempt, started.elapsed()));
            let id = id.to_owned();
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                if id == "first" && attempt == 1 {
                    rate_limited(Duration::from_secs(1))
                } else {
                    Verdict::Final(Ok(Answer::Event(id)))
                }
            })
        },
    );
    logger.log("s", Event::tool("t").event_id("first")).unwrap();
    // Logged once the 429 is in (10 ms after the first attempt).
    tokio::time::sleep(Duration::from_millis(20)).await;
    let stats = logger.stats();
    assert_eq!(
        stats.in_flight_limit, 8,
        "a 429 limits the rate, not the concurrency"
    );
    assert_eq!(
        stats.send_rate_limit, None,
        "one 429 is not evidence of a limit"
    );
    for i in 0..20 {
        logger
            .log("s", Event::tool("t").event_id(format!("b{i}")))
            .unwrap();
    }
    let report = logger.shutdown(Duration::from_secs(10)).await;
    assert!(report.complete);
    assert_eq!((report.stats.sent, report.stats.failed), (21, 0));
    let seen = seen.lock();
    for (id, attempt, at) in seen.iter().skip(1) {
        assert!(
            *at < Duration::from_secs(1),
            "{id} attempt {attempt} at {at:?}: it waited out the 429's second"
        );
    }
    let bodies = script.bodies.lock();
    let first: Vec<_> = bodies
        .iter()
        .filter(|b| b.starts_with(br#"{"event_id":"first""#))
        .collect();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0], first[1], "the retry keeps the body and its id");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn many_429s_hold_the_logger_to_a_send_rate() {
    // The first attempt of every event is throttled: a limit, for sure.
    let (_script, logger) = scripted(|id, attempt| {
        let id = id.to_owned();
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if attempt == 1 {
                rate_limited(Duration::from_secs(1))
            } else {
                Verdict::Final(Ok(Answer::Event(id)))
            }
        })
    });
    for i in 0..50 {
        logger
            .log("s", Event::tool("t").event_id(format!("e{i}")))
            .unwrap();
    }
    let report = logger.shutdown(Duration::from_secs(60)).await;
    assert_eq!((report.stats.sent, report.stats.failed), (50, 0));
    assert!(report.stats.send_rate_limit.is_some(), "{:?}", report.stats);
}

/// "ninth" is answered 503 with a `Retry-After` of 50 ms; meanwhile eight
/// events whose answers take `slow` fill the in-flight limit (8 at the
/// start), so its retry waits for a place, under a deadline of 2 s.
async fn behind_a_full_limit(slow: Duration) -> (Arc<Script>, LoggerReport) {
    let (script, logger) = scripted_under(
        RetryPolicy::default().deadline(Duration::from_secs(2)),
        LoggerConfig::default().linger(Duration::from_millis(1)),
        move |id, attempt| {
            let id = id.to_owned();
            Box::pin(async move {
                if id == "ninth" && attempt == 1 {
                    return unavailable_for(Duration::from_millis(50));
                }
                if id != "ninth" {
                    tokio::time::sleep(slow).await;
                }
                Verdict::Final(Ok(Answer::Event(id)))
            })
        },
    );
    logger.log("s", Event::tool("t").event_id("ninth")).unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    for i in 0..8 {
        let event = Event::tool("t").event_id(format!("slow-{i}"));
        logger.log("s", event).unwrap();
    }
    let report = logger.shutdown(Duration::from_secs(60)).await;
    (script, report)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_retrys_wait_for_a_place_under_the_limit_counts_against_its_deadline() {
    // 1 s of wait: the retry is sent with what the deadline has left.
    let (script, report) = behind_a_full_limit(Duration::from_secs(1)).await;
    assert_eq!((report.stats.sent, report.stats.failed), (9, 0));
    let timeouts = script.timeouts.lock();
    let ninth: Vec<Duration> = timeouts
        .iter()
        .filter(|(id, _)| id == "ninth")
        .map(|(_, t)| *t)
        .collect();
    assert_eq!(ninth.len(), 2);
    assert!(
        ninth[1] <= Duration::from_millis(1_100) && ninth[1] >= Duration::from_millis(900),
        "it waited until about 1 s: about 1 s of its 2 s is left, not {:?}",
        ninth[1]
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_event_whose_deadline_passes_while_its_retry_waits_is_not_sent_again() {
    // 10 s of wait, over its deadline: it times out in the wait, without
    // a second request.
    let (script, report) = behind_a_full_limit(Duration::from_secs(10)).await;
    assert_eq!((report.stats.sent, report.stats.failed), (8, 1));
    assert_eq!(script.attempts.load(Ordering::SeqCst), 9, "the ninth once");
    let ninth = &report.dead_letters[0];
    assert_eq!(ninth.event_id.as_deref(), Some("ninth"));
    assert!(
        ninth.reason.contains("no answer in time"),
        "{}",
        ninth.reason
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_event_waiting_in_the_queue_behind_a_full_limit_keeps_its_whole_deadline() {
    let (script, logger) = scripted_under(
        RetryPolicy::default().deadline(Duration::from_secs(2)),
        LoggerConfig::default().linger(Duration::from_millis(1)),
        move |id, _| {
            let id = id.to_owned();
            Box::pin(async move {
                if id != "ninth" {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Verdict::Final(Ok(Answer::Event(id)))
            })
        },
    );
    for i in 0..8 {
        logger
            .log("s", Event::tool("t").event_id(format!("slow-{i}")))
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    logger.log("s", Event::tool("t").event_id("ninth")).unwrap();
    let report = logger.shutdown(Duration::from_secs(60)).await;
    assert_eq!((report.stats.sent, report.stats.failed), (9, 0));
    let timeouts = script.timeouts.lock();
    let ninth = timeouts.iter().find(|(id, _)| id == "ninth").unwrap().1;
    assert_eq!(
        ninth,
        Duration::from_secs(2),
        "its clock starts when it can go"
    );
}

/// 50 events against a server that fails every request with `fault`:
/// after 5 s `held` holds of the stats (the limit or the rate is at its
/// floor), and `shutdown(300 ms)` returns on time with every event a dead
/// letter. Returns the attempts made in the 5 s.
async fn against_endless(
    fault: fn() -> AttemptFuture<'static>,
    held: fn(&LoggerStats) -> bool,
) -> u32 {
    let (script, logger) = scripted(move |_, _| fault());
    for i in 0..50 {
        let event = Event::tool("t").event_id(format!("e{i}"));
        logger.log("s", event).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let stats = logger.stats();
    assert!(held(&stats), "{stats:?}");
    let attempts = script.attempts.load(Ordering::SeqCst);
    let asked = Instant::now();
    let report = logger.shutdown(Duration::from_millis(300)).await;
    let took = asked.elapsed();
    assert!(took <= Duration::from_millis(350), "{took:?}");
    let stats = report.stats;
    assert_eq!(stats.sent, 0);
    assert_eq!(stats.failed, 50, "every event is a dead letter: {stats:?}");
    assert_eq!(report.dead_letters.len(), 50);
    attempts
}

/// The in-flight limit is at its floor.
fn limit_at_one(stats: &LoggerStats) -> bool {
    stats.in_flight_limit == 1
}

/// Never more attempts than the retry policy allows for the 50 events: no
/// spin.
fn within_the_policy(attempts: u32) {
    let allowed = 50 * RetryPolicy::DEFAULT_MAX_ATTEMPTS;
    assert!(attempts <= allowed, "{attempts} attempts in 5 s");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_server_that_answers_429_forever_brings_the_send_rate_to_its_floor_and_shutdown_keeps_time()
 {
    let attempts = against_endless(
        || {
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                rate_limited(Duration::from_millis(50))
            })
        },
        |stats| stats.send_rate_limit == Some(1) && stats.in_flight_limit == 8,
    )
    .await;
    // Throttled attempts do not use up the retry policy's: each event waits
    // its 50 ms, the rate is cut up to ten times in the first second, then
    // to 1/s once a whole second admitted nothing.
    assert!(attempts < 500, "{attempts} attempts in 5 s");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_server_that_never_answers_brings_the_limit_to_one_and_shutdown_keeps_time() {
    let attempts = against_endless(
        || {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Verdict::Retryable {
                    outcome: Err(Error::Timeout {
                        elapsed: Duration::from_secs(1),
                        attempts: 1,
                        attempt_timeout: Duration::from_secs(1),
                    }),
                    next: Next::default(),
                }
            })
        },
        limit_at_one,
    )
    .await;
    within_the_policy(attempts);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_server_that_resets_every_connection_brings_the_limit_to_one_and_shutdown_keeps_time() {
    let attempts = against_endless(
        || {
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Verdict::Retryable {
                    outcome: Err(Error::Transport {
                        host: "127.0.0.1".into(),
                        problem: "connection reset".into(),
                        attempts: 1,
                        source: None,
                    }),
                    next: Next::default(),
                }
            })
        },
        limit_at_one,
    )
    .await;
    within_the_policy(attempts);
}

#[tokio::test(flavor = "current_thread")]
async fn retried_attempts_send_the_same_body_and_are_counted() {
    let (script, logger) = scripted(|id, attempt| {
        ready(if attempt < 3 {
            unavailable()
        } else {
            Verdict::Final(Ok(Answer::Event(id.to_owned())))
        })
    });
    logger.log("s", Event::tool("t").event_id("e-1")).unwrap();
    let report = logger.shutdown(Duration::from_secs(5)).await;
    assert!(report.complete);
    assert_eq!((report.stats.sent, report.stats.retried), (1, 2));
    let bodies = script.bodies.lock();
    assert_eq!(bodies.len(), 3);
    assert!(bodies.iter().all(|b| b == &bodies[0]));
}

#[tokio::test(flavor = "current_thread")]
async fn a_final_failure_is_a_dead_letter_with_the_sent_body_and_the_reason() {
    let (script, logger) = scripted(|_, _| {
        ready(Verdict::Final(Err(Error::Api {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: "no".into(),
            attempts: 1,
            url: None,
        })))
    });
    logger.log("s", Event::tool("t").event_id("e-1")).unwrap();
    let report = logger.flush(Duration::from_secs(5)).await;
    assert!(report.complete, "a failure settles the event");
    assert_eq!((report.stats.sent, report.stats.failed), (0, 1));
    let letter = &report.dead_letters[0];
    assert_eq!(letter.reason, "the API answered HTTP 422: no");
    assert_eq!(letter.event_id.as_deref(), Some("e-1"));
    assert_eq!(letter.event, script.bodies.lock()[0]);
    assert_eq!(script.attempts.load(Ordering::SeqCst), 1);
    logger.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_flush_waits_for_an_older_event_still_in_flight_not_just_for_a_count() {
    // "slow" is answered when the test says so; the later "fast" ones
    // settle at once. A flush counting settled events would return
    // early: as many events settle as were logged before it.
    let gate = Arc::new(Notify::new());
    let opened = Arc::clone(&gate);
    let (_script, logger) = scripted(move |id, _| {
        let id = id.to_owned();
        let gate = Arc::clone(&opened);
        Box::pin(async move {
            if id == "slow" {
                gate.notified().await;
            }
            Verdict::Final(Ok(Answer::Event(id)))
        })
    });
    logger.log("s", Event::tool("t").event_id("slow")).unwrap();
    let first = logger.flush(Duration::from_millis(50)).await;
    assert!(!first.complete, "the slow event is still in flight");
    for i in 0..3 {
        logger
            .log("s", Event::tool("t").event_id(format!("fast-{i}")))
            .unwrap();
    }
    let second = logger.flush(Duration::from_millis(100)).await;
    assert!(
        !second.complete,
        "the fast ones settled, the slow one did not"
    );
    assert_eq!((second.stats.sent, second.stats.pending), (3, 1));
    gate.notify_one();
    let third = logger.flush(Duration::from_secs(5)).await;
    assert!(third.complete);
    assert_eq!((third.stats.sent, third.stats.pending), (4, 0));
    logger.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_event_handed_back_at_shutdown_is_counted_once() {
    // Never answered: at the deadline it is in flight, handed back, and
    // its aborted delivery must not count it again.
    let (_script, logger) =
        scripted(|_, _| Box::pin(std::future::pending::<Verdict<Result<Answer, Error>>>()));
    for i in 0..3 {
        logger
            .log("s", Event::tool("t").event_id(format!("e-{i}")))
            .unwrap();
    }
    let report = logger.shutdown(Duration::from_millis(50)).await;
    let stats = report.stats;
    assert_eq!(
        (stats.enqueued, stats.sent, stats.failed, stats.pending),
        (3, 0, 3, 0)
    );
    assert_eq!(report.dead_letters.len(), 3);
    let again = logger.shutdown(Duration::from_millis(50)).await;
    assert!(again.complete && again.dead_letters.is_empty());
    assert_eq!(again.stats.failed, 3);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_first_event_after_a_quiet_spell_goes_out_at_once() {
    // On the paused clock, time moves only when every task waits, so
    // when the attempt happens says whether the dispatcher waited for a
    // timer (up to 100 ms) or was woken by `log`.
    let (sent, mut attempts) = tokio::sync::mpsc::unbounded_channel();
    let (_script, logger) = scripted(move |id, _| {
        let _ = sent.send(tokio::time::Instant::now());
        ready(Verdict::Final(Ok(Answer::Event(id.to_owned()))))
    });
    tokio::time::sleep(Duration::from_secs(2)).await; // well into dozing
    for round in 0..3 {
        let logged_at = tokio::time::Instant::now();
        logger.log("s", Event::tool("t")).unwrap();
        // Bounded, so that an event never attempted fails the test.
        let attempted_at = tokio::time::timeout(Duration::from_secs(60), attempts.recv())
            .await
            .expect("the event was attempted")
            .unwrap();
        assert!(
            attempted_at - logged_at < Duration::from_millis(1),
            "round {round}: waited {:?} for the dispatcher",
            attempted_at - logged_at
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    logger.shutdown(Duration::from_secs(1)).await;
}

// Batches (Route::EventBatch).

/// A logger on the batch route with back-offs of 1 ms, whose client holds
/// bodies to `max_body_bytes`.
fn batched(
    config: LoggerConfig,
    max_body_bytes: usize,
    plan: impl Fn(&str, u32) -> AttemptFuture<'static> + Send + Sync + 'static,
) -> (Arc<Script>, Logger) {
    let client = Client::builder()
        .api_key("k")
        .max_body_bytes(max_body_bytes)
        .retry_policy(
            RetryPolicy::default()
                .initial_backoff(Duration::from_millis(1))
                .max_backoff(Duration::from_millis(1)),
        )
        .build()
        .unwrap();
    let script = Arc::new(Script {
        plan: Box::new(plan),
        bodies: Mutex::default(),
        attempts: AtomicU32::new(0),
        timeouts: Mutex::default(),
    });
    let config = config.route(crate::logger::Route::EventBatch);
    let logger = Logger::start(&client, Arc::clone(&script) as _, config).unwrap();
    (script, logger)
}

/// Answers a batch as recorded.
fn recorded(ids: &str) -> Verdict<Result<Answer, Error>> {
    Verdict::Final(Ok(Answer::Batch(
        ids.split(',').map(str::to_owned).collect(),
    )))
}

/// The event ids of each batch body the script was given, in order.
fn batches(script: &Script) -> Vec<Vec<String>> {
    script
        .bodies
        .lock()
        .iter()
        .map(|body| {
            let value: serde_json::Value = serde_json::from_slice(body).unwrap();
            value["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["event_id"].as_str().unwrap().to_owned())
                .collect()
        })
        .collect()
}

fn log_many(logger: &Logger, prefix: &str, count: usize) {
    for i in 0..count {
        logger
            .log("s", Event::tool("t").event_id(format!("{prefix}{i}")))
            .unwrap();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn events_go_out_in_batches_of_at_most_max_batch_events_each_once() {
    let (script, logger) = batched(
        LoggerConfig::default().max_batch_events(10),
        1 << 20,
        |ids, _| ready(recorded(ids)),
    );
    log_many(&logger, "e", 35);
    let report = logger.shutdown(Duration::from_secs(5)).await;
    assert!(report.complete);
    assert_eq!((report.stats.sent, report.stats.failed), (35, 0));
    let batches = batches(&script);
    assert!(batches.iter().all(|b| b.len() <= 10), "{batches:?}");
    assert_eq!(
        batches.len(),
        4,
        "35 events queued at once fill 3 batches and a last one"
    );
    let mut all: Vec<String> = batches.concat();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 35, "each event sent once");
}

#[tokio::test(flavor = "current_thread")]
async fn a_batch_is_closed_before_an_event_that_would_take_it_over_max_batch_bytes() {
    let limit = 1_000;
    let (script, logger) = batched(
        LoggerConfig::default().max_batch_bytes(limit),
        1 << 20,
        |ids, _| ready(recorded(ids)),
    );
    for i in 0..20 {
        let event = Event::tool("t")
            .event_id(format!("e{i}"))
            .inputs(serde_json::json!({"text": "x".repeat(200)}));
        logger.log("s", event).unwrap();
    }
    let report = logger.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.stats.sent, 20);
    let bodies = script.bodies.lock();
    assert!(
        bodies.iter().all(|b| b.len() <= limit),
        "a body over {limit} bytes"
    );
    assert!(bodies.len() >= 5, "about 3 events of 300 bytes fit in 1000");
    assert!(
        bodies.iter().any(|b| b.len() > limit / 2),
        "batches are filled"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_batch_refused_400_is_split_until_the_one_bad_event_is_a_dead_letter() {
    let (script, logger) = batched(LoggerConfig::default(), 1 << 20, |ids, _| {
        ready(if ids.split(',').any(|id| id == "e37") {
            Verdict::Final(Err(Error::Api {
                status: StatusCode::BAD_REQUEST,
                body: "event e37 is malformed".into(),
                attempts: 1,
                url: None,
            }))
        } else {
            recorded(ids)
        })
    });
    log_many(&logger, "e", 100);
    let report = logger.shutdown(Duration::from_secs(5)).await;
    assert!(report.complete);
    assert_eq!((report.stats.sent, report.stats.failed), (99, 1));
    let letter = &report.dead_letters[0];
    assert_eq!(letter.event_id.as_deref(), Some("e37"));
    assert_eq!(letter.status, Some(StatusCode::BAD_REQUEST));
    assert!(
        letter.reason.contains("event e37 is malformed"),
        "{}",
        letter.reason
    );
    let requests = script.attempts.load(Ordering::SeqCst);
    assert!(
        requests <= 15,
        "{requests} requests to isolate one event of 100"
    );
    // Every request after the first sent its events again.
    assert_eq!(report.stats.retried, u64::from(requests) - 1);
    let good: usize = batches(&script)
        .iter()
        .filter(|b| !b.contains(&"e37".to_owned()))
        .map(Vec::len)
        .sum();
    assert_eq!(good, 99, "each good event recorded once");
}

#[tokio::test(flavor = "current_thread")]
async fn a_batch_answered_500_is_retried_whole_with_the_same_bytes() {
    let (script, logger) = batched(LoggerConfig::default(), 1 << 20, |ids, attempt| {
        ready(if attempt == 1 {
            Verdict::Retryable {
                outcome: Err(Error::Api {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    body: "events partially created".into(),
                    attempts: 1,
                    url: None,
                }),
                next: Next::default(),
            }
        } else {
            recorded(ids)
        })
    });
    log_many(&logger, "e", 30);
    let report = logger.shutdown(Duration::from_secs(5)).await;
    assert_eq!((report.stats.sent, report.stats.retried), (30, 1));
    let bodies = script.bodies.lock();
    assert_eq!(bodies.len(), 2);
    assert_eq!(
        bodies[0], bodies[1],
        "the retry carries the same events and ids"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_batch_that_is_not_full_waits_linger_for_more_and_a_flush_cuts_that_short() {
    let linger = Duration::from_millis(50);
    let (sent_at, mut sends) = tokio::sync::mpsc::unbounded_channel();
    let (script, logger) = batched(
        LoggerConfig::default().linger(linger),
        1 << 20,
        move |ids, _| {
            let _ = sent_at.send(Instant::now());
            ready(recorded(ids))
        },
    );
    let started = Instant::now();
    log_many(&logger, "a", 3);
    tokio::time::sleep(Duration::from_millis(20)).await;
    log_many(&logger, "b", 2);
    let first = sends.recv().await.unwrap();
    assert!(
        first - started >= linger,
        "sent after {:?}",
        first - started
    );
    assert!(
        first - started < linger * 3,
        "sent after {:?}",
        first - started
    );
    assert_eq!(batches(&script), [["a0", "a1", "a2", "b0", "b1"]]);

    let flushed_at = Instant::now();
    log_many(&logger, "c", 1);
    let report = logger.flush(Duration::from_secs(5)).await;
    assert!(report.complete);
    let second = sends.recv().await.unwrap();
    assert!(
        second - flushed_at < linger,
        "a flush waited {:?}",
        second - flushed_at
    );
    logger.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn in_batches_an_event_over_the_body_limit_alone_is_a_dead_letter_as_logged() {
    let (script, logger) = batched(LoggerConfig::default(), 600, |ids, _| ready(recorded(ids)));
    let big = Event::chain("big").event_id("big").child(
        Event::tool("t")
            .event_id("kid")
            .outputs(serde_json::json!({"numbers": vec![1000; 150]})),
    );
    // Under the limit as `log` estimates it (a digit a number), over it as
    // a batch, and no string to cut.
    logger.log("s", big).unwrap();
    logger.log("s", Event::tool("t").event_id("small")).unwrap();
    let report = logger.shutdown(Duration::from_secs(5)).await;
    assert_eq!((report.stats.sent, report.stats.failed), (1, 1));
    let letter = &report.dead_letters[0];
    assert_eq!(letter.event_id.as_deref(), Some("big"));
    assert!(
        letter.reason.contains("over the 600-byte limit")
            && letter.reason.contains("cannot make it fit"),
        "{}",
        letter.reason
    );
    // The letter is the tree as logged (children nested, ids filled), to
    // be replayed through either route.
    let event = letter.event_json();
    assert_eq!(event["children"][0]["event_id"], "kid");
    assert!(event.get("parent_id").is_none() && event.get("children_ids").is_none());
    assert_eq!(batches(&script), [["small"]]);
}

#[tokio::test(flavor = "current_thread")]
async fn in_batches_log_refuses_an_event_without_an_event_type_naming_it() {
    let (_script, logger) = batched(LoggerConfig::default(), 1 << 20, |ids, _| {
        ready(recorded(ids))
    });
    let untyped = Event::chain("c").child(Event::default().name("x"));
    match logger.log("s", untyped) {
        Err(crate::logger::LogError::Invalid { error, .. }) => {
            assert!(
                error
                    .to_string()
                    .starts_with("invalid children[0].event_type"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The per-event route has no such rule.
    let (_script, per_event) =
        scripted(|id, _| ready(Verdict::Final(Ok(Answer::Event(id.to_owned())))));
    per_event.log("s", Event::default().name("x")).unwrap();
    per_event.shutdown(Duration::from_secs(1)).await;
    logger.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_letter_its_delivery_made_is_handed_back_even_after_a_shutdowns_hand_back_passed_it() {
    let (_script, logger) =
        scripted(|_, _| Box::pin(std::future::pending::<Verdict<Result<Answer, Error>>>()));
    let shared = &logger.handle.shared;
    // An event in a delivery's hands, as the dispatcher leaves it, when a
    // shutdown's hand-back runs: one of the two settles it, once.
    let delivery = shared.register();
    let item = crate::logger::queue::Item {
        session_id: "s".into(),
        event: crate::logger::queue::Payload::Ready(Event::tool("t").event_id("e")),
        footprint: 0,
        json_at_least: 0,
    };
    delivery.batch.lock().slots.push(Slot::Queued(item));
    shared.in_flight.fetch_add(1, Ordering::SeqCst);
    assert!(shared.stop(Life::ShutDown));
    assert_eq!(shared.hand_back_unsettled("stopped"), 1);
    shared.serialize(&delivery);
    shared.settle_failed(&delivery, 0..1, &Error::invalid("event", "too large"));
    assert_eq!(shared.counters.failed.load(Ordering::SeqCst), 1);
    let report = shared.report(true, 0);
    assert_eq!(report.dead_letters.len(), 1);
    assert_eq!(report.dead_letters[0].reason, "stopped");
    assert_eq!(report.stats.pending, 0);
}

#[cfg(feature = "tracing")]
#[tokio::test(flavor = "current_thread")]
async fn in_batches_a_tree_built_when_taken_without_an_event_type_is_a_letter_with_its_body() {
    let (script, logger) = batched(LoggerConfig::default(), 1 << 20, |ids, _| {
        ready(recorded(ids))
    });
    assert!(logger.log_later(
        "s".into(),
        0,
        Box::new(|| Event::default().name("built-late").event_id("late")),
    ));
    logger.log("s", Event::tool("t").event_id("fine")).unwrap();
    let report = logger.shutdown(Duration::from_secs(5)).await;
    assert_eq!((report.stats.sent, report.stats.failed), (1, 1));
    let letter = &report.dead_letters[0];
    assert_eq!(letter.event_id.as_deref(), Some("late"));
    assert_eq!(letter.event_json()["event_name"], "built-late");
    assert!(letter.reason.contains("event_type"), "{}", letter.reason);
    assert_eq!(batches(&script), [["fine"]]);
}
