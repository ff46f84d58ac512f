//! What became of each event a [`Logger`](super::Logger) took: sent, or a
//! dead letter. One hook for both, [`OutcomeSink`], and a ready-made one
//! that keeps dead letters in a file, [`JsonlDeadLetters`].

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::dead_letter::DeadLetter;
use crate::session::SessionId;

/// An event the API accepted, as [`OutcomeSink::sent`] is told of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sent<'a> {
    /// The session the event was logged into.
    pub session_id: &'a SessionId,
    /// The id it was sent (and recorded) under: the root's, for a tree.
    pub event_id: &'a str,
    /// How many requests it went out in (1 when the first one succeeded;
    /// a batch split to isolate a refused event counts each level).
    pub attempts: u32,
}

/// What becomes of each event a [`Logger`](super::Logger) took: every one
/// is, in the end, [`sent`](Self::sent) or a
/// [`dead_letter`](Self::dead_letter), once. Set it with
/// [`LoggerConfig::outcomes`](super::LoggerConfig::outcomes).
///
/// With both, a caller learns the fate of each event: to acknowledge a
/// message it read from a queue, or to record how far a file has been
/// delivered (`honeyhive send` does this). The two are called in different
/// places, each documented below; both methods do nothing by default, so
/// implement the one you need. [`JsonlDeadLetters`]
/// implements `dead_letter`; a pair `(A, B)` of implementations calls both;
/// a closure taking an [`Outcome`] gets both:
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use honeyhive::{LoggerConfig, Outcome};
///
/// let sent = Arc::new(AtomicU64::new(0));
/// let count = Arc::clone(&sent);
/// let config = LoggerConfig::default().outcomes(move |outcome: Outcome<'_>| match outcome {
///     Outcome::Sent(_) => {
///         count.fetch_add(1, Ordering::Relaxed);
///     }
///     Outcome::DeadLetter(letter) => eprintln!("not delivered: {}", letter.reason),
///     _ => {}
/// });
/// ```
pub trait OutcomeSink: Send + Sync + 'static {
    /// The API accepted the event. Called on the runtime's threads, from
    /// many tasks at once, before the event counts as settled (so a
    /// [`flush`](super::Logger::flush) that returns has seen every call for
    /// the events before it): keep it short and never block. A panic in it
    /// is caught and said; the event counts as sent.
    fn sent(&self, sent: &Sent<'_>) {
        let _ = sent;
    }

    /// The event could not be delivered; `letter` carries it and why.
    /// Called once per letter, in the order they were handed back, on a
    /// thread the logger owns (never on the runtime's threads, never on the
    /// caller of `log`), so it may block on a file or a socket. `flush`
    /// waits for it to take the letters of the events it waited for;
    /// `shutdown` gives it until its timeout plus
    /// [`Logger::SINK_GRACE`](super::Logger::SINK_GRACE), and a letter it
    /// has not begun by then stays in the report only. A panic in it is
    /// caught (and said); the letter stays in the report. The reports carry
    /// every letter whether or not this is set.
    fn dead_letter(&self, letter: &DeadLetter) {
        let _ = letter;
    }
}

/// Either fate of an event, for a closure that is an [`OutcomeSink`].
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Outcome<'a> {
    /// See [`OutcomeSink::sent`] (where and when it is called).
    Sent(&'a Sent<'a>),
    /// See [`OutcomeSink::dead_letter`] (where and when it is called).
    DeadLetter(&'a DeadLetter),
}

impl<F> OutcomeSink for F
where
    F: Fn(Outcome<'_>) + Send + Sync + 'static,
{
    fn sent(&self, sent: &Sent<'_>) {
        self(Outcome::Sent(sent));
    }

    fn dead_letter(&self, letter: &DeadLetter) {
        self(Outcome::DeadLetter(letter));
    }
}

impl<A: OutcomeSink, B: OutcomeSink> OutcomeSink for (A, B) {
    fn sent(&self, sent: &Sent<'_>) {
        self.0.sent(sent);
        self.1.sent(sent);
    }

    fn dead_letter(&self, letter: &DeadLetter) {
        self.0.dead_letter(letter);
        self.1.dead_letter(letter);
    }
}

/// [`OutcomeSink`] that append one JSON line per undelivered event to a
/// file, each an [`EventLine`](crate::EventLine): `{"at_ms": ..., "session_id": ...,
/// "event_id": ..., "reason": ..., "status": ..., "event": {...}}`
/// (`status` is `null` when the API did not answer). `honeyhive send` replays such a file as it is. Each line is flushed as it is written, so a crash loses
/// none that were handed over.
///
/// ```no_run
/// use honeyhive::{JsonlDeadLetters, LoggerConfig};
///
/// let config = LoggerConfig::default().outcomes(JsonlDeadLetters::append("undelivered.jsonl")?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct JsonlDeadLetters {
    path: PathBuf,
    file: Mutex<BufWriter<File>>,
}

impl JsonlDeadLetters {
    /// Opens `path` for appending, creating it if needed.
    ///
    /// # Errors
    /// The [`io::Error`] of opening or creating the file.
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

impl OutcomeSink for JsonlDeadLetters {
    fn dead_letter(&self, letter: &DeadLetter) {
        let line = crate::dead_letter::EventLine::from_dead_letter(letter);
        let mut file = self.file.lock();
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
