//! Keeping the API key out of what the client stores: bodies the server
//! sends back may echo it.

use std::borrow::Cow;

use secrecy::{ExposeSecret, SecretString};

/// The most of an answer's body an error keeps, for diagnosis.
const MAX_ERROR_BODY_CHARS: usize = 2048;

/// The shortest key looked for in events.
pub(super) const MIN_KEY_IN_EVENTS: usize = 8;

/// What replaces the key.
const REDACTED: &[u8] = b"[redacted]";

/// Removes the API key from answers.
#[derive(Clone)]
pub(super) struct Scrubber {
    key: SecretString,
}

impl Scrubber {
    pub(super) fn new(key: SecretString) -> Self {
        Scrubber { key }
    }

    /// `body` with every occurrence of the key replaced.
    pub(super) fn redact<'a>(&self, body: &'a [u8]) -> Cow<'a, [u8]> {
        let key = self.key.expose_secret().as_bytes();
        if key.is_empty() || !body.windows(key.len()).any(|w| w == key) {
            return Cow::Borrowed(body);
        }
        let mut out = Vec::with_capacity(body.len());
        let mut rest = body;
        while let Some(at) = rest.windows(key.len()).position(|w| w == key) {
            out.extend_from_slice(&rest[..at]);
            out.extend_from_slice(REDACTED);
            rest = &rest[at + key.len()..];
        }
        out.extend_from_slice(rest);
        Cow::Owned(out)
    }

    /// `json`, an event's, with every occurrence of the key replaced. A
    /// key shorter than [`MIN_KEY_IN_EVENTS`] is not looked for: it would
    /// match ordinary text (real keys are far longer).
    pub(super) fn redact_event<'a>(&self, json: &'a [u8]) -> Cow<'a, [u8]> {
        if self.key.expose_secret().len() < MIN_KEY_IN_EVENTS {
            return Cow::Borrowed(json);
        }
        self.redact(json)
    }

    /// Replaces the key in `text`, an event's string (a key shorter than
    /// [`MIN_KEY_IN_EVENTS`] is not looked for).
    pub(super) fn redact_text(&self, text: &mut String) {
        let key = self.key.expose_secret();
        if key.len() >= MIN_KEY_IN_EVENTS && text.contains(key) {
            *text = text.replace(key, "[redacted]");
        }
    }

    /// The start of an answer's body as text, for an error: the key is
    /// removed first, then the text is cut, so no part of a key that
    /// straddles the cut survives.
    pub(super) fn text(&self, body: &[u8]) -> String {
        String::from_utf8_lossy(&self.redact(body))
            .chars()
            .take(MAX_ERROR_BODY_CHARS)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "hh-0123456789abcdefghij";

    fn scrubber() -> Scrubber {
        Scrubber::new(SecretString::from(KEY))
    }

    /// `work` on a thread of its own, failing if it has not returned within
    /// 2 s: a scan that never ends is a failing test, not a hang.
    fn bounded<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(work());
        });
        result
            .recv_timeout(std::time::Duration::from_secs(2))
            .expect("the scrubber returned (it looped, or panicked)")
    }

    #[test]
    fn a_key_straddling_the_cut_leaves_no_prefix() {
        for before in [MAX_ERROR_BODY_CHARS - 8, MAX_ERROR_BODY_CHARS - 1, 5] {
            let body = format!("{}{KEY}{}", "x".repeat(before), "y".repeat(10));
            let text = bounded(move || scrubber().text(body.as_bytes()));
            assert!(!text.contains(&KEY[..3]), "{before}: {text}");
            assert!(text.chars().count() <= MAX_ERROR_BODY_CHARS);
        }
    }

    #[test]
    fn every_occurrence_is_redacted_and_other_bytes_kept() {
        let body = format!("a{KEY}b{KEY}{KEY}c\u{fffd}{}{KEY}", "z".repeat(40));
        let redacted = bounded(move || scrubber().redact(body.as_bytes()).into_owned());
        assert_eq!(
            String::from_utf8(redacted).unwrap(),
            format!(
                "a[redacted]b[redacted][redacted]c\u{fffd}{}[redacted]",
                "z".repeat(40)
            )
        );
        // A body without the key is given back as it is, not copied.
        let clean = "clean".repeat(20);
        assert!(matches!(
            scrubber().redact(clean.as_bytes()),
            Cow::Borrowed(_)
        ));
    }
}
