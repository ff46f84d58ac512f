//! The background [`Logger`]: its API and refusals here,
//! its parts beside (`config.rs`, `outcome.rs`, `report.rs`, `queue.rs`,
//! `worker/`, `gate/`, `letters.rs`, `sources.rs`, `thread.rs`). What
//! a user needs to know is on [`Logger`]; how the parts work together is
//! here, once.
//!
//! # The algorithm
//! - **Queue** (`queue.rs`): `log` reserves room in two counters (events,
//!   bytes) with compare-and-swap and sends the event into tokio's
//!   unbounded channel; it allocates nothing per event and takes no lock.
//!   Flush markers travel in the same channel, behind the events logged
//!   before them.
//! - **Dispatcher** (`worker/dispatch.rs`), the one taker: it takes a
//!   permit of the gate, registers a new delivery, and moves events from
//!   the channel into it (one, or a batch up to `max_batch_events` and
//!   `max_batch_bytes`; an event that would take it over stays first in
//!   the queue). A batch not full waits up to `linger` for more. Then the
//!   delivery runs as a task of its own. At most `max_in_flight`
//!   deliveries are under way (one waiting out a backoff holds no permit,
//!   but still holds its events outside the queue's bounds).
//! - **Deliveries own their events.** A delivery holds its events (as
//!   queued, then serialized) until each is settled: sent, or a dead
//!   letter. Nothing else holds them; the list of deliveries under way
//!   holds the deliveries, one entry per request, so that a hand-back
//!   (shutdown's deadline, a drop, the runtime's end) finds what is not
//!   settled. Every change of an event's place happens under its
//!   delivery's lock, and the dispatcher takes only while the logger is
//!   not stopped; a hand-back sets `Stopped`, then empties the queue, then
//!   the deliveries: each event is settled once, by one of them.
//! - **Flush** is a marker through the channel (as OpenTelemetry's batch
//!   span processor does): when the dispatcher takes it out, every event
//!   logged before it is in a delivery, and it gives a clone of the marker
//!   to each delivery under way. The marker is a shared oneshot sender
//!   that is never sent on: the flush is answered when the last clone is
//!   dropped, which is when the last of those deliveries ended (after its
//!   `OutcomeSink::sent` calls and dead letters), or a hand-back let go.
//! - **One flow control** (`gate/`): every request, a retry or a split
//!   half included, takes a permit of the gate and hands it back with what
//!   its answer said. The gate adapts how many requests may be in flight
//!   (AIMD on latency and back-pressure) and, once 429s show a rate limit,
//!   how fast they may start (a pace cut and grown back as CUBIC does).
//!   The algorithms and their constants are in the module docs of
//!   `gate/limit.rs` and `gate/pace.rs`.
//! - **Retries and splits** (`worker/delivery.rs`, `send`): each request
//!   runs on the client's retry policy; a batch refused 400, 413 or 422 is
//!   split in halves down to the event refused; a batch over the byte bound once
//!   serialized goes as two halves.
//! - **Dead letters** (`letters.rs`) are kept for the next report and
//!   handed to `OutcomeSink::dead_letter` on a thread the logger owns, in
//!   order; a flush waits for that thread to take its events' letters.
//! - **Sources** (`sources.rs`): what holds events not yet logged (the
//!   `tracing` layer's open trees) is ticked by the dispatcher and closed
//!   by `shutdown`, and hands events over built later
//!   (`Logger::log_later`, built by the delivery): the Logger knows nothing
//!   more of it.
//!
//! # Two small protocols, each hammered by a test
//! - **`log_wait` cannot miss a wake-up.** A waiter registers with tokio's
//!   `Notify` (`enable`), *then* counts itself as waiting, *then* tries to
//!   push; whoever frees room gives it back to the counters, *then* reads
//!   the waiting count, all sequentially consistent.
//! - **The first event after a quiet spell is not left waiting.** The
//!   dispatcher says it dozes, *then* looks at the queue once more; `log`
//!   pushes, *then* reads whether it dozes (and wakes it, once). One of the
//!   two sees the other.

use parking_lot::Mutex;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

mod config;
mod gate;
mod letters;
mod outcome;
mod queue;
mod report;
mod sources;
mod thread;
mod worker;

pub use config::{LoggerConfig, Route};
pub use outcome::{JsonlDeadLetters, Outcome, OutcomeSink, Sent};
pub use report::{LoggerReport, LoggerStats};
pub use thread::ShutdownGuard;

pub(crate) use sources::{Source, Sources};

use crate::{client::Client, error::Error, event::Event, session::SessionId};
use queue::{ENTRY_BYTES, Item, Payload};
use worker::{Life, Shared};

/// Why [`Logger::log`](Logger::log) did not take an event. The event
/// comes back inside.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The queue is at its event or byte bound; the event was dropped and
    /// counted in [`LoggerStats::dropped`]. Use
    /// [`Logger::log_wait`](Logger::log_wait) to wait for room
    /// instead, or raise the bounds.
    #[error(
        "the logger's queue is full; the event was dropped (see LoggerConfig bounds, or use log_wait)"
    )]
    QueueFull(Box<Event>),
    /// The logger was shut down (or its last handle dropped); the event was
    /// dropped and counted.
    #[error("the logger is shut down; the event was dropped")]
    ShutDown(Box<Event>),
    /// The tokio runtime the logger's tasks ran on has shut down, and the
    /// tasks with it: nothing would send the event. It was dropped and
    /// counted. Keep that runtime running as long as the logger.
    #[error(
        "the tokio runtime running the logger has shut down, so nothing would send the event; \
         it was dropped (keep that runtime running as long as the Logger)"
    )]
    RuntimeGone(Box<Event>),
    /// The event or session id is not valid input (see the error, which
    /// names the field); nothing was queued and nothing counted.
    #[error("the event was refused: {error}")]
    Invalid {
        /// What is wrong, naming the field.
        error: Error,
        /// The event, as given.
        event: Box<Event>,
    },
}

impl LogError {
    /// The event that was not taken.
    pub fn into_event(self) -> Event {
        match self {
            LogError::QueueFull(event)
            | LogError::ShutDown(event)
            | LogError::RuntimeGone(event) => *event,
            LogError::Invalid { event, .. } => *event,
        }
    }
}

/// Why events handed back by a dropped logger were not delivered.
const DROPPED: &str = "the Logger was dropped without shutdown() before the event was delivered";
/// Why events handed back at the shutdown deadline were not delivered.
const SHUT_DOWN: &str = "the logger was shut down before the event was delivered";

/// Logs events in the background, so the application never waits on
/// telemetry, and hands back what it could not deliver. Cheap to clone;
/// clones share the queue.
///
/// ```no_run
/// use std::time::Duration;
/// use honeyhive::{Client, Event, JsonlDeadLetters, Logger, LoggerConfig, SessionId};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::from_env()?;
/// let logger = Logger::new(
///     &client,
///     LoggerConfig::default().outcomes(JsonlDeadLetters::append("undelivered.jsonl")?),
/// )?;
/// let session = SessionId::new();
/// logger.log(&session, Event::model("gpt-4o"))?; // returns at once
/// // ... at exit:
/// let report = logger.shutdown(Duration::from_secs(5)).await;
/// println!("{report:?}");
/// # Ok(()) }
/// ```
///
/// # Life of an event
/// 1. [`Logger::log`] checks the event (as [`Client::log_event`] would),
///    estimates its memory, and puts it in a queue bounded by count and by
///    bytes, or hands it back in a [`LogError`]. It never blocks, never
///    awaits, wakes nobody (but a dozing logger, once per quiet spell), and
///    works from any thread.
/// 2. The dispatcher, one task on the runtime that made the logger, is the
///    only taker: it takes events out in order and starts a delivery for
///    the next request's events (one event, or a batch with
///    [`Route::EventBatch`]) while the in-flight limit has room and
///    fewer than [`max_in_flight`](LoggerConfig::max_in_flight)
///    deliveries are under way. It looks at an idle queue every
///    [`linger`](LoggerConfig::linger), then dozes until the next
///    `log`.
/// 3. A delivery serializes its events (filling ids and the client's
///    defaults; deliveries do this side by side, on every runtime thread),
///    sends them under the client's [`RetryPolicy`](crate::RetryPolicy) and
///    settles each: sent, or handed back as a
///    [`DeadLetter`](crate::DeadLetter).
///
/// # Batches
/// With [`Route::EventBatch`], requests go to `POST /v1/events/batch`, each
/// with up to [`max_batch_events`](LoggerConfig::max_batch_events) events
/// (trees count each node) and at most
/// [`max_batch_bytes`](LoggerConfig::max_batch_bytes) of JSON. The
/// dispatcher fills a batch from the queue; one that is not full waits up to
/// `linger` for more, unless a flush or shutdown wants it out. A batch the
/// API refuses whole for what one event may hold (400, 413, 422) is split
/// in halves, sent side by side, down to the event it refuses, which is a
/// dead letter with the answer: one bad event of 100 costs at most 15
/// requests. A 500 (the spec's "events partially created", which does not
/// say which) or a batch lost in transit is retried whole with the same
/// event ids (see [`Route::EventBatch`] for what that assumes of the
/// server). A batch whose every event is refused costs 2N−1 requests for
/// N events, each found and handed back. Retries, the in-flight limit and
/// the send rate are per request (a batch is retried whole and holds one
/// permit); flushes, counters, reports and dead letters are per event, and
/// an event's `attempts` counts every request it went out in, a split
/// half's parents included.
///
/// Deliveries run side by side, so events are *not* delivered in the order
/// they were logged, not even within a session: a retried event arrives
/// after later ones. HoneyHive orders a session's events by their
/// `start_time`, so set it when the order matters.
///
/// # Nothing is lost silently
/// - An event `log` refuses (queue full, shut down, invalid, the runtime
///   gone) comes back in the [`LogError`]; all but invalid ones are counted
///   in [`LoggerStats::dropped`].
/// - An event that fails for good (a 4xx, retries exhausted, too large to
///   send, the shutdown deadline) is a dead letter: the event's JSON with
///   its ids and defaults (on the per-event route, the exact body that was
///   or would have been sent; with batches, the tree as it went out, nested
///   again, without `project`, which that route does not carry), so
///   replaying it through either route cannot record it twice. It goes
///   into the next [`LoggerReport`] and to the
///   [`OutcomeSink::dead_letter`] hook, which runs on a thread of its own
///   that the logger owns (never on the runtime's threads), taking letters
///   in order.
/// - A `Logger` dropped without [`shutdown`](Logger::shutdown) hands what is
///   left to the hook, waits for the hook to take it, and warns how many
///   events it lost, through `tracing`, and on stderr when no `tracing`
///   subscriber is set.
///
/// # How long a Logger lives
/// Its tasks run on the tokio runtime it was made on, so that runtime must
/// keep running for events to go out; `log` works from anywhere meanwhile.
/// When the runtime ends first (a `#[tokio::test]` that made the logger
/// returns, a worker pool shuts down), its tasks end with it: the logger
/// notices, stops, hands everything it held back as dead letters (with
/// that reason) and warns; `log` then refuses with
/// [`LogError::RuntimeGone`], and `flush` and `shutdown` return at once with
/// the report. A runtime that is frozen rather than ended (a serverless
/// function between invocations) cannot be told apart from a slow one:
/// flush before the freeze.
///
/// [`Logger::on_own_thread`] has none of these rules: the logger runs its
/// own runtime on a thread of its own, which lives until the last clone is
/// dropped. Programs without a runtime (and the `tracing` layer in them)
/// use it, with [`flush_blocking`](Logger::flush_blocking) and
/// [`shutdown_blocking`](Logger::shutdown_blocking).
///
/// # Time budgets
/// [`flush`](Logger::flush)`(t)` returns within `t`; so does
/// [`shutdown`](Logger::shutdown)`(t)`, plus at most [`Logger::SINK_GRACE`] for the
/// sink to take the letters of events still unsent at `t` (and the time to
/// serialize the events still queued then, to hand them back). A sink
/// slower than that does not hold `shutdown` up: the letters it has not
/// taken stay in the report ([`LoggerReport::dead_letters_not_in_sink`]).
/// A `flush` or `shutdown` that waits for events also waits for the sink
/// to take their letters, so when one returns complete, the sink has every
/// failure.
///
/// # Flow control
/// One gate adapts the requests to what the server takes. Each request (a
/// retry and a split half too) holds a place of the in-flight limit, which
/// moves between 1 and [`max_in_flight`](LoggerConfig::max_in_flight)
/// (default 256): it grows while answers come back as fast as before and
/// shrinks on back-pressure (the 5xx, a timeout, a connection failure) and
/// on rising latency; errors at random read as load too.
/// [`LoggerConfig::adaptive_concurrency`]`(false)` fixes it at
/// `max_in_flight`; it is in [`LoggerStats::in_flight_limit`].
///
/// A 429 says the client sends too fast, not too much at once, and servers
/// limit in many shapes whose `Retry-After` is often longer than their
/// window. So a 429 neither pauses the logger nor lowers the limit: the
/// throttled event is retried after its backoff without using up one of
/// its attempts, and once throttles show a limit, the gate paces the start
/// of every request just under what the server admits (as the AWS SDKs'
/// adaptive retry mode does). The pace is in
/// [`LoggerStats::send_rate_limit`]. The algorithms and their constants
/// are documented once, in the module docs of the crate's
/// `src/logger/gate/limit.rs` and `gate/pace.rs`; what it reaches under
/// four limiter shapes is in the repository's BENCHMARKS.md (row 12).
///
/// The wait for a place under the limit counts against the event's
/// [retry deadline](crate::RetryPolicy::deadline): a request goes out
/// with the time its deadline has left, and an event whose deadline passed
/// while it waited is a dead letter ("no answer in time") without being
/// sent. A retried event keeps its `event_id`.
///
/// # Lifecycle
/// Running (taking events) → closed ([`shutdown`](Logger::shutdown) began:
/// refusing events, sending what is queued) → stopped (dispatcher gone,
/// the rest handed back). Dropping the last clone without `shutdown`, or
/// the end of the runtime, goes straight to stopped.
///
/// # Memory
/// The byte bound counts, for each queued event, its slot in the queue and
/// an estimate of what it holds: strings, JSON objects, arrays and children
/// by their lengths, with the allocator's bookkeeping, taken by walking the
/// generated event type field by field (a field the spec adds does not
/// compile until it is counted). Spare capacity of a string or vector grown
/// by pushing is not seen; values made by `json!` or `serde_json::to_value`
/// have none. An event over the client's
/// [`max_body_bytes`](crate::ClientBuilder::max_body_bytes) is cut to fit
/// when its delivery serializes it (see
/// [`ClientBuilder::cut_oversize`](crate::ClientBuilder::cut_oversize)); one
/// that cannot be cut to fit is a dead letter with the reason. With cutting
/// off, `log` refuses an event whose JSON is sure to be over the limit (its
/// strings alone are).
#[derive(Clone)]
pub struct Logger {
    handle: Arc<Handle>,
}

/// Owned by the user-facing clones only (the dispatcher holds `Shared`), so
/// its `Drop` runs when the application lets go of the last `Logger`.
struct Handle {
    shared: Arc<Shared>,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
    /// The runtime the logger's tasks run on (for the blocking calls).
    runtime: tokio::runtime::Handle,
    /// Set for [`Logger::on_own_thread`]; dropped last, ending the thread.
    own_thread: Mutex<Option<thread::OwnThread>>,
}

impl Logger {
    /// A background logger sending through `client`, with its dispatcher
    /// on the current tokio runtime (see [How long a Logger
    /// lives](Logger#how-long-a-logger-lives)).
    ///
    /// # Errors
    /// [`Error::NoRuntime`] outside a tokio runtime. The runtime needs its
    /// I/O and time drivers (`#[tokio::main]` and `Builder::enable_all`
    /// turn both on), as every reqwest client does. After that,
    /// [`Logger::log`] may be called from anywhere, plain threads included.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use honeyhive::{Event, Logger, LoggerConfig, testing::MockHoneyHive};
    ///
    /// let mock = MockHoneyHive::start_async().await;
    /// let logger = Logger::new(&mock.client()?, LoggerConfig::default())?;
    /// logger.log("session-1", Event::tool("search"))?;
    /// let report = logger.shutdown(Duration::from_secs(5)).await;
    /// assert!(report.complete);
    /// assert_eq!(report.stats.sent, 1);
    /// assert_eq!(mock.events().len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn new(client: &Client, config: LoggerConfig) -> Result<Logger, Error> {
        Logger::start(client, Arc::new(client.clone()), config)
    }

    /// How long past its timeout [`shutdown`](Self::shutdown) gives the
    /// dead-letter sink to take the letters of the events still unsent at
    /// the timeout (see [Time budgets](Logger#time-budgets)).
    pub const SINK_GRACE: Duration = Duration::from_millis(100);

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
                runtime,
                own_thread: Mutex::new(None),
            }),
        })
    }

    /// Queues `event` for `session_id` and returns at once: it never blocks
    /// and never awaits, and works from any thread. An event of a session
    /// the client [samples out](crate::ClientBuilder::sample_rate) is taken
    /// and dropped at once, its session id checked but not the event, and
    /// counted in
    /// [`LoggerStats::events_sampled_out`].
    ///
    /// Refused with the event handed back: [`LogError::Invalid`] for what
    /// [`Client::log_event`] would refuse before sending (the session id, a
    /// setter's problem, an end before its start, and, with
    /// [cutting](crate::ClientBuilder::cut_oversize) off, JSON that is sure
    /// to be over the body limit); [`LogError::QueueFull`] when the queue is at
    /// a bound (counted, and warned about once through `tracing`, or on
    /// stderr without a subscriber); [`LogError::ShutDown`] after
    /// [`shutdown`](Self::shutdown).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use honeyhive::{Event, Logger, LoggerConfig, testing::MockHoneyHive};
    ///
    /// let mock = MockHoneyHive::start_async().await;
    /// let client = mock.client()?;
    /// let logger = Logger::new(&client, LoggerConfig::default())?;
    /// let session = client.session("checkout-7");
    /// logger.log(&session, Event::model("gpt-4o"))?;
    /// # logger.shutdown(std::time::Duration::from_secs(5)).await;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A [`LogError`], with the event inside.
    pub fn log(&self, session_id: impl Into<SessionId>, event: Event) -> Result<(), LogError> {
        let Some(item) = self.checked(session_id.into(), event)? else {
            return Ok(());
        };
        self.enqueue(item)
            .map_err(|item| self.refusal()(Box::new(item.event.into_event())))
    }

    /// Like [`log`](Self::log) for an event that `make` builds when it is
    /// taken to be sent, on the Logger's runtime rather than the caller's
    /// thread (the `tracing` layer's trees). `heap` is what the unbuilt
    /// event holds, counted against the byte bound. The session id is
    /// checked now; the body size when the event is built (an event over
    /// the limit is a dead letter then). Whether it was queued: a refusal
    /// is counted (`dropped`, and the queue-full warning) as `log` counts
    /// one, and the event is not built, since the caller has no use for it.
    #[allow(dead_code)] // without the `tracing` layer, nothing logs later
    pub(crate) fn log_later(
        &self,
        session_id: SessionId,
        heap: usize,
        make: Box<dyn FnOnce() -> Event + Send>,
    ) -> bool {
        match self.admit(&session_id, None) {
            Err(_) => return false,
            Ok(None) => return true,
            Ok(Some(_)) => {}
        }
        let item = Item {
            session_id,
            event: Payload::Later(make),
            footprint: ENTRY_BYTES + heap,
            json_at_least: 0,
        };
        self.enqueue(item).map_err(|_| self.refusal()).is_ok()
    }

    /// Registers something that holds events for this logger (the
    /// `tracing` layer): ticked by the dispatcher, closed by `shutdown`.
    #[allow(dead_code)] // without the `tracing` layer, nothing holds events
    pub(crate) fn add_source(&self, source: std::sync::Weak<dyn Source>) {
        self.handle.shared.sources.add(source);
    }

    /// Puts a checked item in the queue, if the logger runs and there is
    /// room; gives it back otherwise (by value: boxing it would allocate).
    #[allow(clippy::result_large_err)]
    fn enqueue(&self, item: Item) -> Result<(), Item> {
        let shared = &self.handle.shared;
        if shared.life() != Life::Running {
            return Err(item);
        }
        shared.queue.push(item)?;
        shared.queued();
        Ok(())
    }

    /// Counts a refusal (and warns, once, of a full queue); the error that
    /// hands the event back says why.
    fn refusal(&self) -> fn(Box<Event>) -> LogError {
        let shared = &self.handle.shared;
        shared.counters.dropped.fetch_add(1, SEQ);
        match shared.life() {
            Life::Running => {
                if !shared.warned_full.swap(true, SEQ) {
                    warn_loss(&format!(
                        "honeyhive logger queue is full (max_queue_events {}, max_queue_bytes \
                         {}): dropping new events (counted in stats().dropped, each handed back \
                         in LogError::QueueFull; this warning is shown once)",
                        shared.config.max_queue_events, shared.config.max_queue_bytes
                    ));
                }
                LogError::QueueFull
            }
            Life::RuntimeGone => LogError::RuntimeGone,
            _ => LogError::ShutDown,
        }
    }

    /// Like [`log`](Self::log), but when the queue is full it waits for room
    /// instead of dropping. Still refuses an event larger than the whole
    /// byte bound, which no amount of waiting would make fit, and returns
    /// [`LogError::ShutDown`] if the logger shuts down while it waits.
    ///
    /// # Errors
    /// A [`LogError`] with the event inside: invalid, larger than the
    /// whole byte bound, shut down, or the runtime gone.
    pub async fn log_wait(
        &self,
        session_id: impl Into<SessionId>,
        event: Event,
    ) -> Result<(), LogError> {
        let shared = &self.handle.shared;
        let Some(item) = self.checked(session_id.into(), event)? else {
            return Ok(());
        };
        let open = || shared.life() == Life::Running;
        match shared.queue.push_waiting(item, open).await {
            Ok(()) => {
                shared.queued();
                Ok(())
            }
            Err(item) => Err(self.refusal()(Box::new(item.event.into_event()))),
        }
    }

    /// Waits until every event enqueued before this call is settled (sent,
    /// or handed back as a dead letter that the dead-letter sink, if any,
    /// took), or `timeout` passes ([`Duration::MAX`]: no limit). Events
    /// logged while it waits are not waited for. The report's dead letters
    /// are those since the last report.
    pub async fn flush(&self, timeout: Duration) -> LoggerReport {
        let shared = &self.handle.shared;
        let deadline = Instant::now().checked_add(timeout);
        let settled = wait_settled(shared, deadline).await;
        let sunk = shared.letters.caught_up(deadline).await;
        shared.report(settled && sunk, 0)
    }

    /// Stops taking events, flushes with `timeout` ([`Duration::MAX`]: no
    /// limit), stops the dispatcher and hands back whatever is still queued
    /// or in flight as dead letters (to the sink and in the report). Later
    /// `log` calls get [`LogError::ShutDown`]. With the `tracing` layer,
    /// trees still open are sent first, as they stand (marked partial).
    ///
    /// Returns within `timeout` plus [`SINK_GRACE`](Self::SINK_GRACE) (and
    /// the time to serialize the events still queued then), whatever the
    /// sink does: letters it has not taken by then stay in the report
    /// ([`LoggerReport::dead_letters_not_in_sink`]). An event in flight when
    /// the deadline hits is handed back even though the server may have
    /// recorded it; its `event_id` makes a replay safe.
    pub async fn shutdown(&self, timeout: Duration) -> LoggerReport {
        shut_down(
            &self.handle.shared,
            || self.handle.take_dispatcher(),
            timeout,
        )
        .await
    }

    /// Why the last attempt that is being retried failed (the error's
    /// sentence, as a dead letter would give it), or `None` when no
    /// attempt has failed for a reason that may pass since the API last
    /// answered: for a progress display to say why events are slow to go,
    /// long before their retry deadline ends them.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use honeyhive::{Logger, LoggerConfig, testing::MockHoneyHive};
    ///
    /// let mock = MockHoneyHive::start_async().await;
    /// let logger = Logger::new(&mock.client()?, LoggerConfig::default())?;
    /// assert_eq!(logger.last_retried_error(), None);
    /// # Ok(()) }
    /// ```
    pub fn last_retried_error(&self) -> Option<String> {
        self.handle.shared.last_retried.lock().clone()
    }

    /// The route this Logger sends through (an experiment checks it).
    pub(crate) fn route(&self) -> Route {
        self.handle.shared.config.route
    }

    /// Counters since the logger started.
    pub fn stats(&self) -> LoggerStats {
        self.handle.shared.stats()
    }

    /// Asks the client whether it takes the event (`None`: one built
    /// later) of `session_id`: `Ok(None)` when the session is sampled out,
    /// counted (its events are taken and dropped with no check of the
    /// event, no queue slot and no letter), else what the event holds and
    /// the least its JSON takes.
    fn admit(
        &self,
        session_id: &SessionId,
        event: Option<&Event>,
    ) -> Result<Option<crate::footprint::Footprint>, Error> {
        let shared = &self.handle.shared;
        let flat = shared.config.route == Route::EventBatch;
        let admitted = shared.client.admit(flat, session_id, event)?;
        if admitted.is_none() {
            shared.counters.sampled_out.fetch_add(1, SEQ);
        }
        Ok(admitted)
    }

    /// Checks the input as the client will, and sizes the event; `None`
    /// when its session is sampled out.
    fn checked(&self, session_id: SessionId, event: Event) -> Result<Option<Item>, LogError> {
        match self.admit(&session_id, Some(&event)) {
            Ok(footprint) => Ok(footprint.map(|footprint| Item {
                session_id,
                event: Payload::Ready(event),
                footprint: ENTRY_BYTES + footprint.heap,
                json_at_least: footprint.json_at_least,
            })),
            Err(error) => Err(LogError::Invalid {
                error,
                event: Box::new(event),
            }),
        }
    }
}

/// [`Logger::shutdown`] on the logger's shared state, so that the drop of
/// an own-thread Logger's last handle can run it too. `dispatcher` gives
/// the dispatcher's handle once the queue is settled (or the time is up).
async fn shut_down(
    shared: &Shared,
    dispatcher: impl FnOnce() -> Option<JoinHandle<()>>,
    timeout: Duration,
) -> LoggerReport {
    let deadline = Instant::now().checked_add(timeout);
    shared.sources.close();
    shared.close();
    let settled = wait_settled(shared, deadline).await;
    shared.stop(Life::ShutDown);
    if let Some(dispatcher) = dispatcher() {
        dispatcher.abort();
        // Stopped at its next await, with its deliveries.
        let _cancelled_or_done = dispatcher.await;
    }
    shared.hand_back_unsettled(SHUT_DOWN);
    let grace = deadline.and_then(|at| at.max(Instant::now()).checked_add(Logger::SINK_GRACE));
    let sunk = shared.letters.caught_up(grace).await;
    let not_in_sink = if sunk { 0 } else { shared.letters.stop_sink() };
    shared.report(settled && sunk, not_in_sink)
}

/// Waits for a flush marker queued now to be answered (its channel closed:
/// the last holder of the marker let go of it), or `deadline` (`None`: no
/// limit).
async fn wait_settled(shared: &Shared, deadline: Option<Instant>) -> bool {
    if shared.stopped() {
        // Nothing is left in a stopped logger: it was all handed back.
        return true;
    }
    let Some(settled) = shared.request_flush() else {
        return true;
    };
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, settled).await.is_ok(),
        None => settled.await.is_err(),
    }
}

const SEQ: std::sync::atomic::Ordering = std::sync::atomic::Ordering::SeqCst;

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
        self.dispatcher.lock().take()
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.own_thread.get_mut().is_some() && !self.shared.stopped() {
            // An own-thread Logger's runtime is its own: what is queued can
            // still go out, within a budget, before the thread ends.
            self.shut_down_on_drop();
        }
        let shared = &self.shared;
        if !shared.stop(Life::Dropped) {
            return; // shut down already, or its runtime ended
        }
        if let Some(dispatcher) = self.take_dispatcher() {
            dispatcher.abort();
        }
        let lost = shared.hand_back_unsettled(DROPPED);
        // No runtime to await on here: wait on this thread for the sink to
        // take everything, so that what it writes is written when drop
        // returns.
        shared.letters.finish_on_this_thread();
        if lost > 0 {
            warn_dropped(shared, lost, self.own_thread.get_mut().is_some());
        }
    }
}

/// Warns that dropping the last handle lost `lost` events, naming the call
/// that would have sent them for this kind of Logger.
fn warn_dropped(shared: &Shared, lost: usize, own_thread: bool) {
    let sink = if shared.config.outcomes.is_some() {
        "they were handed to the dead-letter sink"
    } else {
        "no dead-letter sink was set, so they are gone"
    };
    let call = if own_thread {
        "logger.shutdown_blocking(timeout) (or, in async code, logger.shutdown(timeout).await)"
    } else {
        "logger.shutdown(timeout).await"
    };
    warn_loss(&format!(
        "honeyhive Logger dropped without shutdown(): {lost} events were not delivered; {sink}. \
         Call {call} before exit"
    ));
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
