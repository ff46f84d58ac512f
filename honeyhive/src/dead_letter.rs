//! Dead letters: events a [`Logger`](crate::Logger) could not deliver,
//! handed back instead of dropped, and
//! [`EventLine`], the JSONL line they are kept as.

use bytes::Bytes;
use reqwest::StatusCode;

use crate::error::Fix;
use crate::session::SessionId;

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
    pub session_id: SessionId,
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
    pub status: Option<StatusCode>,
    /// The setting that fixes it, when one does: `reason` ends with it,
    /// in this crate's words ([`reason_with`](Self::reason_with)).
    pub fix: Option<Fix>,
}

/// One line for a log: which event of which session, and why it was not
/// delivered (the [`reason`](DeadLetter::reason), its fix included).
///
/// ```
/// # fn log(letter: &honeyhive::DeadLetter) {
/// eprintln!("{letter}"); // event e-1 of session s-1 not delivered: the API answered 400: …
/// # }
/// ```
impl std::fmt::Display for DeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.event_id {
            Some(id) => write!(f, "event {id}")?,
            None => f.write_str("an event")?,
        }
        write!(
            f,
            " of session {} not delivered: {}",
            self.session_id.as_str(),
            self.reason
        )
    }
}

impl DeadLetter {
    /// `reason` with its [`fix`](Self::fix) said by `say`, as
    /// [`Error::to_string_with`](crate::Error::to_string_with) says an
    /// error's.
    pub fn reason_with<'a>(&self, say: impl Fn(Fix) -> &'a str) -> String {
        crate::error::said_with(&self.reason, self.fix, say)
    }

    /// A letter for an event that could not even be serialized.
    pub(crate) fn unsent(session_id: &SessionId, reason: String) -> Self {
        DeadLetter {
            session_id: session_id.clone(),
            event_id: None,
            event: Bytes::new(),
            reason,
            status: None,
            fix: None,
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
        self.status
            .is_some_and(|status| crate::status::refused(status.as_u16()))
    }

    /// The event as a JSON value (`Null` if the bytes are not JSON, which the
    /// client never produces).
    pub fn event_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.event).unwrap_or(serde_json::Value::Null)
    }
}

/// One line of the JSONL files of events this crate writes (dead-letter
/// files, [`JsonlDeadLetters`](crate::JsonlDeadLetters)), which the
/// `honeyhive` command's `send` replays as they are (its rejects files and
/// `mock --print` add fields of their own to the same lines).
///
/// Shape: `{"session_id": "...", "event": {...}}`, and, for an event that
/// was not delivered, `"reason"` and `"status"` (always present then: the
/// status as a number, `null` when the API did not answer). Fields that are
/// `None` are left out of the line.
///
/// ```
/// use honeyhive::EventLine;
/// use serde_json::json;
///
/// let line: EventLine = serde_json::from_str(
///     r#"{"session_id": "s-1", "event": {"event_name": "search"}, "reason": "413", "status": 413}"#,
/// )?;
/// assert_eq!(line.session_id, Some("s-1".into()));
/// let status = line.undelivered.as_ref().and_then(|u| u.status);
/// assert_eq!(status, Some(honeyhive::StatusCode::PAYLOAD_TOO_LARGE));
/// let back: serde_json::Value = serde_json::to_value(&line)?;
/// assert_eq!(back["event"], json!({"event_name": "search"}));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct EventLine {
    /// When the line was written, in milliseconds since the Unix epoch
    /// (dead letters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
    /// The session the event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    /// The event's id, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Why it was not delivered, when it was not.
    #[serde(flatten)]
    pub undelivered: Option<Undelivered>,
    /// The event, as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<serde_json::Value>,
}

/// Why an [`EventLine`]'s event was not delivered.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Undelivered {
    /// What went wrong, in words.
    pub reason: String,
    /// The HTTP status of the API's answer; `None` (`null` on the line)
    /// when it did not answer or the line was refused before sending. On
    /// the line, the number (`413`).
    #[serde(with = "status_number")]
    pub status: Option<StatusCode>,
}

/// An optional [`StatusCode`] on a line as its number, or `null`.
mod status_number {
    use reqwest::StatusCode;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        status: &Option<StatusCode>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match status {
            Some(status) => serializer.serialize_u16(status.as_u16()),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<StatusCode>, D::Error> {
        Option::<u16>::deserialize(deserializer)?
            .map(|code| StatusCode::from_u16(code).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl Undelivered {
    /// Why an event was not delivered: `reason`, and the API's `status`.
    pub fn new(reason: impl Into<String>, status: Option<StatusCode>) -> Self {
        Undelivered {
            reason: reason.into(),
            status,
        }
    }
}

impl EventLine {
    /// A line for `event` of `session_id`.
    pub fn new(session_id: impl Into<SessionId>, event: serde_json::Value) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_letter_displays_as_one_line_naming_the_event_its_session_and_why() {
        let mut letter = DeadLetter::unsent(&SessionId::from("s-1"), "bad inputs".to_owned());
        assert_eq!(
            letter.to_string(),
            "an event of session s-1 not delivered: bad inputs"
        );
        letter.event_id = Some("e-1".to_owned());
        assert_eq!(
            letter.to_string(),
            "event e-1 of session s-1 not delivered: bad inputs"
        );
    }

    /// A dead-letter file keeps the bytes it had when the status was a
    /// `u16`: the number, or `null`.
    #[test]
    fn a_line_writes_its_status_as_the_number_and_reads_it_back() {
        let mut line = EventLine::new("s-1", serde_json::json!({"event_name": "search"}));
        line.event_id = Some("e-1".into());
        line.undelivered = Some(Undelivered::new(
            "the API answered HTTP 413",
            Some(StatusCode::PAYLOAD_TOO_LARGE),
        ));
        let written = serde_json::to_string(&line).unwrap();
        assert_eq!(
            written,
            r#"{"session_id":"s-1","event_id":"e-1","reason":"the API answered HTTP 413","status":413,"event":{"event_name":"search"}}"#
        );
        assert_eq!(serde_json::from_str::<EventLine>(&written).unwrap(), line);

        line.undelivered = Some(Undelivered::new("no answer", None));
        let written = serde_json::to_string(&line).unwrap();
        assert!(
            written.contains(r#""reason":"no answer","status":null,"#),
            "{written}"
        );
        assert_eq!(serde_json::from_str::<EventLine>(&written).unwrap(), line);

        // Not a status: the pair is not read (as a `"status": "x"` is not).
        let refused = r#"{"session_id":"s","reason":"r","status":1000}"#;
        let read = serde_json::from_str::<EventLine>(refused).unwrap();
        assert_eq!(read.undelivered, None);
    }
}
