//! Retries under injected faults: nothing lost, nothing recorded twice,
//! every failure typed and on time.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use honeyhive::api::types;
use honeyhive::{Client, Error, Event, RetryPolicy};
use support::fault_server::{Fault, FaultServer};

const KEY: &str = "hh-retry-suite-secret-key";

fn client(server: &FaultServer, policy: RetryPolicy, timeout: Duration) -> Client {
    Client::builder()
        .api_key(KEY)
        .base_url(server.base_url())
        .timeout(timeout)
        .retry_policy(policy)
        .build()
        .expect("loopback URL and key")
}

/// Quick backoff, so that the suite spends its time on faults, not sleeps.
fn fast_policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_backoff(Duration::from_millis(2))
        .with_max_backoff(Duration::from_millis(20))
}

fn assert_no_key(err: &Error) {
    let shown = format!("{err} | {err:?}");
    assert!(!shown.contains(KEY), "the API key leaked: {shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_on_30_percent_of_requests_lose_and_duplicate_nothing() {
    const EVENTS: usize = 500;
    let transient = [
        Fault::TooManyRequests("0".into()),
        Fault::Unavailable,
        Fault::Internal,
        Fault::BadGatewayHtml,
        Fault::Drop { processed: false },
        Fault::Drop { processed: true },
        Fault::Slow(Duration::from_millis(400)),
        Fault::Truncated,
    ];
    let kinds = transient.clone();
    // 30% of requests fail, each event at most 3 times, so 4 attempts are
    // always enough and the outcome does not depend on luck.
    let server = FaultServer::start(move |arrival| {
        let roll = support::mix(arrival.number);
        if arrival.seen_before < 3 && roll % 100 < 30 {
            kinds[(roll / 100) as usize % kinds.len()].clone()
        } else {
            Fault::None
        }
    })
    .await;
    let client = client(
        &server,
        fast_policy().with_max_attempts(6),
        Duration::from_millis(150),
    );

    let limit = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    for i in 0..EVENTS {
        let client = client.clone();
        let limit = Arc::clone(&limit);
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire().await.expect("semaphore open");
            client
                .log_event(
                    format!("session-{}", i % 7),
                    Event::tool("t").metadata(serde_json::json!({"i": i})),
                )
                .await
        }));
    }
    let mut logged = Vec::new();
    for task in tasks {
        logged.push(
            task.await
                .expect("task ran")
                .expect("every event is delivered"),
        );
    }

    let sent: HashSet<String> = logged.iter().map(|l| l.event_id.clone()).collect();
    assert_eq!(sent.len(), EVENTS, "each event has its own id");
    let recorded = server.recorded();
    assert_eq!(recorded.len(), EVENTS, "every event recorded exactly once");
    assert_eq!(recorded.into_iter().collect::<HashSet<_>>(), sent);
    for id in &sent {
        let bodies = server.bodies(id);
        assert!(
            bodies.windows(2).all(|w| w[0] == w[1]),
            "every attempt of {id} sent the same bytes"
        );
    }

    let faults = server.faults();
    let faulted: usize = faults
        .iter()
        .filter(|(f, _)| **f != Fault::None)
        .map(|(_, n)| n)
        .sum();
    let attempts: u32 = logged.iter().map(|l| l.attempts).sum();
    assert_eq!(
        attempts as usize,
        server.requests(),
        "the client counts what the server saw"
    );
    assert_eq!(
        attempts as usize - EVENTS,
        faulted,
        "one extra attempt per injected fault"
    );
    let share = faulted as f64 / server.requests() as f64;
    assert!(
        (0.2..0.4).contains(&share),
        "about 30% of requests faulted, got {share:.2}"
    );
    for kind in &transient {
        assert!(
            faults.get(kind).copied().unwrap_or(0) > 0,
            "{kind:?} was injected: {faults:?}"
        );
    }
}

type IsExpected = fn(&Error) -> bool;

#[tokio::test]
async fn permanent_faults_end_in_the_right_error_within_the_deadline() {
    permanent_faults_end_in_the_right_error(Event::model("m")).await;
}

#[tokio::test]
async fn permanent_faults_to_a_large_body_end_the_same() {
    // From 64 KiB a body goes on the client's own connections
    // (client/linger.rs): the same errors, attempts and deadline.
    let large = Event::model("m").inputs(serde_json::json!({"blob": "x".repeat(300 * 1024)}));
    permanent_faults_end_in_the_right_error(large).await;
}

/// A dropped connection makes the next attempt ask first and hold its body
/// back: for half the attempt's time at most, so a large body still goes.
async fn permanent_faults_end_in_the_right_error(event: Event) {
    let deadline = Duration::from_secs(1);
    let cases: Vec<(Fault, IsExpected)> = vec![
        (Fault::Unavailable, |e| {
            matches!(e, Error::Api { status: 503, .. })
        }),
        (Fault::Internal, |e| {
            matches!(e, Error::Api { status: 500, .. })
        }),
        (
            Fault::BadGatewayHtml,
            |e| matches!(e, Error::Api { status: 502, body, .. } if body.contains("<h1>")),
        ),
        (Fault::Drop { processed: false }, |e| {
            matches!(e, Error::Transport { .. })
        }),
        (Fault::Truncated, |e| matches!(e, Error::Transport { .. })),
        (Fault::Slow(Duration::from_secs(3)), |e| {
            matches!(e, Error::Timeout { .. })
        }),
    ];
    for (fault, expected) in cases {
        let server = FaultServer::always(fault.clone()).await;
        let client = client(
            &server,
            fast_policy().with_max_attempts(3).with_deadline(deadline),
            Duration::from_millis(200),
        );
        let started = Instant::now();
        let err = client
            .log_event("s", event.clone())
            .await
            .expect_err("the fault is permanent");
        let took = started.elapsed();
        assert!(expected(&err), "{fault:?}: wrong error {err:?}");
        assert!(err.is_retryable(), "{fault:?}: a transient kind of failure");
        assert!(
            took < deadline + Duration::from_millis(300),
            "{fault:?}: took {took:?}"
        );
        assert_eq!(server.requests(), 3, "{fault:?}: max_attempts requests");
        assert_eq!(err.attempts(), Some(3), "{fault:?}: the error says so");
        assert_no_key(&err);
    }
}

#[tokio::test]
async fn a_server_that_throttles_is_retried_until_the_deadline_not_for_max_attempts() {
    let deadline = Duration::from_secs(1);
    let server = FaultServer::always(Fault::TooManyRequests("0".into())).await;
    let throttled = client(
        &server,
        fast_policy().with_max_attempts(3).with_deadline(deadline),
        Duration::from_millis(200),
    );
    let started = Instant::now();
    let err = throttled
        .log_event("s", Event::model("m"))
        .await
        .expect_err("the server throttles for ever");
    let took = started.elapsed();
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    assert!(took >= deadline - Duration::from_millis(50), "{took:?}");
    assert!(took < deadline + Duration::from_millis(300), "{took:?}");
    let requests = server.requests();
    assert!(
        requests > 3,
        "429s did not use up the 3 attempts: {requests}"
    );
    // Retry-After: 0, but the backoff (2 ms doubling to 20 ms) still
    // spaces the requests: about 50 in a second, not hundreds.
    assert!(requests < 200, "{requests} requests in {took:?}");
    assert_eq!(err.attempts(), Some(requests as u32));
    assert_no_key(&err);
    // RetryPolicy::none() sends once.
    let server = FaultServer::always(Fault::TooManyRequests("0".into())).await;
    let once = client(&server, RetryPolicy::none(), Duration::from_millis(200));
    let err = once.log_event("s", Event::model("m")).await.unwrap_err();
    assert_eq!((server.requests(), err.attempts()), (1, Some(1)));
}

#[tokio::test]
async fn the_deadline_cuts_retries_short() {
    let server = FaultServer::always(Fault::Unavailable).await;
    let policy = RetryPolicy::default()
        .with_max_attempts(1000)
        .with_initial_backoff(Duration::from_millis(40))
        .with_max_backoff(Duration::from_millis(40))
        .with_multiplier(1.0)
        .with_deadline(Duration::from_millis(500));
    let client = client(&server, policy, Duration::from_secs(5));
    let started = Instant::now();
    let err = client.log_event("s", Event::model("m")).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, Error::Api { status: 503, .. }), "{err:?}");
    assert!(took < Duration::from_millis(800), "took {took:?}");
    assert!(
        server.requests() > 5 && server.requests() < 1000,
        "{} requests",
        server.requests()
    );
}

#[tokio::test]
async fn the_deadline_bounds_a_slow_attempt_too() {
    let server = FaultServer::always(Fault::Slow(Duration::from_secs(5))).await;
    let client = client(
        &server,
        RetryPolicy::default().with_deadline(Duration::from_millis(300)),
        Duration::from_secs(30),
    );
    let started = Instant::now();
    let err = client.log_event("s", Event::model("m")).await.unwrap_err();
    assert!(
        matches!(err, Error::Timeout { attempt_timeout, attempts: 1, .. } if attempt_timeout <= Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(800));
}

/// Answers 429 with `retry_after` to the first request, 200 after that.
async fn retry_after_once(retry_after: String) -> FaultServer {
    FaultServer::start(move |arrival| {
        if arrival.seen_before == 0 {
            Fault::TooManyRequests(retry_after.clone())
        } else {
            Fault::None
        }
    })
    .await
}

#[tokio::test]
async fn retry_after_in_seconds_is_waited() {
    let server = retry_after_once("1".into()).await;
    let client = client(&server, fast_policy(), Duration::from_secs(5));
    let started = Instant::now();
    let logged = client.log_event("s", Event::model("m")).await.unwrap();
    let took = started.elapsed();
    assert_eq!(logged.attempts, 2);
    assert!(took >= Duration::from_secs(1), "waited only {took:?}");
    assert!(took < Duration::from_millis(1800), "waited {took:?}");
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_waited() {
    // HTTP dates have whole seconds: two seconds ahead is one to two
    // seconds away. The retry must not come before that date.
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    let date = httpdate::parse_http_date(&at).unwrap();
    let server = retry_after_once(at).await;
    let client = client(&server, fast_policy(), Duration::from_secs(5));
    let started = Instant::now();
    let logged = client.log_event("s", Event::model("m")).await.unwrap();
    let took = started.elapsed();
    assert_eq!(logged.attempts, 2);
    assert!(
        SystemTime::now() >= date,
        "retried before the date it was given"
    );
    assert!(took < Duration::from_millis(2800), "waited {took:?}");
}

#[tokio::test]
async fn retry_after_is_capped() {
    let server = retry_after_once("3600".into()).await;
    let policy = fast_policy().with_max_retry_after(Duration::from_millis(300));
    let client = client(&server, policy, Duration::from_secs(5));
    let started = Instant::now();
    let logged = client.log_event("s", Event::model("m")).await.unwrap();
    let took = started.elapsed();
    assert_eq!(logged.attempts, 2);
    assert!(took >= Duration::from_millis(300), "waited only {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "waited {took:?}: the cap was ignored"
    );
}

#[tokio::test]
async fn a_retry_after_past_the_deadline_is_not_waited_for() {
    let server = retry_after_once("30".into()).await;
    let policy = fast_policy().with_deadline(Duration::from_millis(500));
    let client = client(&server, policy, Duration::from_secs(5));
    let started = Instant::now();
    let err = client.log_event("s", Event::model("m")).await.unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(400));
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn other_4xx_are_sent_exactly_once() {
    for status in [400, 401, 403, 404, 405, 409, 410, 413, 415, 422] {
        let server = FaultServer::always(Fault::Status(status)).await;
        let client = client(&server, fast_policy(), Duration::from_secs(5));
        let err = client.log_event("s", Event::model("m")).await.unwrap_err();
        assert_eq!(server.requests(), 1, "{status} was retried");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
        assert!(!err.is_retryable(), "{status}");
        let right_variant = match status {
            401 | 403 => matches!(err, Error::Unauthorized { .. }),
            _ => matches!(err, Error::Api { .. }),
        };
        assert!(right_variant, "{status}: {err:?}");
        assert_no_key(&err);
    }
}

#[tokio::test]
async fn retryable_statuses_are_retried() {
    for status in [408, 429, 500, 502, 503, 504] {
        let server = FaultServer::start(move |arrival| {
            if arrival.seen_before == 0 {
                Fault::Status(status)
            } else {
                Fault::None
            }
        })
        .await;
        let client = client(&server, fast_policy(), Duration::from_secs(5));
        let logged = client.log_event("s", Event::model("m")).await.unwrap();
        assert_eq!(logged.attempts, 2, "{status}");
    }
}

#[tokio::test]
async fn no_retries_means_one_request() {
    let server = FaultServer::always(Fault::Unavailable).await;
    let client = client(&server, RetryPolicy::none(), Duration::from_secs(5));
    client.log_event("s", Event::model("m")).await.unwrap_err();
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn input_errors_send_nothing_and_name_the_fix() {
    let server = FaultServer::always(Fault::None).await;
    let small = Client::builder()
        .api_key(KEY)
        .base_url(server.base_url())
        .max_body_bytes(200)
        .build()
        .unwrap();
    let cases = [
        (
            Event::model("m").inputs(serde_json::json!({"text": "x".repeat(500)})),
            "event",
            "max_body_bytes",
        ),
        (
            Event::model("m").metrics(Cost { usd: f64::NAN }),
            "metrics.usd",
            "finite",
        ),
        (
            Event::model("m").start_time_ms(10.0).end_time_ms(5.0),
            "end_time",
            "at or after start_time",
        ),
        (Event::model("m").feedback(7), "feedback", "JSON object"),
    ];
    for (event, expected_field, fix) in cases {
        match small.log_event("s", event).await {
            Err(Error::InvalidInput { field, problem, .. }) => {
                assert_eq!(field, expected_field);
                assert!(problem.contains(fix), "{field}: {problem}");
            }
            other => panic!("{expected_field}: expected InvalidInput, got {other:?}"),
        }
    }
    assert_eq!(server.requests(), 0);
}

#[derive(serde::Serialize)]
struct Cost {
    usd: f64,
}

#[test]
fn configs_print_without_the_key() {
    let builder = Client::builder()
        .api_key(KEY)
        .retry_policy(RetryPolicy::none());
    let client = builder.clone().build().unwrap();
    for shown in [
        format!("{builder:?}"),
        format!("{client:?}"),
        format!("{:?}", RetryPolicy::default()),
    ] {
        assert!(!shown.contains(KEY), "{shown}");
    }
}

#[tokio::test]
async fn durations_too_long_to_add_mean_no_limit_instead_of_a_panic() {
    // A deadline of Duration::MAX is no deadline, and so is a timeout of it.
    let server = retry_after_once("0".into()).await;
    let unlimited = client(
        &server,
        fast_policy().with_deadline(Duration::MAX),
        Duration::MAX,
    );
    let logged = unlimited.log_event("s", Event::model("m")).await.unwrap();
    assert_eq!(logged.attempts, 2);

    // No cap on Retry-After, and a server asking for u64::MAX seconds: the
    // wait is past the 60 s deadline, so the call ends at once.
    let forever = u64::MAX.to_string();
    let server = FaultServer::always(Fault::TooManyRequests(forever)).await;
    let capless = client(
        &server,
        fast_policy().with_max_retry_after(Duration::MAX),
        Duration::from_secs(5),
    );
    let started = Instant::now();
    match capless.log_event("s", Event::model("m")).await {
        Err(Error::RateLimited {
            retry_after,
            attempts,
            ..
        }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(u64::MAX)));
            assert_eq!(attempts, 1);
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
}

fn raw_event(id: &str) -> types::builder::Event {
    types::Event::builder()
        .event_id(id.to_string())
        .event_name("raw".to_string())
}

#[tokio::test]
async fn generated_calls_are_retried_with_the_same_bytes() {
    let server = FaultServer::start(|arrival| {
        if arrival.seen_before < 2 {
            Fault::Unavailable
        } else {
            Fault::None
        }
    })
    .await;
    let client = client(&server, fast_policy(), Duration::from_secs(5));
    let answer = client
        .raw()
        .log_event()
        .session_id("raw-session")
        .body(raw_event("raw-1"))
        .send()
        .await
        .expect("two 503s, then the answer");
    assert!(answer.success);
    assert_eq!(server.requests(), 3);
    let bodies = server.bodies("raw-1");
    assert_eq!(bodies.len(), 3);
    assert!(bodies.windows(2).all(|pair| pair[0] == pair[1]));
    assert_eq!(server.recorded(), ["raw-1"]);
}

#[tokio::test]
async fn generated_calls_keep_the_deadline_and_are_not_retried_on_other_4xx() {
    let server = FaultServer::always(Fault::Unavailable).await;
    let policy = fast_policy()
        .with_max_attempts(1000)
        .with_deadline(Duration::from_millis(300));
    let started = Instant::now();
    let err = client(&server, policy, Duration::from_secs(5))
        .raw()
        .log_event()
        .session_id("raw-session")
        .body(raw_event("raw-2"))
        .send()
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(800));
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503), "{err:?}");
    assert!(server.requests() > 3, "{} requests", server.requests());

    let refused = FaultServer::always(Fault::Status(422)).await;
    let err = client(&refused, fast_policy(), Duration::from_secs(5))
        .raw()
        .log_event()
        .session_id("raw-session")
        .body(raw_event("raw-3"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(422));
    assert_eq!(refused.requests(), 1);
}

#[tokio::test]
async fn generated_calls_get_error_bodies_without_the_key() {
    let server = httpmock::MockServer::start_async().await;
    server
        .mock_async(|_when, then| {
            then.status(400)
                .header("content-type", "application/json")
                .body(format!(
                    r#"{{"error":"bad key {KEY}","detail":"{}"}}"#,
                    "d".repeat(3000)
                ));
        })
        .await;
    let client = Client::builder()
        .api_key(KEY)
        .base_url(server.base_url())
        .build()
        .unwrap();
    let err = client
        .raw()
        .log_event()
        .session_id("raw-session")
        .body(raw_event("raw-4"))
        .send()
        .await
        .unwrap_err();
    let honeyhive::api::Error::UnexpectedResponse(response) = err else {
        panic!("expected the answer back, got {err:?}")
    };
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        response.url().as_str(),
        server.url("/session/raw-session/event"),
        "the answer keeps the URL it came from"
    );
    let body = response.text().await.unwrap();
    // Whole (up to 64 KiB is kept), with the key redacted.
    let detail = "d".repeat(3000);
    assert_eq!(
        body,
        format!(r#"{{"error":"bad key [redacted]","detail":"{detail}"}}"#)
    );
}

#[tokio::test]
async fn generated_v1_calls_are_retried_with_the_same_bytes_too() {
    let server = FaultServer::start(|arrival| {
        if arrival.seen_before < 2 {
            Fault::Internal
        } else {
            Fault::None
        }
    })
    .await;
    let client = client(&server, fast_policy(), Duration::from_secs(5));
    // Ids the client chose, event and session, make a repeat safe.
    let event = |id: &str| {
        types::PostEventRequest::builder()
            .event_id(id.to_owned())
            .session_id("v1-session".to_owned())
            .event_type(types::PostEventRequestEventType::Tool)
            .inputs(serde_json::Map::new())
    };
    let answer = client
        .raw()
        .create_event_batch()
        .body(types::PostEventBatchRequest::builder().events(vec![
            event("v1-a").try_into().unwrap(),
            event("v1-b").try_into().unwrap(),
        ]))
        .send()
        .await
        .expect("two 500s, then the answer");
    assert!(answer.success);
    assert_eq!(server.requests(), 3);
    let bodies = server.bodies("v1-b");
    assert_eq!(bodies.len(), 3);
    assert!(bodies.windows(2).all(|pair| pair[0] == pair[1]));
}
