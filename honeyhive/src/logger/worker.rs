//! The dispatcher and the deliveries: the one task that takes events out
//! of the queue, in order, and puts them in requests (one event each, or
//! batches), and the tasks that send those, settle their events and hand
//! back what fails.

use parking_lot::{Mutex, MutexGuard};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use bytes::Bytes;

use super::by_number::ByNumber;
use super::concurrency::{Limiter, Signal};
use super::config::Route;
use super::letters::{Letters, Taken};
use super::outcome::Sent;
use super::queue::{Entry, Item, Queue};
use super::rate::SendRate;
use super::report::{LoggerReport, LoggerStats};
use super::{LoggerConfig, warn_loss};
use crate::client::{Answer, Expect, Prepared, finish};
use crate::flat::{BATCH_CLOSE, BATCH_OPEN, Flat, unflatten};
use crate::retry::{Attempt, Verdict};
use crate::{client::Client, dead_letter::DeadLetter, error::Error, session::SessionId};

/// Why an event taken out of the queue as the logger stopped was not sent.
const STOPPED: &str = "the logger stopped before the event was delivered";
/// Why events were handed back when the runtime running the logger ended.
pub(super) const RUNTIME_GONE: &str = "the tokio runtime running the Logger shut down before \
     the event was delivered; keep that runtime running as long as the Logger, or start the \
     Logger on a runtime that lives as long as the program";

/// Empty looks at the queue after which the dispatcher looks less often.
const IDLE_LOOKS: u32 = 20;
/// How often the dispatcher looks at an idle queue (or every `linger`, if
/// that is longer).
const IDLE_LOOK: Duration = Duration::from_millis(100);

/// What one attempt's future is.
pub(crate) type AttemptFuture<'a> =
    Pin<Box<dyn Future<Output = Verdict<Result<Answer, Error>>> + Send + 'a>>;

/// Sends one attempt of a prepared request: the [`Client`] in use, a script
/// in tests. Everything around it (retries, settling, dead letters, flush
/// accounting) is the logger's own and tested without a server.
pub(crate) trait Transport: Send + Sync + 'static {
    /// One request and its answer, judged for the retry loop.
    fn attempt<'a>(&'a self, prepared: &'a Prepared, attempt: Attempt) -> AttemptFuture<'a>;
}

impl Transport for Client {
    fn attempt<'a>(&'a self, prepared: &'a Prepared, attempt: Attempt) -> AttemptFuture<'a> {
        Box::pin(Client::attempt(self, prepared, attempt))
    }
}

/// An event serialized for the logger's route.
pub(super) struct Unit {
    session_id: SessionId,
    body: Body,
}

enum Body {
    /// [`Route::Event`]: the whole request.
    Request(Prepared),
    /// [`Route::EventBatch`]: the tree's part of a batch body.
    Part(Flat),
}

impl Unit {
    /// The (root) event's id.
    fn event_id(&self) -> &str {
        match &self.body {
            Body::Request(prepared) => match &prepared.expect {
                Expect::Event { event_id } => event_id,
                _ => "",
            },
            Body::Part(flat) => &flat.event_id,
        }
    }

    /// A dead letter for the event: its JSON as this crate sends it on the
    /// per-event route (children nested, ids filled), whatever the route,
    /// so that it can be replayed through either.
    fn letter(&self, reason: String) -> DeadLetter {
        let event = match &self.body {
            Body::Request(prepared) => prepared.body.clone(),
            Body::Part(flat) => Bytes::from(unflatten(&flat.json).to_string()),
        };
        DeadLetter {
            session_id: self.session_id.clone(),
            event_id: Some(self.event_id().to_owned()),
            event,
            reason,
            status: None,
            fix: None,
        }
    }
}

/// An event taken out of the queue and numbered, held until it is
/// settled: as it was queued until its delivery serializes it (the
/// dispatcher only takes; the deliveries, side by side on the runtime's
/// threads, do the serializing), or a hand-back does.
type Held = Arc<Mutex<Stage>>;

// Not boxed: the slot is on the heap already (in its `Arc`), and boxing
// the item would cost an allocation per event.
#[allow(clippy::large_enum_variant)]
enum Stage {
    Queued(Item),
    Ready(Arc<Unit>),
    /// Handed back, or could not be serialized for sending.
    Handed,
}

/// A taken event: its number and where it is held.
type Grabbed = (u64, Held);
/// A serialized event and its number.
type Numbered = (u64, Arc<Unit>);

/// The dispatcher's next request, filled by [`Shared::take`]. Its bounds
/// are estimates (a tree built when taken counts as one event, bytes as
/// the least the JSON takes); the delivery holds the request to the real
/// bytes once its events are serialized.
#[derive(Default)]
struct Batch {
    taken: Vec<Grabbed>,
    events: usize,
    /// The bytes of its body so far (per event and separator), at least.
    bytes: usize,
    /// Nothing more fits: send it.
    full: bool,
    /// A flush marker was taken: send it without waiting for more.
    flushed: bool,
    /// An event that did not fit, first of the next batch: with its
    /// estimated events and bytes.
    carry: Option<(Grabbed, usize, usize)>,
}

impl Batch {
    /// Adds an event, or carries it to the next batch when it would take
    /// this one over a bound (an event alone always goes in).
    fn add(&mut self, taken: Grabbed, events: usize, bytes: usize, limits: &Limits) {
        let separator = usize::from(!self.taken.is_empty());
        if !self.taken.is_empty()
            && (self.events + events > limits.events
                || self.bytes + separator + bytes > limits.bytes)
        {
            self.carry = Some((taken, events, bytes));
            self.full = true;
            return;
        }
        self.taken.push(taken);
        self.events += events;
        self.bytes += separator + bytes;
        self.full |= self.events >= limits.events;
    }

    /// The events to send; the carried one starts the next batch.
    fn take(&mut self, limits: &Limits) -> Vec<Grabbed> {
        let carry = self.carry.take();
        let taken = std::mem::take(self).taken;
        if let Some((held, events, bytes)) = carry {
            self.add(held, events, bytes, limits);
        }
        taken
    }

    fn ready(&self) -> bool {
        self.full || self.flushed
    }
}

/// How many events a queued item holds (a tree's nodes); 1 for one built
/// when taken.
fn events_in(item: &Item) -> usize {
    fn count(event: &crate::api::types::Event) -> usize {
        1 + event.children.iter().map(count).sum::<usize>()
    }
    match &item.event {
        super::queue::Payload::Ready(event) => count(event.as_api()),
        #[cfg(feature = "tracing")]
        super::queue::Payload::Later(_) => 1,
    }
}

/// The JSON a unit adds to its request's body.
fn unit_json(unit: &Unit) -> &[u8] {
    match &unit.body {
        Body::Request(prepared) => &prepared.body,
        Body::Part(flat) => &flat.json,
    }
}

/// The bytes a unit adds to its request's body.
fn unit_bytes(unit: &Unit) -> usize {
    unit_json(unit).len()
}

/// The bytes of the events' JSON in one batch body (the braces apart).
fn batch_bytes(units: &[Numbered]) -> usize {
    units
        .iter()
        .map(|(_, unit)| unit_bytes(unit))
        .sum::<usize>()
        + units.len().saturating_sub(1)
}

/// What one request may carry.
struct Limits {
    events: usize,
    /// Of the events' JSON (the batch's braces come on top).
    bytes: usize,
}

/// Where a logger is in its life. It only moves forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum State {
    /// Taking events.
    Running = 0,
    /// `shutdown` began: refusing events, sending what is queued.
    Closed = 1,
    /// The dispatcher is stopped and what was left handed back.
    Stopped = 2,
}

/// What stopped a logger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Stop {
    /// Not stopped.
    No = 0,
    ShutDown = 1,
    /// The last `Logger` was dropped without `shutdown`.
    Dropped = 2,
    /// The runtime its tasks ran on ended (and with it the tasks).
    RuntimeGone = 3,
}

/// An event taken out of the queue and not yet settled.
struct Unsettled {
    /// Shared with its delivery.
    held: Held,
    /// Who settles it: its delivery while `Sending`; once `Settling`, its
    /// delivery has counted it (sent or failed) and is telling
    /// [`OutcomeSink`](super::OutcomeSink).
    phase: Phase,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Sending,
    Settling,
}

/// Events in flight, by the order they were taken, and the flushes
/// waiting for the ones taken before them.
#[derive(Default)]
struct InFlight {
    next: u64,
    events: ByNumber<Unsettled>,
    /// Flushes and the number each waits for: every event below it.
    flushes: Vec<(u64, oneshot::Sender<()>)>,
}

/// What happened to events after `log`, and how many `log` refused. Events
/// accepted are counted by the queue.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) sent: AtomicU64,
    pub(super) retried: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) sampled_out: AtomicU64,
}

/// Everything the logger's handles and tasks share.
pub(super) struct Shared {
    pub(super) client: Client,
    transport: Arc<dyn Transport>,
    pub(super) config: LoggerConfig,
    pub(super) queue: Queue,
    state: AtomicU8,
    stop: AtomicU8,
    /// Tells the dispatcher to look at the queue now (flush, shutdown, or
    /// the first `log` after it began dozing).
    look: Notify,
    /// The dispatcher is in its long idle wait.
    dozing: AtomicBool,
    /// One permit per delivery running (at most `max_in_flight`).
    delivery_permits: Arc<Semaphore>,
    /// Requests in flight, and the limit they are held to.
    limiter: Limiter,
    /// The send rate, once a server throttled.
    rate: SendRate,
    /// The dispatcher is taking an event out of the queue (see
    /// [`takes_done`](Self::takes_done)).
    taking: AtomicBool,
    /// What one request may carry.
    limits: Limits,
    in_flight: Mutex<InFlight>,
    pub(super) counters: Counters,
    pub(super) letters: Letters,
    pub(super) warned_full: AtomicBool,
    /// Why the last attempt that will be retried failed, since the last
    /// answer; `retrying` says there is one.
    pub(super) last_retried: parking_lot::Mutex<Option<String>>,
    retrying: AtomicBool,
    #[cfg(feature = "tracing")]
    pub(super) sources: super::Sources,
}

impl Shared {
    pub(super) fn new(client: Client, transport: Arc<dyn Transport>, config: LoggerConfig) -> Self {
        let now = Instant::now();
        let body_limit = client.max_body_bytes();
        let limits = match config.route {
            Route::Event => Limits {
                events: 1,
                bytes: body_limit,
            },
            Route::EventBatch => Limits {
                events: config.max_batch_events,
                bytes: config
                    .max_batch_bytes
                    .unwrap_or(body_limit)
                    .min(body_limit)
                    .saturating_sub(BATCH_OPEN.len() + BATCH_CLOSE.len()),
            },
        };
        Shared {
            limits,
            queue: Queue::new(config.max_queue_events, config.max_queue_bytes),
            delivery_permits: Arc::new(Semaphore::new(config.max_in_flight)),
            limiter: Limiter::new(config.max_in_flight, config.adaptive, now),
            rate: SendRate::new(now),
            letters: Letters::new(config.outcomes.clone(), config.max_report_letters),
            client,
            transport,
            config,
            state: AtomicU8::new(State::Running as u8),
            stop: AtomicU8::new(Stop::No as u8),
            look: Notify::new(),
            dozing: AtomicBool::new(false),
            in_flight: Mutex::new(InFlight::default()),
            taking: AtomicBool::new(false),
            counters: Counters::default(),
            warned_full: AtomicBool::new(false),
            last_retried: parking_lot::Mutex::new(None),
            retrying: AtomicBool::new(false),
            #[cfg(feature = "tracing")]
            sources: super::Sources::default(),
        }
    }

    pub(super) fn state(&self) -> State {
        match self.state.load(Ordering::SeqCst) {
            0 => State::Running,
            1 => State::Closed,
            _ => State::Stopped,
        }
    }

    /// What stopped the logger, if it is stopped.
    pub(super) fn stopped_by(&self) -> Stop {
        match self.stop.load(Ordering::SeqCst) {
            1 => Stop::ShutDown,
            2 => Stop::Dropped,
            3 => Stop::RuntimeGone,
            _ => Stop::No,
        }
    }

    /// Moves the state forward to `to` (never back); says whether it moved.
    pub(super) fn advance(&self, to: State) -> bool {
        let moved = self.state.fetch_max(to as u8, Ordering::SeqCst) < to as u8;
        if moved {
            // log_wait callers look at the state again.
            self.queue.wake_waiters();
        }
        moved
    }

    /// Stops the logger for `why`, unless something stopped it first; says
    /// whether this call did. The reason is set before the state, so
    /// whoever sees `Stopped` can read why.
    pub(super) fn stop(&self, why: Stop) -> bool {
        let first = self
            .stop
            .compare_exchange(
                Stop::No as u8,
                why as u8,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok();
        first && self.advance(State::Stopped)
    }

    /// After `log` queued an event: wakes the dispatcher if it dozes, so the
    /// first event after a quiet spell goes out at once. Costs `log` a load
    /// of one flag otherwise, and a wake-up once per quiet spell.
    pub(super) fn queued(&self) {
        if self.dozing.load(Ordering::SeqCst) && self.dozing.swap(false, Ordering::SeqCst) {
            self.look.notify_one();
        }
    }

    /// Queues a flush marker and gets the dispatcher to look at once; the
    /// receiver answers when everything queued before it is settled.
    /// `None` when the logger is stopped: nothing is left to wait for, and
    /// a marker queued now might never be taken.
    pub(super) fn request_flush(&self) -> Option<oneshot::Receiver<()>> {
        let (done, settled) = oneshot::channel();
        self.queue.push_flush(done);
        // After the push (both SeqCst): a stop that this load misses
        // empties the queue after the marker is in it, and answers it.
        if self.state() == State::Stopped {
            return None;
        }
        self.look.notify_one();
        Some(settled)
    }

    pub(super) fn stats(&self) -> LoggerStats {
        let in_flight = self.in_flight.lock().events.len();
        let c = &self.counters;
        LoggerStats {
            enqueued: self.queue.accepted(),
            sent: c.sent.load(Ordering::SeqCst),
            retried: c.retried.load(Ordering::SeqCst),
            failed: c.failed.load(Ordering::SeqCst),
            dropped: c.dropped.load(Ordering::SeqCst),
            events_sampled_out: c.sampled_out.load(Ordering::SeqCst),
            pending: (self.queue.len() + in_flight) as u64,
            in_flight_limit: self.limiter.limit(),
            send_rate_limit: self.rate.limit().map(|rate| rate.round() as u32),
        }
    }

    /// A report with the dead letters since the last one; `not_in_sink`
    /// of them (the last ones) the sink did not take.
    pub(super) fn report(&self, complete: bool, not_in_sink: u64) -> LoggerReport {
        let Taken { kept, omitted } = self.letters.take();
        LoggerReport {
            complete,
            stats: self.stats(),
            dead_letters: kept,
            dead_letters_omitted: omitted,
            dead_letters_not_in_sink: not_in_sink,
        }
    }

    /// Takes events out of the queue into `batch`, numbered, until it is
    /// full, the queue is empty or the logger stopped; a flush marker taken
    /// out is numbered after every event before it, and marks the batch to
    /// go now. Only the dispatcher takes, so events are numbered in queue
    /// order. Takes never serialize: deliveries do, side by side.
    ///
    /// Shutdown and drop set `Stopped`, then wait for a take in progress
    /// to end ([`takes_done`](Self::takes_done)) before they empty the
    /// queue: a take sets `taking` before it looks at the state, so one of
    /// the two sees the other. A take that finds the logger stopped after
    /// it popped an event hands it back itself.
    fn take(&self, batch: &mut Batch) {
        self.taking.store(true, Ordering::SeqCst);
        while !batch.full && self.state() != State::Stopped {
            let Some(entry) = self.queue.pop() else {
                break;
            };
            let item = match entry {
                Entry::Flush(done) => {
                    let mut in_flight = self.in_flight.lock();
                    let target = in_flight.next;
                    in_flight.flushes.push((target, done));
                    settle_flushes(&mut in_flight);
                    batch.flushed = true;
                    continue;
                }
                Entry::Event(item) => item,
            };
            let (events, bytes) = (events_in(&item), item.json_at_least);
            let mut in_flight = self.in_flight.lock();
            if self.state() == State::Stopped {
                // Stopped while this take popped: the hand-back ran (or
                // runs) without this event.
                drop(in_flight);
                self.hand_back(vec![self.letter_for(item, STOPPED)]);
                break;
            }
            let seq = in_flight.next;
            in_flight.next += 1;
            let held = Arc::new(Mutex::new(Stage::Queued(item)));
            let entry = Unsettled {
                held: Arc::clone(&held),
                phase: Phase::Sending,
            };
            in_flight.events.insert(seq, entry);
            drop(in_flight);
            batch.add((seq, held), events, bytes, &self.limits);
        }
        self.taking.store(false, Ordering::SeqCst);
    }

    /// Waits until no take is in progress (after `Stopped`, none starts).
    /// A take never awaits and lasts microseconds on another thread, so
    /// this spins on the calling thread, in `Drop` and in `shutdown` alike.
    pub(super) fn takes_done(&self) {
        while self.taking.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
    }
}

/// Dropped with the dispatcher. When that happens before shutdown or drop
/// stopped the logger, the runtime running it has ended (its tasks are
/// dropped with it): the logger stops, hands back what it held, and says so.
struct Dispatching(Arc<Shared>);

impl Drop for Dispatching {
    fn drop(&mut self) {
        let shared = &self.0;
        if !shared.stop(Stop::RuntimeGone) {
            return; // shutdown or drop stopped it, and handed back
        }
        // No take is in progress: the one taker is what is being dropped.
        let lost = shared.hand_back_unsettled(RUNTIME_GONE);
        if lost > 0 {
            let kept = if shared.config.outcomes.is_some() {
                "they go to the dead-letter sink and the next report"
            } else {
                "they are in the next report"
            };
            warn_loss(&format!(
                "the tokio runtime running a honeyhive Logger shut down with {lost} events not \
                 delivered; {kept}. Later log() calls are refused"
            ));
        }
    }
}

/// The dispatcher, the one taker: while events wait and fewer than
/// `max_in_flight` deliveries run, takes the next request's events (one,
/// or a batch), waits for its place at the send rate (once a server
/// throttled) and starts its delivery. A batch that is not full waits up
/// to `linger` for more events, unless a flush or shutdown wants them out.
/// `log` does not wake it per event: it looks at an empty queue every
/// `linger`; after 20 empty looks it dozes, and the first `log` (or flush,
/// or shutdown) wakes it.
pub(super) async fn dispatch(shared: Arc<Shared>) {
    let _dispatching = Dispatching(Arc::clone(&shared));
    let mut deliveries = JoinSet::new();
    let mut empty_looks = 0u32;
    let mut batch = Batch::default();
    loop {
        while deliveries.try_join_next().is_some() {}
        #[cfg(feature = "tracing")]
        shared.sources.tick();
        let Ok(delivery) = Arc::clone(&shared.delivery_permits).acquire_owned().await else {
            return;
        };
        let Some(permit) = shared.limiter.try_acquire() else {
            // As many requests are in flight as the limit allows; a rise of
            // the limit wakes us to start another.
            drop(delivery);
            let _woken = tokio::time::timeout(shared.config.linger, shared.look.notified()).await;
            continue;
        };
        shared.take(&mut batch);
        if !batch.taken.is_empty() && !batch.ready() && shared.state() == State::Running {
            // Room for more: give them `linger` to come (a flush or
            // shutdown cuts it short), then take what came.
            let _woken = tokio::time::timeout(shared.config.linger, shared.look.notified()).await;
            shared.take(&mut batch);
        }
        let taken = batch.take(&shared.limits);
        if taken.is_empty() {
            shared.limiter.release(Some(permit));
            drop(delivery);
            empty_looks = empty_looks.saturating_add(1);
            if empty_looks < IDLE_LOOKS {
                let _woken =
                    tokio::time::timeout(shared.config.linger, shared.look.notified()).await;
                continue;
            }
            // Dozing: the next `log` wakes us. Said before the last look
            // at the queue (both SeqCst, as `queued` reads them in the
            // other order), so an event logged meanwhile is either seen
            // here or wakes us.
            shared.dozing.store(true, Ordering::SeqCst);
            if shared.queue.len() == 0 && batch.taken.is_empty() {
                let wait = IDLE_LOOK.max(shared.config.linger);
                let _woken = tokio::time::timeout(wait, shared.look.notified()).await;
            }
            shared.dozing.store(false, Ordering::SeqCst);
            continue;
        }
        empty_looks = 0;
        // The request's place at the send rate, taken with its place in
        // flight (so it goes out when its turn comes, not with others that
        // waited for a place) and before its retry clock starts: waiting
        // for the rate uses no deadline.
        shared.rate.wait().await;
        deliveries.spawn(deliver(Arc::clone(&shared), taken, delivery, permit));
    }
}

/// A delivery: serializes its events, sends them in one request (or more,
/// see [`send`]) and settles them. Holds one of the `max_in_flight` delivery permits
/// until then; each request holds one of the limiter's permits (the first,
/// the one the dispatcher took for it).
async fn deliver(
    shared: Arc<Shared>,
    taken: Vec<Grabbed>,
    _delivery: OwnedSemaphorePermit,
    first_permit: OwnedSemaphorePermit,
) {
    // A mask is the user's code, and may be slow: it runs on tokio's
    // blocking pool, never on the runtime's workers (the application's,
    // for a Logger made by `Logger::new`).
    let (units, body) = if shared.client.masks() {
        let serializing = Arc::clone(&shared);
        match tokio::task::spawn_blocking(move || serializing.serialize(taken)).await {
            Ok(serialized) => serialized,
            // The runtime is going: the events stay where a hand-back
            // finds them.
            Err(_) => {
                shared.limiter.release(Some(first_permit));
                return;
            }
        }
    } else {
        shared.serialize(taken)
    };
    if units.is_empty() {
        shared.limiter.release(Some(first_permit));
        return;
    }
    send(&shared, &units, body, Some(first_permit), 0).await;
}

/// Sends `units` in one request under the client's retry policy and
/// settles them: sent, or handed back with the last error. A batch whose
/// events, serialized, are over the byte bound (the dispatcher bounded it
/// by an estimate) goes as two halves; so does one the API refuses as a
/// whole for what one event may hold (400, 413, 422), down to the one
/// event it refuses. Halves go side by side. `spent` is how many requests
/// these events went out in before (a split half's parents'): they count
/// in `retried` and in each event's attempts.
fn send<'a>(
    shared: &'a Shared,
    units: &'a [Numbered],
    body: Option<Bytes>,
    permit: Option<OwnedSemaphorePermit>,
    spent: u32,
) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
    Box::pin(async move {
        if units.len() > 1 && batch_bytes(units) > shared.limits.bytes {
            let (first, second) = units.split_at(units.len() / 2);
            tokio::join!(
                send(shared, first, None, permit, spent),
                send(shared, second, None, None, spent)
            );
            return;
        }
        let prepared = shared.request(units, body);
        let mut permit = permit;
        let (result, tally) = shared
            .client
            .retry_policy()
            .run(shared.client.attempt_timeout(), |attempt| {
                paced(shared, &prepared, attempt, permit.take())
            })
            .await;
        // A split half's first request sends its events again too.
        let again = tally.attempts.saturating_sub(1) + u32::from(spent > 0);
        shared
            .counters
            .retried
            .fetch_add(u64::from(again), Ordering::SeqCst);
        let attempts = spent.saturating_add(tally.attempts);
        match finish(result, tally) {
            Ok(_answer) => shared.settle_sent(units, attempts),
            Err(Error::Api {
                status:
                    reqwest::StatusCode::BAD_REQUEST
                    | reqwest::StatusCode::PAYLOAD_TOO_LARGE
                    | reqwest::StatusCode::UNPROCESSABLE_ENTITY,
                ..
            }) if units.len() > 1 => {
                let (first, second) = units.split_at(units.len() / 2);
                tokio::join!(
                    send(shared, first, None, None, attempts),
                    send(shared, second, None, None, attempts)
                );
            }
            Err(error) => shared.settle_failed(units, &error),
        }
    })
}

/// One attempt: a permit of the in-flight limit and, for a request whose
/// place the dispatcher did not take (a retry, a half of a split batch),
/// a place at the send rate; the answer is fed to both. A 429 tells the
/// send rate; other answers worth a retry are back-pressure on the limit.
async fn paced(
    shared: &Shared,
    prepared: &Prepared,
    attempt: Attempt,
    permit: Option<OwnedSemaphorePermit>,
) -> Verdict<Result<Answer, Error>> {
    let permit = match permit {
        Some(permit) => Some(permit),
        None => {
            let permit = shared.limiter.acquire().await;
            // Its place at the send rate, taken right before it is sent (a
            // place taken before a wait for the permit would let retries
            // that waited out together go out together).
            shared.rate.wait().await;
            permit
        }
    };
    let started = Instant::now();
    // The wait counts against the request's deadline: it never starts
    // with less than the least attempt left.
    let Some(attempt) = attempt.after_wait(started) else {
        shared.limiter.release(permit);
        return Verdict::Final(Err(Error::Timeout {
            elapsed: Duration::ZERO,
            attempts: attempt.number,
            attempt_timeout: attempt.timeout,
        }));
    };
    let verdict = shared.transport.attempt(prepared, attempt).await;
    let now = Instant::now();
    // This request counts as in flight until its answer is taken in.
    let in_flight = shared.limiter.in_flight();
    shared.limiter.release(permit);
    let (signal, throttled) = match &verdict {
        Verdict::Final(_) => (Signal::Answered, false),
        Verdict::Retryable { next, .. } if next.throttled => (Signal::Throttled, true),
        Verdict::Retryable { .. } => (Signal::BackPressure, false),
    };
    match &verdict {
        Verdict::Retryable {
            outcome: Err(error),
            ..
        } if attempt.number < shared.client.retry_policy().max_attempts => {
            *shared.last_retried.lock() = Some(error.to_string());
            shared.retrying.store(true, Ordering::Relaxed);
        }
        // An answer: whatever failed before has passed (the flag keeps
        // the lock off every answer's path).
        Verdict::Final(Ok(_)) if shared.retrying.swap(false, Ordering::Relaxed) => {
            *shared.last_retried.lock() = None;
        }
        _ => {}
    }
    shared.rate.observe(now, started, throttled);
    if shared
        .limiter
        .observe(now, now - started, signal, in_flight)
    {
        shared.look.notify_one();
    }
    match verdict {
        // The send rate answers the server's `Retry-After` for every
        // request: the throttled one retries after the backoff, at that
        // rate, as the AWS SDKs' adaptive mode does. Waiting out the
        // `Retry-After` of a window that reopens sooner (a 100 ms window
        // saying 1 s) would only hold it back.
        Verdict::Retryable { outcome, next } if next.throttled => Verdict::Retryable {
            outcome,
            next: crate::retry::Next {
                retry_after: None,
                ..next
            },
        },
        verdict => verdict,
    }
}

mod serialize;
mod settle;

use settle::settle_flushes;

#[cfg(test)]
mod tests;
