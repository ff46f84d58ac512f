//! How much memory a queued event holds, and the least its JSON can take,
//! without serializing it.
//!
//! The estimate walks the generated [`api::types::Event`](crate::api::types::Event)
//! field by field (a field the spec adds does not compile in this file's
//! tests, which build the type whole, until it is counted here). What it counts: every string, JSON
//! object, array and child by its length, the element slots they sit in (each
//! element's and entry's size), B-tree nodes of JSON objects, and the
//! allocator's bookkeeping per allocation. What it cannot see is spare
//! capacity (a `String` or `Vec` grown by pushing may hold more than its
//! length); values made by `json!` or `serde_json::to_value`, as the event
//! setters make them, have none.

use std::mem::size_of;

use serde_json::{Map, Number, Value};

use crate::api::types::Event;
use crate::mask::FreeForm;

/// What the allocator spends per allocation beyond the bytes asked for.
pub(crate) const ALLOCATION: usize = 16;
/// Entries per B-tree node of a JSON object.
const NODE_ENTRIES: usize = 11;
/// A B-tree node's bookkeeping: parent link, lengths, and (counted on every
/// node, to cover the internal ones) twelve child edges.
const NODE_OVERHEAD: usize = 16 + 12 * 8;

/// What [`estimate_event`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Footprint {
    /// Heap bytes the value holds, on the generous side.
    pub(crate) heap: usize,
    /// Bytes its JSON takes at least (strings, quotes, field names).
    pub(crate) json_at_least: usize,
}

/// The footprint of an event (`Logger::log` takes it for every event).
pub(crate) fn estimate_event(event: &Event) -> Footprint {
    let mut footprint = Footprint::default();
    footprint.event(event);
    footprint
}

impl Footprint {
    /// Every event of the tree, each on its own: the sums do not depend
    /// on the order.
    fn event(&mut self, event: &Event) {
        crate::tree::each(event, |event, _| self.one(event));
    }

    /// One event; of its children, only the slots they take. Each field
    /// as its `Serialize` would go: left out when empty or unset.
    fn one(&mut self, event: &Event) {
        for field in FreeForm::ALL {
            self.object(field.as_str(), field.of_ref(event));
        }
        if !event.children.is_empty() {
            self.field("children");
            self.sequence(event.children.len(), size_of::<Event>());
        }
        for (name, number) in [
            ("duration", &event.duration),
            ("end_time", &event.end_time),
            ("start_time", &event.start_time),
        ] {
            self.number(name, number.as_ref());
        }
        for (name, text) in [
            ("error", &event.error),
            ("event_id", &event.event_id),
            ("event_name", &event.event_name),
            ("event_type", &event.event_type),
            ("project", &event.project),
            ("session_id", &event.session_id),
            ("source", &event.source),
        ] {
            self.string(name, text.as_deref());
        }
    }

    fn string(&mut self, name: &'static str, value: Option<&str>) {
        if let Some(text) = value {
            self.field(name);
            self.text(text.len());
        }
    }

    fn number(&mut self, name: &'static str, value: Option<&Number>) {
        if value.is_some() {
            self.field(name);
            self.scalar();
        }
    }

    fn object(&mut self, name: &'static str, map: &Map<String, Value>) {
        if !map.is_empty() {
            self.field(name);
            self.entries(map);
        }
    }

    fn entries(&mut self, map: &Map<String, Value>) {
        for (key, value) in map {
            self.text(key.len());
            self.value(value);
        }
        let element = if map.is_empty() {
            0
        } else {
            size_of::<String>() + size_of::<Value>()
        };
        self.map(map.len(), element);
    }

    fn value(&mut self, value: &Value) {
        match value {
            Value::Null | Value::Bool(_) | Value::Number(_) => self.scalar(),
            Value::String(text) => self.text(text.len()),
            Value::Array(items) => {
                for item in items {
                    self.value(item);
                }
                let element = if items.is_empty() {
                    0
                } else {
                    size_of::<Value>()
                };
                self.sequence(items.len(), element);
            }
            Value::Object(map) => self.entries(map),
        }
    }
}

impl Footprint {
    fn scalar(&mut self) {
        // Held inline in its element; its JSON takes at least a character.
        self.json_at_least += 1;
    }

    fn text(&mut self, len: usize) {
        if len > 0 {
            self.heap += len + ALLOCATION;
        }
        self.json_at_least += len + 2;
    }

    fn field(&mut self, name: &'static str) {
        self.json_at_least += name.len() + 3;
    }

    fn sequence(&mut self, elements: usize, element: usize) {
        if elements > 0 {
            self.heap += elements * element + ALLOCATION;
        }
    }

    /// A B-tree: nodes split when full, so each is at least half full, and
    /// there are at most twice the fewest nodes.
    fn map(&mut self, entries: usize, element: usize) {
        let nodes = match entries {
            0 => 0,
            1..=NODE_ENTRIES => 1,
            _ => (2 * entries).div_ceil(NODE_ENTRIES),
        };
        self.heap += nodes * (NODE_ENTRIES * element + NODE_OVERHEAD + ALLOCATION);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Any JSON value, a few levels deep.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn object() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..4)
            .prop_map(|m| m.into_iter().collect())
    }

    /// Any event tree: the generated type built whole (no `..`), so that
    /// a field the spec adds stops this compiling until `one` counts it.
    fn event(depth: u32) -> BoxedStrategy<Event> {
        let text = || proptest::option::of(".{0,10}");
        let number = || proptest::option::of((0u64..1 << 50).prop_map(Number::from));
        let fields = (
            (
                object(),
                object(),
                object(),
                object(),
                object(),
                object(),
                object(),
            ),
            (text(), text(), text(), text(), text(), text(), text()),
            (number(), number(), number()),
        );
        let children = if depth == 0 {
            Just(Vec::new()).boxed()
        } else {
            prop::collection::vec(event(depth - 1), 0..3).boxed()
        };
        (fields, children)
            .prop_map(|((o, t, n), children)| Event {
                children,
                config: o.0,
                feedback: o.1,
                inputs: o.2,
                metadata: o.3,
                metrics: o.4,
                outputs: o.5,
                user_properties: o.6,
                error: t.0,
                event_id: t.1,
                event_name: t.2,
                event_type: t.3,
                project: t.4,
                session_id: t.5,
                source: t.6,
                duration: n.0,
                end_time: n.1,
                start_time: n.2,
            })
            .boxed()
    }

    /// The footprint of a JSON value alone.
    fn estimate(value: &Value) -> Footprint {
        let mut footprint = Footprint::default();
        footprint.value(value);
        footprint
    }

    /// The bytes of every string in the event (keys included).
    fn text_bytes(event: &Event) -> usize {
        fn of(value: &Value) -> usize {
            match value {
                Value::String(s) => s.len(),
                Value::Array(items) => items.iter().map(of).sum(),
                Value::Object(map) => map.iter().map(|(k, v)| k.len() + of(v)).sum(),
                _ => 0,
            }
        }
        of(&serde_json::to_value(event).unwrap())
    }

    proptest! {
        #[test]
        fn any_event_is_counted_at_least_by_its_text_and_its_json_is_no_shorter(event in event(2)) {
            let footprint = estimate_event(&event);
            let json = serde_json::to_vec(&event).unwrap();
            prop_assert!(footprint.json_at_least <= json.len(), "{footprint:?} {}", json.len());
            prop_assert!(footprint.heap >= text_bytes(&event), "{footprint:?}");
        }
    }

    #[test]
    fn children_and_array_elements_take_their_whole_slot() {
        let parent: Event =
            serde_json::from_value(json!({"children": [{}, {}], "inputs": {"a": [1, 2, 3]}}))
                .unwrap();
        let footprint = estimate_event(&parent);
        assert!(
            footprint.heap >= 2 * size_of::<Event>() + 3 * size_of::<Value>(),
            "{footprint:?}"
        );
    }

    #[test]
    fn the_json_lower_bound_never_exceeds_the_json() {
        for value in [
            json!({}),
            json!({"a": 1, "b": [true, null, "x\"y"], "c": {"d": -1.5e300}}),
            json!(["", "", 0]),
            json!("a\u{1}b"),
        ] {
            let text = serde_json::to_string(&value).unwrap();
            assert!(
                estimate(&value).json_at_least <= text.len(),
                "{text}: {:?}",
                estimate(&value)
            );
        }
    }

    #[test]
    fn strings_objects_and_arrays_count_their_contents() {
        let empty = estimate(&json!({})).heap;
        assert_eq!(empty, 0);
        let one = estimate(&json!({"k": "v".repeat(1000)})).heap;
        assert!(one >= 1000 + NODE_ENTRIES * 56, "{one}");
        let list = estimate(&json!({"k": ["a".repeat(100), "b".repeat(100)]})).heap;
        assert!(list >= 200 + 2 * 32 + NODE_ENTRIES * 56, "{list}");
        // A map of many entries needs several nodes.
        let many: Value = (0..100)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect::<Map<_, _>>()
            .into();
        assert!(estimate(&many).heap >= 100 * 56, "{}", estimate(&many).heap);
    }
}
