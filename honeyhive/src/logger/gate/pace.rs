//! How fast requests may start, once a server throttled. A 429 says the
//! client sends too fast, not too much at once, and servers limit in many
//! shapes (token buckets, fixed or sliding windows) whose `Retry-After` is
//! often wider than their window, so the gate paces starts just under what
//! the server admits (the AWS SDKs' adaptive retry mode): no pace until
//! there is evidence of a limit ([`EVIDENCE`] throttles since the last cut,
//! and more throttles among the recent answers than [`TOLERATED`] of them
//! by two standard deviations: a server throttling a few requests whatever
//! the rate is noise); then cut to [`CUT`] × the rate being sent (or, when
//! most recent answers were throttles, × the rate the server admitted over
//! the last second), at most once per [`GRACE`], counting only throttles
//! of requests sent since the last cut; between cuts it grows back along a
//! cubic curve (CUBIC) that is flat near the rate cut from and probes
//! beyond it, capped at twice the rate being sent. A throttled request is
//! retried after its backoff at this pace, not after its own
//! `Retry-After`.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

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

pub(super) struct Pace {
    /// Starts per second once throttled; when the next may start.
    pub(super) rate: Option<f64>,
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

impl Pace {
    pub(super) fn new(now: Instant) -> Pace {
        Pace {
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
        }
    }

    /// A start at the pace (a generic cell rate algorithm, bursts of two):
    /// when the request may start.
    pub(super) fn reserve(&mut self, now: Instant) -> Instant {
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

    /// Takes in an answer to a request sent at `sent_at`.
    pub(super) fn observe(&mut self, now: Instant, sent_at: Instant, throttled: bool) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends at `per_second` for `span`, answering each request as
    /// `throttle(at)` says, one `latency` later. Returns the requests sent.
    fn drive(
        rate: &mut Pace,
        now: &mut Instant,
        span: Duration,
        latency: Duration,
        throttle: &mut dyn FnMut(Instant) -> bool,
    ) -> u32 {
        let end = *now + span;
        let mut sent = 0;
        let mut answers: std::collections::VecDeque<(Instant, Instant, bool)> = Default::default();
        while *now < end {
            let start = rate.reserve(*now);
            *now = start;
            while let Some(&(due, sent_at, throttled)) = answers.front() {
                if due > *now {
                    break;
                }
                answers.pop_front();
                rate.observe(due, sent_at, throttled);
            }
            answers.push_back((*now + latency, *now, throttle(*now)));
            sent += 1;
            *now += Duration::from_micros(50); // the client's own pace
        }
        sent
    }

    #[test]
    fn there_is_no_limit_until_the_first_throttle() {
        let mut now = Instant::now();
        let mut rate = Pace::new(now);
        let sent = drive(
            &mut rate,
            &mut now,
            Duration::from_millis(100),
            Duration::from_millis(1),
            &mut |_| false,
        );
        assert_eq!(rate.rate, None);
        assert!(sent > 1_000, "{sent}");
    }

    #[test]
    fn a_burst_of_throttles_for_one_rate_cuts_it_once() {
        let mut now = Instant::now();
        let mut rate = Pace::new(now);
        drive(
            &mut rate,
            &mut now,
            Duration::from_millis(200),
            Duration::from_millis(1),
            &mut |_| false,
        );
        // 500 throttles of requests all sent before the first answer.
        let sent_at = now;
        now += Duration::from_millis(1);
        for _ in 0..500 {
            rate.observe(now, sent_at, true);
        }
        // 20 000/s was admitted: cut once, to 0.7 of it.
        let once = rate.rate.expect("cut");
        assert!((once - 0.7 * 20_000.0).abs() < 0.05 * 14_000.0, "{once}");
        for _ in 0..500 {
            rate.observe(now + GRACE, sent_at, true);
        }
        assert_eq!(rate.rate, Some(once), "the others were sent before the cut");
    }

    #[test]
    fn a_throttle_among_many_answers_is_noise_and_cuts_nothing() {
        let mut now = Instant::now();
        let mut rate = Pace::new(now);
        let mut n = 0;
        drive(
            &mut rate,
            &mut now,
            Duration::from_secs(1),
            Duration::from_millis(1),
            &mut |_| {
                n += 1;
                n % 50 == 0
            },
        );
        assert_eq!(rate.rate, None);
    }

    /// A fixed window admitting `per_window` requests per `window`, the
    /// windows counted from `origin`.
    fn fixed_window(
        origin: Instant,
        window: Duration,
        per_window: u32,
    ) -> impl FnMut(Instant) -> bool {
        let mut current = None;
        let mut admitted = 0;
        move |at| {
            let index = (at - origin).as_nanos() / window.as_nanos();
            if current != Some(index) {
                current = Some(index);
                admitted = 0;
            }
            admitted += 1;
            admitted > per_window
        }
    }

    /// A sliding log: at most `most` admitted in any `window`.
    fn sliding_window(window: Duration, most: usize) -> impl FnMut(Instant) -> bool {
        let mut admitted = std::collections::VecDeque::new();
        move |at| {
            while admitted.front().is_some_and(|&t| at - t >= window) {
                admitted.pop_front();
            }
            if admitted.len() >= most {
                return true;
            }
            admitted.push_back(at);
            false
        }
    }

    /// A token bucket: `per_second`, holding `burst` at most.
    fn token_bucket(origin: Instant, per_second: f64, burst: f64) -> impl FnMut(Instant) -> bool {
        let (mut tokens, mut last) = (burst, origin);
        move |at| {
            tokens = (tokens + (at - last).as_secs_f64() * per_second).min(burst);
            last = at;
            if tokens >= 1.0 {
                tokens -= 1.0;
                false
            } else {
                true
            }
        }
    }

    type Shape = Box<dyn FnMut(Instant) -> bool>;
    /// A limiter's name, how to make it from the start time, and the
    /// answer latencies (ms) to try it at.
    type Case<'a> = (&'a str, &'a dyn Fn(Instant) -> Shape, [u64; 3]);

    /// 3 s to settle, then 10 s measured against the limiter `make`
    /// builds, which admits 2 000 requests a second, answers coming
    /// `latency` after their request: the rate admitted and the share
    /// throttled.
    fn settle_against(make: &dyn Fn(Instant) -> Shape, latency: Duration) -> (f64, f64) {
        let mut now = Instant::now();
        let mut rate = Pace::new(now);
        let mut limiter = make(now);
        let (settle, span) = (Duration::from_secs(3), Duration::from_secs(10));
        drive(&mut rate, &mut now, settle, latency, &mut limiter);
        let mut throttles = 0u32;
        let mut counting = |at| {
            let throttled = limiter(at);
            throttles += u32::from(throttled);
            throttled
        };
        let sent = drive(&mut rate, &mut now, span, latency, &mut counting);
        (
            f64::from(sent - throttles) / span.as_secs_f64(),
            f64::from(throttles) / f64::from(sent),
        )
    }

    /// Throttles one request in `one_in` at random, whatever the rate.
    fn at_random(one_in: u64) -> impl FnMut(Instant) -> bool {
        let mut n = 0u64;
        move |_| {
            n += 1;
            // A fixed, well-spread sequence (splitmix64).
            let mut x = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (x ^ (x >> 31)).is_multiple_of(one_in)
        }
    }

    #[test]
    fn whatever_the_limiter_the_rate_settles_near_what_it_admits_with_few_throttles() {
        // Each shape at answer latencies in ms. A fixed window of a whole
        // second admits a burst each second; answers 50 ms late find it
        // spent 50 ms after the fact, which costs over 10% in 429s: it runs
        // at 1 to 20 ms. A bucket with a small burst, answered 200 ms late,
        // is at 10.2%.
        let shapes: [Case<'_>; 4] = [
            (
                "fixed window 200/100 ms",
                &|o| Box::new(fixed_window(o, Duration::from_millis(100), 200)),
                [1, 50, 200],
            ),
            (
                "fixed window 2000/1 s",
                &|o| Box::new(fixed_window(o, Duration::from_secs(1), 2000)),
                [1, 10, 20],
            ),
            (
                "sliding window 2000/1 s",
                &|_| Box::new(sliding_window(Duration::from_secs(1), 2000)),
                [1, 20, 50],
            ),
            (
                "token bucket 2000/s, burst 20",
                &|o| Box::new(token_bucket(o, 2000.0, 20.0)),
                [1, 50, 100],
            ),
        ];
        for (name, make, latencies) in shapes {
            for latency in latencies.map(Duration::from_millis) {
                let (admitted, throttled) = settle_against(make, latency);
                let said = format!(
                    "{name}, {latency:?}: {admitted:.0}/s admitted, {:.1}% throttled",
                    throttled * 100.0
                );
                assert!(admitted >= 0.8 * 2_000.0, "{said}");
                assert!(throttled <= 0.1, "{said}");
            }
        }
    }

    #[test]
    fn throttles_at_random_do_not_drive_the_rate_down() {
        for latency in [1, 50].map(Duration::from_millis) {
            // 5% at random and no limit: the client's own pace is 20 000/s.
            let (admitted, _) = settle_against(&|_| Box::new(at_random(20)), latency);
            assert!(admitted >= 10_000.0, "{latency:?}: {admitted:.0}/s");
            // The same on top of a limit of 2 000/s.
            let (admitted, throttled) = settle_against(
                &|o| {
                    let mut bucket = token_bucket(o, 2000.0, 20.0);
                    let mut random = at_random(20);
                    Box::new(move |at| random(at) || bucket(at))
                },
                latency,
            );
            let said = format!(
                "{latency:?}: {admitted:.0}/s, {:.1}% throttled",
                throttled * 100.0
            );
            assert!(admitted >= 0.8 * 0.95 * 2_000.0, "{said}");
            assert!(throttled <= 0.15, "{said}");
        }
    }

    #[test]
    fn a_rate_not_used_is_not_grown_and_never_falls_below_the_floor() {
        let mut now = Instant::now();
        let mut rate = Pace::new(now);
        for _ in 0..200 {
            let sent_at = rate.reserve(now);
            now = sent_at + Duration::from_millis(200);
            rate.observe(now, sent_at, true);
        }
        assert_eq!(rate.rate, Some(MIN_RATE));
        // Answers without throttling, but only 1 request a second: the
        // rate stays near what is used.
        for _ in 0..30 {
            let sent_at = rate.reserve(now);
            now = sent_at + Duration::from_secs(1);
            rate.observe(now, sent_at, false);
        }
        assert!(rate.rate.unwrap() <= 2.5, "{:?}", rate.rate);
    }
}
