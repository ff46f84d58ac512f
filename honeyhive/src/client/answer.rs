//! Turning the API's answer into the logged id or a typed error.

use std::time::Duration;

use super::MAX_ANSWER_BYTES;
use crate::{Error, api};

/// Turns an answer into the logged id or a typed error. Pure, so that any
/// status and any bytes can be thrown at it in tests.
pub(super) fn decode_answer(
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
    cut: bool,
    event_id: &str,
    retry_after: Option<Duration>,
    scrub: impl Fn(&[u8]) -> String,
) -> Result<String, Error> {
    // Each error is made for one attempt; the retry loop's caller puts in
    // the call's totals.
    let attempts = 1;
    match status {
        200 => {
            let decode_error = |problem: String, source| Error::Decode {
                status,
                problem,
                body: scrub(body),
                attempts,
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
            let answer: api::types::LogEventResponse =
                serde_json::from_slice(body).map_err(|e| {
                    decode_error(
                        "expected {\"event_id\": string, \"success\": bool}".to_owned(),
                        Some(e),
                    )
                })?;
            if answer.success {
                Ok(answer.event_id)
            } else {
                Err(Error::NotRecorded {
                    event_id: event_id.to_owned(),
                    attempts,
                })
            }
        }
        401 | 403 => Err(Error::Unauthorized {
            status,
            body: scrub(body),
            attempts,
        }),
        429 => Err(Error::RateLimited {
            body: scrub(body),
            retry_after,
            attempts,
        }),
        _ => Err(Error::Api {
            status,
            body: scrub(body),
            attempts,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
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
            let result = decode_answer(status, content_type.as_deref(), &body, cut, "sent-id", None, lossy);
            match result {
                Ok(id) => {
                    prop_assert_eq!(status, 200);
                    prop_assert!(!cut);
                    prop_assert_eq!(id, "e");
                }
                Err(Error::NotRecorded { event_id, .. }) => prop_assert_eq!(event_id, "sent-id"),
                Err(e) => {
                    prop_assert_eq!(e.status(), Some(status));
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }
    }
}
