//! Sending one prepared event: serializing, the retry loop, one attempt
//! and reading its answer.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header;
use secrecy::ExposeSecret;
use tokio::time::Instant;

use super::answer::decode_answer;
use super::{Client, Logged, MAX_ANSWER_BYTES, MAX_ERROR_BODY_CHARS, MIN_ATTEMPT};
use crate::retry::parse_retry_after;
use crate::{Error, Event, SessionId, api};

impl Client {
    /// Checks and serializes an event once; every attempt sends these bytes.
    pub(crate) fn prepare(&self, session_id: SessionId, event: Event) -> Result<Prepared, Error> {
        let prepared = self.serialize(session_id, event)?;
        self.check_size(&prepared)?;
        Ok(prepared)
    }

    /// Fills defaults and serializes; refuses invalid input.
    pub(crate) fn serialize(&self, session_id: SessionId, event: Event) -> Result<Prepared, Error> {
        if session_id.as_str().is_empty() {
            return Err(Error::invalid(
                "session_id",
                "is empty; pass the id of an existing session, or SessionId::new() to start one",
            ));
        }
        let mut wire = event.into_api()?;
        fill_event_ids(&mut wire);
        if wire.project.is_none() {
            wire.project.clone_from(&self.inner.project);
        }
        if wire.source.is_none() {
            wire.source.clone_from(&self.inner.source);
        }
        let body = serde_json::to_vec(&wire)
            .map_err(|e| Error::invalid("event", format!("could not be serialized: {e}")))?;
        let url = format!(
            "{}/session/{}/event",
            self.inner.base_url,
            progenitor_client::encode_path(session_id.as_str())
        );
        Ok(Prepared {
            url,
            body: Bytes::from(body),
            event_id: wire.event_id.unwrap_or_default(),
        })
    }

    /// Refuses a body over the configured limit.
    pub(crate) fn check_size(&self, prepared: &Prepared) -> Result<(), Error> {
        if prepared.body.len() > self.inner.max_body_bytes {
            return Err(Error::invalid(
                "event",
                format!(
                    "is {} bytes as JSON, over the {}-byte limit; trim large inputs or outputs, \
                     or raise ClientBuilder::max_body_bytes",
                    prepared.body.len(),
                    self.inner.max_body_bytes
                ),
            ));
        }
        Ok(())
    }

    /// Sends a prepared event under the retry policy.
    pub(crate) async fn send(&self, prepared: &Prepared) -> Result<Logged, Error> {
        self.send_counted(prepared).await.0
    }

    /// Sends under the retry policy; also says how many attempts it made,
    /// failed or not.
    pub(crate) async fn send_counted(&self, prepared: &Prepared) -> (Result<Logged, Error>, u32) {
        let policy = &self.inner.retry;
        let deadline = Instant::now() + policy.get_deadline();
        let mut attempt: u32 = 0;
        let mut last_error = None;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            // A wait can overrun its timer; a retry with almost no time left
            // would only turn the real failure into a timeout.
            if let Some(error) = last_error.take_if(|_| remaining < MIN_ATTEMPT) {
                return (Err(error), attempt);
            }
            attempt += 1;
            let timeout = self.inner.timeout.min(remaining);
            let failure = match self.attempt(prepared, timeout).await {
                Ok(event_id) => {
                    let logged = Logged {
                        event_id,
                        attempts: attempt,
                    };
                    return (Ok(logged), attempt);
                }
                Err(failure) => failure,
            };
            if !failure.error.is_retryable() || attempt >= policy.get_max_attempts() {
                return (Err(failure.error), attempt);
            }
            let wait = policy.wait_before(attempt - 1, failure.retry_after);
            if Instant::now() + wait + MIN_ATTEMPT > deadline {
                return (Err(failure.error), attempt);
            }
            tracing::debug!(
                event_id = %prepared.event_id,
                attempt,
                wait_ms = wait.as_millis() as u64,
                error = %failure.error,
                "retrying a failed event write"
            );
            tokio::time::sleep(wait).await;
            last_error = Some(failure.error);
        }
    }

    /// One request and its answer.
    async fn attempt(&self, prepared: &Prepared, timeout: Duration) -> Result<String, Failure> {
        let response = self
            .inner
            .http
            .post(&prepared.url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .timeout(timeout)
            .body(prepared.body.clone())
            .send()
            .await
            .map_err(|e| Failure::from(self.transport_error(e, timeout)))?;
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let status = response.status().as_u16();
        let (body, cut) = self.read_bounded(response, timeout).await?;
        decode_answer(
            status,
            content_type.as_deref(),
            &body,
            cut,
            &prepared.event_id,
            |b| self.scrub(b),
        )
        .map_err(|error| Failure { error, retry_after })
    }

    async fn read_bounded(
        &self,
        mut response: reqwest::Response,
        timeout: Duration,
    ) -> Result<(Vec<u8>, bool), Failure> {
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Failure::from(self.transport_error(e, timeout)))?
        {
            let room = MAX_ANSWER_BYTES - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                return Ok((body, true));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, false))
    }

    /// The start of an answer's body as text, with the API key removed in
    /// case the server echoed it.
    fn scrub(&self, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        let mut text: String = text.chars().take(MAX_ERROR_BODY_CHARS).collect();
        let key = self.inner.api_key.expose_secret();
        if !key.is_empty() && text.contains(key) {
            text = text.replace(key, "[redacted]");
        }
        text
    }

    fn transport_error(&self, error: reqwest::Error, timeout: Duration) -> Error {
        if error.is_timeout() {
            return Error::Timeout { after: timeout };
        }
        // reqwest's errors carry the URL, never headers; the key is only in a
        // header, but scrub the message anyway so no future change can leak it.
        let error = error.without_url();
        let mut message = error.to_string();
        let mut cause = std::error::Error::source(&error);
        while let Some(inner) = cause {
            message.push_str(": ");
            message.push_str(&inner.to_string());
            cause = inner.source();
        }
        let key = self.inner.api_key.expose_secret();
        if !key.is_empty() {
            message = message.replace(key, "[redacted]");
        }
        Error::Transport {
            message,
            source: Some(Box::new(error)),
        }
    }
}

/// An event checked, serialized and addressed, ready to send (again).
#[derive(Clone, Debug)]
pub(crate) struct Prepared {
    pub(crate) url: String,
    pub(crate) body: Bytes,
    pub(crate) event_id: String,
}

/// A failed attempt, with the wait the server asked for.
struct Failure {
    error: Error,
    retry_after: Option<Duration>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            error,
            retry_after: None,
        }
    }
}

/// Gives every event in the tree that has no id a new UUIDv4, so that the
/// same body, sent again, names the same events.
fn fill_event_ids(event: &mut api::types::Event) {
    if event.event_id.is_none() {
        event.event_id = Some(uuid::Uuid::new_v4().to_string());
    }
    for child in &mut event.children {
        fill_event_ids(child);
    }
}

#[cfg(test)]
mod tests {
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
}
