//! Dead letters after they leave a delivery: kept for the next
//! [`LoggerReport`](super::LoggerReport), and handed to the
//! [`OutcomeSink::dead_letter`] on one thread the logger owns.
//!
//! The sink is the user's code and may block (a file, a socket): it never
//! runs on the runtime's threads, nor on the thread of a `log` call. It
//! takes letters in the order they were handed back. A flush waits for it
//! to take the letters of the events it waited for, within the flush's
//! timeout; at the end of `shutdown`'s budget the letters it has not taken
//! are taken back from it and stay in the report only.

use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::watch;
use tokio::time::Instant;

use super::OutcomeSink;
use crate::dead_letter::DeadLetter;

/// The letters of the next report, and the sink's thread.
pub(super) struct Letters {
    report: Mutex<ReportLetters>,
    max_report: usize,
    sink: Option<SinkThread>,
}

#[derive(Default)]
struct ReportLetters {
    kept: Vec<DeadLetter>,
    omitted: u64,
    /// Bumped by each report, so a letter knows whether it is in this one.
    generation: u64,
}

/// What a report takes out of [`Letters`].
pub(super) struct Taken {
    pub(super) kept: Vec<DeadLetter>,
    pub(super) omitted: u64,
}

struct SinkThread {
    queue: Arc<SinkQueue>,
    /// Letters handed to the thread, ever; `taken` in `SinkQueue` counts
    /// those it took. Both only grow.
    handed: Mutex<u64>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct SinkQueue {
    state: Mutex<Queued>,
    more: Condvar,
    /// Letters the sink has taken (`accept` returned).
    taken: watch::Sender<u64>,
}

#[derive(Default)]
struct Queued {
    letters: VecDeque<(DeadLetter, InReport)>,
    closed: bool,
}

/// Where a letter stands in the report of the generation it was handed
/// back in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum InReport {
    Kept(u64),
    Omitted(u64),
}

impl Letters {
    /// Starts the sink's thread when there is a sink.
    pub(super) fn new(sink: Option<Arc<dyn OutcomeSink>>, max_report: usize) -> Letters {
        let sink = sink.and_then(|sink| {
            let queue = Arc::new(SinkQueue {
                state: Mutex::default(),
                more: Condvar::new(),
                taken: watch::Sender::new(0),
            });
            let work = Arc::clone(&queue);
            let thread = std::thread::Builder::new()
                .name("honeyhive-dead-letters".to_owned())
                .spawn(move || work.run(&*sink));
            match thread {
                Ok(thread) => Some(SinkThread {
                    queue,
                    handed: Mutex::new(0),
                    thread: Mutex::new(Some(thread)),
                }),
                Err(e) => {
                    super::warn_loss(&format!(
                        "honeyhive Logger could not start its dead-letter thread ({e}); \
                         undelivered events will be in the reports only"
                    ));
                    None
                }
            }
        });
        Letters {
            report: Mutex::default(),
            max_report,
            sink,
        }
    }

    /// Keeps `letters` for the next report (up to the bound) and queues
    /// them for the sink. Never blocks on the sink.
    pub(super) fn hand_back(&self, letters: Vec<DeadLetter>) {
        if letters.is_empty() {
            return;
        }
        let mut report = self.report.lock();
        let generation = report.generation;
        let mut marked = Vec::with_capacity(letters.len());
        for letter in letters {
            let kept = if report.kept.len() < self.max_report {
                report.kept.push(letter.clone());
                InReport::Kept(generation)
            } else {
                report.omitted += 1;
                InReport::Omitted(generation)
            };
            marked.push((letter, kept));
        }
        drop(report);
        if let Some(sink) = &self.sink {
            let count = marked.len() as u64;
            // The count moves with the queue, under its lock, so a waiter
            // never sees letters handed that are not queued yet.
            let mut handed = sink.handed.lock();
            let mut queued = sink.queue.state.lock();
            if queued.closed {
                return; // the sink was stopped: the report has them
            }
            queued.letters.extend(marked);
            *handed += count;
            drop(queued);
            drop(handed);
            sink.queue.more.notify_one();
        }
    }

    /// Waits until the sink has taken every letter handed back so far, or
    /// `deadline` (`None`: no limit). True when it has (or there is no sink).
    pub(super) async fn caught_up(&self, deadline: Option<Instant>) -> bool {
        let Some(sink) = &self.sink else {
            return true;
        };
        let target = *sink.handed.lock();
        let mut taken = sink.queue.taken.subscribe();
        let wait = taken.wait_for(|&n| n >= target);
        match deadline {
            Some(deadline) => matches!(tokio::time::timeout_at(deadline, wait).await, Ok(Ok(_))),
            None => wait.await.is_ok(),
        }
    }

    /// Takes back from the sink what it has not begun to take, and keeps
    /// those letters in the report whatever its bound; the sink's thread
    /// ends after the letter it is on (which it still takes). Returns how
    /// many it gave back.
    pub(super) fn stop_sink(&self) -> u64 {
        let Some(sink) = &self.sink else { return 0 };
        let untaken: Vec<_> = {
            let mut handed = sink.handed.lock();
            let mut queued = sink.queue.state.lock();
            queued.closed = true;
            *handed -= queued.letters.len() as u64;
            queued.letters.drain(..).collect()
        };
        sink.queue.more.notify_one();
        let mut report = self.report.lock();
        let generation = report.generation;
        for (letter, was) in untaken.iter() {
            match *was {
                InReport::Kept(g) if g == generation => {}
                InReport::Omitted(g) if g == generation => {
                    report.kept.push(letter.clone());
                    report.omitted -= 1;
                }
                // An earlier report had it, or counted it; this one keeps it.
                _ => report.kept.push(letter.clone()),
            }
        }
        untaken.len() as u64
    }

    /// Lets the sink take everything queued, then ends its thread and
    /// waits for it: for `Drop`, which has no runtime to wait on and no
    /// budget. Not called from the sink's own thread (it would wait for
    /// itself); a sink that holds a `Logger` and drops it is left running.
    pub(super) fn finish_on_this_thread(&self) {
        let Some(sink) = &self.sink else { return };
        sink.queue.state.lock().closed = true;
        sink.queue.more.notify_one();
        let thread = sink.thread.lock().take();
        if let Some(thread) = thread
            && thread.thread().id() != std::thread::current().id()
            && thread.join().is_err()
        {
            super::warn_loss(
                "a dead-letter sink panicked; the letters it had not taken are in no file",
            );
        }
    }

    /// The letters for a report; the next report starts empty.
    pub(super) fn take(&self) -> Taken {
        let mut report = self.report.lock();
        report.generation += 1;
        Taken {
            kept: std::mem::take(&mut report.kept),
            omitted: std::mem::take(&mut report.omitted),
        }
    }
}

impl SinkQueue {
    /// The sink's thread: takes letters in order until closed and empty.
    /// A closed queue with letters left is still emptied (that is how
    /// `Drop` hands everything over); `stop_sink` empties it first.
    fn run(&self, sink: &dyn OutcomeSink) {
        loop {
            let letter = {
                let mut queued = self.state.lock();
                loop {
                    if let Some((letter, _)) = queued.letters.pop_front() {
                        break letter;
                    }
                    if queued.closed {
                        return;
                    }
                    self.more.wait(&mut queued);
                }
            };
            let accepted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                sink.dead_letter(&letter)
            }));
            if accepted.is_err() {
                super::warn_loss(
                    "a dead-letter sink panicked on a letter; it is still in the next report",
                );
            }
            // Counted once `accept` returned: a flush that saw it counted
            // sees what the sink did with it.
            self.taken.send_modify(|n| *n += 1);
        }
    }
}

impl Drop for Letters {
    fn drop(&mut self) {
        // The last reference is gone: let the thread empty its queue and end.
        if let Some(sink) = &self.sink {
            sink.queue.state.lock().closed = true;
            sink.queue.more.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn letter(id: usize) -> DeadLetter {
        DeadLetter {
            session_id: "s".into(),
            event_id: Some(format!("e{id}")),
            event: bytes::Bytes::new(),
            reason: "r".into(),
            status: None,
            fix: None,
        }
    }

    fn ids(letters: &[DeadLetter]) -> Vec<String> {
        letters.iter().filter_map(|l| l.event_id.clone()).collect()
    }

    #[tokio::test]
    async fn the_sink_takes_letters_in_order_on_its_own_thread() {
        let seen: Arc<Mutex<Vec<(String, std::thread::ThreadId)>>> = Arc::default();
        let into = Arc::clone(&seen);
        let sink = move |outcome: crate::logger::Outcome<'_>| {
            let crate::logger::Outcome::DeadLetter(l) = outcome else {
                return;
            };
            into.lock()
                .push((l.event_id.clone().unwrap(), std::thread::current().id()));
        };
        let letters = Letters::new(Some(Arc::new(sink)), 10);
        letters.hand_back((0..5).map(letter).collect());
        assert!(letters.caught_up(None).await);
        let seen = seen.lock().clone();
        let order: Vec<_> = seen.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(order, ["e0", "e1", "e2", "e3", "e4"]);
        assert!(seen.iter().all(|(_, t)| *t != std::thread::current().id()));
        let taken = letters.take();
        assert_eq!(ids(&taken.kept).len(), 5);
    }

    #[tokio::test]
    async fn a_slow_sink_misses_the_deadline_and_what_it_did_not_take_stays_in_the_report() {
        let sink = |_: crate::logger::Outcome<'_>| std::thread::sleep(Duration::from_millis(200));
        // A report bound of 1: the untaken ones are kept anyway.
        let letters = Letters::new(Some(Arc::new(sink)), 1);
        letters.hand_back((0..4).map(letter).collect());
        let deadline = Instant::now() + Duration::from_millis(50);
        assert!(!letters.caught_up(Some(deadline)).await);
        let given_back = letters.stop_sink();
        assert_eq!(given_back, 3, "the first is being written; three are not");
        let taken = letters.take();
        assert_eq!(ids(&taken.kept), ["e0", "e1", "e2", "e3"]);
        assert_eq!(taken.omitted, 0);
    }

    #[tokio::test]
    async fn without_a_sink_letters_are_kept_up_to_the_bound_and_counted_beyond() {
        let letters = Letters::new(None, 2);
        letters.hand_back((0..5).map(letter).collect());
        assert!(letters.caught_up(None).await);
        let taken = letters.take();
        assert_eq!((ids(&taken.kept).len(), taken.omitted), (2, 3));
        assert!(letters.take().kept.is_empty());
    }

    #[test]
    fn finishing_on_this_thread_hands_everything_over_first() {
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let into = Arc::clone(&count);
        let sink = move |_: crate::logger::Outcome<'_>| {
            std::thread::sleep(Duration::from_millis(5));
            into.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        };
        let letters = Letters::new(Some(Arc::new(sink)), 0);
        letters.hand_back((0..10).map(letter).collect());
        letters.finish_on_this_thread();
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 10);
    }
}
