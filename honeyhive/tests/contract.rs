//! Contract tests: the exact request the client puts on the wire.

mod support;

use std::sync::{Arc, Mutex};

use honeyhive::{Client, Event};
use support::full_event;

use httpmock::{HttpMockRequest, HttpMockResponse, Method::POST, MockServer};

const KEY: &str = "hh-contract-key";

fn client(server: &MockServer) -> Client {
    Client::builder()
        .api_key(KEY)
        .base_url(server.base_url())
        .build()
        .expect("a loopback base URL and a key make a valid client")
}

const FULL_BODY: &str = concat!(
    r#"{"children":[{"children":[{"event_id":"evt-tool","event_name":"order-lookup","event_type":"tool","outputs":{"status":"shipped"}}],"#,
    r#""duration":1.5,"event_id":"evt-model","event_name":"gpt-4o","event_type":"model"}],"#,
    r#""config":{"model":"gpt-4o","temperature":0.2},"duration":1250,"end_time":1700000001373,"#,
    r#""error":"rate limited by the model provider","event_id":"evt-root","event_name":"answer-question","#,
    r#""event_type":"chain","feedback":{"rating":5},"inputs":{"question":"Where is my order?"},"#,
    r#""metadata":{"region":"eu"},"metrics":{"tokens":512},"outputs":{"answer":"It ships today."},"#,
    r#""project":"support-bot","session_id":"s-1","source":"production","start_time":1700000000123,"#,
    r#""user_properties":{"plan":"pro"}}"#
);

#[tokio::test]
async fn full_event_goes_out_byte_for_byte() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/session/s-1/event")
                .header("authorization", format!("Bearer {KEY}"))
                .header("content-type", "application/json")
                .header("accept", "application/json")
                .header("user-agent", Client::USER_AGENT)
                .body(FULL_BODY);
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"event_id":"evt-root","success":true}"#);
        })
        .await;

    let logged = client(&server)
        .log_event("s-1", full_event())
        .await
        .expect("the mock answers 200");

    mock.assert_async().await;
    assert_eq!(logged.event_id, "evt-root");
    // All 18 fields of the API page are on the wire.
    let sent: serde_json::Value = serde_json::from_str(FULL_BODY).unwrap();
    assert_eq!(sent.as_object().unwrap().len(), 18);
}

#[tokio::test]
async fn minimal_event_omits_every_absent_field_and_gets_a_uuid() {
    let recorder = recording_server().await;

    client(&recorder.server)
        .log_event("s-2", Event::tool("search"))
        .await
        .unwrap();

    assert_eq!(recorder.paths(), ["/session/s-2/event"]);
    let body = recorder.bodies().pop().unwrap();
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = value["event_id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    let expected = format!(r#"{{"event_id":"{id}","event_name":"search","event_type":"tool"}}"#);
    assert_eq!(String::from_utf8(body).unwrap(), expected);
}

#[tokio::test]
async fn client_defaults_fill_project_and_source_but_never_override() {
    let recorder = recording_server().await;
    let client = Client::builder()
        .api_key(KEY)
        .base_url(recorder.server.base_url())
        .project("default-project")
        .source("staging")
        .build()
        .unwrap();

    client
        .log_event("s", Event::model("m").event_id("a"))
        .await
        .unwrap();
    client
        .log_event(
            "s",
            Event::model("m")
                .event_id("b")
                .project("own")
                .source("eval"),
        )
        .await
        .unwrap();

    let bodies = recorder.bodies();
    assert_eq!(
        String::from_utf8_lossy(&bodies[0]),
        r#"{"event_id":"a","event_name":"m","event_type":"model","project":"default-project","source":"staging"}"#
    );
    assert_eq!(
        String::from_utf8_lossy(&bodies[1]),
        r#"{"event_id":"b","event_name":"m","event_type":"model","project":"own","source":"eval"}"#
    );
}

#[tokio::test]
async fn client_defaults_go_to_the_top_event_only_children_are_sent_as_given() {
    // Children belong to the top event's project and source; the client
    // does not copy its defaults into them.
    let recorder = recording_server().await;
    let client = Client::builder()
        .api_key(KEY)
        .base_url(recorder.server.base_url())
        .project("default-project")
        .source("staging")
        .build()
        .unwrap();
    client
        .log_event(
            "s",
            Event::chain("c")
                .event_id("top")
                .child(Event::tool("t").event_id("kid"))
                .child(Event::tool("u").event_id("own").project("p2")),
        )
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&recorder.bodies()[0]),
        r#"{"children":[{"event_id":"kid","event_name":"t","event_type":"tool"},{"event_id":"own","event_name":"u","event_type":"tool","project":"p2"}],"event_id":"top","event_name":"c","event_type":"chain","project":"default-project","source":"staging"}"#
    );
}

#[tokio::test]
async fn session_ids_are_percent_encoded_in_the_path() {
    let cases = [
        ("with space", "/session/with%20space/event"),
        ("a/b", "/session/a%2Fb/event"),
        ("café-☕", "/session/caf%C3%A9-%E2%98%95/event"),
        ("100%?#", "/session/100%25%3F%23/event"),
    ];
    let recorder = recording_server().await;
    let client = client(&recorder.server);
    for (id, _) in cases {
        client
            .log_event(id, Event::tool("t").event_id("x"))
            .await
            .unwrap();
    }
    let expected: Vec<&str> = cases.iter().map(|(_, path)| *path).collect();
    assert_eq!(recorder.paths(), expected);
}

#[tokio::test]
async fn wrapped_and_raw_clients_send_the_same_request() {
    let recorder = recording_server().await;
    let client = client(&recorder.server);

    client.log_event("a b", full_event()).await.unwrap();
    let generated_body = full_event().into_api().unwrap();
    let answer = client
        .raw()
        .log_event()
        .session_id("a b")
        .body(generated_body)
        .send()
        .await
        .unwrap();
    assert!(answer.success);

    let bodies = recorder.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(
        bodies[0], bodies[1],
        "the wrapper must send what the generated client sends"
    );
    assert_eq!(
        recorder.paths(),
        ["/session/a%20b/event", "/session/a%20b/event"]
    );
}

#[tokio::test]
async fn session_handle_logs_into_its_session() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST).path("/session/sess-9/event");
            then.status(200).body(r#"{"event_id":"e","success":true}"#);
        })
        .await;
    let session = client(&server).session("sess-9");
    session.log(Event::session("root")).await.unwrap();
    session.log(Event::model("m")).await.unwrap();
    mock.assert_calls_async(2).await;
}

/// A loopback server that answers every request with the documented 200 and
/// keeps each request's path and body.
struct Recorder {
    server: MockServer,
    requests: Arc<Mutex<Vec<PathAndBody>>>,
}

type PathAndBody = (String, Vec<u8>);

async fn recording_server() -> Recorder {
    let server = MockServer::start_async().await;
    let requests = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&requests);
    server
        .mock_async(move |_when, then| {
            then.respond_with(move |request: &HttpMockRequest| {
                sink.lock()
                    .unwrap()
                    .push((request.uri().path().to_owned(), request.body_vec()));
                HttpMockResponse::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(r#"{"event_id":"evt-root","success":true}"#)
                    .build()
            });
        })
        .await;
    Recorder { server, requests }
}

impl Recorder {
    fn bodies(&self) -> Vec<Vec<u8>> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(_, body)| body.clone())
            .collect()
    }

    fn paths(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(path, _)| path.clone())
            .collect()
    }
}

#[tokio::test]
async fn requests_go_through_a_configured_proxy() {
    // The proxy is a loopback server that answers for the target, which
    // does not exist: an answer proves the request went to the proxy.
    let proxy = MockServer::start_async().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    proxy
        .mock_async(move |_when, then| {
            then.respond_with(move |request: &HttpMockRequest| {
                let auth = request
                    .headers()
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_owned());
                sink.lock().unwrap().push((request.uri().to_string(), auth));
                HttpMockResponse::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(r#"{"event_id":"via-proxy","success":true}"#)
                    .build()
            });
        })
        .await;
    let unreachable_port = support::closed_port();
    let client = Client::builder()
        .api_key(KEY)
        .base_url(format!("http://127.0.0.1:{unreachable_port}"))
        .proxy(proxy.base_url())
        .build()
        .unwrap();

    let logged = client.log_event("s", Event::tool("t")).await.unwrap();

    assert_eq!(logged.event_id, "via-proxy");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].0,
        format!("http://127.0.0.1:{unreachable_port}/session/s/event")
    );
    assert_eq!(seen[0].1.as_deref(), Some(format!("Bearer {KEY}").as_str()));
}

#[tokio::test]
async fn proxy_credentials_never_show() {
    let port = support::closed_port();
    let builder = Client::builder()
        .api_key(KEY)
        .base_url("http://127.0.0.1:9")
        .proxy(format!("http://proxyuser:proxy-pass-4242@127.0.0.1:{port}"))
        .retry_policy(honeyhive::RetryPolicy::none());
    let client = builder.clone().build().unwrap();
    let err = client.log_event("s", Event::tool("t")).await.unwrap_err();
    for shown in [
        format!("{builder:?}"),
        format!("{client:?}"),
        format!("{err}"),
        format!("{err:?}"),
    ] {
        assert!(!shown.contains("proxy-pass-4242"), "{shown}");
    }
    assert!(matches!(err, honeyhive::Error::Transport { .. }), "{err:?}");

    let bad = Client::builder()
        .api_key(KEY)
        .proxy("not a url at all")
        .build()
        .unwrap_err();
    assert!(
        matches!(bad, honeyhive::Error::InvalidInput { ref field, .. } if field == "proxy"),
        "{bad:?}"
    );
}

/// The header names the README's "What goes on the wire" lists, as
/// `` `Name: value` ``.
fn headers_the_readme_lists() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("the README beside the crate");
    let section = readme
        .split("### What goes on the wire")
        .nth(1)
        .and_then(|rest| rest.split("\n#").next())
        .expect("the README has the section");
    section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|code| {
            let (name, _) = code.split_once(": ")?;
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
                .then(|| name.to_ascii_lowercase())
        })
        .collect()
}

#[tokio::test]
async fn every_header_the_client_sends_is_in_the_readme() {
    let server = MockServer::start_async().await;
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&seen);
    server
        .mock_async(move |_when, then| {
            then.respond_with(move |request: &HttpMockRequest| {
                let mut names = sink.lock().unwrap();
                for name in request.headers().keys() {
                    names.push(name.as_str().to_ascii_lowercase());
                }
                HttpMockResponse::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(r#"{"event_id":"e","success":true}"#)
                    .build()
            });
        })
        .await;
    let client = client(&server);
    client.log_event("s", Event::tool("t")).await.unwrap();
    client
        .raw()
        .log_event()
        .session_id("s")
        .body(Event::tool("t").into_api().unwrap())
        .send()
        .await
        .unwrap();
    let listed = headers_the_readme_lists();
    // What HTTP itself needs, which no reader needs told.
    let transport = ["host", "content-length"];
    let mut unlisted: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|name| !transport.contains(&name.as_str()) && !listed.contains(name))
        .cloned()
        .collect();
    unlisted.dedup();
    assert!(
        unlisted.is_empty(),
        "sent but not in the README: {unlisted:?} (it lists {listed:?})"
    );
}
