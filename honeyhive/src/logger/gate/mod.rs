//! The Logger's one flow control: every request (a first attempt, a retry,
//! a split half) takes a [`Permit`] of the [`Gate`] and hands it back with
//! what its answer said. The gate holds two numbers, both learnt from
//! those answers: how many requests may be in flight (the [`limit`]), and,
//! once a server throttled, how fast they may start (the [`pace`]).

mod limit;
mod pace;

use parking_lot::Mutex;
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::time::Instant;

use limit::Limit;
use pace::Pace;

/// What an answer says of the load.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Signal {
    Answered,
    /// Worth a retry, not a 429.
    BackPressure,
    /// A 429.
    Throttled,
}

pub(super) struct Gate {
    state: Mutex<State>,
    room: Notify,
}

/// A request's place in flight, handed back by drop (or with its answer,
/// [`Gate::answered`]).
pub(super) struct Permit {
    gate: Arc<Gate>,
    pub(super) started: Instant,
}

struct State {
    in_flight: usize,
    limit: Limit,
    pace: Pace,
}

impl Gate {
    pub(super) fn new(ceiling: usize, adaptive: bool) -> Arc<Gate> {
        let now = Instant::now();
        let state = State {
            in_flight: 0,
            limit: Limit::new(ceiling, adaptive, now),
            pace: Pace::new(now),
        };
        Arc::new(Gate {
            state: Mutex::new(state),
            room: Notify::new(),
        })
    }

    /// The limit now, and the pace (`None` before the first cut).
    pub(super) fn limits(&self) -> (usize, Option<f64>) {
        let s = self.state.lock();
        (s.limit.limit as usize, s.pace.rate)
    }

    /// Waits for a place under the limit, then for the request's turn at
    /// the pace (a place taken before that wait, so that requests that
    /// waited together do not start together).
    pub(super) async fn acquire(self: &Arc<Self>) -> Permit {
        let take = || {
            let mut s = self.state.lock();
            (s.in_flight < s.limit.limit as usize).then(|| {
                s.in_flight += 1;
                s.pace.reserve(Instant::now())
            })
        };
        let start = loop {
            let room = self.room.notified();
            let mut room = std::pin::pin!(room);
            if let Some(start) = take() {
                break start;
            }
            // Registered before the second look, so a place freed after it
            // wakes this waiter.
            room.as_mut().enable();
            if let Some(start) = take() {
                break start;
            }
            room.await;
        };
        // Made before the wait, so that a wait dropped frees the place.
        let mut permit = Permit {
            gate: Arc::clone(self),
            started: start,
        };
        if start > Instant::now() {
            tokio::time::sleep_until(start).await;
        }
        permit.started = Instant::now();
        permit
    }

    /// Takes in what the answer to `permit`'s request said, and frees its
    /// place.
    pub(super) fn answered(&self, permit: Permit, signal: Signal) {
        let now = Instant::now();
        let mut s = self.state.lock();
        s.pace
            .observe(now, permit.started, signal == Signal::Throttled);
        let in_flight = s.in_flight;
        let grew = s.limit.judge(now, permit.started, signal, in_flight);
        drop(s);
        drop(permit);
        if grew {
            self.room.notify_waiters();
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.state.lock().in_flight -= 1;
        self.gate.room.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const RTT: Duration = Duration::from_millis(50);

    #[tokio::test(start_paused = true)]
    async fn permits_follow_the_limit_and_a_lowered_limit_waits_for_returns() {
        let gate = Gate::new(256, true);
        let mut held = Vec::new();
        for _ in 0..8 {
            held.push(gate.acquire().await);
        }
        let more = |gate: &Arc<Gate>| {
            let gate = Arc::clone(gate);
            async move { tokio::time::timeout(RTT, gate.acquire()).await.is_ok() }
        };
        assert!(!more(&gate).await, "8 of 8 in flight");
        // Halved to 4 while all 8 are in flight: none starts until 5 are back.
        tokio::time::advance(RTT).await;
        for permit in held.drain(..4) {
            gate.answered(permit, Signal::BackPressure);
        }
        assert_eq!(gate.limits().0, 4);
        assert!(!more(&gate).await);
        drop(held.pop());
        assert!(more(&gate).await);
    }
}
