//! [`Client`] and [`ClientBuilder`]: configuration, and logging one event.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use std::time::SystemTime;
use tokio::time::Instant;

use crate::retry::parse_retry_after;
use crate::{Error, Event, RetryPolicy, Session, SessionId, api};

/// The API the client talks to unless told otherwise.
pub const DEFAULT_BASE_URL: &str = "https://api.honeyhive.ai";
/// How long one attempt may take, from sending to the end of the answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening a connection may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The `User-Agent` every request carries.
pub const USER_AGENT: &str = concat!("honeyhive-rs/", env!("CARGO_PKG_VERSION"));

/// The largest request body sent by default: 5 MiB of JSON.
pub const DEFAULT_MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// The least time worth starting a retry with, before the call's deadline.
const MIN_ATTEMPT: Duration = Duration::from_millis(10);

/// The most of an answer's body the client reads. The documented answer is a
/// few dozen bytes; anything longer is cut here rather than held in memory.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The most of an answer's body an error keeps, for diagnosis.
const MAX_ERROR_BODY_CHARS: usize = 2048;

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
    http: reqwest::Client,
    raw: api::Client,
    base_url: String,
    api_key: SecretString,
    project: Option<String>,
    source: Option<String>,
    timeout: Duration,
    retry: RetryPolicy,
    max_body_bytes: usize,
}

/// What the API answered to a logged event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Logged {
    /// The id the event was recorded under.
    pub event_id: String,
    /// How many requests it took (1 when the first one succeeded).
    pub attempts: u32,
}

impl Client {
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
    /// | `HH_API_URL` | base URL | [`DEFAULT_BASE_URL`] |
    /// | `HH_PROJECT` | default project of events | none |
    /// | `HH_SOURCE` | default source of events | none |
    /// | `HH_API_TIMEOUT` | per-attempt timeout in seconds | [`DEFAULT_TIMEOUT`] |
    /// | `HH_MAX_RETRIES` | retries after the first attempt | 4 ([`RetryPolicy::DEFAULT_MAX_ATTEMPTS`] − 1) |
    ///
    /// ```no_run
    /// let client = honeyhive::Client::from_env()?;
    /// # Ok::<(), honeyhive::Error>(())
    /// ```
    pub fn from_env() -> Result<Client, Error> {
        ClientBuilder::from_env()?.build()
    }

    /// Logs `event` in the session `session_id`.
    ///
    /// Before sending, the client gives the event (and each child without
    /// one) a new UUIDv4 `event_id` if it has none, and the client's default
    /// project and source if it has none. Nothing is sent when the input is
    /// invalid.
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
        let prepared = self.prepare(session_id.into(), event)?;
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

    /// The base URL requests go to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

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

/// Turns an answer into the logged id or a typed error. Pure, so that any
/// status and any bytes can be thrown at it in tests.
fn decode_answer(
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
    cut: bool,
    event_id: &str,
    scrub: impl Fn(&[u8]) -> String,
) -> Result<String, Error> {
    match status {
        200 => {
            let decode_error = |problem: String| Error::Decode {
                status,
                problem,
                body: scrub(body),
            };
            if cut {
                return Err(decode_error(format!(
                    "the answer is longer than {MAX_ANSWER_BYTES} bytes"
                )));
            }
            if let Some(content_type) = content_type {
                let essence = content_type
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                if essence != "application/json" && !essence.ends_with("+json") {
                    return Err(decode_error(format!(
                        "the answer's Content-Type is {content_type:?}, not application/json"
                    )));
                }
            }
            let answer: api::types::LogEventResponse =
                serde_json::from_slice(body).map_err(|e| {
                    decode_error(format!(
                        "expected {{\"event_id\": string, \"success\": bool}}: {e}"
                    ))
                })?;
            if answer.success {
                Ok(answer.event_id)
            } else {
                Err(Error::NotRecorded {
                    event_id: event_id.to_owned(),
                })
            }
        }
        401 | 403 => Err(Error::Unauthorized {
            status,
            body: scrub(body),
        }),
        429 => Err(Error::RateLimited { body: scrub(body) }),
        _ => Err(Error::Api {
            status,
            body: scrub(body),
        }),
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

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url)
            .field("api_key", &"[redacted]")
            .field("project", &self.inner.project)
            .field("source", &self.inner.source)
            .field("timeout", &self.inner.timeout)
            .field("retry", &self.inner.retry)
            .field("max_body_bytes", &self.inner.max_body_bytes)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`]. Made by [`Client::builder`] or
/// [`ClientBuilder::from_env`].
///
/// ```
/// use std::time::Duration;
///
/// let client = honeyhive::Client::builder()
///     .api_key("hh-...")
///     .project("support-bot")
///     .source("production")
///     .timeout(Duration::from_secs(10))
///     .build()?;
/// assert_eq!(client.base_url(), "https://api.honeyhive.ai");
/// # Ok::<(), honeyhive::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct ClientBuilder {
    api_key: Option<SecretString>,
    base_url: Option<String>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    project: Option<String>,
    source: Option<String>,
    allow_insecure_http: bool,
    retry: Option<RetryPolicy>,
    max_body_bytes: Option<usize>,
    /// May carry credentials (`http://user:pass@host`): never printed.
    proxy: Option<SecretString>,
}

impl ClientBuilder {
    /// A builder from the environment variables [`Client::from_env`] lists.
    pub fn from_env() -> Result<ClientBuilder, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// A builder from variables looked up by `lookup` instead of the process
    /// environment, with the names and meanings of [`Client::from_env`]:
    /// useful for layered configuration and for tests.
    ///
    /// ```
    /// use std::collections::HashMap;
    ///
    /// let vars = HashMap::from([("HH_API_KEY", "hh-..."), ("HH_API_TIMEOUT", "2.5")]);
    /// let client = honeyhive::ClientBuilder::from_lookup(|name| vars.get(name).map(|v| v.to_string()))?
    ///     .build()?;
    /// # Ok::<(), honeyhive::Error>(())
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ClientBuilder, Error> {
        let present = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let Some(key) = present("HH_API_KEY") else {
            return Err(Error::invalid(
                "HH_API_KEY",
                "is not set; set it to your HoneyHive API key (Settings > API keys)",
            ));
        };
        let mut builder = ClientBuilder::default().api_key(key.trim());
        if let Some(url) = present("HH_API_URL") {
            builder = builder.base_url(url.trim());
        }
        if let Some(project) = present("HH_PROJECT") {
            builder = builder.project(project);
        }
        if let Some(source) = present("HH_SOURCE") {
            builder = builder.source(source);
        }
        if let Some(seconds) = present("HH_API_TIMEOUT") {
            let timeout = seconds
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| {
                    Error::invalid(
                        "HH_API_TIMEOUT",
                        format!(
                            "is {seconds:?}; set it to a positive number of seconds, such as 30"
                        ),
                    )
                })?;
            builder = builder.timeout(timeout);
        }
        if let Some(retries) = present("HH_MAX_RETRIES") {
            let retries = retries.trim().parse::<u32>().map_err(|_| {
                Error::invalid(
                    "HH_MAX_RETRIES",
                    format!("is {retries:?}; set it to a whole number of retries, such as 4 (0 for none)"),
                )
            })?;
            builder = builder
                .retry_policy(RetryPolicy::default().max_attempts(retries.saturating_add(1)));
        }
        Ok(builder)
    }

    /// The API key, sent as `Authorization: Bearer <key>`. Required.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    /// Where the API is: [`DEFAULT_BASE_URL`] unless set. A trailing slash is
    /// fine. Plain `http://` is refused unless the host is loopback or
    /// [`allow_insecure_http`](Self::allow_insecure_http) is set, because
    /// the API key would cross the network in clear text.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Allows a plain `http://` base URL on a host that is not loopback.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// How long one attempt may take, from sending to the end of the
    /// answer: [`DEFAULT_TIMEOUT`] unless set. The retry policy's deadline
    /// bounds the whole call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long opening a connection may take: [`DEFAULT_CONNECT_TIMEOUT`]
    /// unless set.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How failed requests are retried: [`RetryPolicy::default`] unless set;
    /// [`RetryPolicy::none`] turns retries off.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// The largest request body the client sends: [`DEFAULT_MAX_BODY_BYTES`]
    /// unless set. A larger event is refused with [`Error::InvalidInput`]
    /// before anything is sent.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = Some(limit);
        self
    }

    /// Sends every request through this HTTP(S) proxy, such as
    /// `http://proxy.internal:3128`; credentials go in the URL
    /// (`http://user:pass@host:port`). Without it, no proxy is used: the
    /// `HTTP_PROXY` family of variables is not read.
    ///
    /// ```
    /// let client = honeyhive::Client::builder()
    ///     .api_key("hh-...")
    ///     .proxy("http://proxy.internal:3128")
    ///     .build()?;
    /// # Ok::<(), honeyhive::Error>(())
    /// ```
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = Some(SecretString::from(url.into()));
        self
    }

    /// The project given to events that name none.
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// The source (such as `production`) given to events that name none.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Checks the settings and builds the client.
    ///
    /// Fails with [`Error::InvalidInput`] naming the setting when the API key
    /// is missing or empty, or the base URL is not a usable `https://` URL.
    pub fn build(self) -> Result<Client, Error> {
        let api_key = self.api_key.ok_or_else(|| {
            Error::invalid(
                "api_key",
                "is not set; call ClientBuilder::api_key or set HH_API_KEY and use Client::from_env",
            )
        })?;
        let key = api_key.expose_secret();
        if key.trim().is_empty() {
            return Err(Error::invalid(
                "api_key",
                "is empty; pass your HoneyHive API key",
            ));
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
            Error::invalid(
                "api_key",
                "contains characters that cannot go in an HTTP header (such as a newline); \
                 check that it was copied whole",
            )
        })?;
        auth.set_sensitive(true);

        let base_url = checked_base_url(
            self.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
            self.allow_insecure_http,
        )?;
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        for (field, value) in [
            ("timeout", Some(timeout)),
            ("connect_timeout", self.connect_timeout),
        ] {
            if value == Some(Duration::ZERO) {
                return Err(Error::invalid(
                    field,
                    "is zero; every request would time out at once",
                ));
            }
        }

        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, auth);
        let mut http = reqwest::Client::builder().no_proxy();
        if let Some(proxy) = &self.proxy {
            let proxy = reqwest::Proxy::all(proxy.expose_secret()).map_err(|_| {
                Error::invalid(
                    "proxy",
                    "is not a proxy URL; use one such as http://host:3128 (credentials as http://user:pass@host:3128)",
                )
            })?;
            http = http.proxy(proxy);
        }
        let http = http
            .use_preconfigured_tls(tls_config()?)
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
            .build()
            .map_err(|e| Error::Transport {
                message: format!("could not set up the HTTP client: {e}"),
                source: Some(Box::new(e)),
            })?;
        let raw = api::Client::new_with_client(&base_url, http.clone());

        Ok(Client {
            inner: Arc::new(Inner {
                http,
                raw,
                base_url,
                api_key,
                project: self.project,
                source: self.source,
                timeout,
                retry: self.retry.unwrap_or_default(),
                max_body_bytes: self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            }),
        })
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("project", &self.project)
            .field("source", &self.source)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("retry", &self.retry)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("proxy", &self.proxy.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// rustls with the ring provider and the platform's certificate roots.
/// Built here rather than through reqwest's defaults so that no process-wide
/// crypto provider has to be installed.
fn tls_config() -> Result<rustls::ClientConfig, Error> {
    use rustls_platform_verifier::BuilderVerifierExt;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_platform_verifier())
        .map(|builder| builder.with_no_client_auth())
        .map_err(|e| Error::Transport {
            message: format!("could not set up TLS: {e}"),
            source: Some(Box::new(e)),
        })
}

fn checked_base_url(raw: &str, allow_insecure_http: bool) -> Result<String, Error> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| {
        Error::invalid(
            "base_url",
            format!("{raw:?} is not a URL ({e}); use a full URL such as {DEFAULT_BASE_URL}"),
        )
    })?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::invalid(
            "base_url",
            format!("{raw:?} has a query or fragment; give only scheme, host, port and path"),
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_http || is_loopback(&url) => {}
        "http" => {
            return Err(Error::invalid(
                "base_url",
                format!(
                    "{raw:?} is plain http on a host that is not loopback, so the API key would \
                     travel unencrypted; use https://, or ClientBuilder::allow_insecure_http(true) \
                     if you mean it"
                ),
            ));
        }
        other => {
            return Err(Error::invalid(
                "base_url",
                format!("{raw:?} has scheme {other:?}; use https://"),
            ));
        }
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            let result = decode_answer(status, content_type.as_deref(), &body, cut, "sent-id", lossy);
            match result {
                Ok(id) => {
                    prop_assert_eq!(status, 200);
                    prop_assert!(!cut);
                    prop_assert_eq!(id, "e");
                }
                Err(Error::NotRecorded { event_id }) => prop_assert_eq!(event_id, "sent-id"),
                Err(e) => {
                    prop_assert_eq!(e.status(), Some(status));
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }
    }

    #[test]
    fn base_urls_are_checked_and_trimmed() {
        assert_eq!(
            checked_base_url("https://api.honeyhive.ai/", false).unwrap(),
            "https://api.honeyhive.ai"
        );
        assert_eq!(
            checked_base_url("http://127.0.0.1:4010", false).unwrap(),
            "http://127.0.0.1:4010"
        );
        assert_eq!(
            checked_base_url("http://[::1]:80/v1/", false).unwrap(),
            "http://[::1]/v1"
        );
        assert!(checked_base_url("http://localhost:9", false).is_ok());
        let err = checked_base_url("http://api.example.com", false).unwrap_err();
        assert!(err.to_string().contains("allow_insecure_http"), "{err}");
        assert!(checked_base_url("http://api.example.com", true).is_ok());
        assert!(checked_base_url("ftp://x", true).is_err());
        assert!(checked_base_url("not a url", true).is_err());
    }

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
