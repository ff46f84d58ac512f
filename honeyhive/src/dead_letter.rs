//! Dead letters: events a [`Logger`](crate::Logger) could not deliver,
//! handed back instead of dropped, and
//! [`EventLine`], the JSONL line they are kept as.

use bytes::Bytes;

/// An event that could not be delivered, with why.
///
/// `event` is the event as this crate's per-event route carries it
/// (`POST /session/{session_id}/event`: children nested), ids and the
/// client's defaults filled: on that route, the exact body that was or
/// would have been sent; with [batches](crate::Route::EventBatch),
/// the tree that went out flat, nested again (`inputs` `{}` where unset,
/// each event's `source` as sent, no `project`: that route does not carry
/// it). Replaying it later through
/// [`crate::Client::log_event`], [`crate::Client::log_batch`] or
/// `honeyhive send` cannot record it twice. The one exception: the event of
/// a [`Mask`](crate::Mask) that panicked is left out (`event` is empty),
/// since the mask may have changed it half-way.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The session the event was logged into.
    pub session_id: String,
    /// The event's id, when it had got one.
    pub event_id: Option<String>,
    /// The event as JSON (see above).
    pub event: Bytes,
    /// Why it was not delivered: the last error, or the deadline that ran out.
    pub reason: String,
    /// The HTTP status of the last answer, when the API answered at all
    /// (`None`: connection failures, timeouts, shutdown).
    /// [`is_refused`](Self::is_refused) says what it means for sending the
    /// event again.
    pub status: Option<u16>,
}

impl DeadLetter {
    /// A letter for an event that could not even be serialized.
    pub(crate) fn unsent(session_id: &crate::SessionId, reason: String) -> Self {
        DeadLetter {
            session_id: session_id.as_str().to_owned(),
            event_id: None,
            event: Bytes::new(),
            reason,
            status: None,
        }
    }

    /// Whether the API refused this event for what it carries (a 4xx
    /// other than 401, 403, 408 and 429), so that sending it again as it is
    /// will not help; `false` when it may go through later (no answer, a
    /// 5xx, the key refused, the rate).
    ///
    /// ```
    /// # fn check(letter: &honeyhive::DeadLetter) {
    /// if letter.is_refused() {
    ///     eprintln!("fix this event: {}", letter.reason);
    /// } else {
    ///     eprintln!("send this event again later: {}", letter.reason);
    /// }
    /// # }
    /// ```
    pub fn is_refused(&self) -> bool {
        self.status.is_some_and(crate::status::refused)
    }

    /// The event as a JSON value (`Null` if the bytes are not JSON, which the
    /// client never produces).
    pub fn event_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.event).unwrap_or(serde_json::Value::Null)
    }
}

/// One line of the JSONL files of events this crate and the `honeyhive`
/// command write and read: dead-letter files ([`JsonlDeadLetters`](crate::JsonlDeadLetters)), the
/// command's rejects files, `honeyhive mock --print`, and the input of
/// `honeyhive send`, which replays any of them as they are.
///
/// Shape: `{"session_id": "...", "event": {...}}`, and, for an event that
/// was not delivered, `"reason"` and `"status"` (always present then,
/// `null` when the API did not answer). Fields that are `None` are left
/// out of the line.
///
/// ```
/// use honeyhive::EventLine;
/// use serde_json::json;
///
/// let line: EventLine = serde_json::from_str(
///     r#"{"session_id": "s-1", "event": {"event_name": "search"}, "reason": "413", "status": 413}"#,
/// )?;
/// assert_eq!(line.session_id.as_deref(), Some("s-1"));
/// assert_eq!(line.undelivered.as_ref().map(|f| f.status), Some(Some(413)));
/// let back: serde_json::Value = serde_json::to_value(&line)?;
/// assert_eq!(back["event"], json!({"event_name": "search"}));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct EventLine {
    /// The input file a rejected line came from (`honeyhive send`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Its line number there, from 1 (`honeyhive send`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// When the line was written, in milliseconds since the Unix epoch
    /// (dead letters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
    /// The session the event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The event's id, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The operation that carried it (`honeyhive mock --print`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Why it was not delivered, when it was not.
    #[serde(flatten)]
    pub undelivered: Option<Undelivered>,
    /// The event, as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<serde_json::Value>,
    /// The line's text, for a line that was not an event at all
    /// (`honeyhive send`'s rejects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

/// Why an [`EventLine`]'s event was not delivered.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Undelivered {
    /// What went wrong, in words.
    pub reason: String,
    /// The HTTP status of the API's answer; `None` (`null` on the line)
    /// when it did not answer or the line was refused before sending.
    pub status: Option<u16>,
}

impl Undelivered {
    /// Why an event was not delivered: `reason`, and the API's `status`.
    pub fn new(reason: impl Into<String>, status: Option<u16>) -> Self {
        Undelivered {
            reason: reason.into(),
            status,
        }
    }
}

impl EventLine {
    /// A line for `event` of `session_id`.
    pub fn new(session_id: impl Into<String>, event: serde_json::Value) -> Self {
        EventLine {
            session_id: Some(session_id.into()),
            event: Some(event),
            ..EventLine::default()
        }
    }

    /// The line for a dead letter, written now.
    pub fn from_dead_letter(letter: &DeadLetter) -> Self {
        EventLine {
            at_ms: Some(crate::millis::now()),
            event_id: letter.event_id.clone(),
            undelivered: Some(Undelivered::new(letter.reason.clone(), letter.status)),
            ..EventLine::new(letter.session_id.clone(), letter.event_json())
        }
    }
}
