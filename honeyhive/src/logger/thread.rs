//! A Logger on a thread of its own, with its own tokio runtime, for
//! programs without one (and the `tracing` layer in them); and the blocking
//! forms of `flush` and `shutdown` that such programs call.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Handle, Logger, LoggerConfig, LoggerReport};
use crate::{client::Client, error::Error};

/// The thread an own-thread Logger runs on. Dropped with the last
/// `Logger` handle: that ends the runtime's wait, and so the thread.
pub(super) struct OwnThread {
    /// Dropping it ends the thread's `block_on`.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl OwnThread {
    /// The thread's name, as debuggers and `top -H` show it.
    pub(super) const NAME: &'static str = "honeyhive-log";
}

impl Drop for OwnThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // Waited for from plain threads, so that the thread is gone
            // when the drop returns. Not on the Logger's own thread (a task
            // holding the last handle ends: it cannot wait for itself), nor
            // in async code (it would block a runtime's worker): the thread
            // ends by itself, its runtime's tasks cancelled.
            let own = thread.thread().id() == std::thread::current().id();
            let in_async = tokio::runtime::Handle::try_current().is_ok();
            if !own && !in_async {
                let _ended = thread.join();
            }
        }
    }
}

impl Logger {
    /// A background logger on a thread of its own, running its own tokio
    /// runtime (current-thread, I/O and time drivers on), as Sentry's
    /// transport and OpenTelemetry's batch span processor do. For programs
    /// without a tokio runtime, the `tracing` layer in them, and libraries
    /// that must not depend on their caller's runtime.
    ///
    /// The thread (named `honeyhive-log`) lives as long as the Logger:
    /// it ends when the last clone is dropped. That drop sends what is
    /// queued first, within [`DROP_BUDGET`](Self::DROP_BUDGET), as
    /// [`shutdown_blocking`](Self::shutdown_blocking) would, so a `main`
    /// that logs and returns loses nothing to a server that answers in
    /// time; what is still unsent then is handed back (dead letters) and
    /// warned about. The drop blocks the thread it runs on for that long at
    /// most (see [`DROP_BUDGET`](Self::DROP_BUDGET)), whatever runtime that
    /// thread is in (a multi-thread runtime's worker hands its other tasks
    /// off first); it does not wait on the Logger's own thread (a task of
    /// it holding the last handle). Call `shutdown_blocking` (or
    /// `shutdown(..).await` from async code) to choose the budget and read
    /// the report. A Logger that is never dropped (in a `static`) holds a
    /// [`shutdown_guard`](Self::shutdown_guard) in `main`. Everything
    /// else — bounds, outcomes, reports — is as with [`Logger::new`].
    ///
    /// # Errors
    /// [`Error::LoggerThread`] when the thread or its runtime cannot be
    /// started.
    ///
    /// ```
    /// use std::time::Duration;
    /// use honeyhive::{Event, Logger, LoggerConfig, testing::MockHoneyHive};
    ///
    /// // No tokio runtime anywhere in this program.
    /// let mock = MockHoneyHive::start();
    /// let logger = Logger::on_own_thread(&mock.client()?, LoggerConfig::default())?;
    /// logger.log("session-1", Event::tool("search"))?;
    /// let report = logger.shutdown_blocking(Duration::from_secs(5));
    /// assert!(report.complete);
    /// assert_eq!(mock.events().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_own_thread(client: &Client, config: LoggerConfig) -> Result<Logger, Error> {
        let client = client.clone();
        let (made_tx, made_rx) = mpsc::sync_channel::<Result<Logger, Error>>(1);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(OwnThread::NAME.to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _gone = made_tx.send(Err(Error::LoggerThread { source: e }));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let made = Logger::new(&client, config);
                    let started = made.is_ok();
                    let _gone = made_tx.send(made);
                    if started {
                        // Until the last handle is dropped (or its sender
                        // is, which is the same).
                        let _ended = stop_rx.await;
                    }
                });
            })
            .map_err(|source| Error::LoggerThread { source })?;
        let logger = match made_rx.recv() {
            Ok(made) => made?,
            Err(_) => {
                let _panicked = thread.join();
                return Err(Error::LoggerThread {
                    source: std::io::Error::other("the thread ended before the Logger started"),
                });
            }
        };
        *logger.handle.own_thread.lock() = Some(OwnThread {
            stop: Some(stop_tx),
            thread: Some(thread),
        });
        Ok(logger)
    }

    /// [`flush`](Self::flush) for code that is not async: blocks this
    /// thread until the flush's report is ready (within `timeout`, as
    /// `flush`, plus at most a second; a report marked incomplete if the
    /// Logger's runtime did not run the flush by then).
    ///
    /// Where it may be called: anywhere a thread may block. Outside any
    /// runtime; on tokio's blocking pool (`spawn_blocking`); on a
    /// multi-thread runtime's worker, which tokio's `block_in_place` first
    /// hands its other tasks off. A Logger [on its own
    /// thread](Self::on_own_thread) may be flushed this way from anywhere.
    ///
    /// # Panics
    /// On a current-thread runtime's own thread (its `block_on`, a
    /// `#[tokio::test]`), for a Logger made by [`Logger::new`]: blocking
    /// there would stop the very thread that does the work. Use
    /// `flush(timeout).await` there.
    pub fn flush_blocking(&self, timeout: Duration) -> LoggerReport {
        let logger = self.clone();
        self.block_on_runtime("flush_blocking", timeout, async move {
            logger.flush(timeout).await
        })
    }

    /// [`shutdown`](Self::shutdown) for code that is not async: blocks this
    /// thread until the shutdown's report is ready (within `timeout` plus
    /// [`SINK_GRACE`](Self::SINK_GRACE), as `shutdown`, plus at most a
    /// second; a report marked incomplete if the Logger's runtime did not
    /// run the shutdown by then).
    ///
    /// Where it may be called: as [`flush_blocking`](Self::flush_blocking).
    ///
    /// # Panics
    /// As [`flush_blocking`](Self::flush_blocking): on a current-thread
    /// runtime's own thread, for a Logger made by [`Logger::new`].
    pub fn shutdown_blocking(&self, timeout: Duration) -> LoggerReport {
        let logger = self.clone();
        self.block_on_runtime(
            "shutdown_blocking",
            timeout.saturating_add(Self::SINK_GRACE),
            async move { logger.shutdown(timeout).await },
        )
    }

    /// Runs `work` on the Logger's runtime and waits for its report. A
    /// runtime that is gone (its tasks with it) stopped the Logger and
    /// handed everything back already: the report says so at once.
    fn block_on_runtime(
        &self,
        what: &str,
        budget: Duration,
        work: impl Future<Output = LoggerReport> + Send + 'static,
    ) -> LoggerReport {
        let own_thread = self.handle.own_thread.lock().is_some();
        // An own thread's runtime is on another thread: blocking here
        // cannot stop it.
        let block = if own_thread {
            Blocking::Plainly
        } else {
            Blocking::asked().unwrap_or_else(|| {
                panic!(
                    "Logger::{what} was called from async code on a current-thread runtime's \
                     thread, where blocking would stop the thread that does the work; use the \
                     async form (`.await`) there, or call it from spawn_blocking"
                )
            })
        };
        let answer = block.run_on(&self.handle.runtime, budget, work);
        answer.unwrap_or_else(|| {
            // Gone with its runtime (everything was handed back then), or
            // not run in time.
            let shared = &self.handle.shared;
            shared.report(shared.stopped(), 0)
        })
    }

    /// How long dropping the last handle of an [own-thread](Self::on_own_thread)
    /// Logger waits for what is queued to be sent, before the rest is
    /// handed back as dead letters: 2 s. The drop returns within that,
    /// plus [`SINK_GRACE`](Self::SINK_GRACE) for the dead-letter hook,
    /// plus at most a second for a runtime that does not run the shutdown.
    pub const DROP_BUDGET: Duration = Duration::from_secs(2);

    /// A guard that shuts this Logger down when it is dropped, within
    /// `timeout` (plus [`SINK_GRACE`](Self::SINK_GRACE)), as
    /// [`shutdown_blocking`](Self::shutdown_blocking) would: for a Logger
    /// that is never dropped itself, such as one in a `static`, held in
    /// `main` so that every way out of it (a return, `?`, the end) sends
    /// what is queued. Where the drop cannot block (a current-thread
    /// runtime's own thread, for a Logger made by [`Logger::new`]), it
    /// does not wait, and warns how many events were left. Tokio does not
    /// tell that thread from its blocking pool, so a guard of such a
    /// Logger dropped anywhere in a current-thread runtime does not wait.
    ///
    /// ```
    /// use std::sync::OnceLock;
    /// use std::time::Duration;
    /// use honeyhive::{Event, Logger, LoggerConfig, testing::MockHoneyHive};
    ///
    /// static LOGGER: OnceLock<Logger> = OnceLock::new();
    ///
    /// let mock = MockHoneyHive::start();
    /// let logger = Logger::on_own_thread(&mock.client()?, LoggerConfig::default())?;
    /// let logger = LOGGER.get_or_init(|| logger);
    /// {
    ///     let _sent_at_exit = logger.shutdown_guard(Duration::from_secs(5));
    ///     LOGGER.get().unwrap().log("session-1", Event::tool("search"))?;
    /// } // the guard's drop sends it
    /// assert_eq!(mock.events().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_guard(&self, timeout: Duration) -> ShutdownGuard {
        ShutdownGuard {
            logger: self.clone(),
            timeout,
        }
    }
}

/// Shuts its Logger down when dropped; see [`Logger::shutdown_guard`].
#[derive(Debug)]
#[must_use = "the Logger is shut down when the guard is dropped: hold it until the end of main"]
pub struct ShutdownGuard {
    logger: Logger,
    timeout: Duration,
}

impl Drop for ShutdownGuard {
    fn drop(&mut self) {
        let handle = &self.logger.handle;
        if handle.shared.stopped() {
            return;
        }
        let own_thread = handle.own_thread.lock().is_some();
        match (own_thread, Blocking::here()) {
            (true, _) | (false, Some(_)) => {
                let _report = self.logger.shutdown_blocking(self.timeout);
            }
            (false, None) => {
                let queued = handle.shared.queue.len();
                super::warn_loss(&format!(
                    "honeyhive ShutdownGuard of a Logger made by Logger::new dropped in a \
                     current-thread runtime, where waiting could stop the runtime that sends: \
                     {queued} queued events may not be delivered. Call \
                     logger.shutdown(timeout).await before the end of the runtime"
                ));
            }
        }
    }
}

/// That the current thread may block, and how.
#[derive(Clone, Copy)]
enum Blocking {
    /// Not in a runtime, or on tokio's blocking pool.
    Plainly,
    /// In a multi-thread runtime: through `block_in_place`, which moves
    /// a worker's other tasks to another thread first (and, on the
    /// blocking pool, just runs the closure).
    InPlace,
}

impl Blocking {
    /// How this thread may block, as far as can be told without trying:
    /// `None` in a current-thread runtime's context, which is its own
    /// thread (where blocking stops the runtime) or its blocking pool
    /// (where it is fine), and tokio does not say which.
    fn here() -> Option<Blocking> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current() {
            Err(_) => Some(Blocking::Plainly),
            Ok(runtime) if runtime.runtime_flavor() == RuntimeFlavor::CurrentThread => None,
            Ok(_) => Some(Blocking::InPlace),
        }
    }

    /// [`here`](Self::here), asking tokio in a current-thread runtime's
    /// context: `block_in_place` runs a closure on the blocking pool and
    /// panics (before running it) on the runtime's own thread. For the
    /// blocking calls only, which panic there anyway; a drop never asks.
    fn asked() -> Option<Blocking> {
        Self::here().or_else(|| {
            std::panic::catch_unwind(|| tokio::task::block_in_place(|| ()))
                .ok()
                .map(|()| Blocking::Plainly)
        })
    }

    /// Runs `work` on `runtime` and blocks this thread for its answer, for
    /// `budget` and a second more (the work keeps its own time; this bounds
    /// a runtime that never runs it, idle or blocked): `None` when it did
    /// not answer by then, or went away with its runtime.
    fn run_on<T: Send + 'static>(
        self,
        runtime: &tokio::runtime::Handle,
        budget: Duration,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        let _task = runtime.spawn(async move {
            let _gone = done_tx.send(work.await);
        });
        let wait = move || match budget.checked_add(Duration::from_secs(1)) {
            Some(limit) => done_rx.recv_timeout(limit).ok(),
            None => done_rx.recv().ok(),
        };
        match self {
            Blocking::Plainly => wait(),
            Blocking::InPlace => tokio::task::block_in_place(wait),
        }
    }
}

impl Handle {
    /// The drop of an own-thread Logger's last handle: shuts down on its
    /// runtime within [`Logger::DROP_BUDGET`], where this thread may wait.
    pub(super) fn shut_down_on_drop(&mut self) {
        let on_own_thread = self
            .own_thread
            .get_mut()
            .as_ref()
            .and_then(|own| own.thread.as_ref())
            .is_some_and(|thread| thread.thread().id() == std::thread::current().id());
        if on_own_thread {
            return;
        }
        // Its runtime is on another thread: this one may wait, in any
        // context (a multi-thread runtime's worker hands its tasks off).
        let block = Blocking::here().unwrap_or(Blocking::Plainly);
        let failed_before = self.shared.stats().failed;
        let shared = std::sync::Arc::clone(&self.shared);
        let dispatcher = self.dispatcher.get_mut().take();
        let work =
            async move { super::shut_down(&shared, || dispatcher, Logger::DROP_BUDGET).await };
        let budget = Logger::DROP_BUDGET + Logger::SINK_GRACE;
        // Not answered in time: the drop goes on to hand back what is left
        // (and warns of it) as any drop does.
        if let Some(report) = block.run_on(&self.runtime, budget, work) {
            let lost = report.stats.failed.saturating_sub(failed_before);
            if lost > 0 {
                super::warn_dropped(&self.shared, lost as usize, true);
            }
        }
    }
}
