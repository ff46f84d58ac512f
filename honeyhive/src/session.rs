//! Session ids, the per-session handle, and sessions to start.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::fields::{Invalid, object_setters};
use crate::{Client, Error, Event, Logged, api};

/// The id of a HoneyHive session: the group an event is logged into.
///
/// Every API that takes a session id takes `impl Into<SessionId>`, so a
/// `&str`, a `String`, a [`uuid::Uuid`] or a `&`[`Session`] work as well.
///
/// ```
/// use honeyhive::SessionId;
///
/// let fresh = SessionId::new();
/// assert_eq!(fresh.as_str().len(), 36); // a UUIDv4
/// let given: SessionId = "checkout-flow-42".into();
/// assert_eq!(given.to_string(), "checkout-flow-42");
/// ```
///
/// Cloning is cheap (a reference count), so passing `&session_id` to every
/// call costs no allocation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(Arc<str>);

impl SessionId {
    /// A new random session id (a UUIDv4).
    #[expect(
        clippy::new_without_default,
        reason = "a Default that mints a random id would make #[derive(Default)] on a user's \
                  struct start a new session silently"
    )]
    pub fn new() -> Self {
        SessionId(uuid::Uuid::new_v4().to_string().into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SessionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SessionId {
    fn from(id: &str) -> Self {
        SessionId(id.into())
    }
}

impl From<String> for SessionId {
    fn from(id: String) -> Self {
        SessionId(id.into())
    }
}

impl From<&String> for SessionId {
    fn from(id: &String) -> Self {
        SessionId(id.as_str().into())
    }
}

impl From<&SessionId> for SessionId {
    fn from(id: &SessionId) -> Self {
        id.clone()
    }
}

impl From<&Session> for SessionId {
    /// The handle's session id, so a [`Session`] can be passed wherever a
    /// session id is taken, such as [`Logger::log`](crate::Logger::log).
    fn from(session: &Session) -> Self {
        session.id.clone()
    }
}

impl From<uuid::Uuid> for SessionId {
    fn from(id: uuid::Uuid) -> Self {
        SessionId(id.to_string().into())
    }
}

impl From<SessionId> for String {
    fn from(id: SessionId) -> Self {
        id.0.as_ref().to_owned()
    }
}

/// A [`Client`] bound to one session, made by [`Client::session`].
///
/// Cheap to clone; it holds a clone of the client.
///
/// ```no_run
/// # async fn run() -> Result<(), honeyhive::Error> {
/// use honeyhive::{Client, Event, SessionId};
///
/// let client = Client::from_env()?;
/// let session = client.session(SessionId::new());
/// session.log(Event::session("support-chat")).await?;
/// session.log(Event::model("gpt-4o")).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Session {
    client: Client,
    id: SessionId,
}

impl Session {
    pub(crate) fn new(client: Client, id: SessionId) -> Self {
        Session { client, id }
    }

    /// The session's id.
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// Logs `event` in this session; see [`Client::log_event`].
    pub async fn log(&self, event: Event) -> Result<Logged, Error> {
        self.client.log_event(&self.id, event).await
    }
}

/// A session to start with [`Client::start_session`]
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
