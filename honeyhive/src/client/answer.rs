//! Turning the API's answer into what the request asked for, or a typed
//! error.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use crate::status::MAX_ANSWER_BYTES;
use crate::{api, error::Error};

/// What a request's 200 answer must carry, and what the request was about
/// (for errors and logs).
#[derive(Clone, Debug)]
pub(crate) enum Expect {
    /// `{event_id, success}`: logEvent and createEvent.
    Event { event_id: String },
    /// `{event_ids, success}`: createEventBatch. The ids of the logged
    /// (root) events, for a `success: false`.
    Batch { event_ids: Arc<[String]> },
    /// The session event: createSession.
    Session { session_id: String },
    /// Nothing in particular: updateEvent answers 200 without a body.
    Nothing { event_id: String },
}

impl fmt::Display for Expect {
    /// What the request was about, for logs: `event e-1`, `batch of 3
    /// events`, `session s-1`, `update of event e-1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Event { event_id } => write!(f, "event {event_id}"),
            Expect::Batch { event_ids } => write!(f, "batch of {} events", event_ids.len()),
            Expect::Session { session_id } => write!(f, "session {session_id}"),
            Expect::Nothing { event_id } => write!(f, "update of event {event_id}"),
        }
    }
}

/// What a 200 answer carried.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Answer {
    /// The id the event was recorded under.
    Event(String),
    /// The ids the events were recorded under, in the order sent.
    Batch(Vec<String>),
    /// The session event the server holds.
    Session(Box<api::types::PostSessionStartResponse>),
    Nothing,
}

impl Answer {
    /// The (first) event id the answer names; empty when it names none.
    pub(crate) fn into_event_id(self) -> String {
        match self {
            Answer::Event(id) => id,
            Answer::Batch(ids) => ids.into_iter().next().unwrap_or_default(),
            Answer::Session(session) => session.event_id,
            Answer::Nothing => String::new(),
        }
    }
}

/// Turns an answer into what `expect` asks for, or a typed error. Pure, so
/// that any status and any bytes can be thrown at it in tests.
pub(super) fn decode_answer(
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
    cut: bool,
    expect: &Expect,
    retry_after: Option<Duration>,
    scrub: impl Fn(&[u8]) -> String,
) -> Result<Answer, Error> {
    // Each error is made for one attempt; the retry loop's caller puts in
    // the call's totals.
    let attempts = 1;
    match status.as_u16() {
        200 if matches!(expect, Expect::Nothing { .. }) => Ok(Answer::Nothing),
        200 => {
            let decode_error = |problem: String, source| Error::Decode {
                status,
                problem,
                body: scrub(body),
                attempts,
                url: None,
                source,
            };
            if cut {
                return Err(decode_error(
                    format!("the answer is longer than {MAX_ANSWER_BYTES} bytes"),
                    None,
                ));
            }
            if let Some(content_type) = content_type {
                let essence = content_type.split(';').next().unwrap_or("").trim();
                let json = essence.eq_ignore_ascii_case("application/json")
                    || essence
                        .get(essence.len().saturating_sub(5)..)
                        .is_some_and(|end| end.eq_ignore_ascii_case("+json"));
                if !json {
                    return Err(decode_error(
                        format!(
                            "the answer's Content-Type is {content_type:?}, not application/json"
                        ),
                        None,
                    ));
                }
            }
            fn parse<T: DeserializeOwned>(
                body: &[u8],
                shape: &str,
                decode_error: impl Fn(String, Option<serde_json::Error>) -> Error,
            ) -> Result<T, Error> {
                serde_json::from_slice(body)
                    .map_err(|e| decode_error(format!("expected {shape}"), Some(e)))
            }
            let not_recorded = |event_ids: &[String]| Error::NotRecorded {
                event_ids: event_ids.to_vec(),
                attempts,
            };
            match expect {
                Expect::Event { event_id } => {
                    let answer: api::types::LogEventResponse = parse(
                        body,
                        "{\"event_id\": string, \"success\": bool}",
                        decode_error,
                    )?;
                    if answer.success {
                        Ok(Answer::Event(answer.event_id))
                    } else {
                        Err(not_recorded(std::slice::from_ref(event_id)))
                    }
                }
                Expect::Batch { event_ids } => {
                    let answer: api::types::PostEventBatchResponse = parse(
                        body,
                        "{\"event_ids\": [string], \"success\": bool}",
                        decode_error,
                    )?;
                    if answer.success {
                        Ok(Answer::Batch(answer.event_ids))
                    } else {
                        Err(not_recorded(event_ids))
                    }
                }
                Expect::Session { .. } => {
                    let answer: api::types::PostSessionStartResponse = parse(
                        body,
                        "the session event, with event_id, session_id, org_id, workspace_id \
                         and project_id",
                        decode_error,
                    )?;
                    Ok(Answer::Session(Box::new(answer)))
                }
                Expect::Nothing { .. } => Ok(Answer::Nothing),
            }
        }
        401 | 403 => Err(Error::Unauthorized {
            status,
            body: scrub(body),
            attempts,
            url: None,
        }),
        429 => Err(Error::RateLimited {
            body: scrub(body),
            retry_after,
            attempts,
            url: None,
        }),
        _ => Err(Error::Api {
            status,
            body: scrub(body),
            attempts,
            url: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use proptest::prelude::*;

    fn lossy(body: &[u8]) -> String {
        String::from_utf8_lossy(body).into_owned()
    }

    proptest! {
        #[test]
        fn any_status_and_any_bytes_decode_without_panic(
            status in 100u16..1000,
            content_type in proptest::option::of(prop_oneof![
                Just("application/json".to_owned()),
                Just("application/problem+json; charset=utf-8".to_owned()),
                Just("text/html".to_owned()),
                ".{0,20}",
            ]),
            body in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..256),
                Just(br#"{"event_id":"e","success":true}"#.to_vec()),
                Just(br#"{"event_id":"e","success":false}"#.to_vec()),
            ],
            cut in any::<bool>(),
        ) {
            let expect = Expect::Event { event_id: "sent-id".into() };
            let status = StatusCode::from_u16(status).expect("100 to 999 is a status");
            let result = decode_answer(status, content_type.as_deref(), &body, cut, &expect, None, lossy);
            match result {
                Ok(answer) => {
                    prop_assert_eq!(status, StatusCode::OK);
                    prop_assert!(!cut);
                    prop_assert_eq!(answer, Answer::Event("e".into()));
                }
                Err(Error::NotRecorded { event_ids, .. }) => prop_assert_eq!(event_ids, ["sent-id"]),
                Err(e) => {
                    prop_assert_eq!(e.status(), Some(status));
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }
    }
}
