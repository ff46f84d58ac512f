//! What the mock remembers: one generic table of JSON rows per resource,
//! and the events with an index by id.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// Rows of one resource in the order they were created, each a JSON
/// object found by the string in its `key` field.
pub(super) struct Table {
    key: &'static str,
    rows: Vec<Value>,
    /// Where each id's row is.
    index: HashMap<String, usize>,
}

impl Table {
    pub(super) fn new(key: &'static str) -> Self {
        Table {
            key,
            rows: Vec::new(),
            index: HashMap::new(),
        }
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub(super) fn get(&self, id: &str) -> Option<&Value> {
        self.position(id).map(|at| &self.rows[at])
    }

    pub(super) fn get_mut(&mut self, id: &str) -> Option<&mut Value> {
        self.position(id).map(|at| &mut self.rows[at])
    }

    /// Adds `row`, or replaces the row with its id.
    pub(super) fn put(&mut self, row: Value) {
        let id = row[self.key].as_str().unwrap_or_default().to_owned();
        match self.position(&id) {
            Some(at) => self.rows[at] = row,
            None => {
                self.index.insert(id, self.rows.len());
                self.rows.push(row);
            }
        }
    }

    /// Removes the row with this id (the rows after it move up).
    pub(super) fn remove(&mut self, id: &str) -> Option<Value> {
        let at = self.index.remove(id)?;
        let row = self.rows.remove(at);
        for later in self.index.values_mut().filter(|i| **i > at) {
            *later -= 1;
        }
        Some(row)
    }

    pub(super) fn rows(&self) -> &[Value] {
        &self.rows
    }
}

/// The resources kept as plain tables: what the generic answers of
/// `resources.rs` create, list, get, update and delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    Metric,
    Configuration,
    Queue,
    Chart,
}

/// Everything the mock remembers.
pub(super) struct Store {
    pub(super) datasets: Table,
    pub(super) datapoints: Table,
    pub(super) runs: Table,
    /// Metric versions, by metric id.
    pub(super) versions: HashMap<String, Vec<Value>>,
    resources: HashMap<Kind, Table>,
    /// Every event (sessions included), flat, in the order they arrived.
    pub(super) events: Table,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            datasets: Table::new("id"),
            datapoints: Table::new("id"),
            runs: Table::new("run_id"),
            versions: HashMap::new(),
            resources: HashMap::new(),
            events: Table::new("event_id"),
        }
    }
}

impl Store {
    /// The rows of a generic resource.
    pub(super) fn resources(&self, kind: Kind) -> &[Value] {
        self.resources.get(&kind).map_or(&[], Table::rows)
    }

    pub(super) fn table(&mut self, kind: Kind) -> &mut Table {
        self.resources
            .entry(kind)
            .or_insert_with(|| Table::new("id"))
    }
}

/// A new id, as HoneyHive gives one.
pub(super) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Milliseconds since the Unix epoch, now.
/// Now in whole milliseconds since the epoch (as a JSON integer, as
/// HoneyHive writes times).
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Now as RFC 3339 in UTC with milliseconds, as HoneyHive writes
/// `created_at`: `2026-12-05T04:24:49.123Z`.
pub(super) fn now_iso() -> String {
    iso(now_ms() as i64)
}

/// `ms` since the Unix epoch as RFC 3339 in UTC.
pub(super) fn iso(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// A time as milliseconds since the Unix epoch: a JSON number (already
/// ms), or RFC 3339 text.
pub(super) fn millis(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(text) => {
            let range: crate::api::types::SearchEventsRequestDateRange =
                serde_json::from_value(serde_json::json!({"start_time": text, "end_time": text}))
                    .ok()?;
            Some(range.start_time.timestamp_millis() as f64)
        }
        _ => None,
    }
}

/// `fields` of `from` that are set, copied onto `onto` (an object).
pub(super) fn merge(onto: &mut Value, from: &Value, fields: &[&str]) {
    let (Some(onto), Some(from)) = (onto.as_object_mut(), from.as_object()) else {
        return;
    };
    for field in fields {
        if let Some(value) = from.get(*field) {
            onto.insert((*field).to_owned(), value.clone());
        }
    }
}

/// Every field of `from` (an object) copied onto `onto`.
pub(super) fn merge_all(onto: &mut Value, from: &Value) {
    if let (Some(onto), Some(from)) = (onto.as_object_mut(), from.as_object()) {
        for (field, value) in from {
            onto.insert(field.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_writes_utc_with_milliseconds_and_millis_reads_it_back() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1_796_271_889_123), "2026-12-03T04:24:49.123Z");
        assert_eq!(iso(951_782_400_000), "2000-02-29T00:00:00.000Z");
        let now = now_ms() as i64;
        assert_eq!(millis(&Value::String(iso(now))), Some(now as f64));
        assert_eq!(millis(&serde_json::json!(12.5)), Some(12.5));
        assert_eq!(millis(&serde_json::json!("yesterday")), None);
    }

    #[test]
    fn a_table_replaces_a_row_with_the_same_id_and_keeps_order() {
        let mut table = Table::new("id");
        table.put(serde_json::json!({"id": "a", "n": 1}));
        table.put(serde_json::json!({"id": "b"}));
        table.put(serde_json::json!({"id": "a", "n": 2}));
        assert_eq!(table.rows().len(), 2);
        assert_eq!(table.rows()[0]["n"], 2);
        table.put(serde_json::json!({"id": "c"}));
        assert_eq!(table.remove("b").unwrap()["id"], "b");
        assert!(table.get("b").is_none());
        assert_eq!(table.get("c").unwrap()["id"], "c");
        assert_eq!(table.get("a").unwrap()["n"], 2);
    }
}
