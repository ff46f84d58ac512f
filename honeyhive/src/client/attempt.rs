//! The one attempt every request makes, whatever sent it: [`exchange`].
//! `log_event`, the `/v1` routes and the Logger reach it through
//! [`Client::attempt`](super::Client::attempt), `client.raw()` through its
//! hook (`raw.rs`). Also: what a failure to get an answer was, as an
//! [`Error`].

use std::fmt;
use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header;
use tokio::time::Instant;

use super::body::{self, Outgoing, Progress, TRACK_FROM, Tracked};
use super::linger::{BoxError, Lingering};
use super::repeat::Repeat;
use super::scrub::Scrubber;
use crate::Error;
use crate::retry::{Attempt, Next, Verdict};
use crate::status::{MAX_ANSWER_BYTES, retry_after, retryable};

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
    /// The client for large bodies, where it may be used (`linger.rs`).
    pub(super) direct: Option<&'a Lingering>,
    /// What the request is about, for logs.
    pub(super) about: &'a (dyn fmt::Display + Sync),
}

/// The one attempt every request makes, whatever sent it (`log_event`,
/// the `/v1` routes, the Logger, `client.raw()`): `request` (its timeout
/// set to the attempt's) with `body`, tracked when large and held back
/// behind `Expect: 100-continue` after a connection closed while its body
/// was being written (`body.rs`); a large body goes through `rules.direct`
/// when given (`linger.rs`), so that an answer that comes while it is being
/// written is read. The answer is read (up to [`MAX_ANSWER_BYTES`], the
/// key replaced) unless it is a success the caller reads itself. The
/// verdict for the retry loop:
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
) -> Verdict<Result<Reply, Failure>> {
    let safe = rules.repeat == Repeat::Safe;
    let failed = |error: Failure, next: Next| {
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
    *request.timeout_mut() = Some(attempt.timeout);
    let ask_first = |request: &mut reqwest::Request| {
        request.headers_mut().insert(
            header::EXPECT,
            header::HeaderValue::from_static("100-continue"),
        );
    };
    // A large body goes through the crate's own client where it may: an
    // answer that comes while it is being written is read (`linger.rs`).
    // reqwest keeps its own timeout; the own client keeps this one.
    let hold = attempt.ask_first.then(|| body::hold(attempt.timeout));
    let direct = rules
        .direct
        .filter(|_| body.as_ref().is_some_and(|b| b.len() >= TRACK_FROM));
    let deadline = direct.and_then(|_| Instant::now().checked_add(attempt.timeout));
    let (sent, progress) = match (direct, body) {
        (Some(direct), Some(bytes)) => {
            let (tracked, progress) = Tracked::new(bytes, hold);
            if attempt.ask_first {
                ask_first(&mut request);
            }
            let sent = within(deadline, direct.send(&request, tracked)).await;
            (
                sent.and_then(|sent| sent.map_err(Failure::Direct)),
                progress,
            )
        }
        (_, body) => {
            let progress = body.map_or_else(Progress::default, |bytes| {
                let outgoing = Outgoing::new(bytes, hold);
                if outgoing.ask_first {
                    ask_first(&mut request);
                }
                let progress = outgoing.progress();
                *request.body_mut() = Some(outgoing.body);
                progress
            });
            (http.execute(request).await.map_err(Failure::Http), progress)
        }
    };
    let response = match sent {
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
                ask_first: progress.body_started() && !error.is_timeout(),
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
    let (body, ending) = read_bounded(response, MAX_ANSWER_BYTES, deadline).await;
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

/// Why an attempt got no answer.
#[derive(Debug)]
pub(super) enum Failure {
    /// reqwest's error.
    Http(reqwest::Error),
    /// The error of the client for large bodies (`linger.rs`).
    Direct(BoxError),
    /// The client for large bodies ran out of the attempt's time.
    TimedOut,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Http(error) => error.fmt(f),
            Failure::Direct(error) => error.fmt(f),
            Failure::TimedOut => f.write_str("the attempt timed out"),
        }
    }
}

impl Failure {
    fn is_timeout(&self) -> bool {
        match self {
            Failure::Http(error) => error.is_timeout(),
            Failure::Direct(_) => false,
            Failure::TimedOut => true,
        }
    }

    fn is_connect(&self) -> bool {
        match self {
            Failure::Http(error) => error.is_connect(),
            Failure::Direct(error) => error
                .downcast_ref::<hyper_util::client::legacy::Error>()
                .is_some_and(hyper_util::client::legacy::Error::is_connect),
            Failure::TimedOut => false,
        }
    }

    /// The error itself, for its causes.
    fn error(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Failure::Http(error) => Some(error),
            Failure::Direct(error) => Some(&**error),
            Failure::TimedOut => None,
        }
    }
}

/// `future`, given until `deadline` (none: no limit of its own).
async fn within<F: Future>(deadline: Option<Instant>, future: F) -> Result<F::Output, Failure> {
    match deadline {
        Some(at) => tokio::time::timeout_at(at, future)
            .await
            .map_err(|_| Failure::TimedOut),
        None => Ok(future.await),
    }
}

/// How reading an answer's body ended.
enum Ending {
    Whole,
    /// At the read limit, with more to come.
    Cut,
    /// The connection failed (or the deadline passed) before the end;
    /// what came is kept.
    Broken(Failure),
}

/// Reads an answer's body up to `limit` bytes by `deadline`, keeping what
/// came before a failure.
async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
    deadline: Option<Instant>,
) -> (Vec<u8>, Ending) {
    let mut body = Vec::new();
    loop {
        match within(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                let room = limit - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    return (body, Ending::Cut);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Ok(None)) => return (body, Ending::Whole),
            Ok(Err(e)) => return (body, Ending::Broken(Failure::Http(e))),
            Err(timed_out) => return (body, Ending::Broken(timed_out)),
        }
    }
}

/// One attempt's failure to get an answer from `url`: a timeout, or a
/// transport error naming the host.
pub(super) fn transport_or_timeout(url: &reqwest::Url, error: Failure, timeout: Duration) -> Error {
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

/// The causes of `error`, outermost first (itself excluded).
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(error.source(), |&inner| {
        // An io::Error's `source()` skips the error it wraps (rustls's,
        // or another io::Error): go on from the wrapped one itself.
        match inner
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
        {
            Some(wrapped) => Some(wrapped as &(dyn std::error::Error + 'static)),
            None => inner.source(),
        }
    })
}

/// rustls's error in `error`'s causes when it is one another attempt
/// would meet again: the server's certificate, settings in common, or an
/// answer that is not TLS at all. (An alert or a decryption failure after
/// the handshake may be the network's doing, and is retried.)
fn tls_refusal(error: &Failure) -> Option<&rustls::Error> {
    use rustls::AlertDescription as Alert;
    let tls = causes(error.error()?).find_map(|inner| inner.downcast_ref::<rustls::Error>())?;
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
    permanent.then_some(tls)
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
pub(super) fn transport_error(host: &str, error: Failure) -> Error {
    let error = match error {
        Failure::Http(error) => Failure::Http(error.without_url()),
        other => other,
    };
    let tls = tls_refusal(&error).map(tls_problem);
    let problem = transport_problem(&error);
    let source: Option<BoxError> = match error {
        Failure::Http(error) => Some(Box::new(error)),
        Failure::Direct(error) => Some(error),
        Failure::TimedOut => None,
    };
    match tls {
        Some(problem) => Error::Tls {
            host: host.to_owned(),
            problem,
            attempts: 1,
            source,
        },
        None => Error::Transport {
            host: host.to_owned(),
            problem,
            attempts: 1,
            source,
        },
    }
}

/// What a transport failure was, from the kinds in its cause chain.
fn transport_problem(error: &Failure) -> String {
    let mut io_kind = None;
    let mut tls = false;
    for inner in error.error().into_iter().flat_map(causes) {
        tls |= inner.is::<rustls::Error>();
        if let Some(io) = inner.downcast_ref::<io::Error>() {
            io_kind.get_or_insert(io.kind());
        }
    }
    let body = matches!(error, Failure::Http(e) if e.is_body() || e.is_decode());
    let problem = match io_kind {
        Some(io::ErrorKind::ConnectionRefused) => "the connection was refused",
        Some(io::ErrorKind::ConnectionReset) => "the connection was reset",
        Some(io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe) => {
            "the connection was closed"
        }
        Some(io::ErrorKind::TimedOut) => "connecting timed out",
        _ if tls => "the TLS handshake failed",
        _ if error.is_connect() => "could not connect (DNS lookup or connection failed)",
        _ if body => "the answer was cut short",
        _ => "the connection failed before the answer came",
    };
    problem.to_owned()
}
