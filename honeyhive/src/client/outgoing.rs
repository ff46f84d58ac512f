//! What leaves the process, in one place for every route: the event's ids
//! filled, its mask applied, the API key redacted from its JSON, and an
//! event over the body limit cut to fit (see [`crate::cut`]).

use bytes::Bytes;

use super::send::fill_event_ids;
use super::{Client, Expect, Prepared};
use crate::api::types::Event as Wire;
use crate::flat::{FRAMING, unflatten};
use crate::session::SessionId;
use crate::{error::Error, event::Event, mask::FreeFormFields};

/// What an event became for a route ([`Client::outgoing_for`]).
pub(crate) struct Outgoing {
    /// The (root) event's id.
    pub(crate) event_id: String,
    /// The per-event route's whole request; `None` on the batch route,
    /// whose flat JSON was written out.
    pub(crate) request: Option<Prepared>,
}

/// Why an event cannot go, with what of it can be given back: its JSON as
/// the per-event route carries it (children nested, ids filled) and its
/// id, once it got that far.
pub(crate) struct Refused {
    pub(crate) error: Error,
    pub(crate) json: Option<(Bytes, String)>,
}

impl Client {
    /// One event made into what goes on the wire, checked against the body
    /// limit: on the batch route (`flat`) its flat JSON appended to `out`
    /// (nothing is left there when it is refused), otherwise its whole
    /// request. The Logger's one door to what leaves.
    // Refused is rare and moved once: boxing it would buy nothing.
    #[allow(clippy::result_large_err)]
    pub(crate) fn outgoing_for(
        &self,
        flat: bool,
        session_id: &SessionId,
        event: Event,
        json_at_least: usize,
        out: &mut Vec<u8>,
    ) -> Result<Outgoing, Refused> {
        let start = out.len();
        let per_event = |event| {
            let prepared = self.serialize(session_id, event, json_at_least)?;
            let event_id = match &prepared.expect {
                Expect::Event { event_id } => event_id.clone(),
                _ => String::new(),
            };
            Ok::<_, Error>(Outgoing {
                event_id,
                request: Some(prepared),
            })
        };
        let made = if !flat {
            per_event(event)
        } else if let Err(error) = crate::flat::check(event.as_api()) {
            // `Logger::log` checked this, but not a tree built later.
            let json = per_event(event).ok().and_then(|made| {
                let body = made.request?.body;
                Some((body, made.event_id))
            });
            return Err(Refused { error, json });
        } else {
            (self.flat_into(out, session_id, event, json_at_least)).map(|event_id| Outgoing {
                event_id,
                request: None,
            })
        };
        // Only a mask that panicked fails here; it may have changed the
        // event half-way, so nothing of it is given back.
        let made = made.map_err(|error| {
            out.truncate(start);
            Refused { error, json: None }
        })?;
        let len = match &made.request {
            Some(prepared) => prepared.body.len(),
            None => FRAMING + (out.len() - start),
        };
        if let Err(error) = self.check_len("event", len) {
            let json = match made.request {
                Some(prepared) => prepared.body,
                None => Bytes::from(unflatten(&out[start..]).to_string()),
            };
            out.truncate(start);
            return Err(Refused {
                error,
                json: Some((json, made.event_id)),
            });
        }
        Ok(made)
    }

    /// `event` as it will be serialized: checked, ids filled, masked, and,
    /// when `json_at_least` (a lower bound of its JSON's size; 0 when not
    /// known, and then estimated here) is over the limit, cut before it is
    /// ever serialized whole.
    ///
    /// # Errors
    /// A setter's problem, or the mask's panic ([`Error::InvalidInput`]).
    ///
    /// Returns the event and the least its JSON now takes (0 when not
    /// known), for sizing the buffer it is serialized into.
    pub(crate) fn outgoing(
        &self,
        event: Event,
        json_at_least: usize,
    ) -> Result<(Wire, usize), Error> {
        let mut wire = event.into_api()?;
        fill_event_ids(&mut wire);
        if let Some(mask) = &self.inner.mask {
            crate::mask::apply(&**mask, &mut wire)?;
        }
        let limit = self.inner.max_body_bytes;
        if !self.inner.cut_oversize {
            return Ok((wire, json_at_least));
        }
        let json_at_least = match json_at_least {
            // Not known (`log_event`, `log_batch`, a tree the tracing layer
            // built when it was taken).
            0 => crate::footprint::estimate_event(&wire).json_at_least,
            known => known,
        };
        if json_at_least <= limit {
            return Ok((wire, json_at_least));
        }
        // The estimate is a lower bound: aim a little under the limit, so
        // that one cut is enough. Cannot fit: left whole, and refused by
        // the size check.
        let slack = (limit / 64).max(1024);
        if self.cut(&mut wire, json_at_least - limit + slack) {
            Ok((wire, limit - slack))
        } else {
            Ok((wire, json_at_least))
        }
    }

    /// Cuts `wire` whose JSON came to `len` bytes, `budget` allowed, when
    /// cutting is on. Whether it was cut (and must be serialized again).
    pub(crate) fn cut_to(&self, wire: &mut Wire, len: usize, budget: usize) -> bool {
        self.inner.cut_oversize && len > budget && self.cut(wire, len - budget)
    }

    /// Cuts `over` bytes off `wire`; whether it could. The key is taken
    /// out of the strings first, so that a cut through it cannot leave a
    /// part of it that the body's redaction would not recognise.
    fn cut(&self, wire: &mut Wire, over: usize) -> bool {
        let scrubber = &self.inner.scrubber;
        crate::cut::each_string(wire, &mut |text| scrubber.redact_text(text));
        crate::cut::fit(wire, over).is_ok()
    }

    /// Applies the mask, if any, to the free-form fields of a body that is
    /// not an event's (a session start, an update).
    ///
    /// # Errors
    /// The mask's panic ([`Error::InvalidInput`] on `mask`).
    pub(crate) fn mask_fields(&self, body: &mut impl FreeFormFields) -> Result<(), Error> {
        match &self.inner.mask {
            Some(mask) => crate::mask::apply_fields(&**mask, body.free_form_mut()),
            None => Ok(()),
        }
    }

    /// Runs `work`, which applies the mask, where a slow mask cannot stall
    /// the application: on tokio's blocking pool when a mask that may
    /// block is set and a runtime is there, else here.
    ///
    /// # Errors
    /// `work`'s, or [`Error::InvalidInput`] on `mask` when the runtime
    /// shut down before it ran.
    pub(crate) async fn off_the_runtime<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Client) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        if !self.masks() || tokio::runtime::Handle::try_current().is_err() {
            return work(self);
        }
        let client = self.clone();
        tokio::task::spawn_blocking(move || work(&client))
            .await
            .unwrap_or_else(|_| {
                Err(Error::invalid(
                    "mask",
                    "could not run: the runtime shut down first; nothing was sent",
                ))
            })
    }

    /// Whether serializing runs a mask that may block (user code that
    /// does not say it never blocks).
    pub(crate) fn masks(&self) -> bool {
        self.inner
            .mask
            .as_ref()
            .is_some_and(|mask| !mask.never_blocks())
    }

    /// Replaces the client's API key in `out[start..]`, JSON just written
    /// to the end of a body, wherever it is (a key of 8 characters or
    /// more; shorter ones would match ordinary text): what every body that
    /// leaves goes through.
    pub(crate) fn redact_written(&self, out: &mut Vec<u8>, start: usize) {
        self.inner.scrubber.redact_written(out, start);
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
    pub fn keeps_session(&self, session_id: impl Into<SessionId>) -> bool {
        self.samples_in(session_id.into().as_str())
    }

    /// Whether an oversize event is cut rather than refused.
    pub(crate) fn cuts_oversize(&self) -> bool {
        self.inner.cut_oversize
    }
}
