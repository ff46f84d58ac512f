//! The generated client's requests on the same retry loop as
//! [`Client::log_event`](super::Client::log_event): installed through
//! [`api::Hooks`](crate::api::Hooks), so an operation added to the spec
//! gets the deadline and key scrubbing without code here, and retries where
//! `repeat.rs`'s table says a repeat is safe (a POST it does not name is
//! sent again only when it never left).

use std::time::Duration;

use reqwest::{ResponseBuilderExt, header};

use super::body::Outgoing;
use super::repeat::{Repeat, repeat};
use super::scrub::Scrubber;
use super::send::read_bounded;
use crate::RetryPolicy;
use crate::retry::{Attempt, Next, Verdict};
use crate::status::{MAX_ANSWER_BYTES, retry_after, retryable};
use honeyhive_gen::{Exec, ExecFuture};

/// Sends each generated request under the client's [`RetryPolicy`].
pub(super) struct Retrying {
    pub(super) retry: RetryPolicy,
    pub(super) timeout: Duration,
    pub(super) scrubber: Scrubber,
}

impl Exec for Retrying {
    fn exec<'a>(
        &'a self,
        http: &'a reqwest::Client,
        request: reqwest::Request,
        operation_id: &'static str,
    ) -> ExecFuture<'a> {
        Box::pin(async move {
            // A streamed body cannot be sent twice: send it once.
            if request.try_clone().is_none() {
                return http.execute(request).await;
            }
            let repeat = repeat(
                request.method(),
                operation_id,
                request.body().and_then(reqwest::Body::as_bytes),
            );
            let (outcome, tally) = self
                .retry
                .run(self.timeout, |attempt| {
                    // Every attempt sends a copy of the same bytes.
                    let copy = request.try_clone();
                    async move {
                        // The body is not a stream (checked above), and only
                        // a stream refuses to be cloned.
                        let Some(mut copy) = copy else {
                            unreachable!("a request that cloned once clones again")
                        };
                        *copy.timeout_mut() = Some(attempt.timeout);
                        self.attempt(http, copy, attempt, repeat).await
                    }
                })
                .await;
            tracing::debug!(
                operation_id,
                attempts = tally.attempts,
                ok = outcome.as_ref().is_ok_and(|r| r.status().is_success()),
                "generated call finished"
            );
            outcome
        })
    }
}

impl Retrying {
    async fn attempt(
        &self,
        http: &reqwest::Client,
        mut request: reqwest::Request,
        attempt: Attempt,
        repeat: Repeat,
    ) -> Verdict<reqwest::Result<reqwest::Response>> {
        // A body in memory goes out as `log_event`'s does: tracked when
        // large, held back after a connection closed while writing it.
        let bytes = request
            .body()
            .and_then(reqwest::Body::as_bytes)
            .map(bytes::Bytes::copy_from_slice);
        let progress = bytes.map(|bytes| {
            let outgoing = Outgoing::new(bytes, attempt.ask_first);
            if outgoing.ask_first {
                request.headers_mut().insert(
                    header::EXPECT,
                    header::HeaderValue::from_static("100-continue"),
                );
            }
            let progress = outgoing.progress();
            *request.body_mut() = Some(outgoing.body);
            progress
        });
        let response = match http.execute(request).await {
            Ok(response) => response,
            // A handshake the server failed for its certificate: the same
            // again on every attempt. (Checked first: such a failure also
            // reads as a connection never made.)
            Err(error) if super::send::tls_refusal(&error).is_some() => {
                return Verdict::Final(Err(error));
            }
            // A call a repeat could harm ends here, unless the connection
            // was never made (then the request never left).
            Err(error) if repeat == Repeat::OnlyUnsent && !error.is_connect() => {
                return Verdict::Final(Err(error));
            }
            // No answer: refused, reset, timed out. Worth another attempt.
            Err(error) => {
                let next = Next {
                    ask_first: progress.is_some_and(|p| p.body_started()) && !error.is_timeout(),
                    ..Next::default()
                };
                return Verdict::Retryable {
                    outcome: Err(error),
                    next,
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Verdict::Final(Ok(response));
        }
        let next = Next {
            retry_after: retry_after(response.headers()),
            throttled: status.as_u16() == 429,
            ask_first: false,
        };
        let outcome = Ok(self.scrubbed(response).await);
        if retryable(status.as_u16()) && repeat == Repeat::Safe {
            Verdict::Retryable { outcome, next }
        } else {
            Verdict::Final(outcome)
        }
    }

    /// The same answer, from the same URL, with the key removed from its
    /// body (read up to [`MAX_ANSWER_BYTES`]).
    async fn scrubbed(&self, response: reqwest::Response) -> reqwest::Response {
        let status = response.status();
        let version = response.version();
        let url = response.url().clone();
        let mut headers = response.headers().clone();
        // The status is the answer: a body cut off by a closed connection
        // (a server refusing early) is kept as far as it came.
        let (body, _ending) = read_bounded(response, MAX_ANSWER_BYTES).await;
        let body = self.scrubber.redact(&body).into_owned();
        headers.remove(header::CONTENT_LENGTH);
        let mut rebuilt = http::Response::builder()
            .url(url)
            .body(body)
            .unwrap_or_else(|_| {
                unreachable!("a builder given only a URL extension and a body cannot fail")
            });
        *rebuilt.status_mut() = status;
        *rebuilt.version_mut() = version;
        *rebuilt.headers_mut() = headers;
        reqwest::Response::from(rebuilt)
    }
}
