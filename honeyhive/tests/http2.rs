//! HTTP/2: with `http2_prior_knowledge()`, a Logger's many requests in
//! flight share one cleartext HTTP/2 connection.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use honeyhive::{Client, Event, LoggerConfig};
use support::h2c::{H2cCounts, serve};
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_prior_knowledge_many_requests_in_flight_share_one_h2c_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let counts = Arc::new(H2cCounts::default());
    let server = tokio::spawn(serve(
        listener,
        Duration::from_millis(20),
        Arc::clone(&counts),
    ));

    let client = Client::builder()
        .api_key("hh-h2")
        .base_url(&url)
        .http2_prior_knowledge()
        .build()
        .unwrap();
    client
        .log_event("s", Event::tool("first"))
        .await
        .expect("h2c answer");
    let logger = client
        .logger(
            LoggerConfig::default()
                .with_adaptive_concurrency(false)
                .with_max_in_flight(64),
        )
        .unwrap();
    for i in 0..500 {
        logger.log("s", Event::tool(format!("t{i}"))).unwrap();
    }
    let report = logger.shutdown(Duration::from_secs(20)).await;
    assert!(report.complete, "{:?}", report.stats);
    assert_eq!(report.stats.sent, 500);
    assert_eq!(counts.http2_requests.load(Ordering::Relaxed), 501);
    assert_eq!(counts.other_requests.load(Ordering::Relaxed), 0);
    assert_eq!(
        counts.connections.load(Ordering::Relaxed),
        1,
        "one connection for 64 in flight"
    );
    server.abort();
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
