//! Progress on stderr, as every long command shows it: a bar on a
//! terminal, a plain line every few seconds otherwise, nothing with
//! `--quiet`. The commands say what the bar and the line hold.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the plain line is printed when stderr is not a terminal.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub enum Progress {
    Quiet,
    Bar(ProgressBar),
    Plain { last: Instant },
}

impl Progress {
    /// A bar of `total` steps (a spinner if unknown) drawn with `template`
    /// (indicatif's), when stderr is a terminal.
    pub fn new(quiet: bool, total: Option<u64>, template: &str) -> Progress {
        if quiet {
            return Progress::Quiet;
        }
        if !std::io::stderr().is_terminal() {
            return Progress::Plain {
                last: Instant::now(),
            };
        }
        let fallback = match total {
            Some(_) => ProgressStyle::default_bar(),
            None => ProgressStyle::default_spinner(),
        };
        let style = ProgressStyle::with_template(template).unwrap_or(fallback);
        Progress::Bar(
            ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr()).with_style(style),
        )
    }

    /// Whether the plain line is due (and, if so, counts from now).
    pub fn plain_due(&mut self) -> bool {
        match self {
            Progress::Plain { last } if last.elapsed() >= PLAIN_EVERY => {
                *last = Instant::now();
                true
            }
            _ => false,
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
