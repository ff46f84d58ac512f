//! What the [`Logger`](super::Logger) reports: counters and the reports of
//! `flush` and `shutdown`.

use crate::dead_letter::DeadLetter;

/// Counters since the logger started. Every event `log` accepted is, at any
/// moment, pending, sent or failed: `enqueued == sent + failed + pending`
/// once the logger is quiet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoggerStats {
    /// Events `log` accepted into the queue.
    pub enqueued: u64,
    /// Events the API recorded.
    pub sent: u64,
    /// Requests beyond the first, over all events.
    pub retried: u64,
    /// Events accepted but not delivered (handed back as dead letters).
    pub failed: u64,
    /// Events `log` refused because the queue was full or the logger
    /// stopped.
    pub dropped: u64,
    /// Events not sent because their session was sampled out
    /// ([`ClientBuilder::sample_rate`](crate::ClientBuilder::sample_rate)):
    /// never queued, never dead letters.
    pub events_sampled_out: u64,
    /// Events queued or in flight now.
    pub pending: u64,
    /// Requests the logger lets be in flight now: adapted to the server's
    /// answers between 1 and [`max_in_flight`](super::LoggerConfig::max_in_flight)
    /// (see the [`Logger` docs](crate::Logger#concurrency-that-adapts)), or fixed.
    pub in_flight_limit: usize,
    /// Requests per second the logger holds itself to since a server
    /// throttled it (429), adapted to what the server admits (see the
    /// [`Logger` docs](crate::Logger#rate-limits)); `None` until then.
    pub send_rate_limit: Option<u32>,
}

/// What [`Logger::flush`](super::Logger::flush) or
/// [`Logger::shutdown`](super::Logger::shutdown) achieved.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LoggerReport {
    /// Whether every event enqueued before the call was *settled* within
    /// the timeout: sent, or handed back as a dead letter that the
    /// dead-letter sink (if any) has taken. Settled is not sent: `true`
    /// with every event failed is a complete report of failures, so look
    /// at [`stats`](Self::stats) and [`dead_letters`](Self::dead_letters)
    /// for what happened.
    pub complete: bool,
    /// Counters at the end of the call, as [`Logger::stats`](super::Logger::stats)
    /// gives them.
    pub stats: LoggerStats,
    /// The events handed back since the previous report, up to
    /// [`LoggerConfig::max_report_letters`](super::LoggerConfig::max_report_letters).
    pub dead_letters: Vec<DeadLetter>,
    /// Dead letters beyond that bound (the sink, if any, got them all).
    pub dead_letters_omitted: u64,
    /// How many of [`dead_letters`](Self::dead_letters), the last ones, the
    /// dead-letter sink did not take before `shutdown`'s budget ran out:
    /// they are in this report only (kept here whatever the bound). Always
    /// 0 from `flush`.
    pub dead_letters_not_in_sink: u64,
}
