//! Ids derived from content: local datapoints', the offline dataset's, and
//! which shard a datapoint belongs to.

use std::collections::HashMap;

use serde_json::Value;
use uuid::Uuid;

use super::Datapoint;

/// The namespace of every id derived here (a UUIDv5 of a URL of ours).
fn namespace() -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        b"https://honeyhive.ai/honeyhive-rs/experiment",
    )
}

/// JSON with every object's keys sorted, whatever order the map keeps.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(object) => {
            let mut keys: Vec<&String> = object.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical(&object[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Sets the id of every row that has none: a UUIDv5 of its canonical JSON
/// (inputs, ground truth, metadata), and for the n-th copy (n ≥ 1) of an
/// identical row, of that JSON and `#n`.
pub(super) fn derive(rows: &mut [Datapoint]) {
    let ns = namespace();
    let mut seen: HashMap<String, u32> = HashMap::new();
    for row in rows.iter_mut().filter(|row| row.id.is_empty()) {
        let mut text = String::new();
        canonical(
            &serde_json::json!({
                "inputs": row.inputs,
                "ground_truth": row.ground_truth,
                "metadata": row.metadata,
            }),
            &mut text,
        );
        let copies = seen.entry(text.clone()).or_insert(0);
        if *copies > 0 {
            text.push_str(&format!("#{copies}"));
        }
        *copies += 1;
        row.id = Uuid::new_v5(&ns, text.as_bytes()).to_string();
    }
}

/// The id of a local dataset: a UUIDv5 of its datapoints' ids, in order.
pub(super) fn offline_dataset(rows: &[Datapoint]) -> String {
    let joined = rows
        .iter()
        .map(|r| r.id.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    Uuid::new_v5(&namespace(), format!("dataset\n{joined}").as_bytes()).to_string()
}

/// The shard (of `count`) a datapoint id belongs to.
pub(super) fn shard_of(id: &str, count: u32) -> u32 {
    u32::try_from(crate::sample::fixed_hash(id.as_bytes()) % u64::from(count)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_follow_the_content_not_the_key_order_and_copies_differ() {
        let mut rows = vec![
            Datapoint::new(json!({"a": 1, "b": 2})),
            Datapoint::new(json!({"b": 2, "a": 1})),
            Datapoint::new(json!({"a": 1, "b": 3})),
            Datapoint::new(json!({"a": 1})).id("mine"),
        ];
        derive(&mut rows);
        let again = {
            let mut r = vec![Datapoint::new(json!({"a": 1, "b": 2}))];
            derive(&mut r);
            r.remove(0).id
        };
        assert_eq!(rows[0].id, again, "the same content gives the same id");
        assert_ne!(rows[0].id, rows[1].id, "an identical copy gets its own id");
        assert_ne!(rows[0].id, rows[2].id);
        assert_eq!(rows[3].id, "mine");
        assert_eq!(rows[0].id.len(), 36);
    }

    #[test]
    fn shards_split_ids_and_never_change() {
        let ids: Vec<String> = (0..1000).map(|i| format!("dp-{i}")).collect();
        let mut counts = [0; 4];
        for id in &ids {
            counts[shard_of(id, 4) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (200..300).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(shard_of("dp-0", 4), shard_of("dp-0", 4));
        assert_eq!(shard_of("anything", 1), 0);
    }
}
