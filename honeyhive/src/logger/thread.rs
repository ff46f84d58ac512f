//! A Logger on a thread of its own, with its own tokio runtime, for
//! programs without one (and the `tracing` layer in them); and the blocking
//! forms of `flush` and `shutdown` that such programs call.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Logger, LoggerConfig, LoggerReport};
use crate::{Client, Error};

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
    /// it ends when the last clone is dropped, after the drop has handed
    /// back what was left. End with [`shutdown_blocking`](Self::shutdown_blocking)
    /// (or `shutdown(..).await` from async code) to send what is queued
    /// first. Everything else — bounds, outcomes, reports — is as with
    /// [`Logger::new`].
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a configuration [`Logger::new`] would
    /// refuse; [`Error::LoggerThread`] when the thread or its runtime
    /// cannot be started.
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
    /// # Panics
    /// When called from async code (inside a tokio runtime) on a Logger
    /// made by [`Logger::new`], where blocking could wait on the very
    /// thread that would do the work: use `flush(timeout).await` there. A
    /// Logger [on its own thread](Self::on_own_thread) may be flushed this
    /// way from anywhere.
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
    /// # Panics
    /// As [`flush_blocking`](Self::flush_blocking): from async code, on a
    /// Logger made by [`Logger::new`].
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
        assert!(
            own_thread || tokio::runtime::Handle::try_current().is_err(),
            "Logger::{what} was called from async code, where it could block the thread that \
             would do the work; use the async form (`.await`) there"
        );
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        let _task = self.handle.runtime.spawn(async move {
            let _gone = done_tx.send(work.await);
        });
        // The work keeps its own time; this bounds a runtime that never
        // runs it (one that is idle, or blocked).
        let answer = match budget.checked_add(Duration::from_secs(1)) {
            Some(limit) => done_rx.recv_timeout(limit).ok(),
            None => done_rx.recv().ok(),
        };
        answer.unwrap_or_else(|| {
            // Gone with its runtime (everything was handed back then), or
            // not run in time.
            let shared = &self.handle.shared;
            shared.report(shared.state() == super::State::Stopped, 0)
        })
    }
}
