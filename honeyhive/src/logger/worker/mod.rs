//! The dispatcher and the deliveries: the one task that takes events out
//! of the queue, in order, into requests (one event each, or batches)
//! (`dispatch.rs`), and the tasks that send those and settle their events
//! (`delivery.rs`); here, what they share. See the module docs of `logger`
//! for the protocols.

mod delivery;
mod dispatch;

use parking_lot::Mutex;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering::SeqCst};

use tokio::sync::{Notify, oneshot};

use super::config::Route;
use super::gate::Gate;
use super::letters::{Letters, Taken};
use super::queue::Queue;
use super::report::{LoggerReport, LoggerStats};
use super::{LoggerConfig, Sources};
use crate::client::{Answer, Prepared};
use crate::retry::{Attempt, Verdict};
use crate::{client::Client, dead_letter::DeadLetter, error::Error};
use delivery::Delivery;
pub(super) use dispatch::dispatch;

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

    /// Counts the letters as failed, keeps them for the next report, and
    /// queues them for the sink's thread.
    pub(super) fn hand_back(&self, letters: Vec<DeadLetter>) {
        self.counters.failed.fetch_add(letters.len() as u64, SeqCst);
        self.letters.hand_back(letters);
    }
}

#[cfg(test)]
mod tests;
