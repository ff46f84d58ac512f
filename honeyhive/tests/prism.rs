//! Requests checked by an independent validator: Stoplight Prism, run as
//! `prism mock --errors openapi.yaml` on loopback by `.ci/run`, which sets
//! `HONEYHIVE_PRISM_URL`. Prism answers 4xx to anything off the spec.
//!
//! Run by hand:
//! ```text
//! npm ci --prefix .ci
//! .ci/node_modules/.bin/prism mock --errors -h 127.0.0.1 -p 4010 openapi.yaml &
//! HONEYHIVE_PRISM_URL=http://127.0.0.1:4010 cargo test -p honeyhive --test prism -- --ignored
//! ```

use std::time::{Duration, UNIX_EPOCH};

use honeyhive::{Client, Event, SessionId};
use serde_json::json;

fn prism_client() -> Client {
    let url = std::env::var("HONEYHIVE_PRISM_URL").expect(
        "set HONEYHIVE_PRISM_URL to a running `prism mock --errors openapi.yaml` (.ci/run does)",
    );
    Client::builder()
        .api_key("prism-test-key")
        .base_url(url)
        .build()
        .expect("HONEYHIVE_PRISM_URL is a loopback URL")
}

fn full_event() -> Event {
    let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
    Event::chain("answer-question")
        .project("support-bot")
        .source("ci")
        .session_id("prism-session")
        .error("none")
        .start_time(at(1_700_000_000_000))
        .end_time(at(1_700_000_000_900))
        .duration(Duration::from_micros(900_500))
        .inputs(json!({"question": "Where is my order?"}))
        .outputs(json!({"answer": "It ships today."}))
        .config(json!({"temperature": 0.2}))
        .metadata(json!({"region": "eu"}))
        .metrics(json!({"tokens": 512}))
        .feedback(json!({"rating": 5}))
        .user_properties(json!({"plan": "pro"}))
        .child(
            Event::model("gpt-4o")
                .child(Event::tool("order-lookup").outputs(json!({"status": "shipped"}))),
        )
}

#[tokio::test]
#[ignore = "needs Prism; .ci/run starts it"]
async fn prism_accepts_a_full_event() {
    let logged = prism_client()
        .log_event(SessionId::new(), full_event())
        .await
        .unwrap();
    assert!(!logged.event_id.is_empty());
}

#[tokio::test]
#[ignore = "needs Prism; .ci/run starts it"]
async fn prism_accepts_a_minimal_event_and_awkward_session_ids() {
    let client = prism_client();
    for id in ["plain", "with space", "a/b", "café-☕"] {
        client.log_event(id, Event::tool("search")).await.unwrap();
    }
}

/// Proves the validator is really validating: run apart from the tests above
/// so that its deliberate violations do not count against them.
#[tokio::test]
#[ignore = "needs Prism; .ci/run starts it"]
async fn prism_refuses_a_missing_key_and_a_bad_body() {
    let url = std::env::var("HONEYHIVE_PRISM_URL").expect("set HONEYHIVE_PRISM_URL");
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    let bare = reqwest::Client::new();

    let no_key = bare
        .post(format!("{url}/session/s/event"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status().as_u16(), 401);

    let bad_body = bare
        .post(format!("{url}/session/s/event"))
        .bearer_auth("k")
        .json(&json!({"duration": "slow"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_body.status().as_u16(), 422);
}
