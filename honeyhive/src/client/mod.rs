//! [`Client`] and [`ClientBuilder`]: configuration, and logging one event.
//!
//! - `builder.rs`: [`ClientBuilder`], the environment, the HTTP client and TLS.
//! - `address.rs`: the base URL's checks; the session id as a path segment.
//! - `send.rs`: serializing an event, sending it, its answer decoded.
//! - `attempt.rs`: the one attempt function every request goes through.
//! - `linger.rs`: large bodies on connections where an early answer is read.
//! - `answer.rs`: the API's answer turned into an id or a typed error.
//! - `body.rs`: request bodies that tell how far they were sent, and can
//!   wait for an early answer.
//! - `raw.rs`: the generated client's calls on the same retry loop and
//!   attempt function.
//! - `repeat.rs`: which generated calls may be repeated, and why.
//! - `scrub.rs`: the API key kept out of stored answers.
//! - `spread.rs`: requests spread over more than one HTTP/2 connection.
//! - `v1.rs`: HoneyHive's `/v1` routes: event batches, sessions, updates.
//! - `session.rs`: [`Session`], a client bound to one session.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::{api, error::Error, event::Event, retry::RetryPolicy, session::SessionId};

mod address;
mod answer;
mod attempt;
mod body;
mod builder;
mod linger;
mod outgoing;
mod raw;
mod repeat;
mod scrub;
mod send;
mod session;
mod spread;
mod v1;

pub(crate) use address::check_session_id;
pub(crate) use answer::{Answer, Expect};
pub use builder::ClientBuilder;
pub(crate) use outgoing::{Outgoing, Refused};
pub(crate) use send::{Prepared, check_for_route, fill_event_ids};
pub use session::Session;
pub use v1::{LoggedBatch, StartedSession, Updated};

/// A HoneyHive API client.
///
/// Cheap to clone (the clones share one connection pool) and `Send + Sync`:
/// make one and hand clones to every task.
///
/// ```no_run
/// # async fn run() -> Result<(), honeyhive::Error> {
/// use honeyhive::{Client, Event, SessionId};
/// use serde_json::json;
///
/// let client = Client::builder()
///     .api_key("hh-...")
///     .project("support-bot")
///     .build()?;
/// let logged = client
///     .log_event(SessionId::new(), Event::model("gpt-4o").outputs(json!({"text": "hi"})))
///     .await?;
/// println!("logged {}", logged.event_id);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: spread::Spread,
    raw: api::Client,
    base_url: String,
    /// The base URL, parsed once.
    base: reqwest::Url,
    /// The data plane's base URL (every operation but `logEvent`), without
    /// a trailing slash.
    data_plane_url: String,
    /// The same, parsed once.
    data_plane: reqwest::Url,
    scrubber: scrub::Scrubber,
    /// The client for large bodies (`linger.rs`), where it may be used.
    direct: Option<linger::Lingering>,
    project: Option<String>,
    source: Option<String>,
    timeout: Duration,
    retry: RetryPolicy,
    max_body_bytes: usize,
    mask: Option<Arc<dyn crate::mask::Mask>>,
    sample: crate::sample::SampleRate,
    cut_oversize: bool,
}

/// What the API answered to a logged event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Logged {
    /// The id the event was recorded under.
    pub event_id: String,
    /// How many requests it took (1 when the first one succeeded; 0 when
    /// none was sent).
    pub attempts: u32,
    /// The event's session was sampled out
    /// ([`ClientBuilder::sample_rate`]): nothing was sent, and `event_id`
    /// is the id it would have had.
    pub sampled_out: bool,
}

impl Client {
    /// The `User-Agent` every request carries: `honeyhive-rs/` and the
    /// crate's version.
    pub const USER_AGENT: &'static str = concat!("honeyhive-rs/", env!("CARGO_PKG_VERSION"));

    /// A builder with every setting at its default; only the API key is
    /// required.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client configured from the environment, as the official SDKs are:
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `HH_API_KEY` | API key (required) | |
    /// | `HH_API_URL` | one base URL for every operation ([`ClientBuilder::base_url`]) | each operation's documented host: [`ClientBuilder::DEFAULT_BASE_URL`] for `log_event`, [`ClientBuilder::DEFAULT_DATA_PLANE_URL`] for the rest |
    /// | `HH_PROJECT` | default project of events | none |
    /// | `HH_SOURCE` | default source of events | none |
    /// | `HH_API_TIMEOUT` | per-attempt timeout in seconds | [`ClientBuilder::DEFAULT_TIMEOUT`] |
    /// | `HH_MAX_RETRIES` | retries after the first attempt | 4 ([`RetryPolicy::DEFAULT_MAX_ATTEMPTS`] − 1) |
    /// | `HH_SAMPLE_RATE` | fraction of sessions sent, 0 to 1 ([`ClientBuilder::sample_rate`]) | 1 |
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the variable: `HH_API_KEY` unset, a
    /// URL, timeout, rate or retry count that cannot be used, or any of
    /// these variables set but blank (empty or spaces): unset a variable
    /// to get its default.
    ///
    /// ```no_run
    /// let client = honeyhive::Client::from_env()?;
    /// # Ok::<(), honeyhive::Error>(())
    /// ```
    pub fn from_env() -> Result<Client, Error> {
        ClientBuilder::from_env()?.build()
    }

    /// Logs `event` in the session `session_id`, retrying as the client's
    /// [`RetryPolicy`] says.
    ///
    /// Before sending, the client gives the event (and each child without
    /// one) a new UUIDv4 `event_id` if it has none, and the top event the
    /// client's default project and source if it has none (children are sent
    /// as given: they belong to the top event's project). Nothing is sent
    /// when the input is invalid ([`Error::InvalidInput`]): an empty,
    /// whitespace-only, `.` or `..` session id, or an event a setter could
    /// not take.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] before sending; after, the API's refusal
    /// ([`Error::Unauthorized`], [`Error::Api`], [`Error::RateLimited`]
    /// once retries are spent), [`Error::Timeout`] or [`Error::Transport`]
    /// when the deadline passes or nothing answers, [`Error::Decode`] or
    /// [`Error::NotRecorded`] for an answer that does not say the event was
    /// recorded. [`Error::is_retryable`] tells which may go through later.
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// use honeyhive::Event;
    /// let logged = client.log_event("session-1", Event::tool("search")).await?;
    /// assert!(!logged.event_id.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn log_event(
        &self,
        session_id: impl Into<SessionId>,
        event: Event,
    ) -> Result<Logged, Error> {
        let session_id = session_id.into();
        if !self.samples_in(session_id.as_str()) {
            check_session_id(&session_id)?;
            let mut wire = event.into_api()?;
            fill_event_ids(&mut wire);
            return Ok(Logged {
                event_id: wire.event_id.unwrap_or_default(),
                attempts: 0,
                sampled_out: true,
            });
        }
        let prepared = self
            .off_the_runtime(move |client| client.prepare(&session_id, event))
            .await?;
        self.send(&prepared).await
    }

    /// A handle that logs into the session `id`.
    ///
    /// ```
    /// # let client = honeyhive::Client::builder().api_key("k").build().unwrap();
    /// let session = client.session("checkout-7");
    /// assert_eq!(session.id().as_str(), "checkout-7");
    /// ```
    pub fn session(&self, id: impl Into<SessionId>) -> Session {
        Session::new(self.clone(), id.into())
    }

    /// The generated client, sharing this client's connection pool, base URL
    /// and credentials: the raw escape hatch for what this crate does not wrap.
    ///
    /// Its calls run on the same retry loop as [`log_event`](Self::log_event)
    /// (the client's [`RetryPolicy`] and deadline, through [`api::Hooks`]),
    /// and the API key is removed from the body of any error answer it
    /// returns. What it does not do: check input (it sends what the
    /// generated types hold), fill ids or defaults, or refuse a `.` or `..`
    /// session id, which progenitor's path encoding leaves for the URL parser
    /// to read as a step in the path. A success answer cut short is reported
    /// by the generated code as a body error, not retried. Each operation
    /// goes to its documented host (see [`ClientBuilder::base_url`]). A
    /// failure becomes an [`Error`] with `?` (`From<api::Error<E>>`), or
    /// with the requests made counted through [`call`](Self::call).
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// use honeyhive::api::types;
    /// let answer = client
    ///     .raw()
    ///     .log_event()
    ///     .session_id("session-1")
    ///     .body(types::Event::builder().event_name("raw".to_string()).event_id("e-1".to_string()))
    ///     .send()
    ///     .await?;
    /// assert!(answer.success);
    /// # Ok(()) }
    /// ```
    pub fn raw(&self) -> &api::Client {
        &self.inner.raw
    }

    /// Awaits a call of [`raw`](Self::raw) and returns the answer's value;
    /// a failure is an [`Error`] like any other call's: the status, the
    /// start of the answer's body (the key removed), the URL it came from,
    /// and the requests made (which `Error::from` cannot know for a
    /// transport failure).
    ///
    /// # Errors
    /// As the call's: [`Error::Api`], [`Error::Unauthorized`],
    /// [`Error::RateLimited`], [`Error::Decode`], [`Error::Timeout`],
    /// [`Error::Transport`]; [`Error::InvalidInput`] when the generated
    /// builder refused a value (nothing was sent).
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// let metrics = client.call(client.raw().get_metrics().send()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn call<T, E>(
        &self,
        call: impl Future<Output = Result<api::ResponseValue<T>, api::Error<E>>>,
    ) -> Result<T, Error> {
        let (result, tally) = raw::tallied(call).await;
        result.map(api::ResponseValue::into_inner).map_err(|error| {
            raw::from_raw(
                error,
                tally.map(|t| (t, self.inner.timeout)),
                Some(&self.inner.scrubber),
            )
        })
    }

    /// The base URL [`log_event`](Self::log_event) goes to, without a
    /// trailing slash (see [`ClientBuilder::base_url`]).
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The base URL every other operation goes to (the `/v1` routes, the
    /// resource handles, [`raw`](Self::raw)), without a trailing slash:
    /// [`ClientBuilder::DEFAULT_DATA_PLANE_URL`] unless
    /// [`ClientBuilder::base_url`] set one URL for all.
    pub fn data_plane_url(&self) -> &str {
        &self.inner.data_plane_url
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url)
            .field("data_plane_url", &self.inner.data_plane_url)
            .field("api_key", &"[redacted]")
            .field("project", &self.inner.project)
            .field("source", &self.inner.source)
            .field("timeout", &self.inner.timeout)
            .field("retry", &self.inner.retry)
            .field("max_body_bytes", &self.inner.max_body_bytes)
            .field("mask", &self.inner.mask.as_ref().map(|_| "set"))
            .field("sample_rate", &self.inner.sample.rate())
            .field("cut_oversize", &self.inner.cut_oversize)
            .finish_non_exhaustive()
    }
}
