//! Sampling by session: keep a fraction of sessions, decided from the
//! session id alone, so every process (and every SDK using the same rule)
//! keeps or drops the same sessions and a distributed trace stays whole.
//!
//! The rule: a session is kept when the hash of its id's UTF-8 bytes, as a
//! fraction of 2^64, is below the rate; the hash is 64-bit FNV-1a, then
//! MurmurHash3's 64-bit finalizer (`fmix64`), which spreads ids that differ
//! only at their end (`session-1`, `session-2`) over the whole range.
//! Both are written out here (a dozen lines) because the rule must never
//! change with a dependency's version.

use crate::error::Error;

/// A sample rate, checked: the fraction of sessions kept, 0 to 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SampleRate {
    rate: f64,
    /// Hashes below this are kept; `None`: every session is.
    below: Option<u64>,
}

impl SampleRate {
    /// Every session kept.
    pub(crate) const ALL: SampleRate = SampleRate {
        rate: 1.0,
        below: None,
    };

    /// `rate` checked, for the setting `setting` (named in the error).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on `setting` when `rate` is not a number
    /// from 0 to 1.
    pub(crate) fn new(setting: &str, rate: f64) -> Result<SampleRate, Error> {
        if !(0.0..=1.0).contains(&rate) {
            return Err(Error::invalid(
                setting,
                format!(
                    "is {rate}; set it to the fraction of sessions to keep, from 0 (none) to 1 \
                     (all), such as 0.1"
                ),
            ));
        }
        if rate >= 1.0 {
            return Ok(SampleRate::ALL);
        }
        // 2^64 × rate, below 2^64 since rate < 1.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "rate is in [0, 1), so the product is in [0, 2^64)"
        )]
        let below = (rate * 18_446_744_073_709_551_616.0) as u64;
        Ok(SampleRate {
            rate,
            below: Some(below),
        })
    }

    /// The fraction of sessions kept.
    pub(crate) fn rate(self) -> f64 {
        self.rate
    }

    /// Whether events of `session_id` are sent.
    pub(crate) fn keeps(self, session_id: &str) -> bool {
        match self.below {
            None => true,
            Some(below) => fixed_hash(session_id.as_bytes()) < below,
        }
    }
}

/// The fixed 64-bit hash of `bytes` that sampling uses (FNV-1a, then
/// MurmurHash3's finalizer): the same on every machine and in every
/// language that implements both.
pub(crate) fn fixed_hash(bytes: &[u8]) -> u64 {
    fmix64(fnv1a(bytes))
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(PRIME))
}

/// MurmurHash3's 64-bit finalizer.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_its_published_test_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    /// The rule, pinned: these values were computed outside this code
    /// (Python, from the published definitions of FNV-1a and fmix64), so
    /// a change to the hash, which would split every distributed trace
    /// between versions, fails here.
    #[test]
    fn the_decision_for_given_ids_never_changes() {
        let hashes = [
            ("session-1", 0xf267_abb3_2d45_0b1f_u64),
            ("session-2", 0x2c14_1066_c5aa_3638),
            ("checkout-7", 0x23f1_0438_1cbe_a6a9),
            (
                "0f8e2a8c-2f57-4d8e-9a39-0c6a4f1b2d11",
                0x000d_9aca_3ef6_725d,
            ),
            ("a", 0x82a2_a958_a9be_ce5b),
            ("user-42", 0xa395_32c7_ab05_1e8d),
        ];
        for (id, hash) in hashes {
            assert_eq!(fmix64(fnv1a(id.as_bytes())), hash, "{id}");
        }
        let half = SampleRate::new("sample_rate", 0.5).unwrap();
        let kept: Vec<&str> = hashes
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| half.keeps(id))
            .collect();
        assert_eq!(
            kept,
            [
                "session-2",
                "checkout-7",
                "0f8e2a8c-2f57-4d8e-9a39-0c6a4f1b2d11"
            ]
        );
    }

    #[test]
    fn about_the_rate_of_sessions_is_kept_and_the_same_ones_each_time() {
        let rate = SampleRate::new("sample_rate", 0.25).unwrap();
        let kept: Vec<bool> = (0..20_000)
            .map(|i| rate.keeps(&format!("session-{i}")))
            .collect();
        let share = kept.iter().filter(|&&k| k).count() as f64 / 20_000.0;
        assert!((share - 0.25).abs() < 0.02, "{share}");
        let again: Vec<bool> = (0..20_000)
            .map(|i| rate.keeps(&format!("session-{i}")))
            .collect();
        assert_eq!(kept, again);
    }

    #[test]
    fn zero_keeps_none_one_keeps_all_and_outside_is_refused_naming_the_setting() {
        let none = SampleRate::new("sample_rate", 0.0).unwrap();
        let all = SampleRate::new("sample_rate", 1.0).unwrap();
        for i in 0..1000 {
            let id = format!("s{i}");
            assert!(!none.keeps(&id));
            assert!(all.keeps(&id));
        }
        for bad in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let err = SampleRate::new("HH_SAMPLE_RATE", bad).unwrap_err();
            assert!(
                err.to_string().starts_with("invalid HH_SAMPLE_RATE: is "),
                "{err}"
            );
        }
    }
}
