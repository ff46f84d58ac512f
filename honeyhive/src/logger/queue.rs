//! The queue between [`Logger::log`](super::Logger::log) and the
//! dispatcher: crossbeam's lock-free `SegQueue`, bounded by two counters.
//!
//! `log` reserves room in the counters (a compare-and-swap each), then
//! pushes; the dispatcher pops and gives the room back. Neither waits for
//! the other, and `log` wakes nobody. Flush markers travel in the same
//! queue, behind the events logged before them.

use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_queue::SegQueue;
use tokio::sync::{Notify, oneshot};

use crate::{Event, SessionId};

/// An event waiting to be sent.
pub(super) struct Item {
    pub(super) session_id: SessionId,
    pub(super) event: Event,
    /// What the item counts against the byte bound.
    pub(super) footprint: usize,
}

/// What the queue holds. Nearly every entry is an event, so the rare small
/// marker costs nothing, and boxing events would cost `log` an allocation.
#[allow(clippy::large_enum_variant)]
pub(super) enum Entry {
    Event(Item),
    /// A flush: everything before it has been taken once it is popped;
    /// the dispatcher answers when those are settled.
    Flush(oneshot::Sender<()>),
}

/// Bytes an item takes in the queue besides its contents: its slot, and
/// the slot's state word and share of the block.
pub(super) const SLOT: usize = std::mem::size_of::<Entry>() + 16;

pub(super) struct Queue {
    entries: SegQueue<Entry>,
    /// Events and estimated bytes held now.
    events: AtomicUsize,
    bytes: AtomicUsize,
    max_events: usize,
    max_bytes: usize,
    /// `log_wait` callers waiting for room, and how they are woken.
    waiting: AtomicUsize,
    room: Notify,
}

impl Queue {
    pub(super) fn new(max_events: usize, max_bytes: usize) -> Self {
        Queue {
            entries: SegQueue::new(),
            events: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            max_events,
            max_bytes,
            waiting: AtomicUsize::new(0),
            room: Notify::new(),
        }
    }

    /// Queues `item`, or gives it back when the bounds have no room for it.
    ///
    /// At the bound, calls racing each other may refuse an event that a
    /// lone caller would have got in (one's reservation is seen by the
    /// other before it is taken back); the bounds themselves always hold.
    // The item comes back by value: boxing it would allocate on every
    // refusal, before `refused` boxes just the event anyway.
    #[allow(clippy::result_large_err)]
    pub(super) fn push(&self, item: Item) -> Result<(), Item> {
        let taken = self
            .events
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.max_events).then_some(n + 1)
            })
            .is_ok();
        if !taken {
            return Err(item);
        }
        let fits = self
            .bytes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                b.checked_add(item.footprint)
                    .filter(|&t| t <= self.max_bytes)
            })
            .is_ok();
        if !fits {
            self.events.fetch_sub(1, Ordering::SeqCst);
            return Err(item);
        }
        self.entries.push(Entry::Event(item));
        Ok(())
    }

    /// Queues a flush marker (outside the bounds).
    pub(super) fn push_flush(&self, done: oneshot::Sender<()>) {
        self.entries.push(Entry::Flush(done));
    }

    /// The oldest entry; an event's room goes back to the bounds.
    pub(super) fn pop(&self) -> Option<Entry> {
        let entry = self.entries.pop()?;
        if let Entry::Event(item) = &entry {
            self.release(item.footprint);
        }
        Some(entry)
    }

    /// Events queued now.
    pub(super) fn len(&self) -> usize {
        self.events.load(Ordering::SeqCst)
    }

    fn release(&self, footprint: usize) {
        self.bytes.fetch_sub(footprint, Ordering::SeqCst);
        self.events.fetch_sub(1, Ordering::SeqCst);
        // Read after the room is given back (SeqCst), so a waiter that
        // counted itself after this read sees the room; one that counted
        // itself before is woken. See the module docs of `logger`.
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.room.notify_waiters();
        }
    }

    /// Pushes `item`, waiting for room while `open()` holds; gives it back
    /// when the logger closes, or when it is larger than the whole byte
    /// bound (no amount of waiting makes it fit).
    #[allow(clippy::result_large_err)]
    pub(super) async fn push_waiting(
        &self,
        mut item: Item,
        open: impl Fn() -> bool,
    ) -> Result<(), Item> {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before looking, so a release after the look wakes us.
            room.as_mut().enable();
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let pushed = if open() && item.footprint <= self.max_bytes {
                self.push(item)
            } else {
                Err(item)
            };
            match pushed {
                Ok(()) => {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Ok(());
                }
                Err(back) if !open() || back.footprint > self.max_bytes => {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(back);
                }
                Err(back) => item = back,
            }
            room.await;
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Wakes every `log_wait` caller, to look at the logger's state again.
    pub(super) fn wake_waiters(&self) {
        self.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(footprint: usize) -> Item {
        Item {
            session_id: SessionId::from("s"),
            event: Event::tool("t"),
            footprint,
        }
    }

    #[test]
    fn both_bounds_hold_and_popping_gives_room_back() {
        let queue = Queue::new(3, 100);
        assert!(queue.push(item(40)).is_ok());
        assert!(queue.push(item(40)).is_ok());
        assert!(queue.push(item(40)).is_err(), "120 bytes > 100");
        assert!(queue.push(item(20)).is_ok());
        assert!(queue.push(item(0)).is_err(), "3 events");
        assert_eq!(queue.len(), 3);
        assert!(matches!(queue.pop(), Some(Entry::Event(i)) if i.footprint == 40));
        assert!(queue.push(item(40)).is_ok(), "room came back");
        assert_eq!(queue.len(), 3);
    }

    #[test]
    fn flush_markers_keep_their_place_and_take_no_room() {
        let queue = Queue::new(1, 100);
        queue.push(item(1)).unwrap_or_else(|_| panic!("room"));
        let (done, _wait) = oneshot::channel();
        queue.push_flush(done);
        assert!(matches!(queue.pop(), Some(Entry::Event(_))));
        assert!(matches!(queue.pop(), Some(Entry::Flush(_))));
        assert!(queue.pop().is_none());
        assert_eq!(queue.len(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_push_is_woken_by_every_release_and_never_misses_one() {
        // Many rounds of: a full queue, a waiter, a release on another
        // thread racing the waiter's look. A missed wake-up hangs a round.
        let queue = std::sync::Arc::new(Queue::new(1, usize::MAX));
        for round in 0..2_000 {
            queue
                .push(item(1))
                .unwrap_or_else(|_| panic!("round {round}: room"));
            let popper = std::sync::Arc::clone(&queue);
            let pop = std::thread::spawn(move || {
                while popper.pop().is_none() {
                    std::hint::spin_loop();
                }
            });
            let waited = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                queue.push_waiting(item(1), || true),
            )
            .await;
            assert!(
                matches!(waited, Ok(Ok(()))),
                "round {round}: the waiter missed its wake-up"
            );
            pop.join().unwrap();
            assert!(queue.pop().is_some());
        }
    }
}
