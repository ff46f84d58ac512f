//! `MockHoneyHive` holds requests to the spec: it accepts what the spec
//! allows, refuses the rest with a 4xx naming the violation, and records
//! what it accepted.

mod support;

use honeyhive::StatusCode;
use honeyhive::testing::MockHoneyHive;
use honeyhive::{Client, Error, Event, SessionId};
use serde_json::{Value, json};
use support::bare_client;

/// Posts with a bare reqwest client, so each test controls every header.
async fn post(
    mock: &MockHoneyHive,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let mut request = bare_client()
        .post(format!("{}{path}", mock.base_url()))
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

const AUTH: (&str, &str) = ("authorization", "Bearer hh-mock-key");
const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn accepts_and_records_what_the_client_sends() {
    let mock = MockHoneyHive::start_async().await;
    let client = mock.client().unwrap();
    let session = SessionId::new();
    let logged = client
        .log_event(
            &session,
            Event::chain("c")
                .error("boom")
                .child(Event::model("m").inputs(json!({"a": 1}))),
        )
        .await
        .unwrap();

    let events = mock.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].session_id, session.as_str());
    assert_eq!(events[0].event["event_id"], logged.event_id.as_str());
    assert_eq!(events[0].event["children"][0]["inputs"], json!({"a": 1}));
    assert_eq!(
        serde_json::from_slice::<Value>(&events[0].body).unwrap(),
        events[0].event
    );
    assert!(mock.violations().is_empty());
}

#[tokio::test]
async fn decodes_the_session_id_in_the_path() {
    let mock = MockHoneyHive::start_async().await;
    mock.client()
        .unwrap()
        .log_event("a b/c ☕", Event::tool("t"))
        .await
        .unwrap();
    assert_eq!(mock.events()[0].session_id, "a b/c ☕");
}

#[tokio::test]
async fn a_wrong_key_gets_401_and_the_client_says_unauthorized() {
    let mock = MockHoneyHive::start_async().await;
    let client = Client::builder()
        .api_key("not-the-key")
        .base_url(mock.base_url())
        .build()
        .unwrap();
    let err = client.log_event("s", Event::tool("t")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unauthorized {
                status: StatusCode::UNAUTHORIZED,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(mock.events().is_empty());
    assert!(
        mock.violations()[0].message.contains("bearer token"),
        "{:?}",
        mock.violations()
    );
}

#[tokio::test]
async fn missing_or_malformed_authorization_is_refused() {
    let mock = MockHoneyHive::start_async().await;
    let (status, body) = post(&mock, "/session/s/event", &[JSON], "{}").await;
    assert_eq!(status, 401);
    assert!(
        body["violation"].as_str().unwrap().contains("missing"),
        "{body}"
    );
    let (status, body) = post(
        &mock,
        "/session/s/event",
        &[("authorization", "hh-mock-key"), JSON],
        "{}",
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        body["violation"].as_str().unwrap().contains("Bearer <key>"),
        "{body}"
    );
}

#[tokio::test]
async fn a_body_off_the_schema_is_refused_naming_the_field() {
    let mock = MockHoneyHive::start_async().await;
    let cases = [
        (r#"{"duration":"12ms"}"#, "/duration"),
        (r#"{"inputs":"text"}"#, "/inputs"),
        (
            r#"{"children":[{"start_time":true}]}"#,
            "/children/0/start_time",
        ),
        (r#"{"event_name":null}"#, "/event_name"),
    ];
    for (body, pointer) in cases {
        let (status, answer) = post(&mock, "/session/s/event", &[AUTH, JSON], body).await;
        assert_eq!(status, 400, "{body}");
        let violation = answer["violation"].as_str().unwrap();
        assert!(violation.contains(pointer), "{body}: {violation}");
    }
    // The two nullable fields may be null.
    let (status, _) = post(
        &mock,
        "/session/s/event",
        &[AUTH, JSON],
        r#"{"error":null,"session_id":null}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(mock.violations().len(), cases.len());
    assert_eq!(mock.events().len(), 1);
}

#[tokio::test]
async fn not_json_wrong_type_wrong_path_and_wrong_method_are_refused() {
    let mock = MockHoneyHive::start_async().await;
    let (status, _) = post(&mock, "/session/s/event", &[AUTH, JSON], "{not json").await;
    assert_eq!(status, 400);
    let (status, _) = post(
        &mock,
        "/session/s/event",
        &[AUTH, ("content-type", "text/plain")],
        "{}",
    )
    .await;
    assert_eq!(status, 415);
    let (status, _) = post(&mock, "/sessions/s/event", &[AUTH, JSON], "{}").await;
    assert_eq!(status, 404);
    let (status, _) = post(&mock, "/session//event", &[AUTH, JSON], "{}").await;
    assert_eq!(status, 400);
    let response = bare_client()
        .get(format!("{}/session/s/event", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let statuses: Vec<u16> = mock
        .violations()
        .iter()
        .map(|v| v.status.as_u16())
        .collect();
    assert_eq!(statuses, [400, 415, 404, 400, 405]);
    assert!(mock.events().is_empty());
}

#[test]
fn starts_outside_a_runtime_and_listens_on_loopback() {
    let mock = MockHoneyHive::start();
    assert!(
        mock.base_url().starts_with("http://127.0.0.1:"),
        "{}",
        mock.base_url()
    );
}

#[tokio::test]
async fn stats_count_requests_events_and_violations_and_are_served_as_json() {
    let mock = MockHoneyHive::start_async().await;
    let client = mock.client().unwrap();
    client.log_event("s", Event::tool("a")).await.unwrap();
    client.log_event("s", Event::tool("b")).await.unwrap();
    let (status, _) = post(&mock, "/session/s/event", &[], "{}").await;
    assert_eq!(status, 401);

    // Taking the events empties the list but not the count.
    assert_eq!(mock.take_events().len(), 2);
    assert!(mock.events().is_empty());
    let stats = mock.stats();
    assert_eq!((stats.requests, stats.events, stats.violations), (3, 2, 1));

    let answer = bare_client()
        .get(format!("{}{}", mock.base_url(), MockHoneyHive::STATS_PATH))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        body,
        json!({"requests": 3, "events": 2, "sessions": 0, "updates": 0, "violations": 1})
    );
    // Asking for stats is not a request to the API.
    assert_eq!(mock.stats().requests, 3);
}
