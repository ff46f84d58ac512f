//! The queue between [`Logger::log`](super::Logger::log) and the tasks that
//! send: tokio's unbounded channel, bounded by two pairs of counters.
//!
//! `log` reserves room in the counters (a compare-and-swap each), then
//! sends; takers receive and give the room back. Neither waits for the
//! other. Flush markers travel in the same queue,
//! behind the events logged before them.
//!
//! Why tokio's channel: it recycles its blocks of slots, so a queue that
//! stays short does not allocate.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use std::future::Future;
use std::task::{Context, Poll, Waker};

use tokio::sync::{Notify, mpsc, oneshot};

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
    /// What went in and what came out, each on cache lines of its own:
    /// `log` writes only the first, the taker only the second, and what
    /// the queue holds is the difference.
    pushed: CacheLines<QueueCounts>,
    popped: CacheLines<QueueCounts>,
    max_events: usize,
    max_bytes: usize,
    /// `log_wait` callers waiting for room, and how they are woken.
    waiting: AtomicUsize,
    room: Notify,
}

/// Events and estimated bytes, counted since the start.
#[derive(Default)]
struct QueueCounts {
    events: AtomicUsize,
    bytes: AtomicUsize,
    /// Pushes that succeeded (`events` is taken back when the bytes do not
    /// fit); only in `pushed`.
    accepted: AtomicUsize,
}

/// Keeps a value on cache lines of its own (128 bytes: adjacent lines are
/// fetched in pairs on x86), so that threads writing different values do
/// not take each other's lines.
#[derive(Default)]
#[repr(align(128))]
struct CacheLines<T>(T);

impl Queue {
    pub(super) fn new(max_events: usize, max_bytes: usize) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        Queue {
            sender,
            receiver: Mutex::new((receiver, None)),
            pushed: CacheLines::default(),
            popped: CacheLines::default(),
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
        let (pushed, popped) = (&self.pushed.0, &self.popped.0);
        let taken = pushed
            .events
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                let held = n.wrapping_sub(popped.events.load(Ordering::SeqCst));
                (held < self.max_events).then_some(n.wrapping_add(1))
            })
            .is_ok();
        if !taken {
            return Err(item);
        }
        let fits = pushed
            .bytes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                let held = b.wrapping_sub(popped.bytes.load(Ordering::SeqCst));
                held.checked_add(item.footprint)
                    .filter(|&total| total <= self.max_bytes)
                    .map(|_| b.wrapping_add(item.footprint))
            })
            .is_ok();
        if !fits {
            pushed.events.fetch_sub(1, Ordering::SeqCst);
            return Err(item);
        }
        // The receiver lives as long as the queue: the send cannot fail.
        let _sent = self.sender.send(Entry::Event(item));
        pushed.accepted.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Queues a flush marker (outside the bounds).
    pub(super) fn push_flush(&self, done: Marker) {
        let _sent = self.sender.send(Entry::Flush(done));
    }

    /// The oldest entry, if `take` says so (it is left first otherwise); an
    /// event's room goes back to the bounds.
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
            self.release(item.footprint);
        }
        Popped::Entry(entry)
    }

    /// Events queued now.
    pub(super) fn len(&self) -> usize {
        let popped = self.popped.0.events.load(Ordering::SeqCst);
        let pushed = self.pushed.0.events.load(Ordering::SeqCst);
        pushed.wrapping_sub(popped)
    }

    /// Events ever accepted.
    pub(super) fn accepted(&self) -> u64 {
        self.pushed.0.accepted.load(Ordering::SeqCst) as u64
    }

    fn release(&self, footprint: usize) {
        self.popped.0.bytes.fetch_add(footprint, Ordering::SeqCst);
        self.popped.0.events.fetch_add(1, Ordering::SeqCst);
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
            let mut room = std::pin::pin!(self.room.notified());
            // Registered before looking, so a release after the look wakes us.
            room.as_mut().enable();
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let hopeless = !open() || item.footprint > self.max_bytes;
            let pushed = if hopeless { Err(item) } else { self.push(item) };
            match pushed {
                Err(back) if !hopeless && open() => {
                    item = back;
                    room.await;
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                }
                done => {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return done;
                }
            }
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
