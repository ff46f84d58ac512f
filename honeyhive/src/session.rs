//! Session ids and the per-session handle.

use std::fmt;
use std::sync::Arc;

use crate::{Client, Error, Event, Logged};

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
