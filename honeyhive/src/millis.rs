//! Times and durations as HoneyHive carries them: milliseconds. The one home
//! of every conversion, on the wire and in messages.
//!
//! On the wire (the API page: "milliseconds since the Unix epoch", numbers):
//! a time is whole milliseconds since the epoch; a duration is milliseconds,
//! whole when it is, with microsecond precision below that. In messages, a
//! duration is rounded to the nearest millisecond.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Number;

/// `at` as whole milliseconds since the Unix epoch; `None` before it.
pub(crate) fn since_epoch(at: SystemTime) -> Option<Number> {
    let since = at.duration_since(UNIX_EPOCH).ok()?;
    Some(Number::from(
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX),
    ))
}

/// Now, in whole milliseconds since the Unix epoch (0 on a clock set
/// before it).
pub(crate) fn now() -> u64 {
    since_epoch(SystemTime::now())
        .and_then(|n| n.as_u64())
        .unwrap_or(0)
}

/// `took` in milliseconds as a JSON number: whole milliseconds stay
/// integers, anything finer keeps microsecond precision.
pub(crate) fn duration(took: Duration) -> Number {
    let micros = took.as_micros();
    if micros.is_multiple_of(1000) {
        Number::from(u64::try_from(micros / 1000).unwrap_or(u64::MAX))
    } else {
        // `micros` is finite, so is the quotient: from_f64 only refuses NaN
        // and infinities.
        Number::from_f64(micros as f64 / 1000.0).unwrap_or_else(|| Number::from(0u64))
    }
}

/// A number of milliseconds as a JSON number: whole ones stay integers.
/// `None` for NaN, infinities and negatives.
pub(crate) fn from_f64(millis: f64) -> Option<Number> {
    if !millis.is_finite() || millis < 0.0 {
        return None;
    }
    if millis.fract() == 0.0 && millis < u64::MAX as f64 {
        Some(Number::from(millis as u64))
    } else {
        Number::from_f64(millis)
    }
}

/// `duration` rounded to the nearest millisecond, for people.
pub(crate) fn rounded(duration: Duration) -> u128 {
    duration.as_nanos().saturating_add(500_000) / 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_milliseconds_integral_when_whole() {
        assert_eq!(duration(Duration::from_millis(840)).to_string(), "840");
        assert_eq!(duration(Duration::from_micros(1500)).to_string(), "1.5");
        assert_eq!(duration(Duration::from_nanos(999)).to_string(), "0");
        assert_eq!(duration(Duration::from_secs(3)).to_string(), "3000");
    }

    #[test]
    fn times_are_whole_milliseconds_since_the_epoch_and_none_before_it() {
        let at = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_999);
        assert_eq!(since_epoch(at).unwrap().to_string(), "1700000000123");
        assert_eq!(since_epoch(UNIX_EPOCH - Duration::from_secs(1)), None);
    }

    #[test]
    fn numbers_of_milliseconds_keep_whole_ones_whole_and_refuse_the_rest() {
        assert_eq!(from_f64(12.0).unwrap().to_string(), "12");
        assert_eq!(from_f64(0.25).unwrap().to_string(), "0.25");
        // 2^64 is whole but no u64 holds it: kept as the float it is.
        assert_eq!(
            from_f64(18446744073709551616.0).unwrap().as_f64(),
            Some(1.8446744073709552e19)
        );
        for bad in [f64::NAN, f64::INFINITY, -1.0] {
            assert_eq!(from_f64(bad), None);
        }
    }

    #[test]
    fn rounded_is_to_the_nearest_millisecond() {
        assert_eq!(rounded(Duration::from_micros(1499)), 1);
        assert_eq!(rounded(Duration::from_micros(1500)), 2);
        // No overflow at the top (`Duration::MAX` means "no limit" here).
        assert_eq!(
            rounded(Duration::MAX),
            Duration::MAX.as_nanos() / 1_000_000 + 1
        );
    }
}
