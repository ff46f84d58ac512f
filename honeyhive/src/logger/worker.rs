//! The dispatcher and the deliveries: the one task that takes events out
//! of the queue, in order, and the tasks that send them, settle them and
//! hand back what fails.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::config::Sent;
use super::letters::{Letters, Taken};
use super::limit::{Limiter, Signal};
use super::queue::{Entry, Item, Queue};
use super::rate::SendRate;
use super::report::{LoggerReport, LoggerStats};
use super::{LoggerConfig, warn_loss};
use crate::client::{Prepared, finish};
use crate::retry::{Attempt, Verdict};
use crate::{Client, DeadLetter, Error, SessionId};

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
    Pin<Box<dyn Future<Output = Verdict<Result<String, Error>>> + Send + 'a>>;

/// Sends one attempt of a prepared event: the [`Client`] in use, a script
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

/// What [`Shared::take_next`] found.
enum Next {
    Event(u64, Arc<Prepared>),
    /// An event that cannot be sent (too large, or the logger stopped).
    Letter(DeadLetter),
    Empty,
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
    session_id: SessionId,
    /// Shared with its delivery.
    prepared: Arc<Prepared>,
    /// Who settles it: its delivery while `Sending`; once `Settling`, its
    /// delivery has counted it (sent or failed) and is telling the
    /// `on_sent` callback.
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
    events: BTreeMap<u64, Unsettled>,
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
    slots: Arc<Semaphore>,
    /// Requests in flight, and the limit they are held to.
    limiter: Limiter,
    /// The send rate, once a server throttled.
    rate: SendRate,
    /// The dispatcher is taking an event out of the queue (see
    /// [`takes_done`](Self::takes_done)).
    taking: AtomicBool,
    in_flight: Mutex<InFlight>,
    pub(super) counters: Counters,
    pub(super) letters: Letters,
    pub(super) warned_full: AtomicBool,
    #[cfg(feature = "tracing")]
    pub(super) sources: super::Sources,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data whole before anything in it
    // can panic, so a poisoned lock still guards consistent data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(super) fn new(client: Client, transport: Arc<dyn Transport>, config: LoggerConfig) -> Self {
        let now = Instant::now();
        Shared {
            queue: Queue::new(config.max_queue_events, config.max_queue_bytes),
            slots: Arc::new(Semaphore::new(config.max_in_flight)),
            limiter: Limiter::new(config.max_in_flight, config.adaptive, now),
            rate: SendRate::new(now),
            letters: Letters::new(config.dead_letters.clone(), config.max_report_letters),
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
        let in_flight = lock(&self.in_flight).events.len();
        let c = &self.counters;
        LoggerStats {
            enqueued: self.queue.accepted(),
            sent: c.sent.load(Ordering::SeqCst),
            retried: c.retried.load(Ordering::SeqCst),
            failed: c.failed.load(Ordering::SeqCst),
            dropped: c.dropped.load(Ordering::SeqCst),
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

    /// Serializes a queued event as it will be sent (ids and defaults
    /// filled, so a dead letter carries the exact body). An event that
    /// cannot be sent (over the size limit) is a dead letter at once.
    fn prepare(&self, item: Item) -> Result<(SessionId, Prepared), DeadLetter> {
        let Item {
            session_id,
            event,
            json_at_least,
            ..
        } = item;
        match self
            .client
            .serialize(&session_id, event.into_event(), json_at_least)
        {
            Ok(prepared) => match self.client.check_size(&prepared) {
                Ok(()) => Ok((session_id, prepared)),
                Err(error) => Err(letter(&session_id, &prepared, error.to_string())),
            },
            // `log` refused invalid input and the generated types always
            // serialize, so nothing gets here; it must still be handed back.
            Err(error) => Err(DeadLetter::unsent(&session_id, error.to_string())),
        }
    }

    /// The next event to send: taken out of the queue, serialized and
    /// numbered. Only the dispatcher takes, so events are numbered in
    /// queue order, and a flush marker taken out is numbered after every
    /// event before it.
    ///
    /// Shutdown and drop set `Stopped`, then wait for a take in progress
    /// to end ([`takes_done`](Self::takes_done)) before they empty the
    /// queue: a take sets `taking` before it looks at the state, so one of
    /// the two sees the other. A take that finds the logger stopped after
    /// it serialized hands its event back itself.
    fn take_next(&self) -> Next {
        self.taking.store(true, Ordering::SeqCst);
        let taken = loop {
            if self.state() == State::Stopped {
                break None;
            }
            match self.queue.pop() {
                None => break None,
                Some(Entry::Flush(done)) => {
                    let mut in_flight = lock(&self.in_flight);
                    let target = in_flight.next;
                    in_flight.flushes.push((target, done));
                    settle_flushes(&mut in_flight);
                }
                Some(Entry::Event(item)) => break Some(self.prepare(item)),
            }
        };
        let next = match taken {
            None => Next::Empty,
            Some(Err(letter)) => Next::Letter(letter),
            Some(Ok((session_id, prepared))) => {
                let mut in_flight = lock(&self.in_flight);
                if self.state() == State::Stopped {
                    // Stopped while this take serialized: the hand-back ran
                    // (or runs) without this event.
                    Next::Letter(letter(&session_id, &prepared, STOPPED.to_owned()))
                } else {
                    let prepared = Arc::new(prepared);
                    let seq = in_flight.next;
                    in_flight.next += 1;
                    let entry = Unsettled {
                        session_id,
                        prepared: Arc::clone(&prepared),
                        phase: Phase::Sending,
                    };
                    in_flight.events.insert(seq, entry);
                    Next::Event(seq, prepared)
                }
            }
        };
        self.taking.store(false, Ordering::SeqCst);
        next
    }

    /// Waits until no take is in progress (after `Stopped`, none starts).
    /// A take never awaits and lasts microseconds on another thread, so
    /// this spins on the calling thread, in `Drop` and in `shutdown` alike.
    pub(super) fn takes_done(&self) {
        while self.taking.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
    }

    fn settle_sent(&self, seq: u64, attempts: u32) {
        if let Some(on_sent) = &self.config.on_sent {
            let (session_id, prepared) = {
                let mut in_flight = lock(&self.in_flight);
                match in_flight.events.get_mut(&seq) {
                    Some(entry) if entry.phase == Phase::Sending => {
                        entry.phase = Phase::Settling;
                        self.counters.sent.fetch_add(1, Ordering::SeqCst);
                        (entry.session_id.clone(), Arc::clone(&entry.prepared))
                    }
                    // Handed back by shutdown already.
                    _ => return,
                }
            };
            // Outside the lock; before the event counts as settled, so a
            // flush that returns has seen every callback. A panic in it must
            // not leave the event unsettled (a flush would wait forever).
            let sent = Sent {
                session_id: session_id.as_str(),
                event_id: &prepared.event_id,
                attempts,
            };
            let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| on_sent(&sent)));
            if called.is_err() {
                warn_loss("the logger's on_sent callback panicked; the event was sent");
            }
            let mut in_flight = lock(&self.in_flight);
            in_flight.events.remove(&seq);
            settle_flushes(&mut in_flight);
            return;
        }
        let mut in_flight = lock(&self.in_flight);
        // Gone when shutdown handed it back first; it counts as failed then.
        if in_flight.events.remove(&seq).is_some() {
            self.counters.sent.fetch_add(1, Ordering::SeqCst);
            settle_flushes(&mut in_flight);
        }
    }

    fn settle_failed(&self, seq: u64, error: &Error) {
        let mut in_flight = lock(&self.in_flight);
        let letter = match in_flight.events.remove(&seq) {
            Some(entry) if entry.phase == Phase::Sending => DeadLetter {
                status: error.status(),
                ..letter(&entry.session_id, &entry.prepared, error.to_string())
            },
            // Handed back by shutdown already.
            _ => return,
        };
        // In the report before the event counts as settled, so a flush
        // that returns has every failure in its report (and waits for the
        // sink to take it).
        self.hand_back(vec![letter]);
        settle_flushes(&mut in_flight);
    }

    /// Counts the letters as failed, keeps them for the next report, and
    /// queues them for the sink's thread.
    pub(super) fn hand_back(&self, letters: Vec<DeadLetter>) {
        self.counters
            .failed
            .fetch_add(letters.len() as u64, Ordering::SeqCst);
        self.letters.hand_back(letters);
    }

    /// Hands back everything queued or in flight as dead letters with
    /// `reason`: queued events serialized as they would have been sent,
    /// in-flight ones with the body they were sent with; then answers the
    /// flushes waiting (their events are settled now). For shutdown, drop
    /// and a runtime that ended, after the state is `Stopped`. Returns how
    /// many events it handed back.
    pub(super) fn hand_back_unsettled(&self, reason: &str) -> usize {
        let mut letters = Vec::new();
        let mut markers = Vec::new();
        while let Some(entry) = self.queue.pop() {
            match entry {
                Entry::Event(item) => letters.push(match self.prepare(item) {
                    Ok((session_id, prepared)) => letter(&session_id, &prepared, reason.to_owned()),
                    Err(mut letter) => {
                        letter.reason = format!("{reason} ({})", letter.reason);
                        letter
                    }
                }),
                Entry::Flush(done) => markers.push(done),
            }
        }
        let mut in_flight = lock(&self.in_flight);
        for (_, entry) in std::mem::take(&mut in_flight.events) {
            // One its delivery is settling was counted then.
            if entry.phase == Phase::Sending {
                letters.push(letter(
                    &entry.session_id,
                    &entry.prepared,
                    reason.to_owned(),
                ));
            }
        }
        let count = letters.len();
        self.hand_back(letters);
        settle_flushes(&mut in_flight);
        drop(in_flight);
        for done in markers {
            let _answered = done.send(());
        }
        count
    }
}

/// Answers the flushes whose events are all settled: a flush numbered
/// `target` waits for every event numbered below it.
fn settle_flushes(in_flight: &mut InFlight) {
    let oldest = in_flight
        .events
        .keys()
        .next()
        .copied()
        .unwrap_or(in_flight.next);
    while let Some(at) = in_flight
        .flushes
        .iter()
        .position(|(target, _)| *target <= oldest)
    {
        let (_, done) = in_flight.flushes.swap_remove(at);
        // The flush may have timed out and gone: nothing to tell then.
        let _answered = done.send(());
    }
}

/// A dead letter for a serialized event.
fn letter(session_id: &SessionId, prepared: &Prepared, reason: String) -> DeadLetter {
    DeadLetter {
        session_id: session_id.as_str().to_owned(),
        event_id: Some(prepared.event_id.clone()),
        event: prepared.body.clone(),
        reason,
        status: None,
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
            let kept = if shared.config.dead_letters.is_some() {
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
/// `max_in_flight` deliveries run, takes the next one, waits for its place
/// at the send rate (once a server throttled) and starts its delivery.
/// `log` does not wake it per event: it looks at an empty queue every
/// `linger`; after 20 empty looks it dozes, and the first `log` (or flush,
/// or shutdown) wakes it.
pub(super) async fn dispatch(shared: Arc<Shared>) {
    let _dispatching = Dispatching(Arc::clone(&shared));
    let mut deliveries = JoinSet::new();
    let mut empty_looks = 0u32;
    loop {
        while deliveries.try_join_next().is_some() {}
        #[cfg(feature = "tracing")]
        shared.sources.tick();
        let Ok(slot) = Arc::clone(&shared.slots).acquire_owned().await else {
            return;
        };
        let Some(permit) = shared.limiter.try_acquire() else {
            // As many requests are in flight as the limit allows; a rise of
            // the limit wakes us to start another.
            drop(slot);
            let _woken = tokio::time::timeout(shared.config.linger, shared.look.notified()).await;
            continue;
        };
        match shared.take_next() {
            Next::Event(seq, prepared) => {
                empty_looks = 0;
                // The first attempt's place at the send rate, taken with its
                // place in flight (so it goes out when its turn comes, not
                // with others that waited for a place) and before its retry
                // clock starts: waiting for the rate uses no deadline.
                shared.rate.wait().await;
                let delivery = deliver(Arc::clone(&shared), seq, prepared, slot, permit);
                deliveries.spawn(delivery);
            }
            Next::Letter(letter) => {
                shared.limiter.release(Some(permit));
                shared.hand_back(vec![letter]);
            }
            Next::Empty => {
                shared.limiter.release(Some(permit));
                drop(slot);
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
                if shared.queue.len() == 0 {
                    let wait = IDLE_LOOK.max(shared.config.linger);
                    let _woken = tokio::time::timeout(wait, shared.look.notified()).await;
                }
                shared.dozing.store(false, Ordering::SeqCst);
            }
        }
    }
}

/// A delivery: sends one event under the client's retry policy and settles
/// it. Holds one of the `max_in_flight` slots until then; each request
/// holds one of the limiter's permits (the first, the one the dispatcher
/// took for it).
async fn deliver(
    shared: Arc<Shared>,
    seq: u64,
    prepared: Arc<Prepared>,
    _slot: OwnedSemaphorePermit,
    first_permit: OwnedSemaphorePermit,
) {
    let mut first_permit = Some(first_permit);
    let (result, tally) = shared
        .client
        .retry_policy()
        .run(shared.client.attempt_timeout(), |attempt| {
            paced(&shared, &prepared, attempt, first_permit.take())
        })
        .await;
    shared.counters.retried.fetch_add(
        u64::from(tally.attempts.saturating_sub(1)),
        Ordering::SeqCst,
    );
    match finish(result, tally) {
        Ok(logged) => shared.settle_sent(seq, logged.attempts),
        Err(error) => shared.settle_failed(seq, &error),
    }
}

/// One attempt: a permit of the in-flight limit; a retry then takes its
/// place at the send rate; the answer is fed to both. A 429 tells
/// the send rate (the retry loop waits its `Retry-After` for this event
/// alone); other answers worth a retry are back-pressure on the limit.
async fn paced(
    shared: &Shared,
    prepared: &Prepared,
    attempt: Attempt,
    permit: Option<OwnedSemaphorePermit>,
) -> Verdict<Result<String, Error>> {
    let permit = match permit {
        Some(permit) => Some(permit),
        None => shared.limiter.acquire().await,
    };
    // A retry's place at the send rate, taken right before it is sent (a
    // place taken before a wait for the permit would let retries that
    // waited out together go out together). A first attempt took its
    // place before its delivery started.
    if attempt.number > 1 {
        shared.rate.wait().await;
    }
    let started = Instant::now();
    // The wait counts against the event's deadline: a request never
    // starts with less than the least attempt left.
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

#[cfg(test)]
mod tests;
