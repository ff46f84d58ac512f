//! The [`Event`] builder: one span of an LLM application, ready to log.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::fields::{Invalid, object_setters};
use crate::{Error, api};

/// The four kinds of event HoneyHive knows.
///
/// ```
/// assert_eq!(honeyhive::EventType::Model.as_str(), "model");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventType {
    /// A call to a language model.
    Model,
    /// A call to a tool, function or retriever.
    Tool,
    /// A step that groups other events.
    Chain,
    /// The root event of a session.
    Session,
}

impl EventType {
    /// The name the API uses for this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Model => "model",
            EventType::Tool => "tool",
            EventType::Chain => "chain",
            EventType::Session => "session",
        }
    }
}

/// Parses the name the API uses (`"model"`, `"tool"`, `"chain"`,
/// `"session"`; exact, lower case), the inverse of [`EventType::as_str`].
///
/// # Errors
/// [`UnknownEventType`] for any other text, holding it.
///
/// ```
/// use honeyhive::EventType;
///
/// assert_eq!("tool".parse::<EventType>()?, EventType::Tool);
/// assert!("Tool".parse::<EventType>().is_err());
/// # Ok::<(), honeyhive::UnknownEventType>(())
/// ```
impl std::str::FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [
            EventType::Model,
            EventType::Tool,
            EventType::Chain,
            EventType::Session,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
        .ok_or_else(|| UnknownEventType(text.to_owned()))
    }
}

/// A text that names none of the [`EventType`]s, from
/// [`str::parse`](EventType#impl-FromStr-for-EventType).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}: expected \"model\", \"tool\", \"chain\" or \"session\"")]
pub struct UnknownEventType(pub String);

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event (a span) of an LLM application, built field by field.
///
/// Start from the constructor for its kind, then set what you know. Setters
/// never fail on the spot: a value that cannot be sent (a free-form field that
/// is not a JSON object, a time before 1970) is remembered and reported as
/// [`Error::InvalidInput`], naming the field, when the event is logged.
///
/// On the wire every field is optional and fields you do not set are left
/// out, never sent as `null`. Times are whole milliseconds since the Unix
/// epoch; durations are milliseconds (fractional below one millisecond).
/// Empty free-form objects are left out as well.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use honeyhive::Event;
/// use serde_json::json;
///
/// let event = Event::model("gpt-4o")
///     .inputs(json!({"messages": [{"role": "user", "content": "Hi"}]}))
///     .outputs(json!({"content": "Hello!"}))
///     .config(json!({"temperature": 0.2}))
///     .start_time(SystemTime::now())
///     .duration(Duration::from_millis(840))
///     .child(Event::tool("search").inputs(json!({"query": "weather"})));
/// assert_eq!(event.as_api().event_type.as_deref(), Some("model"));
/// assert_eq!(event.as_api().children.len(), 1);
/// ```
///
/// `Event::default()` is an event with no field set.
#[must_use = "an Event does nothing until it is logged"]
#[derive(Clone, PartialEq, Default)]
pub struct Event {
    wire: api::types::Event,
    /// The first setter input that cannot be sent.
    invalid: Invalid,
}

impl Event {
    /// An event of the given kind and name.
    pub fn new(event_type: EventType, name: impl Into<String>) -> Self {
        Event::default().event_type(event_type).name(name)
    }

    /// A call to a language model; `name` is usually the model's name.
    pub fn model(name: impl Into<String>) -> Self {
        Self::new(EventType::Model, name)
    }

    /// A call to a tool, function or retriever.
    pub fn tool(name: impl Into<String>) -> Self {
        Self::new(EventType::Tool, name)
    }

    /// A step that groups other events, such as an agent loop or a pipeline.
    pub fn chain(name: impl Into<String>) -> Self {
        Self::new(EventType::Chain, name)
    }

    /// The root event of a session.
    pub fn session(name: impl Into<String>) -> Self {
        Self::new(EventType::Session, name)
    }

    /// Sets `event_name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.wire.event_name = Some(name.into());
        self
    }

    /// Sets `event_type`.
    pub fn event_type(mut self, event_type: EventType) -> Self {
        self.wire.event_type = Some(event_type.as_str().to_owned());
        self
    }

    /// Sets `event_id`. When none is set, the client gives the event a new
    /// UUIDv4 before sending, so that a retried request cannot record it twice.
    pub fn event_id(mut self, id: impl Into<String>) -> Self {
        self.wire.event_id = Some(id.into());
        self
    }

    /// Sets `project`, overriding the client's default project.
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.wire.project = Some(project.into());
        self
    }

    /// Sets `source` (such as `production` or `evaluation`), overriding the
    /// client's default source.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.wire.source = Some(source.into());
        self
    }

    /// Sets the `session_id` field of the body. The session an event is
    /// logged into is the one given to [`crate::Client::log_event`]; this
    /// field only restates it, and is usually left unset.
    pub fn session_id(mut self, id: impl Into<crate::SessionId>) -> Self {
        self.wire.session_id = Some(id.into().into());
        self
    }

    /// Sets `error`: what the event failed with.
    pub fn error(mut self, error: impl Into<String>) -> Self {
        self.wire.error = Some(error.into());
        self
    }

    /// Sets `start_time`, sent as whole milliseconds since the Unix epoch.
    pub fn start_time(mut self, at: SystemTime) -> Self {
        let millis = self.invalid.epoch_millis("start_time", at);
        self.wire.start_time = millis;
        self
    }

    /// Sets `end_time`, sent as whole milliseconds since the Unix epoch.
    pub fn end_time(mut self, at: SystemTime) -> Self {
        let millis = self.invalid.epoch_millis("end_time", at);
        self.wire.end_time = millis;
        self
    }

    /// Sets `duration`, sent in milliseconds (with microsecond precision
    /// below a whole millisecond).
    pub fn duration(mut self, took: Duration) -> Self {
        self.wire.duration = Some(crate::millis::duration(took));
        self
    }

    /// Sets `start_time` from milliseconds since the Unix epoch, for times
    /// that are already numbers. NaN, infinities and negative values are
    /// refused when the event is logged.
    pub fn start_time_ms(mut self, millis: f64) -> Self {
        self.wire.start_time = self.invalid.millis("start_time", millis);
        self
    }

    /// Sets `end_time` from milliseconds since the Unix epoch; see
    /// [`start_time_ms`](Self::start_time_ms).
    pub fn end_time_ms(mut self, millis: f64) -> Self {
        self.wire.end_time = self.invalid.millis("end_time", millis);
        self
    }

    /// Sets `duration` from a number of milliseconds; see
    /// [`start_time_ms`](Self::start_time_ms).
    pub fn duration_ms(mut self, millis: f64) -> Self {
        self.wire.duration = self.invalid.millis("duration", millis);
        self
    }

    /// Adds a child event, sent nested in this one's `children`.
    pub fn child(mut self, child: Event) -> Self {
        let index = self.wire.children.len();
        if child.invalid.first().is_some() {
            self.invalid
                .adopt(&format!("children[{index}]."), child.invalid);
        }
        self.wire.children.push(child.wire);
        self
    }

    /// The event as the generated API type, as it stands now (before the
    /// client fills in defaults).
    pub fn as_api(&self) -> &api::types::Event {
        &self.wire
    }

    /// The event as the generated API type, or the first problem a setter met.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field a setter could not take.
    ///
    /// ```
    /// let bad = honeyhive::Event::tool("search").inputs("just a string");
    /// let err = bad.into_api().unwrap_err();
    /// assert!(err.to_string().starts_with("invalid inputs:"));
    /// ```
    pub fn into_api(self) -> Result<api::types::Event, Error> {
        self.check()?;
        Ok(self.wire)
    }

    /// The first problem a setter met, or an end before a start.
    pub(crate) fn check(&self) -> Result<(), Error> {
        self.invalid.check()?;
        check_times(&self.wire)
    }
}

object_setters!(Event {
    inputs: ": what went into the event",
    outputs: ": what came out of the event",
    config: ": how the model or tool was configured",
    metadata: "",
    metrics: "",
    feedback: "",
    user_properties: "",
});

impl fmt::Debug for Event {
    /// The fields that are set, as they would go on the wire (before the
    /// client fills ids and defaults), and the first problem a setter met.
    ///
    /// ```
    /// let event = honeyhive::Event::tool("search").inputs(serde_json::json!({"q": "rust"}));
    /// assert_eq!(
    ///     format!("{event:?}"),
    ///     r#"Event {"event_name": "search", "event_type": "tool", "inputs": {"q":"rust"}}"#
    /// );
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// Shows a JSON value as JSON.
        struct Json<'a>(&'a Value);
        impl fmt::Debug for Json<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self.0, f)
            }
        }
        f.write_str("Event ")?;
        let mut map = f.debug_map();
        // The generated type only holds JSON, so this cannot fail.
        if let Ok(Value::Object(fields)) = serde_json::to_value(&self.wire) {
            map.entries(fields.iter().map(|(name, value)| (name, Json(value))));
        }
        if let Some((field, problem)) = self.invalid.first() {
            map.entry(&"invalid", &format_args!("{field}: {problem}"));
        }
        map.finish()
    }
}

impl From<api::types::Event> for Event {
    /// Wraps an event built with the generated types.
    fn from(wire: api::types::Event) -> Self {
        Event {
            wire,
            invalid: Invalid::default(),
        }
    }
}

/// Refuses an `end_time` before the `start_time`, anywhere in the tree:
/// the first such event (depth first), named by its path
/// (`children[2].children[0].end_time`). The path is written only for a
/// tree that has one, so a good tree costs no allocation.
fn check_times(event: &api::types::Event) -> Result<(), Error> {
    crate::tree::visit(
        event,
        &mut |event, place| match (&event.start_time, &event.end_time) {
            (Some(start), Some(end)) if end.as_f64() < start.as_f64() => Err(Error::invalid(
                format!("{place}end_time"),
                format!(
                    "{end} ms is before start_time {start} ms; set end_time at or after start_time \
                 (or swap them)"
                ),
            )),
            _ => Ok(()),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Number;
    use std::time::UNIX_EPOCH;

    #[test]
    fn each_constructor_sets_its_kind_and_name_and_display_is_the_wire_name() {
        let made = [
            (Event::model("a"), EventType::Model, "model"),
            (Event::tool("a"), EventType::Tool, "tool"),
            (Event::chain("a"), EventType::Chain, "chain"),
            (Event::session("a"), EventType::Session, "session"),
        ];
        for (event, kind, wire) in made {
            assert_eq!(event.as_api().event_type.as_deref(), Some(wire));
            assert_eq!(event.as_api().event_name.as_deref(), Some("a"));
            assert_eq!(kind.to_string(), wire);
        }
    }

    #[test]
    fn whole_milliseconds_beyond_u64_stay_floats() {
        // 2^64 is whole but no u64 holds it: sent as the float it is, not
        // saturated to u64::MAX.
        let beyond = 2f64.powi(64);
        let wire = Event::tool("t").start_time_ms(beyond).into_api().unwrap();
        let sent = wire.start_time.unwrap();
        assert!(sent.is_f64(), "{sent}");
        assert_eq!(sent.as_f64(), Some(beyond));
        let below = Event::tool("t")
            .start_time_ms(2f64.powi(63))
            .into_api()
            .unwrap();
        assert_eq!(below.start_time.unwrap().as_u64(), Some(1 << 63));
    }

    #[test]
    fn zero_milliseconds_is_a_valid_time_and_duration() {
        let event = Event::tool("t")
            .start_time_ms(0.0)
            .end_time_ms(0.0)
            .duration_ms(0.0);
        let wire = event.into_api().expect("zero is 0 or more");
        assert_eq!(wire.start_time, Some(Number::from(0u64)));
        assert_eq!(wire.end_time, Some(Number::from(0u64)));
        assert_eq!(wire.duration, Some(Number::from(0u64)));
        let err = Event::tool("t").duration_ms(-0.5).into_api().unwrap_err();
        assert!(err.to_string().starts_with("invalid duration:"), "{err}");
    }

    #[test]
    fn first_problem_wins_and_names_the_child_path() {
        let event = Event::chain("c")
            .child(Event::tool("ok"))
            .child(Event::tool("bad").metrics(vec![1, 2]))
            .inputs(3);
        match event.into_api() {
            Err(Error::InvalidInput { field, problem }) => {
                assert_eq!(field, "children[1].metrics");
                assert!(problem.contains("got an array"), "{problem}");
            }
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn non_finite_numbers_are_refused_naming_the_place() {
        let field_of = |event: Event| match event.into_api() {
            Err(Error::InvalidInput { field, .. }) => field,
            other => panic!("expected InvalidInput, got {other:?}"),
        };
        #[derive(serde::Serialize)]
        struct Scores {
            relevance: f64,
        }
        assert_eq!(
            field_of(Event::model("m").metrics(Scores {
                relevance: f64::NAN
            })),
            "metrics.relevance"
        );
        assert_eq!(
            field_of(Event::chain("c").child(Event::tool("t").duration_ms(f64::INFINITY))),
            "children[0].duration"
        );
        assert_eq!(
            field_of(Event::model("m").start_time_ms(-1.0)),
            "start_time"
        );
        assert_eq!(
            field_of(Event::model("m").end_time_ms(f64::NAN)),
            "end_time"
        );
    }

    #[test]
    fn end_before_start_is_refused_at_any_depth() {
        let backwards = Event::tool("t").start_time_ms(2000.0).end_time_ms(1000.0);
        let err = Event::chain("c").child(backwards).into_api().unwrap_err();
        match err {
            Error::InvalidInput { field, problem } => {
                assert_eq!(field, "children[0].end_time");
                assert!(
                    problem.contains("1000 ms is before start_time 2000 ms"),
                    "{problem}"
                );
            }
            other => panic!("expected InvalidInput, got {other:?}"),
        }
        let same = Event::tool("t").start_time_ms(5.0).end_time_ms(5.0);
        assert!(same.into_api().is_ok());
        // Deeper: the path names each level, and the first bad one wins.
        let good = || Event::tool("ok").start_time_ms(1.0).end_time_ms(2.0);
        let bad = |end: f64| Event::tool("t").start_time_ms(2000.0).end_time_ms(end);
        let tree = Event::chain("root")
            .child(good())
            .child(Event::chain("mid").child(good()).child(bad(1.0)))
            .child(bad(3.0));
        match tree.into_api().unwrap_err() {
            Error::InvalidInput { field, problem } => {
                assert_eq!(field, "children[1].children[1].end_time");
                assert!(problem.starts_with("1 ms is before"), "{problem}");
            }
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn millisecond_setters_keep_whole_numbers_whole() {
        let wire = Event::tool("t")
            .start_time_ms(1_700_000_000_000.0)
            .duration_ms(2.25)
            .into_api()
            .unwrap();
        assert_eq!(wire.start_time.unwrap().to_string(), "1700000000000");
        assert_eq!(wire.duration.unwrap().to_string(), "2.25");
    }

    #[test]
    fn times_before_the_epoch_are_refused() {
        let before = UNIX_EPOCH - Duration::from_secs(1);
        let err = Event::model("m").start_time(before).into_api().unwrap_err();
        assert!(matches!(err, Error::InvalidInput { ref field, .. } if field == "start_time"));
    }

    #[test]
    fn debug_shows_the_fields_and_the_problem_not_the_internals() {
        let event = Event::model("gpt-4o")
            .duration_ms(2.5)
            .child(Event::tool("t"))
            .metrics(vec![1]);
        let shown = format!("{event:?}");
        assert_eq!(
            shown,
            r#"Event {"children": [{"event_name":"t","event_type":"tool"}], "duration": 2.5, "event_name": "gpt-4o", "event_type": "model", "invalid": metrics: must be a JSON object, got an array; pass a struct or a map, or wrap the value: json!({"value": ...})}"#
        );
        for internal in ["wire", "heap"] {
            assert!(!shown.contains(internal), "{shown}");
        }
        assert_eq!(format!("{:?}", Event::default()), "Event {}");
    }

    #[cfg(unix)]
    #[test]
    fn a_serialize_error_is_reported_as_itself_not_as_nan() {
        use std::os::unix::ffi::OsStrExt;
        #[derive(serde::Serialize)]
        struct Input {
            path: std::path::PathBuf,
        }
        let input = Input {
            path: std::ffi::OsStr::from_bytes(&[b'a', 0xff]).into(),
        };
        match Event::tool("t").inputs(input).into_api() {
            Err(Error::InvalidInput { field, problem }) => {
                assert_eq!(field, "inputs");
                assert!(problem.contains("invalid UTF-8"), "{problem}");
                assert!(!problem.contains("NaN"), "{problem}");
            }
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }
}
