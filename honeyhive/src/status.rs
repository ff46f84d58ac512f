//! What an HTTP answer says of the request that got it: worth sending again,
//! refused for what it carries, and how long the server asks to wait. The
//! one home of these rules: the retry loop, [`Error::is_retryable`],
//! [`DeadLetter::is_refused`] and the `honeyhive` command's rejects all ask
//! here.
//!
//! [`Error::is_retryable`]: crate::Error::is_retryable
//! [`DeadLetter::is_refused`]: crate::DeadLetter::is_refused

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// The most of an answer's body the client reads, success or error: the
/// documented answers are a few dozen bytes; anything longer is cut here
/// rather than held in memory.
pub(crate) const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Worth sending again: a timeout (408), too many requests (429), or a
/// server failing for now (500, 502, 503, 504). The AWS and Google SDKs'
/// list, which the official HoneyHive SDKs' retries follow.
pub(crate) fn retryable(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// The API refused the request for what it carries: a 4xx other than
/// 401/403 (the key), 408 (a timeout) and 429 (the rate). Sending it again
/// as it is will not help.
pub(crate) fn refused(status: u16) -> bool {
    (400..500).contains(&status) && !matches!(status, 401 | 403 | 408 | 429)
}

/// The wait an answer's `Retry-After` header asks for.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// Reads a `Retry-After` value (RFC 9110, 10.2.3): a number of seconds, or
/// an HTTP date (a date in the past means "now").
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_is_retryable_refused_or_neither_never_both() {
        let retried: Vec<u16> = (100..600).filter(|s| retryable(*s)).collect();
        assert_eq!(retried, [408, 429, 500, 502, 503, 504]);
        assert!((100..600).all(|s| !(retryable(s) && refused(s))));
        for s in [400, 404, 409, 413, 422] {
            assert!(refused(s), "{s}");
        }
        for s in [200, 401, 403, 408, 429, 500, 503] {
            assert!(!refused(s), "{s}");
        }
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
