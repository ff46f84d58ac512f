//! What the builders' setters share: turning the caller's values into the
//! wire's (free-form objects, times and durations in milliseconds), and
//! remembering the first value that cannot be sent, to report it, naming
//! the field, when the built value is used.

use std::time::SystemTime;

use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::error::Error;
use finite::first_non_finite;

mod finite;

/// The first setter input a builder could not take: (field, problem).
/// Boxed: rare, and events sit in queues by the thousand.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Invalid(Option<Box<(String, String)>>);

impl Invalid {
    /// Remembers `problem` with `field`, unless a problem came first.
    pub(crate) fn remember(&mut self, field: &str, problem: String) {
        if self.0.is_none() {
            self.0 = Some(Box::new((field.to_owned(), problem)));
        }
    }

    /// Takes `other`'s problem, its field under `prefix` (such as
    /// `children[2].`), unless a problem came first.
    pub(crate) fn adopt(&mut self, prefix: &str, other: Invalid) {
        if self.0.is_none()
            && let Some(problem) = other.0
        {
            let (field, problem) = *problem;
            self.0 = Some(Box::new((format!("{prefix}{field}"), problem)));
        }
    }

    /// The first problem: (field, problem).
    pub(crate) fn first(&self) -> Option<(&str, &str)> {
        self.0.as_deref().map(|(f, p)| (f.as_str(), p.as_str()))
    }

    /// `Err` with the first problem, if there was one.
    pub(crate) fn check(&self) -> Result<(), Error> {
        match self.first() {
            None => Ok(()),
            Some((field, problem)) => Err(Error::invalid(field, problem)),
        }
    }

    /// Milliseconds as a JSON number; NaN, infinities and negatives are
    /// remembered as the problem of `field`.
    pub(crate) fn millis(&mut self, field: &str, millis: f64) -> Option<Number> {
        let number = crate::millis::from_f64(millis);
        if number.is_none() {
            self.remember(
                field,
                format!("is {millis} ms; pass a finite number of milliseconds, 0 or more"),
            );
        }
        number
    }

    /// Whole milliseconds since the Unix epoch; a time before it is
    /// remembered as the problem of `field`.
    pub(crate) fn epoch_millis(&mut self, field: &str, at: SystemTime) -> Option<Number> {
        let number = crate::millis::since_epoch(at);
        if number.is_none() {
            self.remember(
                field,
                "is before 1970-01-01; pass a SystemTime after the Unix epoch".into(),
            );
        }
        number
    }

    /// `value` as a JSON object; anything else (or a NaN inside) is
    /// remembered as the problem of `field`, and an empty object returned.
    pub(crate) fn object(&mut self, field: &str, value: impl Serialize) -> Map<String, Value> {
        if let Some(at) = first_non_finite(&value) {
            let place = if at.is_empty() {
                field.to_owned()
            } else {
                format!("{field}.{at}")
            };
            self.remember(
                &place,
                "is NaN or infinite, which JSON cannot carry (serde_json would send null); \
                 replace it with a finite number or leave it out"
                    .to_owned(),
            );
            return Map::new();
        }
        match serde_json::to_value(value) {
            Ok(Value::Object(map)) => map,
            Ok(other) => {
                let kind = json_kind(&other);
                self.remember(
                    field,
                    format!(
                        "must be a JSON object, got {kind}; pass a struct or a map, \
                         or wrap the value: json!({{\"value\": ...}})"
                    ),
                );
                Map::new()
            }
            Err(e) => {
                self.remember(field, format!("could not be serialized to JSON: {e}"));
                Map::new()
            }
        }
    }
}

/// A UUID in its hyphenated form: what the spec's `format: uuid` is held
/// to (by the client before sending and by the mock), and what HoneyHive's
/// ids look like.
pub(crate) fn is_uuid(text: &str) -> bool {
    text.len() == 36 && uuid::Uuid::try_parse(text).is_ok()
}

/// "a string", "an array", ... for messages.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Generates the free-form object setters of a builder whose wire value is
/// `self.wire` and whose problems are `self.invalid`: each takes anything
/// that serializes to a JSON object.
macro_rules! object_setters {
    ($type:ty { $($field:ident: $what:literal),* $(,)? }) => {
        impl $type {
            $(
                #[doc = concat!("Sets `", stringify!($field), "`", $what, ". Takes anything that serializes to a JSON object.")]
                pub fn $field(mut self, $field: impl ::serde::Serialize) -> Self {
                    self.wire.$field = self.invalid.object(stringify!($field), $field);
                    self
                }
            )*
        }
    };
}
pub(crate) use object_setters;

/// The time setters of a builder whose `wire` has these fields: for
/// `start_time` and `end_time`, one from a [`SystemTime`] and a `*_ms`
/// one from milliseconds since the Unix epoch; for `duration`, one from a
/// [`Duration`](std::time::Duration) and `duration_ms`. Every builder
/// with times has the same setters, kept here once; an end before the
/// start is refused by [`times_in_order`].
macro_rules! time_setters {
    ($type:ty { $($field:ident),* $(,)? }) => {
        impl $type {
            $( $crate::fields::time_setters!(@one $field); )*
        }
    };
    (@one start_time) => {
        $crate::fields::time_setters!(@at start_time start_time_ms);
    };
    (@one end_time) => {
        $crate::fields::time_setters!(@at end_time end_time_ms);
    };
    (@one duration) => {
        /// Sets `duration`, sent in milliseconds (with microsecond
        /// precision below a whole millisecond).
        pub fn duration(mut self, took: ::std::time::Duration) -> Self {
            self.wire.duration = Some($crate::millis::duration(took));
            self
        }

        /// Sets `duration` from a number of milliseconds. NaN, infinities
        /// and negative values are refused when it is sent.
        pub fn duration_ms(mut self, millis: f64) -> Self {
            self.wire.duration = self.invalid.millis("duration", millis);
            self
        }
    };
    (@at $field:ident $ms:ident) => {
        #[doc = concat!("Sets `", stringify!($field), "`, sent as whole milliseconds since the Unix epoch.")]
        pub fn $field(mut self, at: ::std::time::SystemTime) -> Self {
            self.wire.$field = self.invalid.epoch_millis(stringify!($field), at);
            self
        }

        #[doc = concat!("Sets `", stringify!($field), "` from milliseconds since the Unix epoch, for times that are already numbers. NaN, infinities and negative values are refused when it is sent.")]
        pub fn $ms(mut self, millis: f64) -> Self {
            self.wire.$field = self.invalid.millis(stringify!($field), millis);
            self
        }
    };
}
pub(crate) use time_setters;

/// Refuses an `end_time` before the `start_time` (both set), naming
/// `{path}end_time` (`path` is `children[2].` inside a tree, else empty).
pub(crate) fn times_in_order(
    path: impl std::fmt::Display,
    start: Option<&Number>,
    end: Option<&Number>,
) -> Result<(), Error> {
    match (start, end) {
        (Some(start), Some(end)) if end.as_f64() < start.as_f64() => Err(Error::invalid(
            format!("{path}end_time"),
            format!(
                "{end} ms is before start_time {start} ms; set end_time at or after start_time \
                 (or swap them)"
            ),
        )),
        _ => Ok(()),
    }
}
