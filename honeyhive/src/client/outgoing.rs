//! What leaves the process, in one place for every route: the event's ids
//! filled, its mask applied, the API key redacted from its JSON, and an
//! event over the body limit cut to fit (see [`crate::cut`]).

use std::borrow::Cow;

use super::Client;
use super::send::fill_event_ids;
use crate::api::types::Event as Wire;
use crate::{Error, Event};

impl Client {
    /// `event` as it will be serialized: checked, ids filled, masked, and,
    /// when `json_at_least` (a lower bound of its JSON's size; 0 when not
    /// known) is over the limit, cut before it is ever serialized whole.
    ///
    /// # Errors
    /// A setter's problem, or the mask's panic ([`Error::InvalidInput`]).
    pub(crate) fn outgoing(&self, event: Event, json_at_least: usize) -> Result<Wire, Error> {
        let mut wire = event.into_api()?;
        fill_event_ids(&mut wire);
        if let Some(mask) = &self.inner.mask {
            crate::mask::apply(&**mask, &mut wire)?;
        }
        let limit = self.inner.max_body_bytes;
        if self.inner.cut_oversize && json_at_least > limit {
            // The estimate is a lower bound: aim a little under the limit,
            // so that one cut is enough. Cannot fit: left whole, and
            // refused by the size check.
            let slack = (limit / 64).max(1024);
            let _whole = crate::cut::fit(&mut wire, json_at_least - limit + slack);
        }
        Ok(wire)
    }

    /// Cuts `wire` whose JSON came to `len` bytes, `budget` allowed, when
    /// cutting is on. Whether it was cut (and must be serialized again).
    pub(crate) fn cut_to(&self, wire: &mut Wire, len: usize, budget: usize) -> bool {
        self.inner.cut_oversize && len > budget && crate::cut::fit(wire, len - budget).is_ok()
    }

    /// `json` with the client's API key replaced, wherever it is (a key of
    /// 8 characters or more; shorter ones would match ordinary text).
    pub(crate) fn without_key<'a>(&self, json: &'a [u8]) -> Cow<'a, [u8]> {
        self.inner.scrubber.redact_event(json)
    }

    /// The lower bound of `event`'s JSON size, when cutting needs it.
    pub(crate) fn json_at_least(&self, event: &Event) -> usize {
        if self.inner.cut_oversize {
            crate::footprint::estimate_event(event.as_api()).json_at_least
        } else {
            0
        }
    }

    /// Whether events of `session_id` are sent
    /// ([`ClientBuilder::sample_rate`](crate::ClientBuilder::sample_rate)).
    pub(crate) fn samples_in(&self, session_id: &str) -> bool {
        self.inner.sample.keeps(session_id)
    }
}

impl Client {
    /// Whether this client sends the events of `session_id`, or samples
    /// the session out ([`ClientBuilder::sample_rate`](crate::ClientBuilder::sample_rate)):
    /// the same answer for the same id in every process. For code that
    /// would rather not build an event nobody will see.
    ///
    /// ```
    /// let client = honeyhive::Client::builder().api_key("k").sample_rate(0.0).build()?;
    /// assert!(!client.keeps_session("checkout-7"));
    /// # Ok::<(), honeyhive::Error>(())
    /// ```
    pub fn keeps_session(&self, session_id: &str) -> bool {
        self.samples_in(session_id)
    }

    /// Whether an oversize event is cut rather than refused.
    pub(crate) fn cuts_oversize(&self) -> bool {
        self.inner.cut_oversize
    }
}
