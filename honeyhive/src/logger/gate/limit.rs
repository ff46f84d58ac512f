//! How many requests may be in flight: AIMD, judged in windows of about
//! one round trip (the baseline latency, at least 1 ms). The limit starts
//! at [`INITIAL`], doubles each window in which it was reached and latency
//! held, until the first sign of load (slow start), then grows by one. A
//! window with back-pressure (an answer worth a retry other than 429: the
//! 5xx, a timeout, a connection failure) halves it; a window whose mean
//! latency rose above 1.5× the baseline, by more than 5 ms, takes 10% off.
//! The baseline is a weighted mean of the windows' latencies (0.25 for the
//! newest). 429s do not move it: they are the pace's (`pace.rs`).

use std::time::Duration;

use tokio::time::Instant;

use super::Signal;

/// The limit a gate starts with.
const INITIAL: f64 = 8.0;

pub(super) struct Limit {
    pub(super) limit: f64,
    /// What the limit never exceeds (`max_in_flight`).
    ceiling: f64,
    /// Whether the limit moves at all; if not, it is the ceiling.
    adaptive: bool,
    slow_start: bool,
    window_from: Instant,
    answers: u32,
    latency_sum: Duration,
    full: bool,
    pressed: bool,
    baseline: Option<Duration>,
}

impl Limit {
    pub(super) fn new(ceiling: usize, adaptive: bool, now: Instant) -> Limit {
        let ceiling = ceiling as f64;
        Limit {
            limit: if adaptive {
                INITIAL.min(ceiling)
            } else {
                ceiling
            },
            ceiling,
            adaptive,
            slow_start: true,
            window_from: now,
            answers: 0,
            latency_sum: Duration::ZERO,
            full: false,
            pressed: false,
            baseline: None,
        }
    }

    /// Takes in an answer to a request started at `started`, with
    /// `in_flight` requests out; closes the window after about one round
    /// trip, and judges it. True when the limit grew.
    pub(super) fn judge(
        &mut self,
        now: Instant,
        started: Instant,
        signal: Signal,
        in_flight: usize,
    ) -> bool {
        if !self.adaptive || signal == Signal::Throttled {
            return false;
        }
        let latency = now.saturating_duration_since(started);
        self.answers += 1;
        self.latency_sum = self.latency_sum.saturating_add(latency);
        self.full |= in_flight >= self.limit as usize;
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
            self.limit = grown.min(self.ceiling);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(50);

    /// The limit, as the gate drives it, with explicit times (the
    /// in-flight count given).
    struct Limiter(std::cell::RefCell<Limit>);

    impl Limiter {
        fn new(ceiling: f64, adaptive: bool, now: Instant) -> Self {
            Limiter(std::cell::RefCell::new(Limit::new(
                ceiling as usize,
                adaptive,
                now,
            )))
        }

        fn observe(&self, now: Instant, latency: Duration, signal: Signal, in_flight: usize) {
            self.0
                .borrow_mut()
                .judge(now, now - latency, signal, in_flight);
        }

        fn limit(&self) -> usize {
            self.0.borrow().limit as usize
        }
    }

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
        let limiter = Limiter::new(256.0, true, now);
        assert_eq!(limiter.limit(), INITIAL as usize);
        let limits = windows(&limiter, &mut now, 6, RTT, Signal::Answered);
        assert_eq!(limits, [16, 32, 64, 128, 256, 256]);
    }

    #[test]
    fn back_pressure_halves_then_the_limit_grows_by_one_per_window() {
        let mut now = Instant::now();
        let limiter = Limiter::new(256.0, true, now);
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
        let limiter = Limiter::new(256.0, true, now);
        let limits = windows(&limiter, &mut now, 8, RTT, Signal::BackPressure);
        assert_eq!(limits, [4, 2, 1, 1, 1, 1, 1, 1]);
    }

    #[test]
    fn rising_latency_eases_the_limit_and_loopback_jitter_does_not() {
        let mut now = Instant::now();
        let limiter = Limiter::new(256.0, true, now);
        windows(&limiter, &mut now, 2, RTT, Signal::Answered); // 32
        let slow = Duration::from_millis(120);
        assert_eq!(windows(&limiter, &mut now, 1, slow, Signal::Answered), [28]);

        // 50 µs then 200 µs: four times slower, but by microseconds.
        let mut now = Instant::now();
        let limiter = Limiter::new(256.0, true, now);
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
        let limiter = Limiter::new(256.0, true, now);
        for _ in 0..5 {
            now += RTT;
            limiter.observe(now, RTT, Signal::Answered, 3);
        }
        assert_eq!(limiter.limit(), INITIAL as usize);
    }

    #[test]
    fn answers_inside_one_window_are_judged_together() {
        let mut now = Instant::now();
        let limiter = Limiter::new(256.0, true, now);
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
}
