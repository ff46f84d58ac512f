//! Progress of `send`: a bar with events/s and ETA on a terminal, a plain
//! line every few seconds otherwise, nothing with `--quiet`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::tracker::LineCounts;

/// How often the plain line is printed when stderr is not a terminal.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub enum Progress {
    Quiet,
    Bar(ProgressBar),
    Plain { last: Instant },
}

impl Progress {
    /// `total_bytes`: the inputs' size when known (files), for the ETA.
    pub fn new(quiet: bool, total_bytes: Option<u64>) -> Progress {
        if quiet {
            return Progress::Quiet;
        }
        if !std::io::stderr().is_terminal() {
            return Progress::Plain {
                last: Instant::now(),
            };
        }
        let bar = match total_bytes {
            Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template(
                        "{bar:30} {percent:>3}% {binary_bytes}/{binary_total_bytes} ETA {eta}  {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("{spinner} {binary_bytes}  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        Progress::Bar(bar)
    }

    /// Shows `counts` after `bytes` of input and `elapsed`.
    pub fn update(&mut self, bytes: u64, counts: &LineCounts, elapsed: Duration) {
        let rate = per_second(counts.sent, elapsed);
        match self {
            Progress::Quiet => {}
            Progress::Bar(bar) => {
                bar.set_position(bytes);
                bar.set_message(format!(
                    "{rate:.0} events/s  sent {}  rejected {}  failed {}",
                    counts.sent, counts.rejected, counts.failed
                ));
            }
            Progress::Plain { last } => {
                if last.elapsed() >= PLAIN_EVERY {
                    *last = Instant::now();
                    eprintln!(
                        "honeyhive send: {} lines read, sent {}, rejected {}, failed {}, skipped {}; {rate:.0} events/s",
                        counts.lines, counts.sent, counts.rejected, counts.failed, counts.skipped
                    );
                }
            }
        }
    }

    /// Prints `line` on stderr above the bar (not through it).
    pub fn say(&self, line: &str) {
        match self {
            Progress::Quiet => {}
            Progress::Bar(bar) => bar.println(line),
            Progress::Plain { .. } => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

pub fn per_second(events: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        events as f64 / seconds
    } else {
        0.0
    }
}
