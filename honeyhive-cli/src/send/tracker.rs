//! The fate of every line of the input being sent: which line each event
//! in the logger is, the settled window behind the checkpoint, the counts
//! and the rejects file. Shared by the reader and the logger's callbacks.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use honeyhive::DeadLetter;
use serde_json::{Value, json};

use super::{Counts, GOING, REFUSED_KEY, UNREACHABLE};
use crate::checkpoint::Position;
use crate::{Exit, Fail};

/// The fate of every line of the current input; shared by the reader and
/// the logger's callbacks.
pub(super) struct Tracker {
    state: Mutex<State>,
    sent_any: AtomicBool,
    /// Set to UNREACHABLE or REFUSED_KEY when the first outcomes say so.
    stop: Arc<AtomicU8>,
}

#[derive(Default)]
struct State {
    counts: Counts,
    /// Event id → the line(s) carrying it, while in the logger.
    waiting: HashMap<String, Lines>,
    /// Lines after `done`, from `done.line + 1`: settled yet?
    window: VecDeque<Slot>,
    done: Position,
    file: String,
    rejects: Option<Rejects>,
    rejects_used: Vec<String>,
    first_reason: Option<String>,
}

enum Lines {
    One(u64),
    Many(Vec<u64>),
}

#[derive(Clone, Copy)]
struct Slot {
    settled: bool,
    /// Not blank: counts as an event line.
    event: bool,
    end: u64,
}

struct Rejects {
    path: PathBuf,
    file: Option<BufWriter<File>>,
}

impl Tracker {
    pub(super) fn new(stop: Arc<AtomicU8>) -> Tracker {
        Tracker {
            state: Mutex::default(),
            sent_any: AtomicBool::new(false),
            stop,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn start(&self, name: &str, rejects: PathBuf, from: Position) {
        let mut state = self.lock();
        state.window.clear();
        state.waiting.clear();
        state.done = from;
        state.file = name.to_owned();
        state.rejects = Some(Rejects {
            path: rejects,
            file: None,
        });
    }

    pub(super) fn counts(&self) -> Counts {
        self.lock().counts
    }

    pub(super) fn done(&self) -> Position {
        self.lock().done
    }

    pub(super) fn rejects_paths(&self) -> Vec<String> {
        self.lock().rejects_used.clone()
    }

    pub(super) fn first_reason(&self) -> String {
        self.lock().first_reason.clone().unwrap_or_default()
    }

    pub(super) fn skip(&self, lines: u64) {
        let mut state = self.lock();
        state.counts.lines += lines;
        state.counts.skipped += lines;
    }

    pub(super) fn blank(&self, number: u64, end: u64) {
        let mut state = self.lock();
        state.push(number, end, false);
        state.settle(number);
    }

    pub(super) fn begin(&self, number: u64, end: u64, event_id: &str) {
        let mut state = self.lock();
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

    /// A line that never reached the logger.
    pub(super) fn reject_line(&self, number: u64, end: u64, text: &str, reason: &str) {
        let mut state = self.lock();
        state.counts.lines += 1;
        state.push(number, end, true);
        state.counts.rejected += 1;
        let record = json!({"line": number, "reason": reason, "raw": text});
        state.write_reject(record);
        state.settle(number);
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
        let mut state = self.lock();
        let Some(number) = state.take(event_id) else {
            return;
        };
        if rejected {
            state.counts.rejected += 1;
        } else {
            state.counts.failed += 1;
        }
        let record =
            json!({"line": number, "reason": reason, "session_id": session_id, "event": event});
        state.write_reject(record);
        state.settle(number);
    }

    pub(super) fn sent(&self, event_id: &str) {
        self.sent_any.store(true, Ordering::Relaxed);
        let mut state = self.lock();
        if let Some(number) = state.take(event_id) {
            state.counts.sent += 1;
            state.settle(number);
        }
    }

    pub(super) fn dead(&self, letter: &DeadLetter) {
        let rejected = matches!(letter.status, Some(s) if (400..500).contains(&s) && ![401, 403, 408, 429].contains(&s));
        let mut state = self.lock();
        if state.first_reason.is_none() {
            state.first_reason = Some(letter.reason.clone());
        }
        if !self.sent_any.load(Ordering::Relaxed) {
            let why = match letter.status {
                None => Some(UNREACHABLE),
                Some(401 | 403) => Some(REFUSED_KEY),
                _ => None,
            };
            if let Some(why) = why {
                let _ = self
                    .stop
                    .compare_exchange(GOING, why, Ordering::SeqCst, Ordering::SeqCst);
            }
        }
        let number = letter.event_id.as_deref().and_then(|id| state.take(id));
        if rejected {
            state.counts.rejected += 1;
        } else {
            state.counts.failed += 1;
        }
        let record = json!({
            "line": number,
            "reason": letter.reason,
            "status": letter.status,
            "session_id": letter.session_id,
            "event": letter.event_json(),
        });
        state.write_reject(record);
        if let Some(number) = number {
            state.settle(number);
        }
    }

    /// Ends the current input: lines still without an outcome count as
    /// failed (none should be: every event the logger took comes back sent
    /// or as a dead letter). Gives how many there were.
    pub(super) fn close_file(&self) -> Result<u64, Fail> {
        let mut state = self.lock();
        let unsettled = state
            .window
            .iter()
            .filter(|s| !s.settled && s.event)
            .count() as u64;
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
            state.window.clear();
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

impl State {
    fn push(&mut self, number: u64, end: u64, event: bool) {
        debug_assert_eq!(number, self.done.line + self.window.len() as u64 + 1);
        self.window.push_back(Slot {
            settled: false,
            event,
            end,
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

    /// Marks line `number` settled and moves `done` past every settled
    /// line at the front.
    fn settle(&mut self, number: u64) {
        let Some(index) = number.checked_sub(self.done.line + 1) else {
            return;
        };
        if let Some(slot) = self.window.get_mut(index as usize) {
            slot.settled = true;
        }
        while let Some(front) = self.window.front().copied() {
            if !front.settled {
                break;
            }
            self.window.pop_front();
            self.done.line += 1;
            self.done.offset = front.end;
            self.done.events += u64::from(front.event);
        }
    }

    /// Appends a line to the rejects file (made on first use) and flushes
    /// it, before the line counts as settled: a crash after the checkpoint
    /// moved cannot lose it.
    fn write_reject(&mut self, mut record: Value) {
        record["file"] = Value::String(self.file.clone());
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
                        "honeyhive send: cannot open {path}: {e}; the line follows here:\n{record}"
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
                    "honeyhive send: cannot write {path}: {e}; the line follows here:\n{record}"
                );
            }
        }
    }
}
