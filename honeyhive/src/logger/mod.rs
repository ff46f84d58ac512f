//! [`Logger`]: logs events in the background, so the application never waits
//! on telemetry, and hands back what it could not deliver.
//!
//! ```no_run
//! use std::time::Duration;
//! use honeyhive::{Client, Event, JsonlDeadLetters, LoggerConfig, SessionId};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::from_env()?;
//! let logger = client.logger(
//!     LoggerConfig::default().with_dead_letters(JsonlDeadLetters::append("undelivered.jsonl")?),
//! )?;
//! let session = SessionId::new();
//! logger.log(&session, Event::model("gpt-4o"))?; // returns at once
//! // ... at exit:
//! let report = logger.shutdown(Duration::from_secs(5)).await;
//! println!("{report:?}");
//! # Ok(()) }
//! ```
//!
//! # Life of an event
//! 1. [`Logger::log`] checks the event (as [`Client::log_event`] would),
//!    estimates its memory, and puts it in a queue bounded by count and by
//!    bytes, or hands it back in a [`LogError`]. It never blocks, never
//!    awaits, wakes nobody (but a dozing logger, once per quiet spell), and
//!    works from any thread.
//! 2. A dispatcher task on the runtime that made the logger starts
//!    deliveries while events wait, at most
//!    [`max_in_flight`](LoggerConfig::max_in_flight) at once. It looks at
//!    an idle queue every [`linger`](LoggerConfig::with_linger), then dozes
//!    until the next `log`.
//! 3. A delivery takes the next event out in order, serializes it (filling
//!    ids and the client's defaults), sends it under the client's
//!    [`RetryPolicy`](crate::RetryPolicy), settles it (sent, or handed back
//!    as a [`DeadLetter`](crate::DeadLetter)), and goes on with the next
//!    event while there is one, as a hand-written sending loop would.
//!
//! # Nothing is lost silently
//! - An event `log` refuses (queue full, shut down, invalid) comes back in
//!   the [`LogError`]; full and shut-down refusals are counted in
//!   [`LoggerStats::dropped`].
//! - An event that fails for good (a 4xx, retries exhausted, too large to
//!   send, the shutdown deadline) is a dead letter: the exact JSON body that
//!   was or would have been sent, ids included, so replaying it cannot
//!   record it twice. It goes to the [`DeadLetterSink`](crate::DeadLetterSink) (called on a
//!   blocking thread) and into the next [`LoggerReport`].
//! - A `Logger` dropped without [`shutdown`](Logger::shutdown) hands what is
//!   left to the sink and warns how many events it lost, through `tracing`,
//!   and on stderr when no `tracing` subscriber is set.
//!
//! # Concurrency that adapts
//! Each request holds a permit of the in-flight limit (tokio's semaphore),
//! which moves between 1 and [`max_in_flight`](LoggerConfig::max_in_flight)
//! (default 256) by the answers, judged in windows of about one round trip
//! (the baseline latency, at least 1 ms):
//! - it starts at 8 and **doubles** each window in which the limit was
//!   reached and latency held, until the first sign of load (slow start);
//! - then it grows by **one** per such window;
//! - a window with **back-pressure** (an answer worth a retry: 429, 503 and
//!   the other 5xx, a timeout, a connection failure) **halves** it;
//! - a window whose mean latency rose above 1.5× the baseline and by more
//!   than 5 ms takes **10%** off it (the baseline is a weighted mean of the
//!   windows' latencies, each window weighing 0.25).
//!
//! A `Retry-After` (429 or 503) pauses every request of the logger until
//! then, not only the one that got it; the halved limit then grows back one
//! step per window. A retried event keeps its `event_id`. The wait for a
//! place under the limit and for a pause counts against the event's
//! [retry deadline](crate::RetryPolicy::with_deadline): a request goes out
//! with the time its deadline has left, and an event whose deadline passed
//! while it waited is a dead letter ("no answer in time") without being
//! sent. Errors at random
//! read as load too: a server failing a third of requests holds the limit
//! near 1. [`LoggerConfig::with_adaptive_concurrency`]`(false)` fixes the
//! limit at `max_in_flight`. The limit now is in
//! [`LoggerStats::in_flight_limit`].
//!
//! # Lifecycle
//! Running (taking events) → closed ([`shutdown`](Logger::shutdown) began:
//! refusing events, sending what is queued) → stopped (dispatcher gone,
//! the rest handed back). Dropping the last clone without `shutdown` goes
//! straight to stopped.
//!
//! # Memory
//! The byte bound counts, for each queued event, its slot in the queue and
//! an estimate of what it holds: strings, JSON objects, arrays and children
//! by their lengths, with the allocator's bookkeeping, taken by walking the
//! generated event type through its own `Serialize` impl, so a field the
//! spec adds is counted too. Spare capacity of a string or vector grown by
//! pushing is not seen; values made by `json!` or `serde_json::to_value` have
//! none. An event is refused at `log` when its JSON is sure to be over the
//! client's [`max_body_bytes`](crate::ClientBuilder::max_body_bytes) (its
//! strings alone are); one that is over only once serialized (escapes,
//! numbers) is a dead letter with the reason when the dispatcher takes it.
//!
//! # Concurrency
//! The queue is tokio's unbounded channel; its bounds are two pairs of
//! atomic counters (in and out, on separate cache lines) that `log`
//! reserves with compare-and-swap and takers give back; the in-flight map
//! is behind a mutex that `log` never takes. Three small protocols are
//! hand-written, each argued here and hammered by a test:
//! - **`log_wait` cannot miss a wake-up.** A waiter registers with tokio's
//!   `Notify` (`enable`), *then* counts itself as waiting, *then* tries to
//!   push; whoever frees room gives it back to the counters, *then* reads the
//!   waiting count, all sequentially consistent. If the reader saw no
//!   waiter, the waiter counted itself later, so its push saw the freed
//!   room; if it saw one, its `notify_waiters` reaches a waiter that
//!   registered before counting.
//! - **A flush waits for everything logged before it.** Its marker goes in
//!   the same queue, so it is taken out after those events. Several tasks
//!   take at once, so each take counts itself in before taking and out,
//!   under the in-flight lock, once its event is numbered; the marker's
//!   number is fixed when that count is zero under the lock, so it is above
//!   every event taken before it. It is answered, by the task that settles
//!   the last of those, when none below its number is left: no polling.
//! - **The first event after a quiet spell is not left waiting.** The
//!   dispatcher says it dozes, *then* looks at the queue once more; `log`
//!   pushes, *then* reads whether it dozes (and wakes it, once). One of the
//!   two sees the other.
//!
//! Shutdown and drop set the stopped state, wait for takes in progress to
//! end (they are short and never await), and only then hand back what is
//! left; a take that finds the logger stopped hands its event back itself.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

mod config;
mod footprint;
mod limit;
mod queue;
mod report;
mod worker;

pub use config::{LoggerConfig, Sent};
pub use report::{LogError, LoggerReport, LoggerStats};

#[cfg(feature = "tracing")]
pub(crate) use footprint::ALLOCATION;

use crate::client::check_session_id;
use crate::{Client, Error, Event, SessionId};
use queue::{Item, Payload, SLOT};
use worker::{Shared, State};

/// Why events handed back by a dropped logger were not delivered.
const DROPPED: &str = "the Logger was dropped without shutdown() before the event was delivered";
/// Why events handed back at the shutdown deadline were not delivered.
const SHUT_DOWN: &str = "the logger was shut down before the event was delivered";

/// A background event logger. Cheap to clone; clones share the queue.
/// Made by [`Client::logger`]; see the [module docs](self).
#[derive(Clone)]
pub struct Logger {
    handle: Arc<Handle>,
}

/// Owned by the user-facing clones only (the dispatcher holds `Shared`), so
/// its `Drop` runs when the application lets go of the last `Logger`.
struct Handle {
    shared: Arc<Shared>,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
}

impl Client {
    /// A background logger sending through this client, with its dispatcher
    /// on the current tokio runtime.
    ///
    /// Fails with [`Error::NoRuntime`] outside a tokio runtime. The runtime
    /// needs its I/O and time drivers (`#[tokio::main]` and
    /// `Builder::enable_all` turn both on), as every reqwest client does.
    /// After that, [`Logger::log`] may be called from anywhere, plain threads
    /// included.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), honeyhive::Error> {
    /// use std::time::Duration;
    /// use honeyhive::{Event, LoggerConfig, testing::MockHoneyHive};
    ///
    /// let mock = MockHoneyHive::start_async().await;
    /// let logger = mock.client()?.logger(LoggerConfig::default())?;
    /// logger.log("session-1", Event::tool("search")).expect("room in the queue");
    /// let report = logger.shutdown(Duration::from_secs(5)).await;
    /// assert!(report.complete);
    /// assert_eq!(report.stats.sent, 1);
    /// assert_eq!(mock.events().len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn logger(&self, config: LoggerConfig) -> Result<Logger, Error> {
        Logger::start(self, Arc::new(self.clone()), config)
    }
}

impl Logger {
    /// A logger sending through `transport` (the client itself, or a
    /// script in tests), serializing with `client`.
    fn start(
        client: &Client,
        transport: Arc<dyn worker::Transport>,
        config: LoggerConfig,
    ) -> Result<Logger, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let shared = Arc::new(Shared::new(client.clone(), transport, config));
        let dispatcher = runtime.spawn(worker::dispatch(Arc::clone(&shared)));
        Ok(Logger {
            handle: Arc::new(Handle {
                shared,
                dispatcher: Mutex::new(Some(dispatcher)),
            }),
        })
    }

    /// Queues `event` for `session_id` and returns at once: it never blocks
    /// and never awaits, and works from any thread.
    ///
    /// Refused with the event handed back: [`LogError::Invalid`] for what
    /// [`Client::log_event`] would refuse before sending (the session id, a
    /// setter's problem, an end before its start, and JSON that is sure to
    /// be over the body limit); [`LogError::QueueFull`] when the queue is at
    /// a bound (counted, and warned about once through `tracing`, or on
    /// stderr without a subscriber); [`LogError::ShutDown`] after
    /// [`shutdown`](Self::shutdown).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), honeyhive::Error> {
    /// use honeyhive::{Event, LoggerConfig, testing::MockHoneyHive};
    ///
    /// let mock = MockHoneyHive::start_async().await;
    /// let client = mock.client()?;
    /// let logger = client.logger(LoggerConfig::default())?;
    /// let session = client.session("checkout-7");
    /// logger.log(&session, Event::model("gpt-4o"))?; // `?` gives honeyhive::Error
    /// # logger.shutdown(std::time::Duration::from_secs(5)).await;
    /// # Ok(()) }
    /// ```
    pub fn log(&self, session_id: impl Into<SessionId>, event: Event) -> Result<(), LogError> {
        let item = self.checked(session_id.into(), event)?;
        self.enqueue(item)
            .map_err(|(item, why)| Self::hand_back(item, why))
    }

    /// Like [`log`](Self::log) for an event that `make` builds when it is
    /// taken to be sent, on the Logger's runtime rather than the caller's
    /// thread (the `tracing` layer's trees). `heap` is what the unbuilt
    /// event holds, counted against the byte bound. The session id is
    /// checked now; the body size when the event is built (an event over
    /// the limit is a dead letter then). Whether it was queued: a refusal
    /// is counted (`dropped`, and the queue-full warning) as `log` counts
    /// one, and the event is not built, since the caller has no use for it.
    #[cfg(feature = "tracing")]
    pub(crate) fn log_later(
        &self,
        session_id: SessionId,
        heap: usize,
        make: Box<dyn FnOnce() -> Event + Send>,
    ) -> bool {
        if check_session_id(&session_id).is_err() {
            return false;
        }
        let item = Item {
            session_id,
            event: Payload::Later(make),
            footprint: SLOT + heap,
            json_at_least: 0,
        };
        self.enqueue(item).is_ok()
    }

    /// Puts a checked item in the queue, or counts its refusal and gives
    /// it back (by value, as the queue gives it back: private, and moved
    /// once).
    #[allow(clippy::result_large_err)]
    fn enqueue(&self, item: Item) -> Result<(), (Item, Refusal)> {
        let shared = &self.handle.shared;
        let pushed = if shared.state() == State::Running {
            shared
                .queue
                .push(item)
                .map_err(|item| (item, Refusal::Full))
        } else {
            Err((item, Refusal::ShutDown))
        };
        match pushed {
            Ok(()) => {
                shared.queued();
                Ok(())
            }
            Err((item, why)) => {
                self.count_refusal(&why);
                Err((item, why))
            }
        }
    }

    /// Like [`log`](Self::log), but when the queue is full it waits for room
    /// instead of dropping. Still refuses an event larger than the whole
    /// byte bound, which no amount of waiting would make fit, and returns
    /// [`LogError::ShutDown`] if the logger shuts down while it waits.
    pub async fn log_wait(
        &self,
        session_id: impl Into<SessionId>,
        event: Event,
    ) -> Result<(), LogError> {
        let shared = &self.handle.shared;
        let item = self.checked(session_id.into(), event)?;
        let open = || shared.state() == State::Running;
        match shared.queue.push_waiting(item, open).await {
            Ok(()) => {
                shared.queued();
                Ok(())
            }
            Err(item) if open() => Err(self.refused(item, Refusal::Full)),
            Err(item) => Err(self.refused(item, Refusal::ShutDown)),
        }
    }

    /// Waits until every event enqueued before this call is settled (sent,
    /// or handed back as a dead letter), or `timeout` passes
    /// ([`Duration::MAX`]: no limit). Events logged while it waits are not
    /// waited for. The report's dead letters are those since the last report.
    pub async fn flush(&self, timeout: Duration) -> LoggerReport {
        let complete = self.wait_settled(timeout).await;
        self.handle.shared.report(complete)
    }

    /// Stops taking events, flushes with `timeout` ([`Duration::MAX`]: no
    /// limit), stops the dispatcher and hands back whatever is still queued
    /// or in flight as dead letters (to the sink and in the report). Later
    /// `log` calls get [`LogError::ShutDown`].
    ///
    /// An event in flight when the deadline hits is handed back even though
    /// the server may have recorded it; its `event_id` makes a replay safe.
    pub async fn shutdown(&self, timeout: Duration) -> LoggerReport {
        let shared = &self.handle.shared;
        shared.advance(State::Closed);
        let complete = self.wait_settled(timeout).await;
        shared.advance(State::Stopped);
        if let Some(dispatcher) = self.handle.take_dispatcher() {
            dispatcher.abort();
            // Stopped at its next await, with its deliveries.
            let _cancelled_or_done = dispatcher.await;
        }
        // A delivery on another thread may be taking an event: let it finish
        // (takes are short and synchronous), so the hand-back sees it.
        shared.takes_done();
        shared.hand_back(shared.take_unsettled(SHUT_DOWN)).await;
        shared.report(complete)
    }

    /// Counters since the logger started.
    pub fn stats(&self) -> LoggerStats {
        self.handle.shared.stats()
    }

    /// Waits for a flush marker queued now to be answered, or `timeout`.
    async fn wait_settled(&self, timeout: Duration) -> bool {
        let shared = &self.handle.shared;
        if shared.state() == State::Stopped {
            // Nothing is left in a stopped logger: it was all handed back.
            return true;
        }
        let settled = shared.request_flush();
        match Instant::now().checked_add(timeout) {
            Some(deadline) => {
                matches!(tokio::time::timeout_at(deadline, settled).await, Ok(Ok(())))
            }
            None => settled.await.is_ok(),
        }
    }

    /// Checks the input as the client will, and sizes the event.
    fn checked(&self, session_id: SessionId, event: Event) -> Result<Item, LogError> {
        let footprint = footprint::estimate(event.as_api());
        let limit = self.handle.shared.client.max_body_bytes();
        let valid = check_session_id(&session_id)
            .and_then(|()| event.check())
            .and_then(|()| {
                if footprint.json_at_least > limit {
                    return Err(Error::invalid(
                        "event",
                        format!(
                            "is at least {} bytes as JSON, over the {limit}-byte limit; trim \
                             large inputs or outputs, or raise ClientBuilder::max_body_bytes",
                            footprint.json_at_least
                        ),
                    ));
                }
                Ok(())
            });
        match valid {
            Ok(()) => Ok(Item {
                session_id,
                event: Payload::Ready(event),
                footprint: SLOT + footprint.heap,
                json_at_least: footprint.json_at_least,
            }),
            Err(error) => Err(LogError::Invalid {
                error,
                event: Box::new(event),
            }),
        }
    }

    fn refused(&self, item: Item, why: Refusal) -> LogError {
        self.count_refusal(&why);
        Self::hand_back(item, why)
    }

    /// Counts a refusal (and warns, once, of a full queue).
    fn count_refusal(&self, why: &Refusal) {
        let shared = &self.handle.shared;
        shared.counters.dropped.fetch_add(1, SEQ);
        if matches!(why, Refusal::Full) && !shared.warned_full.swap(true, SEQ) {
            warn_loss(&format!(
                "honeyhive logger queue is full (max_queue_events {}, max_queue_bytes {}): \
                 dropping new events (counted in stats().dropped, each handed back in \
                 LogError::QueueFull; this warning is shown once)",
                shared.config.max_queue_events, shared.config.max_queue_bytes
            ));
        }
    }

    /// The error that hands a refused event back.
    fn hand_back(item: Item, why: Refusal) -> LogError {
        let event = Box::new(item.event.into_event());
        match why {
            Refusal::ShutDown => LogError::ShutDown(event),
            Refusal::Full => LogError::QueueFull(event),
        }
    }
}

const SEQ: std::sync::atomic::Ordering = std::sync::atomic::Ordering::SeqCst;

/// Why `log` refused an event it could have taken.
enum Refusal {
    Full,
    ShutDown,
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logger")
            .field("config", &self.handle.shared.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Handle {
    fn take_dispatcher(&self) -> Option<JoinHandle<()>> {
        self.dispatcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let shared = &self.shared;
        if !shared.advance(State::Stopped) {
            return; // shut down already
        }
        if let Some(dispatcher) = self.take_dispatcher() {
            dispatcher.abort();
        }
        shared.takes_done();
        // No runtime to await on here: the sink is called on this thread.
        let letters = shared.take_unsettled(DROPPED);
        shared.hand_back_here(&letters);
        let lost = letters.len();
        if lost > 0 {
            let sink = if shared.config.dead_letters.is_some() {
                "they were handed to the dead-letter sink"
            } else {
                "no dead-letter sink was set, so they are gone"
            };
            warn_loss(&format!(
                "honeyhive Logger dropped without shutdown(): {lost} events were not delivered; \
                 {sink}. Call logger.shutdown(timeout).await before exit"
            ));
        }
    }
}

/// Says that events were lost: through `tracing`, and on stderr too when
/// no `tracing` subscriber would show it, so a loss is never silent.
pub(crate) fn warn_loss(message: &str) {
    tracing::warn!("{message}");
    let unseen = tracing::dispatcher::get_default(|dispatch| {
        dispatch.is::<tracing::subscriber::NoSubscriber>()
    });
    if unseen {
        eprintln!("WARN honeyhive: {message}");
    }
}
