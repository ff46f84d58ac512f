//! Rust client for the [HoneyHive](https://honeyhive.ai) LLM-observability API.
//!
//! HoneyHive records *events*, the spans of an LLM application (model calls,
//! tool calls, chains and sessions), grouped in sessions. This crate logs
//! them: build an [`Event`], hand it to a [`Client`], and get back the id it
//! was recorded under.
//!
//! ```no_run
//! use std::time::{Duration, SystemTime};
//! use honeyhive::{Client, Event, SessionId};
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), honeyhive::Error> {
//! let client = Client::from_env()?; // HH_API_KEY, HH_PROJECT, ...
//! let session = client.session(SessionId::new());
//! session.log(Event::session("support-chat").inputs(json!({"user": "ada"}))).await?;
//! let logged = session
//!     .log(
//!         Event::model("gpt-4o")
//!             .inputs(json!({"messages": [{"role": "user", "content": "Where is my order?"}]}))
//!             .outputs(json!({"content": "It ships today."}))
//!             .start_time(SystemTime::now())
//!             .duration(Duration::from_millis(820))
//!             .child(Event::tool("order-lookup").outputs(json!({"status": "shipped"}))),
//!     )
//!     .await?;
//! println!("recorded as {}", logged.event_id);
//! # Ok(()) }
//! ```
//!
//! The repository's README has a runnable quickstart
//! (`cargo run --example quickstart`) that needs no API key: it talks to
//! `testing::MockHoneyHive` on loopback.
//!
//! # What is where
//! - [`Client`], [`ClientBuilder`]: configuration (also from `HH_*`
//!   environment variables), [`Client::log_event`]
//!   (`POST /session/{session_id}/event`), and HoneyHive's `/v1` routes:
//!   [`Client::log_batch`], [`Client::start_session`] ([`SessionStart`])
//!   and [`Client::update_event`] ([`EventUpdate`]).
//! - [`Event`], [`EventType`]: the event builder.
//! - [`SessionId`], [`Session`]: session ids and a per-session handle.
//! - [`Logger`]: background logging that never blocks the application,
//!   with bounded queues, flush/shutdown reports and dead letters.
//! - [`Mask`], [`Redactor`], [`FreeForm`]: what of an event leaves the
//!   process ([`ClientBuilder::mask`]); with
//!   [`ClientBuilder::sample_rate`] and [`ClientBuilder::cut_oversize`].
//! - [`Client::runs`] ([`Runs`]), [`Client::datasets`] ([`Datasets`]),
//!   [`Client::datapoints`] ([`Datapoints`]), [`Client::events`]
//!   ([`Events`]): handles for the resources, with input checked before
//!   sending, the generated types as answers, [`Error::NotFound`] naming
//!   what is missing, and paged lists as [`Paged`] streams. Each method
//!   says what it sends and whether it is retried (by the table in the
//!   README's [raw API section](https://github.com/honeyhive-rs/honeyhive-rs#the-raw-api)).
//! - [`Error`]: every failure, typed.
//! - [`RetryPolicy`]: what is retried and how long to wait.
//! - [`api`]: the client and types generated from the OpenAPI spec, for
//!   what this crate does not wrap.
//! - `validate` (feature `validate`): JSON checked against the spec's
//!   schemas, offline.
//! - `testing` (feature `testing`): a mock of the API that validates every
//!   request against the spec.
//! - `tracing` (feature `tracing`): `tracing::HoneyHiveLayer`, span trees
//!   in, event trees out through a [`Logger`].
//!
//! # Feature flags
//! - `validate` (off by default): the `validate` module,
//!   `validate::event` and `validate::request_body`, which check JSON
//!   against the embedded OpenAPI spec's schemas and name each problem.
//!   Pulls in jsonschema.
//! - `testing` (off by default; turns on `validate`): the `testing` module,
//!   with `testing::MockHoneyHive`, a loopback mock of the API that
//!   validates every request against the embedded OpenAPI spec. Pulls in
//!   httpmock; turn it on in `[dev-dependencies]` (the crate is not on
//!   crates.io yet):
//!
//!   ```toml
//!   [dev-dependencies]
//!   honeyhive = { git = "https://github.com/honeyhive-rs/honeyhive-rs", features = ["testing"] }
//!   ```
//!
//! - `tracing` (off by default): the `tracing` module, with
//!   `tracing::HoneyHiveLayer`, a `tracing-subscriber` layer that logs each
//!   tree of spans as one event tree. Pulls in `tracing-subscriber`
//!   (registry only).
//!
//! TLS is always rustls with the ring provider and the platform's
//! certificate roots: there is no feature for it.
//!
//! # Quickstart
//! The [README's quickstart](https://github.com/honeyhive-rs/honeyhive-rs#set-up-a-fresh-machine-no-api-key-no-network)
//! runs `cargo run --example quickstart`, which logs a session to the mock
//! with no key and no network.

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod client;
mod cut;
mod dead_letter;
mod error;
mod event;
pub mod experiment;
mod fields;
mod flat;
mod footprint;
mod logger;
mod mask;
mod millis;
mod resources;
mod retry;
mod sample;
mod session;
mod session_start;
mod status;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub mod tracing;
mod tree;
mod update;
#[cfg(feature = "validate")]
#[cfg_attr(docsrs, doc(cfg(feature = "validate")))]
pub mod validate;

/// The client and types generated by progenitor from the OpenAPI spec: the
/// raw escape hatch.
///
/// Prefer [`Client::raw`] over `api::Client::new`: it shares the wrapped
/// client's connection pool, TLS setup and credentials, while
/// `api::Client::new` builds a bare client that sends no API key.
pub mod api {
    pub use honeyhive_gen::{
        ByteStream, Client, ClientInfo, Error, Hooks, ResponseValue, builder, prelude, types,
    };
}

pub use client::{Client, ClientBuilder, Logged, LoggedBatch, Session, StartedSession, Updated};
pub use dead_letter::{DeadLetter, EventLine, Undelivered};
pub use error::Error;
pub use event::{Event, EventType, UnknownEventType};
pub use logger::{
    JsonlDeadLetters, LogError, Logger, LoggerConfig, LoggerReport, LoggerStats, Outcome, Outcomes,
    Route, Sent, ShutdownGuard,
};
pub use mask::{FreeForm, Mask, Redactor};
/// An HTTP status code, as [`Error::status`] gives it (the `http` crate's, which
/// reqwest and hyper use).
pub use reqwest::StatusCode;
pub use resources::{
    Aggregate, DatapointBatch, DatapointUpdate, Datapoints, DatasetUpdate, Datasets, EventSearch,
    Events, NewDatapoint, NewRun, Paged, RunQuery, RunStatus, RunUpdate, Runs,
};
pub use retry::RetryPolicy;
pub use session::SessionId;
pub use session_start::SessionStart;
pub use update::EventUpdate;

/// The README's Rust examples, compiled and run as doctests (they use both
/// features).
#[cfg(all(doctest, feature = "testing", feature = "tracing"))]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
