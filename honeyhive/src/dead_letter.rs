//! Dead letters: events a [`Logger`](crate::Logger) could not deliver,
//! handed back instead of dropped.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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
/// `honeyhive send` cannot record it twice.
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

/// [`Outcomes`](crate::Outcomes) that append one JSON line per undelivered event to a
/// file: `{"at_ms": ..., "session_id": ..., "event_id": ..., "reason": ...,
/// "status": ..., "event": {...}}` (`status` is `null` when the API did not
/// answer). `honeyhive send` replays such a file as it is. Each line is flushed as it is written, so a crash loses
/// none that were handed over.
///
/// ```no_run
/// use honeyhive::{JsonlDeadLetters, LoggerConfig};
///
/// let config = LoggerConfig::default().with_outcomes(JsonlDeadLetters::append("undelivered.jsonl")?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct JsonlDeadLetters {
    path: PathBuf,
    file: Mutex<BufWriter<File>>,
}

impl JsonlDeadLetters {
    /// Opens `path` for appending, creating it if needed.
    pub fn append(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(JsonlDeadLetters {
            path,
            file: Mutex::new(BufWriter::new(file)),
        })
    }

    /// The file the letters go to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Debug for JsonlDeadLetters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonlDeadLetters")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl crate::Outcomes for JsonlDeadLetters {
    fn dead_letter(&self, letter: &DeadLetter) {
        let at_ms = crate::millis::now();
        let line = serde_json::json!({
            "at_ms": at_ms,
            "session_id": letter.session_id,
            "event_id": letter.event_id,
            "reason": letter.reason,
            "status": letter.status,
            "event": letter.event_json(),
        });
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let written = serde_json::to_writer(&mut *file, &line)
            .map_err(io::Error::from)
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.flush());
        if let Err(e) = written {
            // The sink is the last stop: say loudly what could not be kept.
            tracing::error!(
                path = %self.path.display(),
                event_id = letter.event_id.as_deref().unwrap_or(""),
                error = %e,
                "could not write an undelivered event to the dead-letter file"
            );
        }
    }
}
