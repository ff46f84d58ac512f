//! The generated client's requests on the same retry loop as
//! [`Client::log_event`](super::Client::log_event): installed through
//! [`api::Hooks`], so an operation added to the spec
//! gets the deadline and key scrubbing without code here, and retries where
//! `repeat.rs`'s table says a repeat is safe (a POST it does not name is
//! sent again only when it never left).
//!
//! A failed call becomes an [`Error`] here too. progenitor keeps only the
//! status and headers of an answer the spec documents as an error
//! (`ResponseValue<()>`), so the answer that leaves [`Retrying`] carries
//! what the error needs in headers of its own ([`URL_HEADER`],
//! [`BODY_HEADER`], [`ATTEMPTS_HEADER`]): the URL it came from, the start
//! of its body with the key removed, and the requests made.
//!
//! Hosts: the generated client is built on the data plane's base URL;
//! an operation documented on another host ([`CLASSIC_OPERATIONS`]) is
//! sent there, unless one base URL was set for all
//! ([`ClientBuilder::base_url`](crate::ClientBuilder::base_url)).

use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{ResponseBuilderExt, header};

use super::attempt::{Failure, Read, Reply, Rules, exchange, host_of, transport_error};
use super::repeat::{is, repeat};
use super::scrub::Scrubber;
use crate::retry::Tally;
use crate::status::retry_after;
use crate::{api, error::Error, retry::RetryPolicy};
use honeyhive_gen::{Exec, ExecFuture};

/// The URL a failed call's answer came from (a header [`Retrying`] adds).
pub(crate) const URL_HEADER: &str = "x-honeyhive-rs-url";
/// The start of a failed call's answer, the key removed, percent-encoded
/// where a header cannot hold it (a header [`Retrying`] adds).
pub(crate) const BODY_HEADER: &str = "x-honeyhive-rs-body";
/// The requests a failed call made (a header [`Retrying`] adds).
pub(crate) const ATTEMPTS_HEADER: &str = "x-honeyhive-rs-attempts";

/// What is percent-encoded in [`BODY_HEADER`]: what a header value
/// cannot hold, and `%` itself (non-ASCII is always encoded).
const NOT_IN_HEADERS: &AsciiSet = &CONTROLS.add(b'%');

/// The operations documented on [`ClientBuilder::DEFAULT_BASE_URL`]
/// (the seed page's), by the spec's operationId; every other
/// operation is the published data-plane spec's, served from
/// [`ClientBuilder::DEFAULT_DATA_PLANE_URL`].
///
/// [`ClientBuilder::DEFAULT_BASE_URL`]: crate::ClientBuilder::DEFAULT_BASE_URL
/// [`ClientBuilder::DEFAULT_DATA_PLANE_URL`]: crate::ClientBuilder::DEFAULT_DATA_PLANE_URL
pub(crate) const CLASSIC_OPERATIONS: &[&str] = &["logEvent"];

/// Sends each generated request under the client's [`RetryPolicy`].
pub(super) struct Retrying {
    pub(super) retry: RetryPolicy,
    pub(super) timeout: Duration,
    pub(super) scrubber: Scrubber,
    /// `(data plane, classic)` base URLs when they differ: a request of a
    /// [`CLASSIC_OPERATIONS`] operation built on the first goes to the
    /// second.
    pub(super) hosts: Option<(String, String)>,
}

tokio::task_local! {
    /// Where [`Retrying`] leaves how a call went, for [`tallied`].
    static TALLY: Cell<Option<Tally>>;
}

/// Runs `call` (a generated call) and says how it went: requests made and
/// time taken, when it went through [`Retrying`].
pub(super) async fn tallied<F: Future>(call: F) -> (F::Output, Option<Tally>) {
    TALLY
        .scope(Cell::new(None), async move {
            let output = call.await;
            (output, TALLY.with(Cell::get))
        })
        .await
}

impl Exec for Retrying {
    fn exec<'a>(
        &'a self,
        http: &'a reqwest::Client,
        request: reqwest::Request,
        operation_id: &'static str,
    ) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut request = request;
            if let Some((data_plane, classic)) = &self.hosts
                && CLASSIC_OPERATIONS.iter().any(|name| is(name, operation_id))
            {
                moved(&mut request, data_plane, classic);
            }
            // A streamed body cannot be sent twice: send it once.
            if request.try_clone().is_none() {
                return http.execute(request).await;
            }
            let repeat = repeat(
                request.method(),
                operation_id,
                request.body().and_then(reqwest::Body::as_bytes),
            );
            // Every attempt sends the same bytes, copied out once.
            let body = request
                .body_mut()
                .take()
                .and_then(|body| body.as_bytes().map(bytes::Bytes::copy_from_slice));
            let rules = Rules {
                repeat,
                read_success: false,
                scrubber: &self.scrubber,
                // A failure goes back to the generated code as reqwest's.
                direct: None,
                about: &operation_id,
            };
            let (outcome, tally) = self
                .retry
                .run(self.timeout, |attempt| {
                    // Without its body (taken above), the request clones.
                    let copy = request.try_clone();
                    let body = body.clone();
                    async move {
                        let Some(copy) = copy else {
                            unreachable!("a request without a body clones")
                        };
                        exchange(http, copy, body, attempt, rules).await
                    }
                })
                .await;
            tracing::debug!(
                operation_id,
                attempts = tally.attempts,
                ok = matches!(outcome, Ok(Reply::Unread(_))),
                "generated call finished"
            );
            let _ = TALLY.try_with(|slot| slot.set(Some(tally)));
            match outcome {
                Ok(Reply::Unread(response)) => Ok(response),
                Ok(Reply::Read(read)) => Ok(rebuilt(read, tally.attempts, &self.scrubber)),
                Err(Failure::Http(error)) => Err(error),
                Err(other) => unreachable!("only the client for large bodies fails so: {other:?}"),
            }
        })
    }
}

/// An answer read by [`exchange`] as the response the generated code
/// reads: the same status, version and headers, its body (without the
/// key), and on an error answer what [`answered`] needs to make it an
/// [`Error`]: the URL, the start of the body, the requests made.
fn rebuilt(read: Read, attempts: u32, scrubber: &Scrubber) -> reqwest::Response {
    let Read {
        status,
        version,
        url,
        mut headers,
        body,
        cut: _,
    } = read;
    headers.remove(header::CONTENT_LENGTH);
    if !status.is_success() {
        let text = scrubber.text(&body);
        let encoded = utf8_percent_encode(&text, NOT_IN_HEADERS).to_string();
        // Percent-encoded text is visible ASCII: always a header value.
        if let Ok(value) = HeaderValue::from_str(&encoded) {
            headers.insert(BODY_HEADER, value);
        }
        if let Ok(value) = HeaderValue::from_str(url.as_str()) {
            headers.insert(URL_HEADER, value);
        }
        headers.insert(ATTEMPTS_HEADER, HeaderValue::from(attempts));
    }
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

/// Sends `request`, built on `from`, to the same path under `to`.
fn moved(request: &mut reqwest::Request, from: &str, to: &str) {
    let Some(rest) = request.url().as_str().strip_prefix(from) else {
        return;
    };
    if let Ok(url) = reqwest::Url::parse(&format!("{to}{rest}")) {
        *request.url_mut() = url;
    }
}

/// A failed call of [`Client::raw`](super::Client::raw) as an [`Error`]:
/// the status, the URL the answer came from and the start of its body
/// with the API key removed (the client's retry loop puts them on every
/// error answer, in the headers `x-honeyhive-rs-url`,
/// `x-honeyhive-rs-body` and `x-honeyhive-rs-attempts`, since progenitor
/// keeps no body of an error the spec documents). A transport failure names
/// the host; how many requests it took, and a timeout as
/// [`Error::Timeout`], are known only through
/// [`Client::call`](super::Client::call) (here such a failure is a
/// [`Error::Transport`] of one attempt).
///
/// ```no_run
/// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
/// let runs = client.raw().get_runs().send().await?; // api::Error into Error
/// # Ok(()) }
/// ```
impl<E> From<api::Error<E>> for Error {
    fn from(error: api::Error<E>) -> Self {
        from_raw(error, None, None)
    }
}

/// The error of a failed generated call; `tally` (from [`tallied`]) gives
/// the requests made and the time taken, `scrubber` lets the body of an
/// undecodable success answer be kept.
pub(super) fn from_raw<E>(
    error: api::Error<E>,
    tally: Option<(Tally, Duration)>,
    scrubber: Option<&Scrubber>,
) -> Error {
    let attempts = tally.map_or(1, |(tally, _)| tally.attempts);
    let mut error = match error {
        api::Error::InvalidRequest(problem) => {
            return Error::invalid(
                "request",
                format!(
                    "{problem}; nothing was sent. Check the value given to the generated builder"
                ),
            );
        }
        api::Error::CommunicationError(error)
        | api::Error::InvalidUpgrade(error)
        | api::Error::ResponseBodyError(error) => {
            let host = error.url().map(host_of).unwrap_or_default();
            match tally {
                Some((tally, timeout)) if error.is_timeout() => {
                    return Error::Timeout {
                        elapsed: tally.elapsed,
                        attempts: tally.attempts,
                        attempt_timeout: timeout,
                    };
                }
                _ => transport_error(&host, Failure::Http(error)),
            }
        }
        api::Error::ErrorResponse(answer) => answered(answer.status(), answer.headers()),
        api::Error::UnexpectedResponse(answer) if answer.status().is_success() => Error::Decode {
            status: answer.status(),
            problem: format!(
                "the spec documents no HTTP {} answer for this call",
                answer.status().as_u16()
            ),
            body: String::new(),
            attempts,
            url: Some(answer.url().to_string()),
            source: None,
        },
        api::Error::UnexpectedResponse(answer) => answered(answer.status(), answer.headers()),
        api::Error::InvalidResponsePayload(body, source) => Error::Decode {
            status: reqwest::StatusCode::OK,
            problem: "the answer is not the JSON the spec documents".to_owned(),
            body: scrubber.map(|s| s.text(&body)).unwrap_or_default(),
            attempts,
            url: None,
            source: Some(source),
        },
        api::Error::Custom(problem) => Error::Transport {
            host: String::new(),
            problem,
            attempts,
            source: None,
        },
    };
    if let Some((tally, _)) = tally {
        error.set_attempts(tally.attempts);
    }
    error
}

/// The error of a failed answer, from its status and the headers
/// [`Retrying`] put on it.
fn answered(status: reqwest::StatusCode, headers: &HeaderMap) -> Error {
    let text = |name: &str| {
        headers
            .get(HeaderName::from_bytes(name.as_bytes()).ok()?)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let url = text(URL_HEADER);
    let body = text(BODY_HEADER)
        .map(|b| percent_decode_str(&b).decode_utf8_lossy().into_owned())
        .unwrap_or_default();
    let attempts = text(ATTEMPTS_HEADER)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    match status.as_u16() {
        401 | 403 => Error::Unauthorized {
            status,
            body,
            attempts,
            url,
        },
        429 => Error::RateLimited {
            body,
            retry_after: retry_after(headers),
            attempts,
            url,
        },
        _ => Error::Api {
            status,
            body,
            attempts,
            url,
        },
    }
}

#[cfg(test)]
mod tests {
    use httpmock::MockServer;
    use serde_json::json;

    use crate::{
        client::Client, client::ClientBuilder, event::Event, retry::RetryPolicy, session::SessionId,
    };

    /// Answers every request with what log_event, log_batch and getDatasets
    /// accept, and counts them.
    async fn sink(server: &MockServer) -> httpmock::Mock<'_> {
        server
            .mock_async(|when, then| {
                when.any_request();
                then.status(200)
                    .header("content-type", "application/json")
                    .json_body(json!({
                        "event_id": "e", "event_ids": ["e"], "success": true, "datasets": []
                    }));
            })
            .await
    }

    fn builder() -> ClientBuilder {
        Client::builder()
            .api_key("hh-hosts-key")
            .retry_policy(RetryPolicy::none())
    }

    /// Sends log_event (the seed page's), log_batch (a /v1 route), a raw
    /// getDatasets, a raw logEvent and a handle's call.
    async fn every_kind(client: &Client) {
        client
            .log_event(SessionId::new(), Event::tool("t"))
            .await
            .expect("log_event");
        client
            .raw()
            .log_event()
            .session_id("s-1")
            .body(crate::api::types::Event::builder().event_id("e-1".to_owned()))
            .send()
            .await
            .expect("raw log_event");
        client
            .log_batch([(SessionId::new(), Event::tool("t").inputs(json!({})))])
            .await
            .expect("log_batch");
        client.raw().get_datasets().send().await.expect("raw");
        client.datasets().list().await.expect("handle");
    }

    #[tokio::test]
    async fn each_operation_goes_to_its_documented_host_unless_one_url_is_set() {
        let classic = MockServer::start_async().await;
        let data_plane = MockServer::start_async().await;
        let to_classic = sink(&classic).await;
        let to_data_plane = sink(&data_plane).await;
        let mut defaults = builder();
        defaults.default_hosts = Some((classic.base_url(), data_plane.base_url()));
        let client = defaults.build().expect("loopback hosts");
        assert_eq!(client.base_url(), classic.base_url());
        assert_eq!(client.data_plane_url(), data_plane.base_url());
        every_kind(&client).await;
        assert_eq!(
            to_classic.calls_async().await,
            2,
            "log_event, raw log_event"
        );
        assert_eq!(
            to_data_plane.calls_async().await,
            3,
            "log_batch, raw getDatasets, datasets().list()"
        );

        // One base URL (HH_API_URL, a self-hosted deployment) takes all.
        let one = MockServer::start_async().await;
        let to_one = sink(&one).await;
        let mut overridden = builder().base_url(one.base_url());
        overridden.default_hosts = Some((classic.base_url(), data_plane.base_url()));
        let client = overridden.build().expect("loopback host");
        assert_eq!(client.data_plane_url(), one.base_url());
        every_kind(&client).await;
        assert_eq!(to_one.calls_async().await, 5);
        assert_eq!(to_classic.calls_async().await, 2, "no more");
        assert_eq!(to_data_plane.calls_async().await, 3, "no more");
    }

    #[test]
    fn the_published_hosts_are_the_defaults() {
        let client = builder().build().expect("a key is enough");
        assert_eq!(client.base_url(), "https://api.honeyhive.ai");
        assert_eq!(client.data_plane_url(), "https://api.dp1.us.honeyhive.ai");
        let spec: serde_json::Value =
            serde_json::from_str(honeyhive_gen::OPENAPI_JSON).expect("the spec is JSON");
        // Every operation named as the seed page's is one of the spec.
        for name in super::CLASSIC_OPERATIONS {
            let found = spec["paths"]
                .as_object()
                .expect("paths")
                .values()
                .filter_map(|item| item.as_object())
                .flat_map(|item| item.values())
                .any(|op| op["operationId"].as_str() == Some(*name));
            assert!(found, "{name} is not an operation of openapi.yaml");
        }
    }
}
