//! What an event may carry out of the process: the [`Mask`] hook that sees
//! (and may change) its free-form fields before it is serialized, and the
//! ready-made [`Redactor`].

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use regex::Regex;
use serde_json::{Map, Value};

use crate::api::types::Event as Wire;
use crate::{api, error::Error};

/// The free-form fields, each once: the variant, the field of the
/// generated types (its name on the wire), and its docs. Everything that
/// lists them (the enum, [`FreeForm::ALL`], the names, the access to an
/// event's field) is made from this table.
macro_rules! free_form {
    ($($variant:ident $field:ident $doc:literal,)*) => {
        /// One of an event's free-form fields, as a [`Mask`] is shown it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum FreeForm {
            $(#[doc = $doc] $variant,)*
        }

        impl FreeForm {
            /// Every free-form field, in the order a mask sees them.
            pub const ALL: [FreeForm; [$(FreeForm::$variant),*].len()] =
                [$(FreeForm::$variant),*];

            /// The field's name on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(FreeForm::$variant => stringify!($field),)*
                }
            }

            /// This field of `event`.
            pub(crate) fn of(self, event: &mut Wire) -> &mut Map<String, Value> {
                match self {
                    $(FreeForm::$variant => &mut event.$field,)*
                }
            }

            /// This field of `event`, to read.
            pub(crate) fn of_ref(self, event: &Wire) -> &Map<String, Value> {
                match self {
                    $(FreeForm::$variant => &event.$field,)*
                }
            }
        }
    };
}

free_form! {
    Inputs inputs "`inputs`: prompts, tool arguments.",
    Outputs outputs "`outputs`: completions, tool results.",
    Metadata metadata "`metadata`.",
    Config config "`config`: model settings, templates.",
    Feedback feedback "`feedback`.",
    Metrics metrics "`metrics`.",
    UserProperties user_properties "`user_properties`.",
}

/// A request body other than an event's that has free-form fields (a
/// session start, an update): each of them it has, for its mask.
pub(crate) trait FreeFormFields {
    /// The body's free-form fields, each with its [`FreeForm`], in the
    /// order a mask sees them.
    fn free_form_mut(&mut self) -> impl Iterator<Item = (FreeForm, &mut Map<String, Value>)>;
}

/// `(FreeForm::Variant, &mut body.field)` for each named, as an iterator.
macro_rules! fields_mut {
    ($body:ident: $($variant:ident $field:ident),*) => {
        [$((FreeForm::$variant, &mut $body.$field)),*].into_iter()
    };
}

impl FreeFormFields for api::types::StartSessionRequest {
    fn free_form_mut(&mut self) -> impl Iterator<Item = (FreeForm, &mut Map<String, Value>)> {
        fields_mut!(self: Inputs inputs, Outputs outputs, Metadata metadata, Config config,
            UserProperties user_properties)
    }
}

impl FreeFormFields for api::types::UpdateEventRequest {
    /// `outputs`, which an update replaces rather than merges, last.
    fn free_form_mut(&mut self) -> impl Iterator<Item = (FreeForm, &mut Map<String, Value>)> {
        fields_mut!(self: Metadata metadata, Config config, Feedback feedback, Metrics metrics,
            UserProperties user_properties)
        .chain(self.outputs.as_mut().map(|o| (FreeForm::Outputs, o)))
    }
}

/// Sees, and may change, each free-form field of every event before the
/// event is serialized: set one with
/// [`ClientBuilder::mask`](crate::ClientBuilder::mask), and
/// [`Client::log_event`](crate::Client::log_event),
/// [`Client::log_batch`](crate::Client::log_batch), the
/// [`Logger`](crate::Logger) and the `tracing` layer all apply it, to
/// every event of a tree (as Langfuse's `mask`, LangSmith's `anonymizer`
/// and Braintrust's masking function do).
///
/// It runs where the event is serialized, on tokio's blocking pool
/// (`spawn_blocking`): for the Logger's deliveries, `log_event`,
/// `log_batch`, `start_session` and `update_event` alike, never on a
/// runtime's worker threads nor in `Logger::log`, so a slow mask delays
/// only the events it masks, not the application's tasks. (Outside any
/// runtime it runs on the calling thread; a mask whose
/// [`never_blocks`](Mask::never_blocks) says so, such as [`Redactor`],
/// runs where the event is serialized, without the hop.) It is called once for each
/// free-form field an event has, not for empty ones. It sees only the
/// free-form objects, so whatever it
/// does the event stays valid for its route (a field it empties is left
/// out, or sent as `{}` where the route requires it). A mask that panics
/// does not take anything down: the event is not sent (from the Logger, a
/// dead letter saying so, without the event, which the mask may have
/// changed half-way; from `log_event`, [`Error::InvalidInput`] on `mask`).
/// [`Client::start_session`](crate::Client::start_session) and
/// [`Client::update_event`](crate::Client::update_event) apply it to their
/// free-form fields too. Whatever the mask does, the client's API key (8
/// characters or more; a shorter one would match ordinary text) is then
/// replaced by `[redacted]` wherever it appears in what is sent.
///
/// Closures `Fn(FreeForm, &mut Map<String, Value>)` are masks:
///
/// ```
/// use honeyhive::{Client, FreeForm};
///
/// let client = Client::builder()
///     .api_key("hh-...")
///     .mask(|field: FreeForm, value: &mut serde_json::Map<String, serde_json::Value>| {
///         if field == FreeForm::Outputs {
///             value.clear(); // send no outputs at all
///         }
///     })
///     .build()?;
/// # Ok::<(), honeyhive::Error>(())
/// ```
pub trait Mask: Send + Sync + 'static {
    /// Changes `value`, the free-form field `field` of one event, in place.
    fn mask(&self, field: FreeForm, value: &mut Map<String, Value>);

    /// Whether this mask only computes (no I/O, no waiting on locks or
    /// other threads), so that it may run where the event is serialized,
    /// on the Logger's runtime, without the hop to tokio's blocking pool
    /// that a mask which may block gets. `false` unless a mask says so;
    /// [`Redactor`] does.
    fn never_blocks(&self) -> bool {
        false
    }
}

impl<F> Mask for F
where
    F: Fn(FreeForm, &mut Map<String, Value>) + Send + Sync + 'static,
{
    fn mask(&self, field: FreeForm, value: &mut Map<String, Value>) {
        self(field, value);
    }
}

/// Applies `mask` to every free-form field of every event of the tree.
///
/// # Errors
/// [`Error::InvalidInput`] on `mask` when it panicked, with its message.
pub(crate) fn apply(mask: &dyn Mask, event: &mut Wire) -> Result<(), Error> {
    guarded(|| crate::tree::each_mut(event, |e, _| mask_one(mask, e)))
}

/// Applies `mask` to each of `fields` (of a body other than an event's:
/// a session start, an update).
///
/// # Errors
/// As [`apply`].
pub(crate) fn apply_fields<'a>(
    mask: &dyn Mask,
    fields: impl IntoIterator<Item = (FreeForm, &'a mut Map<String, Value>)>,
) -> Result<(), Error> {
    guarded(|| {
        for (field, value) in fields {
            if !value.is_empty() {
                mask.mask(field, value);
            }
        }
    })
}

/// Runs `masking`, turning a panic into the error that says so.
fn guarded(masking: impl FnOnce()) -> Result<(), Error> {
    catch_unwind(AssertUnwindSafe(masking)).map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Error::invalid(
            "mask",
            format!("panicked ({message}); the event was not sent"),
        )
    })
}

fn mask_one(mask: &dyn Mask, event: &mut Wire) {
    for field in FreeForm::ALL {
        let value = field.of(event);
        // An absent field has nothing to mask (and is not sent).
        if !value.is_empty() {
            mask.mask(field, value);
        }
    }
}

/// A ready-made [`Mask`]: values under chosen keys, at any depth (inside
/// arrays too), and text matching patterns are replaced by a marker
/// (`[redacted]` unless [`marker`](Self::marker) says otherwise).
///
/// - **Keys** match ignoring ASCII case and treating `-` as `_`:
///   `keys(["api_key"])` redacts `API_KEY`, `Api-Key` and `api_key`,
///   and the whole value under it, whatever its type.
/// - **Patterns** are regular expressions ([`regex`](https://docs.rs/regex)
///   syntax) matched in every string value; each match is replaced.
///   [`new`](Self::new) starts with three: `Bearer` tokens, `sk-...` keys
///   (OpenAI's and Anthropic's shapes) and e-mail addresses.
///
/// ```
/// use honeyhive::{Client, Redactor};
///
/// let redactor = Redactor::new().keys(["password", "api_key", "authorization"]);
/// let client = Client::builder().api_key("hh-...").mask(redactor).build()?;
/// # Ok::<(), honeyhive::Error>(())
/// ```
#[derive(Clone)]
#[must_use = "a Redactor does nothing until it is given to ClientBuilder::mask"]
pub struct Redactor {
    /// Normalized (lower case, `_` for `-`).
    keys: Vec<String>,
    /// The patterns as given, for `Debug` and for adding more.
    sources: Vec<String>,
    /// All patterns as one alternation: one scan per string.
    patterns: Option<Arc<Regex>>,
    marker: Arc<str>,
}

impl Redactor {
    /// The text that replaces what is redacted, unless
    /// [`marker`](Self::marker) says otherwise.
    pub const DEFAULT_MARKER: &'static str = "[redacted]";

    /// Bearer tokens as an `Authorization` header carries them.
    pub const BEARER_PATTERN: &'static str = r"[Bb]earer\s+[A-Za-z0-9\-._~+/]+=*";
    /// Secret keys of the shape `sk-...` (OpenAI's `sk-proj-...`,
    /// Anthropic's `sk-ant-...`).
    pub const SECRET_KEY_PATTERN: &'static str = r"\bsk-[A-Za-z0-9_\-]{16,}";
    /// E-mail addresses.
    pub const EMAIL_PATTERN: &'static str = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}";

    /// A redactor with the three default patterns and no keys.
    pub fn new() -> Self {
        let redactor = Redactor {
            keys: Vec::new(),
            sources: Vec::new(),
            patterns: None,
            marker: Arc::from(Self::DEFAULT_MARKER),
        };
        [
            Self::BEARER_PATTERN,
            Self::SECRET_KEY_PATTERN,
            Self::EMAIL_PATTERN,
        ]
        .into_iter()
        .try_fold(redactor, |r, pattern| r.pattern(pattern))
        .unwrap_or_else(|e| unreachable!("the default patterns compile: {e}"))
    }

    /// A redactor that redacts nothing yet: add keys and patterns.
    pub fn empty() -> Self {
        Redactor {
            keys: Vec::new(),
            sources: Vec::new(),
            patterns: None,
            marker: Arc::from(Self::DEFAULT_MARKER),
        }
    }

    /// Adds keys whose values are redacted, at any depth.
    pub fn keys<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        self.keys
            .extend(keys.into_iter().map(|k| normalize(k.as_ref())));
        self
    }

    /// Adds a pattern ([`regex`](https://docs.rs/regex) syntax) whose
    /// matches in string values are redacted.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on `pattern` when it does not compile, with
    /// the regex crate's reason.
    pub fn pattern(mut self, pattern: &str) -> Result<Self, Error> {
        self.sources.push(pattern.to_owned());
        let joined = self
            .sources
            .iter()
            .map(|p| format!("(?:{p})"))
            .collect::<Vec<_>>()
            .join("|");
        let regex = Regex::new(&joined).map_err(|e| {
            Error::invalid(
                "pattern",
                format!("{pattern:?} is not a regular expression: {e}"),
            )
        })?;
        self.patterns = Some(Arc::new(regex));
        Ok(self)
    }

    /// Sets the text that replaces what is redacted.
    pub fn marker(mut self, marker: impl Into<String>) -> Self {
        self.marker = Arc::from(marker.into());
        self
    }

    fn value(&self, value: &mut Value) {
        match value {
            Value::String(text) => self.text(text),
            Value::Array(items) => items.iter_mut().for_each(|item| self.value(item)),
            Value::Object(map) => self.object(map),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn object(&self, map: &mut Map<String, Value>) {
        for (key, value) in map.iter_mut() {
            if self.is_key(key) {
                *value = Value::String(self.marker.to_string());
            } else {
                self.value(value);
            }
        }
    }

    fn is_key(&self, key: &str) -> bool {
        !self.keys.is_empty()
            && self.keys.iter().any(|k| {
                k.len() == key.len()
                    && k.bytes().zip(key.bytes()).all(|(want, got)| {
                        want == got.to_ascii_lowercase() || (want == b'_' && got == b'-')
                    })
            })
    }

    fn text(&self, text: &mut String) {
        let Some(patterns) = &self.patterns else {
            return;
        };
        if !patterns.is_match(text) {
            return;
        }
        // The marker is text, not a replacement template (`$1` stays `$1`).
        let replaced = patterns
            .replace_all(text, regex::NoExpand(&self.marker))
            .into_owned();
        *text = replaced;
    }
}

impl Default for Redactor {
    /// [`Redactor::new`]: the three default patterns, no keys.
    fn default() -> Self {
        Redactor::new()
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("keys", &self.keys)
            .field("patterns", &self.sources)
            .field("marker", &self.marker)
            .finish()
    }
}

impl Mask for Redactor {
    fn mask(&self, _field: FreeForm, value: &mut Map<String, Value>) {
        self.object(value);
    }

    /// A walk and regular expressions: it never blocks.
    fn never_blocks(&self) -> bool {
        true
    }
}

fn normalize(key: &str) -> String {
    key.trim().to_ascii_lowercase().replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn redacted(redactor: &Redactor, value: Value) -> Value {
        let Value::Object(mut map) = value else {
            panic!("an object")
        };
        redactor.mask(FreeForm::Inputs, &mut map);
        Value::Object(map)
    }

    #[test]
    fn keys_match_ignoring_case_and_dashes_at_any_depth_and_inside_arrays() {
        let redactor = Redactor::empty().keys(["api_key", "Password"]);
        let out = redacted(
            &redactor,
            json!({
                "API-KEY": "k1",
                "nested": {"password": {"deep": 1}, "keep": "x"},
                "list": [{"Api_Key": "k2"}, [{"PASSWORD": ["a", "b"]}]],
                "api_keys": "not the same key"
            }),
        );
        assert_eq!(
            out,
            json!({
                "API-KEY": "[redacted]",
                "nested": {"password": "[redacted]", "keep": "x"},
                "list": [{"Api_Key": "[redacted]"}, [{"PASSWORD": "[redacted]"}]],
                "api_keys": "not the same key"
            })
        );
    }

    #[test]
    fn the_default_patterns_replace_tokens_keys_and_addresses_inside_text() {
        let out = redacted(
            &Redactor::new(),
            json!({"messages": [
                "Authorization: Bearer eyJhbGciOi.J9x-_y",
                "my key is sk-proj-ABCDEFGHIJKLMNOPqrst and sk-short",
                "write to jane.doe+llm@example.co.uk, thanks",
                "nothing here: task-manager, a@b"
            ]}),
        );
        assert_eq!(
            out,
            json!({"messages": [
                "Authorization: [redacted]",
                "my key is [redacted] and sk-short",
                "write to [redacted], thanks",
                "nothing here: task-manager, a@b"
            ]})
        );
    }

    #[test]
    fn the_marker_is_text_even_with_dollar_signs() {
        let redactor = Redactor::new().marker("$0-gone").keys(["k"]);
        let out = redacted(&redactor, json!({"k": 1, "t": "to x@y.org"}));
        assert_eq!(out, json!({"k": "$0-gone", "t": "to $0-gone"}));
    }

    #[test]
    fn a_pattern_that_does_not_compile_is_refused_naming_it() {
        let err = Redactor::new().pattern("([a-z]").unwrap_err();
        assert!(
            err.to_string().starts_with("invalid pattern: \"([a-z]\""),
            "{err}"
        );
    }

    #[test]
    fn a_panicking_mask_is_an_invalid_input_naming_the_mask_with_its_message() {
        let mask = |_: FreeForm, _: &mut Map<String, Value>| panic!("boom");
        let mut event = full();
        let err = apply(&mask, &mut event).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid mask: panicked (boom); the event was not sent"
        );
    }

    #[test]
    fn the_mask_sees_every_field_of_every_event_of_a_tree() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let mask = move |field: FreeForm, _: &mut Map<String, Value>| {
            log.lock().unwrap().push(field);
        };
        let mut tree = Wire {
            children: vec![full(), full()],
            ..full()
        };
        apply(&mask, &mut tree).unwrap();
        assert_eq!(seen.lock().unwrap().len(), 3 * FreeForm::ALL.len());
        // Fields an event does not have are not masked.
        seen.lock().unwrap().clear();
        apply(&mask, &mut Wire::default()).unwrap();
        assert!(seen.lock().unwrap().is_empty());
    }

    #[test]
    fn the_bodies_other_than_events_show_each_free_form_field_they_have() {
        let names = |fields: Vec<(FreeForm, &mut Map<String, Value>)>| {
            fields
                .into_iter()
                .map(|(field, _)| field.as_str())
                .collect::<Vec<_>>()
        };
        let mut start = api::types::StartSessionRequest::default();
        assert_eq!(
            names(start.free_form_mut().collect()),
            ["inputs", "outputs", "metadata", "config", "user_properties"]
        );
        let mut update = api::types::UpdateEventRequest::default();
        assert_eq!(
            names(update.free_form_mut().collect()),
            [
                "metadata",
                "config",
                "feedback",
                "metrics",
                "user_properties"
            ],
            "outputs only when the update replaces them"
        );
        update.outputs = Some(Map::new());
        let mut fields = update.free_form_mut().collect::<Vec<_>>();
        assert_eq!(
            fields.last().map(|(field, _)| *field),
            Some(FreeForm::Outputs)
        );
        fields[0].1.insert("k".into(), Value::from(1));
        assert_eq!(update.metadata["k"], 1, "the body's own field");
    }

    /// An event with every free-form field set.
    fn full() -> Wire {
        let mut event = Wire::default();
        for field in FreeForm::ALL {
            field.of(&mut event).insert("k".into(), Value::from(1));
        }
        event
    }
}
