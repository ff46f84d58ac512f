//! The dispatcher and the deliveries: the one task that takes events out
//! of the queue, in order, into requests (one event each, or batches), and
//! the tasks that send those and settle their events. See the module docs
//! of `logger` for the protocols.

use parking_lot::Mutex;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::task::JoinSet;

use super::config::Route;
use super::gate::{Gate, Permit, Signal};
use super::letters::{Letters, Taken};
use super::outcome::Sent;
use super::queue::{Entry, Item, Marker, Popped, Queue};
use super::report::{LoggerReport, LoggerStats};
use super::{LoggerConfig, Sources, warn_loss};
use crate::client::{Answer, Outgoing, Prepared, Refused};
use crate::flat::{Flat, joined, unflatten};
use crate::retry::{Attempt, Verdict};
use crate::{client::Client, dead_letter::DeadLetter, error::Error, session::SessionId};

/// Why events were handed back when the runtime running the logger ended.
const RUNTIME_GONE: &str = "the tokio runtime running the Logger shut down before \
     the event was delivered; keep that runtime running as long as the Logger, or start the \
     Logger on a runtime that lives as long as the program";

/// Empty looks at the queue after which the dispatcher dozes.
const IDLE_LOOKS: u32 = 20;
/// How often a dozing dispatcher looks (or every `linger`, if longer).
const IDLE_LOOK: Duration = Duration::from_millis(100);

/// What one attempt's future is.
pub(crate) type AttemptFuture<'a> =
    Pin<Box<dyn Future<Output = Verdict<Result<Answer, Error>>> + Send + 'a>>;

/// Sends one attempt of a prepared request: the [`Client`] in use, a script
/// in tests. Everything around it is the logger's own.
pub(crate) trait Transport: Send + Sync + 'static {
    fn attempt<'a>(&'a self, prepared: &'a Prepared, attempt: Attempt) -> AttemptFuture<'a>;
}

/// The Logger's one use of the client's transport.
impl Transport for Client {
    fn attempt<'a>(&'a self, prepared: &'a Prepared, attempt: Attempt) -> AttemptFuture<'a> {
        Box::pin(Client::attempt(self, prepared, attempt))
    }
}

/// An event serialized for the logger's route: its part of a batch body,
/// or (the per-event route) its whole request, whose body `flat` holds too.
struct Unit {
    session_id: SessionId,
    flat: Flat,
    request: Option<Prepared>,
}

impl Unit {
    /// A dead letter: the event's JSON as the per-event route carries it
    /// (children nested, ids filled), whatever the route.
    fn letter(&self, reason: String) -> DeadLetter {
        let event = match self.request {
            Some(_) => self.flat.json.clone(),
            None => bytes::Bytes::from(unflatten(&self.flat.json).to_string()),
        };
        DeadLetter {
            session_id: self.session_id.clone(),
            event_id: Some(self.flat.event_id.clone()),
            event,
            reason,
            status: None,
            fix: None,
        }
    }
}

// Not boxed: slots are in a vector already.
#[allow(clippy::large_enum_variant)]
enum Slot {
    Queued(Item),
    Ready(Unit),
    Settled,
}

impl Slot {
    fn ready(&self) -> Option<&Unit> {
        match self {
            Slot::Ready(unit) => Some(unit),
            _ => None,
        }
    }
}

/// One delivery's events, from the dispatcher's first take until each is
/// settled, and the flushes waiting for them. Only its delivery (and the
/// dispatcher filling it, and a hand-back) touch it.
#[derive(Default)]
struct Delivery {
    batch: Mutex<Batch>,
    flushes: Mutex<Vec<Marker>>,
}

impl Delivery {
    fn is_empty(&self) -> bool {
        self.batch.lock().slots.is_empty()
    }
}

#[derive(Default)]
struct Batch {
    slots: Vec<Slot>,
    /// Estimates: a tree built when taken counts one event, bytes as the
    /// least its JSON takes.
    events: usize,
    bytes: usize,
}

/// What one request may carry.
struct Limits {
    events: usize,
    /// Of the events' JSON (the batch's braces come on top).
    bytes: usize,
}

/// Where a logger is in its life; it only moves forward. From `ShutDown`
/// on it is stopped (the dispatcher gone, the rest handed back), and the
/// value says what stopped it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Life {
    /// Taking events.
    Running,
    /// `shutdown` began: refusing events, sending what is queued.
    Closed,
    ShutDown,
    /// The last `Logger` was dropped without `shutdown`.
    Dropped,
    /// The runtime its tasks ran on ended (and with it the tasks).
    RuntimeGone,
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
    gate: Arc<Gate>,
    life: AtomicU8,
    /// Tells the dispatcher to look at the queue now.
    look: Notify,
    dozing: AtomicBool,
    limits: Limits,
    /// The deliveries under way (the one being filled included), so that a
    /// hand-back finds their events and a flush their ends.
    deliveries: Mutex<Vec<Arc<Delivery>>>,
    /// Events taken out of the queue and not settled.
    in_flight: AtomicUsize,
    pub(super) counters: Counters,
    pub(super) letters: Letters,
    pub(super) warned_full: AtomicBool,
    /// Why the last attempt that will be retried failed, since the last
    /// answer; `retrying` says there is one.
    pub(super) last_retried: Mutex<Option<String>>,
    retrying: AtomicBool,
    pub(super) sources: Sources,
}

impl Shared {
    pub(super) fn new(client: Client, transport: Arc<dyn Transport>, config: LoggerConfig) -> Self {
        let limits = match config.route {
            // One event a request: its size is checked as it is serialized.
            Route::Event => Limits {
                events: 1,
                bytes: usize::MAX,
            },
            Route::EventBatch => Limits {
                events: config.max_batch_events,
                bytes: client.batch_room(config.max_batch_bytes),
            },
        };
        Shared {
            limits,
            queue: Queue::new(config.max_queue_events, config.max_queue_bytes),
            gate: Gate::new(config.max_in_flight, config.adaptive),
            letters: Letters::new(config.outcomes.clone(), config.max_report_letters),
            client,
            transport,
            config,
            life: AtomicU8::new(Life::Running as u8),
            look: Notify::new(),
            dozing: AtomicBool::new(false),
            deliveries: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            counters: Counters::default(),
            warned_full: AtomicBool::new(false),
            last_retried: Mutex::new(None),
            retrying: AtomicBool::new(false),
            sources: Sources::default(),
        }
    }

    pub(super) fn life(&self) -> Life {
        use Life::*;
        [Running, Closed, ShutDown, Dropped][..]
            .get(usize::from(self.life.load(SeqCst)))
            .map_or(RuntimeGone, |life| *life)
    }

    pub(super) fn stopped(&self) -> bool {
        self.life() >= Life::ShutDown
    }

    /// `shutdown` began; `log_wait` callers look again.
    pub(super) fn close(&self) {
        self.life.fetch_max(Life::Closed as u8, SeqCst);
        self.queue.wake_waiters();
    }

    /// Stops the logger for `why`, unless something stopped it first; says
    /// whether this call did.
    pub(super) fn stop(&self, why: Life) -> bool {
        let stopping = |now| (now < Life::ShutDown as u8).then_some(why as u8);
        let first = self.life.fetch_update(SeqCst, SeqCst, stopping).is_ok();
        self.queue.wake_waiters();
        first
    }

    /// After `log` queued an event: wakes the dispatcher if it dozes.
    pub(super) fn queued(&self) {
        if self.dozing.load(SeqCst) && self.dozing.swap(false, SeqCst) {
            self.look.notify_one();
        }
    }

    /// Queues a flush marker; the receiver is answered (closed) when every
    /// event queued before it is settled. `None` when the logger stopped.
    pub(super) fn request_flush(&self) -> Option<oneshot::Receiver<()>> {
        let (done, settled) = oneshot::channel();
        self.queue.push_flush(Arc::new(done));
        // After the push (both SeqCst): a stop this load misses empties the
        // queue after the marker is in it, and so answers it.
        if self.stopped() {
            return None;
        }
        self.look.notify_one();
        Some(settled)
    }

    pub(super) fn stats(&self) -> LoggerStats {
        let c = &self.counters;
        let (limit, rate) = self.gate.limits();
        LoggerStats {
            enqueued: self.queue.accepted(),
            sent: c.sent.load(SeqCst),
            retried: c.retried.load(SeqCst),
            failed: c.failed.load(SeqCst),
            dropped: c.dropped.load(SeqCst),
            events_sampled_out: c.sampled_out.load(SeqCst),
            pending: (self.queue.len() + self.in_flight.load(SeqCst)) as u64,
            in_flight_limit: limit,
            send_rate_limit: rate.map(|rate| rate.round() as u32),
        }
    }

    /// A report with the dead letters since the last one; `not_in_sink`
    /// of them the sink did not take.
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

    /// A new delivery, registered before anything is put in it.
    fn register(&self) -> Arc<Delivery> {
        let delivery = Arc::new(Delivery::default());
        self.deliveries.lock().push(Arc::clone(&delivery));
        delivery
    }

    fn unregister(&self, delivery: &Arc<Delivery>) {
        self.deliveries.lock().retain(|d| !Arc::ptr_eq(d, delivery));
    }

    /// Takes events out of the queue into `delivery` until it is full, the
    /// queue is empty, or a flush marker comes out: that one goes to every
    /// delivery under way (this one included), so it is answered when they
    /// have all ended. Says whether to send now (full, or flushed).
    ///
    /// Under the delivery's lock, and only while not stopped: a hand-back
    /// sets `Stopped` before it empties the queue and then the deliveries,
    /// so an event popped here is in a delivery it will lock.
    fn fill(&self, delivery: &Delivery) -> bool {
        let mut batch = delivery.batch.lock();
        while !self.stopped() {
            let Limits { events, bytes } = self.limits;
            let fits = |entry: &Entry| match entry {
                Entry::Event(item) => {
                    batch.slots.is_empty()
                        || (batch.events + item.events() <= events
                            && joined(batch.bytes, item.json_at_least) <= bytes)
                }
                Entry::Flush(_) => true,
            };
            match self.queue.pop_if(fits) {
                Popped::Empty => return false,
                Popped::Refused => return true,
                Popped::Entry(Entry::Flush(marker)) => {
                    for delivery in self.deliveries.lock().iter() {
                        delivery.flushes.lock().push(Arc::clone(&marker));
                    }
                    return true;
                }
                Popped::Entry(Entry::Event(item)) => {
                    batch.bytes = joined(batch.bytes, item.json_at_least);
                    batch.events += item.events();
                    batch.slots.push(Slot::Queued(item));
                    self.in_flight.fetch_add(1, SeqCst);
                    if batch.events >= events {
                        return true;
                    }
                }
            }
        }
        true
    }

    /// Serializes a queued event as it will be sent (ids and defaults
    /// filled, so every attempt, and a dead letter, carries the same ids),
    /// or makes its dead letter when it cannot be sent. On the batch route
    /// its JSON is written at the end of `out`, and the unit's `flat.json`
    /// left for the caller to point at it.
    fn prepare(&self, item: Item, out: &mut Vec<u8>) -> Result<Unit, DeadLetter> {
        let batched = self.config.route == Route::EventBatch;
        let Item {
            session_id,
            event,
            json_at_least,
            ..
        } = item;
        let event = event.into_event();
        match (self.client).outgoing_for(batched, &session_id, event, json_at_least, out) {
            Ok(Outgoing { event_id, request }) => {
                let json = request.as_ref().map(|r| r.body.clone()).unwrap_or_default();
                let flat = Flat { json, event_id };
                Ok(Unit {
                    session_id,
                    flat,
                    request,
                })
            }
            Err(Refused { error, json: None }) => {
                Err(DeadLetter::unsent(&session_id, error.to_string()))
            }
            Err(Refused {
                error,
                json: Some((event, event_id)),
            }) => Err(DeadLetter {
                event_id: Some(event_id),
                event,
                ..DeadLetter::unsent(&session_id, error.to_string())
            }),
        }
    }

    /// A dead letter for a queued event, serialized as it would have been
    /// sent, with `reason`.
    pub(super) fn letter_for(&self, item: Item, reason: &str) -> DeadLetter {
        let mut out = Vec::new();
        match self.prepare(item, &mut out) {
            Ok(mut unit) => {
                if unit.request.is_none() {
                    unit.flat.json = out.into();
                }
                unit.letter(reason.to_owned())
            }
            Err(mut letter) => {
                letter.reason = format!("{reason} ({})", letter.reason);
                letter
            }
        }
    }

    /// Serializes the delivery's events, under its lock (a hand-back waits
    /// for it); on the batch route their JSON goes into one buffer, which
    /// their units share. An event that cannot be sent is settled as a dead
    /// letter.
    fn serialize(&self, delivery: &Delivery) {
        let mut batch = delivery.batch.lock();
        let (mut json, mut parts, mut letters) = (Vec::new(), Vec::new(), Vec::new());
        if self.config.route == Route::EventBatch {
            json.reserve(batch.bytes.saturating_mul(2).min(self.limits.bytes));
        }
        for (index, slot) in batch.slots.iter_mut().enumerate() {
            let Slot::Queued(item) = std::mem::replace(slot, Slot::Settled) else {
                continue;
            };
            let start = json.len();
            match self.prepare(item, &mut json) {
                Ok(unit) => parts.push((index, start..json.len(), unit)),
                Err(letter) => letters.push(letter),
            }
        }
        let json = bytes::Bytes::from(json);
        for (index, range, mut unit) in parts {
            if unit.request.is_none() {
                unit.flat.json = json.slice(range);
            }
            batch.slots[index] = Slot::Ready(unit);
        }
        drop(batch);
        self.in_flight.fetch_sub(letters.len(), SeqCst);
        self.hand_back(letters);
    }

    /// The request for the ready events of `range`, and how many there are;
    /// `None` when they are over the byte bound together (split them).
    fn request(&self, delivery: &Delivery, range: Range<usize>) -> Option<(Prepared, usize)> {
        let batch = delivery.batch.lock();
        let units = || batch.slots[range.clone()].iter().filter_map(Slot::ready);
        let count = units().count();
        if let (1, Some(prepared)) = (count, units().find_map(|unit| unit.request.as_ref())) {
            return Some((prepared.clone(), 1));
        }
        let bytes = units().fold(0, |bytes, unit| joined(bytes, unit.flat.json.len()));
        if count > 1 && bytes > self.limits.bytes {
            return None;
        }
        let flats = units().map(|unit| &unit.flat);
        Some((self.client.batch(flats), count))
    }

    /// Takes the ready events of `range` out of their slots, settled.
    fn take_ready(&self, delivery: &Delivery, range: Range<usize>) -> Vec<Unit> {
        let mut batch = delivery.batch.lock();
        let taken: Vec<Unit> = batch.slots[range]
            .iter_mut()
            .filter(|slot| matches!(slot, Slot::Ready(_)))
            .filter_map(|slot| match std::mem::replace(slot, Slot::Settled) {
                Slot::Ready(unit) => Some(unit),
                _ => None,
            })
            .collect();
        taken
    }

    /// Settles the ready events of `range` as sent, telling
    /// [`OutcomeSink::sent`](super::OutcomeSink::sent) of each before it counts
    /// as settled. A panic there must not leave an event unsettled.
    fn settle_sent(&self, delivery: &Delivery, range: Range<usize>, attempts: u32) {
        let units = self.take_ready(delivery, range);
        self.counters.sent.fetch_add(units.len() as u64, SeqCst);
        if let Some(outcomes) = &self.config.outcomes {
            for unit in &units {
                let sent = Sent {
                    session_id: &unit.session_id,
                    event_id: &unit.flat.event_id,
                    attempts,
                };
                let call = std::panic::AssertUnwindSafe(|| outcomes.sent(&sent));
                if std::panic::catch_unwind(call).is_err() {
                    warn_loss("the logger's OutcomeSink::sent panicked; the event was sent");
                }
            }
        }
        self.in_flight.fetch_sub(units.len(), SeqCst);
    }

    /// Settles the ready events of `range` as failed with `error`.
    fn settle_failed(&self, delivery: &Delivery, range: Range<usize>, error: &Error) {
        let letters: Vec<DeadLetter> = (self.take_ready(delivery, range).iter())
            .map(|unit| DeadLetter {
                status: error.status(),
                fix: error.fix(),
                ..unit.letter(error.to_string())
            })
            .collect();
        let count = letters.len();
        self.hand_back(letters);
        self.in_flight.fetch_sub(count, SeqCst);
    }

    /// Counts the letters as failed, keeps them for the next report, and
    /// queues them for the sink's thread.
    pub(super) fn hand_back(&self, letters: Vec<DeadLetter>) {
        self.counters.failed.fetch_add(letters.len() as u64, SeqCst);
        self.letters.hand_back(letters);
    }

    /// Hands back everything queued or in a delivery as dead letters with
    /// `reason`, then answers the flushes waiting for them. For shutdown,
    /// drop and a runtime that ended, once the state is `Stopped`. Returns
    /// how many events it handed back.
    pub(super) fn hand_back_unsettled(&self, reason: &str) -> usize {
        let mut letters = Vec::new();
        let mut markers = Vec::new();
        while let Popped::Entry(entry) = self.queue.pop_if(|_| true) {
            match entry {
                Entry::Event(item) => letters.push(self.letter_for(item, reason)),
                Entry::Flush(marker) => markers.push(marker),
            }
        }
        let deliveries = std::mem::take(&mut *self.deliveries.lock());
        let mut taken = 0;
        for delivery in &deliveries {
            let mut batch = delivery.batch.lock();
            for slot in &mut batch.slots {
                match std::mem::replace(slot, Slot::Settled) {
                    Slot::Queued(item) => letters.push(self.letter_for(item, reason)),
                    Slot::Ready(unit) => letters.push(unit.letter(reason.to_owned())),
                    Slot::Settled => continue,
                }
                taken += 1;
            }
            markers.append(&mut delivery.flushes.lock());
        }
        self.in_flight.fetch_sub(taken, SeqCst);
        let count = letters.len();
        self.hand_back(letters);
        drop(markers); // answered after their letters are in the report
        count
    }
}

/// Dropped with the dispatcher. When that happens before shutdown or drop
/// stopped the logger, the runtime running it has ended: the logger stops,
/// hands back what it held, and says so.
struct Dispatching(Arc<Shared>);

impl Drop for Dispatching {
    fn drop(&mut self) {
        let shared = &self.0;
        if !shared.stop(Life::RuntimeGone) {
            return; // shutdown or drop stopped it, and handed back
        }
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

/// The dispatcher, the one taker: with a place of the gate in hand, takes
/// the next request's events (one, or a batch that is not full waits up
/// to `linger` for more unless a flush wants it out) and starts its
/// delivery. `log` does not wake it per event: it looks at an empty queue
/// every `linger`; after 20 empty looks it dozes until the next `log`.
pub(super) async fn dispatch(shared: Arc<Shared>) {
    let _dispatching = Dispatching(Arc::clone(&shared));
    let mut deliveries = JoinSet::new();
    let mut empty_looks = 0u32;
    let wait = |time| tokio::time::timeout(time, shared.look.notified());
    loop {
        while deliveries.try_join_next().is_some() {}
        // At most `max_in_flight` deliveries hold events out of the queue's
        // bounds (those waiting out a backoff hold no place of the gate).
        while deliveries.len() >= shared.config.max_in_flight {
            let _ended = deliveries.join_next().await;
        }
        shared.sources.tick();
        let permit = shared.gate.acquire().await;
        let delivery = shared.register();
        if !shared.fill(&delivery) && !delivery.is_empty() && shared.life() == Life::Running {
            // Room for more: `linger` for them to come (a flush cuts it short).
            let _woken = wait(shared.config.linger).await;
            shared.fill(&delivery);
        }
        if delivery.is_empty() {
            shared.unregister(&delivery);
            drop((delivery, permit));
            empty_looks = empty_looks.saturating_add(1);
            if empty_looks < IDLE_LOOKS {
                let _woken = wait(shared.config.linger).await;
                continue;
            }
            // Said before the last look at the queue (both SeqCst, as
            // `queued` reads them in the other order): an event logged
            // meanwhile is seen here or wakes us.
            shared.dozing.store(true, SeqCst);
            if shared.queue.len() == 0 {
                let _woken = wait(IDLE_LOOK.max(shared.config.linger)).await;
            }
            shared.dozing.store(false, SeqCst);
            continue;
        }
        empty_looks = 0;
        deliveries.spawn(deliver(Arc::clone(&shared), delivery, permit));
    }
}

/// A delivery: serializes its events (a mask, the user's code, on tokio's
/// blocking pool), sends them and settles them; then it ends, and with it
/// the flushes it held.
async fn deliver(shared: Arc<Shared>, delivery: Arc<Delivery>, permit: Permit) {
    if shared.client.masks() {
        let (serializing, held) = (Arc::clone(&shared), Arc::clone(&delivery));
        // A runtime going away leaves the events where a hand-back finds them.
        if tokio::task::spawn_blocking(move || serializing.serialize(&held))
            .await
            .is_err()
        {
            return;
        }
    } else {
        shared.serialize(&delivery);
    }
    let all = 0..delivery.batch.lock().slots.len();
    send(&shared, &delivery, all, Some(permit), 0).await;
    shared.unregister(&delivery);
}

/// Sends the ready events of `range` in one request under the client's
/// retry policy and settles them. Events over the byte bound together go
/// as two halves; so does a batch refused whole for what one event may
/// hold (400, 413, 422), down to the one event refused. Halves go side by
/// side. `spent` is how many requests these events went out in before.
fn send<'a>(
    shared: &'a Shared,
    delivery: &'a Delivery,
    range: Range<usize>,
    permit: Option<Permit>,
    spent: u32,
) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
    Box::pin(async move {
        let halves = |range: &Range<usize>| {
            let mid = range.start + range.len() / 2;
            (range.start..mid, mid..range.end)
        };
        let (prepared, count) = match shared.request(delivery, range.clone()) {
            Some((_, 0)) => return,
            Some(request) => request,
            None => {
                let (first, second) = halves(&range);
                tokio::join!(
                    send(shared, delivery, first, permit, spent),
                    send(shared, delivery, second, None, spent)
                );
                return;
            }
        };
        let mut permit = permit;
        let (result, made) = (shared.client)
            .retrying(|attempt| attempt_once(shared, &prepared, attempt, permit.take()))
            .await;
        // A split half's first request sends its events again too.
        let again = made.saturating_sub(1) + u32::from(spent > 0);
        (shared.counters.retried).fetch_add(u64::from(again), SeqCst);
        let attempts = spent.saturating_add(made);
        match result {
            Ok(_answer) => shared.settle_sent(delivery, range, attempts),
            Err(Error::Api {
                status:
                    reqwest::StatusCode::BAD_REQUEST
                    | reqwest::StatusCode::PAYLOAD_TOO_LARGE
                    | reqwest::StatusCode::UNPROCESSABLE_ENTITY,
                ..
            }) if count > 1 => {
                let (first, second) = halves(&range);
                tokio::join!(
                    send(shared, delivery, first, None, attempts),
                    send(shared, delivery, second, None, attempts)
                );
            }
            Err(error) => shared.settle_failed(delivery, range, &error),
        }
    })
}

/// One attempt, under a place of the gate (the dispatcher's for a first
/// attempt; a retry or a split half waits for one, and that wait counts
/// against its deadline), whose answer the gate takes in.
async fn attempt_once(
    shared: &Shared,
    prepared: &Prepared,
    attempt: Attempt,
    permit: Option<Permit>,
) -> Verdict<Result<Answer, Error>> {
    let permit = match permit {
        Some(permit) => permit,
        None => shared.gate.acquire().await,
    };
    let Some(attempt) = attempt.after_wait(permit.started) else {
        return Verdict::Final(Err(Error::Timeout {
            elapsed: Duration::ZERO,
            attempts: attempt.number,
            attempt_timeout: attempt.timeout,
        }));
    };
    let verdict = shared.transport.attempt(prepared, attempt).await;
    let signal = match &verdict {
        Verdict::Final(_) => Signal::Answered,
        Verdict::Retryable { next, .. } if next.throttled => Signal::Throttled,
        Verdict::Retryable { .. } => Signal::BackPressure,
    };
    shared.gate.answered(permit, signal);
    match &verdict {
        Verdict::Retryable {
            outcome: Err(error),
            next,
        } if !attempt.last || next.throttled => {
            *shared.last_retried.lock() = Some(error.to_string());
            shared.retrying.store(true, SeqCst);
        }
        // An answer: whatever failed before has passed.
        Verdict::Final(Ok(_)) if shared.retrying.swap(false, SeqCst) => {
            *shared.last_retried.lock() = None;
        }
        _ => {}
    }
    match verdict {
        // The pace answers a 429 for every request: the throttled one
        // retries after its backoff, not its `Retry-After`.
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

#[cfg(test)]
mod tests;
