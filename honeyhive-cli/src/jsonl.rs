//! Records out as JSON lines on stdout (buffered: one write per few KiB,
//! not per line), and their count on stderr while they come.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::api_error;
use crate::exit::{Exit, Fail};

/// JSON lines on stdout. A reader that went away (`| head`) ends the
/// output quietly: [`Lines::write`] says so, and the command stops reading.
pub struct Lines {
    out: io::BufWriter<io::Stdout>,
    gone: bool,
}

impl Lines {
    pub fn stdout() -> Lines {
        Lines {
            out: io::BufWriter::with_capacity(64 * 1024, io::stdout()),
            gone: false,
        }
    }

    /// Writes `record` as one line; `false` once the reader has gone.
    pub fn write(&mut self, record: &impl Serialize) -> Result<bool, Fail> {
        if self.gone {
            return Ok(false);
        }
        let written = serde_json::to_writer(&mut self.out, record)
            .map_err(io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        self.check(written)
    }

    /// Flushes what is buffered.
    pub fn finish(mut self) -> Result<bool, Fail> {
        let flushed = self.out.flush();
        self.check(flushed)
    }

    fn check(&mut self, result: io::Result<()>) -> Result<bool, Fail> {
        match result {
            Ok(()) => Ok(!self.gone),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.gone = true;
                Ok(false)
            }
            Err(e) => Err(Fail::new(
                Exit::Usage,
                format!("cannot write to stdout: {e}"),
            )),
        }
    }
}

/// How many records came, shown on stderr (a terminal only, at most twice
/// a second) and said at the end.
pub struct Count {
    what: &'static str,
    n: u64,
    started: Instant,
    shown: Instant,
    live: bool,
}

impl Count {
    pub fn new(what: &'static str, quiet: bool) -> Count {
        let now = Instant::now();
        Count {
            what,
            n: 0,
            started: now,
            shown: now,
            live: !quiet && io::stderr().is_terminal(),
        }
    }

    pub fn one(&mut self) {
        self.n += 1;
        if self.live
            && self.n.is_multiple_of(256)
            && self.shown.elapsed() > Duration::from_millis(500)
        {
            self.shown = Instant::now();
            eprint!("\r{} {}", self.n, self.what);
        }
    }

    pub fn done(&self) {
        if self.live {
            eprintln!(
                "\r{} {} in {:.1} s",
                self.n,
                self.what,
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    /// The failure that ended the stream, saying how many records came
    /// before it (all of them printed).
    pub fn failed(&self, error: honeyhive::Error) -> Fail {
        if self.live {
            eprintln!();
        }
        let mut fail = api_error(error);
        if self.n > 0 && fail.exit == Exit::Unreachable {
            // Something was read: not "could not be reached at all".
            fail.exit = Exit::Partial;
        }
        if self.n > 0 {
            fail.message = format!(
                "after {} {} (all printed): {}",
                self.n, self.what, fail.message
            );
        }
        fail
    }
}
