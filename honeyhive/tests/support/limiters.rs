//! Server-side rate limiters of the shapes APIs use, for loopback servers
//! in the tests and the benchmark sink: each admits a request or refuses
//! it (the server then answers 429 with `Retry-After: 1`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A rate limiter of one shape.
#[derive(Clone, Debug)]
pub enum Limiter {
    /// `per_window` requests per fixed window of `window`, counted from
    /// the start.
    FixedWindow {
        window: Duration,
        per_window: u32,
        started: Instant,
        current: u128,
        admitted: u32,
    },
    /// At most `most` requests in any `window`.
    SlidingWindow {
        window: Duration,
        most: usize,
        admitted: VecDeque<Instant>,
    },
    /// `per_second`, holding `burst` at most.
    TokenBucket {
        per_second: f64,
        burst: f64,
        tokens: f64,
        last: Instant,
    },
}

impl Limiter {
    /// Each shape admitting `per_second` in the long run: a fixed window
    /// of 100 ms, a sliding window of a second, a token bucket whose burst
    /// is a hundredth of a second's worth.
    pub fn shapes(per_second: u32) -> [(&'static str, Limiter); 3] {
        let now = Instant::now();
        [
            (
                "fixed window of 100 ms",
                Limiter::FixedWindow {
                    window: Duration::from_millis(100),
                    per_window: per_second / 10,
                    started: now,
                    current: 0,
                    admitted: 0,
                },
            ),
            (
                "sliding window of 1 s",
                Limiter::SlidingWindow {
                    window: Duration::from_secs(1),
                    most: per_second as usize,
                    admitted: VecDeque::new(),
                },
            ),
            (
                "token bucket, burst of 10 ms",
                Limiter::TokenBucket {
                    per_second: f64::from(per_second),
                    burst: (f64::from(per_second) / 100.0).max(1.0),
                    tokens: (f64::from(per_second) / 100.0).max(1.0),
                    last: now,
                },
            ),
        ]
    }

    /// The shape named on a command line: `fixed`, `sliding` or `bucket`
    /// (as in [`shapes`](Self::shapes)), or `bucket-1s`: a token bucket
    /// holding a second's worth.
    pub fn named(name: &str, per_second: u32) -> Option<Limiter> {
        if name == "bucket-1s" {
            return Some(Limiter::TokenBucket {
                per_second: f64::from(per_second),
                burst: f64::from(per_second),
                tokens: f64::from(per_second),
                last: Instant::now(),
            });
        }
        let index = ["fixed", "sliding", "bucket"]
            .iter()
            .position(|n| *n == name)?;
        Some(Self::shapes(per_second)[index].1.clone())
    }

    /// Whether a request arriving `now` is admitted.
    pub fn admit(&mut self, now: Instant) -> bool {
        match self {
            Limiter::FixedWindow {
                window,
                per_window,
                started,
                current,
                admitted,
            } => {
                let index = now.saturating_duration_since(*started).as_nanos() / window.as_nanos();
                if index != *current {
                    *current = index;
                    *admitted = 0;
                }
                *admitted += 1;
                *admitted <= *per_window
            }
            Limiter::SlidingWindow {
                window,
                most,
                admitted,
            } => {
                while admitted
                    .front()
                    .is_some_and(|t| now.saturating_duration_since(*t) >= *window)
                {
                    admitted.pop_front();
                }
                if admitted.len() >= *most {
                    return false;
                }
                admitted.push_back(now);
                true
            }
            Limiter::TokenBucket {
                per_second,
                burst,
                tokens,
                last,
            } => {
                let elapsed = now.saturating_duration_since(*last).as_secs_f64();
                *tokens = (*tokens + elapsed * *per_second).min(*burst);
                *last = now;
                if *tokens >= 1.0 {
                    *tokens -= 1.0;
                    true
                } else {
                    false
                }
            }
        }
    }
}
