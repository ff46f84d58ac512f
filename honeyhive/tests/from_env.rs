//! `Client::from_env` and `ClientBuilder::from_env` read the process
//! environment. Setting it is unsafe in a threaded test binary, so the test
//! runs a child process (this binary, one ignored test) with the variables
//! set, against mock servers the parent started.

use std::process::Command;

use honeyhive::{Client, ClientBuilder, Error, Event};
use httpmock::{Method::POST, MockServer};
use serde_json::json;

#[tokio::test]
async fn from_env_takes_key_url_project_source_and_retries_from_the_environment() {
    let server = MockServer::start_async().await;
    let recorded = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/session/s-1/event")
                .header("authorization", "Bearer hh-from-env")
                .json_body_includes(r#"{"project": "env-project", "source": "env-source"}"#);
            then.status(200)
                .header("content-type", "application/json")
                .json_body(json!({"event_id": "e", "success": true}));
        })
        .await;
    let failing = MockServer::start_async().await;
    let busy = failing
        .mock_async(|when, then| {
            when.method(POST);
            then.status(503).body("busy");
        })
        .await;

    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_logs_with_the_environment", "--ignored"])
        .args(["--nocapture", "--test-threads=1"])
        .env("HH_API_KEY", "hh-from-env")
        .env("HH_API_URL", server.base_url())
        .env("HH_PROJECT", "env-project")
        .env("HH_SOURCE", "env-source")
        .env("HH_MAX_RETRIES", "0")
        .env("FAILING_URL", failing.base_url())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("1 passed"),
        "{output:?}"
    );
    // The key, project and source came from the environment...
    recorded.assert_async().await;
    // ...and HH_MAX_RETRIES=0 meant one attempt at an answer worth retrying.
    busy.assert_calls_async(1).await;
}

/// Run by the test above, with the variables set.
#[tokio::test]
#[ignore = "a child process of from_env_takes_key_url_project_source_and_retries_from_the_environment"]
async fn child_logs_with_the_environment() {
    let Ok(failing) = std::env::var("FAILING_URL") else {
        panic!(
            "run only by from_env_takes_key_url_project_source_and_retries_from_the_environment"
        );
    };
    let client = Client::from_env().expect("every variable is valid");
    assert_eq!(client.base_url(), std::env::var("HH_API_URL").unwrap());
    client
        .log_event("s-1", Event::model("m"))
        .await
        .expect("the mock matches the key, project and source");

    let err = ClientBuilder::from_env()
        .expect("valid")
        .base_url(failing)
        .build()
        .expect("valid")
        .log_event("s-1", Event::model("m"))
        .await
        .expect_err("503");
    assert!(
        matches!(err, Error::Api { status, .. } if status == 503),
        "{err:?}"
    );
    assert_eq!(err.attempts(), Some(1));
}
