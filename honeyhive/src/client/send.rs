//! Sending a request: an event's body serialized once, then attempts on
//! the retry loop ([`RetryPolicy::run`](crate::RetryPolicy)), each made by
//! [`exchange`], the one attempt function every request goes through
//! (`log_event`, the `/v1` routes, the Logger and `client.raw()`).

use std::error::Error as _;
use std::fmt;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header;

use super::address::session_segment;
use super::answer::{Answer, Expect, decode_answer};
use super::body::Outgoing;
use super::repeat::Repeat;
use super::scrub::Scrubber;
use super::{Client, Logged};
use crate::retry::{Attempt, Next, Tally, Verdict};
use crate::status::{MAX_ANSWER_BYTES, retry_after, retryable};
use crate::{Error, Event, SessionId, api};

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
            let body = match self.without_key(&body) {
                std::borrow::Cow::Borrowed(_) => body,
                std::borrow::Cow::Owned(clean) => clean,
            };
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
        let limit = self.inner.max_body_bytes;
        if len > limit {
            let cut = if self.inner.cut_oversize {
                ", and cutting every string of its inputs, outputs, metadata and config to \
                 256 bytes (as JSON, escapes counted) cannot make it fit: the rest of it (other \
                 fields, keys, numbers) is over the limit"
            } else {
                " (cutting oversize events is off: ClientBuilder::cut_oversize)"
            };
            return Err(Error::invalid(
                field,
                format!(
                    "is {len} bytes as JSON, over the {limit}-byte limit{cut}; trim it, or raise \
                     ClientBuilder::max_body_bytes",
                ),
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
        let (result, tally) = self
            .inner
            .retry
            .run(self.inner.timeout, |attempt| {
                self.attempt(prepared, attempt)
            })
            .await;
        finish(result, tally).map(|answer| (answer, tally.attempts))
    }

    /// One request and its answer, judged for the retry loop: the one
    /// attempt function ([`exchange`]) with the answer decoded as
    /// `prepared.expect` says. The Logger's door to the wire.
    pub(crate) async fn attempt(
        &self,
        prepared: &Prepared,
        attempt: Attempt,
    ) -> Verdict<Result<Answer, Error>> {
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
            about: &prepared.expect,
        };
        let body = Some(prepared.body.clone());
        exchange(lease.http, request, body, attempt, rules)
            .await
            .map(|outcome| match outcome {
                Ok(Reply::Read(read)) => decode_answer(
                    read.status.as_u16(),
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

/// `application/json`, for `Content-Type` and `Accept`.
static JSON: header::HeaderValue = header::HeaderValue::from_static("application/json");

/// What one attempt came back with.
pub(super) enum Reply {
    /// A success answer with its body unread: the generated code reads it.
    Unread(reqwest::Response),
    /// An answer read, its body without the API key.
    Read(Read),
}

/// An answer read: its head, and its body up to [`MAX_ANSWER_BYTES`] with
/// the API key replaced.
pub(super) struct Read {
    pub(super) status: reqwest::StatusCode,
    pub(super) version: reqwest::Version,
    pub(super) url: reqwest::Url,
    pub(super) headers: header::HeaderMap,
    pub(super) body: Vec<u8>,
    /// The body stopped at [`MAX_ANSWER_BYTES`] with more to come.
    pub(super) cut: bool,
}

/// How [`exchange`] treats a request.
#[derive(Clone, Copy)]
pub(super) struct Rules<'a> {
    /// Whether a failed attempt may be sent again (`repeat.rs`).
    pub(super) repeat: Repeat,
    /// Read a success answer's body too; otherwise it is handed back unread.
    pub(super) read_success: bool,
    pub(super) scrubber: &'a Scrubber,
    /// What the request is about, for logs.
    pub(super) about: &'a (dyn fmt::Display + Sync),
}

/// The one attempt every request makes, whatever sent it (`log_event`,
/// the `/v1` routes, the Logger, `client.raw()`): `request` (its timeout
/// set to the attempt's) with `body`, tracked when large and held back
/// behind `Expect: 100-continue` after a connection closed while its body
/// was being written (`body.rs`); the answer read (up to
/// [`MAX_ANSWER_BYTES`], the key replaced) unless it is a success the
/// caller reads itself; and the verdict for the retry loop:
///
/// - a status line that came is the answer, whatever became of its body,
///   except a success cut short, which is not known to be one;
/// - an answer is retried when its status is worth it ([`retryable`]) and
///   `rules.repeat` allows;
/// - no answer (refused, reset, timed out) is retried when `rules.repeat`
///   allows it, or the connection was never made; a TLS handshake refused
///   for good ([`tls_refusal`]) is not.
pub(super) async fn exchange(
    http: &reqwest::Client,
    mut request: reqwest::Request,
    body: Option<Bytes>,
    attempt: Attempt,
    rules: Rules<'_>,
) -> Verdict<Result<Reply, reqwest::Error>> {
    *request.timeout_mut() = Some(attempt.timeout);
    let progress = body.map(|bytes| {
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
    let safe = rules.repeat == Repeat::Safe;
    let failed = |error: reqwest::Error, next: Next| {
        tracing::debug!(
            request = %rules.about,
            attempt = attempt.number,
            %error,
            "an attempt failed"
        );
        Verdict::Retryable {
            outcome: Err(error),
            next,
        }
    };
    let response = match http.execute(request).await {
        Ok(response) => response,
        // A handshake refused for the server's certificate or settings:
        // the same again on every attempt. (Checked first: such a failure
        // also reads as a connection never made.)
        Err(error) if tls_refusal(&error).is_some() => return Verdict::Final(Err(error)),
        // A call a repeat could harm ends here, unless the connection was
        // never made (then the request never left).
        Err(error) if !safe && !error.is_connect() => return Verdict::Final(Err(error)),
        Err(error) => {
            let next = Next {
                ask_first: progress.is_some_and(|p| p.body_started()) && !error.is_timeout(),
                ..Next::default()
            };
            return failed(error, next);
        }
    };
    let status = response.status();
    if status.is_success() && !rules.read_success {
        return Verdict::Final(Ok(Reply::Unread(response)));
    }
    let next = Next {
        retry_after: retry_after(response.headers()),
        throttled: status == reqwest::StatusCode::TOO_MANY_REQUESTS,
        ask_first: false,
    };
    let version = response.version();
    let url = response.url().clone();
    let headers = response.headers().clone();
    let (body, ending) = read_bounded(response, MAX_ANSWER_BYTES).await;
    let cut = match ending {
        Ending::Whole => false,
        Ending::Cut => true,
        // A success cut short is not known to be one: worth another
        // attempt where a repeat is safe. Any other status is the answer.
        Ending::Broken(error) if status.is_success() => {
            return if safe {
                failed(error, next)
            } else {
                Verdict::Final(Err(error))
            };
        }
        Ending::Broken(_) => false,
    };
    let read = Reply::Read(Read {
        status,
        version,
        url,
        headers,
        body: rules.scrubber.redact(&body).into_owned(),
        cut,
    });
    if safe && retryable(status.as_u16()) {
        tracing::debug!(
            request = %rules.about,
            attempt = attempt.number,
            status = status.as_u16(),
            "an attempt was answered with a status worth another"
        );
        Verdict::Retryable {
            outcome: Ok(read),
            next,
        }
    } else {
        Verdict::Final(Ok(read))
    }
}

/// `path` under `base`.
fn under(base: &reqwest::Url, path: &str) -> reqwest::Url {
    let mut url = base.clone();
    url.set_path(&format!("{}{path}", base.path().trim_end_matches('/')));
    url
}

/// One attempt's failure to get an answer from `url`: a timeout, or a
/// transport error naming the host.
fn transport_or_timeout(url: &reqwest::Url, error: reqwest::Error, timeout: Duration) -> Error {
    if error.is_timeout() {
        // `finish` puts in the call's totals.
        return Error::Timeout {
            elapsed: timeout,
            attempts: 1,
            attempt_timeout: timeout,
        };
    }
    transport_error(&super::raw::host_of(url), error)
}

/// How reading an answer's body ended.
enum Ending {
    Whole,
    /// At the read limit, with more to come.
    Cut,
    /// The connection failed before the end (what came is kept).
    Broken(reqwest::Error),
}

/// Reads an answer's body up to `limit` bytes, keeping what came before a
/// failure.
async fn read_bounded(mut response: reqwest::Response, limit: usize) -> (Vec<u8>, Ending) {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    return (body, Ending::Cut);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return (body, Ending::Whole),
            Err(e) => return (body, Ending::Broken(e)),
        }
    }
}

/// rustls's error in `error`'s causes when it is one another attempt
/// would meet again: the server's certificate, settings in common, or an
/// answer that is not TLS at all. (An alert or a decryption failure after
/// the handshake may be the network's doing, and is retried.)
pub(super) fn tls_refusal(error: &reqwest::Error) -> Option<&rustls::Error> {
    use rustls::AlertDescription as Alert;
    let mut cause = error.source();
    while let Some(inner) = cause {
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            let permanent = match tls {
                rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::UnsupportedNameType
                | rustls::Error::PeerIncompatible(_)
                | rustls::Error::InvalidMessage(_) => true,
                rustls::Error::AlertReceived(alert) => matches!(
                    alert,
                    Alert::HandshakeFailure
                        | Alert::BadCertificate
                        | Alert::UnsupportedCertificate
                        | Alert::CertificateRevoked
                        | Alert::CertificateExpired
                        | Alert::CertificateUnknown
                        | Alert::UnknownCA
                        | Alert::ProtocolVersion
                        | Alert::InsufficientSecurity
                        | Alert::NoApplicationProtocol
                ),
                _ => false,
            };
            return permanent.then_some(tls);
        }
        // An io::Error's `source()` skips the error it wraps.
        cause = match inner
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(wrapped) => Some(wrapped),
            None => inner.source(),
        };
    }
    None
}

/// What to do about a TLS handshake rustls failed with `error`.
fn tls_problem(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(why) => format!(
            "the server's certificate is not trusted ({why:?}); if your own certificate \
             authority signed it, point SSL_CERT_FILE at that authority's PEM file or give it \
             to ClientBuilder::root_certificate_pem, and check that the URL names the host the \
             certificate is for; not retried, since another attempt would fail the same way"
        ),
        other => format!(
            "{other}; the server and this client have no TLS settings in common, or the \
             server is not what the URL names; not retried, since another attempt would fail \
             the same way"
        ),
    }
}

/// A transport failure towards `host`: what failed in a few words, the
/// error itself as the source (without its URL).
pub(super) fn transport_error(host: &str, error: reqwest::Error) -> Error {
    let error = error.without_url();
    if let Some(tls) = tls_refusal(&error) {
        return Error::Tls {
            host: host.to_owned(),
            problem: tls_problem(tls),
            attempts: 1,
            source: Some(Box::new(error)),
        };
    }
    Error::Transport {
        host: host.to_owned(),
        problem: transport_problem(&error),
        attempts: 1,
        source: Some(Box::new(error)),
    }
}

/// What a transport failure was, from the kinds in its cause chain.
fn transport_problem(error: &reqwest::Error) -> String {
    let mut io_kind = None;
    let mut tls = false;
    let mut cause = error.source();
    while let Some(inner) = cause {
        tls |= inner.is::<rustls::Error>();
        if let Some(io) = inner.downcast_ref::<io::Error>() {
            io_kind.get_or_insert(io.kind());
            // An io::Error's `source()` skips the error it wraps (rustls's,
            // or another io::Error): go on from the wrapped one itself.
            if let Some(wrapped) = io.get_ref() {
                cause = Some(wrapped);
                continue;
            }
        }
        cause = inner.source();
    }
    let problem = match io_kind {
        Some(io::ErrorKind::ConnectionRefused) => "the connection was refused",
        Some(io::ErrorKind::ConnectionReset) => "the connection was reset",
        Some(io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe) => {
            "the connection was closed"
        }
        Some(io::ErrorKind::TimedOut) => "connecting timed out",
        _ if tls => "the TLS handshake failed",
        _ if error.is_connect() => "could not connect (DNS lookup or connection failed)",
        _ if error.is_body() || error.is_decode() => "the answer was cut short",
        _ => "the connection failed before the answer came",
    };
    problem.to_owned()
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

/// Gives every event in the tree that has no id a new UUIDv4, so that the
/// same body, sent again, names the same events.
pub(crate) fn fill_event_ids(event: &mut api::types::Event) {
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
