//! The Logger's one flow control: every request (a first attempt, a retry,
//! a split half) takes a [`Permit`] of the [`Gate`] and hands it back with
//! what its answer said. The gate holds two numbers, both learnt from
//! those answers: how many requests may be in flight (the limit), and,
//! once a server throttled, how fast they may start (the pace).
//!
//! - **The limit** (AIMD, judged in windows of about one round trip, the
//!   baseline latency, at least 1 ms) starts at [`INITIAL`], doubles each
//!   window in which it was reached and latency held, until the first sign
//!   of load (slow start), then grows by one. A window with back-pressure
//!   (an answer worth a retry other than 429: the 5xx, a timeout, a
//!   connection failure) halves it; a window whose mean latency rose above
//!   1.5× the baseline, by more than 5 ms, takes 10% off. The baseline is a
//!   weighted mean of the windows' latencies (0.25 for the newest).
//! - **The pace** answers 429s, which say the client sends too fast, not
//!   too much at once. Servers limit in many shapes (token buckets, fixed
//!   or sliding windows) whose `Retry-After` is often wider than their
//!   window, so the gate paces starts just under what the server admits
//!   (the AWS SDKs' adaptive retry mode): no pace until there is evidence
//!   of a limit ([`EVIDENCE`] throttles since the last cut, and more
//!   throttles among the recent answers than [`TOLERATED`] of them by two
//!   standard deviations: a server throttling a few requests whatever the
//!   rate is noise); then cut to [`CUT`] × the rate being sent (or, when
//!   most recent answers were throttles, × the rate the server admitted
//!   over the last second), at most once per [`GRACE`], counting only
//!   throttles of requests sent since the last cut; between cuts it grows
//!   back along a cubic curve (CUBIC) that is flat near the rate cut from
//!   and probes beyond it, capped at twice the rate being sent. A
//!   throttled request is retried after its backoff at this pace, not
//!   after its own `Retry-After`.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The limit a gate starts with.
const INITIAL: f64 = 8.0;
/// What a cut of the pace leaves of the rate.
const CUT: f64 = 0.7;
/// Throttles since the last cut that a cut needs.
const EVIDENCE: u32 = 8;
/// The share of throttles taken as a server's noise.
const TOLERATED: f64 = 0.1;
/// The least time between two cuts; also how long a count of starts and
/// admissions runs, and the half-life of the throttle counts.
const GRACE: Duration = Duration::from_millis(100);
/// The lowest pace, in requests per second.
const MIN_RATE: f64 = 1.0;
/// The rate the server admitted is measured over this long.
const ADMITTED_OVER: Duration = Duration::from_secs(1);

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
    ceiling: f64,
    adaptive: bool,
}

/// A request's place in flight, handed back by drop (or with its answer,
/// [`Gate::answered`]).
pub(super) struct Permit {
    gate: Arc<Gate>,
    pub(super) started: Instant,
}

struct State {
    in_flight: usize,
    limit: f64,
    slow_start: bool,
    window_from: Instant,
    answers: u32,
    latency_sum: Duration,
    full: bool,
    pressed: bool,
    baseline: Option<Duration>,
    /// Starts per second once throttled; when the next may start.
    rate: Option<f64>,
    next_at: Instant,
    /// The rate cut from, and when.
    w_max: f64,
    last_cut: Option<Instant>,
    /// After a first cut early in the run: grow by doubling, not the curve.
    ramping: bool,
    recent_answers: f64,
    recent_throttles: f64,
    throttles_since_cut: u32,
    latency: Option<Duration>,
    /// Starts since `counting_since`, and the smoothed rate of starts.
    counted: u32,
    counting_since: Instant,
    sending: Option<f64>,
    /// Admitted answers per [`GRACE`], over [`ADMITTED_OVER`].
    admitted: VecDeque<u32>,
    first_answer: Option<Instant>,
}

impl Gate {
    pub(super) fn new(ceiling: usize, adaptive: bool) -> Arc<Gate> {
        let now = Instant::now();
        let limit = if adaptive {
            INITIAL.min(ceiling as f64)
        } else {
            ceiling as f64
        };
        let state = State {
            in_flight: 0,
            limit,
            slow_start: true,
            window_from: now,
            answers: 0,
            latency_sum: Duration::ZERO,
            full: false,
            pressed: false,
            baseline: None,
            rate: None,
            next_at: now,
            w_max: 0.0,
            last_cut: None,
            ramping: false,
            recent_answers: 0.0,
            recent_throttles: 0.0,
            throttles_since_cut: 0,
            latency: None,
            counted: 0,
            counting_since: now,
            sending: None,
            admitted: VecDeque::from([0]),
            first_answer: None,
        };
        Arc::new(Gate {
            state: Mutex::new(state),
            room: Notify::new(),
            ceiling: ceiling as f64,
            adaptive,
        })
    }

    /// The limit now, and the pace (`None` before the first cut).
    pub(super) fn limits(&self) -> (usize, Option<f64>) {
        let s = self.state.lock();
        (s.limit as usize, s.rate)
    }

    /// Waits for a place under the limit, then for the request's turn at
    /// the pace (a place taken before that wait, so that requests that
    /// waited together do not start together).
    pub(super) async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            let room = self.room.notified();
            let mut room = std::pin::pin!(room);
            room.as_mut().enable();
            let start = {
                let mut s = self.state.lock();
                (s.in_flight < s.limit as usize).then(|| {
                    s.in_flight += 1;
                    s.reserve(Instant::now())
                })
            };
            if let Some(start) = start {
                // Made before the wait, so that a wait dropped frees it.
                let mut permit = Permit {
                    gate: Arc::clone(self),
                    started: start,
                };
                if start > Instant::now() {
                    tokio::time::sleep_until(start).await;
                }
                permit.started = Instant::now();
                return permit;
            }
            room.await;
        }
    }

    /// Takes in what the answer to `permit`'s request said, and frees its
    /// place.
    pub(super) fn answered(&self, permit: Permit, signal: Signal) {
        let now = Instant::now();
        let mut s = self.state.lock();
        s.observe_pace(now, permit.started, signal == Signal::Throttled);
        let grew = self.adaptive
            && signal != Signal::Throttled
            && s.judge(now, permit.started, signal, self.ceiling);
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

impl State {
    /// The limit's window: closed after about one round trip, and judged.
    /// True when the limit grew.
    fn judge(&mut self, now: Instant, started: Instant, signal: Signal, ceiling: f64) -> bool {
        let latency = now.saturating_duration_since(started);
        self.answers += 1;
        self.latency_sum = self.latency_sum.saturating_add(latency);
        self.full |= self.in_flight >= self.limit as usize;
        self.pressed |= signal == Signal::BackPressure;
        let length = self
            .baseline
            .unwrap_or(latency)
            .max(Duration::from_millis(1));
        if now.saturating_duration_since(self.window_from) < length {
            return false;
        }
        let mean = self.latency_sum / self.answers;
        let before = self.limit;
        let risen = self.baseline.is_some_and(|base| {
            mean.as_secs_f64() > base.as_secs_f64() * 1.5
                && mean.saturating_sub(base) > Duration::from_millis(5)
        });
        if self.pressed || risen {
            self.limit = (self.limit * if self.pressed { 0.5 } else { 0.9 }).max(1.0);
            self.slow_start = false;
        } else if self.full {
            let grown = if self.slow_start {
                self.limit * 2.0
            } else {
                self.limit + 1.0
            };
            self.limit = grown.min(ceiling);
        }
        if !self.pressed {
            self.baseline = Some(
                self.baseline
                    .map_or(mean, |b| b.mul_f64(0.75) + mean.mul_f64(0.25)),
            );
        }
        (self.window_from, self.answers, self.latency_sum) = (now, 0, Duration::ZERO);
        (self.full, self.pressed) = (false, false);
        self.limit as usize > before as usize
    }

    /// A start at the pace (a generic cell rate algorithm, bursts of two):
    /// when the request may start.
    fn reserve(&mut self, now: Instant) -> Instant {
        let start = match self.rate {
            None => now,
            Some(rate) => {
                let interval = Duration::from_secs_f64(1.0 / rate);
                let arrival = self.next_at.max(now);
                self.next_at = arrival + interval;
                arrival.checked_sub(interval).unwrap_or(now).max(now)
            }
        };
        self.roll(start);
        self.counted += 1;
        start
    }

    fn observe_pace(&mut self, now: Instant, sent_at: Instant, throttled: bool) {
        self.roll(now);
        self.first_answer.get_or_insert(now);
        let took = now.saturating_duration_since(sent_at);
        self.latency = Some(
            self.latency
                .map_or(took, |l| l.mul_f64(0.9) + took.mul_f64(0.1)),
        );
        // A throttle of a request sent before the last cut says nothing of
        // the rate since.
        let after_cut = self.last_cut.is_none_or(|cut| sent_at >= cut);
        if after_cut {
            self.recent_answers += 1.0;
            self.recent_throttles += f64::from(u8::from(throttled));
            self.throttles_since_cut += u32::from(throttled);
        }
        if !throttled {
            if let Some(count) = self.admitted.back_mut() {
                *count += 1;
            }
            self.grow(now);
            return;
        }
        let expected = TOLERATED * self.recent_answers;
        let over = self.throttles_since_cut >= EVIDENCE
            && self.recent_throttles > expected + 2.0 * (expected * (1.0 - TOLERATED)).sqrt();
        let soon = self.last_cut.is_some_and(|cut| now < cut + GRACE);
        if !after_cut || soon || !over {
            return;
        }
        let history = self
            .first_answer
            .map_or(Duration::ZERO, |f| now.saturating_duration_since(f));
        let mostly = self.recent_throttles >= 0.5 * self.recent_answers;
        let sending = self.sending_rate(now);
        let from = if mostly && history >= GRACE {
            let over = history.min(ADMITTED_OVER).as_secs_f64();
            f64::from(self.admitted.iter().sum::<u32>()) / over
        } else {
            self.rate.map_or(sending, |rate| rate.min(sending))
        }
        .max(MIN_RATE);
        self.ramping = self.rate.is_none() && history < ADMITTED_OVER && !mostly;
        let rate = self
            .rate
            .map_or(CUT * from, |rate| rate.min(CUT * from))
            .max(MIN_RATE);
        (self.rate, self.w_max, self.last_cut) = (Some(rate), rate / CUT, Some(now));
        (
            self.recent_answers,
            self.recent_throttles,
            self.throttles_since_cut,
        ) = (0.0, 0.0, 0);
    }

    /// The pace along its curve since the last cut: back to `w_max` in a
    /// second (or five answer latencies), doubling every 200 ms while
    /// ramping; never above twice the rate being sent.
    fn grow(&mut self, now: Instant) {
        let (Some(_), Some(cut)) = (self.rate, self.last_cut) else {
            return;
        };
        let t = now.saturating_duration_since(cut).as_secs_f64();
        let k = (self.latency.unwrap_or_default() * 5)
            .max(Duration::from_secs(1))
            .as_secs_f64();
        let curve = if self.ramping {
            CUT * self.w_max * 2f64.powf(t / 0.2)
        } else {
            self.w_max * (1.0 + (1.0 - CUT) / k.powi(3) * (t - k).powi(3))
        };
        self.rate = Some(curve.min(2.0 * self.sending_rate(now)).max(MIN_RATE));
    }

    /// Closes the counts of starts and admissions every [`GRACE`].
    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.counting_since);
        if elapsed < GRACE {
            return;
        }
        let latest = f64::from(self.counted) / elapsed.as_secs_f64();
        self.sending = Some(
            self.sending
                .map_or(latest, |before| 0.8 * latest + 0.2 * before),
        );
        (self.counted, self.counting_since) = (0, now);
        let closed = (elapsed.as_nanos() / GRACE.as_nanos()) as usize;
        let kept = (ADMITTED_OVER.as_nanos() / GRACE.as_nanos()) as usize;
        for _ in 0..closed.min(kept) {
            self.admitted.push_back(0);
        }
        while self.admitted.len() > kept {
            self.admitted.pop_front();
        }
        let halving = 0.5f64.powi(i32::try_from(closed).unwrap_or(i32::MAX));
        self.recent_answers *= halving;
        self.recent_throttles *= halving;
    }

    /// Requests started per second: the smoothed count, or the one running
    /// when it is higher.
    fn sending_rate(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.counting_since);
        let current =
            (elapsed >= GRACE / 5).then(|| f64::from(self.counted) / elapsed.as_secs_f64());
        match (self.sending, current) {
            (Some(smoothed), Some(current)) => smoothed.max(current),
            (Some(rate), None) | (None, Some(rate)) => rate,
            (None, None) => {
                f64::from(self.counted) / elapsed.max(Duration::from_millis(1)).as_secs_f64()
            }
        }
    }
}
