//! Sending a request: an event's body serialized once, then attempts on
//! the retry loop ([`RetryPolicy::run`](crate::RetryPolicy)), each made by
//! the one attempt function (`attempt.rs`) and its answer decoded.

use bytes::Bytes;
use reqwest::header;

use super::address::{check_session_id, session_segment};
use super::answer::{Answer, Expect, decode_answer};
use super::attempt::{Reply, Rules, exchange, transport_or_timeout};
use super::repeat::Repeat;
use super::{Client, Logged};
use crate::footprint::Footprint;
use crate::retry::{Attempt, Tally, Verdict};
use crate::status::retry_after;
use crate::{api, error::Error, event::Event, session::SessionId};

/// A request checked, serialized and addressed, ready to send (again).
#[derive(Clone, Debug)]
pub(crate) struct Prepared {
    pub(crate) method: reqwest::Method,
    pub(crate) url: reqwest::Url,
    pub(crate) body: Bytes,
    /// What its answer must be.
    pub(crate) expect: Expect,
}

impl Prepared {
    /// A `POST` of `body` to `url`.
    pub(crate) fn post(url: reqwest::Url, body: Bytes, expect: Expect) -> Self {
        Prepared {
            method: reqwest::Method::POST,
            url,
            body,
            expect,
        }
    }
}

impl Client {
    /// Checks and serializes an event once; every attempt sends these bytes.
    pub(crate) fn prepare(&self, session_id: &SessionId, event: Event) -> Result<Prepared, Error> {
        let prepared = self.serialize(session_id, event, 0)?;
        self.check_size(&prepared)?;
        Ok(prepared)
    }

    /// Fills ids and defaults and serializes; refuses invalid input. The
    /// size limit is checked apart ([`check_size`](Self::check_size)), so that
    /// an oversized event can still be handed back with its body.
    /// `size_hint`, when known, is the least the JSON takes (so that the
    /// buffer does not grow by copies, and an event sure to be over the
    /// limit is cut before it is serialized whole). What leaves is masked,
    /// without the API key, and cut to fit (see
    /// [`outgoing`](Self::outgoing)).
    pub(crate) fn serialize(
        &self,
        session_id: &SessionId,
        event: Event,
        size_hint: usize,
    ) -> Result<Prepared, Error> {
        let segment = session_segment(session_id)?;
        let (mut wire, size_hint) = self.outgoing(event, size_hint)?;
        if wire.project.is_none() {
            wire.project.clone_from(&self.inner.project);
        }
        if wire.source.is_none() {
            wire.source.clone_from(&self.inner.source);
        }
        let limit = self.inner.max_body_bytes;
        // Ids (36 bytes each) and defaults come on top of the hint.
        let capacity = size_hint.min(limit).saturating_add(256);
        let mut may_cut = true;
        let body = loop {
            let mut body = Vec::with_capacity(capacity);
            // The generated types hold only strings, maps of JSON values
            // and `serde_json::Number`s, none of which serde_json refuses.
            serde_json::to_writer(&mut body, &wire)
                .map_err(|e| Error::invalid("event", format!("could not be serialized: {e}")))?;
            self.redact_written(&mut body, 0);
            let len = body.len();
            // Escapes the estimate did not see: cut by what is over, once
            // more at most (the plan overshoots by its markers' room).
            if len <= limit || !may_cut || !self.cut_to(&mut wire, len, limit) {
                break body;
            }
            may_cut = false;
            drop(body);
        };
        Ok(Prepared::post(
            self.classic_url(&format!("/session/{segment}/event")),
            Bytes::from(body),
            Expect::Event {
                event_id: wire.event_id.unwrap_or_default(),
            },
        ))
    }

    /// The URL of `path` (which starts with `/`) under the data plane's
    /// base URL: every operation but `logEvent`. The base URL was parsed
    /// once; only the path is set per request, so the host is not parsed
    /// (and IDNA-checked) again.
    pub(crate) fn url(&self, path: &str) -> reqwest::Url {
        under(&self.inner.data_plane, path)
    }

    /// The URL of `logEvent`'s `path` under its own base URL.
    fn classic_url(&self, path: &str) -> reqwest::Url {
        under(&self.inner.base, path)
    }

    /// Refuses a body over the configured limit.
    pub(crate) fn check_size(&self, prepared: &Prepared) -> Result<(), Error> {
        self.check_len("event", prepared.body.len())
    }

    /// Refuses `len` bytes of `field` as JSON when over the body limit.
    pub(crate) fn check_len(&self, field: &str, len: usize) -> Result<(), Error> {
        self.over_limit(field, len, "")
    }

    /// What a queue needs to know before it takes `event` (`None`: one
    /// built later, unchecked until then) of `session_id` for a route
    /// (`flat`: the v1 routes): `Ok(None)` when the client samples the
    /// session out, else the event's footprint once it is checked as it
    /// will be sent. An event whose JSON is sure to be over the body limit
    /// is refused when cutting is off (with cutting on, it is cut to fit
    /// when it is serialized). The Logger's door in, as
    /// [`outgoing_for`](Self::outgoing_for) is its door out.
    pub(crate) fn admit(
        &self,
        flat: bool,
        session_id: &SessionId,
        event: Option<&Event>,
    ) -> Result<Option<Footprint>, Error> {
        check_session_id(session_id)?;
        if !self.samples_in(session_id.as_str()) {
            return Ok(None);
        }
        let Some(event) = event else {
            return Ok(Some(Footprint::default()));
        };
        check_event_for_route(flat, event)?;
        let footprint = crate::footprint::estimate_event(event.as_api());
        if !self.inner.cut_oversize {
            self.over_limit("event", footprint.json_at_least, "at least ")?;
        }
        Ok(Some(footprint))
    }

    /// Refuses `len` bytes (`qualifier` says how sure) of `field` as JSON
    /// when over the body limit, saying why it was not cut.
    fn over_limit(&self, field: &str, len: usize, qualifier: &str) -> Result<(), Error> {
        let limit = self.inner.max_body_bytes;
        if len > limit {
            let cut = if self.inner.cut_oversize {
                ", and cutting every string of its inputs, outputs, metadata and config to \
                 256 bytes (as JSON, escapes counted) cannot make it fit: the rest of it (other \
                 fields, keys, numbers) is over the limit"
            } else {
                " (cutting oversize events is off: ClientBuilder::cut_oversize)"
            };
            return Err(Error::invalid_fixed_by(
                field,
                format!("is {qualifier}{len} bytes as JSON, over the {limit}-byte limit{cut}"),
                crate::error::Fix::MaxBodyBytes,
            ));
        }
        Ok(())
    }

    /// Sends a prepared event under the retry policy.
    pub(crate) async fn send(&self, prepared: &Prepared) -> Result<Logged, Error> {
        let (answer, attempts) = self.send_prepared(prepared).await?;
        Ok(Logged {
            event_id: answer.into_event_id(),
            attempts,
            sampled_out: false,
        })
    }

    /// Sends any prepared request under the retry policy: its answer and
    /// how many requests it took.
    pub(crate) async fn send_prepared(&self, prepared: &Prepared) -> Result<(Answer, u32), Error> {
        let (result, attempts) = self.retrying(|at| self.attempt(prepared, at)).await;
        result.map(|answer| (answer, attempts))
    }

    /// Runs `attempt` under the client's retry policy and attempt timeout
    /// (the Logger's attempts wrap [`attempt`](Self::attempt) in its flow
    /// control): the last outcome, an error carrying the call's tally, and
    /// how many requests it took.
    pub(crate) async fn retrying<F, Fut>(&self, attempt: F) -> (Result<Answer, Error>, u32)
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Verdict<Result<Answer, Error>>>,
    {
        let (result, tally) = self.inner.retry.run(self.inner.timeout, attempt).await;
        (finish(result, tally), tally.attempts)
    }

    /// One request and its answer, judged for the retry loop: the one
    /// attempt function (`attempt.rs`) with the answer decoded as
    /// `prepared.expect` says. The Logger's door to the wire.
    pub(crate) async fn attempt(
        &self,
        prepared: &Prepared,
        attempt: Attempt,
    ) -> Verdict<Result<Answer, Error>> {
        /// `application/json`, for `Content-Type` and `Accept`.
        static JSON: header::HeaderValue = header::HeaderValue::from_static("application/json");
        // Held until the answer is read: the stream is busy until then.
        let lease = self.inner.http.lease();
        let mut request = reqwest::Request::new(prepared.method.clone(), prepared.url.clone());
        let headers = request.headers_mut();
        headers.insert(header::CONTENT_TYPE, JSON.clone());
        headers.insert(header::ACCEPT, JSON.clone());
        let rules = Rules {
            // Every route's body carries the ids the client chose.
            repeat: Repeat::Safe,
            read_success: true,
            scrubber: &self.inner.scrubber,
            direct: self.inner.direct.as_ref(),
            about: &prepared.expect,
        };
        let body = Some(prepared.body.clone());
        exchange(lease.http, request, body, attempt, rules)
            .await
            .map(|outcome| match outcome {
                Ok(Reply::Read(read)) => decode_answer(
                    read.status,
                    read.headers
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok()),
                    &read.body,
                    read.cut,
                    &prepared.expect,
                    retry_after(&read.headers),
                    |b| self.inner.scrubber.text(b),
                ),
                Ok(Reply::Unread(response)) => {
                    unreachable!("a success is read when asked to be ({})", response.status())
                }
                Err(e) => Err(transport_or_timeout(&prepared.url, e, attempt.timeout)),
            })
    }
}

/// `path` under `base`.
fn under(base: &reqwest::Url, path: &str) -> reqwest::Url {
    let mut url = base.clone();
    url.set_path(&format!("{}{path}", base.path().trim_end_matches('/')));
    url
}

/// Puts the call's totals into its error.
pub(crate) fn finish<T>(result: Result<T, Error>, tally: Tally) -> Result<T, Error> {
    match result {
        Ok(answer) => Ok(answer),
        Err(mut error) => {
            error.set_attempts(tally.attempts);
            if let Error::Timeout { elapsed, .. } = &mut error {
                *elapsed = tally.elapsed;
            }
            Err(error)
        }
    }
}

/// Whether `event` of `session_id` can go a route (`flat`: the v1 routes):
/// the session id, a setter's problem, an end before its start, and on the
/// v1 routes an `event_type` on every event of the tree (see
/// [`Route::check`](crate::Route::check)).
pub(crate) fn check_for_route(
    flat: bool,
    session_id: &SessionId,
    event: &Event,
) -> Result<(), Error> {
    check_session_id(session_id)?;
    check_event_for_route(flat, event)
}

/// [`check_for_route`] for the event alone, its session id checked.
fn check_event_for_route(flat: bool, event: &Event) -> Result<(), Error> {
    event.check()?;
    if flat {
        crate::flat::check(event.as_api())?;
    }
    Ok(())
}

/// Gives every event in the tree that has no id a new UUIDv4, so that the
/// same body, sent again, names the same events.
pub(crate) fn fill_event_ids(event: &mut api::types::Event) {
    crate::tree::each_mut(event, |event, _| {
        if event.event_id.is_none() {
            event.event_id = Some(uuid::Uuid::new_v4().to_string());
        }
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn fills_ids_through_the_whole_tree_and_keeps_given_ones() {
        let mut wire = Event::chain("c")
            .event_id("given")
            .child(Event::tool("t").child(Event::model("m")))
            .into_api()
            .unwrap();
        fill_event_ids(&mut wire);
        assert_eq!(wire.event_id.as_deref(), Some("given"));
        let child = &wire.children[0];
        let grandchild = &child.children[0];
        for id in [&child.event_id, &grandchild.event_id] {
            let id = id.as_deref().unwrap();
            assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
        }
        assert_ne!(child.event_id, grandchild.event_id);
    }

    #[test]
    fn totals_go_into_the_error_and_the_logged_answer() {
        let tally = Tally {
            attempts: 4,
            elapsed: Duration::from_millis(3100),
        };
        let timeout = Error::Timeout {
            elapsed: Duration::from_millis(500),
            attempts: 1,
            attempt_timeout: Duration::from_millis(500),
        };
        match finish::<()>(Err(timeout), tally) {
            Err(Error::Timeout {
                elapsed,
                attempts,
                attempt_timeout,
            }) => {
                assert_eq!(elapsed, Duration::from_millis(3100));
                assert_eq!(attempts, 4);
                assert_eq!(attempt_timeout, Duration::from_millis(500));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(finish(Ok("e"), tally).unwrap(), "e");
    }
}
