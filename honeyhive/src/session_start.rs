//! [`SessionStart`]: the body of `POST /v1/sessions`, built field by field.

use crate::fields::{Invalid, object_setters, time_setters};
use crate::{api, error::Error, session::SessionId};

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

    /// Sets the session's name (`session_name` on the wire). `name` is
    /// this object's own name on every builder: [`Event::name`](crate::Event::name)
    /// names an event; the session's own event is named by
    /// [`event_name`](Self::event_name).
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

    /// The request body as the generated API type, as it stands now
    /// (before the client fills the session id and source).
    pub fn as_api(&self) -> &api::types::StartSessionRequest {
        &self.wire
    }

    /// The request body as the generated API type, or the first problem a
    /// setter met.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field a setter could not take,
    /// or `end_time` before `start_time`.
    pub fn into_api(self) -> Result<api::types::StartSessionRequest, Error> {
        self.invalid.check()?;
        crate::fields::times_in_order(
            "",
            self.wire.start_time.as_ref(),
            self.wire.end_time.as_ref(),
        )?;
        Ok(self.wire)
    }
}

time_setters!(SessionStart {
    start_time,
    end_time,
    duration
});

object_setters!(SessionStart {
    inputs: ": what went into the session",
    outputs: ": what came out of the session",
    config: ": how the application was configured for it",
    metadata: "",
    user_properties: "",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_set_as_numbers_and_an_end_before_the_start_is_refused() {
        let start = SessionStart::new("chat")
            .start_time_ms(1_700_000_000_123.0)
            .end_time_ms(1_700_000_001_000.0)
            .duration_ms(877.0);
        let wire = start.into_api().unwrap();
        assert_eq!(wire.start_time.unwrap().as_f64(), Some(1_700_000_000_123.0));
        assert_eq!(wire.duration.unwrap().as_f64(), Some(877.0));

        let backwards = SessionStart::new("chat")
            .start_time_ms(2_000.0)
            .end_time_ms(1_000.0);
        let err = backwards.into_api().unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput { field, .. } if field == "end_time"),
            "{err:?}"
        );
        assert!(err.to_string().contains("before start_time"), "{err}");

        let refused = SessionStart::new("chat").duration_ms(f64::NAN);
        let err = refused.into_api().unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput { field, .. } if field == "duration"),
            "{err:?}"
        );
    }
}
