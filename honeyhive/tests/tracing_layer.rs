//! `HoneyHiveLayer`: span trees as the mock receives them.
#![cfg(feature = "tracing")]

use std::time::Duration;

use honeyhive::testing::MockHoneyHive;
use honeyhive::tracing::HoneyHiveLayer;
use honeyhive::{Logger, LoggerConfig};
use serde_json::{Value, json};
use tracing::Instrument;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

async fn mock_logger() -> (MockHoneyHive, Logger) {
    mock_logger_with(LoggerConfig::default()).await
}

async fn mock_logger_with(config: LoggerConfig) -> (MockHoneyHive, Logger) {
    let mock = MockHoneyHive::start_async().await;
    let logger = Logger::new(&mock.client().unwrap(), config).unwrap();
    (mock, logger)
}

/// The names of the root events the mock received, sorted.
fn root_names(mock: &MockHoneyHive) -> Vec<String> {
    let mut names: Vec<String> = mock
        .events()
        .iter()
        .map(|e| e.event["event_name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// The event without what changes from run to run (ids and times), after
/// checking that those are there and coherent.
fn steady(mut event: Value) -> Value {
    let map = event.as_object_mut().unwrap();
    let start = map.remove("start_time").unwrap().as_u64().unwrap();
    let end = map.remove("end_time").unwrap().as_u64().unwrap();
    let duration = map.remove("duration").unwrap().as_f64().unwrap();
    // The end is the start plus the duration (whole milliseconds apart).
    assert!(end >= start && duration >= 0.0);
    assert!(
        ((end - start) as f64 - duration).abs() < 1.0,
        "start {start}, end {end}, duration {duration}"
    );
    assert!(map.remove("event_id").is_some());
    if let Some(Value::Array(children)) = map.get_mut("children") {
        for child in children {
            *child = steady(child.take());
        }
    }
    event
}

#[tokio::test(flavor = "current_thread")]
async fn a_three_level_tree_is_one_event_with_fields_where_the_table_says() {
    let (mock, logger) = mock_logger().await;
    let layer = HoneyHiveLayer::new(logger.clone());
    let subscriber = tracing_subscriber::registry().with(layer.clone());
    tracing::subscriber::with_default(subscriber, || {
        let root = tracing::info_span!(
            "agent",
            honeyhive.session_id = "sess-7",
            gen_ai.operation.name = "invoke_agent",
            user_properties.plan = "pro",
        );
        root.in_scope(|| {
            let step = tracing::info_span!(
                "plan",
                inputs.question = "weather?",
                outputs.answer = tracing::field::Empty
            );
            step.in_scope(|| {
                tracing::info_span!(
                    "llm",
                    gen_ai.operation.name = "chat",
                    gen_ai.request.model = "gpt-4o",
                    gen_ai.usage.input_tokens = 12u64,
                    config.temperature = 0.5,
                    feedback.liked = true,
                    retries = 2,
                )
                .in_scope(|| {});
                tracing::info_span!(
                    "search",
                    honeyhive.event_type = "tool",
                    honeyhive.event_name = "web search"
                )
                .in_scope(|| tracing::error!("upstream said 502"));
            });
            step.record("outputs.answer", "sunny");
        });
    });
    let report = logger.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.stats.sent, 1);
    assert_eq!(layer.stats().trees_logged, 1);
    let received = mock.events();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].session_id, "sess-7");
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    let expected = json!({
        "event_name": "agent",
        "event_type": "chain",
        "metadata": {"gen_ai.operation.name": "invoke_agent"},
        "user_properties": {"plan": "pro"},
        "children": [{
            "event_name": "plan",
            "event_type": "chain",
            "inputs": {"question": "weather?"},
            "outputs": {"answer": "sunny"},
            "children": [
                {
                    // A model event is named after its model.
                    "event_name": "gpt-4o",
                    "event_type": "model",
                    "config": {"model": "gpt-4o", "temperature": 0.5},
                    "metrics": {"prompt_tokens": 12},
                    "feedback": {"liked": true},
                    "metadata": {"gen_ai.operation.name": "chat", "retries": 2},
                },
                {
                    "event_name": "web search",
                    "event_type": "tool",
                    "error": "upstream said 502",
                },
            ],
        }],
    });
    assert_eq!(steady(received[0].event.clone()), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_moving_between_threads_and_reentered_spans_make_one_tree() {
    let (mock, logger) = mock_logger().await;
    let layer = HoneyHiveLayer::new(logger.clone()).session_id("s-async");
    let subscriber = tracing_subscriber::registry().with(layer.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let root = tracing::info_span!("request");
    // Each step is entered and left on whichever worker thread polls it.
    // The last handle of each is dropped here, where this thread's default
    // subscriber is set: the registry tells the parent a child closed
    // through the *current* default subscriber, which a worker thread
    // dropping a finished task's future outside its poll does not have.
    let steps: Vec<_> = (0..4)
        .map(|i| tracing::info_span!(parent: &root, "step", inputs.i = i))
        .collect();
    let tasks: Vec<_> = steps
        .iter()
        .map(|step| {
            tokio::spawn(
                async move {
                    for _ in 0..5 {
                        tokio::task::yield_now().await; // polled again, maybe elsewhere
                    }
                }
                .instrument(step.clone())
                .with_subscriber_dispatch(dispatch.clone()),
            )
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    drop(steps);
    // Entered and left several times: still one span.
    for _ in 0..3 {
        let _in = root.enter();
    }
    drop(root);
    let report = logger.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        layer.stats().trees_logged,
        1,
        "{:?} {report:?}",
        layer.stats()
    );
    let received = mock.events();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].session_id, "s-async");
    let children = received[0].event["children"].as_array().unwrap();
    assert_eq!(children.len(), 4);
    let mut seen: Vec<i64> = children
        .iter()
        .map(|c| c["inputs"]["i"].as_i64().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, [0, 1, 2, 3]);
    assert_eq!(received[0].event["event_type"], "chain");
    assert!(children.iter().all(|c| c["event_type"] == "tool"));
}

trait WithDispatch: Sized {
    fn with_subscriber_dispatch(
        self,
        dispatch: tracing::Dispatch,
    ) -> tracing::instrument::WithDispatch<Self>;
}

impl<F: std::future::Future> WithDispatch for F {
    fn with_subscriber_dispatch(
        self,
        dispatch: tracing::Dispatch,
    ) -> tracing::instrument::WithDispatch<Self> {
        tracing::instrument::WithSubscriber::with_subscriber(self, dispatch)
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_span_whose_parent_is_filtered_out_joins_the_nearest_recorded_ancestor() {
    let (mock, logger) = mock_logger().await;
    let layer = HoneyHiveLayer::new(logger.clone()).with_filter(
        tracing_subscriber::filter::filter_fn(|meta| meta.name() != "hidden"),
    );
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("root").in_scope(|| {
            tracing::info_span!("hidden").in_scope(|| {
                tracing::info_span!("leaf").in_scope(|| {});
            });
        });
    });
    logger.shutdown(Duration::from_secs(5)).await;
    let received = mock.events();
    assert_eq!(received.len(), 1);
    let root = &received[0].event;
    assert_eq!(root["event_name"], "root");
    assert_eq!(root["children"][0]["event_name"], "leaf");
    assert_eq!(root["children"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn five_thousand_children_under_one_root_are_capped_and_counted() {
    let (mock, logger) = mock_logger().await;
    let layer = HoneyHiveLayer::new(logger.clone());
    let subscriber = tracing_subscriber::registry().with(layer.clone());
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("root").in_scope(|| {
            for i in 0..5_000 {
                tracing::info_span!("child", inputs.i = i).in_scope(|| {});
            }
        });
    });
    logger.shutdown(Duration::from_secs(5)).await;
    let received = mock.events();
    assert_eq!(received.len(), 1);
    let root = &received[0].event;
    // The root is one of the 1 000 nodes.
    assert_eq!(root["children"].as_array().unwrap().len(), 999);
    assert_eq!(root["metadata"]["honeyhive.spans_omitted"], 4_001);
    assert_eq!(layer.stats().spans_omitted, 4_001);
}

#[tokio::test(flavor = "current_thread")]
async fn roots_over_the_open_limit_are_counted_not_recorded() {
    let (mock, logger) = mock_logger().await;
    let layer = HoneyHiveLayer::new(logger.clone()).max_open_roots(2);
    let subscriber = tracing_subscriber::registry().with(layer.clone());
    tracing::subscriber::with_default(subscriber, || {
        let a = tracing::info_span!("a");
        let b = tracing::info_span!("b");
        let c = tracing::info_span!("c"); // a third open root
        drop((a, b, c));
        tracing::info_span!("d").in_scope(|| {}); // room again
    });
    logger.shutdown(Duration::from_secs(5)).await;
    assert_eq!(root_names(&mock), ["a", "b", "d"]);
    assert_eq!(layer.stats().roots_omitted, 1);
    assert_eq!(layer.stats().trees_logged, 3);
}

/// Waits (up to 5 s) until the mock has received `count` events.
async fn received(mock: &MockHoneyHive, count: usize) -> Vec<Value> {
    for _ in 0..500 {
        let events = mock.events();
        if events.len() >= count {
            return events.into_iter().map(|e| e.event).collect();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{count} events did not arrive in 5 s: {:?}", mock.events());
}

fn children_names(event: &Value) -> Vec<&str> {
    event["children"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| c["event_name"].as_str().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "current_thread")]
async fn a_long_root_sends_what_closed_under_it_in_parts_on_time() {
    let (mock, logger) = mock_logger().await;
    let layer = HoneyHiveLayer::new(logger.clone()).max_age(Duration::from_millis(200));
    let subscriber = tracing_subscriber::registry().with(layer.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let server = tracing::info_span!("server", honeyhive.session_id = "long-run");
    tracing::info_span!(parent: &server, "request-1").in_scope(|| {});
    let open = tracing::info_span!(parent: &server, "request-2");
    // No other root starts: the Logger's tick sends the part on time.
    let first = received(&mock, 1).await;
    assert_eq!(first[0]["event_name"], "server");
    assert_eq!(first[0]["metadata"]["honeyhive.partial"], true);
    assert_eq!(first[0]["metadata"]["honeyhive.part"], 1);
    assert_eq!(children_names(&first[0]), ["request-1"]);
    drop(open);
    tracing::info_span!(parent: &server, "request-3").in_scope(|| {});
    drop(server);
    let all = received(&mock, 2).await;
    let last = &all[1];
    assert_eq!(last["metadata"]["honeyhive.part"], 2);
    assert!(
        last["metadata"].get("honeyhive.partial").is_none(),
        "{last}"
    );
    assert_eq!(children_names(last), ["request-2", "request-3"]);
    let sessions: Vec<_> = mock.events().iter().map(|e| e.session_id.clone()).collect();
    assert_eq!(sessions, ["long-run", "long-run"]);
    assert_ne!(
        all[0]["event_id"], all[1]["event_id"],
        "each part is an event"
    );
    let report = logger.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.stats.sent, 2);
    let stats = layer.stats();
    assert_eq!(
        (stats.trees_logged, stats.trees_partial),
        (2, 1),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_root_still_open_at_shutdown_is_sent_as_it_stands() {
    let (mock, logger) = mock_logger().await;
    let layer = HoneyHiveLayer::new(logger.clone());
    let subscriber = tracing_subscriber::registry().with(layer.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    // The root entered at the top of `main`, still open at exit.
    let main = tracing::info_span!("main");
    let entered = main.enter();
    tracing::info_span!("step-1").in_scope(|| {});
    tracing::info_span!("step-2").in_scope(|| {});
    let report = logger.shutdown(Duration::from_secs(5)).await;
    assert!(report.complete);
    assert_eq!(report.stats.sent, 1, "{report:?}");
    let events = mock.events();
    assert_eq!(events.len(), 1);
    let sent = &events[0].event;
    assert_eq!(sent["event_name"], "main");
    assert_eq!(sent["metadata"]["honeyhive.partial"], true);
    assert_eq!(children_names(sent), ["step-1", "step-2"]);
    // What closes after the shutdown is refused by the Logger and counted.
    tracing::info_span!("step-3").in_scope(|| {});
    drop(entered);
    drop(main);
    let stats = layer.stats();
    assert_eq!(
        (stats.trees_logged, stats.trees_partial, stats.trees_refused),
        (1, 1, 1),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_unsent_tree_counts_against_the_queue_byte_bound_and_a_refused_one_is_counted() {
    let (mock, logger) = mock_logger_with(LoggerConfig::default().max_queue_bytes(16 * 1024)).await;
    let layer = HoneyHiveLayer::new(logger.clone());
    let subscriber = tracing_subscriber::registry().with(layer.clone());
    let big = "x".repeat(64 * 1024);
    // On this one thread nothing is sent until the test awaits: the trees
    // wait in the queue, unbuilt.
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("small", inputs.q = "hi").in_scope(|| {});
        tracing::info_span!("big", inputs.q = big.as_str()).in_scope(|| {});
        tracing::info_span!("small too").in_scope(|| {});
    });
    let stats = layer.stats();
    assert_eq!(
        (stats.trees_logged, stats.trees_refused),
        (2, 1),
        "{stats:?}"
    );
    let report = logger.shutdown(Duration::from_secs(5)).await;
    assert_eq!((report.stats.sent, report.stats.dropped), (2, 1));
    assert_eq!(root_names(&mock), ["small", "small too"]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_root_whose_session_id_cannot_name_a_session_is_refused_and_counted() {
    let (mock, logger) = mock_logger().await;
    let layer = HoneyHiveLayer::new(logger.clone());
    let subscriber = tracing_subscriber::registry().with(layer.clone());
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("blank", honeyhive.session_id = " ").in_scope(|| {});
        tracing::info_span!("dots", honeyhive.session_id = "..").in_scope(|| {});
        tracing::info_span!("fine", honeyhive.session_id = "s-1").in_scope(|| {});
    });
    let report = logger.shutdown(Duration::from_secs(5)).await;
    let stats = layer.stats();
    assert_eq!(
        (stats.trees_logged, stats.trees_refused),
        (1, 2),
        "{stats:?}"
    );
    assert_eq!(report.stats.sent, 1);
    let events = mock.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].session_id, "s-1");
    assert_eq!(events[0].event["event_name"], "fine");
}

#[tokio::test(flavor = "current_thread")]
async fn a_field_recorded_again_keeps_its_last_value_only() {
    // The span must not grow with each record: 10 000 values would be
    // hundreds of KiB, over this queue's bound.
    let (mock, logger) = mock_logger_with(LoggerConfig::default().max_queue_bytes(64 * 1024)).await;
    let layer = HoneyHiveLayer::new(logger.clone());
    let subscriber = tracing_subscriber::registry().with(layer.clone());
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!(
            "loop",
            metrics.step = tracing::field::Empty,
            outputs.text = tracing::field::Empty
        );
        for step in 0..10_000u64 {
            span.record("metrics.step", step);
        }
        span.record("outputs.text", "first");
        span.record("outputs.text", "last");
    });
    assert_eq!(layer.stats().trees_logged, 1, "{:?}", layer.stats());
    logger.shutdown(Duration::from_secs(5)).await;
    let event = &mock.events()[0].event;
    assert_eq!(event["metrics"], json!({"step": 9_999}));
    assert_eq!(event["outputs"], json!({"text": "last"}));
}

#[tokio::test(flavor = "current_thread")]
async fn a_session_scope_sends_each_span_under_it_as_a_root_in_its_session_and_itself_as_the_session_event()
 {
    let (mock, logger) = mock_logger().await;
    let layer = HoneyHiveLayer::new(logger.clone());
    let subscriber = tracing_subscriber::registry().with(layer.clone());
    tracing::subscriber::with_default(subscriber, || {
        let scope = tracing::info_span!(
            "conversation",
            honeyhive.event_type = "session",
            honeyhive.session_id = "conv-1",
        );
        scope.in_scope(|| {
            tracing::info_span!("turn 1").in_scope(|| {
                tracing::info_span!("llm", gen_ai.operation.name = "chat").in_scope(|| {});
                // A span a framework starts as a root (`parent: None`)
                // while the app's span is current joins its session.
                tracing::info_span!(parent: None, "embeddings").in_scope(|| {});
            });
            tracing::info_span!("turn 2").in_scope(|| {});
        });
    });
    // Outside the scope, a root goes to a session of its own.
    let subscriber = tracing_subscriber::registry().with(layer.clone());
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("alone").in_scope(|| {});
    });
    logger.shutdown(Duration::from_secs(5)).await;
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    let mut by_name: Vec<(String, String, String)> = mock
        .events()
        .iter()
        .map(|received| {
            (
                received.event["event_name"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                received.event["event_type"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                received.session_id.to_string(),
            )
        })
        .collect();
    by_name.sort();
    let in_conv = |name: &str, kind: &str| (name.to_owned(), kind.to_owned(), "conv-1".to_owned());
    let alone = by_name.iter().find(|(name, ..)| name == "alone").cloned();
    let alone_session = alone.as_ref().map(|(.., session)| session.clone());
    assert_ne!(alone_session.as_deref(), Some("conv-1"));
    assert_eq!(
        by_name,
        vec![
            alone.expect("the root outside the scope"),
            in_conv("conversation", "session"),
            in_conv("embeddings", "tool"),
            in_conv("turn 1", "chain"),
            in_conv("turn 2", "tool"),
        ]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_framework_root_under_a_root_with_no_session_yet_shares_the_session_it_gets() {
    let (mock, logger) = mock_logger().await;
    let layer = HoneyHiveLayer::new(logger.clone());
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        // No scope, no `honeyhive.session_id`, no layer session: the
        // enclosing root's session is decided when the inner root starts.
        tracing::info_span!("request").in_scope(|| {
            tracing::info_span!(parent: None, "framework").in_scope(|| {});
            // Inside a tree, a `session` span is an ordinary child.
            tracing::info_span!("nested", honeyhive.event_type = "session").in_scope(|| {});
        });
    });
    logger.shutdown(Duration::from_secs(5)).await;
    let events = mock.events();
    assert_eq!(root_names(&mock), ["framework", "request"]);
    assert_eq!(
        events[0].session_id, events[1].session_id,
        "one session for both trees"
    );
    let request = events
        .iter()
        .find(|received| received.event["event_name"] == "request")
        .expect("the request tree");
    assert_eq!(request.event["children"][0]["event_name"], "nested");
    assert_eq!(request.event["children"][0]["event_type"], "session");
}
