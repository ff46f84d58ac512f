//! Test support shared by the integration tests.

#![allow(dead_code)] // each test binary uses part of it

use std::time::{Duration, UNIX_EPOCH};

use honeyhive::Event;
use serde_json::json;

pub mod fault_server;
pub mod h2c;
pub mod http;
pub mod limiters;
pub mod runs_server;

/// A plain reqwest client for requests the crate's client would not send
/// (rustls with ring, as the crate's).
pub fn bare_client() -> reqwest::Client {
    #[allow(deprecated)] // ring, as the client has it (see client/builder.rs)
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A request to the mock with its key, sent by hand (`body` as JSON when
/// given): the status and the JSON answer (`Null` for none).
pub async fn call_mock(
    mock: &honeyhive::testing::MockHoneyHive,
    method: reqwest::Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut request = bare_client()
        .request(method, format!("{}{path}", mock.base_url()))
        .bearer_auth(honeyhive::testing::MockHoneyHive::API_KEY);
    if let Some(body) = body {
        request = request.json(body);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (
        status,
        answer.json().await.unwrap_or(serde_json::Value::Null),
    )
}

/// A loopback port nothing listens on: bound, then freed at once.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("loopback has a free port")
        .port()
}

/// A cheap deterministic hash, so that fault patterns are the same every run.
pub fn mix(n: usize) -> u64 {
    let mut x = n as u64 ^ 0x9E37_79B9_7F4A_7C15;
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Every field of the API page set, with two levels of children.
pub fn full_event() -> Event {
    let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
    Event::chain("answer-question")
        .event_id("evt-root")
        .project("support-bot")
        .source("production")
        .session_id("s-1")
        .error("rate limited by the model provider")
        .start_time(at(1_700_000_000_123))
        .end_time(at(1_700_000_001_373))
        .duration(Duration::from_millis(1250))
        .inputs(json!({"question": "Where is my order?"}))
        .outputs(json!({"answer": "It ships today."}))
        .config(json!({"temperature": 0.2, "model": "gpt-4o"}))
        .metadata(json!({"region": "eu"}))
        .metrics(json!({"tokens": 512}))
        .feedback(json!({"rating": 5}))
        .user_properties(json!({"plan": "pro"}))
        .child(
            Event::model("gpt-4o")
                .event_id("evt-model")
                .duration(Duration::from_micros(1500))
                .child(
                    Event::tool("order-lookup")
                        .event_id("evt-tool")
                        .outputs(json!({"status": "shipped"})),
                ),
        )
}

/// A task aborted when this is dropped: a test server's accept loop.
pub struct Aborting(pub tokio::task::JoinHandle<()>);

impl Drop for Aborting {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Binds 127.0.0.1 on a free port and serves each connection with `serve`,
/// in a task of its own. The connection tasks live in the accept task's
/// set, so dropping the returned [`Aborting`] stops them all.
pub async fn serve_loopback<F, Fut>(serve: F) -> (std::net::SocketAddr, Aborting)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("bound address");
    let accept = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(serve(stream));
                    }
                    Err(_) => break,
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    });
    (addr, Aborting(accept))
}
