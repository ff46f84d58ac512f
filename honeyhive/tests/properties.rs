//! Property tests: whatever event a user builds, what the client would send
//! is valid against the spec's `Event` schema.

use std::time::{Duration, UNIX_EPOCH};

use honeyhive::validate;
use honeyhive::{Event, EventType};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// JSON values as users put in free-form fields: any shape, finite numbers.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(".{0,8}", json_value(), 0..4).prop_map(|m| m.into_iter().collect())
}

fn event_type() -> impl Strategy<Value = EventType> {
    prop_oneof![
        Just(EventType::Model),
        Just(EventType::Tool),
        Just(EventType::Chain),
        Just(EventType::Session)
    ]
}

#[derive(Debug, Clone)]
struct Fields {
    kind: EventType,
    name: String,
    text: Option<String>,
    objects: [Option<Map<String, Value>>; 7],
    start_ms: Option<u64>,
    took_us: Option<u64>,
}

fn fields() -> impl Strategy<Value = Fields> {
    (
        event_type(),
        ".{0,16}",
        proptest::option::of(".{0,16}"),
        [
            proptest::option::of(json_object()),
            proptest::option::of(json_object()),
            proptest::option::of(json_object()),
            proptest::option::of(json_object()),
            proptest::option::of(json_object()),
            proptest::option::of(json_object()),
            proptest::option::of(json_object()),
        ],
        proptest::option::of(0u64..4_000_000_000_000),
        proptest::option::of(0u64..10_000_000_000),
    )
        .prop_map(|(kind, name, text, objects, start_ms, took_us)| Fields {
            kind,
            name,
            text,
            objects,
            start_ms,
            took_us,
        })
}

type Object = Map<String, Value>;
type Setter = fn(Event, Object) -> Event;

fn build(fields: Fields) -> Event {
    let mut event = Event::new(fields.kind, fields.name);
    if let Some(text) = fields.text {
        event = event
            .error(text.clone())
            .project(text.clone())
            .source(text.clone())
            .session_id(text.clone())
            .event_id(text);
    }
    let [inputs, outputs, config, metadata, metrics, feedback, user] = fields.objects;
    let setters: [(Option<Object>, Setter); 7] = [
        (inputs, |e, v| e.inputs(v)),
        (outputs, |e, v| e.outputs(v)),
        (config, |e, v| e.config(v)),
        (metadata, |e, v| e.metadata(v)),
        (metrics, |e, v| e.metrics(v)),
        (feedback, |e, v| e.feedback(v)),
        (user, |e, v| e.user_properties(v)),
    ];
    for (value, set) in setters {
        if let Some(value) = value {
            event = set(event, value);
        }
    }
    if let Some(start) = fields.start_ms {
        event = event.start_time(UNIX_EPOCH + Duration::from_millis(start));
        if let Some(took) = fields.took_us {
            event = event
                .duration(Duration::from_micros(took))
                .end_time(UNIX_EPOCH + Duration::from_millis(start) + Duration::from_micros(took));
        }
    }
    event
}

fn event_tree() -> impl Strategy<Value = Event> {
    let leaf = fields().prop_map(build);
    leaf.prop_recursive(2, 8, 3, |inner| {
        (fields(), prop::collection::vec(inner, 0..3))
            .prop_map(|(fields, children)| children.into_iter().fold(build(fields), Event::child))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_buildable_event_matches_the_spec(event in event_tree()) {
        let wire = event.into_api().expect("finite values in order are valid input");
        let json = serde_json::to_value(&wire).unwrap();
        if let Err(problems) = validate::event(&json) {
            prop_assert!(false, "{json}\n{problems:#?}");
        }
        // Nothing absent is sent as null: only values the user gave are.
        let text = serde_json::to_string(&wire).unwrap();
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(reparsed, json);
    }
}
