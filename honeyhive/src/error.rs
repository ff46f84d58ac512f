//! The one error type every fallible call in this crate returns.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;

/// What went wrong when building a client or logging an event.
///
/// Every variant says what happened and carries what a caller needs to act on
/// it. The API key never appears in any of them: bodies the server sends back
/// are scrubbed of it before they are stored, and transport errors name the
/// host, never the URL's credentials or headers.
///
/// Errors from sending say how many requests the call made
/// ([`attempts`](Error::attempts)), retries included. `Display` is one
/// sentence; the underlying cause, where there is one, is the
/// [`source`](std::error::Error::source), so `anyhow`'s `{:#}` prints each
/// once.
///
/// ```
/// use honeyhive::{Client, Error};
///
/// let err = Client::builder().build().unwrap_err();
/// match err {
///     Error::InvalidInput { field, .. } => assert_eq!(field, "api_key"),
///     other => panic!("unexpected: {other}"),
/// }
/// ```
///
/// `Debug` (`{:?}`) is that sentence, then the causes, one per line, as
/// `main` shows an error it returns; `{:#?}` shows the variant and its
/// fields.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Something the caller gave cannot be used; nothing was sent.
    ///
    /// `field` names the input (for example `api_key`, `session_id` or
    /// `children[0].inputs`) and `problem` says what is wrong and how to fix it.
    ///
    /// Besides the builder's settings, the client refuses before sending:
    /// - a session id that is empty, only whitespace, `.` or `..` (a URL
    ///   parser reads `.` and `..` as steps in the path even when
    ///   percent-encoded, so the request would reach another endpoint);
    /// - NaN or infinite numbers in typed values: the `*_ms(f64)` setters,
    ///   and `f32`/`f64` values inside what you pass to `inputs`, `metrics`
    ///   and the other free-form setters, which serde_json would otherwise
    ///   send as `null` (a `serde_json::Value` cannot hold NaN:
    ///   `json!({"x": f64::NAN})` is already `{"x": null}`);
    /// - a value whose own `Serialize` fails (such as a non-UTF-8
    ///   `PathBuf`), with serde's message;
    /// - an `end_time` before its `start_time`; a free-form field that is
    ///   not a JSON object; a body over
    ///   [`max_body_bytes`](crate::ClientBuilder::max_body_bytes) that
    ///   cannot be cut to fit.
    #[non_exhaustive]
    #[error("invalid {field}: {problem}{}", said(*fix))]
    InvalidInput {
        /// The builder setting, argument or event field at fault.
        field: String,
        /// What is wrong with it and what to do instead.
        problem: String,
        /// The setting that fixes it, when one does: the sentence ends
        /// with it, in this crate's words ([`Error::to_string_with`]).
        fix: Option<Fix>,
    },

    /// The API refused the credentials (HTTP 401 or 403). Not retried.
    #[non_exhaustive]
    #[error(
        "the API refused the API key (HTTP {}): check it{}",
        status.as_u16(),
        said(Some(Fix::ApiKey))
    )]
    Unauthorized {
        /// 401 or 403.
        status: StatusCode,
        /// The start of the answer's body, for diagnosis.
        body: String,
        /// Requests the call made.
        attempts: u32,
        /// The URL the answer came from, for calls of [`Client::raw`](crate::Client::raw)
        /// and the resource handles ([`Client::runs`](crate::Client::runs)…).
        url: Option<String>,
    },

    /// The API answered with a status this client does not treat as success:
    /// a 4xx other than 401, 403 and 429 (sent once), or a 408 or 5xx that
    /// was still failing when the retries ran out.
    #[non_exhaustive]
    #[error(
        "the API answered HTTP {}{}{}: {body}",
        status.as_u16(),
        at(url),
        tries(*attempts)
    )]
    Api {
        /// The HTTP status code.
        status: StatusCode,
        /// The start of the answer's body.
        body: String,
        /// Requests the call made.
        attempts: u32,
        /// The URL the answer came from, for calls of [`Client::raw`](crate::Client::raw)
        /// and the resource handles.
        url: Option<String>,
    },

    /// The API has no such resource (HTTP 404, or an empty answer where the
    /// call asked for one id): a resource handle asked for `resource` by
    /// `id`. Not retried.
    ///
    /// `resource` and `id` are the caller's words, for a message printed as
    /// it is: `the API has no dataset with id 6a1f…`.
    ///
    /// After a delete that was sent more than once (`attempts > 1`: an
    /// earlier attempt's answer was lost), a 404 may mean that attempt
    /// deleted it.
    #[non_exhaustive]
    #[error(
        "the API has no {resource} with id {id}{}: check the id, and that it belongs to the \
         API key's project",
        at(url)
    )]
    NotFound {
        /// What was looked for: `dataset`, `datapoint`, `run`, `event`.
        resource: &'static str,
        /// The id it was looked for by.
        id: String,
        /// The start of the answer's body.
        body: String,
        /// Requests the call made.
        attempts: u32,
        /// The URL the answer came from.
        url: Option<String>,
    },

    /// The API answered 200 but said it did not record the event, or the
    /// batch (`"success": false`). Not retried.
    #[non_exhaustive]
    #[error(
        "the API did not record {}: it answered success = false",
        events(event_ids)
    )]
    NotRecorded {
        /// The ids the events were sent with: one for an event, the logged
        /// (root) events' for a batch.
        event_ids: Vec<String>,
        /// Requests the call made.
        attempts: u32,
    },

    /// The API answered 429 (too many requests) until the
    /// [`RetryPolicy`](crate::RetryPolicy) gave up.
    #[non_exhaustive]
    #[error("the API is rate limiting this client (HTTP 429{}): {body}", tries(*attempts))]
    RateLimited {
        /// The start of the answer's body.
        body: String,
        /// The wait the last answer asked for (`Retry-After`), if any.
        retry_after: Option<Duration>,
        /// Requests the call made.
        attempts: u32,
        /// The URL the answer came from, for calls of [`Client::raw`](crate::Client::raw)
        /// and the resource handles.
        url: Option<String>,
    },

    /// The API's answer could not be read as the documented response. Not
    /// retried.
    #[non_exhaustive]
    #[error(
        "the API's answer (HTTP {}) could not be decoded: {problem}",
        status.as_u16()
    )]
    Decode {
        /// The HTTP status code of the answer.
        status: StatusCode,
        /// Why it could not be decoded.
        problem: String,
        /// The start of the answer's body.
        body: String,
        /// Requests the call made.
        attempts: u32,
        /// The URL the answer came from, for calls of [`Client::raw`](crate::Client::raw)
        /// and the resource handles.
        url: Option<String>,
        /// The JSON error, when the body was not the documented JSON.
        #[source]
        source: Option<serde_json::Error>,
    },

    /// No answer came in time, on any attempt.
    #[non_exhaustive]
    #[error(
        "no answer in time: gave up after {} ms and {attempts} attempt{} \
         (each at most {} ms)",
        crate::millis::rounded(*elapsed),
        if *attempts == 1 { "" } else { "s" },
        crate::millis::rounded(*attempt_timeout)
    )]
    Timeout {
        /// How long the whole call took, waits between attempts included.
        elapsed: Duration,
        /// Requests the call made.
        attempts: u32,
        /// The longest an attempt was allowed ([`ClientBuilder::timeout`](crate::ClientBuilder::timeout),
        /// cut to what was left of the deadline).
        attempt_timeout: Duration,
    },

    /// [`Logger::new`](crate::Logger::new) was called outside a tokio
    /// runtime, where it cannot start its tasks.
    #[non_exhaustive]
    #[error(
        "Logger::new needs a tokio runtime for its tasks; call it from async code (inside \
         #[tokio::main] or Runtime::block_on), or use Logger::on_own_thread"
    )]
    NoRuntime,

    /// [`Logger::on_own_thread`](crate::Logger::on_own_thread) could not
    /// start its thread or that thread's tokio runtime: the operating
    /// system refused (threads, memory or file descriptors exhausted).
    #[non_exhaustive]
    #[error("could not start the Logger's own thread or its tokio runtime: {source}")]
    LoggerThread {
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// The server's TLS handshake failed for a reason another attempt
    /// would meet again: its certificate is not trusted (unknown issuer,
    /// expired, for another name), or it offers nothing this client speaks.
    /// Not retried. The cause is the [`source`](std::error::Error::source)
    /// (rustls's error); `problem` says what to do.
    #[non_exhaustive]
    #[error(
        "the TLS handshake with {host} failed: {problem}{}{}",
        tries(*attempts),
        said(*fix)
    )]
    Tls {
        /// The host (and port, when not the scheme's default).
        host: String,
        /// What failed and what to do, in a sentence.
        problem: String,
        /// The setting that fixes it, when one may
        /// ([`Fix::RootCertificate`]).
        fix: Option<Fix>,
        /// Requests the call made.
        attempts: u32,
        /// rustls's error, in reqwest's.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// The request could not be sent or its answer not received: the
    /// connection was refused or reset, DNS failed, the connection broke
    /// during the TLS handshake. The cause is the
    /// [`source`](std::error::Error::source).
    #[non_exhaustive]
    #[error("could not reach {host}: {problem}{}", tries(*attempts))]
    Transport {
        /// The host (and port, when not the scheme's default) the request
        /// went to; never credentials.
        host: String,
        /// What failed, in a few words.
        problem: String,
        /// Requests the call made (0 when the client could not be set up).
        attempts: u32,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
}

impl fmt::Debug for Error {
    /// `{:?}`: the sentence and its causes (what `fn main() -> Result<(),
    /// Error>` prints); `{:#?}`: the variant and its fields.
    ///
    /// ```
    /// let err = honeyhive::Client::builder().build().unwrap_err();
    /// assert_eq!(
    ///     format!("{err:?}"),
    ///     "invalid api_key: is not set; call ClientBuilder::api_key or set HH_API_KEY and use Client::from_env"
    /// );
    /// assert!(format!("{err:#?}").starts_with("InvalidInput {"));
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return self.fields(f);
        }
        write!(f, "{self}")?;
        let mut cause = std::error::Error::source(self);
        if cause.is_some() {
            f.write_str("\n\nCaused by:")?;
        }
        let mut index = 0;
        while let Some(error) = cause {
            write!(f, "\n    {index}: {error}")?;
            cause = error.source();
            index += 1;
        }
        Ok(())
    }
}

impl Error {
    /// The variant and its fields, for `{:#?}`.
    fn fields(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidInput {
                field,
                problem,
                fix,
            } => f
                .debug_struct("InvalidInput")
                .field("field", field)
                .field("problem", problem)
                .field("fix", fix)
                .finish(),
            Error::Unauthorized {
                status,
                body,
                attempts,
                url,
            } => f
                .debug_struct("Unauthorized")
                .field("status", status)
                .field("body", body)
                .field("attempts", attempts)
                .field("url", url)
                .finish(),
            Error::Api {
                status,
                body,
                attempts,
                url,
            } => f
                .debug_struct("Api")
                .field("status", status)
                .field("body", body)
                .field("attempts", attempts)
                .field("url", url)
                .finish(),
            Error::NotFound {
                resource,
                id,
                body,
                attempts,
                url,
            } => f
                .debug_struct("NotFound")
                .field("resource", resource)
                .field("id", id)
                .field("body", body)
                .field("attempts", attempts)
                .field("url", url)
                .finish(),
            Error::NotRecorded {
                event_ids,
                attempts,
            } => f
                .debug_struct("NotRecorded")
                .field("event_ids", event_ids)
                .field("attempts", attempts)
                .finish(),
            Error::RateLimited {
                body,
                retry_after,
                attempts,
                url,
            } => f
                .debug_struct("RateLimited")
                .field("body", body)
                .field("retry_after", retry_after)
                .field("attempts", attempts)
                .field("url", url)
                .finish(),
            Error::Decode {
                status,
                problem,
                body,
                attempts,
                url,
                source,
            } => f
                .debug_struct("Decode")
                .field("status", status)
                .field("problem", problem)
                .field("body", body)
                .field("attempts", attempts)
                .field("url", url)
                .field("source", source)
                .finish(),
            Error::Timeout {
                elapsed,
                attempts,
                attempt_timeout,
            } => f
                .debug_struct("Timeout")
                .field("elapsed", elapsed)
                .field("attempts", attempts)
                .field("attempt_timeout", attempt_timeout)
                .finish(),
            Error::NoRuntime => f.write_str("NoRuntime"),
            Error::LoggerThread { source } => f
                .debug_struct("LoggerThread")
                .field("source", source)
                .finish(),
            Error::Tls {
                host,
                problem,
                fix,
                attempts,
                source,
            } => f
                .debug_struct("Tls")
                .field("host", host)
                .field("problem", problem)
                .field("fix", fix)
                .field("attempts", attempts)
                .field("source", source)
                .finish(),
            Error::Transport {
                host,
                problem,
                attempts,
                source,
            } => f
                .debug_struct("Transport")
                .field("host", host)
                .field("problem", problem)
                .field("attempts", attempts)
                .field("source", source)
                .finish(),
        }
    }
}

/// `event e-1`, or `the batch of 3 events e-1, e-2, e-3` (the first
/// three named).
fn events(ids: &[String]) -> String {
    match ids {
        [one] => format!("event {one}"),
        _ => {
            let named: Vec<&str> = ids.iter().take(3).map(String::as_str).collect();
            let more = if ids.len() > 3 { ", ..." } else { "" };
            format!(
                "the batch of {} events {}{more}",
                ids.len(),
                named.join(", ")
            )
        }
    }
}

/// " from URL" when the URL is known.
fn at(url: &Option<String>) -> String {
    url.as_ref()
        .map(|url| format!(" from {url}"))
        .unwrap_or_default()
}

/// A setting that fixes an [`Error`] (or a [`DeadLetter`](crate::DeadLetter)'s
/// reason), named apart from the sentence: the sentence ends with it in
/// this crate's words ([`in_rust`](Fix::in_rust)), and a program whose
/// users give settings another way says it in its own with
/// [`Error::to_string_with`]. The `honeyhive` command says `--api-key`
/// where this crate says `ClientBuilder::api_key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fix {
    /// The API key: [`ClientBuilder::api_key`](crate::ClientBuilder::api_key),
    /// or `HH_API_KEY` with [`Client::from_env`](crate::Client::from_env).
    ApiKey,
    /// Plain `http://` to a host that is not loopback:
    /// [`ClientBuilder::allow_insecure_http`](crate::ClientBuilder::allow_insecure_http).
    AllowInsecureHttp,
    /// A body over the limit:
    /// [`ClientBuilder::max_body_bytes`](crate::ClientBuilder::max_body_bytes).
    MaxBodyBytes,
    /// A server certificate signed by an authority of one's own:
    /// `SSL_CERT_FILE` or
    /// [`ClientBuilder::root_certificate_pem`](crate::ClientBuilder::root_certificate_pem).
    RootCertificate,
    /// A session id that cannot be used: a new one,
    /// [`SessionId::new`](crate::SessionId::new).
    NewSessionId,
    /// An event without the `event_type` the `/v1` routes need:
    /// [`Event::model`](crate::Event::model) and its siblings, or
    /// [`Event::event_type`](crate::Event::event_type).
    EventType,
}

impl Fix {
    /// What to do, in this crate's words, as error messages end with it.
    pub fn in_rust(self) -> &'static str {
        match self {
            Fix::ApiKey => "call ClientBuilder::api_key or set HH_API_KEY and use Client::from_env",
            Fix::AllowInsecureHttp => {
                "use https://, or ClientBuilder::allow_insecure_http(true) if you mean it"
            }
            Fix::MaxBodyBytes => "trim it, or raise ClientBuilder::max_body_bytes",
            Fix::RootCertificate => {
                "if your own certificate authority signed it, point SSL_CERT_FILE at that \
                 authority's PEM file or give it to ClientBuilder::root_certificate_pem"
            }
            Fix::NewSessionId => "to start a new session, use SessionId::new()",
            Fix::EventType => {
                "make the event with Event::model, ::tool, ::chain or ::session, or set \
                 Event::event_type"
            }
        }
    }
}

/// "; " and the fix in this crate's words, when there is one: the end of
/// the sentence of an error it fixes.
fn said(fix: Option<Fix>) -> String {
    fix.map(|fix| format!("; {}", fix.in_rust()))
        .unwrap_or_default()
}

/// `text` (a sentence ending with `fix` in this crate's words, as
/// [`said`] writes it) with the fix said by `say` instead.
pub(crate) fn said_with<'a>(text: &str, fix: Option<Fix>, say: impl Fn(Fix) -> &'a str) -> String {
    let Some(fix) = fix else {
        return text.to_owned();
    };
    match text.strip_suffix(fix.in_rust()) {
        Some(head) => format!("{head}{}", say(fix)),
        None => text.to_owned(),
    }
}

/// " after N attempts" when a call made more than one.
fn tries(attempts: u32) -> String {
    if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    }
}

impl Error {
    /// An [`InvalidInput`](Error::InvalidInput) whose field is inside
    /// `prefix` (such as `events[2].`); any other error as it is.
    pub(crate) fn within(self, prefix: &str) -> Self {
        match self {
            Error::InvalidInput {
                field,
                problem,
                fix,
            } => Error::InvalidInput {
                field: format!("{prefix}{field}"),
                problem,
                fix,
            },
            other => other,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            problem: problem.into(),
            fix: None,
        }
    }

    /// An [`InvalidInput`](Error::InvalidInput) that `fix` fixes: its
    /// sentence ends with the fix.
    pub(crate) fn invalid_fixed_by(
        field: impl Into<String>,
        problem: impl Into<String>,
        fix: Fix,
    ) -> Self {
        Error::InvalidInput {
            field: field.into(),
            problem: problem.into(),
            fix: Some(fix),
        }
    }

    /// The setting that fixes this error, when one does: for a program
    /// whose users give settings another way (flags, variables) to say so
    /// in its own words with [`to_string_with`](Self::to_string_with).
    ///
    /// ```
    /// use honeyhive::{Client, Fix};
    ///
    /// let err = Client::builder().build().unwrap_err();
    /// assert_eq!(err.fix(), Some(Fix::ApiKey));
    /// ```
    pub fn fix(&self) -> Option<Fix> {
        match self {
            Error::InvalidInput { fix, .. } | Error::Tls { fix, .. } => *fix,
            Error::Unauthorized { .. } => Some(Fix::ApiKey),
            _ => None,
        }
    }

    /// The sentence `Display` gives, with its [`fix`](Self::fix) said by
    /// `say` instead of in this crate's words (`Display` is
    /// `to_string_with(Fix::in_rust)`).
    ///
    /// ```
    /// use honeyhive::{Client, Fix};
    ///
    /// let err = Client::builder().build().unwrap_err();
    /// let at_the_shell = err.to_string_with(|fix| match fix {
    ///     Fix::ApiKey => "pass --api-key",
    ///     other => other.in_rust(),
    /// });
    /// assert_eq!(at_the_shell, "invalid api_key: is not set; pass --api-key");
    /// ```
    pub fn to_string_with<'a>(&self, say: impl Fn(Fix) -> &'a str) -> String {
        said_with(&self.to_string(), self.fix(), say)
    }

    /// The HTTP status the API answered with, when there was an answer.
    ///
    /// ```
    /// # async fn run(client: honeyhive::Client) {
    /// if let Err(err) = client.log_event("s-1", honeyhive::Event::tool("search")).await {
    ///     if err.status() == Some(honeyhive::StatusCode::NOT_FOUND) {
    ///         eprintln!("wrong base URL? {err}");
    ///     }
    /// }
    /// # }
    /// ```
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Unauthorized { status, .. }
            | Error::Api { status, .. }
            | Error::Decode { status, .. } => Some(*status),
            Error::NotRecorded { .. } => Some(StatusCode::OK),
            Error::RateLimited { .. } => Some(StatusCode::TOO_MANY_REQUESTS),
            Error::NotFound { .. } => Some(StatusCode::NOT_FOUND),
            _ => None,
        }
    }

    /// The URL the API's answer came from, when the error is an answer to
    /// a call of [`Client::raw`](crate::Client::raw) or a resource handle.
    ///
    /// ```
    /// let err = honeyhive::Client::builder().build().unwrap_err();
    /// assert_eq!(err.url(), None);
    /// ```
    pub fn url(&self) -> Option<&str> {
        match self {
            Error::Unauthorized { url, .. }
            | Error::Api { url, .. }
            | Error::NotFound { url, .. }
            | Error::RateLimited { url, .. }
            | Error::Decode { url, .. } => url.as_deref(),
            _ => None,
        }
    }

    /// How many requests the call made before this error, retries included;
    /// `None` for errors that come before anything is sent.
    pub fn attempts(&self) -> Option<u32> {
        match self {
            Error::Unauthorized { attempts, .. }
            | Error::Api { attempts, .. }
            | Error::NotFound { attempts, .. }
            | Error::NotRecorded { attempts, .. }
            | Error::RateLimited { attempts, .. }
            | Error::Decode { attempts, .. }
            | Error::Timeout { attempts, .. }
            | Error::Tls { attempts, .. }
            | Error::Transport { attempts, .. } => Some(*attempts),
            Error::InvalidInput { .. } | Error::NoRuntime | Error::LoggerThread { .. } => None,
        }
    }

    /// Whether sending the same request again might succeed: 408, 429, 500,
    /// 502, 503, 504, timeouts and connection failures (not a TLS handshake
    /// the server failed for its certificate, [`Error::Tls`]). The client's
    /// [`RetryPolicy`](crate::RetryPolicy) already retried these; this is for
    /// callers deciding what to do once it gave up.
    ///
    /// ```
    /// # async fn run(client: honeyhive::Client) {
    /// match client.log_event("s-1", honeyhive::Event::tool("search")).await {
    ///     Err(err) if err.is_retryable() => eprintln!("try again later: {err}"),
    ///     Err(err) => eprintln!("this event will never be accepted: {err}"),
    ///     Ok(logged) => println!("logged {}", logged.event_id),
    /// }
    /// # }
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api { status, .. } => crate::status::retryable(status.as_u16()),
            Error::RateLimited { .. } | Error::Timeout { .. } | Error::Transport { .. } => true,
            Error::InvalidInput { .. }
            | Error::Unauthorized { .. }
            | Error::NotFound { .. }
            | Error::Tls { .. }
            | Error::NotRecorded { .. }
            | Error::Decode { .. }
            | Error::NoRuntime
            | Error::LoggerThread { .. } => false,
        }
    }

    /// Records how many requests the call made, on the variants that carry it.
    pub(crate) fn set_attempts(&mut self, count: u32) {
        match self {
            Error::Unauthorized { attempts, .. }
            | Error::Api { attempts, .. }
            | Error::NotFound { attempts, .. }
            | Error::NotRecorded { attempts, .. }
            | Error::RateLimited { attempts, .. }
            | Error::Decode { attempts, .. }
            | Error::Timeout { attempts, .. }
            | Error::Tls { attempts, .. }
            | Error::Transport { attempts, .. } => *attempts = count,
            Error::InvalidInput { .. } | Error::NoRuntime | Error::LoggerThread { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_reported_for_every_answered_variant() {
        let api = Error::Api {
            status: StatusCode::SERVICE_UNAVAILABLE,
            body: String::new(),
            attempts: 5,
            url: None,
        };
        assert_eq!(api.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        let limited = Error::RateLimited {
            body: String::new(),
            retry_after: None,
            attempts: 2,
            url: None,
        };
        assert_eq!(limited.status(), Some(StatusCode::TOO_MANY_REQUESTS));
        let not_recorded = Error::NotRecorded {
            event_ids: vec!["e".into()],
            attempts: 1,
        };
        assert_eq!(not_recorded.status(), Some(StatusCode::OK));
        assert_eq!(Error::NoRuntime.status(), None);
    }

    #[test]
    fn attempts_show_in_display_only_when_there_were_retries() {
        let once = Error::Api {
            status: StatusCode::BAD_REQUEST,
            body: "bad".into(),
            attempts: 1,
            url: None,
        };
        assert_eq!(once.to_string(), "the API answered HTTP 400: bad");
        let retried = Error::Api {
            status: StatusCode::SERVICE_UNAVAILABLE,
            body: "busy".into(),
            attempts: 5,
            url: None,
        };
        assert_eq!(
            retried.to_string(),
            "the API answered HTTP 503 after 5 attempts: busy"
        );
        assert_eq!(retried.attempts(), Some(5));
        assert_eq!(Error::invalid("f", "p").attempts(), None);
    }

    #[test]
    fn debug_is_the_sentence_and_its_causes_and_alternate_debug_the_fields() {
        let json = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let err = Error::Decode {
            status: StatusCode::OK,
            problem: "expected JSON".into(),
            body: "{".into(),
            attempts: 1,
            url: None,
            source: Some(json),
        };
        let shown = format!("{err:?}");
        assert!(
            shown.starts_with(
                "the API's answer (HTTP 200) could not be decoded: expected JSON\n\nCaused by:\n    0: EOF"
            ),
            "{shown}"
        );
        assert_eq!(
            format!("{:?}", Error::NoRuntime),
            Error::NoRuntime.to_string()
        );
        let fields = format!("{err:#?}");
        assert!(
            fields.starts_with("Decode {") && fields.contains("status: 200"),
            "{fields}"
        );
    }

    #[test]
    fn timeouts_say_the_whole_call_in_milliseconds() {
        let err = Error::Timeout {
            elapsed: Duration::from_nanos(3_100_400_000),
            attempts: 5,
            attempt_timeout: Duration::from_millis(500),
        };
        assert_eq!(
            err.to_string(),
            "no answer in time: gave up after 3100 ms and 5 attempts (each at most 500 ms)"
        );
        let once = Error::Timeout {
            elapsed: Duration::from_nanos(1_999_999_679),
            attempts: 1,
            attempt_timeout: Duration::from_nanos(1_999_999_679),
        };
        assert_eq!(
            once.to_string(),
            "no answer in time: gave up after 2000 ms and 1 attempt (each at most 2000 ms)"
        );
    }
}
