//! [`Logger`]: logs events in the background, so the application never waits
//! on telemetry, and hands back what it could not deliver.
//!
//! `log` puts the event in a bounded queue and returns; worker tasks on the
//! caller's tokio runtime send queued events through the [`Client`] (and its
//! [`RetryPolicy`](crate::RetryPolicy)), at most
//! [`max_in_flight`](LoggerConfig::max_in_flight) at a time, over pooled
//! connections. `log` wakes nobody; a poller task looks at the queue every
//! [`linger`](LoggerConfig::linger) while events come and every 100 ms once
//! idle.
//!
//! Nothing is lost silently:
//! - an event refused by `log` (queue full, logger shut down, invalid) comes
//!   back in the [`LogError`] and is counted;
//! - an event that fails for good (a 4xx, retries exhausted, the shutdown
//!   deadline) goes to the [`DeadLetterSink`], if one is set, and into the
//!   next [`LoggerReport`];
//! - a `Logger` dropped without [`shutdown`](Logger::shutdown) hands its
//!   queue to the sink and warns, through `tracing`, how many events it lost.
//!
//! ```no_run
//! use std::time::Duration;
//! use honeyhive::{Client, Event, JsonlDeadLetters, LoggerConfig, SessionId};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::from_env()?;
//! let logger = client.logger(
//!     LoggerConfig::default().dead_letters(JsonlDeadLetters::append("undelivered.jsonl")?),
//! )?;
//! let session = SessionId::new();
//! logger.log(&session, Event::model("gpt-4o"))?; // returns at once
//! // ... at exit:
//! let report = logger.shutdown(Duration::from_secs(5)).await;
//! println!("{report:?}");
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::client::Prepared;
use crate::{Client, DeadLetter, DeadLetterSink, Error, Event, SessionId};

/// How a [`Logger`] queues and sends. Every setting has a documented default.
///
/// ```
/// let config = honeyhive::LoggerConfig::default()
///     .max_queue_events(50_000)
///     .max_queue_bytes(32 * 1024 * 1024)
///     .max_in_flight(16);
/// assert_eq!(config.get_max_in_flight(), 16);
/// ```
#[derive(Clone)]
pub struct LoggerConfig {
    max_queue_events: usize,
    max_queue_bytes: usize,
    max_in_flight: usize,
    max_report_letters: usize,
    linger: Duration,
    dead_letters: Option<Arc<dyn DeadLetterSink>>,
}

/// How often flush and shutdown look whether their events are settled.
const SETTLE_POLL: Duration = Duration::from_millis(1);
/// Empty looks every `linger` after which the poller looks less often.
const IDLE_POLLS: u32 = 20;
/// How often the poller looks at an idle queue (or every `linger`, if that
/// is longer).
const IDLE_POLL: Duration = Duration::from_millis(100);
/// Events waiting in the inbox for which a worker with nothing to do takes
/// the inbox lock itself rather than leave them to the poller.
const SWAP_BATCH: usize = 64;
/// Events per block of the queue (about 32 KiB of slots).
const BLOCK: usize = 64;
/// How many events' worth of room an inbox takes from the shared bounds at
/// a time, so that `log` touches the shared counters once per this many.
const CREDIT_CHUNK: usize = 32;
/// Inboxes at most; threads are spread over them.
const MAX_SHARDS: usize = 16;

impl LoggerConfig {
    /// Events the queue holds at most, by default.
    pub const DEFAULT_MAX_QUEUE_EVENTS: usize = 100_000;
    /// Memory the queued events hold at most, by default: 64 MiB.
    pub const DEFAULT_MAX_QUEUE_BYTES: usize = 64 * 1024 * 1024;
    /// Requests in flight at once, by default.
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 8;
    /// How long an event may wait in the queue for the poller's next
    /// look, by default.
    pub const DEFAULT_LINGER: Duration = Duration::from_millis(5);
    /// Dead letters a report carries at most, by default (the sink gets all).
    pub const DEFAULT_MAX_REPORT_LETTERS: usize = 10_000;

    /// Events the queue holds at most; at least 1.
    ///
    /// Each queued event takes a slot of about 500 bytes besides its own
    /// contents. Slots are kept for reuse once drained, so that `log` never
    /// waits on fresh memory after the first burst: after a burst the logger
    /// holds the slots of the queue's fullest moment (so at most this many),
    /// which the byte bound counts too.
    pub fn max_queue_events(mut self, events: usize) -> Self {
        self.max_queue_events = events.max(1);
        self
    }

    /// Memory the queued events may hold, estimated from their contents
    /// (strings, JSON objects, children) on the generous side.
    pub fn max_queue_bytes(mut self, bytes: usize) -> Self {
        self.max_queue_bytes = bytes;
        self
    }

    /// Requests in flight at once, which is also the number of worker tasks;
    /// at least 1.
    pub fn max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = requests.max(1);
        self
    }

    /// Dead letters a [`LoggerReport`] carries at most; the rest are counted
    /// in [`LoggerReport::dead_letters_omitted`] (the sink still gets them).
    pub fn max_report_letters(mut self, letters: usize) -> Self {
        self.max_report_letters = letters;
        self
    }

    /// How long an event may wait before the poller looks at the queue
    /// again: [`DEFAULT_LINGER`](Self::DEFAULT_LINGER) unless set.
    ///
    /// Waking a sleeping task takes a system call, and the woken thread may
    /// take the caller's CPU, so `log` never wakes anyone: a poller task
    /// looks at the queue every `linger` while events come, and after 20
    /// empty looks every 100 ms (or every `linger`, if longer), so the first
    /// event after a quiet spell waits up to that long. Busy workers take
    /// more by themselves once 64 are waiting; [`Logger::flush`] and
    /// [`Logger::shutdown`] look at once. Shorter means quicker delivery and
    /// more wake-ups.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger.max(Duration::from_micros(100));
        self
    }

    /// Where undelivered events go, besides the reports.
    pub fn dead_letters(mut self, sink: impl DeadLetterSink) -> Self {
        self.dead_letters = Some(Arc::new(sink));
        self
    }

    /// Requests in flight at once.
    pub fn get_max_in_flight(&self) -> usize {
        self.max_in_flight
    }
}

impl Default for LoggerConfig {
    /// [`DEFAULT_MAX_QUEUE_EVENTS`](Self::DEFAULT_MAX_QUEUE_EVENTS) events and
    /// [`DEFAULT_MAX_QUEUE_BYTES`](Self::DEFAULT_MAX_QUEUE_BYTES) in the queue,
    /// [`DEFAULT_MAX_IN_FLIGHT`](Self::DEFAULT_MAX_IN_FLIGHT) requests in
    /// flight, no dead-letter sink (reports only).
    fn default() -> Self {
        LoggerConfig {
            max_queue_events: Self::DEFAULT_MAX_QUEUE_EVENTS,
            max_queue_bytes: Self::DEFAULT_MAX_QUEUE_BYTES,
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
            max_report_letters: Self::DEFAULT_MAX_REPORT_LETTERS,
            linger: Self::DEFAULT_LINGER,
            dead_letters: None,
        }
    }
}

impl fmt::Debug for LoggerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoggerConfig")
            .field("max_queue_events", &self.max_queue_events)
            .field("max_queue_bytes", &self.max_queue_bytes)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_report_letters", &self.max_report_letters)
            .field("linger", &self.linger)
            .field("dead_letters", &self.dead_letters.as_ref().map(|_| "set"))
            .finish()
    }
}

/// Why [`Logger::log`] did not take an event. The event comes back inside.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The queue is at its event or byte bound; the event was dropped and
    /// counted in [`LoggerStats::dropped`]. Use [`Logger::log_wait`] to wait
    /// for room instead, or raise the bounds.
    #[error(
        "the logger's queue is full; the event was dropped (see LoggerConfig bounds, or use log_wait)"
    )]
    QueueFull(Box<Event>),
    /// The logger was shut down; the event was dropped and counted.
    #[error("the logger is shut down; the event was dropped")]
    ShutDown(Box<Event>),
    /// The event or session id is not valid input; see the error.
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
            LogError::QueueFull(event) | LogError::ShutDown(event) => *event,
            LogError::Invalid { event, .. } => *event,
        }
    }
}

impl From<LogError> for Error {
    /// So that `?` on [`Logger::log`] works in a function returning
    /// [`Error`]: an invalid event becomes its [`Error::InvalidInput`], a full
    /// or shut-down queue [`Error::QueueFull`] or [`Error::ShutDown`], with
    /// the event inside.
    fn from(error: LogError) -> Self {
        match error {
            LogError::QueueFull(event) => Error::QueueFull { event },
            LogError::ShutDown(event) => Error::ShutDown { event },
            LogError::Invalid { error, .. } => error,
        }
    }
}

/// Counters since the logger started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoggerStats {
    /// Events `log` accepted into the queue.
    pub enqueued: u64,
    /// Events the API recorded.
    pub sent: u64,
    /// Requests beyond the first, over all events.
    pub retried: u64,
    /// Events accepted but not delivered (handed back as dead letters).
    pub failed: u64,
    /// Events `log` refused because the queue was full or shut down.
    pub dropped: u64,
    /// Events queued or in flight now.
    pub pending: u64,
}

/// What [`Logger::flush`] or [`Logger::shutdown`] achieved.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LoggerReport {
    /// Whether every event enqueued before the call was settled (sent or
    /// handed back) within the timeout.
    pub complete: bool,
    /// Counters at the end of the call, as [`Logger::stats`] gives them.
    pub stats: LoggerStats,
    /// The events handed back since the previous report, up to
    /// [`LoggerConfig::max_report_letters`].
    pub dead_letters: Vec<DeadLetter>,
    /// Dead letters beyond that bound (the sink, if any, got them all).
    pub dead_letters_omitted: u64,
}

/// A background event logger. Cheap to clone; clones share the queue.
/// Made by [`Client::logger`]; see the [module docs](self).
#[derive(Clone)]
pub struct Logger {
    handle: Arc<Handle>,
}

/// Owned by the user-facing clones only (workers hold `Shared`), so its
/// `Drop` runs when the application lets go of the last `Logger`.
struct Handle {
    shared: Arc<Shared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

/// Held in the queue by value, so `log` allocates nothing of its own.
struct Item {
    /// The event's number in its inbox, shifted, with the inbox's index in
    /// the low byte (see `ticket`): unique in the logger, and in the order
    /// of logging within an inbox.
    seq: u64,
    session_id: SessionId,
    event: Event,
    footprint: usize,
}

struct InFlight {
    session_id: SessionId,
    /// Known once the worker has serialized the event.
    prepared: Option<Prepared>,
}

/// The queue is inboxes and an outbox, so that `log` never waits on a
/// worker nor on another thread's `log`: each thread appends to its own
/// inbox (threads are spread over a few), whose lock it shares only with
/// the threads on the same inbox and with a worker swapping the inbox into
/// the empty outbox (O(1)); workers take from the outbox, which keeps each
/// inbox's events apart and in order. So each inbox's oldest unsettled
/// event is at the front of its inbox, of its part of the outbox, or in
/// flight. Locks are taken in the order outbox, in-flight set, inboxes by
/// index, pool.
#[derive(Default)]
struct Inbox {
    items: Blocks,
    /// The number of the next event in this inbox; also how many it took.
    next_seq: u64,
    /// No more `log`; workers drain what is queued and stop.
    closed: bool,
    /// Room taken from the shared bounds and not yet used: events, bytes.
    credit: (usize, usize),
}

#[derive(Default)]
struct InboxSide {
    queue: Mutex<Inbox>,
    /// How many events the inbox holds, for workers to peek at without the
    /// lock; written by `log` under the lock, on the lock's cache line.
    len: AtomicUsize,
}

#[derive(Default)]
struct Outbox {
    /// One part per inbox.
    parts: Vec<Blocks>,
    /// The part to take from next, round robin.
    next: usize,
    /// Workers stop now.
    stopped: bool,
}

impl Outbox {
    fn len(&self) -> usize {
        self.parts.iter().map(Blocks::len).sum()
    }

    fn is_empty(&self) -> bool {
        self.parts.iter().all(Blocks::is_empty)
    }

    fn pop(&mut self, pool: &Pool) -> Option<Item> {
        for _ in 0..self.parts.len() {
            let at = self.next % self.parts.len();
            self.next = at + 1;
            if let Some(item) = self.parts[at].pop(pool) {
                return Some(item);
            }
        }
        None
    }
}

/// The queue's number for the event that is `inbox_seq`th in `shard`.
fn ticket(inbox_seq: u64, shard: usize) -> u64 {
    (inbox_seq << 8) | shard as u64
}

fn shard_of(seq: u64) -> usize {
    (seq & 0xff) as usize
}

/// The inbox this thread logs into: threads are numbered as they first log
/// (to any logger) and spread round robin.
fn thread_shard(shards: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static NUMBER: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    // `try_with`: `log` may run in another thread-local's destructor.
    NUMBER.try_with(|n| *n).unwrap_or(0) % shards
}

/// Takes between `need` and `want` from `free`, or nothing if it has less
/// than `need`.
fn take_credit(free: &AtomicUsize, need: usize, want: usize) -> Option<usize> {
    let mut now = free.load(Ordering::Acquire);
    loop {
        if now < need {
            return None;
        }
        let take = want.max(need).min(now);
        match free.compare_exchange_weak(now, now - take, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some(take),
            Err(actual) => now = actual,
        }
    }
}

/// Events in order, in blocks of `BLOCK` slots. Drained blocks go to a pool
/// that new blocks are taken from, most recently used first, so `log` writes
/// into memory already touched (a first touch is a page fault, microseconds
/// on the caller) and growing never copies queued events. The pool keeps
/// the slots of the queue's fullest moment: at most `max_queue_events`
/// slots of about 500 bytes, which the byte bound already counts.
#[derive(Default)]
struct Blocks {
    /// Full blocks, oldest first.
    full: VecDeque<VecDeque<Item>>,
    /// The block being filled, newest events last; kept inline so that
    /// `log` touches only the lock's cache lines and the slot it writes.
    tail: VecDeque<Item>,
    len: usize,
}

type Pool = Mutex<Vec<VecDeque<Item>>>;

impl Blocks {
    fn push(&mut self, item: Item, pool: &Pool) {
        if self.tail.len() >= BLOCK || self.tail.capacity() == 0 {
            let fresh = lock(pool)
                .pop()
                .unwrap_or_else(|| VecDeque::with_capacity(BLOCK));
            let done = std::mem::replace(&mut self.tail, fresh);
            if !done.is_empty() {
                self.full.push_back(done);
            }
        }
        self.tail.push_back(item);
        self.len += 1;
    }

    fn pop(&mut self, pool: &Pool) -> Option<Item> {
        let item = match self.full.front_mut() {
            Some(block) => {
                let item = block.pop_front();
                if block.is_empty()
                    && let Some(empty) = self.full.pop_front()
                {
                    lock(pool).push(empty);
                }
                item
            }
            None => self.tail.pop_front(),
        }?;
        self.len -= 1;
        Some(item)
    }

    fn front_seq(&self) -> u64 {
        self.full
            .front()
            .and_then(VecDeque::front)
            .or_else(|| self.tail.front())
            .map_or(u64::MAX, |item| item.seq)
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn take_all(&mut self) -> impl Iterator<Item = Item> + use<> {
        self.len = 0;
        let full = std::mem::take(&mut self.full);
        let tail = std::mem::take(&mut self.tail);
        full.into_iter().flatten().chain(tail)
    }
}

/// Events taken by workers and not yet settled, by sequence number: at most
/// one per worker, so a vector beats a map and never allocates after the
/// start. Its own lock, so that workers settling events do not hold up
/// workers taking events.
#[derive(Default)]
struct InFlightSet(Vec<(u64, InFlight)>);

impl InFlightSet {
    fn insert(&mut self, seq: u64, entry: InFlight) {
        self.0.push((seq, entry));
    }

    fn get_mut(&mut self, seq: u64) -> Option<&mut InFlight> {
        self.0
            .iter_mut()
            .find(|(s, _)| *s == seq)
            .map(|(_, entry)| entry)
    }

    fn remove(&mut self, seq: u64) {
        if let Some(at) = self.0.iter().position(|(s, _)| *s == seq) {
            self.0.swap_remove(at);
        }
    }

    fn oldest(&self, shard: usize) -> Option<u64> {
        self.0
            .iter()
            .map(|(seq, _)| *seq)
            .filter(|seq| shard_of(*seq) == shard)
            .min()
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

#[derive(Default)]
struct Letters {
    kept: Vec<DeadLetter>,
    omitted: u64,
}

struct Shared {
    client: Client,
    config: LoggerConfig,
    // `log` and the workers each hammer their own lock; on one cache line
    // they would slow each other down without ever contending.
    inboxes: Box<[CacheLine<InboxSide>]>,
    outbox: CacheLine<Mutex<Outbox>>,
    /// Drained blocks of the queue, for reuse; taken after the other locks.
    pool: Pool,
    in_flight: Mutex<InFlightSet>,
    /// Room left under the bounds, events and estimated bytes, minus what
    /// the inboxes took in advance: an inbox takes `CREDIT_CHUNK` events'
    /// worth at a time, workers give back what they take out of the queue.
    free: CacheLine<(AtomicUsize, AtomicUsize)>,
    /// Items moved to the outbox, or the workers should stop.
    work: Notify,
    /// Wakes the poller for flush, shutdown and stop.
    look: Notify,
    /// No more `log` (mirrors `Inbox::closed`): workers drain and stop.
    closed: AtomicBool,
    /// Room in the queue, for `log_wait`.
    room: Notify,
    counters: Counters,
    letters: Mutex<Letters>,
    warned_full: AtomicBool,
    shut_down: AtomicBool,
}

/// Keeps a value on cache lines of its own (128 bytes: adjacent lines are
/// fetched in pairs on x86).
#[repr(align(128))]
struct CacheLine<T>(T);

impl<T> std::ops::Deref for CacheLine<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its state whole before it can panic, so a
    // poisoned lock still guards consistent data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Client {
    /// A background logger sending through this client, with worker tasks
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
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let workers = config.max_in_flight;
        let shards = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, MAX_SHARDS);
        let free = (config.max_queue_events, config.max_queue_bytes);
        let shared = Arc::new(Shared {
            client: self.clone(),
            inboxes: (0..shards)
                .map(|_| CacheLine(InboxSide::default()))
                .collect(),
            outbox: CacheLine(Mutex::new(Outbox {
                parts: (0..shards).map(|_| Blocks::default()).collect(),
                ..Outbox::default()
            })),
            pool: Mutex::new(Vec::new()),
            free: CacheLine((AtomicUsize::new(free.0), AtomicUsize::new(free.1))),
            in_flight: Mutex::new(InFlightSet(Vec::with_capacity(config.max_in_flight))),
            config,
            work: Notify::new(),
            look: Notify::new(),
            closed: AtomicBool::new(false),
            room: Notify::new(),
            counters: Counters::default(),
            letters: Mutex::new(Letters::default()),
            warned_full: AtomicBool::new(false),
            shut_down: AtomicBool::new(false),
        });
        let mut tasks: Vec<_> = (0..workers)
            .map(|_| runtime.spawn(work(Arc::clone(&shared))))
            .collect();
        tasks.push(runtime.spawn(poll(Arc::clone(&shared))));
        Ok(Logger {
            handle: Arc::new(Handle {
                shared,
                workers: Mutex::new(tasks),
            }),
        })
    }
}

impl Logger {
    /// Queues `event` for `session_id` and returns at once: it never blocks
    /// and never awaits, and works from any thread.
    ///
    /// When the queue is full the event is dropped, counted, and handed back
    /// in [`LogError::QueueFull`]; the first time, a warning is logged
    /// through `tracing`. Invalid input is refused here, before queueing.
    pub fn log(&self, session_id: impl Into<SessionId>, event: Event) -> Result<(), LogError> {
        let item = self.checked(session_id.into(), event)?;
        self.push(item)
            .map_err(|(item, full)| self.refused(item, full))
    }

    /// Like [`log`](Self::log), but when the queue is full it waits for room
    /// instead of dropping. Still refuses an event larger than the whole
    /// byte bound, which no amount of waiting would make fit.
    pub async fn log_wait(
        &self,
        session_id: impl Into<SessionId>,
        event: Event,
    ) -> Result<(), LogError> {
        let mut item = self.checked(session_id.into(), event)?;
        let shared = &self.handle.shared;
        loop {
            let mut room = pin!(shared.room.notified());
            room.as_mut().enable();
            match self.push(item) {
                Ok(()) => return Ok(()),
                Err((back, full)) => {
                    if !full || back.footprint > shared.config.max_queue_bytes {
                        return Err(self.refused(back, full));
                    }
                    item = back;
                }
            }
            room.await;
        }
    }

    /// Waits until every event enqueued before this call is settled (sent,
    /// or handed back as a dead letter), or `timeout` passes. Events logged
    /// while it waits are not waited for.
    pub async fn flush(&self, timeout: Duration) -> LoggerReport {
        let shared = &self.handle.shared;
        let targets = shared.targets(false);
        shared.wake_all();
        let complete = shared
            .wait_settled(&targets, Instant::now() + timeout)
            .await;
        shared.report(complete)
    }

    /// Stops taking events, flushes with `timeout`, stops the workers and
    /// hands back whatever is still queued or in flight as dead letters (to
    /// the sink and in the report). Later `log` calls get
    /// [`LogError::ShutDown`].
    ///
    /// An event in flight when the deadline hits is handed back even though
    /// the server may have recorded it; its `event_id` makes a replay safe.
    pub async fn shutdown(&self, timeout: Duration) -> LoggerReport {
        let shared = &self.handle.shared;
        let targets = shared.targets(true);
        shared.wake_all();
        shared.room.notify_waiters();
        let complete = shared
            .wait_settled(&targets, Instant::now() + timeout)
            .await;
        // An aborted task stops at its next await; waiting for that means no
        // worker is half-way through an event when the rest is handed back.
        for worker in self.handle.stop_workers() {
            let _cancelled_or_done = worker.await;
        }
        shared.hand_back_unsettled("the logger was shut down before the event was delivered");
        shared.shut_down.store(true, Ordering::SeqCst);
        shared.report(complete)
    }

    /// Counters since the logger started.
    pub fn stats(&self) -> LoggerStats {
        self.handle.shared.stats()
    }

    fn checked(&self, session_id: SessionId, event: Event) -> Result<Item, LogError> {
        let invalid = crate::client::check_session_id(&session_id).and_then(|()| event.check());
        if let Err(error) = invalid {
            return Err(LogError::Invalid {
                error,
                event: Box::new(event),
            });
        }
        // The event's own size is in its footprint; the session id is shared.
        let footprint =
            event.footprint() + std::mem::size_of::<Item>() - std::mem::size_of::<Event>();
        Ok(Item {
            seq: 0,
            session_id,
            event,
            footprint,
        })
    }

    /// Puts the item in the queue, or gives it back with whether the queue
    /// was full (rather than closed).
    // The item goes back by value: boxing it here would allocate on every
    // refusal before `refused` boxes just the event anyway.
    #[allow(clippy::result_large_err)]
    fn push(&self, mut item: Item) -> Result<(), (Item, bool)> {
        // No wake-up here: waking a parked task is a system call; the poller
        // looks instead (see `poll`). The lock is this thread's inbox's,
        // shared only with threads on the same inbox and a worker's O(1)
        // swap (see `Inbox`): when workers' bookkeeping held it too, 1% of
        // calls waited over 100 µs. The bounds are checked against room the
        // inbox took ahead (see `Shared::reserve`), so `log` touches shared
        // counters once per `CREDIT_CHUNK` events.
        let shared = &self.handle.shared;
        let shard = thread_shard(shared.inboxes.len());
        let side = &shared.inboxes[shard];
        let mut inbox = lock(&side.queue);
        if inbox.closed {
            return Err((item, false));
        }
        let room = shared.reserve(&mut inbox.credit, item.footprint)
            || (shared.reclaim(shard) && shared.reserve(&mut inbox.credit, item.footprint));
        if !room {
            return Err((item, true));
        }
        item.seq = ticket(inbox.next_seq, shard);
        inbox.next_seq += 1;
        inbox.items.push(item, &shared.pool);
        side.len.store(inbox.items.len(), Ordering::Relaxed);
        Ok(())
    }

    fn refused(&self, item: Item, full: bool) -> LogError {
        let shared = &self.handle.shared;
        shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
        if !full {
            return LogError::ShutDown(Box::new(item.event));
        }
        if !shared.warned_full.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                max_queue_events = shared.config.max_queue_events,
                max_queue_bytes = shared.config.max_queue_bytes,
                "honeyhive logger queue is full: dropping new events (counted in stats().dropped; \
                 this warning is shown once)"
            );
        }
        LogError::QueueFull(Box::new(item.event))
    }
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
    /// Tells the workers to stop, aborts them, and gives their handles back.
    fn stop_workers(&self) -> Vec<JoinHandle<()>> {
        lock(&self.shared.outbox).stopped = true;
        self.shared.wake_all();
        let workers: Vec<_> = lock(&self.workers).drain(..).collect();
        for worker in &workers {
            worker.abort();
        }
        workers
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.shared.shut_down.load(Ordering::SeqCst) {
            return;
        }
        self.shared.targets(true);
        self.stop_workers();
        let lost = self.shared.hand_back_unsettled(
            "the Logger was dropped without shutdown() before the event was delivered",
        );
        let sink = if self.shared.config.dead_letters.is_some() {
            "they were handed to the dead-letter sink"
        } else {
            "no dead-letter sink was set, so they are gone"
        };
        tracing::warn!(
            lost,
            "honeyhive Logger dropped without shutdown(): {lost} events were not delivered; {sink}. \
             Call logger.shutdown(timeout).await before exit"
        );
    }
}

impl Shared {
    /// Takes room for one event of `footprint` bytes out of `credit` (an
    /// inbox's), topping it up from the shared bounds when short.
    fn reserve(&self, credit: &mut (usize, usize), footprint: usize) -> bool {
        let (free_events, free_bytes) = &*self.free;
        if credit.0 == 0 {
            match take_credit(free_events, 1, CREDIT_CHUNK) {
                Some(taken) => credit.0 += taken,
                None => return false,
            }
        }
        if credit.1 < footprint {
            let want = footprint.saturating_mul(CREDIT_CHUNK);
            match take_credit(free_bytes, footprint - credit.1, want) {
                Some(taken) => credit.1 += taken,
                None => return false,
            }
        }
        credit.0 -= 1;
        credit.1 -= footprint;
        true
    }

    /// Before refusing an event, gives the room other inboxes took ahead
    /// back to the shared bounds, so that the bounds hold for the queue as a
    /// whole rather than per inbox. An inbox whose lock is busy is skipped:
    /// its thread is logging and about to use its room. Says whether any
    /// room came back. Called with the `own` inbox locked, so it must not
    /// wait for another inbox's lock.
    fn reclaim(&self, own: usize) -> bool {
        let (free_events, free_bytes) = &*self.free;
        let mut any = false;
        for (shard, side) in self.inboxes.iter().enumerate() {
            if shard == own {
                continue;
            }
            let mut inbox = match side.queue.try_lock() {
                Ok(inbox) => inbox,
                Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => continue,
            };
            let (events, bytes) = std::mem::take(&mut inbox.credit);
            free_events.fetch_add(events, Ordering::AcqRel);
            free_bytes.fetch_add(bytes, Ordering::AcqRel);
            any |= events > 0 || bytes > 0;
        }
        any
    }

    /// Gives an event's room back to the shared bounds as it leaves the
    /// queue.
    fn release(&self, footprint: usize) {
        let (free_events, free_bytes) = &*self.free;
        free_events.fetch_add(1, Ordering::AcqRel);
        free_bytes.fetch_add(footprint, Ordering::AcqRel);
    }

    /// Each inbox's next number as a ticket: every event logged before
    /// this call is numbered below its inbox's. With `close`, the inboxes
    /// also stop taking events.
    fn targets(&self, close: bool) -> Vec<u64> {
        if close {
            self.closed.store(true, Ordering::Release);
        }
        self.inboxes
            .iter()
            .enumerate()
            .map(|(shard, side)| {
                let mut inbox = lock(&side.queue);
                inbox.closed |= close;
                ticket(inbox.next_seq, shard)
            })
            .collect()
    }

    /// For each inbox, the smallest ticket not yet settled; and how many
    /// events are pending and were enqueued. Read under every lock, so no
    /// event is between two places.
    fn unsettled(&self) -> (Vec<u64>, u64, u64) {
        let outbox = lock(&self.outbox);
        let in_flight = lock(&self.in_flight);
        let mut oldest = Vec::with_capacity(self.inboxes.len());
        let mut pending = outbox.len() + in_flight.len();
        let mut enqueued = 0;
        for (shard, side) in self.inboxes.iter().enumerate() {
            let inbox = lock(&side.queue);
            oldest.push(
                outbox.parts[shard]
                    .front_seq()
                    .min(in_flight.oldest(shard).unwrap_or(u64::MAX))
                    .min(inbox.items.front_seq()),
            );
            pending += inbox.items.len();
            enqueued += inbox.next_seq;
        }
        (oldest, pending as u64, enqueued)
    }

    fn stats(&self) -> LoggerStats {
        let (_, pending, enqueued) = self.unsettled();
        let c = &self.counters;
        LoggerStats {
            enqueued,
            sent: c.sent.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            pending,
        }
    }

    fn report(&self, complete: bool) -> LoggerReport {
        let letters = std::mem::take(&mut *lock(&self.letters));
        LoggerReport {
            complete,
            stats: self.stats(),
            dead_letters: letters.kept,
            dead_letters_omitted: letters.omitted,
        }
    }

    /// Waits until every event numbered below `target` is settled.
    ///
    /// It looks every millisecond rather than being woken per settled event:
    /// a wake-up per event would cost the workers a system call each, and
    /// flushing is rare.
    async fn wait_settled(&self, targets: &[u64], deadline: Instant) -> bool {
        loop {
            let (oldest, _, _) = self.unsettled();
            if oldest
                .iter()
                .zip(targets)
                .all(|(oldest, target)| oldest >= target)
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep_until(deadline.min(Instant::now() + SETTLE_POLL)).await;
        }
    }

    /// The next item for a worker, or `None` when it should stop.
    ///
    /// The next event for a worker, or `None` when it should stop. A worker
    /// that takes an event wakes the next while any remain, so idle workers
    /// sleep until there is more than one worker's share.
    async fn take(&self) -> Option<Item> {
        loop {
            let mut work = pin!(self.work.notified());
            work.as_mut().enable();
            if let Some(next) = self.pop() {
                return next;
            }
            work.await;
        }
    }

    /// Moves the inbox into an empty outbox, under both locks; `log` waits
    /// for this swap at most, never for a worker's bookkeeping. Says whether
    /// the outbox has events now, and whether the inbox is closed.
    fn refill(&self, outbox: &mut Outbox) -> (bool, bool) {
        if !outbox.is_empty() {
            return (true, false);
        }
        let mut closed = true;
        for (part, side) in outbox.parts.iter_mut().zip(self.inboxes.iter()) {
            let mut inbox = lock(&side.queue);
            std::mem::swap(part, &mut inbox.items);
            side.len.store(0, Ordering::Relaxed);
            closed &= inbox.closed;
        }
        (!outbox.is_empty(), closed)
    }

    /// Events waiting in the inboxes, from their hints (no locks).
    fn waiting(&self) -> usize {
        self.inboxes
            .iter()
            .map(|side| side.len.load(Ordering::Relaxed))
            .sum()
    }

    /// Takes the next event into flight: `Some(Some(item))`, or `Some(None)`
    /// when the worker should stop, or `None` when there is nothing yet.
    ///
    /// With the outbox empty, a worker takes the inbox lock only when a
    /// batch is waiting there (or the logger is closing); the poller moves
    /// smaller ones. So `log` and the workers rarely meet on that lock.
    fn pop(&self) -> Option<Option<Item>> {
        let mut outbox = lock(&self.outbox);
        if outbox.stopped {
            return Some(None);
        }
        if outbox.is_empty() {
            let closing = self.closed.load(Ordering::Acquire);
            if !closing && self.waiting() < SWAP_BATCH {
                return None;
            }
            let (some, closed) = self.refill(&mut outbox);
            if !some {
                return closed.then_some(None);
            }
        }
        let item = outbox.pop(&self.pool)?;
        self.release(item.footprint);
        lock(&self.in_flight).insert(
            item.seq,
            InFlight {
                session_id: item.session_id.clone(),
                prepared: None,
            },
        );
        let more = !outbox.is_empty();
        drop(outbox);
        if more {
            self.work.notify_one();
        }
        self.room.notify_waiters();
        Some(Some(item))
    }

    /// Gets every worker looking at the queue now, rather than at its next
    /// poll: for flush, shutdown and stop.
    fn wake_all(&self) {
        self.look.notify_waiters();
        self.work.notify_waiters();
    }

    /// One look of the poller: moves waiting events to the outbox and wakes
    /// a worker for them. Says whether there were any, and whether the
    /// poller should stop.
    fn look(&self) -> (bool, bool) {
        let mut outbox = lock(&self.outbox);
        if outbox.stopped {
            return (false, true);
        }
        let (some, closed) = self.refill(&mut outbox);
        drop(outbox);
        if some {
            self.work.notify_one();
        }
        (some, closed && !some)
    }

    async fn deliver(&self, item: Item) {
        let Item {
            seq,
            session_id,
            event,
            ..
        } = item;
        // `log` already refused invalid input and serde_json cannot fail on
        // these types, so an error here is the size limit, or something new
        // that must still be handed back rather than lost.
        let prepared = match self.client.serialize(&session_id, event) {
            Ok(prepared) => prepared,
            Err(error) => {
                self.settle_failed(seq, letter(&session_id, None, error.to_string()));
                return;
            }
        };
        if let Err(error) = self.client.check_size(&prepared) {
            self.settle_failed(seq, letter(&session_id, Some(&prepared), error.to_string()));
            return;
        }
        let still_ours = match lock(&self.in_flight).get_mut(seq) {
            Some(entry) => {
                entry.prepared = Some(prepared.clone());
                true
            }
            None => false,
        };
        if !still_ours {
            // The logger was dropped while this worker was serializing; the
            // hand-back skipped this event because it had no body yet.
            self.dead_letter(letter(&session_id, Some(&prepared), DROPPED.to_owned()));
            return;
        }
        let result = self.client.send(&prepared).await;
        let attempts = match &result {
            Ok(logged) => logged.attempts,
            Err(error) => error.attempts().unwrap_or(1),
        };
        self.counters
            .retried
            .fetch_add(u64::from(attempts.saturating_sub(1)), Ordering::Relaxed);
        match result {
            Ok(_) => {
                self.counters.sent.fetch_add(1, Ordering::Relaxed);
                lock(&self.in_flight).remove(seq);
            }
            Err(error) => {
                self.settle_failed(seq, letter(&session_id, Some(&prepared), error.to_string()));
            }
        }
    }

    fn settle_failed(&self, seq: u64, letter: DeadLetter) {
        // Hand the letter over before the event counts as settled, so a flush
        // that returns has every failure in its report.
        self.dead_letter(letter);
        lock(&self.in_flight).remove(seq);
    }

    fn dead_letter(&self, letter: DeadLetter) {
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        if let Some(sink) = &self.config.dead_letters {
            sink.accept(&letter);
        }
        let mut letters = lock(&self.letters);
        if letters.kept.len() < self.config.max_report_letters {
            letters.kept.push(letter);
        } else {
            letters.omitted += 1;
        }
    }

    /// Hands back everything queued or in flight; returns how many.
    fn hand_back_unsettled(&self, reason: &str) -> u64 {
        let (queued, in_flight) = {
            let mut outbox = lock(&self.outbox);
            let in_flight = std::mem::take(&mut *lock(&self.in_flight));
            let mut queued = Vec::new();
            for (part, side) in outbox.parts.iter_mut().zip(self.inboxes.iter()) {
                let mut inbox = lock(&side.queue);
                queued.extend(part.take_all().chain(inbox.items.take_all()));
                side.len.store(0, Ordering::Relaxed);
            }
            for item in &queued {
                self.release(item.footprint);
            }
            (queued, in_flight)
        };
        let count = (queued.len() + in_flight.len()) as u64;
        for (_, entry) in in_flight.0 {
            // An entry without a body belongs to a worker still serializing
            // it (only when the logger is dropped mid-way); that worker hands
            // it back itself, with its body.
            if let Some(prepared) = &entry.prepared {
                self.dead_letter(letter(&entry.session_id, Some(prepared), reason.to_owned()));
            }
        }
        for item in queued {
            let body = serde_json::to_vec(item.event.as_api())
                .map(Bytes::from)
                .unwrap_or_default();
            self.dead_letter(DeadLetter {
                session_id: item.session_id.into(),
                event_id: item.event.as_api().event_id.clone(),
                event: body,
                reason: reason.to_owned(),
            });
        }
        count
    }
}

const DROPPED: &str = "the Logger was dropped without shutdown() before the event was delivered";

/// A dead letter for an event that was, or could not be, serialized.
fn letter(session_id: &SessionId, prepared: Option<&Prepared>, reason: String) -> DeadLetter {
    DeadLetter {
        session_id: session_id.as_str().to_owned(),
        event_id: prepared.map(|p| p.event_id.clone()),
        event: prepared.map(|p| p.body.clone()).unwrap_or_default(),
        reason,
    }
}

async fn work(shared: Arc<Shared>) {
    while let Some(item) = shared.take().await {
        shared.deliver(item).await;
    }
}

/// `log` wakes nobody, so this task looks at the queue: every `linger`
/// while events come, every `IDLE_POLL` after `IDLE_POLLS` empty looks, and
/// at once when flush, shutdown or stop ask. It never sends, so a worker
/// stuck in retries does not hold up the events behind it.
async fn poll(shared: Arc<Shared>) {
    let mut idle_polls = 0u32;
    loop {
        let mut look = pin!(shared.look.notified());
        look.as_mut().enable();
        let (some, stop) = shared.look();
        if stop {
            return;
        }
        idle_polls = if some {
            0
        } else {
            idle_polls.saturating_add(1)
        };
        let wait = if idle_polls < IDLE_POLLS {
            shared.config.linger
        } else {
            IDLE_POLL.max(shared.config.linger)
        };
        let _woken_or_timed_out = tokio::time::timeout(wait, look).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(seq: u64) -> Item {
        Item {
            seq,
            session_id: SessionId::from("s"),
            event: Event::tool("t"),
            footprint: 1,
        }
    }

    #[test]
    fn blocks_keep_order_across_blocks_and_reuse_drained_ones() {
        let pool = Pool::default();
        let mut blocks = Blocks::default();
        let n = 3 * BLOCK as u64 + 5;
        for seq in 0..n {
            blocks.push(item(seq), &pool);
        }
        assert_eq!((blocks.len(), blocks.front_seq()), (n as usize, 0));
        assert!(lock(&pool).is_empty(), "nothing drained yet");
        for seq in 0..2 * BLOCK as u64 {
            assert_eq!(blocks.pop(&pool).map(|i| i.seq), Some(seq));
        }
        assert_eq!(lock(&pool).len(), 2, "two drained blocks wait for reuse");
        assert_eq!(blocks.front_seq(), 2 * BLOCK as u64);

        // New events take the pooled blocks, with their memory, first.
        for seq in n..n + 2 * BLOCK as u64 {
            blocks.push(item(seq), &pool);
        }
        assert!(lock(&pool).is_empty(), "reused rather than allocated");
        let rest: Vec<u64> = blocks.take_all().map(|i| i.seq).collect();
        assert_eq!(
            rest,
            (2 * BLOCK as u64..n + 2 * BLOCK as u64).collect::<Vec<_>>()
        );
        assert!(blocks.is_empty());
        assert_eq!(blocks.front_seq(), u64::MAX);
        assert_eq!(blocks.pop(&pool).map(|i| i.seq), None);
    }
}
