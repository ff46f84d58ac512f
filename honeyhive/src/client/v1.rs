//! HoneyHive's `/v1` routes: a batch of events, a session started, an
//! event updated.

use bytes::Bytes;

use super::answer::{Answer, Expect};
use super::send::Prepared;
use super::{Client, check_session_id};
use crate::fields::is_uuid;
use crate::flat::{FRAMING, Flat, batch_body, flatten_into};
use crate::{
    error::Error, event::Event, session::SessionId, session_start::SessionStart,
    update::EventUpdate,
};

/// What the API answered to a batch of events.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoggedBatch {
    /// The ids the events were recorded under, as the API lists them: every
    /// event of every tree, each before its children.
    pub event_ids: Vec<String>,
    /// How many requests it took (1 when the first one succeeded; 0 when
    /// every event's session was sampled out).
    pub attempts: u32,
    /// Events (trees) not sent because their session was sampled out
    /// ([`ClientBuilder::sample_rate`](crate::ClientBuilder::sample_rate)).
    pub trees_sampled_out: usize,
}

/// A session HoneyHive started (or already had), from
/// [`Client::start_session`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StartedSession {
    /// The session's id: log its events under it.
    pub session_id: SessionId,
    /// The id of the session's own event (empty when sampled out).
    pub event_id: String,
    /// How many requests it took (1 when the first one succeeded; 0 when
    /// sampled out).
    pub attempts: u32,
    /// The session was sampled out
    /// ([`ClientBuilder::sample_rate`](crate::ClientBuilder::sample_rate)):
    /// nothing was sent.
    pub sampled_out: bool,
}

/// What the API answered to an update.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Updated {
    /// The event that was updated.
    pub event_id: String,
    /// How many requests it took (1 when the first one succeeded).
    pub attempts: u32,
}

impl Client {
    /// Logs many events, of any sessions, in one request to
    /// `POST /v1/events/batch` (`createEventBatch`), retrying as the
    /// client's [`RetryPolicy`](crate::RetryPolicy) says.
    ///
    /// Each tree goes out flat, as the v1 event has no nested `children`:
    /// one event per node, each before its children, linked by `parent_id`
    /// (the parent's `event_id`; the root has none, so HoneyHive takes the
    /// session) and `children_ids`, every one with its `session_id`. Ids
    /// are filled as [`log_event`](Self::log_event) fills them (so a retry
    /// cannot record an event twice); an event without a `source` takes its
    /// parent's, the root the client's default. `inputs` is sent as `{}`
    /// when unset (the spec requires it). `project` is not sent: the v1
    /// schema has no such field (its `project_id` is an id, and the API
    /// key's project is the one used).
    ///
    /// # Errors
    /// Nothing is sent when the input is invalid ([`Error::InvalidInput`],
    /// naming the field, such as `events[2].children[0].event_type`): no
    /// events, an event without an `event_type` or with one the route does
    /// not take, an empty session id, a setter's problem, or a body over
    /// [`max_body_bytes`](crate::ClientBuilder::max_body_bytes) (split the
    /// batch, or log through a [`Logger`](crate::Logger) with
    /// [`Route::EventBatch`](crate::Route::EventBatch), which
    /// splits by size). The API's answers are as for `log_event`;
    /// `success: false` is [`Error::NotRecorded`].
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// use honeyhive::{Event, SessionId};
    ///
    /// let session = SessionId::new();
    /// let logged = client
    ///     .log_batch([
    ///         (&session, Event::model("gpt-4o").child(Event::tool("search"))),
    ///         (&session, Event::tool("rerank")),
    ///     ])
    ///     .await?;
    /// assert_eq!(logged.event_ids.len(), 3);
    /// # Ok(()) }
    /// ```
    pub async fn log_batch<S, I>(&self, events: I) -> Result<LoggedBatch, Error>
    where
        I: IntoIterator<Item = (S, Event)>,
        S: Into<SessionId>,
    {
        let events: Vec<(SessionId, Event)> = events
            .into_iter()
            .map(|(session_id, event)| (session_id.into(), event))
            .collect();
        let given = events.len();
        let (flats, sampled_out) = self
            .off_the_runtime(move |client| {
                let mut flats = Vec::new();
                let mut sampled_out = 0;
                for (index, (session_id, event)) in events.into_iter().enumerate() {
                    let within = |e: Error| e.within(&format!("events[{index}]."));
                    check_session_id(&session_id).map_err(within)?;
                    if !client.samples_in(session_id.as_str()) {
                        event.check().map_err(within)?;
                        sampled_out += 1;
                        continue;
                    }
                    let flat = client.flat(&session_id, event, 0).map_err(within)?;
                    client.check_len(&format!("events[{index}]"), flat.alone_len())?;
                    flats.push(flat);
                }
                Ok((flats, sampled_out))
            })
            .await?;
        if given > 0 && flats.is_empty() {
            return Ok(LoggedBatch {
                event_ids: Vec::new(),
                attempts: 0,
                trees_sampled_out: sampled_out,
            });
        }
        if flats.is_empty() {
            return Err(Error::invalid(
                "events",
                "is empty; a batch carries at least one event",
            ));
        }
        let prepared = self.batch(flats.iter());
        let (len, limit) = (prepared.body.len(), self.inner.max_body_bytes);
        if len > limit {
            return Err(Error::invalid(
                "events",
                format!(
                    "are {len} bytes as JSON, over the {limit}-byte limit; split the batch, or \
                     log through a Logger with Route::EventBatch, which splits by size"
                ),
            ));
        }
        let (answer, attempts) = self.send_prepared(&prepared).await?;
        let event_ids = match answer {
            Answer::Batch(ids) => ids,
            other => vec![other.into_event_id()],
        };
        Ok(LoggedBatch {
            event_ids,
            attempts,
            trees_sampled_out: sampled_out,
        })
    }

    /// Starts a session with `POST /v1/sessions` (`createSession`),
    /// retrying as the client's [`RetryPolicy`](crate::RetryPolicy) says.
    ///
    /// The session id is the one [`SessionStart::session_id`] set, or a new
    /// UUIDv4; either way it is known before the request, so a retry names
    /// the same session, and HoneyHive treats a second start of a session as
    /// the same session (it merges `metadata` and `user_properties`). The
    /// source is the client's default when none is set. `project` is not
    /// sent: the API key's project is the one used.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] before anything is sent: a setter's problem,
    /// or a session id that is not a UUID (HoneyHive would replace it with
    /// one of its own, and events logged under yours would land elsewhere).
    /// The API's answers are as for [`log_event`](Self::log_event); an
    /// answer without the session event's ids is [`Error::Decode`].
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// use honeyhive::{Event, SessionStart};
    /// use serde_json::json;
    ///
    /// let started = client
    ///     .start_session(SessionStart::new("support-chat").metadata(json!({"tier": "pro"})))
    ///     .await?;
    /// client.log_event(&started.session_id, Event::model("gpt-4o")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn start_session(&self, start: SessionStart) -> Result<StartedSession, Error> {
        let mut wire = start.into_api()?;
        let session_id = match &wire.session_id {
            Some(id) => {
                check_uuid(
                    "session_id",
                    id,
                    "HoneyHive replaces a session id that is not a UUID with one of its own, so events logged under this one would not be in the session; use SessionId::new()",
                )?;
                SessionId::from(id)
            }
            None => {
                let id = SessionId::new();
                wire.session_id = Some(id.as_str().to_owned());
                id
            }
        };
        if wire.source.is_none() {
            wire.source.clone_from(&self.inner.source);
        }
        if !self.samples_in(session_id.as_str()) {
            return Ok(StartedSession {
                session_id,
                event_id: String::new(),
                attempts: 0,
                sampled_out: true,
            });
        }
        let body = self
            .off_the_runtime(move |client| {
                client.mask_fields(&mut wire)?;
                let mut body = serde_json::to_vec(&wire).map_err(|e| {
                    Error::invalid("session", format!("could not be serialized: {e}"))
                })?;
                client.redact_written(&mut body, 0);
                Ok(body)
            })
            .await?;
        let prepared = Prepared::post(
            self.url("/v1/sessions"),
            Bytes::from(body),
            Expect::Session {
                session_id: session_id.as_str().to_owned(),
            },
        );
        self.check_len("session", prepared.body.len())?;
        let (answer, attempts) = self.send_prepared(&prepared).await?;
        let event_id = match answer {
            Answer::Session(session) => session.event_id,
            other => other.into_event_id(),
        };
        Ok(StartedSession {
            session_id,
            event_id,
            attempts,
            sampled_out: false,
        })
    }

    /// Changes fields of an event logged earlier, with
    /// `PUT /v1/events/{event_id}` (`updateEvent`): feedback or metrics that
    /// arrive after the event ended are the usual reason. Only the fields
    /// set change; HoneyHive merges `feedback`, `metrics`, `metadata`,
    /// `config` and `user_properties` into what it holds, and replaces
    /// `outputs`, `duration`, `end_time` and `children_ids`. Sending the
    /// same update twice leaves the same event, so it is retried as the
    /// client's [`RetryPolicy`](crate::RetryPolicy) says.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] before anything is sent: an `event_id` that
    /// is not a UUID (the route's path parameter is `format: uuid`), an
    /// update that sets nothing, or a setter's problem. The API's answers
    /// are as for [`log_event`](Self::log_event).
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client, logged: honeyhive::Logged) -> Result<(), honeyhive::Error> {
    /// use honeyhive::EventUpdate;
    /// use serde_json::json;
    ///
    /// client
    ///     .update_event(&logged.event_id, EventUpdate::new().feedback(json!({"rating": 5})))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn update_event(
        &self,
        event_id: impl AsRef<str>,
        update: EventUpdate,
    ) -> Result<Updated, Error> {
        let event_id = event_id.as_ref();
        let uuid = check_uuid(
            "event_id",
            event_id,
            "the route takes the UUID the event was logged under (Logged::event_id, or the id \
             you set with Event::event_id)",
        )?;
        let mut wire = update.into_api()?;
        let body = self
            .off_the_runtime(move |client| {
                client.mask_fields(&mut wire)?;
                let mut body = serde_json::to_vec(&wire).map_err(|e| {
                    Error::invalid("update", format!("could not be serialized: {e}"))
                })?;
                client.redact_written(&mut body, 0);
                Ok(body)
            })
            .await?;
        let prepared = Prepared {
            method: reqwest::Method::PUT,
            url: self.url(&format!("/v1/events/{uuid}")),
            body: Bytes::from(body),
            expect: Expect::Nothing {
                event_id: event_id.to_owned(),
            },
        };
        self.check_len("update", prepared.body.len())?;
        let (_, attempts) = self.send_prepared(&prepared).await?;
        Ok(Updated {
            event_id: event_id.to_owned(),
            attempts,
        })
    }

    /// Checks `event`, fills its ids, and flattens it for the v1 routes
    /// (see [`crate::flat`]).
    pub(crate) fn flat(
        &self,
        session_id: &SessionId,
        event: Event,
        size_hint: usize,
    ) -> Result<Flat, Error> {
        let mut out = Vec::with_capacity(
            size_hint
                .min(self.inner.max_body_bytes)
                .saturating_mul(2)
                .saturating_add(128),
        );
        let event_id = self.flat_into(&mut out, session_id, event, size_hint)?;
        Ok(Flat {
            json: Bytes::from(out),
            event_id,
        })
    }

    /// [`flat`](Self::flat), appending to `out`; the root event's id. What
    /// leaves is masked, without the API key, and cut so that a batch of
    /// this tree alone fits the body limit (see
    /// [`outgoing`](Self::outgoing)).
    pub(crate) fn flat_into(
        &self,
        out: &mut Vec<u8>,
        session_id: &SessionId,
        event: Event,
        json_at_least: usize,
    ) -> Result<String, Error> {
        let (wire, json_at_least) = self.outgoing(event, json_at_least)?;
        // Flat, each event also carries its session and links.
        out.reserve(json_at_least.min(self.inner.max_body_bytes) + 256);
        let start = out.len();
        let source = self.inner.source.as_deref();
        let event_id = flatten_into(out, session_id, wire, source)?;
        self.redact_written(out, start);
        let budget = self.inner.max_body_bytes.saturating_sub(FRAMING);
        let len = out.len() - start;
        if len > budget && self.cuts_oversize() {
            // Escapes the estimate did not see: the tree again, nested,
            // cut by what is over, and flat once more.
            let nested = crate::flat::unflatten(&out[start..]);
            if let Ok(mut wire) = serde_json::from_value::<crate::api::types::Event>(nested)
                && self.cut_to(&mut wire, len, budget)
            {
                out.truncate(start);
                flatten_into(out, session_id, wire, source)?;
                self.redact_written(out, start);
            }
        }
        Ok(event_id)
    }

    /// The createEventBatch request for `flats`.
    pub(crate) fn batch<'a>(&self, flats: impl Iterator<Item = &'a Flat> + Clone) -> Prepared {
        Prepared::post(
            self.url("/v1/events/batch"),
            batch_body(flats.clone().map(|flat| &flat.json[..])),
            Expect::Batch {
                event_ids: flats.map(|flat| flat.event_id.clone()).collect(),
            },
        )
    }

    /// How many bytes of events' JSON (commas included) a batch may hold:
    /// `max_batch_bytes` (default the body limit, and never over it), less
    /// the body's framing.
    pub(crate) fn batch_room(&self, max_batch_bytes: Option<usize>) -> usize {
        let limit = self.inner.max_body_bytes;
        (max_batch_bytes.unwrap_or(limit).min(limit)).saturating_sub(FRAMING)
    }
}

/// `value` as a UUID (hyphenated, as `format: uuid` is held to), or
/// [`Error::InvalidInput`] naming `field`, with `why` it must be one.
fn check_uuid(field: &str, value: &str, why: &str) -> Result<uuid::Uuid, Error> {
    match uuid::Uuid::try_parse(value) {
        Ok(uuid) if is_uuid(value) => Ok(uuid),
        _ => Err(Error::invalid(
            field,
            format!(
                "is {value:?}, not a UUID (such as 7f22137a-6911-4ed3-bc36-110f1dde6b66); {why}"
            ),
        )),
    }
}
