//! The send rate a logger holds itself to once a server throttles it: the
//! rate adaptation of the AWS SDKs' adaptive retry mode (a client-side
//! token bucket whose rate is cut at a throttle, then grown back along a
//! CUBIC curve that is flat near the rate last cut from and steep away
//! from it).
//!
//! Why a rate and not a pause: a server's limiter may be a token bucket, a
//! fixed window or a sliding window, and its `Retry-After` is often wider
//! than the window (a fixed window of 100 ms answering `Retry-After: 1`).
//! Pausing every request for the `Retry-After` holds the client to one
//! window per pause; sending at a rate just under what the server admits
//! fits every shape. So the throttled request itself does not wait out its
//! `Retry-After` either: it is retried after its backoff, at this rate
//! (`worker.rs` drops the `Retry-After` of a 429; other retryable answers
//! keep theirs).
//!
//! - Until the first cut there is no limit. Then requests start at most
//!   one per `1 / rate` (a generic cell rate algorithm, with a burst of
//!   [`BURST`]).
//! - A cut needs evidence that the rate is over a limit: at least
//!   [`EVIDENCE`] throttles since the last cut and, among the recent
//!   answers to requests sent since then (counted with a half-life of
//!   [`MEASURE`]), more throttles than [`TOLERATED`] of them by two
//!   standard deviations. A server that throttles a few requests whatever
//!   the rate is noise, not a limit, and is not chased down.
//! - A cut takes the rate to [`CUT`] × the rate being sent, as CUBIC does,
//!   never above the rate already held; but when most recent answers were
//!   throttles (a window spent early refuses everything until it ends,
//!   whatever is sent), [`CUT`] × the rate the server admitted over the
//!   last second.
//! - Cuts are at least [`GRACE`] apart, and a throttle of a request sent
//!   before the last cut does not count: it says nothing of the new rate.
//! - Between cuts the rate follows `w_max × (1 + C (t − K)³)`, with `w_max`
//!   the rate cut from, `t` the time since the cut and `K` the time the
//!   curve takes to come back to `w_max` ([`RECOVERY`], or five answer
//!   latencies if longer), capped at twice the rate being sent (a rate not
//!   used is not grown).
//!
//! Time is passed in, so the algorithm is tested without a clock; the tests
//! drive it against a fixed window, a sliding window, a token bucket with a
//! small burst, and throttles at random.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// What a cut leaves of the rate admitted: the AWS SDKs' β.
pub(super) const CUT: f64 = 0.7;
/// How long the curve takes to climb back to the rate it was cut from, at
/// least; and at least [`RECOVERY_RTTS`] answer latencies, so that the
/// curve does not outrun what the answers can say of it.
pub(super) const RECOVERY: Duration = Duration::from_secs(1);
/// See [`RECOVERY`].
const RECOVERY_RTTS: u32 = 5;
/// Past the plateau, the rate also doubles this often (see `grow`).
const DOUBLING: Duration = Duration::from_millis(200);
/// The lowest rate, in requests per second.
pub(super) const MIN_RATE: f64 = 1.0;
/// Requests that may start at once at the rate's pace.
pub(super) const BURST: f64 = 2.0;
/// The share of throttles taken as a server's noise rather than a limit.
pub(super) const TOLERATED: f64 = 0.1;
/// The share of throttles at which the rate is far over the limit (or a
/// window is spent), and a cut starts from what was admitted.
const MOSTLY: f64 = 0.5;
/// Throttles since the last cut that a cut needs: a few refusals of a
/// burst (a limiter's burst allowance spent by a handful of requests at
/// once) say little of the rate it admits.
pub(super) const EVIDENCE: u32 = 8;
/// The least time between two cuts.
pub(super) const GRACE: Duration = Duration::from_millis(100);
/// How long the sending and admitted rates are counted before a count is
/// closed; also the half-life of the throttle counts.
pub(super) const MEASURE: Duration = Duration::from_millis(100);
/// The weight of the latest count in the smoothed sending rate.
const SMOOTHING: f64 = 0.8;
/// How far back the rate the server admitted is measured: long enough to
/// span a limiter's window (a fixed window of a second refuses everything
/// once spent, and admits a burst when it opens).
const ADMITTED_OVER: Duration = Duration::from_secs(1);

/// See the [module docs](self).
pub(super) struct SendRate {
    state: Mutex<State>,
}

struct State {
    /// Requests per second; `None` until the first cut.
    rate: Option<f64>,
    /// When the next request may start at the rate's pace (the GCRA's
    /// theoretical arrival time).
    next_at: Instant,
    /// The rate the curve comes back to, and when the last cut was.
    w_max: f64,
    last_cut: Option<Instant>,
    /// Where the curve starts: the last cut.
    curve_from: Option<Instant>,
    /// The last cut was made while the client ramped up (see `grow`).
    ramping: bool,
    /// Recent answers to requests sent since the last cut, and the
    /// throttles among them (halved every [`MEASURE`]).
    recent_answers: f64,
    recent_throttles: f64,
    /// Throttles of requests sent since the last cut, all of them.
    throttles_since_cut: u32,
    /// The answers' latency, smoothed.
    latency: Option<Duration>,
    /// Requests started in the current count, since when.
    counted: u32,
    counting_since: Instant,
    /// The smoothed rate requests were started at.
    sending: Option<f64>,
    /// Requests admitted (answered without a throttle), per count over the
    /// last [`ADMITTED_OVER`], the current one last; since the first.
    admitted: VecDeque<u32>,
    first_answer: Option<Instant>,
}

impl SendRate {
    pub(super) fn new(now: Instant) -> SendRate {
        SendRate {
            state: Mutex::new(State {
                rate: None,
                next_at: now,
                w_max: 0.0,
                last_cut: None,
                curve_from: None,
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
            }),
        }
    }

    /// The rate requests are held to, in requests per second, if any.
    pub(super) fn limit(&self) -> Option<f64> {
        self.state.lock().rate
    }

    /// Takes the next place at the rate for a request: when it may start
    /// (`now` when there is no limit, or room in the burst).
    pub(super) fn reserve(&self, now: Instant) -> Instant {
        let mut s = self.state.lock();
        let start = match s.rate {
            None => now,
            Some(rate) => {
                let interval = Duration::from_secs_f64(1.0 / rate);
                let arrival = s.next_at.max(now);
                let tolerance = interval.mul_f64(BURST - 1.0);
                let start = arrival.checked_sub(tolerance).unwrap_or(now).max(now);
                s.next_at = arrival + interval;
                start
            }
        };
        s.roll(start);
        s.counted += 1;
        start
    }

    /// Waits for the next place at the rate; at once (without even a
    /// timer) when there is room.
    pub(super) async fn wait(&self) {
        let now = Instant::now();
        let start = self.reserve(now);
        if start > now {
            tokio::time::sleep_until(start).await;
        }
    }

    /// Takes in an answer at `now` to a request started at `sent_at`:
    /// a throttle (429) may cut the rate, any other answer lets it grow.
    pub(super) fn observe(&self, now: Instant, sent_at: Instant, throttled: bool) {
        let mut s = self.state.lock();
        s.roll(now);
        s.first_answer.get_or_insert(now);
        let took = now.saturating_duration_since(sent_at);
        s.latency = Some(
            s.latency
                .map_or(took, |before| before.mul_f64(0.9) + took.mul_f64(0.1)),
        );
        let after_cut = s.last_cut.is_none_or(|cut| sent_at >= cut);
        if after_cut {
            s.recent_answers += 1.0;
            s.recent_throttles += f64::from(u8::from(throttled));
            s.throttles_since_cut += u32::from(throttled);
        }
        if !throttled {
            if let Some(count) = s.admitted.back_mut() {
                *count += 1;
            }
            s.grow(now);
            return;
        }
        let soon = s.last_cut.is_some_and(|cut| now < cut + GRACE);
        if !after_cut || soon || !s.over_limit() {
            return;
        }
        let from = s.cut_from(now).max(MIN_RATE);
        let history = s
            .first_answer
            .map_or(Duration::ZERO, |first| now.saturating_duration_since(first));
        // The first cut, in the first second, of a minority of throttles: a
        // ramping client's bursts over a limiter's allowance, more likely
        // than a rate found.
        s.ramping = s.rate.is_none() && history < ADMITTED_OVER && !s.mostly_refused();
        let rate = s.rate.map_or(CUT * from, |rate| rate.min(CUT * from));
        s.rate = Some(rate.max(MIN_RATE));
        s.w_max = rate.max(MIN_RATE) / CUT;
        s.last_cut = Some(now);
        s.curve_from = Some(now);
        s.recent_answers = 0.0;
        s.recent_throttles = 0.0;
        s.throttles_since_cut = 0;
    }
}

impl State {
    /// At least [`EVIDENCE`] throttles since the last cut, and more recent
    /// throttles than [`TOLERATED`] of the recent answers, by two standard
    /// deviations of a binomial count.
    fn over_limit(&self) -> bool {
        let expected = TOLERATED * self.recent_answers;
        let deviation = (expected * (1.0 - TOLERATED)).sqrt();
        self.throttles_since_cut >= EVIDENCE && self.recent_throttles > expected + 2.0 * deviation
    }

    /// Whether most recent answers were throttles.
    fn mostly_refused(&self) -> bool {
        self.recent_throttles >= MOSTLY * self.recent_answers
    }

    /// How long the curve takes to come back to `w_max`.
    fn recovery(&self) -> Duration {
        RECOVERY.max(self.latency.unwrap_or_default() * RECOVERY_RTTS)
    }

    /// Between cuts: along the cubic curve, never above twice the rate
    /// being sent.
    fn grow(&mut self, now: Instant) {
        let (Some(_), Some(cut)) = (self.rate, self.curve_from) else {
            return;
        };
        let t = now.saturating_duration_since(cut).as_secs_f64();
        let k = self.recovery().as_secs_f64();
        // C such that the curve starts at CUT × w_max and is back at w_max
        // after K: w_max (1 + C (0 − K)³) = CUT w_max.
        let c = (1.0 - CUT) / k.powi(3);
        let curve = if self.ramping {
            // Cut while the client was still ramping up: the rate it was
            // cut from says little of the limit, so it is found by doubling
            // every DOUBLING, not by a long climb from a low start.
            CUT * self.w_max * 2f64.powf(t / DOUBLING.as_secs_f64())
        } else {
            self.w_max * (1.0 + c * (t - k).powi(3))
        };
        let cap = 2.0 * self.sending_rate(now);
        self.rate = Some(curve.min(cap).max(MIN_RATE));
    }

    /// The rate a cut starts from. Mostly refused (a limiter's window spent
    /// early refuses everything until it ends, whatever is sent): what the
    /// server admitted over the last [`ADMITTED_OVER`] (or since the first
    /// answer, if that is less, but at least [`MEASURE`]). Otherwise, as
    /// CUBIC does, the rate being sent (what admitted says is then as much
    /// about how little was sent as about the limit).
    fn cut_from(&self, now: Instant) -> f64 {
        let sending = self.sending_rate(now);
        let over = self
            .first_answer
            .map_or(Duration::ZERO, |first| now.saturating_duration_since(first));
        if !self.mostly_refused() || over < MEASURE {
            return self.rate.map_or(sending, |rate| rate.min(sending));
        }
        let over = over.min(ADMITTED_OVER);
        f64::from(self.admitted.iter().sum::<u32>()) / over.as_secs_f64()
    }

    /// Closes the current count when it is [`MEASURE`] long: the sending
    /// rate takes it in, the admitted counts move on, and the throttle
    /// counts halve.
    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.counting_since);
        if elapsed < MEASURE {
            return;
        }
        let latest = f64::from(self.counted) / elapsed.as_secs_f64();
        self.sending = Some(match self.sending {
            None => latest,
            Some(before) => SMOOTHING * latest + (1.0 - SMOOTHING) * before,
        });
        self.counted = 0;
        self.counting_since = now;
        let closed = (elapsed.as_nanos() / MEASURE.as_nanos()) as usize;
        let kept = (ADMITTED_OVER.as_nanos() / MEASURE.as_nanos()) as usize;
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

    /// The rate requests are being started at: the smoothed counts, or
    /// what the current count says if more (a rate ramping up, as while
    /// the in-flight limit doubles, is ahead of the smoothed one).
    fn sending_rate(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.counting_since);
        let current =
            (elapsed >= MEASURE / 5).then(|| f64::from(self.counted) / elapsed.as_secs_f64());
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
        rate: &SendRate,
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
        let rate = SendRate::new(now);
        let sent = drive(
            &rate,
            &mut now,
            Duration::from_millis(100),
            Duration::from_millis(1),
            &mut |_| false,
        );
        assert_eq!(rate.limit(), None);
        assert!(sent > 1_000, "{sent}");
    }

    #[test]
    fn a_burst_of_throttles_for_one_rate_cuts_it_once() {
        let mut now = Instant::now();
        let rate = SendRate::new(now);
        drive(
            &rate,
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
        let once = rate.limit().expect("cut");
        assert!((once - 0.7 * 20_000.0).abs() < 0.05 * 14_000.0, "{once}");
        for _ in 0..500 {
            rate.observe(now + GRACE, sent_at, true);
        }
        assert_eq!(
            rate.limit(),
            Some(once),
            "the others were sent before the cut"
        );
    }

    #[test]
    fn a_throttle_among_many_answers_is_noise_and_cuts_nothing() {
        let mut now = Instant::now();
        let rate = SendRate::new(now);
        let mut n = 0;
        drive(
            &rate,
            &mut now,
            Duration::from_secs(1),
            Duration::from_millis(1),
            &mut |_| {
                n += 1;
                n % 50 == 0
            },
        );
        assert_eq!(rate.limit(), None);
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
        let rate = SendRate::new(now);
        let mut limiter = make(now);
        let (settle, span) = (Duration::from_secs(3), Duration::from_secs(10));
        drive(&rate, &mut now, settle, latency, &mut limiter);
        let mut throttles = 0u32;
        let mut counting = |at| {
            let throttled = limiter(at);
            throttles += u32::from(throttled);
            throttled
        };
        let sent = drive(&rate, &mut now, span, latency, &mut counting);
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
        let rate = SendRate::new(now);
        for _ in 0..200 {
            let sent_at = rate.reserve(now);
            now = sent_at + Duration::from_millis(200);
            rate.observe(now, sent_at, true);
        }
        assert_eq!(rate.limit(), Some(MIN_RATE));
        // Answers without throttling, but only 1 request a second: the
        // rate stays near what is used.
        for _ in 0..30 {
            let sent_at = rate.reserve(now);
            now = sent_at + Duration::from_secs(1);
            rate.observe(now, sent_at, false);
        }
        assert!(rate.limit().unwrap() <= 2.5, "{:?}", rate.limit());
    }
}
