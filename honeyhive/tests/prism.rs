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

mod support;

use honeyhive::{Client, Event, SessionId};
use serde_json::json;
use support::full_event;

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
