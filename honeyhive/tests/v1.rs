//! HoneyHive's `/v1` routes through the wrapper: the exact bytes on the
//! wire, what the spec-validating mock records, and the input refused
//! before anything is sent.

mod support;

use std::time::{Duration, UNIX_EPOCH};

use honeyhive::StatusCode;
use honeyhive::api::types;
use honeyhive::testing::MockHoneyHive;
use honeyhive::{Client, Error, Event, EventUpdate, SessionId, SessionStart};
use httpmock::{Method, MockServer};
use serde_json::{Value, json};
use support::full_event;

const KEY: &str = "hh-v1-key";
const SESSION: &str = "0b9f5c2e-8a1d-4c3b-9e7f-2d6a4b8c1e35";
const EVENT: &str = "7f22137a-6911-4ed3-bc36-110f1dde6b66";

fn client(server: &MockServer) -> Client {
    Client::builder()
        .api_key(KEY)
        .base_url(server.base_url())
        .build()
        .unwrap()
}

/// The full event of the contract tests, flat: the root, then each child
/// before its own children, linked by ids; `project` left out, `inputs`
/// sent as `{}` where unset, the root's source on every event.
const FULL_BATCH: &str = concat!(
    r#"{"events":["#,
    r#"{"children_ids":["evt-model"],"config":{"model":"gpt-4o","temperature":0.2},"duration":1250,"#,
    r#""end_time":1700000001373,"error":"rate limited by the model provider","event_id":"evt-root","#,
    r#""event_name":"answer-question","event_type":"chain","feedback":{"rating":5},"#,
    r#""inputs":{"question":"Where is my order?"},"metadata":{"region":"eu"},"metrics":{"tokens":512},"#,
    r#""outputs":{"answer":"It ships today."},"session_id":"s-1","source":"production","#,
    r#""start_time":1700000000123,"user_properties":{"plan":"pro"}},"#,
    r#"{"children_ids":["evt-tool"],"duration":1.5,"event_id":"evt-model","event_name":"gpt-4o","#,
    r#""event_type":"model","inputs":{},"parent_id":"evt-root","session_id":"s-1","source":"production"},"#,
    r#"{"event_id":"evt-tool","event_name":"order-lookup","event_type":"tool","inputs":{},"#,
    r#""outputs":{"status":"shipped"},"parent_id":"evt-model","session_id":"s-1","source":"production"},"#,
    r#"{"event_id":"evt-2","event_name":"rerank","event_type":"tool","inputs":{},"session_id":"s-2"}"#,
    r#"]}"#
);

#[tokio::test]
async fn a_batch_goes_out_flat_byte_for_byte() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(Method::POST)
                .path("/v1/events/batch")
                .header("authorization", format!("Bearer {KEY}"))
                .header("content-type", "application/json")
                .header("user-agent", Client::USER_AGENT)
                .body(FULL_BATCH);
            then.status(200)
                .header("content-type", "application/json")
                .body(
                    r#"{"event_ids":["evt-root","evt-model","evt-tool","evt-2"],"success":true}"#,
                );
        })
        .await;
    let logged = client(&server)
        .log_batch([
            ("s-1", full_event()),
            ("s-2", Event::tool("rerank").event_id("evt-2")),
        ])
        .await
        .unwrap();
    mock.assert_async().await;
    assert_eq!(
        logged.event_ids,
        ["evt-root", "evt-model", "evt-tool", "evt-2"]
    );
    assert_eq!(logged.attempts, 1);
    // What went out holds to the published schema.
    let body: Value = serde_json::from_str(FULL_BATCH).unwrap();
    honeyhive::validate::request_body("createEventBatch", &body).unwrap();
}

#[tokio::test]
async fn the_mock_records_each_event_of_a_batch_in_its_session_with_ids_filled() {
    let mock = MockHoneyHive::start_async().await;
    let client = mock.client().unwrap();
    let (a, b) = (SessionId::new(), SessionId::new());
    let logged = client
        .log_batch([
            (&a, Event::chain("agent").child(Event::model("gpt-4o"))),
            (&b, Event::tool("search")),
        ])
        .await
        .unwrap();
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    let events = mock.events();
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e.operation == "createEventBatch"));
    let sessions: Vec<&str> = events.iter().map(|e| e.session_id.as_str()).collect();
    assert_eq!(sessions, [a.as_str(), a.as_str(), b.as_str()]);
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e.event["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(logged.event_ids, ids);
    assert!(ids.iter().all(|id| uuid::Uuid::parse_str(id).is_ok()));
    assert_eq!(events[1].event["parent_id"], ids[0]);
    assert_eq!(events[0].event["children_ids"], json!([ids[1]]));
}

#[tokio::test]
async fn bad_batches_are_refused_naming_the_field_and_nothing_is_sent() {
    let mock = MockHoneyHive::start_async().await;
    let client = mock.client_builder().max_body_bytes(2_000).build().unwrap();
    let refusal = |result: Result<_, Error>| match result {
        Err(Error::InvalidInput { field, problem, .. }) => (field, problem),
        other => panic!("expected InvalidInput, got {other:?}"),
    };

    let none: [(&str, Event); 0] = [];
    let (field, _) = refusal(client.log_batch(none).await);
    assert_eq!(field, "events");
    let untyped = Event::chain("c").child(Event::default().name("x"));
    let (field, problem) = refusal(
        client
            .log_batch([("s", Event::tool("t")), ("s", untyped)])
            .await,
    );
    assert_eq!(field, "events[1].children[0].event_type");
    assert!(problem.contains("required"), "{problem}");
    let (field, _) = refusal(client.log_batch([(" ", Event::tool("t"))]).await);
    assert_eq!(field, "events[0].session_id");
    let big = || Event::tool("t").inputs(json!({"text": "z".repeat(800)}));
    let (field, problem) = refusal(
        client
            .log_batch([("s", big()), ("s", big()), ("s", big())])
            .await,
    );
    assert_eq!(field, "events");
    assert!(problem.contains("split the batch"), "{problem}");
    // One event over the limit alone, with no string to cut it by.
    let (field, _) = refusal(
        client
            .log_batch([(
                "s",
                Event::tool("t").inputs(json!({"numbers": vec![1000; 600]})),
            )])
            .await,
    );
    assert_eq!(field, "events[0]");

    assert_eq!(mock.stats().requests, 0);
}

#[tokio::test]
async fn a_session_starts_byte_for_byte_under_the_id_given() {
    let server = MockServer::start_async().await;
    let body = format!(
        r#"{{"metadata":{{"tier":"pro"}},"session_id":"{SESSION}","session_name":"support-chat","source":"production","start_time":1700000000123}}"#
    );
    let mock = server
        .mock_async(|when, then| {
            when.method(Method::POST)
                .path("/v1/sessions")
                .header("authorization", format!("Bearer {KEY}"))
                .body(body.as_str());
            then.status(200)
                .header("content-type", "application/json")
                .body(format!(
                    r#"{{"event_id":"{EVENT}","session_id":"{SESSION}","org_id":"o","workspace_id":"w","project_id":"p","event_type":"session"}}"#
                ));
        })
        .await;
    let client = Client::builder()
        .api_key(KEY)
        .base_url(server.base_url())
        .source("production")
        .build()
        .unwrap();
    let started = client
        .start_session(
            SessionStart::new("support-chat")
                .session_id(SESSION)
                .metadata(json!({"tier": "pro"}))
                .start_time(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)),
        )
        .await
        .unwrap();
    mock.assert_async().await;
    assert_eq!(started.session_id.as_str(), SESSION);
    assert_eq!(started.event_id, EVENT);
}

#[tokio::test]
async fn a_session_without_an_id_gets_a_uuid_and_one_that_is_not_a_uuid_is_refused() {
    let mock = MockHoneyHive::start_async().await;
    let client = mock.client().unwrap();
    let started = client
        .start_session(SessionStart::new("chat").user_properties(json!({"user": "u-1"})))
        .await
        .unwrap();
    assert!(uuid::Uuid::parse_str(started.session_id.as_str()).is_ok());
    let sessions = mock.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].session_id, started.session_id.as_str());
    assert_eq!(sessions[0].session["session_name"], "chat");
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());

    match client
        .start_session(SessionStart::new("chat").session_id("checkout-7"))
        .await
    {
        Err(Error::InvalidInput { field, problem, .. }) => {
            assert_eq!(field, "session_id");
            assert!(problem.contains("not a UUID"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(mock.stats().requests, 1);
}

#[tokio::test]
async fn an_update_goes_out_as_a_put_byte_for_byte_and_its_empty_answer_is_success() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(Method::PUT)
                .path(format!("/v1/events/{EVENT}"))
                .header("authorization", format!("Bearer {KEY}"))
                .header("content-type", "application/json")
                .body(r#"{"duration":840,"feedback":{"rating":5},"outputs":{"text":"hi"}}"#);
            then.status(200);
        })
        .await;
    let updated = client(&server)
        .update_event(
            EVENT,
            EventUpdate::new()
                .feedback(json!({"rating": 5}))
                .outputs(json!({"text": "hi"}))
                .duration(Duration::from_millis(840)),
        )
        .await
        .unwrap();
    mock.assert_async().await;
    assert_eq!((updated.event_id.as_str(), updated.attempts), (EVENT, 1));
}

#[tokio::test]
async fn the_mock_records_updates_and_bad_updates_are_refused_before_sending() {
    let mock = MockHoneyHive::start_async().await;
    let client = mock.client().unwrap();
    let logged = client
        .log_batch([("s", Event::model("gpt-4o"))])
        .await
        .unwrap();
    let id = &logged.event_ids[0];
    client
        .update_event(id, EventUpdate::new().metrics(json!({"score": 0.9})))
        .await
        .unwrap();
    let updates = mock.updates();
    assert_eq!(updates.len(), 1);
    assert_eq!(&updates[0].event_id, id);
    assert_eq!(updates[0].update, json!({"metrics": {"score": 0.9}}));

    let refused = |result: Result<_, Error>| match result {
        Err(Error::InvalidInput { field, .. }) => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    };
    let field = refused(
        client
            .update_event("evt-1", EventUpdate::new().feedback(json!({"ok": true})))
            .await,
    );
    assert_eq!(field, "event_id");
    assert_eq!(
        refused(client.update_event(id, EventUpdate::new()).await),
        "update"
    );
    let field = refused(
        client
            .update_event(id, EventUpdate::new().feedback("great"))
            .await,
    );
    assert_eq!(field, "feedback");
    assert_eq!(mock.stats().requests, 2);
}

async fn batch_answered(status: u16, body: &str) -> Error {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path("/v1/events/batch");
            then.status(status)
                .header("content-type", "application/json")
                .body(body);
        })
        .await;
    client(&server)
        .log_batch([
            ("s", Event::tool("t").event_id("e-1")),
            ("s", Event::tool("t").event_id("e-2")),
        ])
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_v1_answer_that_is_not_the_documented_json_is_a_decode_error_with_its_source() {
    // logEvent's answer to a batch: the shape of the old mock's answers.
    let err = batch_answered(200, r#"{"event_id":"e-1","success":true}"#).await;
    match &err {
        Error::Decode {
            status: StatusCode::OK,
            problem,
            ..
        } => {
            assert!(problem.contains("event_ids"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn success_false_to_a_batch_is_not_recorded_naming_its_events() {
    match batch_answered(200, r#"{"event_ids":[],"success":false}"#).await {
        Error::NotRecorded {
            event_ids,
            attempts,
            ..
        } => {
            assert_eq!(event_ids, ["e-1", "e-2"]);
            assert_eq!(attempts, 1);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_key_never_appears_in_a_v1_error() {
    let err = batch_answered(400, &format!(r#"{{"error":"bad key {KEY} in request"}}"#)).await;
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400));
    for shown in [err.to_string(), format!("{err:?}"), format!("{err:#?}")] {
        assert!(!shown.contains(KEY), "{shown}");
    }
}

/// Posts `body` to `path` with the mock's key.
async fn post(
    mock: &MockHoneyHive,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    support::call_mock(mock, method, path, Some(&body)).await
}

#[tokio::test]
async fn the_mock_refuses_fields_the_spec_closes_and_ids_that_are_not_uuids() {
    let mock = MockHoneyHive::start_async().await;
    let post_ = reqwest::Method::POST;
    // `project` is not a field of the v1 event (additionalProperties: false).
    let (status, answer) = post(
        &mock,
        post_.clone(),
        "/v1/events",
        json!({"event_type": "tool", "inputs": {}, "project": "p"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        answer["violation"].as_str().unwrap().contains("project"),
        "{answer}"
    );
    // `inputs` is required.
    let (status, _) = post(
        &mock,
        post_.clone(),
        "/v1/events",
        json!({"event_type": "tool"}),
    )
    .await;
    assert_eq!(status, 400);
    // Path parameters are `format: uuid`.
    let (status, answer) = post(
        &mock,
        post_.clone(),
        "/v1/sessions/not-a-uuid/events/batch",
        json!({"events": []}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        answer["violation"].as_str().unwrap().contains("session_id"),
        "{answer}"
    );
    let (status, _) = post(
        &mock,
        reqwest::Method::PUT,
        "/v1/events/evt-1",
        json!({"feedback": {}}),
    )
    .await;
    assert_eq!(status, 400);
    // What holds to the spec is answered as documented.
    let (status, answer) = post(
        &mock,
        post_,
        "/v1/events",
        json!({"event_type": "tool", "inputs": {}, "event_id": EVENT}),
    )
    .await;
    assert_eq!(
        (status, answer),
        (200, json!({"event_id": EVENT, "success": true}))
    );
    assert_eq!(mock.stats().violations, 4);
}

#[tokio::test]
async fn raw_calls_reach_every_v1_operation_through_the_mock() {
    let mock = MockHoneyHive::start_async().await;
    let client = mock.client().unwrap();
    let event = || {
        types::PostEventRequest::builder()
            .event_type(types::PostEventRequestEventType::Tool)
            .inputs(serde_json::Map::new())
    };
    let created = client
        .raw()
        .create_event()
        .body(event())
        .send()
        .await
        .unwrap();
    assert!(created.success);
    let session: uuid::Uuid = SESSION.parse().unwrap();
    let batch = client
        .raw()
        .create_session_event_batch()
        .session_id(session)
        .body(types::SessionEventBatchRequest::builder().events(vec![
            event().try_into().unwrap(),
            event().try_into().unwrap(),
        ]))
        .send()
        .await
        .unwrap();
    assert!(batch.success);
    let started = client
        .raw()
        .create_session()
        .body(types::StartSessionRequest::builder().session_id(SESSION.to_owned()))
        .send()
        .await
        .unwrap();
    assert_eq!(started.session_id, SESSION);
    client
        .raw()
        .update_event()
        .event_id(EVENT.parse::<uuid::Uuid>().unwrap())
        .body(
            types::UpdateEventRequest::builder()
                .metrics(serde_json::Map::from_iter([("score".to_owned(), json!(1))])),
        )
        .send()
        .await
        .unwrap();
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    let events = mock.events();
    let routes: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.operation, e.session_id.as_str()))
        .collect();
    assert_eq!(
        routes[1..],
        [
            ("createSessionEventBatch", SESSION),
            ("createSessionEventBatch", SESSION)
        ]
    );
    assert_eq!(routes[0].0, "createEvent");
    assert_eq!(mock.stats().sessions, 1);
    assert_eq!(mock.updates()[0].event_id, EVENT);
}
