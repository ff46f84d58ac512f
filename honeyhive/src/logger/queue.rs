//! The queue between [`Logger::log`](super::Logger::log) and the tasks that
//! send: tokio's unbounded channel, bounded by two of tokio's semaphores
//! (room for events, room for bytes).
//!
//! `log` takes permits of both (a compare-and-swap each), then sends;
//! takers receive and give the permits back. Neither waits for the other;
//! `log_wait` waits for permits as tokio's semaphore queues waiters, so no
//! wake-up can be missed. Flush markers travel in the same queue, behind
//! the events logged before them.
//!
//! Why tokio's channel: it recycles its blocks of slots, so a queue that
//! stays short does not allocate.

use parking_lot::Mutex;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::task::{Context, Poll, Waker};

use tokio::sync::{Semaphore, SemaphorePermit, mpsc, oneshot};

use crate::{event::Event, session::SessionId};

/// An event waiting to be sent.
pub(super) struct Item {
    pub(super) session_id: SessionId,
    pub(super) event: Payload,
    /// What the item counts against the byte bound.
    pub(super) footprint: usize,
    /// The least its JSON takes: a size hint for serializing it.
    pub(super) json_at_least: usize,
}

/// A queued event: built, or built by whoever takes it out of the queue
/// (the task that sends it, or a refusal that hands it back), so that the
/// work of building it is not done on the thread that logged it (the
/// `tracing` layer's trees). Not boxed, for the same reason as [`Entry`].
#[allow(clippy::large_enum_variant)]
pub(crate) enum Payload {
    Ready(Event),
    Later(Box<dyn FnOnce() -> Event + Send>),
}

impl Payload {
    pub(super) fn into_event(self) -> Event {
        match self {
            Payload::Ready(event) => event,
            Payload::Later(make) => make(),
        }
    }
}

impl Item {
    /// How many events it holds (a tree's nodes); 1 for one built later.
    pub(super) fn events(&self) -> usize {
        fn count(event: &crate::api::types::Event) -> usize {
            1 + event.children.iter().map(count).sum::<usize>()
        }
        match &self.event {
            Payload::Ready(event) => count(event.as_api()),
            Payload::Later(_) => 1,
        }
    }
}

/// A flush marker: the flush is answered when the last clone is dropped
/// (its receiver then reads the channel closed).
pub(super) type Marker = Arc<oneshot::Sender<()>>;

/// What the queue holds. Nearly every entry is an event, so the rare small
/// marker costs nothing, and boxing events would cost `log` an allocation.
#[allow(clippy::large_enum_variant)]
pub(super) enum Entry {
    Event(Item),
    /// A flush: everything before it has been taken once it is popped.
    Flush(Marker),
}

/// What [`Queue::pop_if`] found (moved once, not boxed: see [`Entry`]).
#[allow(clippy::large_enum_variant)]
pub(super) enum Popped {
    Entry(Entry),
    /// The next entry did not pass; it stays first.
    Refused,
    Empty,
}

/// Bytes an item takes in the queue besides its contents: its slot, and
/// the slot's state word and share of the block.
pub(super) const ENTRY_BYTES: usize = std::mem::size_of::<Entry>() + 16;

pub(super) struct Queue {
    sender: mpsc::UnboundedSender<Entry>,
    /// Takers share the one receiver, and an entry looked at and left first.
    receiver: Mutex<(mpsc::UnboundedReceiver<Entry>, Option<Entry>)>,
    /// Room for events and for bytes: a push takes permits of both, a pop
    /// gives them back, and a waiting push waits for them in turn.
    events: Semaphore,
    bytes: Semaphore,
    max_events: usize,
    max_bytes: usize,
    /// Events ever sent in, and taken out (sequentially consistent: see
    /// [`holds_events`](Self::holds_events)).
    accepted: AtomicU64,
    taken: AtomicU64,
}

impl Queue {
    /// A queue holding at most `max_events` events and `max_bytes` of
    /// footprints (each capped at tokio's `Semaphore::MAX_PERMITS`).
    pub(super) fn new(max_events: usize, max_bytes: usize) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let (max_events, max_bytes) = (
            max_events.min(Semaphore::MAX_PERMITS),
            max_bytes.min(Semaphore::MAX_PERMITS),
        );
        Queue {
            sender,
            receiver: Mutex::new((receiver, None)),
            events: Semaphore::new(max_events),
            bytes: Semaphore::new(max_bytes),
            max_events,
            max_bytes,
            accepted: AtomicU64::new(0),
            taken: AtomicU64::new(0),
        }
    }

    /// Queues `item` if there is room for it, or gives it back (by value:
    /// boxing it would allocate on every refusal, before the refusal boxes
    /// just the event anyway). Never waits.
    #[allow(clippy::result_large_err)]
    pub(super) fn push(&self, item: Item) -> Result<(), Item> {
        let Ok(event) = self.events.try_acquire() else {
            return Err(item);
        };
        let bytes = u32::try_from(item.footprint).ok();
        let Some(Ok(bytes)) = bytes.map(|n| self.bytes.try_acquire_many(n)) else {
            return Err(item);
        };
        self.sent(item, event, bytes);
        Ok(())
    }

    /// Like [`push`](Self::push), waiting for room; gives the item back
    /// when it is larger than the whole byte bound or the queue closes.
    #[allow(clippy::result_large_err)]
    pub(super) async fn push_waiting(&self, item: Item) -> Result<(), Item> {
        let bytes = u32::try_from(item.footprint).ok();
        let Some(bytes) = bytes.filter(|_| item.footprint <= self.max_bytes) else {
            return Err(item);
        };
        let Ok(event) = self.events.acquire().await else {
            return Err(item);
        };
        match self.bytes.acquire_many(bytes).await {
            Ok(bytes) => {
                self.sent(item, event, bytes);
                Ok(())
            }
            Err(_closed) => Err(item),
        }
    }

    /// Sends an item whose room is taken; the room comes back when it is
    /// popped.
    fn sent(&self, item: Item, event: SemaphorePermit<'_>, bytes: SemaphorePermit<'_>) {
        event.forget();
        bytes.forget();
        // The receiver lives as long as the queue: the send cannot fail.
        let _sent = self.sender.send(Entry::Event(item));
        self.accepted.fetch_add(1, SeqCst);
    }

    /// Queues a flush marker behind every event pushed before it; it takes
    /// no room.
    pub(super) fn push_flush(&self, done: Marker) {
        let _sent = self.sender.send(Entry::Flush(done));
    }

    /// Takes the first entry if `take` says so; an entry refused stays
    /// first. Never waits.
    pub(super) fn pop_if(&self, take: impl FnOnce(&Entry) -> bool) -> Popped {
        let mut guard = self.receiver.lock();
        let (receiver, first) = &mut *guard;
        let entry = match first.take() {
            Some(entry) => entry,
            // One poll with a waker that does nothing: an entry, or none now.
            // Unlike `try_recv`, it never parks the thread when it meets a
            // send half done (that reads as none now, taken at the next
            // look); `unconstrained`, so tokio's cooperative budget cannot
            // make it read none either.
            None => {
                let mut next = std::pin::pin!(tokio::task::unconstrained(receiver.recv()));
                match next.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                    Poll::Ready(Some(entry)) => entry,
                    _ => return Popped::Empty,
                }
            }
        };
        if !take(&entry) {
            *first = Some(entry);
            return Popped::Refused;
        }
        if let Entry::Event(item) = &entry {
            self.taken.fetch_add(1, SeqCst);
            self.bytes.add_permits(item.footprint);
            self.events.add_permits(1);
        }
        Popped::Entry(entry)
    }

    /// How many events are queued (or being pushed).
    pub(super) fn len(&self) -> usize {
        self.max_events - self.events.available_permits()
    }

    /// How many events were ever accepted.
    pub(super) fn accepted(&self) -> u64 {
        self.accepted.load(SeqCst)
    }

    /// Whether an event may be in the queue. A push counts its event after
    /// sending it and before it returns, sequentially consistent, so a
    /// taker that writes a flag and then asks this, and a pusher that
    /// returns and then reads the flag, cannot both miss the other. It may
    /// say so of a queue just emptied.
    pub(super) fn holds_events(&self) -> bool {
        self.accepted.load(SeqCst) != self.taken.load(SeqCst)
    }

    /// Refuses every push from now on, and wakes the waiting ones to be
    /// refused.
    pub(super) fn close(&self) {
        self.events.close();
        self.bytes.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Queue {
        fn pop(&self) -> Option<Entry> {
            match self.pop_if(|_| true) {
                Popped::Entry(entry) => Some(entry),
                _ => None,
            }
        }
    }

    fn item(footprint: usize) -> Item {
        Item {
            session_id: SessionId::from("s"),
            event: Payload::Ready(Event::tool("t")),
            footprint,
            json_at_least: 0,
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
        let (done, _wait) = tokio::sync::oneshot::channel();
        queue.push_flush(std::sync::Arc::new(done));
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
                queue.push_waiting(item(1)),
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
