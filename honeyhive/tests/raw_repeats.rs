//! Which generated calls `client.raw()` sends again after a 500: those a
//! repeat cannot harm (idempotent methods, POSTs carrying the ids of what
//! they create), never another POST.

use std::time::Duration;

use honeyhive::api::types;
use honeyhive::{Client, RetryPolicy};
use httpmock::{Method, MockServer};
use serde_json::json;

const ATTEMPTS: u32 = 3;

fn client(server: &MockServer) -> Client {
    Client::builder()
        .api_key("hh-raw-repeats-key")
        .base_url(server.base_url())
        .retry_policy(
            RetryPolicy::default()
                .max_attempts(ATTEMPTS)
                .initial_backoff(Duration::from_millis(1))
                .max_backoff(Duration::from_millis(5)),
        )
        .build()
        .expect("a loopback URL and a key make a valid client")
}

async fn failing<'a>(server: &'a MockServer, method: Method, path: &str) -> httpmock::Mock<'a> {
    server
        .mock_async(|when, then| {
            when.method(method).path(path);
            then.status(500).body("down");
        })
        .await
}

#[tokio::test]
async fn an_idempotent_call_is_retried_and_a_post_creating_under_server_ids_is_sent_once() {
    let server = MockServer::start_async().await;
    let list = failing(&server, Method::GET, "/v1/datasets").await;
    let create = failing(&server, Method::POST, "/v1/datasets").await;
    let delete = failing(&server, Method::DELETE, "/v1/datasets/d-1").await;
    let client = client(&server);

    assert!(client.raw().get_datasets().send().await.is_err());
    assert_eq!(list.calls_async().await, ATTEMPTS as usize, "GET retried");
    assert!(
        client
            .raw()
            .delete_dataset()
            .dataset_id("d-1")
            .send()
            .await
            .is_err()
    );
    assert_eq!(
        delete.calls_async().await,
        ATTEMPTS as usize,
        "DELETE retried"
    );
    assert!(
        client
            .raw()
            .create_dataset()
            .body(types::CreateDatasetRequest::default())
            .send()
            .await
            .is_err()
    );
    assert_eq!(
        create.calls_async().await,
        1,
        "a repeat would make a second dataset"
    );
}

#[tokio::test]
async fn an_event_is_retried_only_when_its_body_names_its_ids() {
    let server = MockServer::start_async().await;
    let create = failing(&server, Method::POST, "/v1/events").await;
    let client = client(&server);
    let event = |fields: serde_json::Value| -> types::PostEventRequest {
        let mut event = json!({"event_type": "tool", "inputs": {"q": 1}});
        event
            .as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        serde_json::from_value(event).expect("a valid PostEventRequest")
    };

    let unnamed = event(json!({}));
    assert!(
        client
            .raw()
            .create_event()
            .body(unnamed)
            .send()
            .await
            .is_err()
    );
    assert_eq!(
        create.calls_async().await,
        1,
        "the server would pick new ids"
    );

    let named = event(json!({"event_id": "e-1", "session_id": "s-1"}));
    assert!(
        client
            .raw()
            .create_event()
            .body(named)
            .send()
            .await
            .is_err()
    );
    assert_eq!(
        create.calls_async().await,
        1 + ATTEMPTS as usize,
        "a repeat is the same event"
    );
}
