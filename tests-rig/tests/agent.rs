//! A rig agent with one tool, on rig's OpenAI provider pointed at a
//! loopback fake of OpenAI's Chat Completions, traced by the
//! `HoneyHiveLayer` into the mock HoneyHive: the events HoneyHive would
//! show are checked field by field.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use honeyhive::testing::MockHoneyHive;
use honeyhive::tracing::HoneyHiveLayer;
use honeyhive::{Logger, LoggerConfig, SessionId};
use rig_agent::AgentBuilder;
use rig_agent::tool::{Tool, ToolContext};
use rig_core::providers::openai::OpenAIConfig;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

const MODEL: &str = "gpt-4o-mini";
const PROMPT: &str = "What is the weather in Paris?";
const PREAMBLE: &str = "You answer weather questions with the weather tool.";
const FORECAST: &str = "sunny, 21 degrees";
const ANSWER: &str = "It is sunny in Paris, 21 degrees.";

/// The tool: a fixed forecast for the city it is asked about.
#[derive(Clone)]
struct Weather;

impl Tool for Weather {
    const NAME: &'static str = "weather";
    type Args = Value;
    type Output = String;
    type Error = Infallible;

    fn description(&self) -> String {
        "The weather in a city".to_owned()
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        })
    }

    async fn call(&self, _context: &mut ToolContext, args: Value) -> Result<String, Infallible> {
        assert_eq!(
            args["city"], "Paris",
            "the model's arguments reach the tool"
        );
        Ok(FORECAST.to_owned())
    }
}

/// The fake OpenAI's replies: a call of the tool first, then (once the
/// request carries the tool's result) the answer.
fn reply(request: &Value) -> Value {
    let answered = request["messages"]
        .as_array()
        .is_some_and(|messages| messages.iter().any(|message| message["role"] == "tool"));
    if answered {
        json!({
            "id": "chatcmpl-2", "object": "chat.completion", "created": 1_700_000_001,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": ANSWER}}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49},
        })
    } else {
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": null, "tool_calls": [{
                    "id": "call_1", "type": "function",
                    "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"},
                }]}}],
            "usage": {"prompt_tokens": 25, "completion_tokens": 7, "total_tokens": 32},
        })
    }
}

/// A loopback HTTP/1.1 server answering every request with [`reply`], one
/// request per connection; remembers each request's path.
async fn fake_openai() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let address = listener.local_addr().expect("local address");
    let paths = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&paths);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head_end, length) = loop {
                    let read = stream.read(&mut chunk).await.unwrap_or(0);
                    if read == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..read]);
                    if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|line| line.strip_prefix("content-length:"))
                            .and_then(|value| value.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while buffer.len() < head_end + length {
                    let read = stream.read(&mut chunk).await.unwrap_or(0);
                    if read == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..read]);
                }
                let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                seen.lock().expect("paths").push(path);
                let request: Value = serde_json::from_slice(&buffer[head_end..head_end + length])
                    .unwrap_or(Value::Null);
                let body = reply(&request).to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (format!("http://{address}"), paths)
}

/// Every event of a tree, the root first.
fn flatten(event: &Value, into: &mut Vec<Value>) {
    let mut own = event.clone();
    if let Some(object) = own.as_object_mut() {
        object.remove("children");
    }
    into.push(own);
    for child in event["children"].as_array().into_iter().flatten() {
        flatten(child, into);
    }
}

fn is_filled(value: &Value) -> bool {
    value.as_object().is_some_and(|object| !object.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rig_agent_with_a_tool_arrives_as_the_events_honeyhive_shows() {
    tokio::time::timeout(Duration::from_secs(60), run())
        .await
        .expect("the run ends within a minute");
}

async fn run() {
    // Installed once for the process; an error only says one already is.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mock = MockHoneyHive::start_async().await;
    let logger =
        Logger::new(&mock.client().expect("client"), LoggerConfig::default()).expect("logger");
    let layer = HoneyHiveLayer::new(logger.clone());
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer.clone()))
        .expect("the only subscriber of this test binary");

    let (base_url, paths) = fake_openai().await;
    let model = OpenAIConfig::new("test-key")
        .with_base_url(base_url)
        .client()
        .chat(MODEL);
    let agent = AgentBuilder::new(model)
        .preamble(PREAMBLE)
        .tool(Weather)
        .record_content_telemetry(true)
        .build();

    // First run: no span of the app's around it, so rig starts its own
    // `invoke_agent` root.
    let answer = agent
        .prompt(PROMPT)
        .max_turns(3)
        .await
        .expect("the agent answers");
    assert_eq!(answer.to_string(), ANSWER);

    // Second run, in the app's session scope. rig adopts the current span
    // as its agent span (and records the prompt on it, as it is declared),
    // so the model and tool spans are the scope's direct children: each
    // goes out as a root of its own in the scope's session.
    let session = SessionId::new();
    let conversation = tracing::info_span!(
        "conversation",
        honeyhive.event_type = "session",
        honeyhive.session_id = %session,
        user_properties.user = "u-42",
        gen_ai.prompt = tracing::field::Empty,
        gen_ai.completion = tracing::field::Empty,
    );
    let answer = async { agent.prompt(PROMPT).max_turns(3).await }
        .instrument(conversation.clone())
        .await
        .expect("the agent answers");
    conversation.record("gen_ai.completion", answer.to_string());
    drop(conversation);

    let report = logger.shutdown(Duration::from_secs(10)).await;
    assert_eq!(report.stats.failed, 0, "{report:?}");
    let paths = paths.lock().expect("paths").clone();
    assert_eq!(paths.len(), 4, "two model calls a run: {paths:?}");
    assert!(
        paths.iter().all(|path| path.ends_with("/chat/completions")),
        "{paths:?}"
    );
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());

    let received = mock.events();
    let mut scoped = Vec::new();
    let mut unscoped = Vec::new();
    for event in &received {
        let events = if event.session_id == session.to_string() {
            &mut scoped
        } else {
            &mut unscoped
        };
        flatten(&event.event, events);
    }
    let sessions: std::collections::BTreeSet<_> =
        received.iter().map(|event| &event.session_id).collect();
    assert_eq!(sessions.len(), 2, "one session a run: {received:#?}");
    let of_type = |events: &[Value], kind: &str| -> Vec<Value> {
        events
            .iter()
            .filter(|event| event["event_type"] == kind)
            .cloned()
            .collect()
    };

    // First run: the agent's chain, the prompt in and the answer out.
    let chains = of_type(&unscoped, "chain");
    assert_eq!(chains.len(), 1, "{unscoped:#?}");
    let agent_event = &chains[0];
    let history = agent_event["inputs"]["chat_history"]
        .as_array()
        .expect("agent history");
    assert_eq!(
        history[0],
        json!({"role": "system", "content": PREAMBLE}),
        "{agent_event:#}"
    );
    assert_eq!(
        history[1],
        json!({"role": "user", "content": PROMPT}),
        "{agent_event:#}"
    );
    assert_eq!(agent_event["outputs"]["content"], ANSWER, "{agent_event:#}");
    // rig records the whole run's usage on the agent span: kept there in
    // metadata under its own names, not as the metrics HoneyHive sums per
    // session, so the session counts each token once (on the model events).
    for metric in ["prompt_tokens", "completion_tokens", "total_tokens"] {
        assert!(
            agent_event["metrics"].get(metric).is_none(),
            "{metric} on the chain: {agent_event:#}"
        );
    }
    let models = of_type(&unscoped, "model");
    let summed = |metric: &str| -> u64 {
        models
            .iter()
            .map(|model| model["metrics"][metric].as_u64().expect("a token count"))
            .sum()
    };
    assert_eq!(
        (
            &agent_event["metadata"]["gen_ai.usage.input_tokens"],
            &agent_event["metadata"]["gen_ai.usage.output_tokens"],
        ),
        (
            &json!(summed("prompt_tokens")),
            &json!(summed("completion_tokens"))
        ),
        "the run's usage is its model calls' sum: {agent_event:#}"
    );
    assert_run(&unscoped);

    // Second run: the scope is the session event, with what the app
    // declared on it; the model and tool events are in its session.
    let session_events = of_type(&scoped, "session");
    assert_eq!(session_events.len(), 1, "{scoped:#?}");
    let conversation = &session_events[0];
    assert_eq!(conversation["event_name"], "conversation");
    assert_eq!(conversation["user_properties"]["user"], "u-42");
    assert_eq!(
        conversation["inputs"]["chat_history"],
        json!([{"role": "user", "content": PROMPT}]),
        "{conversation:#}"
    );
    assert_eq!(
        conversation["outputs"]["content"], ANSWER,
        "{conversation:#}"
    );
    assert!(
        of_type(&scoped, "chain").is_empty(),
        "rig adopted the scope: {scoped:#?}"
    );
    assert_run(&scoped);
}

/// The model and tool events of one run, field by field.
fn assert_run(events: &[Value]) {
    let of_type = |kind: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|event| event["event_type"] == kind)
            .collect()
    };
    // Two model calls, named after the model, with their messages,
    // configuration and tokens where HoneyHive reads them.
    let models = of_type("model");
    assert_eq!(models.len(), 2, "{events:#?}");
    for model in &models {
        assert_eq!(model["event_name"], MODEL, "{model:#}");
        assert_eq!(model["config"]["model"], MODEL, "{model:#}");
        assert_eq!(model["config"]["provider"], "openai", "{model:#}");
        assert!(is_filled(&model["inputs"]), "{model:#}");
        assert!(is_filled(&model["outputs"]), "{model:#}");
        let history = model["inputs"]["chat_history"].as_array().expect("history");
        assert_eq!(
            history[0],
            json!({"role": "system", "content": PREAMBLE}),
            "{model:#}"
        );
        assert_eq!(
            history[1],
            json!({"role": "user", "content": PROMPT}),
            "{model:#}"
        );
        assert_eq!(
            model["metadata"]["response_model"],
            "gpt-4o-mini-2024-07-18"
        );
    }
    let by_response = |id: &str| {
        *models
            .iter()
            .find(|model| model["metadata"]["response_id"] == id)
            .unwrap_or_else(|| panic!("a model event for {id}: {models:#?}"))
    };
    let call = by_response("chatcmpl-1");
    assert_eq!(call["outputs"]["role"], "assistant", "{call:#}");
    let tool_call = &call["outputs"]["tool_calls"][0];
    assert_eq!(tool_call["id"], "call_1", "{call:#}");
    assert_eq!(tool_call["function"]["name"], "weather", "{call:#}");
    assert_eq!(
        tool_call["function"]["arguments"],
        json!({"city": "Paris"}),
        "{call:#}"
    );
    let metrics = &call["metrics"];
    assert_eq!(
        (
            &metrics["prompt_tokens"],
            &metrics["completion_tokens"],
            &metrics["total_tokens"]
        ),
        (&json!(25), &json!(7), &json!(32)),
        "{call:#}"
    );
    let answered = by_response("chatcmpl-2");
    assert_eq!(answered["outputs"]["content"], ANSWER, "{answered:#}");
    let history = answered["inputs"]["chat_history"]
        .as_array()
        .expect("history");
    assert_eq!(
        history.len(),
        4,
        "system, user, the call, its answer: {answered:#}"
    );
    assert_eq!(history[2]["tool_calls"][0]["id"], "call_1", "{answered:#}");
    assert_eq!(
        history[3],
        json!({"role": "tool", "tool_call_id": "call_1", "content": FORECAST}),
        "the tool's result in the second call's history: {answered:#}"
    );
    let metrics = &answered["metrics"];
    assert_eq!(
        (
            &metrics["prompt_tokens"],
            &metrics["completion_tokens"],
            &metrics["total_tokens"]
        ),
        (&json!(40), &json!(9), &json!(49)),
        "{answered:#}"
    );

    // The tool call: named after the tool, its arguments in, its result out.
    let tools = of_type("tool");
    assert_eq!(tools.len(), 1, "{events:#?}");
    let tool = tools[0];
    assert_eq!(tool["event_name"], "weather", "{tool:#}");
    assert_eq!(tool["inputs"], json!({"city": "Paris"}), "{tool:#}");
    assert_eq!(tool["outputs"]["result"], FORECAST, "{tool:#}");
    assert_eq!(tool["metadata"]["tool_call_id"], "call_1", "{tool:#}");
    assert_eq!(tool["config"]["tool_name"], "weather", "{tool:#}");

    // Nothing of rig's internals, and no message left as raw text.
    for event in events {
        let metadata = event["metadata"].as_object().cloned().unwrap_or_default();
        for key in metadata.keys() {
            assert!(!key.starts_with("rig."), "{key} in {event:#}");
            assert!(
                ![
                    "gen_ai.input.messages",
                    "gen_ai.output.messages",
                    "gen_ai.system_instructions",
                    "gen_ai.prompt",
                    "gen_ai.completion",
                    "gen_ai.tool.call.arguments",
                    "gen_ai.tool.call.result",
                ]
                .contains(&key.as_str()),
                "{key} in {event:#}"
            );
        }
    }
}
