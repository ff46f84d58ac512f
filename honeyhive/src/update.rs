//! [`EventUpdate`]: changes to an event logged earlier.

use serde::Serialize;

use crate::fields::{Invalid, object_setters, time_setters};
use crate::{api, error::Error};

/// Changes to an event logged earlier, for [`Client::update_event`]
/// (`PUT /v1/events/{event_id}`), built field by field: feedback or
/// metrics that arrive after the event ended are the usual reason.
///
/// HoneyHive merges `feedback`, `metrics`, `metadata`, `config` and
/// `user_properties` into what it holds, and replaces `outputs`,
/// `duration`, `end_time` and `children_ids`; fields not set are not sent
/// and stay as they are. Setters never fail on the spot: a value that
/// cannot be sent is reported as [`Error::InvalidInput`], naming the
/// field, when the update is sent.
///
/// ```
/// use honeyhive::EventUpdate;
/// use serde_json::json;
///
/// let update = EventUpdate::new()
///     .feedback(json!({"rating": 5, "comment": "spot on"}))
///     .metrics(json!({"latency_ms": 840}));
/// assert_eq!(update.as_api().feedback["rating"], 5);
/// ```
///
/// [`Client::update_event`]: crate::Client::update_event
#[must_use = "an EventUpdate does nothing until it is given to Client::update_event"]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventUpdate {
    wire: api::types::UpdateEventRequest,
    invalid: Invalid,
}

impl EventUpdate {
    /// An update that changes nothing yet.
    pub fn new() -> Self {
        EventUpdate::default()
    }

    /// Replaces `outputs`. Takes anything that serializes to a JSON object.
    pub fn outputs(mut self, outputs: impl Serialize) -> Self {
        self.wire.outputs = Some(self.invalid.object("outputs", outputs));
        self
    }

    /// Replaces `children_ids`, the ids of the events inside this one
    /// (HoneyHive ignores an empty list).
    pub fn children_ids<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.wire.children_ids = ids.into_iter().map(Into::into).collect();
        self
    }

    /// The request body as the generated API type, as it stands now.
    pub fn as_api(&self) -> &api::types::UpdateEventRequest {
        &self.wire
    }

    /// The request body as the generated API type.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field a setter could not take, or
    /// `update` when no field is set (an update that changes nothing is
    /// most likely a mistake).
    pub fn into_api(self) -> Result<api::types::UpdateEventRequest, Error> {
        self.invalid.check()?;
        if self.wire == api::types::UpdateEventRequest::default() {
            return Err(Error::invalid(
                "update",
                "sets no field; set feedback, metrics, metadata, outputs, config, \
                 user_properties, duration, end_time or children_ids",
            ));
        }
        Ok(self.wire)
    }
}

time_setters!(EventUpdate { end_time, duration });

object_setters!(EventUpdate {
    feedback: ", merged into the event's",
    metrics: ", merged into the event's",
    metadata: ", merged into the event's",
    config: ", merged into the event's",
    user_properties: ", merged into the event's",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_set_as_numbers_and_bad_ones_are_named() {
        let update = EventUpdate::new()
            .end_time_ms(1_700_000_001_000.0)
            .duration_ms(12.5);
        let wire = update.into_api().unwrap();
        assert_eq!(wire.end_time.unwrap().as_f64(), Some(1_700_000_001_000.0));
        assert_eq!(wire.duration.unwrap().as_f64(), Some(12.5));

        let err = EventUpdate::new().end_time_ms(-1.0).into_api().unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput { field, .. } if field == "end_time"),
            "{err:?}"
        );
    }
}
