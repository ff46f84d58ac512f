//! Each way a request can go wrong gives the right `Error` variant, never a
//! panic, and never a trace of the API key.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use honeyhive::StatusCode;
use honeyhive::{Client, ClientBuilder, Error, Event, RetryPolicy};
use httpmock::{Method::POST, MockServer};
use serde_json::json;

const KEY: &str = "hh-secret-4242-never-print";

/// One attempt per call: these tests are about mapping each answer to an
/// error; retries have tests of their own.
fn client_for(server: &MockServer) -> Client {
    Client::builder()
        .api_key(KEY)
        .base_url(server.base_url())
        .retry_policy(RetryPolicy::none())
        .build()
        .expect("a loopback URL and a key make a valid client")
}

/// Answers every POST to `server` with the documented 200; the mock counts
/// the calls.
async fn accept_all(server: &MockServer) -> httpmock::Mock<'_> {
    server
        .mock_async(|when, then| {
            when.method(POST);
            then.status(200)
                .header("content-type", "application/json")
                .json_body(json!({"event_id": "e", "success": true}));
        })
        .await
}

/// Logs one event against a server that answers `status` with `body`.
async fn answer_with(status: u16, content_type: &str, body: &str) -> Error {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST);
            then.status(status)
                .header("content-type", content_type)
                .body(body);
        })
        .await;
    let err = client_for(&server)
        .log_event("s", Event::model("m").event_id("evt-1"))
        .await
        .expect_err("the answer is not a success");
    assert_no_key(&err);
    err
}

fn assert_no_key(err: &Error) {
    let shown = format!("{err} | {err:?}");
    assert!(
        !shown.contains(KEY),
        "the API key leaked into an error: {shown}"
    );
}

#[tokio::test]
async fn unauthorized_is_its_own_variant() {
    for status in [401, 403] {
        match answer_with(status, "application/json", r#"{"error":"bad key"}"#).await {
            Error::Unauthorized {
                status: got, body, ..
            } => {
                assert_eq!(got, status);
                assert!(body.contains("bad key"));
            }
            other => panic!("{status}: expected Unauthorized, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn bad_request_keeps_status_and_json_body() {
    let err = answer_with(
        400,
        "application/json",
        r#"{"error":"event_type is invalid"}"#,
    )
    .await;
    match &err {
        Error::Api {
            status: StatusCode::BAD_REQUEST,
            body,
            ..
        } => {
            assert_eq!(body, r#"{"error":"event_type is invalid"}"#)
        }
        other => panic!("expected Api 400, got {other:?}"),
    }
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400));
    assert_eq!(
        err.to_string(),
        r#"the API answered HTTP 400: {"error":"event_type is invalid"}"#
    );
}

#[tokio::test]
async fn server_error_with_html_body() {
    let html = "<html><body><h1>500 Internal Server Error</h1></body></html>";
    match answer_with(500, "text/html", html).await {
        Error::Api {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body,
            ..
        } => assert_eq!(body, html),
        other => panic!("expected Api 500, got {other:?}"),
    }
}

#[tokio::test]
async fn ok_status_with_a_body_that_is_not_json() {
    match answer_with(200, "application/json", "OK").await {
        Error::Decode {
            status: StatusCode::OK,
            problem,
            body,
            source,
            ..
        } => {
            assert!(problem.contains("event_id"), "{problem}");
            assert_eq!(body, "OK");
            let source = source.expect("the JSON error is kept as the source");
            assert!(source.is_syntax(), "{source}");
        }
        other => panic!("expected Decode, got {other:?}"),
    }
}

#[tokio::test]
async fn ok_status_with_the_wrong_content_type() {
    let json = r#"{"event_id":"evt-1","success":true}"#;
    match answer_with(200, "text/html", json).await {
        Error::Decode {
            status: StatusCode::OK,
            problem,
            ..
        } => {
            assert!(
                problem.contains("\"text/html\", not application/json"),
                "{problem}"
            );
        }
        other => panic!("expected Decode, got {other:?}"),
    }
}

#[tokio::test]
async fn ok_status_with_a_truncated_json_body() {
    let err = answer_with(200, "application/json", r#"{"event_id":"evt-1","succ"#).await;
    assert!(
        matches!(err, Error::Decode { status, .. } if status == 200),
        "{err:?}"
    );
}

#[tokio::test]
async fn ok_status_with_json_of_the_wrong_shape() {
    let err = answer_with(200, "application/json", r#"{"id":"x"}"#).await;
    assert!(
        matches!(err, Error::Decode { status, .. } if status == 200),
        "{err:?}"
    );
}

#[tokio::test]
async fn success_false_is_not_recorded() {
    match answer_with(
        200,
        "application/json",
        r#"{"event_id":"evt-1","success":false}"#,
    )
    .await
    {
        Error::NotRecorded { event_ids, .. } => assert_eq!(event_ids, ["evt-1"]),
        other => panic!("expected NotRecorded, got {other:?}"),
    }
}

#[tokio::test]
async fn a_huge_answer_is_cut_not_buffered() {
    let huge = format!(r#"{{"event_id":"{}","success":true}}"#, "x".repeat(1 << 20));
    match answer_with(200, "application/json", &huge).await {
        Error::Decode { problem, body, .. } => {
            assert!(problem.contains("longer than"), "{problem}");
            assert!(
                body.len() <= 2048 * 4,
                "error bodies are kept short, got {}",
                body.len()
            );
        }
        other => panic!("expected Decode, got {other:?}"),
    }
}

#[tokio::test]
async fn a_key_echoed_by_the_server_is_scrubbed() {
    let body = format!(r#"{{"error":"key {KEY} is revoked"}}"#);
    match answer_with(401, "application/json", &body).await {
        Error::Unauthorized { body, .. } => {
            assert_eq!(body, r#"{"error":"key [redacted] is revoked"}"#)
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

#[tokio::test]
async fn a_key_straddling_the_body_cut_leaves_no_prefix_behind() {
    // Error bodies are cut to 2 048 characters; the key starts 8 before the
    // cut, so cutting before redacting would keep its first 8 characters.
    let body = format!("{}{KEY} trailing", "x".repeat(2040));
    let err = answer_with(500, "text/plain", &body).await;
    let shown = format!("{err} | {err:?}");
    assert!(
        !shown.contains(&KEY[..8]),
        "a prefix of the key leaked: ...{}",
        &shown[shown.len().saturating_sub(80)..]
    );
}

#[tokio::test]
async fn refused_connection_is_a_transport_error() {
    // Bind a loopback port, then free it: nothing listens there any more.
    let port = support::closed_port();
    let client = Client::builder()
        .api_key(KEY)
        .base_url(format!("http://127.0.0.1:{port}"))
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let err = client.log_event("s", Event::tool("t")).await.unwrap_err();
    match &err {
        Error::Transport {
            host,
            problem,
            attempts,
            ..
        } => {
            assert_eq!(host, &format!("127.0.0.1:{port}"));
            assert_eq!(problem, "the connection was refused");
            assert_eq!(*attempts, 1);
        }
        other => panic!("expected Transport, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!("could not reach 127.0.0.1:{port}: the connection was refused")
    );
    // Display is the top message only; the cause chain is the source, so a
    // reporter printing both (anyhow's `{:#}`) shows each cause once.
    let mut chain = Vec::new();
    let mut cause = std::error::Error::source(&err);
    while let Some(inner) = cause {
        chain.push(inner.to_string());
        cause = inner.source();
    }
    assert!(!chain.is_empty(), "transport errors keep their cause");
    for text in &chain {
        assert!(
            !err.to_string().contains(text.as_str()),
            "Display repeats the cause {text:?}"
        );
    }
    assert!(
        chain.iter().any(|c| c.contains("Connection refused")),
        "{chain:?}"
    );
    assert_no_key(&err);
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST);
            then.status(200)
                .delay(Duration::from_secs(2))
                .body(r#"{"event_id":"x","success":true}"#);
        })
        .await;
    let client = Client::builder()
        .api_key(KEY)
        .base_url(server.base_url())
        .timeout(Duration::from_millis(100))
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    match client.log_event("s", Event::tool("t")).await {
        Err(Error::Timeout {
            attempt_timeout,
            attempts,
            elapsed,
            ..
        }) => {
            assert_eq!(attempt_timeout, Duration::from_millis(100));
            assert_eq!(attempts, 1);
            assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_input_is_refused_before_anything_is_sent() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.any_request();
            then.status(200).body(r#"{"event_id":"x","success":true}"#);
        })
        .await;
    let client = client_for(&server);

    match client.log_event("", Event::tool("t")).await {
        Err(err @ Error::InvalidInput { .. }) => {
            assert!(matches!(&err, Error::InvalidInput { field, .. } if field == "session_id"));
            assert_eq!(err.fix(), Some(honeyhive::Fix::NewSessionId));
            assert!(
                err.to_string().contains("SessionId::new()"),
                "the error says what to do: {err}"
            );
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    match client
        .log_event(
            "s",
            Event::tool("t").outputs(json!(["not", "an", "object"])),
        )
        .await
    {
        Err(Error::InvalidInput { field, problem, .. }) => {
            assert_eq!(field, "outputs");
            assert!(
                problem.contains("must be a JSON object, got an array"),
                "{problem}"
            );
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    match client
        .log_event("s", Event::chain("c").child(Event::tool("t").config("x")))
        .await
    {
        Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "children[0].config"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    mock.assert_calls_async(0).await;
}

#[test]
fn builder_refuses_bad_settings_naming_them() {
    let field_of = |result: Result<Client, Error>| match result {
        Err(Error::InvalidInput { field, .. }) => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    };
    assert_eq!(field_of(Client::builder().build()), "api_key");
    assert_eq!(field_of(Client::builder().api_key("  ").build()), "api_key");
    assert_eq!(
        field_of(Client::builder().api_key("a\nb").build()),
        "api_key"
    );
    assert_eq!(
        field_of(
            Client::builder()
                .api_key("k")
                .base_url("http://example.com")
                .build()
        ),
        "base_url"
    );
    assert_eq!(
        field_of(Client::builder().api_key("k").base_url("nope").build()),
        "base_url"
    );
    assert_eq!(
        field_of(
            Client::builder()
                .api_key("k")
                .timeout(Duration::ZERO)
                .build()
        ),
        "timeout"
    );
    assert!(
        Client::builder()
            .api_key("k")
            .base_url("http://example.com")
            .allow_insecure_http(true)
            .build()
            .is_ok()
    );
}

#[test]
fn environment_is_read_with_the_official_names() {
    let vars = HashMap::from([
        ("HH_API_KEY", KEY),
        ("HH_API_URL", "http://127.0.0.1:9/"),
        ("HH_PROJECT", "proj"),
        ("HH_SOURCE", "ci"),
        ("HH_API_TIMEOUT", "2.5"),
    ]);
    let builder = ClientBuilder::from_lookup(|name| vars.get(name).map(|v| v.to_string())).unwrap();
    let shown = format!("{builder:?}");
    assert!(
        shown.contains("proj") && shown.contains("ci") && shown.contains("2.5s"),
        "{shown}"
    );
    let client = builder.build().unwrap();
    assert_eq!(client.base_url(), "http://127.0.0.1:9");

    let missing = ClientBuilder::from_lookup(|_| None).unwrap_err();
    assert!(matches!(missing, Error::InvalidInput { ref field, .. } if field == "HH_API_KEY"));
    let bad_timeout = ClientBuilder::from_lookup(|name| match name {
        "HH_API_KEY" => Some("k".into()),
        "HH_API_TIMEOUT" => Some("soon".into()),
        _ => None,
    })
    .unwrap_err();
    assert!(
        matches!(bad_timeout, Error::InvalidInput { ref field, .. } if field == "HH_API_TIMEOUT")
    );
}

#[test]
fn a_bad_url_from_the_environment_is_refused_by_the_variable_s_name() {
    let from_env = |url: &'static str| {
        ClientBuilder::from_lookup(move |name| match name {
            "HH_API_KEY" => Some("k".into()),
            "HH_API_URL" => Some(url.into()),
            _ => None,
        })
        .unwrap()
    };
    for url in ["not a url", "ftp://example.com", "http://example.com"] {
        let refused = from_env(url).build().unwrap_err();
        assert!(
            matches!(&refused, Error::InvalidInput { field, .. } if field == "HH_API_URL"),
            "{url}: {refused}"
        );
        // Set in code after, it is the code's: the error names the setter.
        let refused = from_env("https://ok.example.com")
            .base_url(url)
            .build()
            .unwrap_err();
        assert!(
            matches!(&refused, Error::InvalidInput { field, .. } if field == "base_url"),
            "{url}: {refused}"
        );
    }
}

#[test]
fn a_variable_set_but_blank_is_refused_by_name_not_taken_as_unset() {
    for name in [
        "HH_API_KEY",
        "HH_API_URL",
        "HH_PROJECT",
        "HH_SOURCE",
        "HH_API_TIMEOUT",
        "HH_MAX_RETRIES",
        "HH_SAMPLE_RATE",
    ] {
        for blank in ["", "  ", "\t"] {
            let refused = ClientBuilder::from_lookup(|asked| match asked {
                _ if asked == name => Some(blank.to_owned()),
                "HH_API_KEY" => Some("k".into()),
                _ => None,
            })
            .unwrap_err();
            match &refused {
                Error::InvalidInput { field, .. } => assert_eq!(field, name),
                other => panic!("{name}={blank:?}: {other:?}"),
            }
            let said = refused.to_string();
            assert!(
                said.contains("blank") && said.contains(&format!("unset {name}")),
                "{said}"
            );
        }
    }
}

#[test]
fn debug_output_never_shows_the_key() {
    let builder = Client::builder().api_key(KEY).project("p");
    let client = builder.clone().build().unwrap();
    // The raw client prints its reqwest client, default headers included:
    // the Authorization header is marked sensitive, so its value is hidden.
    let raw = format!("{:?}", client.raw());
    assert!(raw.contains(r#""authorization": Sensitive"#), "{raw}");
    assert!(!raw.contains(KEY), "{raw}");
    for shown in [
        format!("{builder:?}"),
        format!("{client:?}"),
        format!("{builder:#?}"),
        format!("{client:#?}"),
    ] {
        assert!(!shown.contains(KEY), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}

#[test]
fn client_is_cheap_to_share_across_threads() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync_clone::<Client>();
    assert_send_sync_clone::<honeyhive::Session>();
    fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<Error>();
}

#[tokio::test]
async fn dot_segments_and_blank_session_ids_are_refused_before_sending() {
    // URL parsers read `.` and `..` (percent-encoded or not) as steps in the
    // path: `/session/../event` would go to `POST /event`.
    let server = MockServer::start_async().await;
    let anything = server
        .mock_async(|_when, then| {
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"event_id":"x","success":true}"#);
        })
        .await;
    let client = client_for(&server);
    for id in ["..", ".", "", " ", "\t"] {
        match client.log_event(id, Event::tool("t")).await {
            Err(err @ Error::InvalidInput { .. }) => {
                assert!(
                    matches!(&err, Error::InvalidInput { field, .. } if field == "session_id"),
                    "{id:?}"
                );
                assert!(
                    err.to_string().contains("SessionId::new()"),
                    "{id:?}: {err}"
                );
            }
            other => panic!("{id:?}: expected InvalidInput, got {other:?}"),
        }
    }
    assert_eq!(anything.calls_async().await, 0, "nothing was sent");
    // Ids that only contain dots stay one segment.
    client.log_event("...", Event::tool("t")).await.unwrap();
    client.log_event(".a.", Event::tool("t")).await.unwrap();
}

#[test]
fn a_base_url_with_credentials_is_refused_without_showing_them() {
    for url in [
        "http://user:hunter2@127.0.0.1:9",
        "https://user:hunter2@api.honeyhive.ai",
        "https://hunter2@api.honeyhive.ai",
    ] {
        let err = Client::builder()
            .api_key(KEY)
            .base_url(url)
            .build()
            .expect_err("credentials in the URL would replace the API key");
        let shown = format!("{err} | {err:?}");
        assert!(
            matches!(&err, Error::InvalidInput { field, .. } if field == "base_url"),
            "{shown}"
        );
        assert!(shown.contains("user name or password"), "{shown}");
        assert!(!shown.contains("hunter2"), "the password leaked: {shown}");
    }
    let env = HashMap::from([
        ("HH_API_KEY", KEY),
        ("HH_API_URL", "http://user:hunter2@127.0.0.1:9"),
    ]);
    let err = ClientBuilder::from_lookup(|name| env.get(name).map(|v| v.to_string()))
        .unwrap()
        .build()
        .unwrap_err();
    assert!(!format!("{err:?}").contains("hunter2"));
}

#[tokio::test]
async fn a_timeout_says_how_long_the_whole_call_took_and_how_many_attempts() {
    let server = support::fault_server::FaultServer::always(support::fault_server::Fault::Slow(
        Duration::from_secs(30),
    ))
    .await;
    let client = Client::builder()
        .api_key(KEY)
        .base_url(server.base_url())
        .timeout(Duration::from_millis(200))
        .retry_policy(
            RetryPolicy::default()
                .max_attempts(3)
                .initial_backoff(Duration::from_millis(10))
                .max_backoff(Duration::from_millis(10)),
        )
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = client.log_event("s", Event::tool("t")).await.unwrap_err();
    let took = started.elapsed();
    let Error::Timeout {
        elapsed,
        attempts,
        attempt_timeout,
        ..
    } = &err
    else {
        panic!("expected Timeout, got {err:?}")
    };
    assert_eq!(
        (*attempts, *attempt_timeout),
        (3, Duration::from_millis(200))
    );
    assert!(
        *elapsed >= Duration::from_millis(600) && *elapsed <= took,
        "{elapsed:?} of {took:?}"
    );
    let text = err.to_string();
    let ms = elapsed.as_millis();
    assert!(
        text.contains(" ms and 3 attempts")
            && (ms..=ms + 1).any(|m| text.contains(&format!("after {m} ms"))),
        "{text}"
    );
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn connect_timeout_keeps_the_other_settings_and_zero_is_refused() {
    let server = MockServer::start_async().await;
    let ok = server
        .mock_async(|when, then| {
            when.method(POST)
                .header("authorization", format!("Bearer {KEY}"));
            then.status(200)
                .header("content-type", "application/json")
                .json_body(json!({"event_id": "e", "success": true}));
        })
        .await;
    let client = Client::builder()
        .api_key(KEY)
        .connect_timeout(Duration::from_secs(3))
        .base_url(server.base_url())
        .build()
        .expect("valid settings");
    client.log_event("s", Event::tool("t")).await.expect("sent");
    ok.assert_async().await;

    let err = Client::builder()
        .api_key(KEY)
        .connect_timeout(Duration::ZERO)
        .build()
        .expect_err("a zero connect timeout fails every request");
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "connect_timeout"),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_default_body_limit_is_five_mebibytes() {
    let server = MockServer::start_async().await;
    let ok = accept_all(&server).await;
    // Refused whole, not cut (cutting is tested in tests/outgoing.rs).
    let client = Client::builder()
        .api_key(KEY)
        .base_url(server.base_url())
        .cut_oversize(false)
        .build()
        .unwrap();
    assert_eq!(
        honeyhive::ClientBuilder::DEFAULT_MAX_BODY_BYTES,
        5 * 1024 * 1024
    );
    // Just under the limit is sent; just over is refused before sending.
    let body = |len: usize| {
        Event::tool("t")
            .event_id("e")
            .inputs(json!({"text": "x".repeat(len)}))
    };
    let framing = serde_json::to_vec(&body(0).into_api().unwrap())
        .unwrap()
        .len();
    let limit = honeyhive::ClientBuilder::DEFAULT_MAX_BODY_BYTES;
    client
        .log_event("s", body(limit - framing - 1024))
        .await
        .expect("under the default limit");
    ok.assert_calls_async(1).await;
    let err = client
        .log_event("s", body(limit))
        .await
        .expect_err("over the default limit");
    assert!(
        matches!(&err, Error::InvalidInput { field, problem , .. } if field == "event" && problem.contains(&limit.to_string())),
        "{err:?}"
    );
    ok.assert_calls_async(1).await;
}

#[tokio::test]
async fn a_long_answer_with_fields_we_do_not_know_is_read_whole() {
    // The client reads up to 64 KiB of an answer: a 3 KB success is whole.
    let body = json!({"event_id": "evt-1", "success": true, "note": "x".repeat(3000)});
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST);
            then.status(200)
                .header("content-type", "application/json")
                .body(body.to_string());
        })
        .await;
    let logged = client_for(&server)
        .log_event("s", Event::model("m").event_id("evt-1"))
        .await
        .expect("a success with an extra field");
    assert_eq!(logged.event_id, "evt-1");
}

#[tokio::test]
async fn a_body_exactly_at_the_limit_is_sent_and_one_byte_over_is_not() {
    let server = MockServer::start_async().await;
    let ok = accept_all(&server).await;
    let event = || {
        Event::tool("t")
            .event_id("e")
            .inputs(json!({"text": "x".repeat(500)}))
    };
    let size = serde_json::to_vec(&event().into_api().unwrap())
        .unwrap()
        .len();
    let with_limit = |limit: usize| {
        Client::builder()
            .api_key(KEY)
            .base_url(server.base_url())
            .max_body_bytes(limit)
            .cut_oversize(false)
            .build()
            .unwrap()
    };
    with_limit(size)
        .log_event("s", event())
        .await
        .expect("a body of exactly the limit is sent");
    let err = with_limit(size - 1)
        .log_event("s", event())
        .await
        .expect_err("one byte over");
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "event"),
        "{err:?}"
    );
    ok.assert_calls_async(1).await;
}

#[test]
fn a_timeout_of_zero_seconds_in_the_environment_is_refused() {
    for value in ["0", "0.0", "-1", "inf", "NaN"] {
        let err = ClientBuilder::from_lookup(|name| match name {
            "HH_API_KEY" => Some("k".into()),
            "HH_API_TIMEOUT" => Some(value.into()),
            _ => None,
        })
        .expect_err(value);
        assert!(
            matches!(&err, Error::InvalidInput { field, .. } if field == "HH_API_TIMEOUT"),
            "{value}: {err:?}"
        );
    }
}

/// A loopback server that does one thing to every connection.
async fn raw_server(on_accept: fn(tokio::net::TcpStream)) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            on_accept(stream);
        }
    });
    address.to_string()
}

#[tokio::test]
async fn each_transport_failure_says_what_failed() {
    use support::fault_server::{Fault, FaultServer};
    let problem_at = |url: String| async move {
        let client = Client::builder()
            .api_key(KEY)
            .base_url(url)
            .timeout(Duration::from_secs(5))
            .retry_policy(RetryPolicy::none())
            .build()
            .unwrap();
        match client.log_event("s", Event::tool("t")).await.unwrap_err() {
            Error::Transport { problem, .. } => problem,
            // A handshake another attempt would fail the same way.
            tls @ Error::Tls { .. } if !tls.is_retryable() => "the TLS handshake failed".to_owned(),
            other => panic!("not a transport error: {other:?}"),
        }
    };
    let truncated = FaultServer::always(Fault::Truncated).await;
    assert_eq!(
        problem_at(truncated.base_url()).await,
        "the answer was cut short"
    );
    let dropped = FaultServer::always(Fault::Drop { processed: false }).await;
    assert_eq!(
        problem_at(dropped.base_url()).await,
        "the connection failed before the answer came"
    );
    // Reset: the server closes with SO_LINGER 0, which sends RST.
    let reset = raw_server(|stream| {
        #[allow(deprecated)] // blocking on drop is what a reset needs here
        let _ = stream.set_linger(Some(Duration::ZERO));
        drop(stream);
    })
    .await;
    assert_eq!(
        problem_at(format!("http://{reset}")).await,
        "the connection was reset"
    );
    // https to a server that answers in plain HTTP: the handshake fails.
    let plain = raw_server(|mut stream| {
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        });
    })
    .await;
    assert_eq!(
        problem_at(format!("https://{plain}")).await,
        "the TLS handshake failed"
    );
}

#[tokio::test]
async fn an_answer_of_exactly_64_kib_is_read_whole() {
    let framing = r#"{"event_id":"evt-1","success":true,"pad":""}"#.len();
    let body = format!(
        r#"{{"event_id":"evt-1","success":true,"pad":"{}"}}"#,
        "p".repeat(64 * 1024 - framing)
    );
    assert_eq!(body.len(), 64 * 1024);
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST);
            then.status(200)
                .header("content-type", "application/json")
                .body(body);
        })
        .await;
    let logged = client_for(&server)
        .log_event("s", Event::model("m").event_id("evt-1"))
        .await
        .expect("64 KiB is the most the client reads, and it reads all of it");
    assert_eq!(logged.event_id, "evt-1");
}
