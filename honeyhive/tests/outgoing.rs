//! What leaves the process, checked on the exact JSON the mock receives:
//! masks and the redactor, the API key kept out of events, sampling by
//! session, and oversize events cut to fit instead of lost.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use honeyhive::testing::MockHoneyHive;
use honeyhive::{
    Client, ClientBuilder, Error, Event, FreeForm, LogError, Logger, LoggerConfig, Redactor, Route,
};
use serde_json::{Map, Value, json};

const FIVE_SECONDS: Duration = Duration::from_secs(5);

fn redactor() -> Redactor {
    Redactor::new().keys(["password", "api_key", "authorization", "cookie", "ssn"])
}

#[tokio::test]
async fn the_redactor_replaces_keys_at_any_depth_and_patterns_in_text_on_the_wire() {
    let mock = MockHoneyHive::start_async().await;
    let client = mock.client_builder().mask(redactor()).build().unwrap();
    client
        .log_event(
            "s-1",
            Event::model("gpt-4o")
                .event_id("e-1")
                .inputs(json!({
                    "messages": [
                        {"role": "user", "content": "mail me at ann@example.com, key sk-ant-0123456789abcdefXYZ"},
                        {"headers": {"Authorization": "Bearer abc.def.ghi", "Accept": "json"}}
                    ],
                    "db": {"PASSWORD": {"nested": true}, "host": "db.internal"}
                }))
                .config(json!({"Api-Key": 12345}))
                .child(Event::tool("t").event_id("e-2").outputs(json!({"ssn": "123-45-6789", "ok": 1}))),
        )
        .await
        .unwrap();
    let events = mock.events();
    assert_eq!(events.len(), 1);
    let sent = &events[0].event;
    assert_eq!(
        sent["inputs"],
        json!({
            "messages": [
                {"role": "user", "content": "mail me at [redacted], key [redacted]"},
                {"headers": {"Authorization": "[redacted]", "Accept": "json"}}
            ],
            "db": {"PASSWORD": "[redacted]", "host": "db.internal"}
        })
    );
    assert_eq!(sent["config"], json!({"Api-Key": "[redacted]"}));
    assert_eq!(
        sent["children"][0]["outputs"],
        json!({"ssn": "[redacted]", "ok": 1})
    );
    assert!(mock.violations().is_empty());
}

#[tokio::test]
async fn the_api_key_never_leaves_in_an_event_whatever_the_mask_does() {
    let mock = MockHoneyHive::start_async().await;
    let key = MockHoneyHive::API_KEY;
    // A mask that writes the key in, on top of an event that carries it.
    let client = mock
        .client_builder()
        .mask(move |field: FreeForm, value: &mut Map<String, Value>| {
            if field == FreeForm::Metadata {
                value.insert("leak".into(), Value::String(format!("key={key}")));
            }
        })
        .build()
        .unwrap();
    let logger = Logger::new(&client, LoggerConfig::default().route(Route::EventBatch)).unwrap();
    logger
        .log(
            "s-1",
            Event::chain(format!("run {key}"))
                .error(format!("auth failed for {key}"))
                .inputs(json!({"env": {"HH_API_KEY": key}}))
                // The mask is called for fields the event has.
                .metadata(json!({"team": "search"})),
        )
        .unwrap();
    assert!(logger.shutdown(FIVE_SECONDS).await.complete);
    let events = mock.events();
    assert_eq!(events.len(), 1);
    let body = String::from_utf8(events[0].body.to_vec()).unwrap();
    assert!(!body.contains(key), "{body}");
    let sent = &events[0].event;
    assert_eq!(sent["event_name"], "run [redacted]");
    assert_eq!(sent["error"], "auth failed for [redacted]");
    assert_eq!(sent["inputs"]["env"]["HH_API_KEY"], "[redacted]");
    assert_eq!(sent["metadata"]["leak"], "key=[redacted]");
}

#[tokio::test]
async fn a_mask_that_empties_fields_leaves_an_event_its_route_takes() {
    let mock = MockHoneyHive::start_async().await;
    let client = mock
        .client_builder()
        .mask(|_: FreeForm, value: &mut Map<String, Value>| value.clear())
        .build()
        .unwrap();
    let logged = client
        .log_batch([(
            "s-1",
            Event::model("m")
                .inputs(json!({"prompt": "secret"}))
                .child(Event::tool("t").inputs(json!({"q": "secret"}))),
        )])
        .await
        .unwrap();
    assert_eq!(logged.event_ids.len(), 2);
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    for event in mock.events() {
        assert_eq!(event.event["inputs"], json!({}), "required by the v1 route");
        assert!(event.event.get("outputs").is_none());
    }
}

#[tokio::test]
async fn a_mask_that_panics_costs_only_its_event_with_the_reason() {
    let mock = MockHoneyHive::start_async().await;
    let client = mock.client_builder().mask(poisoning).build().unwrap();
    match client
        .log_event("s", Event::tool("t").inputs(json!({"poison": 1})))
        .await
    {
        Err(Error::InvalidInput { field, problem, .. }) => {
            assert_eq!(field, "mask");
            assert!(problem.contains("cannot mask this"), "{problem}");
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    let logger = Logger::new(&client, LoggerConfig::default()).unwrap();
    logger.log("s", poisoned()).unwrap();
    logger
        .log("s", Event::tool("good").event_id("good"))
        .unwrap();
    let report = logger.shutdown(FIVE_SECONDS).await;
    assert_eq!((report.stats.sent, report.stats.failed), (1, 1));
    let letter = &report.dead_letters[0];
    assert!(
        letter.reason.contains("mask") && letter.reason.contains("cannot mask this"),
        "{}",
        letter.reason
    );
    let names: Vec<Value> = mock
        .events()
        .iter()
        .map(|e| e.event["event_name"].clone())
        .collect();
    assert_eq!(names, [json!("good")]);
}

/// A mask that panics on an event whose `inputs` hold `poison`.
fn poisoning(field: FreeForm, value: &mut Map<String, Value>) {
    if field == FreeForm::Inputs && value.contains_key("poison") {
        panic!("cannot mask this");
    }
}

/// The event [`poisoning`] panics on.
fn poisoned() -> Event {
    Event::tool("bad")
        .event_id("bad")
        .inputs(json!({"poison": 1}))
}

/// The sessions a Logger on `client` delivered, of `s-0` .. `s-199`, with
/// its stats.
async fn sessions_sent(
    mock: &MockHoneyHive,
    client: &Client,
) -> (BTreeSet<String>, honeyhive::LoggerStats) {
    let logger = Logger::new(client, LoggerConfig::default()).unwrap();
    for i in 0..200 {
        logger.log(format!("s-{i}"), Event::tool("t")).unwrap();
    }
    let report = logger.shutdown(FIVE_SECONDS).await;
    assert!(report.complete);
    assert!(
        report.dead_letters.is_empty(),
        "sampled-out events are no dead letters"
    );
    let sessions = mock
        .take_events()
        .into_iter()
        .map(|e| e.session_id.to_string())
        .collect();
    (sessions, report.stats)
}

#[tokio::test]
async fn sampling_keeps_the_same_sessions_in_every_process_and_counts_the_rest() {
    let mock = MockHoneyHive::start_async().await;
    // Two clients: two processes of one distributed application.
    let first = mock.client_builder().sample_rate(0.3).build().unwrap();
    let second = mock.client_builder().sample_rate(0.3).build().unwrap();
    let (kept, stats) = sessions_sent(&mock, &first).await;
    let (again, _) = sessions_sent(&mock, &second).await;
    assert_eq!(kept, again, "the same sessions, decided from the id alone");
    assert!(
        (30..=90).contains(&kept.len()),
        "{} of 200 kept at 0.3",
        kept.len()
    );
    assert_eq!(stats.events_sampled_out, 200 - kept.len() as u64);
    assert_eq!(stats.sent, kept.len() as u64);
    assert_eq!(
        stats.enqueued,
        kept.len() as u64,
        "sampled-out events are never queued"
    );

    // log_event says so, and sends nothing.
    let out = (0..200)
        .map(|i| format!("s-{i}"))
        .find(|s| !kept.contains(s))
        .unwrap();
    let logged = first
        .log_event(&*out, Event::tool("t").event_id("x-1"))
        .await
        .unwrap();
    assert!(logged.sampled_out);
    assert_eq!((logged.event_id.as_str(), logged.attempts), ("x-1", 0));
    assert!(mock.events().is_empty());

    // Rate 0 sends nothing; log_batch counts what it left out.
    let none = mock.client_builder().sample_rate(0.0).build().unwrap();
    let requests = mock.stats().requests;
    let batch = none
        .log_batch([("a", Event::tool("t")), ("b", Event::tool("t"))])
        .await
        .unwrap();
    assert_eq!((batch.trees_sampled_out, batch.attempts), (2, 0));
    assert_eq!(mock.stats().requests, requests);
}

#[test]
fn a_sample_rate_outside_zero_to_one_is_refused_at_build_naming_the_setting() {
    for bad in [-0.01, 1.01, f64::NAN] {
        let err = Client::builder()
            .api_key("k")
            .sample_rate(bad)
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput { field, .. } if field == "sample_rate"),
            "{bad}: {err:?}"
        );
    }
    let from_env = |value: &str| {
        let value = value.to_owned();
        ClientBuilder::from_lookup(move |name| match name {
            "HH_API_KEY" => Some("hh-key".into()),
            "HH_SAMPLE_RATE" => Some(value.clone()),
            _ => None,
        })
        .and_then(ClientBuilder::build)
    };
    assert!(from_env("0.25").is_ok());
    for bad in ["2", "half", "-1"] {
        let err = from_env(bad).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput { field, .. } if field == "HH_SAMPLE_RATE"),
            "{bad}: {err:?}"
        );
    }
}

/// A string of `len` bytes of two-byte characters, so that a cut in the
/// wrong place would split one.
fn accents(len: usize) -> String {
    "é".repeat(len / 2)
}

#[tokio::test]
async fn an_oversize_event_is_cut_to_fit_and_says_what_was_cut() {
    let limit = 64 * 1024;
    let original = accents(200_000);
    for route in [Route::Event, Route::EventBatch] {
        let mock = MockHoneyHive::start_async().await;
        let client = mock.client_builder().max_body_bytes(limit).build().unwrap();
        let logger = Logger::new(&client, LoggerConfig::default().route(route)).unwrap();
        logger
            .log(
                "s-1",
                Event::model("m")
                    .inputs(json!({"prompt": original, "temperature": 0.2}))
                    .metadata(json!({"team": "search"})),
            )
            .unwrap();
        let report = logger.shutdown(FIVE_SECONDS).await;
        assert_eq!(
            (report.stats.sent, report.stats.failed),
            (1, 0),
            "{route:?}"
        );
        let events = mock.events();
        assert!(
            events[0].body.len() <= limit,
            "{route:?}: {}",
            events[0].body.len()
        );
        let sent = &events[0].event;
        let prompt = sent["inputs"]["prompt"].as_str().unwrap();
        let (kept, marker) = prompt.split_at(prompt.find("[...").unwrap());
        assert!(
            original.starts_with(kept),
            "a prefix, on a character boundary"
        );
        let cut: usize = marker
            .strip_prefix("[...")
            .and_then(|m| m.strip_suffix(" bytes cut]"))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(kept.len() + cut, original.len(), "{route:?}");
        assert_eq!(sent["inputs"]["temperature"], 0.2);
        assert_eq!(
            sent["metadata"],
            json!({"team": "search", ClientBuilder::CUT_METADATA_KEY: ["/inputs/prompt"]})
        );
        assert!(mock.violations().is_empty());
    }
}

#[tokio::test]
async fn a_batch_never_carries_an_event_that_alone_exceeds_the_limit() {
    let limit = 64 * 1024;
    let mock = MockHoneyHive::start_async().await;
    let client = mock.client_builder().max_body_bytes(limit).build().unwrap();
    let logger = Logger::new(&client, LoggerConfig::default().route(Route::EventBatch)).unwrap();
    for i in 0..3 {
        logger
            .log(
                "s",
                Event::tool(format!("small-{i}")).outputs(json!({"text": "x".repeat(30_000)})),
            )
            .unwrap();
    }
    logger
        .log(
            "s",
            Event::tool("huge")
                .child(Event::tool("kid").outputs(json!({"text": "y".repeat(300_000)}))),
        )
        .unwrap();
    let report = logger.shutdown(FIVE_SECONDS).await;
    assert_eq!((report.stats.sent, report.stats.failed), (4, 0));
    let events = mock.events();
    assert_eq!(
        events.len(),
        5,
        "three small events, and the huge tree's two"
    );
    for event in &events {
        assert!(
            event.body.len() <= limit,
            "a request of {} bytes",
            event.body.len()
        );
    }
    let kid = events
        .iter()
        .find(|e| e.event["event_name"] == "kid")
        .unwrap();
    assert_eq!(
        kid.event["metadata"][ClientBuilder::CUT_METADATA_KEY],
        json!(["/outputs/text"])
    );
}

#[tokio::test]
async fn an_event_that_is_all_numbers_cannot_be_cut_and_is_a_dead_letter_saying_why() {
    let mock = MockHoneyHive::start_async().await;
    let client = mock
        .client_builder()
        .max_body_bytes(16 * 1024)
        .build()
        .unwrap();
    let numbers: Vec<u64> = (0..10_000).collect();
    let err = client
        .log_event("s", Event::model("m").inputs(json!({"embedding": numbers})))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot make it fit"), "{err}");
    let logger = Logger::new(&client, LoggerConfig::default()).unwrap();
    logger
        .log("s", Event::model("m").inputs(json!({"embedding": numbers})))
        .unwrap();
    let report = logger.shutdown(FIVE_SECONDS).await;
    assert_eq!(report.stats.failed, 1);
    assert!(
        report.dead_letters[0].reason.contains("cannot make it fit"),
        "{}",
        report.dead_letters[0].reason
    );
    assert!(mock.events().is_empty());
}

#[tokio::test]
async fn with_cutting_off_an_oversize_event_is_refused_whole() {
    let mock = MockHoneyHive::start_async().await;
    let client = mock
        .client_builder()
        .max_body_bytes(16 * 1024)
        .cut_oversize(false)
        .build()
        .unwrap();
    let logger = Logger::new(&client, LoggerConfig::default()).unwrap();
    match logger.log(
        "s",
        Event::model("m").inputs(json!({"text": "x".repeat(20_000)})),
    ) {
        Err(LogError::Invalid { error, .. }) => {
            assert!(error.to_string().contains("cut_oversize"), "{error}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    logger.shutdown(FIVE_SECONDS).await;
    assert!(mock.events().is_empty());
}

#[cfg(feature = "tracing")]
#[tokio::test]
async fn the_tracing_layer_s_trees_pass_through_the_mask_every_span_of_them() {
    use honeyhive::tracing::HoneyHiveLayer;
    use tracing_subscriber::layer::SubscriberExt;

    let mock = MockHoneyHive::start_async().await;
    let client = mock.client_builder().mask(redactor()).build().unwrap();
    let logger = Logger::new(&client, LoggerConfig::default()).unwrap();
    let subscriber = tracing_subscriber::registry().with(HoneyHiveLayer::new(logger.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let root = tracing::info_span!("login", inputs.password = "hunter2", inputs.user = "ann");
        let _in = root.enter();
        tracing::info_span!("notify", inputs.to = "ann@example.com").in_scope(|| {});
    });
    assert!(logger.shutdown(FIVE_SECONDS).await.complete);
    let tree = &mock.events()[0].event;
    assert_eq!(
        tree["inputs"],
        json!({"password": "[redacted]", "user": "ann"})
    );
    assert_eq!(tree["children"][0]["inputs"], json!({"to": "[redacted]"}));
}

#[tokio::test]
async fn session_starts_and_updates_pass_through_the_mask_and_lose_the_key() {
    let mock = MockHoneyHive::start_async().await;
    let key = MockHoneyHive::API_KEY;
    let client = mock.client_builder().mask(redactor()).build().unwrap();
    let started = client
        .start_session(honeyhive::SessionStart::new("chat").metadata(
            json!({"password": "p", "note": format!("k={key}"), "who": "ann@example.com"}),
        ))
        .await
        .unwrap();
    assert!(!started.sampled_out);
    client
        .update_event(
            "0f8e2a8c-2f57-4d8e-9a39-0c6a4f1b2d11",
            honeyhive::EventUpdate::new()
                .feedback(json!({"comment": "call me on sk-live-0123456789abcdefgh", "ssn": 1}))
                .outputs(json!({"text": key})),
        )
        .await
        .unwrap();
    let session = &mock.sessions()[0].session;
    assert_eq!(
        session["metadata"],
        json!({"password": "[redacted]", "note": "k=[redacted]", "who": "[redacted]"})
    );
    let update = &mock.updates()[0].update;
    assert_eq!(
        update["feedback"],
        json!({"comment": "call me on [redacted]", "ssn": "[redacted]"})
    );
    assert_eq!(update["outputs"], json!({"text": "[redacted]"}));

    // A sampled-out session is not started.
    let none = mock.client_builder().sample_rate(0.0).build().unwrap();
    let requests = mock.stats().requests;
    let out = none
        .start_session(honeyhive::SessionStart::new("chat"))
        .await
        .unwrap();
    assert!(out.sampled_out);
    assert_eq!(mock.stats().requests, requests);
}

#[tokio::test]
async fn a_cut_through_the_api_key_leaves_no_part_of_it() {
    let mock = MockHoneyHive::start_async().await;
    let key = MockHoneyHive::API_KEY;
    let limit = 16 * 1024;
    let client = mock.client_builder().max_body_bytes(limit).build().unwrap();
    // The key sits where a cut to the limit would fall, over and over.
    let text = format!("{key} ").repeat(4 * limit / (key.len() + 1));
    client
        .log_event("s", Event::model("m").inputs(json!({"text": text})))
        .await
        .unwrap();
    let body = String::from_utf8(mock.events()[0].body.to_vec()).unwrap();
    assert!(!body.contains("hh-mock"), "a part of the key is left");
    assert!(body.contains("[redacted]"));
}

#[tokio::test]
async fn in_batches_a_panicking_mask_and_an_uncuttable_event_cost_only_themselves() {
    let mock = MockHoneyHive::start_async().await;
    let client = mock
        .client_builder()
        .max_body_bytes(16 * 1024)
        .mask(poisoning)
        .build()
        .unwrap();
    let logger = Logger::new(&client, LoggerConfig::default().route(Route::EventBatch)).unwrap();
    let numbers: Vec<u64> = (0..10_000).collect();
    logger.log("s", poisoned()).unwrap();
    logger
        .log(
            "s",
            Event::tool("big")
                .event_id("big")
                .inputs(json!({"v": numbers})),
        )
        .unwrap();
    logger
        .log("s", Event::tool("good").event_id("good"))
        .unwrap();
    let report = logger.shutdown(FIVE_SECONDS).await;
    assert_eq!((report.stats.sent, report.stats.failed), (1, 2));
    let reasons: Vec<&str> = report
        .dead_letters
        .iter()
        .map(|l| l.reason.as_str())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("cannot mask this")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("cannot make it fit")),
        "{reasons:?}"
    );
    let names: Vec<Value> = mock
        .events()
        .iter()
        .map(|e| e.event["event_name"].clone())
        .collect();
    assert_eq!(names, [json!("good")]);
    assert!(mock.violations().is_empty());
}

#[tokio::test]
async fn an_event_whose_bulk_is_escaped_characters_is_cut_by_its_escaped_size() {
    let mock = MockHoneyHive::start_async().await;
    let limit = 64 * 1024;
    let client = mock.client_builder().max_body_bytes(limit).build().unwrap();
    // 40 000 control characters: 40 KB of text, 240 KB of JSON.
    let logged = client
        .log_event(
            "s-1",
            Event::tool("t").inputs(json!({"raw": "\u{1}".repeat(40_000)})),
        )
        .await
        .expect("cut to fit, not refused as uncuttable");
    assert_eq!(logged.attempts, 1);
    let events = mock.events();
    let raw = events[0].event["inputs"]["raw"].as_str().unwrap();
    assert!(raw.ends_with(" bytes cut]"), "{}", &raw[raw.len() - 30..]);
    let kept = raw.chars().filter(|c| *c == '\u{1}').count();
    assert!(
        (9_000..11_000).contains(&kept),
        "about 64 KiB of JSON kept, 6 bytes each: {kept}"
    );
    assert_eq!(
        events[0].event["metadata"]["honeyhive.cut"],
        json!(["/inputs/raw"])
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_mask_runs_off_the_runtime_s_threads_and_only_for_fields_an_event_has() {
    use std::sync::Mutex;
    let runtime_thread = std::thread::current().id();
    let calls: Arc<Mutex<Vec<(FreeForm, std::thread::ThreadId)>>> = Arc::default();
    let seen = Arc::clone(&calls);
    let mock = MockHoneyHive::start_async().await;
    let client = mock
        .client_builder()
        .mask(move |field: FreeForm, _value: &mut Map<String, Value>| {
            seen.lock()
                .unwrap()
                .push((field, std::thread::current().id()));
        })
        .build()
        .unwrap();
    let event = || {
        Event::tool("t")
            .inputs(json!({"q": 1}))
            .metadata(json!({"m": 2}))
    };
    client.log_event("s-1", event()).await.unwrap();
    client.log_batch([("s-1", event())]).await.unwrap();
    for route in [Route::Event, Route::EventBatch] {
        let logger = Logger::new(&client, LoggerConfig::default().route(route)).unwrap();
        logger.log("s-1", event()).unwrap();
        assert!(logger.shutdown(FIVE_SECONDS).await.complete);
    }
    let calls = calls.lock().unwrap();
    // Four events, two fields each: the five empty ones are not masked.
    assert_eq!(calls.len(), 8, "{calls:?}");
    assert!(
        calls
            .iter()
            .all(|(field, _)| matches!(field, FreeForm::Inputs | FreeForm::Metadata)),
        "{calls:?}"
    );
    assert!(
        calls.iter().all(|(_, thread)| *thread != runtime_thread),
        "the runtime's one thread never ran the mask"
    );
    assert_eq!(mock.events().len(), 4, "every route delivered");
}
