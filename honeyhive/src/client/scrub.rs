//! Keeping the API key out of what the client stores and sends: bodies
//! the server sends back may echo it, and an event may carry it. The one
//! place the key is replaced, whatever the body.

use std::borrow::Cow;

use memchr::memmem::Finder;
use secrecy::{ExposeSecret, SecretString};

/// The most of an answer's body an error keeps, for diagnosis.
const MAX_ERROR_BODY_CHARS: usize = 2048;

/// The shortest key looked for in events.
pub(super) const MIN_KEY_IN_EVENTS: usize = 8;

/// What replaces the key.
const REDACTED: &[u8] = b"[redacted]";

/// Removes the API key from answers and from what leaves.
///
/// Its searcher, built once since every body that leaves is searched,
/// holds a copy of the key (as the `Authorization` header does); its
/// `Debug` shows neither.
#[derive(Clone)]
pub(super) struct Scrubber {
    key: Finder<'static>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scrubber([redacted])")
    }
}

impl Scrubber {
    pub(super) fn new(key: SecretString) -> Self {
        let key = Finder::new(key.expose_secret().as_bytes()).into_owned();
        Scrubber { key }
    }

    /// `body` with every occurrence of the key replaced.
    pub(super) fn redact<'a>(&self, body: &'a [u8]) -> Cow<'a, [u8]> {
        cow(body, replace_key(body, &self.key))
    }

    /// The key as looked for in events: not when shorter than
    /// [`MIN_KEY_IN_EVENTS`], as it would match ordinary text (real keys
    /// are far longer).
    fn key_in_events(&self) -> Option<&Finder<'static>> {
        (self.key.needle().len() >= MIN_KEY_IN_EVENTS).then_some(&self.key)
    }

    /// `json`, an event's, with every occurrence of the key replaced (see
    /// [`MIN_KEY_IN_EVENTS`]).
    pub(super) fn redact_event<'a>(&self, json: &'a [u8]) -> Cow<'a, [u8]> {
        cow(
            json,
            self.key_in_events().and_then(|key| replace_key(json, key)),
        )
    }

    /// Replaces the key in `out[start..]`, events' JSON just written to
    /// the end of a body: what a body that leaves goes through.
    pub(super) fn redact_written(&self, out: &mut Vec<u8>, start: usize) {
        if let Cow::Owned(clean) = self.redact_event(&out[start..]) {
            out.truncate(start);
            out.extend_from_slice(&clean);
        }
    }

    /// Replaces the key in `text`, an event's string (a key shorter than
    /// [`MIN_KEY_IN_EVENTS`] is not looked for).
    pub(super) fn redact_text(&self, text: &mut String) {
        let replaced = self
            .key_in_events()
            .and_then(|key| replace_key(text.as_bytes(), key));
        // The key is UTF-8 and so is the marker: a whole key out of UTF-8
        // leaves UTF-8.
        if let Some(clean) = replaced.and_then(|bytes| String::from_utf8(bytes).ok()) {
            *text = clean;
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

/// `bytes` with every occurrence of `key` replaced by the marker; `None`
/// when it has none (or `key` is empty): the one place the key is
/// replaced.
fn replace_key(bytes: &[u8], key: &Finder<'_>) -> Option<Vec<u8>> {
    let length = key.needle().len();
    if length == 0 {
        return None;
    }
    // memchr's substring search (SIMD): every body that leaves is scanned,
    // so a comparison at each byte would cost more than serializing it.
    let mut found = key.find_iter(bytes).peekable();
    found.peek()?;
    let mut out = Vec::with_capacity(bytes.len());
    let mut from = 0;
    // Non-overlapping, in order (memmem's find_iter).
    for at in found {
        out.extend_from_slice(&bytes[from..at]);
        out.extend_from_slice(REDACTED);
        from = at + length;
    }
    out.extend_from_slice(&bytes[from..]);
    Some(out)
}

/// `replaced` if there is one, else `original` as it is.
fn cow(original: &[u8], replaced: Option<Vec<u8>>) -> Cow<'_, [u8]> {
    replaced.map_or(Cow::Borrowed(original), Cow::Owned)
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
    fn events_lose_the_key_in_place_in_text_and_only_a_key_long_enough() {
        let mut out = format!("[{{\"a\":\"{KEY}\"}}").into_bytes();
        let start = 1;
        scrubber().redact_written(&mut out, start);
        assert_eq!(String::from_utf8(out).unwrap(), r#"[{"a":"[redacted]"}"#);
        let mut text = format!("é{KEY}é");
        scrubber().redact_text(&mut text);
        assert_eq!(text, "é[redacted]é");
        // A key too short to look for in events is still out of answers.
        let short = Scrubber::new(SecretString::from("k1"));
        let mut text = "k1k1".to_owned();
        short.redact_text(&mut text);
        assert_eq!(text, "k1k1");
        assert!(matches!(short.redact_event(b"k1"), Cow::Borrowed(_)));
        assert_eq!(&*short.redact(b"k1"), b"[redacted]");
    }

    #[test]
    fn its_debug_shows_no_key() {
        let shown = format!("{:?}", scrubber());
        assert!(!shown.contains(KEY), "{shown}");
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
