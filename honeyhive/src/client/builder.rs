//! [`ClientBuilder`]: settings, the environment, and building the HTTP client.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use super::address::checked_base_url;
use super::linger::Lingering;
use super::raw::Retrying;
use super::scrub::Scrubber;
use super::spread::Spread;
use super::{Client, Inner};
use crate::mask::Mask;
use crate::sample::SampleRate;
use crate::{api, error::Error, retry::RetryPolicy};

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
/// assert_eq!(client.data_plane_url(), "https://api.dp1.us.honeyhive.ai");
/// # Ok::<(), honeyhive::Error>(())
/// ```
#[must_use = "a ClientBuilder does nothing until `build` is called"]
#[derive(Clone, Default)]
pub struct ClientBuilder {
    api_key: Option<SecretString>,
    base_url: Option<String>,
    /// The base URL came from `HH_API_URL`, so its errors name that.
    base_url_from_env: bool,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    project: Option<String>,
    source: Option<String>,
    allow_insecure_http: bool,
    retry: Option<RetryPolicy>,
    max_body_bytes: Option<usize>,
    /// May carry credentials (`http://user:pass@host`): never printed.
    proxy: Option<SecretString>,
    http2_prior_knowledge: bool,
    max_connections: Option<usize>,
    streams_per_connection: Option<usize>,
    mask: Option<Arc<dyn Mask>>,
    sample_rate: Option<(&'static str, f64)>,
    keep_oversize_whole: bool,
    /// PEM text of certificate authorities trusted beside the platform's.
    roots: Vec<Vec<u8>>,
    /// The two default hosts, `(classic, data plane)`, in the crate's own
    /// tests: loopback servers stand in for HoneyHive's.
    #[cfg(test)]
    pub(super) default_hosts: Option<(String, String)>,
}

impl ClientBuilder {
    /// Where [`Client::log_event`] (`POST /session/{session_id}/event`, the
    /// operation HoneyHive documents on this host) goes unless
    /// [`base_url`](Self::base_url) says otherwise.
    pub const DEFAULT_BASE_URL: &'static str = "https://api.honeyhive.ai";
    /// Where every other operation goes unless [`base_url`](Self::base_url)
    /// says otherwise: the host of HoneyHive's published data-plane spec
    /// (and of its Python SDK): the `/v1` routes, the resource handles
    /// ([`Client::datasets`] and the others) and every call of
    /// [`Client::raw`] but `log_event`.
    pub const DEFAULT_DATA_PLANE_URL: &'static str = "https://api.dp1.us.honeyhive.ai";
    /// How long one attempt may take, from sending to the end of the answer.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// How long opening a connection may take.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// How many HTTP/2 connections a client opens at most, by default.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 8;
    /// How many requests one HTTP/2 connection carries at once, by default,
    /// before another is opened: 100, the least RFC 9113 asks a server to
    /// allow.
    pub const DEFAULT_STREAMS_PER_CONNECTION: usize = 100;
    /// The `metadata` key under which an event cut to fit lists what was
    /// cut, as JSON pointers into the event (see
    /// [`cut_oversize`](Self::cut_oversize)).
    pub const CUT_METADATA_KEY: &'static str = crate::cut::CUT_KEY;
    /// The largest request body sent by default: 5 MiB of JSON.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

    /// A builder from the environment variables [`Client::from_env`] lists.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the variable whose value cannot be
    /// used (a timeout or retry count that is not a number, or any of them
    /// set but blank).
    pub fn from_env() -> Result<ClientBuilder, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// A builder from variables looked up by `lookup` instead of the process
    /// environment, with the names and meanings of [`Client::from_env`]:
    /// useful for layered configuration and for tests.
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
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
        // A variable set to nothing (`HH_SAMPLE_RATE=`, or spaces) is a
        // mistake more often than a wish for the default: refused, named.
        let present = |name: &str| -> Result<Option<String>, Error> {
            match lookup(name) {
                Some(value) if value.trim().is_empty() => Err(Error::invalid(
                    name,
                    format!(
                        "is set but blank; give it a value, or unset it (`unset {name}`) for \
                         the default"
                    ),
                )),
                other => Ok(other),
            }
        };
        let Some(key) = present("HH_API_KEY")? else {
            return Err(Error::invalid(
                "HH_API_KEY",
                "is not set; set it to your HoneyHive API key (Settings > API keys)",
            ));
        };
        let mut builder = ClientBuilder::default().api_key(key.trim());
        if let Some(url) = present("HH_API_URL")? {
            builder = builder.base_url(url.trim());
            builder.base_url_from_env = true;
        }
        if let Some(project) = present("HH_PROJECT")? {
            builder = builder.project(project);
        }
        if let Some(source) = present("HH_SOURCE")? {
            builder = builder.source(source);
        }
        if let Some(seconds) = present("HH_API_TIMEOUT")? {
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
        if let Some(rate) = present("HH_SAMPLE_RATE")? {
            let parsed = rate.trim().parse::<f64>().map_err(|_| {
                Error::invalid(
                    "HH_SAMPLE_RATE",
                    format!("is {rate:?}; set it to the fraction of sessions to keep, from 0 to 1, such as 0.1"),
                )
            })?;
            builder.sample_rate = Some(("HH_SAMPLE_RATE", parsed));
        }
        if let Some(retries) = present("HH_MAX_RETRIES")? {
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

    /// Where the API is, for every operation at once (`HH_API_URL` in
    /// [`from_env`](Self::from_env)): a self-hosted or dedicated deployment
    /// serves everything from one host. Unset, each operation goes to the
    /// host HoneyHive documents it on: [`log_event`](Client::log_event) to
    /// [`DEFAULT_BASE_URL`](Self::DEFAULT_BASE_URL), everything else to
    /// [`DEFAULT_DATA_PLANE_URL`](Self::DEFAULT_DATA_PLANE_URL). A trailing
    /// slash is fine. Plain `http://` is refused unless the host is loopback or
    /// [`allow_insecure_http`](Self::allow_insecure_http) is set, because
    /// the API key would cross the network in clear text.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self.base_url_from_env = false;
        self
    }

    /// Allows a plain `http://` base URL on a host that is not loopback.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// How long one attempt may take, from sending to the end of the
    /// answer: [`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT) unless set. The retry policy's deadline
    /// bounds the whole call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long opening a connection may take: [`DEFAULT_CONNECT_TIMEOUT`](Self::DEFAULT_CONNECT_TIMEOUT)
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

    /// The largest request body the client sends: [`DEFAULT_MAX_BODY_BYTES`](Self::DEFAULT_MAX_BODY_BYTES)
    /// unless set. A larger event has its largest strings cut until it
    /// fits (see [`cut_oversize`](Self::cut_oversize)); one that cannot
    /// fit is refused with [`Error::InvalidInput`] before anything is sent.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = Some(limit);
        self
    }

    /// Sets the [`Mask`] every event passes through before it is
    /// serialized (a [`Redactor`](crate::Redactor), or a closure); see
    /// [`Mask`] for where it runs and what happens when it panics. The API
    /// key is redacted from events whatever the mask.
    pub fn mask(mut self, mask: impl Mask) -> Self {
        self.mask = Some(Arc::new(mask));
        self
    }

    /// Keeps this fraction of sessions (0 to 1; 1 unless set or
    /// `HH_SAMPLE_RATE` says otherwise): events of the other sessions are
    /// not sent, by this client or a [`Logger`](crate::Logger) on it, and
    /// are counted ([`Logged::sampled_out`](crate::Logged::sampled_out),
    /// [`LoggerStats::events_sampled_out`](crate::LoggerStats::events_sampled_out)),
    /// never dead letters. The decision is made from the session id alone,
    /// the same in every process, so a trace spread over services stays
    /// whole: a session is kept when a fixed 64-bit hash of its id
    /// (FNV-1a, then MurmurHash3's finalizer), as a fraction of 2^64, is
    /// below the rate (the rule of OpenTelemetry's trace-id ratio sampler,
    /// on the session id).
    ///
    /// A rate outside 0–1 is refused by [`build`](Self::build), naming
    /// `sample_rate`.
    pub fn sample_rate(mut self, rate: f64) -> Self {
        self.sample_rate = Some(("sample_rate", rate));
        self
    }

    /// Whether an event over [`max_body_bytes`](Self::max_body_bytes) has
    /// its largest strings cut to fit (`true`, the default) or is refused
    /// whole (`false`). Cut: the longest string values of `inputs`,
    /// `outputs`, `metadata` and `config`, of every event of a tree, are
    /// shortened (on a character boundary, keeping at least their first
    /// 256 bytes) and end in `[...N bytes cut]`; each cut event's
    /// `metadata` lists what was cut, as JSON pointers, under
    /// `honeyhive.cut`. An event that still cannot fit (its bulk is not in
    /// such strings) is refused, or from a Logger a dead letter, saying
    /// why.
    pub fn cut_oversize(mut self, cut: bool) -> Self {
        self.keep_oversize_whole = !cut;
        self
    }

    /// Trusts the certificate authorities in `pem` (one or more
    /// `-----BEGIN CERTIFICATE-----` blocks) beside the platform's roots:
    /// for a self-hosted HoneyHive, or a proxy, whose certificate your own
    /// authority signed. The platform's roots stay trusted. (On Linux the
    /// platform's roots also come from `SSL_CERT_FILE` and `SSL_CERT_DIR`
    /// when they are set.)
    ///
    /// # Errors
    /// [`build`](Self::build) refuses text with no certificate in it, or
    /// one that cannot be used, as [`Error::InvalidInput`] on
    /// `root_certificate_pem`.
    ///
    /// ```no_run
    /// let pem = std::fs::read("/etc/ssl/our-ca.pem")?;
    /// let client = honeyhive::Client::builder()
    ///     .api_key("hh-...")
    ///     .base_url("https://honeyhive.internal")
    ///     .root_certificate_pem(pem)
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.roots.push(pem.into());
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

    /// Speaks HTTP/2 from the first byte, without negotiating: cleartext
    /// HTTP/2 (h2c) for `http://` endpoints such as a local proxy, a
    /// collector or a test server, so that many requests in flight share
    /// one connection. Over `https://` HTTP/2 is negotiated anyway (ALPN,
    /// falling back to HTTP/1.1), so this is only for servers known to
    /// speak it: one that does not fails every request.
    ///
    /// ```
    /// let client = honeyhive::Client::builder()
    ///     .api_key("hh-...")
    ///     .base_url("http://127.0.0.1:4318")
    ///     .http2_prior_knowledge()
    ///     .build()?;
    /// # Ok::<(), honeyhive::Error>(())
    /// ```
    pub fn http2_prior_knowledge(mut self) -> Self {
        self.http2_prior_knowledge = true;
        self
    }

    /// How many HTTP/2 connections the client may open to the API:
    /// [`DEFAULT_MAX_CONNECTIONS`](Self::DEFAULT_MAX_CONNECTIONS) unless
    /// set. A connection carries up to
    /// [`streams_per_connection`](Self::streams_per_connection) requests at
    /// once; the next connection opens only when every open one is that
    /// busy, and past the last one requests go to the least busy. Over
    /// HTTP/1.1 every request in flight has a connection of its own anyway.
    ///
    /// ```
    /// let client = honeyhive::Client::builder()
    ///     .api_key("hh-...")
    ///     .max_connections(4)
    ///     .streams_per_connection(50)
    ///     .build()?;
    /// # Ok::<(), honeyhive::Error>(())
    /// ```
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = Some(connections);
        self
    }

    /// How many requests one HTTP/2 connection carries at once before the
    /// client opens another:
    /// [`DEFAULT_STREAMS_PER_CONNECTION`](Self::DEFAULT_STREAMS_PER_CONNECTION)
    /// unless set, the least a server should allow (RFC 9113 §6.5.2). Set
    /// it to your server's `SETTINGS_MAX_CONCURRENT_STREAMS` when it is
    /// lower. See [`max_connections`](Self::max_connections).
    pub fn streams_per_connection(mut self, streams: usize) -> Self {
        self.streams_per_connection = Some(streams);
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
    /// # Errors
    /// [`Error::InvalidInput`] naming the setting when the API key is
    /// missing or empty, or the base URL is not a usable `https://` URL
    /// (`http://` is taken for loopback only).
    pub fn build(self) -> Result<Client, Error> {
        let api_key = self.api_key.ok_or_else(|| {
            Error::invalid_fixed_by("api_key", "is not set", crate::error::Fix::ApiKey)
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

        #[cfg(not(test))]
        let defaults = (Self::DEFAULT_BASE_URL, Self::DEFAULT_DATA_PLANE_URL);
        #[cfg(test)]
        let defaults = match &self.default_hosts {
            Some((classic, data_plane)) => (classic.as_str(), data_plane.as_str()),
            None => (Self::DEFAULT_BASE_URL, Self::DEFAULT_DATA_PLANE_URL),
        };
        let (base, data_plane) = match self.base_url.as_deref() {
            Some(url) => {
                let field = if self.base_url_from_env {
                    "HH_API_URL"
                } else {
                    "base_url"
                };
                let base = checked_base_url(url, self.allow_insecure_http, field)?;
                let data_plane = checked_base_url(url, self.allow_insecure_http, field)?;
                (base, data_plane)
            }
            None => (
                checked_base_url(defaults.0, self.allow_insecure_http, "base_url")?,
                checked_base_url(defaults.1, self.allow_insecure_http, "base_url")?,
            ),
        };
        let timeout = self.timeout.unwrap_or(Self::DEFAULT_TIMEOUT);
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

        for (field, value) in [
            ("max_connections", self.max_connections),
            ("streams_per_connection", self.streams_per_connection),
        ] {
            if value == Some(0) {
                return Err(Error::invalid(
                    field,
                    "is zero; no request could be sent. Use at least 1",
                ));
            }
        }

        let sample = match self.sample_rate {
            Some((setting, rate)) => SampleRate::new(setting, rate)?,
            None => SampleRate::ALL,
        };

        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, auth);
        let proxy = match &self.proxy {
            None => None,
            Some(proxy) => Some(reqwest::Proxy::all(proxy.expose_secret()).map_err(|_| {
                Error::invalid(
                    "proxy",
                    "is not a proxy URL; use one such as http://host:3128 (credentials as http://user:pass@host:3128)",
                )
            })?),
        };
        let settings = HttpSettings {
            proxy,
            http2_prior_knowledge: self.http2_prior_knowledge,
            tls: tls_config(&self.roots)?,
            headers,
            timeout,
            connect_timeout: self
                .connect_timeout
                .unwrap_or(Self::DEFAULT_CONNECT_TIMEOUT),
        };
        // reqwest connects directly there too, so the same way for large
        // bodies (`linger.rs`).
        let direct = (settings.proxy.is_none() && !settings.http2_prior_knowledge).then(|| {
            let mut headers = settings.headers.clone();
            headers.insert(
                header::USER_AGENT,
                header::HeaderValue::from_static(Client::USER_AGENT),
            );
            Lingering::new(settings.tls.clone(), settings.connect_timeout, headers)
        });
        let http = settings.client().map_err(|e| Error::Transport {
            host: base.host.clone(),
            problem: "could not set up the HTTP client".to_owned(),
            attempts: 0,
            source: Some(Box::new(e)),
        })?;
        let spread = Spread::new(
            http.clone(),
            self.max_connections
                .unwrap_or(Self::DEFAULT_MAX_CONNECTIONS),
            self.streams_per_connection
                .unwrap_or(Self::DEFAULT_STREAMS_PER_CONNECTION),
            Box::new(move || settings.client().ok()),
        );
        let retry = self.retry.unwrap_or_default();
        let scrubber = Scrubber::new(api_key);
        let hooks = api::Hooks::new(Retrying {
            retry: retry.clone(),
            timeout,
            scrubber: scrubber.clone(),
            hosts: (data_plane.url != base.url).then(|| (data_plane.url.clone(), base.url.clone())),
        });
        let raw = api::Client::new_with_client(&data_plane.url, http.clone(), hooks);

        Ok(Client {
            inner: Arc::new(Inner {
                http: spread,
                raw,
                base_url: base.url,
                base: base.parsed,
                data_plane_url: data_plane.url,
                data_plane: data_plane.parsed,
                scrubber,
                direct,
                project: self.project,
                source: self.source,
                timeout,
                retry,
                max_body_bytes: self.max_body_bytes.unwrap_or(Self::DEFAULT_MAX_BODY_BYTES),
                mask: self.mask,
                sample,
                cut_oversize: !self.keep_oversize_whole,
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
            .field("http2_prior_knowledge", &self.http2_prior_knowledge)
            .field("max_connections", &self.max_connections)
            .field("streams_per_connection", &self.streams_per_connection)
            .field("mask", &self.mask.as_ref().map(|_| "set"))
            .field("sample_rate", &self.sample_rate.map(|(_, rate)| rate))
            .field("cut_oversize", &!self.keep_oversize_whole)
            .field("root_certificates", &self.roots.len())
            .finish()
    }
}

/// What every reqwest client of a [`Client`] is made with.
struct HttpSettings {
    proxy: Option<reqwest::Proxy>,
    http2_prior_knowledge: bool,
    tls: rustls::ClientConfig,
    headers: HeaderMap,
    timeout: Duration,
    connect_timeout: Duration,
}

impl HttpSettings {
    fn client(&self) -> Result<reqwest::Client, reqwest::Error> {
        let mut http = reqwest::Client::builder().no_proxy();
        if let Some(proxy) = &self.proxy {
            http = http.proxy(proxy.clone());
        }
        if self.http2_prior_knowledge {
            http = http.http2_prior_knowledge();
        }
        http.use_preconfigured_tls(self.tls.clone())
            // A 3xx is an answer: followed, it would send the body (and
            // the key) again, elsewhere, and only where reqwest sends
            // (a large body goes on the crate's own connections, which
            // follow none either).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(Client::USER_AGENT)
            .default_headers(self.headers.clone())
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .build()
    }
}

/// rustls with the ring provider, the platform's certificate roots, and
/// ALPN offering HTTP/2 then HTTP/1.1.
/// Built here rather than through reqwest's defaults so that no process-wide
/// crypto provider has to be installed.
fn tls_config(roots: &[Vec<u8>]) -> Result<rustls::ClientConfig, Error> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use rustls_platform_verifier::BuilderVerifierExt;

    let mut extra = Vec::new();
    for pem in roots {
        let found = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .ok()
            .filter(|found| !found.is_empty())
            .ok_or_else(|| {
                Error::invalid(
                    "root_certificate_pem",
                    "holds no PEM certificate; give the text of a file with \
                     -----BEGIN CERTIFICATE----- blocks",
                )
            })?;
        extra.extend(found);
    }

    // rustls 0.23.48 deprecates ring's provider because ring has no
    // post-quantum key exchange; aws-lc-rs has one but builds a C library
    // in every user's first build. Kept knowingly, and said here once, so
    // that a user's build (which resolves the newest rustls) stays quiet.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions();
    let verified = if extra.is_empty() {
        versions.and_then(|builder| builder.with_platform_verifier())
    } else {
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider)
            .map_err(|e| Error::invalid("root_certificate_pem", format!("cannot be used: {e}")))?;
        versions.map(|builder| {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        })
    };
    verified
        .map(|builder| {
            let mut config = builder.with_no_client_auth();
            // HTTP/2 when the server offers it, HTTP/1.1 otherwise.
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            config
        })
        .map_err(|e| Error::Transport {
            host: String::new(),
            problem: "could not set up TLS".to_owned(),
            attempts: 0,
            source: Some(Box::new(e)),
        })
}
