//! A delivery: the events one request carries (or a batch split in
//! halves), serialized, sent under the client's retry policy and the gate,
//! and settled.

use parking_lot::Mutex;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use super::{Route, Shared};
use crate::client::{Answer, Outgoing, Prepared, Refused};
use crate::flat::{Flat, joined, unflatten};
use crate::logger::gate::{Permit, Signal};
use crate::logger::outcome::Sent;
use crate::logger::queue::{Entry, Item, Marker, Popped};
use crate::logger::warn_loss;
use crate::retry::{Attempt, Verdict};
use crate::{dead_letter::DeadLetter, error::Error, session::SessionId};

/// An event serialized for the logger's route: its part of a batch body,
/// or (the per-event route) its whole request, whose body `flat` holds too.
pub(super) struct Unit {
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
pub(super) enum Slot {
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
pub(super) struct Delivery {
    pub(super) batch: Mutex<Batch>,
    pub(super) flushes: Mutex<Vec<Marker>>,
}

impl Delivery {
    pub(super) fn is_empty(&self) -> bool {
        self.batch.lock().slots.is_empty()
    }
}

#[derive(Default)]
pub(super) struct Batch {
    pub(super) slots: Vec<Slot>,
    /// Estimates: a tree built when taken counts one event, bytes as the
    /// least its JSON takes.
    pub(super) events: usize,
    pub(super) bytes: usize,
}

impl Shared {
    /// A new delivery, registered before anything is put in it.
    pub(super) fn register(&self) -> Arc<Delivery> {
        let delivery = Arc::new(Delivery::default());
        self.deliveries.lock().push(Arc::clone(&delivery));
        delivery
    }

    pub(super) fn unregister(&self, delivery: &Arc<Delivery>) {
        self.deliveries.lock().retain(|d| !Arc::ptr_eq(d, delivery));
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
    fn letter_for(&self, item: Item, reason: &str) -> DeadLetter {
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
    pub(super) fn serialize(&self, delivery: &Delivery) {
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
    /// [`OutcomeSink::sent`](crate::logger::OutcomeSink::sent) of each
    /// before it counts as settled. A panic there must not leave an event unsettled.
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
    pub(super) fn settle_failed(&self, delivery: &Delivery, range: Range<usize>, error: &Error) {
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

    /// Hands back everything queued or in a delivery as dead letters with
    /// `reason`, then answers the flushes waiting for them. For shutdown,
    /// drop and a runtime that ended, once the state is `Stopped`. Returns
    /// how many events it handed back.
    pub(in crate::logger) fn hand_back_unsettled(&self, reason: &str) -> usize {
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

/// A delivery: serializes its events (a mask, the user's code, on tokio's
/// blocking pool), sends them and settles them; then it ends, and with it
/// the flushes it held.
pub(super) async fn deliver(shared: Arc<Shared>, delivery: Arc<Delivery>, permit: Permit) {
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
