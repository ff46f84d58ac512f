//! The Logger's byte bound holds for events with every kind of field: the
//! heap that queued events really take (counted by the allocator) stays
//! within `max_queue_bytes`, and the estimate is not so generous that the
//! bound means nothing.
//!
//! Events are made from the spec's `Event` schema, property by property, so
//! a field the spec adds is in them without a change here. One test in this
//! binary, so the allocator counts nothing else.

use std::alloc::System;
use std::time::Duration;

use honeyhive::testing::MockHoneyHive;
use honeyhive::{Event, Logger, LoggerConfig, api};
use serde_json::{Map, Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The `Event` schema's properties, from the spec the crate was built from.
fn event_properties() -> Map<String, Value> {
    let spec: Value = serde_json::from_str(honeyhive_gen::OPENAPI_JSON).unwrap();
    spec["components"]["schemas"]["Event"]["properties"]
        .as_object()
        .expect("the spec has an Event schema")
        .clone()
}

/// Free-form JSON of about `size` bytes, with every kind of value.
fn json_value(rng: &mut fastrand::Rng, depth: u32, size: usize) -> Value {
    match rng.u8(0..6) {
        _ if depth == 0 => json!(rng.i64(..)),
        0 => json!("s".repeat(rng.usize(0..=size))),
        1 => json!(rng.f64() * 1e6),
        2 => json!(rng.bool()),
        3 => Value::Null,
        4 => (0..rng.usize(0..6))
            .map(|_| json_value(rng, depth - 1, size / 2))
            .collect(),
        _ => Value::Object(json_object(rng, depth - 1, size / 2)),
    }
}

fn json_object(rng: &mut fastrand::Rng, depth: u32, size: usize) -> Map<String, Value> {
    (0..rng.usize(1..8))
        .map(|i| {
            (
                format!("key-{i}-{}", "k".repeat(rng.usize(0..8))),
                json_value(rng, depth, size),
            )
        })
        .collect()
}

/// An event with every property of the schema set. Every number in it is
/// the same, so that times are in order (an end before its start is refused).
fn full_event(
    rng: &mut fastrand::Rng,
    properties: &Map<String, Value>,
    depth: u32,
    size: usize,
) -> Value {
    let mut event = Map::new();
    let number = rng.u32(..);
    for (name, schema) in properties {
        let value = match schema["type"].as_str() {
            Some("string") => json!("v".repeat(rng.usize(1..=size.max(1)))),
            Some("number") => json!(number),
            Some("object") => Value::Object(json_object(rng, 2, size)),
            Some("array") if depth > 0 => (0..rng.usize(1..4))
                .map(|_| full_event(rng, properties, depth - 1, size / 2))
                .collect(),
            Some("array") => json!([]),
            other => panic!("{name}: a property of type {other:?} needs a generator here"),
        };
        event.insert(name.clone(), value);
    }
    Value::Object(event)
}

#[tokio::test(flavor = "current_thread")]
async fn queued_events_with_every_field_stay_within_the_byte_bound() {
    let properties = event_properties();
    let mock = MockHoneyHive::start_async().await;
    let client = mock.client().unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    const BOUND: usize = 4 * 1024 * 1024;
    for (shape, depth, size) in [
        ("every field, flat", 0, 16),
        ("every field, children two deep", 2, 64),
        ("every field, long strings", 1, 4096),
    ] {
        let logger = Logger::new(
            &client,
            LoggerConfig::default()
                .max_queue_bytes(BOUND)
                .max_queue_events(1_000_000),
        )
        .unwrap();
        // Events are made and logged inside the region, so what it keeps
        // (allocated minus freed) is what the queue holds: the events' heap
        // and the queue's blocks. No await while logging: on this
        // one-thread runtime nothing takes events out of the queue meanwhile.
        let region = Region::new(GLOBAL);
        let mut accepted = 0;
        loop {
            let json = full_event(&mut rng, &properties, depth, size);
            for name in properties.keys() {
                assert!(json.get(name).is_some(), "{name} not generated");
            }
            let event = Event::from(serde_json::from_value::<api::types::Event>(json).unwrap());
            match logger.log("memory", event) {
                Ok(()) => {}
                Err(honeyhive::LogError::QueueFull(_)) => break,
                Err(other) => panic!("{shape}: refused for another reason: {other}"),
            }
            accepted += 1;
        }
        let change = region.change();
        let held = change.bytes_allocated as isize - change.bytes_deallocated as isize
            + change.bytes_reallocated;
        println!("{shape}: {accepted} events hold {held} bytes of a {BOUND}-byte bound");
        assert!(accepted > 20, "{shape}: only {accepted} accepted");
        assert!(
            held <= BOUND as isize,
            "{shape}: {accepted} queued events hold {held} bytes, over the {BOUND}-byte bound"
        );
        assert!(
            held >= BOUND as isize / 3,
            "{shape}: the estimate is over 3 times what events hold ({held} of {BOUND})"
        );
        logger.shutdown(Duration::from_millis(10)).await;
    }
}
