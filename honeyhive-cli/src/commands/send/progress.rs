//! Progress of `send`: a bar with events/s and ETA on a terminal, a plain
//! line every few seconds otherwise, nothing with `--quiet`.

use std::time::Duration;

use super::tracker::LineCounts;
use crate::progress::per_second;

pub struct Progress(crate::progress::Progress);

impl Progress {
    /// `total_bytes`: the inputs' size when known (files), for the ETA.
    pub fn new(quiet: bool, total_bytes: Option<u64>) -> Progress {
        let template = match total_bytes {
            Some(_) => {
                "{bar:30} {percent:>3}% {binary_bytes}/{binary_total_bytes} ETA {eta}  {msg}"
            }
            None => "{spinner} {binary_bytes}  {msg}",
        };
        Progress(crate::progress::Progress::new(quiet, total_bytes, template))
    }

    /// Shows `counts` after `bytes` of input and `elapsed`.
    pub fn update(&mut self, bytes: u64, counts: &LineCounts, elapsed: Duration) {
        let rate = per_second(counts.sent, elapsed);
        if let crate::progress::Progress::Bar(bar) = &self.0 {
            bar.set_position(bytes);
            bar.set_message(format!(
                "{rate:.0} events/s  sent {}  rejected {}  failed {}",
                counts.sent, counts.rejected, counts.failed
            ));
        } else if self.0.plain_due() {
            eprintln!(
                "honeyhive send: {} lines read, sent {}, rejected {}, failed {}, skipped {}; {rate:.0} events/s",
                counts.lines, counts.sent, counts.rejected, counts.failed, counts.skipped
            );
        }
    }

    /// Prints `line` on stderr above the bar (not through it).
    pub fn say(&self, line: &str) {
        self.0.say(line);
    }

    pub fn finish(&self) {
        self.0.finish();
    }
}
