//! The dispatcher and the deliveries: taking events out of the queue,
//! sending them, settling them, handing back what fails.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::config::Sent;
use super::limit::{Limiter, Signal};
use super::queue::{Entry, Item, Queue};
use super::report::{LoggerReport, LoggerStats};
use super::{LoggerConfig, warn_loss};
use crate::client::{Prepared, finish};
use crate::retry::{Attempt, Verdict};
use crate::{Client, DeadLetter, Error, SessionId};

/// Why an event taken out of the queue as the logger stopped was not sent.
const STOPPED: &str = "the logger stopped before the event was delivered";

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

/// An event taken out of the queue and not yet settled.
struct Unsettled {
    session_id: SessionId,
    /// Shared with its delivery.
    prepared: Arc<Prepared>,
    /// Who settles it: its delivery while `Sending`; once `Settling`, its
    /// delivery has counted it (sent or failed) and is telling the
    /// `on_sent` callback or giving its dead letter to the sink.
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
    /// Flush markers taken out of the queue while another take was in
    /// progress: their number is fixed once no take is (see `take_next`).
    unnumbered: Vec<oneshot::Sender<()>>,
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

#[derive(Default)]
struct Letters {
    kept: Vec<DeadLetter>,
    omitted: u64,
}

/// Everything the logger's handles and tasks share.
pub(super) struct Shared {
    pub(super) client: Client,
    transport: Arc<dyn Transport>,
    pub(super) config: LoggerConfig,
    pub(super) queue: Queue,
    state: AtomicU8,
    /// Tells the dispatcher to look at the queue now (flush, shutdown, or
    /// the first `log` after it began dozing).
    look: Notify,
    /// The dispatcher is in its long idle wait.
    dozing: AtomicBool,
    /// One permit per delivery running (at most `max_in_flight`).
    slots: Arc<Semaphore>,
    /// Requests in flight, and the limit they are held to.
    limiter: Limiter,
    /// Takes in progress: counted in before a pop, out (under the in-flight
    /// lock) once the event taken is numbered.
    takers: AtomicUsize,
    in_flight: Mutex<InFlight>,
    pub(super) counters: Counters,
    letters: Mutex<Letters>,
    pub(super) warned_full: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data whole before anything in it
    // can panic, so a poisoned lock still guards consistent data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(super) fn new(client: Client, transport: Arc<dyn Transport>, config: LoggerConfig) -> Self {
        Shared {
            queue: Queue::new(config.max_queue_events, config.max_queue_bytes),
            slots: Arc::new(Semaphore::new(config.max_in_flight)),
            limiter: Limiter::new(config.max_in_flight, config.adaptive, Instant::now()),
            client,
            transport,
            config,
            state: AtomicU8::new(State::Running as u8),
            look: Notify::new(),
            dozing: AtomicBool::new(false),
            in_flight: Mutex::new(InFlight::default()),
            takers: AtomicUsize::new(0),
            counters: Counters::default(),
            letters: Mutex::new(Letters::default()),
            warned_full: AtomicBool::new(false),
        }
    }

    pub(super) fn state(&self) -> State {
        match self.state.load(Ordering::SeqCst) {
            0 => State::Running,
            1 => State::Closed,
            _ => State::Stopped,
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
    pub(super) fn request_flush(&self) -> oneshot::Receiver<()> {
        let (done, settled) = oneshot::channel();
        self.queue.push_flush(done);
        self.look.notify_one();
        settled
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
        }
    }

    /// A report with the dead letters since the last one.
    pub(super) fn report(&self, complete: bool) -> LoggerReport {
        let letters = std::mem::take(&mut *lock(&self.letters));
        LoggerReport {
            complete,
            stats: self.stats(),
            dead_letters: letters.kept,
            dead_letters_omitted: letters.omitted,
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

    /// The next event to send: taken out of the queue, serialized (outside
    /// any lock) and numbered. Called by the dispatcher and by deliveries
    /// that finished one event, so that under load an event goes from the
    /// queue to the wire in the task that will send it.
    ///
    /// Several tasks take at once, so a flush marker taken out by one may
    /// have events before it still being serialized by others. Each take is
    /// counted in (`takers`) before its pop and out, under the in-flight
    /// lock, once its event is numbered; a marker's number is fixed when the
    /// count reaches zero under that lock, so it is above every event taken
    /// out before it. Takes are synchronous, so the count soon does.
    fn take_next(&self) -> Next {
        self.takers.fetch_add(1, Ordering::SeqCst);
        let mut markers = Vec::new();
        let taken = loop {
            if self.state() == State::Stopped {
                break None;
            }
            match self.queue.pop() {
                None => break None,
                Some(Entry::Flush(done)) => markers.push(done),
                Some(Entry::Event(item)) => break Some(self.prepare(item)),
            }
        };
        let mut in_flight = lock(&self.in_flight);
        in_flight.unnumbered.append(&mut markers);
        let next = match taken {
            None => Next::Empty,
            Some(Err(letter)) => Next::Letter(letter),
            // Stopped while this take serialized: the hand-back ran without
            // this event, so it is a dead letter here.
            Some(Ok((session_id, prepared))) if self.state() == State::Stopped => {
                Next::Letter(letter(&session_id, &prepared, STOPPED.to_owned()))
            }
            Some(Ok((session_id, prepared))) => {
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
        };
        if self.takers.fetch_sub(1, Ordering::SeqCst) == 1 && !in_flight.unnumbered.is_empty() {
            let target = in_flight.next;
            let numbered = std::mem::take(&mut in_flight.unnumbered);
            in_flight
                .flushes
                .extend(numbered.into_iter().map(|done| (target, done)));
            settle_flushes(&mut in_flight);
        }
        next
    }

    /// Waits until no take is in progress (after `Stopped`, none starts).
    /// Takes never await and last microseconds on another thread, so this
    /// spins on the calling thread, in `Drop` and in `shutdown` alike.
    pub(super) fn takes_done(&self) {
        while self.takers.load(Ordering::SeqCst) > 0 {
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

    async fn settle_failed(&self, seq: u64, error: &Error) {
        let letter = {
            let mut in_flight = lock(&self.in_flight);
            match in_flight.events.get_mut(&seq) {
                Some(entry) if entry.phase == Phase::Sending => {
                    entry.phase = Phase::Settling;
                    DeadLetter {
                        status: error.status(),
                        ..letter(&entry.session_id, &entry.prepared, error.to_string())
                    }
                }
                // Handed back by shutdown already.
                _ => return,
            }
        };
        // In the report and the sink before the event counts as settled, so
        // a flush that returns has every failure in its report.
        self.hand_back(vec![letter]).await;
        let mut in_flight = lock(&self.in_flight);
        in_flight.events.remove(&seq);
        settle_flushes(&mut in_flight);
    }

    /// Counts the letters as failed, keeps them for the next report, and
    /// gives them to the sink on a blocking thread.
    pub(super) async fn hand_back(&self, letters: Vec<DeadLetter>) {
        let Some(sink) = self.keep(&letters) else {
            return;
        };
        let written = tokio::task::spawn_blocking(move || {
            for letter in &letters {
                sink.accept(letter);
            }
        })
        .await;
        if written.is_err() {
            warn_loss("a dead-letter sink panicked; the letters are still in the next report");
        }
    }

    /// [`hand_back`](Self::hand_back) without a runtime: the sink is called
    /// on this thread. For `Drop`.
    pub(super) fn hand_back_here(&self, letters: &[DeadLetter]) {
        if let Some(sink) = self.keep(letters) {
            for letter in letters {
                sink.accept(letter);
            }
        }
    }

    /// Counts and keeps the letters; gives the sink, if any.
    fn keep(&self, letters: &[DeadLetter]) -> Option<Arc<dyn crate::DeadLetterSink>> {
        self.counters
            .failed
            .fetch_add(letters.len() as u64, Ordering::SeqCst);
        let mut kept = lock(&self.letters);
        for letter in letters {
            if kept.kept.len() < self.config.max_report_letters {
                kept.kept.push(letter.clone());
            } else {
                kept.omitted += 1;
            }
        }
        self.config.dead_letters.clone()
    }

    /// Takes everything queued or in flight out of the logger as dead
    /// letters with `reason`: queued events serialized as they would have
    /// been sent, in-flight ones with the body they were sent with. For
    /// shutdown and drop, after the state is `Stopped`.
    pub(super) fn take_unsettled(&self, reason: &str) -> Vec<DeadLetter> {
        let mut letters = Vec::new();
        while let Some(entry) = self.queue.pop() {
            match entry {
                Entry::Event(item) => letters.push(match self.prepare(item) {
                    Ok((session_id, prepared)) => letter(&session_id, &prepared, reason.to_owned()),
                    Err(mut letter) => {
                        letter.reason = format!("{reason} ({})", letter.reason);
                        letter
                    }
                }),
                // Its flush gives up: the logger is stopping.
                Entry::Flush(_) => {}
            }
        }
        let mut in_flight = lock(&self.in_flight);
        in_flight.unnumbered.clear();
        for (_, entry) in std::mem::take(&mut in_flight.events) {
            // A letter its delivery is handing back was counted then.
            if entry.phase == Phase::Sending {
                letters.push(letter(
                    &entry.session_id,
                    &entry.prepared,
                    reason.to_owned(),
                ));
            }
        }
        settle_flushes(&mut in_flight);
        letters
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

/// The dispatcher: while events wait and fewer than `max_in_flight`
/// deliveries run, starts one. `log` does not wake it per event: it looks
/// at an empty queue every `linger`; after 20 empty looks it dozes, and the
/// first `log` (or flush, or shutdown) wakes it.
pub(super) async fn dispatch(shared: Arc<Shared>) {
    let mut deliveries = JoinSet::new();
    let mut empty_looks = 0u32;
    loop {
        while deliveries.try_join_next().is_some() {}
        let Ok(slot) = Arc::clone(&shared.slots).acquire_owned().await else {
            return;
        };
        if !shared.limiter.has_room() {
            // As many requests are in flight as the limit allows: the
            // deliveries running take the queue's events; a rise of the
            // limit wakes us to start another.
            drop(slot);
            let _woken = tokio::time::timeout(shared.config.linger, shared.look.notified()).await;
            continue;
        }
        match shared.take_next() {
            Next::Event(seq, prepared) => {
                empty_looks = 0;
                deliveries.spawn(deliver(Arc::clone(&shared), seq, prepared, slot));
            }
            Next::Letter(letter) => shared.hand_back(vec![letter]).await,
            Next::Empty => {
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

/// A delivery: sends an event under the client's retry policy, settles
/// it, then takes the next one itself while the queue has any, as a
/// hand-written loop would, with no hop through the dispatcher. Holds one
/// of the `max_in_flight` slots until the queue is empty; each request
/// holds one of the limiter's permits.
async fn deliver(
    shared: Arc<Shared>,
    mut seq: u64,
    mut prepared: Arc<Prepared>,
    _slot: OwnedSemaphorePermit,
) {
    loop {
        let (result, tally) = shared
            .client
            .retry_policy()
            .run(shared.client.attempt_timeout(), |attempt| {
                paced(&shared, &prepared, attempt)
            })
            .await;
        shared.counters.retried.fetch_add(
            u64::from(tally.attempts.saturating_sub(1)),
            Ordering::SeqCst,
        );
        match finish(result, tally) {
            Ok(logged) => shared.settle_sent(seq, logged.attempts),
            Err(error) => shared.settle_failed(seq, &error).await,
        }
        (seq, prepared) = loop {
            match shared.take_next() {
                Next::Event(seq, prepared) => break (seq, prepared),
                Next::Letter(letter) => shared.hand_back(vec![letter]).await,
                Next::Empty => return,
            }
        };
    }
}

/// One attempt: after the logger's pause (if a server asked for one), with
/// a permit of the in-flight limit, and its answer fed to the limiter. A
/// `Retry-After` pauses every delivery, not only this one.
async fn paced(
    shared: &Shared,
    prepared: &Prepared,
    attempt: Attempt,
) -> Verdict<Result<String, Error>> {
    // The permit first: requests queued for one look at the pause when
    // their turn comes, not before.
    let permit = shared.limiter.acquire().await;
    while let Some(until) = shared.limiter.paused_until(Instant::now()) {
        tokio::time::sleep_until(until).await;
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
    let signal = match &verdict {
        Verdict::Final(_) => Signal::Answered,
        Verdict::Retryable { next, .. } => {
            if let Some(after) = next.retry_after {
                let after = after.min(shared.client.retry_policy().max_retry_after());
                if let Some(until) = now.checked_add(after) {
                    shared.limiter.pause(until);
                }
            }
            Signal::BackPressure
        }
    };
    if shared
        .limiter
        .observe(now, now - started, signal, in_flight)
    {
        shared.look.notify_one();
    }
    verdict
}

#[cfg(test)]
mod tests;
