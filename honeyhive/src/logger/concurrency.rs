//! How many requests the logger keeps in flight: a limit that adapts to the
//! server's answers (AIMD, as TCP and Vector's adaptive request concurrency
//! do).
//!
//! Time is passed in, so the algorithm is tested without a clock.

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The limit a logger starts at (or its ceiling, if lower).
pub(super) const INITIAL: usize = 8;
/// The shortest window: answers closer than this are judged together.
pub(super) const MIN_WINDOW: Duration = Duration::from_millis(1);
/// What the limit is multiplied by after a window with back-pressure.
pub(super) const BACKOFF: f64 = 0.5;
/// What it is multiplied by after a window whose latency rose.
pub(super) const EASE: f64 = 0.9;
/// Latency counts as risen when the window's mean is above the baseline
/// by this factor *and* by [`RISE_AT_LEAST`] (so loopback jitter of
/// microseconds never counts).
pub(super) const RISE_FACTOR: f64 = 1.5;
/// See [`RISE_FACTOR`].
pub(super) const RISE_AT_LEAST: Duration = Duration::from_millis(5);
/// The weight of a window's mean latency in the baseline.
pub(super) const BASELINE_WEIGHT: f64 = 0.25;

/// What one answer says about the server's load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Signal {
    /// Answered (success or a refusal of the event itself): the latency is
    /// a sample.
    Answered,
    /// 503 and other answers worth a retry, timeouts, connection
    /// failures: the server or the path to it is overloaded.
    BackPressure,
    /// A 429: a limit on the rate, not on the concurrency (see `rate.rs`),
    /// and its latency says nothing of the load. Not taken in.
    Throttled,
}

/// The in-flight limit.
///
/// The limit is enforced by tokio's semaphore: a request holds a permit
/// while it is in flight (not while its delivery waits to retry). A lower
/// limit forgets free permits at once and, for permits in use, leaves a
/// debt that permits coming back pay off; a higher one pays the debt first,
/// then adds permits.
pub(super) struct Limiter {
    /// The limit now, for the stats.
    current: AtomicUsize,
    permits: Arc<Semaphore>,
    /// Permits to forget as they come back.
    debt: AtomicUsize,
    ceiling: usize,
    adaptive: bool,
    state: Mutex<Window>,
}

struct Window {
    /// The limit with its fraction (additive steps below 1 add up).
    limit: f64,
    /// Doubling each window until the first sign of load.
    slow_start: bool,
    started: Instant,
    answers: u32,
    latency_sum: Duration,
    /// The limit was reached during the window: raising it can help.
    full: bool,
    pressed: bool,
    /// Weighted mean of the windows' mean latencies.
    baseline: Option<Duration>,
}

impl Limiter {
    /// `adaptive == false`: the limit is `ceiling`, always.
    pub(super) fn new(ceiling: usize, adaptive: bool, now: Instant) -> Self {
        let start = if adaptive {
            INITIAL.min(ceiling)
        } else {
            ceiling
        };
        Limiter {
            current: AtomicUsize::new(start),
            permits: Arc::new(Semaphore::new(start)),
            debt: AtomicUsize::new(0),
            ceiling,
            adaptive,
            state: Mutex::new(Window {
                limit: start as f64,
                slow_start: true,
                started: now,
                answers: 0,
                latency_sum: Duration::ZERO,
                full: false,
                pressed: false,
                baseline: None,
            }),
        }
    }

    /// Requests that may be in flight now.
    pub(super) fn limit(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    /// Requests in flight now (about: a permit being handed over counts as
    /// in use).
    pub(super) fn in_flight(&self) -> usize {
        self.limit()
            .saturating_sub(self.permits.available_permits())
    }

    /// Room for one more request now.
    #[cfg(test)]
    pub(super) fn has_room(&self) -> bool {
        self.permits.available_permits() > 0
    }

    /// Waits for room for one request; the permit goes back through
    /// [`release`](Self::release). `None` never happens (the semaphore is
    /// never closed); the caller goes ahead without a permit then.
    pub(super) async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.permits).acquire_owned().await.ok()
    }

    /// Room for one request now, if there is.
    pub(super) fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.permits).try_acquire_owned().ok()
    }

    /// Gives a request's permit back, or forgets it to pay a debt.
    pub(super) fn release(&self, permit: Option<OwnedSemaphorePermit>) {
        let Some(permit) = permit else { return };
        let pay = |debt: usize| debt.checked_sub(1);
        if self
            .debt
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, pay)
            .is_ok()
        {
            permit.forget();
        }
    }

    /// Moves the semaphore from `from` permits to `to`.
    fn resize(&self, from: usize, to: usize) {
        if to < from {
            let forgotten = self.permits.forget_permits(from - to);
            self.debt.fetch_add(from - to - forgotten, Ordering::SeqCst);
        } else if to > from {
            let mut add = to - from;
            let pay = |debt: usize| Some(debt - debt.min(add));
            if let Ok(debt) = self
                .debt
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, pay)
            {
                add -= debt.min(add);
            }
            self.permits.add_permits(add);
        }
    }

    /// Takes in one answer, `latency` after its request started, with
    /// `in_flight` requests running. Returns whether the limit rose (so
    /// that another delivery may start).
    pub(super) fn observe(
        &self,
        now: Instant,
        latency: Duration,
        signal: Signal,
        in_flight: usize,
    ) -> bool {
        if !self.adaptive || signal == Signal::Throttled {
            return false;
        }
        let mut w = self.state.lock();
        w.answers += 1;
        w.latency_sum = w.latency_sum.saturating_add(latency);
        w.full |= in_flight >= w.limit as usize;
        w.pressed |= signal == Signal::BackPressure;
        let length = w.baseline.unwrap_or(latency).max(MIN_WINDOW);
        if now.saturating_duration_since(w.started) < length {
            return false;
        }
        let mean = w.latency_sum / w.answers;
        let before = w.limit;
        let risen = w.baseline.is_some_and(|base| {
            mean.as_secs_f64() > base.as_secs_f64() * RISE_FACTOR
                && mean.saturating_sub(base) > RISE_AT_LEAST
        });
        if w.pressed || risen {
            w.limit = (w.limit * if w.pressed { BACKOFF } else { EASE }).max(1.0);
            w.slow_start = false;
        } else if w.full {
            w.limit = if w.slow_start {
                w.limit * 2.0
            } else {
                w.limit + 1.0
            };
            w.limit = w.limit.min(self.ceiling as f64);
        }
        if !w.pressed {
            w.baseline = Some(match w.baseline {
                Some(base) => base.mul_f64(1.0 - BASELINE_WEIGHT) + mean.mul_f64(BASELINE_WEIGHT),
                None => mean,
            });
        }
        let (started, limit) = (now, w.limit);
        *w = Window {
            started,
            answers: 0,
            latency_sum: Duration::ZERO,
            full: false,
            pressed: false,
            ..*w
        };
        self.current.store(limit as usize, Ordering::Relaxed);
        self.resize(before as usize, limit as usize);
        limit as usize > before as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(50);

    /// Runs windows of answers at `latency`, each with the limit reached,
    /// and returns the limit after each window.
    fn windows(
        limiter: &Limiter,
        now: &mut Instant,
        count: usize,
        latency: Duration,
        signal: Signal,
    ) -> Vec<usize> {
        (0..count)
            .map(|_| {
                *now += latency;
                limiter.observe(*now, latency, signal, limiter.limit());
                limiter.limit()
            })
            .collect()
    }

    #[test]
    fn slow_start_doubles_to_the_ceiling_while_latency_holds() {
        let mut now = Instant::now();
        let limiter = Limiter::new(256, true, now);
        assert_eq!(limiter.limit(), INITIAL);
        let limits = windows(&limiter, &mut now, 6, RTT, Signal::Answered);
        assert_eq!(limits, [16, 32, 64, 128, 256, 256]);
    }

    #[test]
    fn back_pressure_halves_then_the_limit_grows_by_one_per_window() {
        let mut now = Instant::now();
        let limiter = Limiter::new(256, true, now);
        windows(&limiter, &mut now, 3, RTT, Signal::Answered); // 64
        assert_eq!(
            windows(&limiter, &mut now, 1, RTT, Signal::BackPressure),
            [32]
        );
        assert_eq!(
            windows(&limiter, &mut now, 3, RTT, Signal::Answered),
            [33, 34, 35]
        );
    }

    #[test]
    fn pressure_without_end_brings_the_limit_to_one_and_keeps_it_there() {
        let mut now = Instant::now();
        let limiter = Limiter::new(256, true, now);
        let limits = windows(&limiter, &mut now, 8, RTT, Signal::BackPressure);
        assert_eq!(limits, [4, 2, 1, 1, 1, 1, 1, 1]);
    }

    #[test]
    fn rising_latency_eases_the_limit_and_loopback_jitter_does_not() {
        let mut now = Instant::now();
        let limiter = Limiter::new(256, true, now);
        windows(&limiter, &mut now, 2, RTT, Signal::Answered); // 32
        let slow = Duration::from_millis(120);
        assert_eq!(windows(&limiter, &mut now, 1, slow, Signal::Answered), [28]);

        // 50 µs then 200 µs: four times slower, but by microseconds.
        let mut now = Instant::now();
        let limiter = Limiter::new(256, true, now);
        windows(
            &limiter,
            &mut now,
            2,
            Duration::from_micros(50),
            Signal::Answered,
        );
        let jitter = windows(
            &limiter,
            &mut now,
            20,
            Duration::from_micros(200),
            Signal::Answered,
        );
        assert!(jitter.windows(2).all(|p| p[1] >= p[0]), "{jitter:?}");
    }

    #[test]
    fn a_limit_not_reached_is_not_raised() {
        let mut now = Instant::now();
        let limiter = Limiter::new(256, true, now);
        for _ in 0..5 {
            now += RTT;
            limiter.observe(now, RTT, Signal::Answered, 3);
        }
        assert_eq!(limiter.limit(), INITIAL);
    }

    #[test]
    fn answers_inside_one_window_are_judged_together() {
        let mut now = Instant::now();
        let limiter = Limiter::new(256, true, now);
        windows(&limiter, &mut now, 1, RTT, Signal::Answered); // 16, baseline 50 ms
        for _ in 0..10 {
            now += Duration::from_millis(4);
            limiter.observe(now, RTT, Signal::BackPressure, 16);
        }
        // 40 ms into a 50 ms window: not judged yet.
        assert_eq!(limiter.limit(), 16);
        now += Duration::from_millis(10);
        limiter.observe(now, RTT, Signal::Answered, 16);
        assert_eq!(limiter.limit(), 8, "one cut for the whole window");
    }

    #[tokio::test]
    async fn permits_follow_the_limit_and_permits_in_use_are_forgotten_on_return() {
        let mut now = Instant::now();
        let limiter = Limiter::new(256, true, now);
        let mut held = Vec::new();
        for _ in 0..8 {
            held.push(limiter.acquire().await);
        }
        assert!(!limiter.has_room());
        // Halved to 4 while all 8 are in use: the first 4 back are forgotten.
        windows(&limiter, &mut now, 1, RTT, Signal::BackPressure);
        for permit in held.drain(..4) {
            limiter.release(permit);
        }
        assert!(!limiter.has_room());
        for permit in held.drain(..) {
            limiter.release(permit);
        }
        assert_eq!(limiter.permits.available_permits(), 4);
        // Raised while 4 are in use and 2 owed: the debt is paid first.
        let mut held: Vec<_> = Vec::new();
        for _ in 0..4 {
            held.push(limiter.acquire().await);
        }
        windows(&limiter, &mut now, 1, RTT, Signal::BackPressure); // 2: owes 2
        windows(&limiter, &mut now, 3, RTT, Signal::Answered); // 3, 4, 5
        assert_eq!(limiter.limit(), 5);
        for permit in held {
            limiter.release(permit);
        }
        assert_eq!(limiter.permits.available_permits(), 5);
    }

    #[test]
    fn a_fixed_limit_never_moves() {
        let mut now = Instant::now();
        let limiter = Limiter::new(12, false, now);
        assert_eq!(limiter.limit(), 12);
        windows(&limiter, &mut now, 5, RTT, Signal::BackPressure);
        windows(&limiter, &mut now, 5, RTT, Signal::Answered);
        assert_eq!(limiter.limit(), 12);
    }
}
