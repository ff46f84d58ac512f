//! Reading JSONL input as lines of UTF-8 text, whatever the file was saved
//! as: a leading UTF-8 byte-order mark (Windows tools write one) is
//! skipped; a file in UTF-16 or UTF-32 is refused, naming its encoding; a
//! line that is not UTF-8 is a problem of that line, not of the file.
//! `send` and `validate` read through it, so both see the same lines.

use std::io::{self, BufRead};
use std::path::PathBuf;

/// The inputs `send` and `validate` take.
#[derive(clap::Args, Debug)]
pub struct Inputs {
    /// JSONL files, in order; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Session of bare events (and of wrapped lines that name none).
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
}

/// The route lines go by: `send` sends by it, and `validate` checks each
/// line against what it refuses, so both take it alike.
#[derive(clap::Args, Debug)]
pub struct RouteArgs {
    /// Send N events per request through POST /v1/events/batch (HoneyHive's
    /// current route) instead of one per request through
    /// POST /session/{id}/event. Every event then needs an event_type; a
    /// batch the API refuses is split down to the lines it refuses.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub batch: Option<u64>,
}

impl RouteArgs {
    pub fn route(&self) -> honeyhive::Route {
        match self.batch {
            Some(_) => honeyhive::Route::EventBatch,
            None => honeyhive::Route::Event,
        }
    }
}

/// The UTF-8 byte-order mark.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// An encoding this command does not read, found at the start of a file.
#[derive(Debug, PartialEq, Eq)]
pub struct NotUtf8(&'static str);

impl std::fmt::Display for NotUtf8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the file is {}, not UTF-8; convert it first, such as with \
             `iconv -f {} -t UTF-8 FILE > FILE.utf8.jsonl`",
            self.0,
            match self.0 {
                "UTF-32 (little-endian)" => "UTF-32LE",
                "UTF-32 (big-endian)" => "UTF-32BE",
                "UTF-16 (big-endian)" => "UTF-16BE",
                _ => "UTF-16LE",
            }
        )
    }
}

/// What the first bytes of a file say of its encoding: how many bytes of
/// UTF-8 byte-order mark to skip, or the encoding it is in instead.
pub fn sniff(start: &[u8]) -> Result<usize, NotUtf8> {
    // UTF-32 first: its little-endian mark begins with UTF-16's.
    match start {
        [0xFF, 0xFE, 0, 0, ..] => return Err(NotUtf8("UTF-32 (little-endian)")),
        [0, 0, 0xFE, 0xFF, ..] => return Err(NotUtf8("UTF-32 (big-endian)")),
        [0xFF, 0xFE, ..] => return Err(NotUtf8("UTF-16 (little-endian)")),
        [0xFE, 0xFF, ..] => return Err(NotUtf8("UTF-16 (big-endian)")),
        _ => {}
    }
    if start.starts_with(UTF8_BOM) {
        return Ok(UTF8_BOM.len());
    }
    // UTF-16 without a mark: JSON starts with ASCII, so every other byte of
    // the first characters is zero.
    let pairs: Vec<&[u8]> = start.chunks_exact(2).take(4).collect();
    if pairs.len() == 4 {
        if pairs.iter().all(|p| p[0] != 0 && p[1] == 0) {
            return Err(NotUtf8("UTF-16 (little-endian)"));
        }
        if pairs.iter().all(|p| p[0] == 0 && p[1] != 0) {
            return Err(NotUtf8("UTF-16 (big-endian)"));
        }
    }
    Ok(0)
}

/// Reads the next line (up to and with its `\n`) into `bytes`; gives how
/// many bytes it read (0 at the end).
pub fn read_line(input: &mut dyn BufRead, bytes: &mut Vec<u8>) -> io::Result<usize> {
    bytes.clear();
    input.read_until(b'\n', bytes)
}

/// A line's text without its line ending, or what makes it not UTF-8.
pub fn text(bytes: &[u8]) -> Result<&str, String> {
    let line = bytes
        .strip_suffix(b"\n")
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .unwrap_or(bytes);
    std::str::from_utf8(line).map_err(|e| {
        let at = e.valid_up_to();
        format!(
            "not UTF-8: byte 0x{:02X} at column {} cannot start a character; save the file as UTF-8",
            line[at],
            at + 1
        )
    })
}

/// An event type from a flag (`--type model`), parsed as the library
/// parses it, so the CLI knows the types the library knows.
pub fn event_type(text: &str) -> Result<honeyhive::EventType, String> {
    text.parse::<honeyhive::EventType>()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_utf8_mark_is_skipped_and_other_encodings_are_named() {
        assert_eq!(sniff(b"\xEF\xBB\xBF{\"a\":1}"), Ok(3));
        assert_eq!(sniff(b"{\"a\":1}"), Ok(0));
        assert_eq!(sniff(b""), Ok(0));
        let named = |bytes: &[u8]| sniff(bytes).unwrap_err().to_string();
        assert!(named(b"\xFF\xFE{\0\"\0").starts_with("the file is UTF-16 (little-endian)"));
        assert!(named(b"\xFE\xFF\0{\0\"").starts_with("the file is UTF-16 (big-endian)"));
        assert!(named(b"\xFF\xFE\0\0{\0\0\0").starts_with("the file is UTF-32 (little-endian)"));
        assert!(named(b"\0\0\xFE\xFF\0\0\0{").starts_with("the file is UTF-32 (big-endian)"));
        // UTF-16 saved without a mark.
        let unmarked: Vec<u8> = "{\"event\""
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert!(named(&unmarked).contains("UTF-16 (little-endian)"));
        assert!(named(&unmarked).contains("iconv -f UTF-16LE"));
    }

    #[test]
    fn a_line_that_is_not_utf8_says_where() {
        assert_eq!(text(b"{\"a\":\"b\"}\r\n"), Ok("{\"a\":\"b\"}"));
        assert_eq!(text(b"last"), Ok("last"));
        let latin1 = b"{\"name\":\"caf\xE9\"}\n";
        let problem = text(latin1).unwrap_err();
        assert!(
            problem.starts_with("not UTF-8: byte 0xE9 at column 13"),
            "{problem}"
        );
    }
}
