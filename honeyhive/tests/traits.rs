//! Every public type is `Send + Sync + Unpin`, and every public future is
//! `Send`, as tokio asserts for its own: a type that lost one of these
//! would break users who share it across tasks or threads, so a change that
//! does fails here, at compile time.

#![allow(dead_code, reason = "the functions are compiled, not run")]

use std::future::Future;
use std::time::Duration;

use honeyhive::{
    Client, ClientBuilder, DeadLetter, Error, Event, EventLine, EventType, EventUpdate, FreeForm,
    JsonlDeadLetters, LogError, Logged, LoggedBatch, Logger, LoggerConfig, LoggerReport,
    LoggerStats, Outcome, Redactor, RetryPolicy, Route, Sent, Session, SessionId, SessionStart,
    ShutdownGuard, StartedSession, Undelivered, UnknownEventType, Updated,
};

fn send_sync_unpin<T: Send + Sync + Unpin>() {}

macro_rules! assert_send_sync_unpin {
    ($($ty:ty),* $(,)?) => {
        $( send_sync_unpin::<$ty>(); )*
    };
}

#[test]
fn public_types_are_send_sync_and_unpin() {
    assert_send_sync_unpin!(
        Client,
        ClientBuilder,
        Logged,
        LoggedBatch,
        StartedSession,
        Updated,
        DeadLetter,
        EventLine,
        Undelivered,
        JsonlDeadLetters,
        Redactor,
        FreeForm,
        Error,
        Event,
        EventType,
        UnknownEventType,
        EventUpdate,
        LogError,
        Logger,
        LoggerConfig,
        LoggerReport,
        ShutdownGuard,
        LoggerStats,
        Outcome<'static>,
        Sent<'static>,
        Route,
        RetryPolicy,
        Session,
        SessionId,
        SessionStart,
        honeyhive::StatusCode,
        honeyhive::testing::MockHoneyHive,
        honeyhive::testing::MockStats,
        honeyhive::testing::ReceivedEvent,
        honeyhive::testing::ReceivedSession,
        honeyhive::testing::ReceivedUpdate,
        honeyhive::testing::Violation,
        honeyhive::tracing::HoneyHiveLayer,
        honeyhive::tracing::LayerStats,
    );
}

/// Never called: it only has to compile, which needs every future `Send`.
fn public_futures_are_send(client: Client, logger: Logger, session: Session) {
    fn check<F: Future + Send>(_future: F) {}
    check(client.log_event("s", Event::tool("t")));
    check(client.log_batch([("s", Event::tool("t"))]));
    check(client.start_session(SessionStart::new("p")));
    check(client.update_event("e", EventUpdate::new()));
    check(logger.log_wait(SessionId::from("s"), Event::tool("t")));
    check(logger.flush(Duration::ZERO));
    check(logger.shutdown(Duration::ZERO));
    check(session.log(Event::tool("t")));
}
