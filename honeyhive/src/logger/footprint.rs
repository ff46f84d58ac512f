//! How much memory a queued event holds, and the least its JSON can take,
//! without serializing it.
//!
//! The estimate walks the generated [`api::types::Event`](crate::api::types::Event)
//! through its own `Serialize` impl (a serializer that only counts), so a
//! field the spec adds is counted with no change here. What it counts:
//! every string, JSON object, array and child by its length, the slots they
//! sit in (`size_of_val` of each element and entry), B-tree nodes of JSON
//! objects, and the allocator's bookkeeping per allocation. What it cannot
//! see through serde is spare capacity (a `String` or `Vec` grown by
//! pushing may hold more than its length); values made by `json!` or
//! `serde_json::to_value`, as the event setters make them, have none.

use serde::Serialize;

use crate::walk::{Visitor, walk};

/// What the allocator spends per allocation beyond the bytes asked for.
pub(crate) const ALLOCATION: usize = 16;
/// Entries per B-tree node of a JSON object.
const NODE_ENTRIES: usize = 11;
/// A B-tree node's bookkeeping: parent link, lengths, and (counted on every
/// node, to cover the internal ones) twelve child edges.
const NODE_OVERHEAD: usize = 16 + 12 * 8;

/// What [`estimate`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Footprint {
    /// Heap bytes the value holds, on the generous side.
    pub(super) heap: usize,
    /// Bytes its JSON takes at least (strings, quotes, field names).
    pub(super) json_at_least: usize,
}

/// The footprint of `value`.
pub(super) fn estimate<T: Serialize + ?Sized>(value: &T) -> Footprint {
    let mut footprint = Footprint::default();
    // Nothing here stops a walk; a value whose own Serialize fails (which
    // the event setters refuse before it gets here) is counted as far as
    // it went.
    let _walked = walk(value, &mut footprint);
    footprint
}

impl Visitor for Footprint {
    fn scalar(&mut self) {
        // Held inline in its slot; its JSON takes at least a character.
        self.json_at_least += 1;
    }

    fn float(&mut self, _value: f64) -> Result<(), crate::walk::Stop> {
        self.scalar();
        Ok(())
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

    fn sequence(&mut self, elements: usize, slot: usize) {
        if elements > 0 {
            self.heap += elements * slot + ALLOCATION;
        }
    }

    /// A B-tree: nodes split when full, so each is at least half full, and
    /// there are at most twice the fewest nodes.
    fn map(&mut self, entries: usize, slot: usize) {
        let nodes = match entries {
            0 => 0,
            1..=NODE_ENTRIES => 1,
            _ => (2 * entries).div_ceil(NODE_ENTRIES),
        };
        self.heap += nodes * (NODE_ENTRIES * slot + NODE_OVERHEAD + ALLOCATION);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let many: serde_json::Map<_, _> = (0..100).map(|i| (format!("k{i}"), json!(i))).collect();
        assert!(estimate(&many).heap >= 100 * 56, "{}", estimate(&many).heap);
    }
}
