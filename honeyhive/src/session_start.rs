//! [`SessionStart`]: the body of `POST /v1/sessions`, built field by field.

use std::time::{Duration, SystemTime};

use crate::fields::{Invalid, object_setters};
use crate::{Error, SessionId, api};

/// A session to start with [`Client::start_session`](crate::Client::start_session)
/// (`POST /v1/sessions`), built field by field.
///
/// Setters never fail on the spot: a value that cannot be sent is
/// remembered and reported as [`Error::InvalidInput`], naming the field,
/// when the session is started. Times are whole milliseconds since the
/// Unix epoch on the wire (HoneyHive takes the current time for a time
/// that is not a number); fields not set are left out.
///
/// ```
/// use honeyhive::{SessionId, SessionStart};
/// use serde_json::json;
///
/// let start = SessionStart::new("support-chat")
///     .session_id(SessionId::new())
///     .metadata(json!({"tier": "pro"}))
///     .user_properties(json!({"user_id": "u-42"}));
/// assert_eq!(start.as_api().session_name.as_deref(), Some("support-chat"));
/// ```
#[must_use = "a SessionStart does nothing until it is given to Client::start_session"]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionStart {
    wire: api::types::StartSessionRequest,
    invalid: Invalid,
}

impl SessionStart {
    /// A session named `name` (its `session_name`, shown in HoneyHive).
    pub fn new(name: impl Into<String>) -> Self {
        SessionStart::default().name(name)
    }

    /// Sets `session_name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.wire.session_name = Some(name.into());
        self
    }

    /// Sets `session_id`, which must be a UUID (a [`SessionId::new`] is
    /// one); by default the client makes a new one.
    pub fn session_id(mut self, id: impl Into<SessionId>) -> Self {
        self.wire.session_id = Some(id.into().into());
        self
    }

    /// Sets `event_name`, the name of the session's own event (HoneyHive
    /// uses the session name when it is not set).
    pub fn event_name(mut self, name: impl Into<String>) -> Self {
        self.wire.event_name = Some(name.into());
        self
    }

    /// Sets `source` (such as `production`), overriding the client's
    /// default source.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.wire.source = Some(source.into());
        self
    }

    /// Sets `start_time`, sent as whole milliseconds since the Unix epoch.
    pub fn start_time(mut self, at: SystemTime) -> Self {
        self.wire.start_time = self.invalid.epoch_millis("start_time", at);
        self
    }

    /// Sets `end_time`, sent as whole milliseconds since the Unix epoch.
    pub fn end_time(mut self, at: SystemTime) -> Self {
        self.wire.end_time = self.invalid.epoch_millis("end_time", at);
        self
    }

    /// Sets `duration`, sent in milliseconds.
    pub fn duration(mut self, took: Duration) -> Self {
        self.wire.duration = Some(crate::millis::duration(took));
        self
    }

    /// The request body as the generated API type, as it stands now
    /// (before the client fills the session id and source).
    pub fn as_api(&self) -> &api::types::StartSessionRequest {
        &self.wire
    }

    /// The request body as the generated API type, or the first problem a
    /// setter met.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field a setter could not take.
    pub fn into_api(self) -> Result<api::types::StartSessionRequest, Error> {
        self.invalid.check()?;
        Ok(self.wire)
    }
}

object_setters!(SessionStart {
    inputs: ": what went into the session",
    outputs: ": what came out of the session",
    config: ": how the application was configured for it",
    metadata: "",
    user_properties: "",
});
