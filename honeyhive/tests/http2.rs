//! HTTP/2: with `http2_prior_knowledge()`, a Logger's many requests in
//! flight share one cleartext HTTP/2 connection, and more open only when
//! each open one carries `streams_per_connection` requests.
//!
//! Which connection a request takes is this crate's choice (one reqwest
//! client per connection, `client/spread.rs`); each client's pool is
//! hyper's, which now and then opens a spare connection when requests race
//! its first one. So the tests bound the connections from both sides and
//! check the streams each carried, rather than count them exactly.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use honeyhive::{Client, Event, Logger, LoggerConfig};
use support::h2c::{H2cCounts, serve};
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_prior_knowledge_many_requests_in_flight_share_one_h2c_connection() {
    // 64 in flight, the default 100 streams per connection: one client.
    let (connections, busiest) = connections_for_64_in_flight(Client::builder()).await;
    assert!((1..=2).contains(&connections), "{connections}");
    assert!(busiest > 32, "most requests shared a connection: {busiest}");
}

/// Logs 300 events 64 at a time through a client made by `builder` on an
/// h2c server; gives the connections the server accepted and the most
/// requests one of them carried at once.
async fn connections_for_64_in_flight(builder: honeyhive::ClientBuilder) -> (u64, u64) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let counts = Arc::new(H2cCounts::default());
    let server = tokio::spawn(serve(
        listener,
        Duration::from_millis(20),
        Arc::clone(&counts),
    ));
    let client = builder
        .api_key("hh-h2")
        .base_url(&url)
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let logger = Logger::new(
        &client,
        LoggerConfig::default()
            .adaptive_concurrency(false)
            .max_in_flight(64),
    )
    .unwrap();
    for i in 0..300 {
        logger.log("s", Event::tool(format!("t{i}"))).unwrap();
    }
    let report = logger.shutdown(Duration::from_secs(20)).await;
    assert!(report.complete, "{:?}", report.stats);
    assert_eq!(report.stats.sent, 300);
    assert_eq!(counts.http2_requests.load(Ordering::Relaxed), 300);
    assert_eq!(counts.other_requests.load(Ordering::Relaxed), 0);
    server.abort();
    (
        counts.connections.load(Ordering::Relaxed),
        counts.busiest.load(Ordering::SeqCst),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_opens_only_when_the_open_ones_carry_their_streams() {
    // 64 in flight, 16 per connection: four connections, not more, though
    // eight are allowed.
    let builder = Client::builder()
        .streams_per_connection(16)
        .max_connections(8);
    let (connections, busiest) = connections_for_64_in_flight(builder).await;
    assert!((4..=6).contains(&connections), "{connections}");
    assert!(busiest <= 16, "a connection carried {busiest} at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_requests_share_the_open_ones() {
    let builder = Client::builder()
        .streams_per_connection(16)
        .max_connections(2);
    let (connections, busiest) = connections_for_64_in_flight(builder).await;
    assert!((2..=3).contains(&connections), "{connections}");
    assert!(
        busiest > 16,
        "past the cap, the two share the rest: {busiest}"
    );
}

#[test]
fn zero_connections_or_streams_are_refused_naming_the_setting() {
    for (builder, field) in [
        (Client::builder().max_connections(0), "max_connections"),
        (
            Client::builder().streams_per_connection(0),
            "streams_per_connection",
        ),
    ] {
        let err = builder.api_key("k").build().unwrap_err();
        match err {
            honeyhive::Error::InvalidInput { field: f, .. } => assert_eq!(f, field),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn without_prior_knowledge_a_cleartext_url_speaks_http_1_1() {
    // An h2c-only server cannot answer an HTTP/1.1 request: the call fails
    // as a transport error, which shows the client did not speak HTTP/2.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let counts = Arc::new(H2cCounts::default());
    let server = tokio::spawn(serve(listener, Duration::ZERO, Arc::clone(&counts)));
    let client = Client::builder()
        .api_key("hh-h2")
        .base_url(&url)
        .retry_policy(honeyhive::RetryPolicy::none())
        .build()
        .unwrap();
    let err = client.log_event("s", Event::tool("t")).await.unwrap_err();
    assert!(matches!(err, honeyhive::Error::Transport { .. }), "{err:?}");
    assert_eq!(counts.http2_requests.load(Ordering::Relaxed), 0);
    server.abort();
}
