//! The fate of every line of the input being sent: which line each event
//! in the logger is, the window of lines not yet resolved, the checkpoint,
//! the counts and the rejects file. Shared by the reader and the logger's
//! callbacks.
//!
//! A line is *resolved* once it has an outcome: sent, rejected (the line is
//! wrong, or the API refused the event for good: sending it again cannot
//! help) or failed (retries ran out, no answer, the key refused: a re-run
//! may succeed). Rejects-file records are written in line order, as the
//! front of the window resolves. The checkpoint follows the front only up
//! to the first failed line: a re-run must send that line again.

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use honeyhive::{DeadLetter, EventLine, StatusCode, Undelivered};

use crate::event_line::Record;
use serde_json::Value;

use super::checkpoint::Position;
use super::stop::{Stop, StopReason};
use crate::exit::{Exit, Fail};

/// What happened to the lines read so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineCounts {
    /// Lines read that were not blank, skipped ones included.
    pub lines: u64,
    pub sent: u64,
    /// The line is wrong: not JSON, not a valid event, or refused by the
    /// API with a 4xx (other than 401, 403, 408, 429).
    pub rejected: u64,
    /// Could not be delivered (retries exhausted, no answer, shut down):
    /// may go through if replayed from the rejects file later.
    pub failed: u64,
    /// Before the checkpoint: delivered by an earlier run.
    pub skipped: u64,
    /// Of a session `--sample` left out: not sent, not failed.
    pub sampled_out: u64,
}

/// The fate of every line of the current input; shared by the reader and
/// the logger's callbacks.
pub(super) struct Tracker {
    state: Mutex<State>,
    sent_any: AtomicBool,
    /// Set to `Unreachable` or `RefusedKey` when the first outcomes say so.
    stop: Arc<Stop>,
}

#[derive(Default)]
struct State {
    counts: LineCounts,
    /// Event id → the line(s) carrying it, while in the logger.
    waiting: HashMap<String, Lines>,
    /// Lines after `resolved`, from `resolved.line + 1`.
    window: VecDeque<WindowLine>,
    /// Every line up to here has an outcome (and its record is written).
    resolved: Position,
    /// Where a re-run starts: `resolved`, until a line failed.
    checkpoint: Position,
    /// A line of this input failed: the checkpoint stays before it.
    failed_at: Option<u64>,
    file: String,
    rejects: Option<Rejects>,
    rejects_used: Vec<String>,
    first_reason: Option<String>,
}

enum Lines {
    One(u64),
    Many(Vec<u64>),
}

struct WindowLine {
    settled: bool,
    /// Not blank: counts as an event line.
    event: bool,
    end: u64,
    /// Failed: the checkpoint must not pass it.
    failed: bool,
    /// Its rejects-file record, written when the line leaves the window.
    record: Option<Record>,
}

struct Rejects {
    path: PathBuf,
    file: Option<BufWriter<File>>,
}

impl Tracker {
    pub(super) fn new(stop: Arc<Stop>) -> Tracker {
        Tracker {
            state: Mutex::default(),
            sent_any: AtomicBool::new(false),
            stop,
        }
    }

    pub(super) fn start(&self, name: &str, rejects: PathBuf, from: Position) {
        let mut state = self.state.lock();
        state.window.clear();
        state.waiting.clear();
        state.resolved = from;
        state.checkpoint = from;
        state.failed_at = None;
        state.file = name.to_owned();
        if let Err(e) = keep_earlier_rejects(&rejects, name, from.line) {
            eprintln!(
                "honeyhive send: could not update {}: {e}; it may list lines of an earlier run",
                rejects.display()
            );
        }
        state.rejects = Some(Rejects {
            path: rejects,
            file: None,
        });
    }

    pub(super) fn counts(&self) -> LineCounts {
        self.state.lock().counts
    }

    /// Where a re-run should start: after every line sent or rejected for
    /// good, before the first that failed.
    pub(super) fn done(&self) -> Position {
        self.state.lock().checkpoint
    }

    pub(super) fn rejects_paths(&self) -> Vec<String> {
        self.state.lock().rejects_used.clone()
    }

    /// The first dead letter's reason, its fix said at the shell.
    pub(super) fn first_reason(&self) -> String {
        self.state.lock().first_reason.clone().unwrap_or_default()
    }

    pub(super) fn skip(&self, lines: u64) {
        let mut state = self.state.lock();
        state.counts.lines += lines;
        state.counts.skipped += lines;
    }

    pub(super) fn blank(&self, number: u64, end: u64) {
        let mut state = self.state.lock();
        state.push(number, end, false);
        state.settle(number, Outcome::Sent);
    }

    /// A line whose session is sampled out: settled, not sent.
    pub(super) fn sampled_out(&self, number: u64, end: u64) {
        let mut state = self.state.lock();
        state.counts.lines += 1;
        state.counts.sampled_out += 1;
        state.push(number, end, true);
        state.settle(number, Outcome::Sent);
    }

    pub(super) fn begin(&self, number: u64, end: u64, event_id: &str) {
        let mut state = self.state.lock();
        state.counts.lines += 1;
        state.push(number, end, true);
        match state.waiting.get_mut(event_id) {
            None => {
                state
                    .waiting
                    .insert(event_id.to_owned(), Lines::One(number));
            }
            Some(lines) => lines.add(number),
        }
    }

    /// A line that never reached the logger: wrong as it is. `parsed`: its
    /// session and event when it had them (so fixing it is editing the
    /// event, not rewriting the line).
    pub(super) fn reject_line(
        &self,
        number: u64,
        end: u64,
        text: &str,
        reason: &str,
        parsed: Option<(String, Value)>,
    ) {
        let mut state = self.state.lock();
        state.counts.lines += 1;
        state.push(number, end, true);
        state.counts.rejected += 1;
        let mut record = match parsed {
            Some((session_id, event)) => Record::from(EventLine::new(session_id, event)),
            None => Record {
                raw: Some(text.to_owned()),
                ..Record::default()
            },
        };
        record.line = Some(number);
        record.entry.undelivered = Some(Undelivered::new(reason, None));
        state.settle(number, Outcome::Rejected(record));
    }

    /// An event the logger would not take.
    pub(super) fn refused(
        &self,
        event_id: &str,
        session_id: &str,
        event: Value,
        reason: &str,
        rejected: bool,
    ) {
        let mut state = self.state.lock();
        let Some(number) = state.take(event_id) else {
            return;
        };
        let mut record = Record::from(EventLine::new(session_id, event));
        record.line = Some(number);
        record.entry.undelivered = Some(Undelivered::new(reason, None));
        if rejected {
            state.counts.rejected += 1;
            state.settle(number, Outcome::Rejected(record));
        } else {
            state.counts.failed += 1;
            state.settle(number, Outcome::Failed(record));
        }
    }

    pub(super) fn sent(&self, event_id: &str) {
        self.sent_any.store(true, Ordering::Relaxed);
        let mut state = self.state.lock();
        if let Some(number) = state.take(event_id) {
            state.counts.sent += 1;
            state.settle(number, Outcome::Sent);
        }
    }

    pub(super) fn dead(&self, letter: &DeadLetter) {
        let rejected = letter.is_refused();
        let mut state = self.state.lock();
        if state.first_reason.is_none() {
            state.first_reason = Some(letter.reason_with(crate::config::at_the_shell));
        }
        if !self.sent_any.load(Ordering::Relaxed) {
            let why = match letter.status {
                None => Some(StopReason::Unreachable),
                Some(StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                    Some(StopReason::RefusedKey)
                }
                _ => None,
            };
            if let Some(why) = why {
                self.stop.set(why);
            }
        }
        let number = letter.event_id.as_deref().and_then(|id| state.take(id));
        if rejected {
            state.counts.rejected += 1;
        } else {
            state.counts.failed += 1;
        }
        let mut record = Record::from(EventLine::from_dead_letter(letter));
        record.line = number;
        record.entry.at_ms = None;
        match number {
            Some(number) if rejected => state.settle(number, Outcome::Rejected(record)),
            Some(number) => state.settle(number, Outcome::Failed(record)),
            // Not a line of this input (none should be): kept all the same.
            None => state.write_reject(record),
        }
    }

    /// Ends the current input: lines still without an outcome count as
    /// failed (none should be: every event the logger took comes back sent
    /// or as a dead letter). Gives how many there were.
    pub(super) fn close_file(&self) -> Result<u64, Fail> {
        let mut state = self.state.lock();
        let unsettled = state
            .window
            .iter()
            .filter(|s| !s.settled && s.event)
            .count() as u64;
        // Lines behind one without an outcome keep their records in line
        // order too; the checkpoint stays before the first unsettled line.
        let mut stuck = false;
        for entry in std::mem::take(&mut state.window) {
            stuck |= !entry.settled && entry.event;
            if let Some(record) = entry.record {
                state.write_reject(record);
            }
            if !stuck {
                state.resolved.line += 1;
                state.resolved.offset = entry.end;
                state.resolved.events += u64::from(entry.event);
                if state.failed_at.is_none() && !entry.failed {
                    state.checkpoint = state.resolved;
                } else {
                    let line = state.resolved.line;
                    state.failed_at.get_or_insert(line);
                }
            }
        }
        if let Some(Rejects {
            path,
            file: Some(file),
        }) = &mut state.rejects
        {
            file.flush().map_err(|e| {
                Fail::new(
                    Exit::Config,
                    format!("could not write {}: {e}", path.display()),
                )
            })?;
        }
        if unsettled > 0 {
            // Counted once; the checkpoint stays before them, so a re-run
            // sends them again (with the same ids).
            state.counts.failed += unsettled;
            state.waiting.clear();
        }
        Ok(unsettled)
    }
}

impl Lines {
    fn add(&mut self, number: u64) {
        match self {
            Lines::One(first) => *self = Lines::Many(vec![*first, number]),
            Lines::Many(all) => all.push(number),
        }
    }
}

/// What became of a line.
enum Outcome {
    Sent,
    /// Wrong, or refused for good: its record, and the checkpoint may pass.
    Rejected(Record),
    /// May go through later: its record, and the checkpoint stays before.
    Failed(Record),
}

impl State {
    fn push(&mut self, number: u64, end: u64, event: bool) {
        debug_assert_eq!(number, self.resolved.line + self.window.len() as u64 + 1);
        self.window.push_back(WindowLine {
            settled: false,
            event,
            end,
            failed: false,
            record: None,
        });
    }

    /// The line of `event_id` now leaving the logger.
    fn take(&mut self, event_id: &str) -> Option<u64> {
        match self.waiting.get_mut(event_id)? {
            Lines::One(number) => {
                let number = *number;
                self.waiting.remove(event_id);
                Some(number)
            }
            Lines::Many(all) => {
                let number = all.remove(0);
                if all.is_empty() {
                    self.waiting.remove(event_id);
                }
                Some(number)
            }
        }
    }

    /// Gives line `number` its outcome, then moves the front past every
    /// resolved line, writing their records in order; the checkpoint
    /// follows until a failed line.
    fn settle(&mut self, number: u64, outcome: Outcome) {
        let Some(index) = number.checked_sub(self.resolved.line + 1) else {
            return;
        };
        if let Some(entry) = self.window.get_mut(index as usize) {
            entry.settled = true;
            match outcome {
                Outcome::Sent => {}
                Outcome::Rejected(record) => entry.record = Some(record),
                Outcome::Failed(record) => {
                    entry.record = Some(record);
                    entry.failed = true;
                }
            }
        }
        while self.window.front().is_some_and(|front| front.settled) {
            let Some(front) = self.window.pop_front() else {
                break;
            };
            if let Some(record) = front.record {
                self.write_reject(record);
            }
            self.resolved.line += 1;
            self.resolved.offset = front.end;
            self.resolved.events += u64::from(front.event);
            if front.failed && self.failed_at.is_none() {
                self.failed_at = Some(self.resolved.line);
            }
            if self.failed_at.is_none() {
                self.checkpoint = self.resolved;
            }
        }
    }

    /// Appends a line to the rejects file (made on first use) and flushes
    /// it, before the line counts as settled: a crash after the checkpoint
    /// moved cannot lose it.
    fn write_reject(&mut self, mut record: Record) {
        record.file = Some(self.file.clone());
        let Some(rejects) = &mut self.rejects else {
            return;
        };
        let path = rejects.path.display().to_string();
        if rejects.file.is_none() {
            match OpenOptions::new()
                .create(true)
                .append(true)
                .open(&rejects.path)
            {
                Ok(file) => rejects.file = Some(BufWriter::new(file)),
                Err(e) => {
                    eprintln!(
                        "honeyhive send: cannot open {path}: {e}; the line follows here:\n{}",
                        serde_json::to_string(&record).unwrap_or_default()
                    );
                    return;
                }
            }
            if !self.rejects_used.contains(&path) {
                self.rejects_used.push(path.clone());
            }
        }
        if let Some(file) = &mut rejects.file {
            let written = serde_json::to_writer(&mut *file, &record)
                .map_err(io::Error::from)
                .and_then(|()| file.write_all(b"\n"))
                .and_then(|()| file.flush());
            if let Err(e) = written {
                eprintln!(
                    "honeyhive send: cannot write {path}: {e}; the line follows here:\n{}",
                    serde_json::to_string(&record).unwrap_or_default()
                );
            }
        }
    }
}

/// Rewrites the rejects file `path` without the records of `file` after
/// line `kept_to` (a re-run writes those again), so that re-running does not
/// list a line twice. A file left empty is removed.
fn keep_earlier_rejects(path: &std::path::Path, file: &str, kept_to: u64) -> io::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            let Ok(record) = serde_json::from_str::<Record>(line) else {
                return true; // not ours to judge
            };
            record.file.as_deref() != Some(file) || record.line.is_some_and(|n| n <= kept_to)
        })
        .collect();
    if kept.len() == text.lines().count() {
        return Ok(());
    }
    if kept.is_empty() {
        return std::fs::remove_file(path);
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let mut beside = tempfile::NamedTempFile::new_in(dir.unwrap_or(std::path::Path::new(".")))?;
    for line in kept {
        writeln!(beside, "{line}")?;
    }
    beside.persist(path).map(|_| ()).map_err(|e| e.error)
}
