//! [`Session`]: a client bound to one session.

use crate::{client::Client, client::Logged, error::Error, event::Event, session::SessionId};

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
    ///
    /// # Errors
    /// As [`Client::log_event`].
    pub async fn log(&self, event: Event) -> Result<Logged, Error> {
        self.client.log_event(&self.id, event).await
    }
}

impl From<&Session> for SessionId {
    /// The handle's session id, so a [`Session`] can be passed wherever a
    /// session id is taken, such as [`Logger::log`](crate::Logger::log).
    fn from(session: &Session) -> Self {
        session.id.clone()
    }
}
