//! [`LoggerConfig`]: how a [`Logger`](super::Logger) queues and sends.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::OutcomeSink;

/// How a [`Logger`](super::Logger) queues and sends. Every setting has a
/// documented default; each setter is named after its setting (a
/// configuration has setters only: see CONTRIBUTING's conventions).
///
/// ```
/// let config = honeyhive::LoggerConfig::default()
///     .max_queue_events(50_000)
///     .max_queue_bytes(32 * 1024 * 1024)
///     .max_in_flight(16);
/// # let _ = config;
/// ```
#[must_use = "a LoggerConfig does nothing until it is given to Logger::new"]
#[derive(Clone)]
pub struct LoggerConfig {
    pub(super) max_queue_events: usize,
    pub(super) max_queue_bytes: usize,
    pub(super) max_in_flight: usize,
    pub(super) adaptive: bool,
    pub(super) max_report_letters: usize,
    pub(super) linger: Duration,
    pub(super) outcomes: Option<Arc<dyn OutcomeSink>>,
    pub(super) route: Route,
    pub(super) max_batch_events: usize,
    pub(super) max_batch_bytes: Option<usize>,
}

/// The route a [`Logger`](super::Logger) sends events through.
///
/// | route | request | HoneyHive's published spec says |
/// |---|---|---|
/// | [`Event`](Route::Event) (default) | `POST /session/{session_id}/event`, one event tree per request, children nested | the route of the "Log an event" page this crate was first written from; in none of HoneyHive's published specs |
/// | [`EventBatch`](Route::EventBatch) | `POST /v1/events/batch`, up to [`max_batch_events`](LoggerConfig::max_batch_events) events of any sessions per request, trees flat | `createEventBatch` of the data-plane spec 1.9.0, current |
///
/// Batches are how the logger goes fast: one request carries a hundred
/// events (see BENCHMARKS.md for the figures). The per-event route stays
/// the default, as the contract of the page this crate implements. With
/// batches, each tree goes out flat (see
/// [`Client::log_batch`](crate::Client::log_batch) for how) and every event
/// needs an `event_type` (checked by `log`).
///
/// ```
/// use honeyhive::{LoggerConfig, Route};
///
/// let config = LoggerConfig::default().route(Route::EventBatch);
/// assert_eq!(LoggerConfig::DEFAULT_MAX_BATCH_EVENTS, 100);
/// # let _ = config;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// `POST /session/{session_id}/event`: one event (tree) per request.
    #[default]
    Event,
    /// `POST /v1/events/batch`: many events per request.
    ///
    /// A batch the API answers 400, 413 or 422 is split in two and each
    /// half sent again, down to the single event it refuses, so that one
    /// bad event does not cost the others; that event is a dead letter
    /// with the API's answer. A batch answered 500 (the spec: "events
    /// partially created", without saying which) or failing in transit is
    /// retried whole, with the same event ids: this assumes HoneyHive
    /// records an event id once, keeping the first, when a batch carries
    /// one it already has (what an idempotent `event_id` means; the
    /// published spec does not say it either way).
    EventBatch,
}

impl Route {
    /// Whether an event for `session_id` can go this route: what
    /// [`Logger::log`](super::Logger::log) checks before it takes one (the
    /// session id, a setter's problem, an end before its start, and, for
    /// [`EventBatch`](Route::EventBatch), an `event_type` on every event
    /// of the tree that the v1 routes take). The `honeyhive` command's
    /// `send` and `validate` ask it too, so both refuse the same lines.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) naming the
    /// first field that cannot go, and what to do.
    ///
    /// ```
    /// use honeyhive::{Event, Route, SessionId};
    ///
    /// let session = SessionId::from("checkout-7");
    /// let untyped = Event::from(honeyhive::api::types::Event::default());
    /// assert!(Route::Event.check(&session, &untyped).is_ok());
    /// let refused = Route::EventBatch.check(&session, &untyped).unwrap_err();
    /// assert!(refused.to_string().contains("event_type"));
    /// assert!(Route::Event.check(&SessionId::from(""), &Event::tool("t")).is_err());
    /// ```
    pub fn check(
        self,
        session_id: &crate::session::SessionId,
        event: &crate::event::Event,
    ) -> Result<(), crate::error::Error> {
        crate::client::check_for_route(self == Route::EventBatch, session_id, event)
    }
}

impl LoggerConfig {
    /// Events the queue holds at most, by default.
    pub const DEFAULT_MAX_QUEUE_EVENTS: usize = 100_000;
    /// Memory the queued events hold at most, by default: 64 MiB.
    pub const DEFAULT_MAX_QUEUE_BYTES: usize = 64 * 1024 * 1024;
    /// Requests in flight at once at most, by default: the ceiling of the
    /// adaptive limit.
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;
    /// How long an event may wait in an idle queue before it is sent, by
    /// default.
    pub const DEFAULT_LINGER: Duration = Duration::from_millis(5);
    /// Dead letters a report carries at most, by default (the sink gets all).
    pub const DEFAULT_MAX_REPORT_LETTERS: usize = 10_000;
    /// Events a batch carries at most, by default (with
    /// [`Route::EventBatch`]): LangSmith's and Braintrust's figure.
    pub const DEFAULT_MAX_BATCH_EVENTS: usize = 100;

    /// Sets the route events go through (see [`Route`]); default
    /// [`Route::Event`].
    pub fn route(mut self, route: Route) -> Self {
        self.route = route;
        self
    }

    /// Sets how many events a batch carries at most (with
    /// [`Route::EventBatch`]); at least 1. An event tree counts as its
    /// number of events, and a tree larger than this goes in a batch of
    /// its own.
    pub fn max_batch_events(mut self, events: usize) -> Self {
        self.max_batch_events = events.max(1);
        self
    }

    /// Sets how many bytes a batch's body holds at most (with
    /// [`Route::EventBatch`]); default, and never more than, the client's
    /// [`max_body_bytes`](crate::ClientBuilder::max_body_bytes). A batch
    /// is closed before an event that would take it over; an event tree
    /// over this bound alone goes in a batch of its own, and one whose JSON
    /// alone is over the client's limit is a dead letter with the reason.
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.max_batch_bytes = Some(bytes);
        self
    }

    /// Sets how many events the queue holds at most; at least 1.
    pub fn max_queue_events(mut self, events: usize) -> Self {
        self.max_queue_events = events.max(1);
        self
    }

    /// Sets how much memory the queued events may hold, as the logger
    /// estimates it: each event's slot in the queue, and its strings, JSON
    /// objects, arrays and children by their lengths, with the allocator's
    /// overhead (see the [`Logger` docs](crate::Logger#memory)).
    pub fn max_queue_bytes(mut self, bytes: usize) -> Self {
        self.max_queue_bytes = bytes;
        self
    }

    /// Sets how many requests may be in flight at once at most; at least 1.
    /// The logger adapts its limit between 1 and this ceiling (see the
    /// [`Logger` docs](crate::Logger#concurrency-that-adapts)) unless
    /// [`adaptive_concurrency(false)`](Self::adaptive_concurrency)
    /// makes it fixed.
    pub fn max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = requests.max(1);
        self
    }

    /// `true` (the default): the in-flight limit starts at 8 (or the
    /// ceiling) and adapts to the server's answers. `false`: it is
    /// [`max_in_flight`](Self::max_in_flight), always.
    ///
    /// ```
    /// let fixed = honeyhive::LoggerConfig::default()
    ///     .max_in_flight(16)
    ///     .adaptive_concurrency(false);
    /// # let _ = fixed;
    /// ```
    pub fn adaptive_concurrency(mut self, adaptive: bool) -> Self {
        self.adaptive = adaptive;
        self
    }

    /// Sets how many dead letters a [`LoggerReport`](super::LoggerReport)
    /// carries at most; the rest are counted in
    /// [`LoggerReport::dead_letters_omitted`](super::LoggerReport::dead_letters_omitted)
    /// (the sink still gets them).
    pub fn max_report_letters(mut self, letters: usize) -> Self {
        self.max_report_letters = letters;
        self
    }

    /// Sets how often the logger looks at an idle queue; at least 100 µs.
    /// With [`Route::EventBatch`], also how long a batch that is not full
    /// waits for more events before it goes.
    ///
    /// `log` does not wake anyone per event (a wake-up is a system call, and
    /// the woken thread may take the caller's CPU), so the logger looks at
    /// the queue itself: every `linger` after it was last busy, and after
    /// 20 empty looks it dozes until the next `log` wakes it (once per quiet
    /// spell). While events keep coming, they are sent as fast as the
    /// in-flight limit allows; [`flush`](super::Logger::flush) and
    /// [`shutdown`](super::Logger::shutdown) look at once. So an event
    /// waits at most about `linger` before it is taken.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger.max(Duration::from_micros(100));
        self
    }

    /// Sets what is told of each event's fate, sent or dead letter (see
    /// [`OutcomeSink`] for where and when each is called). The reports carry
    /// the dead letters whether or not this is set.
    ///
    /// ```no_run
    /// use honeyhive::{JsonlDeadLetters, LoggerConfig};
    ///
    /// let config = LoggerConfig::default()
    ///     .outcomes(JsonlDeadLetters::append("undelivered.jsonl")?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn outcomes(mut self, outcomes: impl OutcomeSink) -> Self {
        self.outcomes = Some(Arc::new(outcomes));
        self
    }
}

impl Default for LoggerConfig {
    /// [`DEFAULT_MAX_QUEUE_EVENTS`](Self::DEFAULT_MAX_QUEUE_EVENTS) events and
    /// [`DEFAULT_MAX_QUEUE_BYTES`](Self::DEFAULT_MAX_QUEUE_BYTES) in the queue,
    /// [`DEFAULT_MAX_IN_FLIGHT`](Self::DEFAULT_MAX_IN_FLIGHT) requests in
    /// flight, no [`OutcomeSink`] (the reports only).
    fn default() -> Self {
        LoggerConfig {
            max_queue_events: Self::DEFAULT_MAX_QUEUE_EVENTS,
            max_queue_bytes: Self::DEFAULT_MAX_QUEUE_BYTES,
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
            adaptive: true,
            max_report_letters: Self::DEFAULT_MAX_REPORT_LETTERS,
            linger: Self::DEFAULT_LINGER,
            outcomes: None,
            route: Route::Event,
            max_batch_events: Self::DEFAULT_MAX_BATCH_EVENTS,
            max_batch_bytes: None,
        }
    }
}

impl fmt::Debug for LoggerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoggerConfig")
            .field("max_queue_events", &self.max_queue_events)
            .field("max_queue_bytes", &self.max_queue_bytes)
            .field("max_in_flight", &self.max_in_flight)
            .field("adaptive", &self.adaptive)
            .field("max_report_letters", &self.max_report_letters)
            .field("linger", &self.linger)
            .field("outcomes", &self.outcomes.as_ref().map(|_| "set"))
            .field("route", &self.route)
            .field("max_batch_events", &self.max_batch_events)
            .field("max_batch_bytes", &self.max_batch_bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setters_set_their_setting() {
        let config = LoggerConfig::default()
            .max_queue_events(50_000)
            .max_in_flight(16)
            .adaptive_concurrency(false)
            .route(Route::EventBatch);
        assert_eq!(config.max_queue_events, 50_000);
        assert_eq!(config.max_in_flight, 16);
        assert!(!config.adaptive);
        assert_eq!(config.route, Route::EventBatch);
        assert_eq!(config.max_batch_events, 100);
        assert_eq!(LoggerConfig::default().max_in_flight(0).max_in_flight, 1);
    }
}
