//! [`RetryPolicy`] and the one retry loop every request runs on.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How the client retries a failed request.
///
/// The rules are the ones the OTLP exporter spec, gRPC's retry design (A6)
/// and the AWS SDKs agree on:
///
/// - **Retried**: HTTP 408, 429, 500, 502, 503 and 504; connection failures
///   (refused, reset, closed before the answer); timeouts.
/// - **Never retried**: every other 4xx (the request itself is wrong, or the
///   key is), a 3xx (redirects are not followed), a TLS handshake failing
///   for the certificate or settings ([`Error::Tls`](crate::Error::Tls)),
///   `success: false`, answers that are not the documented JSON, and input
///   the client refused before sending.
/// - **Waits**: full-jitter exponential backoff: before retry *n* (from 0) the
///   client sleeps a random time in `[0, min(max_backoff, initial_backoff ×
///   multiplier^n)]`. A `Retry-After` answer (seconds, or an HTTP date) is
///   waited instead, up to [`max_retry_after`](RetryPolicy::max_retry_after).
/// - **Limits**: at most [`max_attempts`](RetryPolicy::max_attempts) requests
///   per call, all within the call's [`deadline`](RetryPolicy::deadline); a
///   wait that would leave less than 10 ms before the deadline is not
///   started (the call returns the last real error), and the last
///   attempt's own timeout is cut to what remains of it.
/// - **Throttling is not failure**: a 429 asks the client to slow down, so
///   it does not use up one of the `max_attempts`; it is retried while the
///   deadline allows, after the wait it asks for (capped) or the backoff
///   of as many 429s in a row, whichever is longer. (The AWS SDKs' adaptive
///   retry mode treats throttling the same way.) [`RetryPolicy::none`]
///   still sends once.
/// - **An early answer is the answer**: once a status line came back, that
///   status decides, even if the connection then broke (a server refusing a
///   body too large answers `413` and closes while the body is still being
///   written). When the connection closed while a body was being written
///   and no answer could be read, the next attempt sends
///   `Expect: 100-continue` and holds its body back for up to a second (half
///   the attempt's timeout when that is shorter), so a server that refuses
///   from the head answers before the body is sent again.
/// - **The [`Logger`](crate::Logger)** runs every request on this policy
///   but answers 429s by pacing all its requests, retrying a throttled one
///   after its backoff rather than its `Retry-After` (see its docs).
///
/// Every attempt sends the same bytes, with the same `event_id`, so a retry
/// of a request the server did process cannot record a second event.
///
/// Durations saturate: [`Duration::MAX`] as a deadline or a cap means "no
/// limit", never an overflow.
///
/// ```
/// use std::time::Duration;
/// use honeyhive::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .max_attempts(3)
///     .initial_backoff(Duration::from_millis(50))
///     .deadline(Duration::from_secs(10));
/// let client = honeyhive::Client::builder().api_key("hh-...").retry_policy(policy).build()?;
/// # Ok::<(), honeyhive::Error>(())
/// ```
#[must_use = "a RetryPolicy does nothing until it is given to a ClientBuilder"]
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) multiplier: f64,
    pub(crate) max_backoff: Duration,
    pub(crate) deadline: Duration,
    pub(crate) max_retry_after: Duration,
}

/// The least time worth starting a retry with, before the call's deadline.
pub(crate) const MIN_ATTEMPT: Duration = Duration::from_millis(10);

impl RetryPolicy {
    /// Attempts per call by default: the first and up to four retries.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
    /// The largest first wait by default.
    pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(200);
    /// How much the largest wait grows per retry by default.
    pub const DEFAULT_MULTIPLIER: f64 = 2.0;
    /// The cap on any one backoff wait by default.
    pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(10);
    /// How long one call may take, all attempts and waits included, by default.
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);
    /// The cap on a server's `Retry-After` by default.
    pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

    /// No retries: one attempt per call (still bounded by the deadline).
    pub fn none() -> Self {
        Self::default().max_attempts(1)
    }

    /// Sets the attempts per call, the first included; at least 1.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the largest wait before the first retry.
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// Sets how much the largest wait grows per retry; values below 1 (or
    /// not finite) count as 1.
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = if multiplier.is_finite() && multiplier >= 1.0 {
            multiplier
        } else {
            1.0
        };
        self
    }

    /// Sets the cap on any one backoff wait.
    pub fn max_backoff(mut self, cap: Duration) -> Self {
        self.max_backoff = cap;
        self
    }

    /// Sets how long one call may take in all, attempts and waits included;
    /// [`Duration::MAX`] for no limit.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets the longest `Retry-After` the client honours; a longer one is
    /// cut to this.
    pub fn max_retry_after(mut self, cap: Duration) -> Self {
        self.max_retry_after = cap;
        self
    }

    /// The most the client waits before retry number `retry` (0 for the
    /// first retry), before jitter: `min(max_backoff, initial × multiplier^retry)`.
    pub(crate) fn backoff_ceiling(&self, retry: u32) -> Duration {
        let grown = self.initial_backoff.as_secs_f64()
            * self
                .multiplier
                .powi(i32::try_from(retry).unwrap_or(i32::MAX));
        if grown.is_finite() && grown < self.max_backoff.as_secs_f64() {
            Duration::from_secs_f64(grown)
        } else {
            self.max_backoff
        }
    }

    /// The wait before retry number `retry`: a server's `Retry-After` (capped)
    /// when it gave one, or else full jitter below the backoff ceiling.
    pub(crate) fn wait_before(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(asked) => asked.min(self.max_retry_after),
            None => self.backoff_ceiling(retry).mul_f64(fastrand::f64()),
        }
    }

    /// Runs `attempt` until it gives a final verdict, the attempts run out,
    /// or the next wait would not leave [`MIN_ATTEMPT`] before the deadline;
    /// returns the last outcome and how the call went.
    ///
    /// Each attempt may take `attempt_timeout`, cut to what is left of the
    /// deadline. This is the one retry loop: [`crate::Client::log_event`] and
    /// the generated client's calls (through [`crate::api::Hooks`]) both run
    /// on it.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        attempt_timeout: Duration,
        mut attempt: F,
    ) -> (T, Tally)
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Verdict<T>>,
    {
        let started = Instant::now();
        // No deadline when it is too far away to represent.
        let deadline = started.checked_add(self.deadline);
        let remaining = || {
            deadline.map_or(Duration::MAX, |at| {
                at.saturating_duration_since(Instant::now())
            })
        };
        let tally = |attempts| Tally {
            attempts,
            elapsed: started.elapsed(),
        };
        let mut number = 0;
        // Attempts that count against `max_attempts`: not those a server
        // throttled, which only the deadline bounds.
        let mut counted = 0;
        let mut throttles = 0;
        let mut ask_first = false;
        loop {
            number += 1;
            let timeout = attempt_timeout.min(remaining());
            let this = Attempt {
                number,
                timeout,
                deadline,
                ask_first,
                last: counted + 1 >= self.max_attempts,
            };
            let (outcome, next) = match attempt(this).await {
                Verdict::Final(outcome) => return (outcome, tally(number)),
                Verdict::Retryable { outcome, next } => (outcome, next),
            };
            if !next.throttled || self.max_attempts == 1 {
                counted += 1;
            }
            if counted >= self.max_attempts {
                return (outcome, tally(number));
            }
            ask_first = next.ask_first;
            let wait = if next.throttled {
                // The server's wait, and at least the backoff of as many
                // throttles in a row: a `Retry-After: 0` is not a licence
                // to ask again at once, for ever.
                throttles += 1;
                let backoff = self.wait_before(throttles - 1, None);
                backoff.max(self.wait_before(0, Some(next.retry_after.unwrap_or_default())))
            } else {
                throttles = 0;
                self.wait_before(counted.saturating_sub(1), next.retry_after)
            };
            // A retry with almost no time left would only turn the real
            // failure into a timeout.
            if wait.saturating_add(MIN_ATTEMPT) > remaining() {
                return (outcome, tally(number));
            }
            tracing::debug!(
                attempt = number,
                wait_ms = crate::millis::rounded(wait) as u64,
                "retrying a failed request"
            );
            tokio::time::sleep(wait).await;
            // The timer may have overrun the deadline.
            if remaining() < MIN_ATTEMPT {
                return (outcome, tally(number));
            }
        }
    }
}

/// What one attempt came to, for [`RetryPolicy::run`].
pub(crate) enum Verdict<T> {
    /// Success, or a failure retrying cannot fix: the call ends with it.
    Final(T),
    /// A failure worth another attempt, and what the next one should know.
    Retryable { outcome: T, next: Next },
}

impl<T> Verdict<T> {
    /// The same verdict on what `f` makes of its outcome.
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Verdict<U> {
        match self {
            Verdict::Final(outcome) => Verdict::Final(f(outcome)),
            Verdict::Retryable { outcome, next } => Verdict::Retryable {
                outcome: f(outcome),
                next,
            },
        }
    }
}

/// What a failed attempt tells the retry loop about the next one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Next {
    /// The wait the server asked for (`Retry-After`).
    pub(crate) retry_after: Option<Duration>,
    /// The server throttled the request (429): being told to slow down
    /// does not use up an attempt, only time.
    pub(crate) throttled: bool,
    /// The connection closed while the body was being written: the next
    /// attempt asks before sending its body (see `client/body.rs`).
    pub(crate) ask_first: bool,
}

/// One attempt's number (from 1) and how long it may take.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attempt {
    pub(crate) number: u32,
    pub(crate) timeout: Duration,
    /// When the whole call must end (`None`: too far away to represent).
    pub(crate) deadline: Option<Instant>,
    /// Send `Expect: 100-continue` and hold the body back (the previous
    /// attempt's connection closed while its body was being written).
    pub(crate) ask_first: bool,
    /// A failure of this attempt that uses up an attempt ends the call: a
    /// throttle (429) does not use one up when more than one attempt is
    /// allowed.
    pub(crate) last: bool,
}

impl Attempt {
    /// This attempt after a wait before its request (the Logger's permit
    /// or pause): its timeout cut to what is left of the call's deadline
    /// at `now`, or `None` when less than [`MIN_ATTEMPT`] is left, and the
    /// call should end as timed out without sending.
    pub(crate) fn after_wait(self, now: Instant) -> Option<Attempt> {
        let left = self
            .deadline
            .map_or(Duration::MAX, |at| at.saturating_duration_since(now));
        (left >= MIN_ATTEMPT).then(|| Attempt {
            timeout: self.timeout.min(left),
            ..self
        })
    }
}

/// How a call went: requests made and time taken, waits included.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Tally {
    pub(crate) attempts: u32,
    pub(crate) elapsed: Duration,
}

impl Default for RetryPolicy {
    /// [`DEFAULT_MAX_ATTEMPTS`](Self::DEFAULT_MAX_ATTEMPTS) attempts, backoff
    /// from [`DEFAULT_INITIAL_BACKOFF`](Self::DEFAULT_INITIAL_BACKOFF) doubling
    /// up to [`DEFAULT_MAX_BACKOFF`](Self::DEFAULT_MAX_BACKOFF), within
    /// [`DEFAULT_DEADLINE`](Self::DEFAULT_DEADLINE), honouring `Retry-After`
    /// up to [`DEFAULT_MAX_RETRY_AFTER`](Self::DEFAULT_MAX_RETRY_AFTER).
    fn default() -> Self {
        RetryPolicy {
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            initial_backoff: Self::DEFAULT_INITIAL_BACKOFF,
            multiplier: Self::DEFAULT_MULTIPLIER,
            max_backoff: Self::DEFAULT_MAX_BACKOFF,
            deadline: Self::DEFAULT_DEADLINE,
            max_retry_after: Self::DEFAULT_MAX_RETRY_AFTER,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_after_a_wait_keeps_what_its_deadline_has_left() {
        let now = Instant::now();
        let attempt = |deadline| Attempt {
            number: 2,
            timeout: Duration::from_secs(30),
            deadline,
            ask_first: false,
            last: false,
        };
        let left = attempt(Some(now + Duration::from_secs(5))).after_wait(now);
        assert_eq!(
            left.map(|a| (a.number, a.timeout)),
            Some((2, Duration::from_secs(5)))
        );
        let far = attempt(None).after_wait(now).map(|a| a.timeout);
        assert_eq!(far, Some(Duration::from_secs(30)));
        assert!(attempt(Some(now + MIN_ATTEMPT)).after_wait(now).is_some());
        let short = now + MIN_ATTEMPT - Duration::from_millis(1);
        assert!(attempt(Some(short)).after_wait(now).is_none());
        assert!(
            attempt(Some(now))
                .after_wait(now + Duration::from_secs(1))
                .is_none()
        );
    }

    #[test]
    fn getters_give_back_the_defaults_and_what_the_setters_set() {
        let default = RetryPolicy::default();
        assert_eq!(default.max_attempts, RetryPolicy::DEFAULT_MAX_ATTEMPTS);
        assert_eq!(
            default.initial_backoff,
            RetryPolicy::DEFAULT_INITIAL_BACKOFF
        );
        assert_eq!(default.multiplier, RetryPolicy::DEFAULT_MULTIPLIER);
        assert_eq!(default.max_backoff, RetryPolicy::DEFAULT_MAX_BACKOFF);
        assert_eq!(default.deadline, RetryPolicy::DEFAULT_DEADLINE);
        assert_eq!(
            default.max_retry_after,
            RetryPolicy::DEFAULT_MAX_RETRY_AFTER
        );
        let set = RetryPolicy::default()
            .max_attempts(7)
            .initial_backoff(Duration::from_millis(3))
            .multiplier(1.5)
            .max_backoff(Duration::from_millis(40))
            .deadline(Duration::from_secs(9))
            .max_retry_after(Duration::from_secs(4));
        assert_eq!(set.max_attempts, 7);
        assert_eq!(set.initial_backoff, Duration::from_millis(3));
        assert_eq!(set.multiplier, 1.5);
        assert_eq!(set.max_backoff, Duration::from_millis(40));
        assert_eq!(set.deadline, Duration::from_secs(9));
        assert_eq!(set.max_retry_after, Duration::from_secs(4));
    }

    #[test]
    fn a_multiplier_of_one_or_more_is_kept_and_anything_else_counts_as_one() {
        let with = |m: f64| RetryPolicy::default().multiplier(m).multiplier;
        assert_eq!(with(2.0), 2.0);
        assert_eq!(with(1.0), 1.0);
        assert_eq!(with(0.5), 1.0);
        assert_eq!(with(f64::INFINITY), 1.0);
        assert_eq!(with(f64::NAN), 1.0);
    }

    /// Runs `run` on a paused clock in a thread of its own, and fails if it
    /// has not returned within 2 s of real time: a loop that never ends is
    /// a failing test, not a hang.
    fn run_bounded<F>(policy: RetryPolicy, plan: F) -> (Vec<(u32, Duration)>, Tally)
    where
        F: Fn(u32) -> Verdict<()> + Send + 'static,
    {
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap();
            let outcome = rt.block_on(async {
                let started = Instant::now();
                let mut seen = Vec::new();
                let ((), tally) = policy
                    .run(Duration::from_secs(1), |attempt| {
                        seen.push((attempt.number, started.elapsed()));
                        std::future::ready(plan(attempt.number))
                    })
                    .await;
                (seen, tally)
            });
            let _ = done.send(outcome);
        });
        result
            .recv_timeout(Duration::from_secs(2))
            .expect("RetryPolicy::run returned (it looped, or panicked)")
    }

    fn failed(retry_after: Option<Duration>) -> Verdict<()> {
        Verdict::Retryable {
            outcome: (),
            next: Next {
                retry_after,
                ..Next::default()
            },
        }
    }

    fn throttled() -> Verdict<()> {
        Verdict::Retryable {
            outcome: (),
            next: Next {
                retry_after: Some(Duration::ZERO),
                throttled: true,
                ask_first: false,
            },
        }
    }

    #[test]
    fn throttled_attempts_use_time_not_attempts_and_none_still_sends_once() {
        let policy = RetryPolicy::default().max_attempts(3);
        let (seen, tally) = run_bounded(policy.clone(), |n| {
            if n <= 10 {
                throttled()
            } else {
                Verdict::Final(())
            }
        });
        assert_eq!(seen.len(), 11, "ten 429s did not use up three attempts");
        assert_eq!(tally.attempts, 11, "every request is counted");
        // Two failures of another kind still end the call at three.
        let (seen, _) = run_bounded(policy, |n| match n {
            1 | 3 => failed(None),
            2 => throttled(),
            _ => failed(None),
        });
        assert_eq!(seen.len(), 4);
        let (seen, _) = run_bounded(RetryPolicy::none(), |_| throttled());
        assert_eq!(seen.len(), 1);
        // Only the deadline bounds a server that throttles for ever; its
        // 500 ms is waited (the backoff, at most 100 ms, is shorter).
        let bounded = RetryPolicy::default()
            .deadline(Duration::from_secs(5))
            .max_backoff(Duration::from_millis(100));
        let (seen, tally) = run_bounded(bounded, |_| Verdict::Retryable {
            outcome: (),
            next: Next {
                retry_after: Some(Duration::from_millis(500)),
                throttled: true,
                ask_first: false,
            },
        });
        assert_eq!(seen.len(), 10, "{:?}", tally);
        // Retry-After: 0 over and over: the backoff grows all the same.
        let policy = RetryPolicy::default()
            .initial_backoff(Duration::from_millis(100))
            .multiplier(2.0)
            .deadline(Duration::from_secs(10));
        let (seen, _) = run_bounded(policy, |_| throttled());
        assert!(seen.len() < 30, "{} requests in 10 s", seen.len());
    }

    #[test]
    fn attempts_are_numbered_from_one_and_the_tally_counts_them() {
        let policy = RetryPolicy::default().initial_backoff(Duration::from_millis(1));
        let (seen, tally) = run_bounded(policy, |n| {
            if n < 3 {
                failed(None)
            } else {
                Verdict::Final(())
            }
        });
        let numbers: Vec<u32> = seen.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [1, 2, 3]);
        assert_eq!(tally.attempts, 3);
    }

    #[test]
    fn a_wait_longer_than_the_deadline_ends_the_call_at_once() {
        let policy = RetryPolicy::default()
            .deadline(Duration::from_millis(500))
            .max_retry_after(Duration::from_secs(60));
        let (seen, tally) = run_bounded(policy, |_| failed(Some(Duration::from_secs(10))));
        assert_eq!(seen.len(), 1, "no second attempt after the deadline");
        assert_eq!(tally.attempts, 1);
        assert!(
            tally.elapsed < Duration::from_millis(1),
            "{:?}",
            tally.elapsed
        );
    }

    #[test]
    fn the_first_retry_waits_under_the_initial_backoff_not_a_later_step() {
        // Full jitter: the wait before retry 1 is uniform in [0, initial).
        // One step later it would be in [0, 10 × initial): 40 waits all under
        // `initial` would then happen with odds 10^-40.
        let policy = RetryPolicy::default()
            .max_attempts(2)
            .initial_backoff(Duration::from_millis(100))
            .multiplier(10.0)
            .max_backoff(Duration::from_secs(100));
        let mut longest = Duration::ZERO;
        for _ in 0..40 {
            let (seen, _) = run_bounded(policy.clone(), |_| failed(None));
            longest = longest.max(seen[1].1);
        }
        assert!(longest <= Duration::from_millis(100), "{longest:?}");
        assert!(longest > Duration::ZERO, "the waits are not all zero");
    }

    #[test]
    fn waits_stay_under_the_ceiling_and_retry_after_is_capped() {
        let policy = RetryPolicy::default()
            .initial_backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_millis(300))
            .max_retry_after(Duration::from_secs(2));
        for retry in 0..10 {
            for _ in 0..200 {
                assert!(policy.wait_before(retry, None) <= policy.backoff_ceiling(retry));
            }
        }
        assert_eq!(policy.backoff_ceiling(1), Duration::from_millis(200));
        let default = RetryPolicy::default();
        assert_eq!(default.backoff_ceiling(0), Duration::from_millis(200));
        assert_eq!(default.backoff_ceiling(2), Duration::from_millis(800));
        assert_eq!(default.backoff_ceiling(40), Duration::from_secs(10));
        assert_eq!(policy.backoff_ceiling(5), Duration::from_millis(300));
        assert_eq!(
            policy.wait_before(0, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            policy.wait_before(0, Some(Duration::from_secs(3600))),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn jitter_spreads_waits() {
        let policy = RetryPolicy::default();
        let waits: std::collections::HashSet<_> =
            (0..50).map(|_| policy.wait_before(3, None)).collect();
        assert!(waits.len() > 40, "full jitter draws distinct waits");
    }

    #[test]
    fn settings_are_clamped_to_sense() {
        let policy = RetryPolicy::default().max_attempts(0).multiplier(f64::NAN);
        assert_eq!(policy.max_attempts, 1);
        assert_eq!(policy.backoff_ceiling(5), policy.backoff_ceiling(0));
    }
}
