//! Keys of a line's event that are not fields of an event: serde would
//! drop them without a word, and with them the data the user meant to
//! send (`"metdata"`, `"output"`). `send` and `validate` refuse such a
//! line, naming the key and the nearest field.
//!
//! The fields are the generated `Event`'s, read from its `Deserialize`
//! (the list its derive passes to `deserialize_struct`), so a field the
//! spec adds is known here without a change.

use std::fmt;
use std::sync::OnceLock;

use honeyhive::api::types;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The fields of an event, as the generated type names them.
pub fn event_fields() -> &'static [&'static str] {
    static FIELDS: OnceLock<&'static [&'static str]> = OnceLock::new();
    FIELDS.get_or_init(|| {
        let mut fields: &'static [&'static str] = &[];
        let _told = <types::Event as serde::Deserialize>::deserialize(StructFields(&mut fields));
        fields
    })
}

/// The keys a wrapped line (`{"session_id": ..., "event": {...}}`) may
/// have beside its event: those of a [`Record`](crate::event_line::Record)
/// (an [`honeyhive::EventLine`] and the command's own), which dead letters
/// and rejects files are written as, so they replay as they are.
pub fn wrapper_keys() -> &'static [String] {
    static KEYS: OnceLock<Vec<String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        // Every field set, so that every key is written.
        let mut entry = honeyhive::EventLine::new("", Value::Null);
        entry.at_ms = Some(0);
        entry.event_id = Some(String::new());
        entry.undelivered = Some(honeyhive::Undelivered::new(
            "",
            Some(honeyhive::StatusCode::OK),
        ));
        let line = crate::event_line::Record {
            file: Some(String::new()),
            line: Some(0),
            operation: Some(String::new()),
            entry,
            raw: Some(String::new()),
        };
        match serde_json::to_value(&line) {
            Ok(Value::Object(keys)) => keys.into_iter().map(|(key, _)| key).collect(),
            _ => Vec::new(),
        }
    })
}

/// What to say of `key`, beside a line's `event` and not one of
/// [`wrapper_keys`].
fn beside_the_event(key: &str) -> String {
    if event_fields().contains(&key) {
        return format!("{key}: beside `event`, where it would be dropped; put it inside `event`");
    }
    let nearest = wrapper_keys()
        .iter()
        .map(|known| (strsim::levenshtein(key, known), known))
        .min()
        .filter(|(distance, _)| *distance <= (key.chars().count() / 3).max(1));
    match nearest {
        Some((_, known)) => {
            format!("{key}: not a key of a line, so it would be dropped; did you mean `{known}`?")
        }
        None => format!(
            "{key}: not a key of a line, so it would be dropped; a line is an event, or \
             {{\"session_id\": ..., \"event\": {{...}}}}"
        ),
    }
}

/// The problem of each unknown key of a line (an event, or
/// `{"session_id": ..., "event": {...}}` beside which only the keys of
/// [`wrapper_keys`] may stand), its event's and its children's (as
/// `children[0].colour: ...`), without building its JSON tree. A line that is not of that shape has
/// none: parsing it says what is wrong.
pub fn unknown_in_line(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_str(line);
    match (LineKeys { found: &mut found }).deserialize(&mut deserializer) {
        Ok(()) => found,
        Err(_) => Vec::new(),
    }
}

/// What to say of `key`, unknown at `path`.
fn problem(path: &str, key: &str) -> String {
    let nearest = event_fields()
        .iter()
        .map(|field| (strsim::levenshtein(key, field), *field))
        .min()
        .filter(|(distance, _)| *distance <= (key.chars().count() / 3).max(1));
    match nearest {
        Some((_, field)) => format!(
            "{path}{key}: not a field of an event, so it would be dropped; did you mean \
             `{field}`?"
        ),
        None => format!(
            "{path}{key}: not a field of an event, so it would be dropped; data of your own \
             goes in `metadata` (or `inputs`, `outputs`, `config`, `metrics`, `feedback`, \
             `user_properties`)"
        ),
    }
}

/// A key of an event object: a field, `children`, or unknown.
enum Key {
    Field,
    Children,
    Unknown(String),
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "children" => Key::Children,
            _ if event_fields().contains(&key) => Key::Field,
            _ => Key::Unknown(key.to_owned()),
        })
    }
}

/// The keys of an event object, its children's with them.
struct EventKeys<'a> {
    path: &'a str,
    found: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for EventKeys<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EventKeys<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Key::Field => {
                    map.next_value::<IgnoredAny>()?;
                }
                Key::Children => map.next_value_seed(ChildrenKeys {
                    path: self.path,
                    found: self.found,
                })?,
                Key::Unknown(key) => {
                    self.found.push(problem(self.path, &key));
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The keys of each event of a `children` array.
struct ChildrenKeys<'a> {
    path: &'a str,
    found: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for ChildrenKeys<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ChildrenKeys<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            let path = format!("{}children[{index}].", self.path);
            let seed = EventKeys {
                path: &path,
                found: self.found,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }
}

/// The keys of a line: its `event`'s when it has one (its other keys are
/// ignored, so dead letters replay as they are), else its own.
struct LineKeys<'a> {
    found: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for LineKeys<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LineKeys<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a line")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut own = Vec::new();
        let mut beside = Vec::new();
        let mut wrapped = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != "event" && !wrapper_keys().contains(&key) {
                beside.push(beside_the_event(&key));
            }
            match key.as_str() {
                "event" => {
                    let mut inner = Vec::new();
                    map.next_value_seed(EventKeys {
                        path: "",
                        found: &mut inner,
                    })?;
                    wrapped = Some(inner);
                }
                "children" => map.next_value_seed(ChildrenKeys {
                    path: "",
                    found: &mut own,
                })?,
                field if event_fields().contains(&field) => {
                    map.next_value::<IgnoredAny>()?;
                }
                unknown => {
                    own.push(problem("", unknown));
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match wrapped {
            Some(inner) => {
                self.found.extend(beside);
                self.found.extend(inner);
            }
            None => self.found.extend(own),
        }
        Ok(())
    }
}

/// A deserializer that only records the fields a struct's derive asks
/// for, then stops (serde has no other way to list them).
struct StructFields<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for StructFields<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fields_are_the_generated_events() {
        let fields = event_fields();
        for field in ["event_name", "metadata", "children", "user_properties"] {
            assert!(fields.contains(&field), "{fields:?}");
        }
        assert_eq!(fields.len(), 18, "{fields:?}");
    }

    #[test]
    fn an_unknown_key_is_named_with_the_nearest_field() {
        let said = unknown_in_line(r#"{"event_name":"n","metdata":{"a":1}}"#);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].starts_with("metdata: not a field"), "{said:?}");
        assert!(said[0].contains("did you mean `metadata`"), "{said:?}");
        let said = unknown_in_line(
            r#"{"event":{"output":{"a":1}},"session_id":"s","reason":"x","status":null,"at_ms":1}"#,
        );
        assert_eq!(
            said.len(),
            1,
            "dead-letter keys are not the event's: {said:?}"
        );
        assert!(said[0].contains("did you mean `outputs`"), "{said:?}");
        let said = unknown_in_line(r#"{"event_name":"n","children":[{},{"colour":"red"}]}"#);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].starts_with("children[1].colour: "), "{said:?}");
        assert!(said[0].contains("goes in `metadata`"), "{said:?}");
        assert!(unknown_in_line(r#"{"event_name":"n","metadata":{"colour":1}}"#).is_empty());
        assert!(unknown_in_line("not json").is_empty());
    }

    #[test]
    fn a_key_beside_the_event_that_a_line_does_not_have_is_named() {
        let said = unknown_in_line(r#"{"session_id":"s","event":{},"metadata":{"u":1}}"#);
        assert_eq!(
            said,
            ["metadata: beside `event`, where it would be dropped; put it inside `event`"]
        );
        let said = unknown_in_line(r#"{"sesion_id":"mine","event":{}}"#);
        assert!(said[0].contains("did you mean `session_id`"), "{said:?}");
        for key in [
            "file",
            "line",
            "at_ms",
            "event_id",
            "operation",
            "reason",
            "status",
            "raw",
        ] {
            assert!(
                wrapper_keys().contains(&key.to_owned()),
                "{key}: {:?}",
                wrapper_keys()
            );
        }
    }
}
