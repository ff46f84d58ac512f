//! The one error type every fallible call in this crate returns.

use std::time::Duration;

/// What went wrong when building a client or logging an event.
///
/// Every variant says what happened and carries what a caller needs to act on
/// it. The API key never appears in any of them: bodies the server sends back
/// are scrubbed of it before they are stored.
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
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Something the caller gave cannot be used; nothing was sent.
    ///
    /// `field` names the input (for example `api_key`, `session_id` or
    /// `children[0].inputs`) and `problem` says what is wrong and how to fix it.
    #[error("invalid {field}: {problem}")]
    InvalidInput {
        /// The builder setting, argument or event field at fault.
        field: String,
        /// What is wrong with it and what to do instead.
        problem: String,
    },

    /// The API refused the credentials (HTTP 401 or 403).
    #[error(
        "the API refused the API key (HTTP {status}): check HH_API_KEY or ClientBuilder::api_key"
    )]
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// The start of the answer's body, for diagnosis.
        body: String,
    },

    /// The API answered with a status this client does not treat as success.
    #[error("the API answered HTTP {status}: {body}")]
    Api {
        /// The HTTP status code.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },

    /// The API answered 200 but said it did not record the event
    /// (`"success": false`).
    #[error("the API did not record event {event_id}: it answered success = false")]
    NotRecorded {
        /// The id the event was sent with.
        event_id: String,
    },

    /// The API answered 429: too many requests. The client has already
    /// waited and retried as its [`RetryPolicy`](crate::RetryPolicy) allows.
    #[error("the API is rate limiting this client (HTTP 429): {body}")]
    RateLimited {
        /// The start of the answer's body.
        body: String,
    },

    /// The API's answer could not be read as the documented response.
    #[error("the API's answer (HTTP {status}) could not be decoded: {problem}")]
    Decode {
        /// The HTTP status code of the answer.
        status: u16,
        /// Why it could not be decoded.
        problem: String,
        /// The start of the answer's body.
        body: String,
    },

    /// No answer came within the configured timeout.
    #[error("the request timed out after {after:?}")]
    Timeout {
        /// The timeout that expired.
        after: Duration,
    },

    /// [`Client::logger`](crate::Client::logger) was called outside a tokio
    /// runtime, where it cannot start its worker tasks.
    #[error(
        "Client::logger needs a tokio runtime for its workers; call it from async code \
         (inside #[tokio::main] or Runtime::block_on)"
    )]
    NoRuntime,

    /// The request could not be sent or its answer not received: the
    /// connection was refused or reset, DNS failed, TLS failed.
    #[error("could not reach the API: {message}")]
    Transport {
        /// What failed, with its causes.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// The HTTP status the API answered with, when there was an answer.
    ///
    /// ```
    /// let err = honeyhive::Error::Api { status: 500, body: String::new() };
    /// assert_eq!(err.status(), Some(500));
    /// ```
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Unauthorized { status, .. }
            | Error::Api { status, .. }
            | Error::Decode { status, .. } => Some(*status),
            Error::NotRecorded { .. } => Some(200),
            Error::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// Whether sending the same request again might succeed: 408, 429, 500,
    /// 502, 503, 504, timeouts and connection failures. The client's
    /// [`RetryPolicy`](crate::RetryPolicy) already retried these; this is for
    /// callers deciding what to do once it gave up.
    ///
    /// ```
    /// use honeyhive::Error;
    /// assert!(Error::Api { status: 503, body: String::new() }.is_retryable());
    /// assert!(!Error::Api { status: 400, body: String::new() }.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api { status, .. } => crate::retry::retryable_status(*status),
            Error::RateLimited { .. } | Error::Timeout { .. } | Error::Transport { .. } => true,
            Error::InvalidInput { .. }
            | Error::Unauthorized { .. }
            | Error::NotRecorded { .. }
            | Error::Decode { .. }
            | Error::NoRuntime => false,
        }
    }
}
