//! `honeyhive send FILE...`: JSONL events through the Logger.
//!
//! A reader thread streams each input line by line (memory does not grow
//! with the file), parses it and hands the event to the Logger, waiting
//! when its queue is full. The Logger reports each event's fate: sent
//! (the `OutcomeSink` hook) or a dead letter. A [`Tracker`] turns those into counts,
//! rejects-file lines and the checkpoint: the last line before which every
//! line is settled (sent, or written to the rejects file).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use honeyhive::{
    ClientBuilder, DeadLetter, LogError, Logger, LoggerConfig, RetryPolicy, Route, Sent, SessionId,
};
use serde_json::{Value, json};

use crate::config::{Api, config_error};
use crate::event_line::{self, ParsedLine};
use crate::exit::{Exit, Fail};
use crate::input;
use crate::progress::per_second;
use checkpoint::{Checkpoint, Position};
use progress::Progress;
use stop::{Stop, StopReason};
use tracker::{LineCounts, Tracker};

mod checkpoint;
mod progress;
mod stop;
mod tracker;

/// Sends JSONL events: each line `{"session_id": ..., "event": {...}}`
/// (dead-letter files replay as they are) or a bare event with --session.
///
/// Idempotent: an event without `event_id` gets one derived from its
/// session, line number and bytes, so sending a file twice records nothing
/// twice. Lines that fail go to the rejects file with `line` and `reason`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    input: input::Inputs,
    /// Requests in flight at most (the adaptive limit's ceiling).
    #[arg(long, value_name = "N", default_value_t = LoggerConfig::DEFAULT_MAX_IN_FLIGHT as u64,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    concurrency: u64,
    #[command(flatten)]
    route: input::RouteArgs,
    /// Records how far each file has been delivered; a re-run continues there.
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Where lines that fail go [default: FILE.rejects.jsonl, or
    /// stdin.rejects.jsonl for -].
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// How long an event is retried while the API fails it for a reason
    /// that may pass (5xx, 429, timeouts, connection failures), in seconds;
    /// only a refusal of the event itself, or this deadline, ends it as
    /// rejected or failed. A number of retries given with --max-retries (or
    /// HH_MAX_RETRIES) ends it sooner.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    retry_deadline: u64,
    /// How long to wait at the end of each file for events still being
    /// sent, in seconds [default: --retry-deadline plus 60].
    #[arg(long, value_name = "SECONDS")]
    drain_timeout: Option<u64>,
    /// No progress and no summary on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// The summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: Api,
}

/// Each event's fate, told to the tracker.
struct Outcomes(Arc<Tracker>);

impl honeyhive::OutcomeSink for Outcomes {
    fn sent(&self, sent: &Sent<'_>) {
        self.0.sent(sent.event_id);
    }

    fn dead_letter(&self, letter: &DeadLetter) {
        self.0.dead(letter);
    }
}

pub async fn run(args: Args) -> Result<Exit, Fail> {
    // A backfill retries what may pass until its deadline, as Vector's
    // sinks do, rather than for a few attempts: over a long file, a few
    // faults in a row for one line are bound to happen.
    let deadline = Duration::from_secs(args.retry_deadline);
    let mut builder = args.api.builder()?;
    if !args.api.max_retries_given() {
        builder = builder.retry_policy(
            RetryPolicy::default()
                .max_attempts(u32::MAX)
                .deadline(deadline),
        );
    }
    let client = builder.build().map_err(config_error)?;
    let drain_timeout = args
        .drain_timeout
        .unwrap_or(args.retry_deadline.saturating_add(60));
    let mut checkpoint = match &args.checkpoint {
        Some(path) => Some(Checkpoint::load(path)?),
        None => None,
    };
    let inputs = args
        .input
        .files
        .iter()
        .map(|path| Input::open(path))
        .collect::<Result<Vec<_>, _>>()?;

    // Every input's place, before anything is sent: a checkpoint that
    // does not fit one of them stops the run before its first request.
    let starts = inputs
        .iter()
        .map(|input| match &checkpoint {
            Some(checkpoint) => checkpoint.resume(&input.key),
            None => Ok(Position::default()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let stop = Arc::new(Stop::default());
    let tracker = Arc::new(Tracker::new(Arc::clone(&stop)));
    let mut config = LoggerConfig::default();
    config = config.route(args.route.route());
    if let Some(events) = args.route.batch {
        config = config.max_batch_events(events as usize);
    }
    let config = config
        .max_in_flight(args.concurrency as usize)
        // Enough to keep every request busy; small, so memory stays flat.
        // The byte bound holds a line three times the body limit, so that
        // an oversize line reaches the client, which cuts it to fit.
        .max_queue_events(4_096)
        .max_queue_bytes(3 * ClientBuilder::DEFAULT_MAX_BODY_BYTES)
        .max_report_letters(0)
        .outcomes(Outcomes(Arc::clone(&tracker)));
    let logger = Logger::new(&client, config).map_err(config_error)?;

    let on_signal = Arc::clone(&stop);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.set(StopReason::Interrupted);
            eprintln!(
                "honeyhive send: stopping after the events already read (Ctrl-C again to quit now)"
            );
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(Exit::Interrupted as u8 as i32);
            }
        }
    });

    let started = Instant::now();
    let mut retrying = Retrying::default();
    let total = inputs.iter().map(|i| i.size).sum::<Option<u64>>();
    let mut progress = Progress::new(args.quiet, total);
    let mut bytes_before = 0;
    // The input being sent and the position last written for it.
    let mut current: Option<(String, Position)> = None;
    for (input, from) in inputs.into_iter().zip(starts) {
        if !stop.going() {
            break;
        }
        let rejects = args
            .rejects
            .clone()
            .unwrap_or_else(|| input.default_rejects());
        tracker.start(&input.name, rejects, from);
        let reader = Reader {
            client: client.clone(),
            logger: logger.clone(),
            tracker: Arc::clone(&tracker),
            stop: Arc::clone(&stop),
            session: args.input.session.clone(),
            route: args.route.route(),
            runtime: tokio::runtime::Handle::current(),
            bytes: Arc::new(AtomicU64::new(0)),
        };
        let bytes = Arc::clone(&reader.bytes);
        let mut reading = tokio::task::spawn_blocking(move || reader.read(input.source, from));
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        current = Some((input.key.clone(), from));
        let read = loop {
            tokio::select! {
                read = &mut reading => break read,
                _ = tick.tick() => {
                    progress.update(bytes_before + bytes.load(Ordering::Relaxed), &tracker.counts(), started.elapsed());
                    save(&mut checkpoint, &tracker, &mut current)?;
                    retrying.say(&logger, args.retry_deadline, &progress);
                }
            }
        };
        let read =
            read.map_err(|e| Fail::new(Exit::Usage, format!("reading {}: {e}", input.name)))?;
        read.map_err(|e| Fail::new(Exit::Usage, format!("reading {}: {e}", input.name)))?;
        // Everything of this file settled before the next starts, so its
        // checkpoint can reach its end.
        let drain = Duration::from_secs(drain_timeout);
        let timeout = if stop.going() {
            drain
        } else {
            Duration::from_secs(5)
        };
        let flush = logger.flush(timeout);
        tokio::pin!(flush);
        let flushed = loop {
            tokio::select! {
                flushed = &mut flush => break flushed,
                _ = tick.tick() => {
                    progress.update(bytes_before + bytes.load(Ordering::Relaxed), &tracker.counts(), started.elapsed());
                    save(&mut checkpoint, &tracker, &mut current)?;
                    retrying.say(&logger, args.retry_deadline, &progress);
                }
            }
        };
        if !flushed.complete {
            if stop.going() {
                eprintln!(
                    "honeyhive send: events of {} still unsent after --drain-timeout {} s: \
                     they go to the rejects file and the files after it are not read",
                    input.name, drain_timeout
                );
            }
            break; // shutdown below hands the rest back as dead letters
        }
        tracker.close_file()?;
        save(&mut checkpoint, &tracker, &mut current)?;
        bytes_before += bytes.load(Ordering::Relaxed);
    }
    let report = logger.shutdown(Duration::from_secs(5)).await;
    let unsettled = tracker.close_file()?;
    save(&mut checkpoint, &tracker, &mut current)?;
    progress.finish();

    let counts = tracker.counts();
    let elapsed = started.elapsed();
    let stopped = stop.reason();
    let exit = match stopped {
        Some(StopReason::Unreachable) if counts.sent == 0 => Exit::Unreachable,
        Some(StopReason::RefusedKey) if counts.sent == 0 => Exit::Config,
        Some(StopReason::Interrupted) => Exit::Interrupted,
        _ if counts.rejected + counts.failed > 0 => Exit::Partial,
        _ => Exit::Ok,
    };
    summarize(&args, &counts, elapsed, exit, &tracker.rejects_paths());
    if unsettled > 0 || report.stats.sent != counts.sent {
        eprintln!(
            "honeyhive send: {unsettled} lines had no outcome from the logger (counted as failed; \
             the logger reports {} sent)",
            report.stats.sent
        );
    }
    match stopped {
        // The reasons say what failed and where, once (the library's
        // words, with its fixes in the command's terms).
        Some(StopReason::Unreachable | StopReason::RefusedKey) if counts.sent == 0 => {
            Err(Fail::new(
                exit,
                format!("{}; nothing was sent", tracker.first_reason()),
            ))
        }
        _ => Ok(exit),
    }
}

/// Says why events are being retried, as soon as an attempt fails for a
/// reason that may pass and again when the reason changes, so a server
/// that does not answer is not only a progress line that stands still.
#[derive(Default)]
struct Retrying {
    said: Option<String>,
}

impl Retrying {
    fn say(&mut self, logger: &Logger, deadline: u64, progress: &Progress) {
        let reason = logger.last_retried_error();
        if reason == self.said {
            return;
        }
        // A retried error is one that may pass (no answer, 5xx, 429): none
        // names a setting to fix, so the library's words are said as they are.
        if let Some(reason) = &reason {
            progress.say(&format!(
                "honeyhive send: retrying: {reason}; each line is retried for up to --retry-deadline {deadline} s"
            ));
        }
        self.said = reason;
    }
}

/// Writes the checkpoint when the current input's settled position moved.
fn save(
    checkpoint: &mut Option<Checkpoint>,
    tracker: &Tracker,
    current: &mut Option<(String, Position)>,
) -> Result<(), Fail> {
    let (Some(checkpoint), Some((key, last))) = (checkpoint, current) else {
        return Ok(());
    };
    let done = tracker.done();
    if done == *last {
        return Ok(());
    }
    checkpoint
        .save(key, done)
        .map_err(|e| Fail::new(Exit::Config, format!("could not write the checkpoint: {e}")))?;
    *last = done;
    Ok(())
}

fn summarize(args: &Args, counts: &LineCounts, elapsed: Duration, exit: Exit, rejects: &[String]) {
    let rate = per_second(counts.sent, elapsed);
    if args.json {
        let summary = json!({
            "lines": counts.lines,
            "sent": counts.sent,
            "rejected": counts.rejected,
            "failed": counts.failed,
            "skipped": counts.skipped,
            "sampled_out": counts.sampled_out,
            "seconds": elapsed.as_secs_f64(),
            "events_per_second": rate,
            "rejects": rejects,
            "exit_code": exit as u8,
        });
        crate::exit::out(&summary.to_string());
    }
    if !args.quiet {
        eprintln!(
            "honeyhive send: {} lines: sent {}, rejected {}, failed {}, skipped (checkpoint) {}{} in {:.1} s ({rate:.0} events/s)",
            counts.lines,
            counts.sent,
            counts.rejected,
            counts.failed,
            counts.skipped,
            if counts.sampled_out > 0 {
                format!(", sampled out {}", counts.sampled_out)
            } else {
                String::new()
            },
            elapsed.as_secs_f64()
        );
        for path in rejects {
            eprintln!(
                "honeyhive send: lines that failed are in {path}; fix them if rejected, then send that file"
            );
        }
    }
}

/// One input: a file or standard input.
struct Input {
    /// As given, for messages.
    name: String,
    /// In the checkpoint: the absolute path, or `-`.
    key: String,
    size: Option<u64>,
    source: Source,
}

enum Source {
    File(File),
    Stdin,
}

impl Input {
    fn open(path: &Path) -> Result<Input, Fail> {
        if path == Path::new("-") {
            return Ok(Input {
                name: "-".to_owned(),
                key: "-".to_owned(),
                size: None,
                source: Source::Stdin,
            });
        }
        let name = path.display().to_string();
        let cannot = |e: io::Error| Fail::new(Exit::Usage, format!("cannot read {name}: {e}"));
        let mut file = File::open(path).map_err(cannot)?;
        let size = file.metadata().map_err(cannot)?.len();
        // Refused before anything of it is sent: a file in another
        // encoding would be nothing but rejected lines.
        let mut start = [0u8; 8];
        let mut got = 0;
        while got < start.len() {
            match io::Read::read(&mut file, &mut start[got..]).map_err(cannot)? {
                0 => break,
                n => got += n,
            }
        }
        input::sniff(&start[..got])
            .map_err(|e| Fail::new(Exit::Usage, format!("cannot read {name}: {e}")))?;
        file.seek(SeekFrom::Start(0)).map_err(cannot)?;
        let key = std::fs::canonicalize(path)
            .map_err(cannot)?
            .display()
            .to_string();
        Ok(Input {
            name,
            key,
            size: Some(size),
            source: Source::File(file),
        })
    }

    fn default_rejects(&self) -> PathBuf {
        match self.source {
            Source::Stdin => PathBuf::from("stdin.rejects.jsonl"),
            Source::File(_) => PathBuf::from(format!("{}.rejects.jsonl", self.name)),
        }
    }
}

/// Reads one input on a blocking thread and hands its events to the logger.
struct Reader {
    client: honeyhive::Client,
    logger: Logger,
    tracker: Arc<Tracker>,
    stop: Arc<Stop>,
    session: Option<String>,
    route: Route,
    runtime: tokio::runtime::Handle,
    bytes: Arc<AtomicU64>,
}

impl Reader {
    fn read(self, source: Source, from: Position) -> io::Result<()> {
        let (mut input, mut number, mut offset): (Box<dyn BufRead>, u64, u64) = match source {
            Source::File(mut file) => {
                let size = file.metadata()?.len();
                if from.offset > size {
                    return Err(io::Error::other(format!(
                        "the checkpoint says {} bytes were delivered, but the file has {size}: \
                         it is not the file the checkpoint was made for (remove the checkpoint to start over)",
                        from.offset
                    )));
                }
                file.seek(SeekFrom::Start(from.offset))?;
                self.tracker.skip(from.events);
                (
                    Box::new(BufReader::with_capacity(256 * 1024, file)),
                    from.line,
                    from.offset,
                )
            }
            Source::Stdin => (Box::new(io::stdin().lock()), 0, 0),
        };
        if offset == 0 {
            // A file's encoding was looked at when it was opened; this is
            // standard input's (a checkpoint past 0 is after the mark).
            let skip = input::sniff(input.fill_buf()?)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            input.consume(skip);
            offset += skip as u64;
        }
        let mut bytes = Vec::new();
        loop {
            if !self.stop.going() {
                return Ok(());
            }
            let read = input::read_line(&mut *input, &mut bytes)?;
            if read == 0 {
                return Ok(());
            }
            number += 1;
            offset += read as u64;
            self.bytes.store(offset - from.offset, Ordering::Relaxed);
            let text = input::text(&bytes);
            let blank = text.as_ref().is_ok_and(|t| t.trim().is_empty());
            if number <= from.line {
                // Standard input cannot seek: skip what the checkpoint covers.
                self.tracker.skip(u64::from(!blank));
                continue;
            }
            if blank {
                self.tracker.blank(number, offset);
                continue;
            }
            let text = match text {
                Ok(text) => text,
                Err(problem) => {
                    let shown = String::from_utf8_lossy(&bytes);
                    self.tracker
                        .reject_line(number, offset, shown.trim_end(), &problem, None);
                    continue;
                }
            };
            match event_line::parse(text, number, self.session.as_deref(), self.route) {
                Ok(event) => self.log(event, number, offset),
                Err(refused) => {
                    let reason = refused.reason();
                    self.tracker
                        .reject_line(number, offset, text, &reason, refused.parsed);
                }
            }
        }
    }

    fn log(&self, line: ParsedLine, number: u64, offset: u64) {
        let ParsedLine {
            session_id,
            event_id,
            event,
        } = line;
        if !self.client.keeps_session(&session_id) {
            self.tracker.sampled_out(number, offset);
            return;
        }
        let session = SessionId::from(session_id);
        self.tracker.begin(number, offset, &event_id);
        // Waits while the logger's queue is full: back-pressure on the file.
        let Err(refused) = self.runtime.block_on(self.logger.log_wait(&session, event)) else {
            return;
        };
        let (reason, rejected) = match &refused {
            LogError::Invalid { error, .. } => (error.to_string(), true),
            other => (other.to_string(), false),
        };
        let event = refused.into_event();
        let event = serde_json::to_value(event.as_api()).unwrap_or(Value::Null);
        self.tracker
            .refused(&event_id, session.as_str(), event, &reason, rejected);
    }
}
