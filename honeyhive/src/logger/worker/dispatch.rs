//! The dispatcher, the one task that takes events out of the queue.

use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use tokio::task::JoinSet;

use super::delivery::{Delivery, Slot, deliver};
use super::{Life, Limits, Shared};
use crate::flat::joined;
use crate::logger::queue::{Entry, Popped};
use crate::logger::warn_loss;

/// Why events were handed back when the runtime running the logger ended.
const RUNTIME_GONE: &str = "the tokio runtime running the Logger shut down before \
     the event was delivered; keep that runtime running as long as the Logger, or start the \
     Logger on a runtime that lives as long as the program";

/// Empty looks at the queue after which the dispatcher dozes.
const IDLE_LOOKS: u32 = 20;
/// How often a dozing dispatcher looks (or every `linger`, if longer).
const IDLE_LOOK: Duration = Duration::from_millis(100);

impl Shared {
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
pub(in crate::logger) async fn dispatch(shared: Arc<Shared>) {
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
