//! [`HoneyHiveLayer`]: `tracing` spans in, HoneyHive event trees out
//! (feature `tracing`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), honeyhive::Error> {
//! use std::time::Duration;
//! use honeyhive::{Logger, LoggerConfig, testing::MockHoneyHive, tracing::HoneyHiveLayer};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let mock = MockHoneyHive::start_async().await;
//! let logger = Logger::new(&mock.client()?, LoggerConfig::default())?;
//! let subscriber = tracing_subscriber::registry().with(HoneyHiveLayer::new(logger.clone()));
//! tracing::subscriber::with_default(subscriber, || {
//!     let answer = tracing::info_span!("answer", honeyhive.event_type = "chain");
//!     let _in = answer.enter();
//!     tracing::info_span!("gpt-4o", gen_ai.operation.name = "chat", gen_ai.usage.input_tokens = 12)
//!         .in_scope(|| {});
//! });
//! logger.shutdown(Duration::from_secs(5)).await;
//! let root = &mock.events()[0].event;
//! assert_eq!(root["event_type"], "chain");
//! assert_eq!(root["children"][0]["event_type"], "model");
//! assert_eq!(root["children"][0]["metrics"]["prompt_tokens"], 12);
//! # Ok(()) }
//! ```
//!
//! A program without a tokio runtime makes its Logger with
//! [`Logger::on_own_thread`] and ends with
//! [`Logger::shutdown_blocking`]; nothing else changes.
//!
//! Install it in the global default subscriber (`.init()`), as an
//! application does. With a thread-local default (`set_default`,
//! `with_default`), a span whose last handle is dropped on another thread
//! does not close its parent: `tracing-subscriber`'s registry tells the
//! parent through the *current* default subscriber.
//!
//! # Shape
//! Every span becomes an [`Event`]; a span's children become its
//! `children`. When a root span closes (`tracing` keeps a parent open until
//! its children close, so its tree is complete then), the whole tree is
//! logged through the [`Logger`] as one event. A span whose parent was
//! filtered out (by a per-layer filter) attaches to the nearest recorded
//! ancestor.
//!
//! # Fields
//! Read when the span is created and when `span.record(..)` is called:
//!
//! | span field | goes to |
//! |---|---|
//! | `honeyhive.session_id` (on the root) | the session the tree is logged into |
//! | `honeyhive.event_type` | `event_type` (`model`, `tool`, `chain`, `session`); `session` makes the span a [session scope](#sessions) |
//! | `honeyhive.scope_only` | on a session scope, `true`: the scope sends no event of its own |
//! | `honeyhive.event_name` | `event_name` (else as below, else the span's name) |
//! | `inputs.*`, `outputs.*`, `config.*`, `metadata.*`, `metrics.*`, `feedback.*`, `user_properties.*` | that object, under the rest of the key |
//! | `error` | `error` |
//! | OpenTelemetry GenAI, OpenInference and Traceloop names | as [GenAI fields](#genai-fields) says |
//! | anything else | `metadata`, under its full name |
//!
//! Integers, floats, booleans and strings keep their JSON type; values
//! recorded with `%` or `?` are strings. Without a type, a span with
//! children is a `chain` and a leaf a `tool`. An `ERROR`-level `tracing`
//! event inside a span sets that span's `error` (its message).
//!
//! # GenAI fields
//! Frameworks (rig, for one) record OpenTelemetry's GenAI semantic
//! conventions on their spans. The layer maps the names in the table
//! below, following HoneyHive's *Framework Attribute Mapping* page
//! (docs.honeyhive.ai, v2 SDK reference, `semconv-alignment`), which pins
//! GenAI semantic conventions **v1.36**, with the key names of its
//! *Semantic Convention Reference* and *Aggregation Logic* pages (the
//! token metrics it sums into a session). Of the OpenInference and
//! Traceloop names that page lists, only those in the table are mapped;
//! the others (OpenInference's `input.value`, `output.value`,
//! `llm.input_messages.*`…) stay in `metadata` under their own names, or
//! go where a [`FieldMap`] renames them. Message and tool fields that
//! hold a JSON object, array or string as text become that JSON; other
//! text (`42` and `true` included) stays text.
//!
//! | span field (semconv 1.36; OpenInference, Traceloop) | goes to |
//! |---|---|
//! | `gen_ai.operation.name` | `event_type`: `chat`, `text_completion`, `generate_content`, `embeddings` → `model`; `execute_tool` → `tool`; `invoke_agent`, `create_agent` → `chain` (an explicit `honeyhive.event_type` wins); kept in `metadata` |
//! | `openinference.span.kind`, `traceloop.span.kind` | `event_type` likewise (`LLM`/`llm` → `model`…); `metadata.span_kind` |
//! | `gen_ai.system_instructions` | `inputs.chat_history`, first: `{role: "system", content}` |
//! | `gen_ai.input.messages`; `gen_ai.prompt` | `inputs.chat_history`: `{role, content}`, `tool_calls: [{id, type: "function", function: {name, arguments}}]` for a `tool_call` part, a `{role: "tool", tool_call_id, content}` message for each `tool_call_response`; text that is no list of messages is one `user` message |
//! | `gen_ai.output.messages`; `gen_ai.completion` | `outputs`: one message's `role`, `content`, `tool_calls`, `finish_reason`; several under `outputs.messages`; text as `{role: "assistant", content}` |
//! | `gen_ai.tool.name` | `event_name` of a tool event; `config.tool_name` |
//! | `gen_ai.tool.description` | `config.tool_description` |
//! | `gen_ai.tool.call.id` | `metadata.tool_call_id` |
//! | `gen_ai.tool.call.arguments` | `inputs`: an object's keys, else `inputs.arguments` |
//! | `gen_ai.tool.call.result` | `outputs.result` |
//! | `gen_ai.request.model`; `llm.model_name` | `config.model`, and `event_name` of a model event |
//! | `gen_ai.request.*` (`temperature`, `max_tokens`, `top_p`, `stream`…) | `config.*` |
//! | `llm.invocation_parameters` (JSON) | `config`, its keys |
//! | `gen_ai.provider.name`, `gen_ai.system`; `llm.provider`, `llm.system` | `config.provider` |
//! | `gen_ai.response.model` | `metadata.response_model` (and a model event's name, without a request model) |
//! | `gen_ai.response.id` | `metadata.response_id` |
//! | `gen_ai.response.finish_reasons` | `metadata.finish_reasons` |
//! | `gen_ai.usage.input_tokens`; `llm.token_count.prompt`, `gen_ai.usage.prompt_tokens` | on a `model` event, `metrics.prompt_tokens` |
//! | `gen_ai.usage.output_tokens`; `llm.token_count.completion`, `gen_ai.usage.completion_tokens` | on a `model` event, `metrics.completion_tokens` |
//! | `gen_ai.usage.total_tokens`; `llm.token_count.total`, `llm.usage.total_tokens` | on a `model` event, `metrics.total_tokens`; without it, the sum of the two above |
//! | other `gen_ai.usage.*` (`cache_read.input_tokens`…) | on a `model` event, `metrics.*`, dots as `_` (`cache_read_input_tokens`) |
//! | `error.type`, `gen_ai.tool.error.type`; `exception.message` | `error` (unless set otherwise), and kept in `metadata` |
//!
//! Usage on any other event stays in `metadata` under its own name
//! (`gen_ai.usage.input_tokens`…), not in `metrics`: HoneyHive sums the
//! token metrics of a session's events, and an agent's span (rig's
//! `invoke_agent`) records the usage of its whole run, which its model
//! events already carry; metadata is not summed, so each token is counted
//! once and the run's figure is still there to read.
//!
//! Nothing is overwritten or dropped. The app's own bucket keys
//! (`inputs.city`) are placed first, then the mapped fields in the order
//! recorded, then what is spread key by key or built from several fields
//! (tool arguments, `llm.invocation_parameters`, an output message's keys,
//! `inputs.chat_history`). A field whose place is taken (the app's
//! `inputs.chat_history`, a second messages field such as `gen_ai.prompt`
//! beside `gen_ai.input.messages`, `gen_ai.system` beside
//! `gen_ai.provider.name`, two names of one token count) is kept in
//! `metadata` under the name it was recorded under (`name#2` if the app's
//! own `metadata.name` holds it), as mapped (messages parsed); of an
//! object spread key by key, the keys taken are kept there together. Within a message, a part's other keys go with the tool
//! call or answer it becomes, and parts with no place in HoneyHive's shape
//! stay under the message's `parts`.
//!
//! Everything else (`gen_ai.agent.name`, `gen_ai.tool.type`…) stays in
//! `metadata` under its own name. Before this mapping a [`FieldMap`]
//! renames a framework's own names into these (or into a bucket key) and
//! drops its internal fields; the default one drops
//! [`FieldMap::FRAMEWORK_INTERNAL`] and renames
//! [`FieldMap::FRAMEWORK_RENAMED`] (see
//! [`field_map`](HoneyHiveLayer::field_map)).
//!
//! # Sessions
//! A root's tree goes to its `honeyhive.session_id`, else the layer's
//! [`session_id`](HoneyHiveLayer::session_id), else a new
//! session. To put the trees of one conversation, request or job into one
//! session without touching a framework's spans, the app enters a
//! *session scope*: a span with `honeyhive.event_type = "session"` (and
//! its `honeyhive.session_id`, else a new one), recorded by the layer as
//! a root:
//! - each span started directly under it is a root of its own, sent in
//!   the scope's session when it closes, not when the scope does;
//! - the scope itself is sent as the session's event when it closes (or
//!   at shutdown, as it stands), with its own fields;
//! - a span a framework starts as a root (`parent: None`) while a span is
//!   current joins the session of the tree around it; when that tree's
//!   root has no session yet, it is decided then (its
//!   `honeyhive.session_id`, else the layer's, else a new one), so a
//!   `honeyhive.session_id` the root records after that is not read;
//! - a span with `honeyhive.event_type = "session"` inside a tree is not
//!   a scope: it is an ordinary child, of type `session`;
//! - a scope with `honeyhive.scope_only = true` sends no event of its own:
//!   the session's event is logged by someone else (an
//!   [experiment](crate::experiment) logs each datapoint's).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), honeyhive::Error> {
//! use std::time::Duration;
//! use honeyhive::{Logger, LoggerConfig, testing::MockHoneyHive, tracing::HoneyHiveLayer};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let mock = MockHoneyHive::start_async().await;
//! let logger = Logger::new(&mock.client()?, LoggerConfig::default())?;
//! let subscriber = tracing_subscriber::registry().with(HoneyHiveLayer::new(logger.clone()));
//! tracing::subscriber::with_default(subscriber, || {
//!     let conversation = tracing::info_span!(
//!         "conversation",
//!         honeyhive.event_type = "session",
//!         honeyhive.session_id = "support-42",
//!     );
//!     let _in = conversation.enter();
//!     // What a framework records, the app untouched.
//!     for turn in ["Hi!", "Thanks!"] {
//!         tracing::info_span!("chat", gen_ai.operation.name = "chat", gen_ai.prompt = turn)
//!             .in_scope(|| {});
//!     }
//! });
//! logger.shutdown(Duration::from_secs(5)).await;
//! let events = mock.events();
//! assert_eq!(events.len(), 3, "two turns and the session event");
//! assert!(events.iter().all(|received| received.session_id == "support-42"));
//! assert_eq!(events[0].event["inputs"]["chat_history"][0]["content"], "Hi!");
//! assert_eq!(events[2].event["event_type"], "session");
//! # Ok(()) }
//! ```
//!
//! A scope's session is decided when it starts: a `honeyhive.session_id`
//! recorded on it later is not read. rig adopts the current span as its
//! agent span: under a scope, rig records its agent's fields on the scope
//! (those the scope declares, such as `gen_ai.prompt = Empty`; the answer
//! and the run's usage rig records only on an agent span it starts, so the
//! app records the answer on the scope itself) and its model and tool
//! spans are the scope's direct children.
//!
//! # Time
//! `start_time` is taken from the system clock when the span is created,
//! and `duration` from the monotonic clock when it closes, not from enter
//! and exit (an async span is entered on every poll, on any thread).
//! `end_time` is the start plus the duration, so a system clock set back
//! while a span runs cannot put its end before its start.
//!
//! # Bounds
//! A tree holds at most [`max_nodes`](HoneyHiveLayer::max_nodes) spans
//! (default 1 000): later spans of that tree and their descendants are
//! counted, not recorded, and the root's `metadata` says how many
//! (`honeyhive.spans_omitted`). At most
//! [`max_open_roots`](HoneyHiveLayer::max_open_roots) trees (default 10 000)
//! are open at once; a root beyond is not recorded. Callbacks never block,
//! spawn or do I/O. Everything dropped is counted in [`HoneyHiveLayer::stats`].
//!
//! # Long roots and shutdown
//! A root that stays open (a server loop, a job, the span entered at the
//! top of `main`) is sent in parts, on time: the Logger ticks the layer
//! about every 100 ms, and every [`max_age`](HoneyHiveLayer::max_age)
//! (default 10 minutes) the spans that closed under the root since the
//! last part go out under a copy of the root, its duration its age then,
//! marked `honeyhive.partial: true` and `honeyhive.part: n` (from 1). When
//! the root closes, the rest goes out as the last part (`honeyhive.part`,
//! not partial). [`Logger::shutdown`] first sends every open root this way,
//! as it stands; spans that close after that are refused by the shut-down
//! Logger and counted. Each part is its own root event (its own
//! `event_id`) in the root's session.
//!
//! # Cost
//! A callback does little: a span keeps its fields as they came (name and
//! value) and its closed children as they are; the field map and the
//! GenAI mapping (JSON parsing included) run when the event is built. A closed tree goes into the
//! [`Logger`]'s queue as it stands, counted against the queue's bounds like
//! any event (a tree the queue has no room for is counted in
//! `trees_refused` and in the Logger's `dropped`); it becomes an [`Event`],
//! with its JSON objects, ids and times, when the Logger takes it to send,
//! on the Logger's runtime, not on the application's thread.

use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::logger::Source;
use crate::{event::Event, event::EventType, logger::Logger, session::SessionId};

mod field_map;
mod genai;
mod node;

pub use field_map::FieldMap;
use node::{Fields, Mark, Node, Tree};

/// Turns `tracing` spans into HoneyHive event trees; see the
/// [module docs](self).
#[derive(Clone)]
#[must_use = "a layer does nothing until it is added to a subscriber"]
pub struct HoneyHiveLayer {
    session_id: Option<SessionId>,
    max_nodes: usize,
    max_open_roots: usize,
    shared: Arc<Shared>,
}

/// What the layer's clones share with each other and with the Logger,
/// which ticks it and closes it (as a [`Source`]).
struct Shared {
    logger: Logger,
    counters: LayerCounters,
    /// Set once by the builder; read at each tick.
    max_age: Mutex<Duration>,
    roots: Mutex<Roots>,
    /// The Logger is shutting down: no more parts on ticks.
    closed: AtomicBool,
    /// Set by the builder; each tree sent takes the one set then.
    fields: Mutex<Arc<FieldMap>>,
}

/// The open roots, by span id, and when each is next due to send a part.
#[derive(Default)]
struct Roots {
    by_id: HashMap<u64, Arc<Root>>,
    due: BTreeSet<(Instant, u64)>,
}

/// An open root span: its node, reachable from outside `tracing`'s
/// callbacks (for ticks and shutdown), and what its parts share.
struct Root {
    /// `None` once its last part was sent.
    node: Mutex<Option<Node>>,
    /// Parts sent so far.
    parts: AtomicU64,
    /// The layer's session for a root without `honeyhive.session_id`.
    fallback: Option<SessionId>,
    /// Decided at the first part, so that every part goes to one session
    /// (at the start, for a scope).
    session: OnceLock<SessionId>,
    /// A session scope (`honeyhive.event_type = "session"`): each span
    /// started directly under it is a root of its own, in its session.
    scope: bool,
}

/// What a new span is started under, as the layer sees it.
enum Parent {
    /// A recorded span of this tree.
    Tree(Arc<Tree>),
    /// An omitted span: the new one is omitted too.
    Omitted(Arc<Tree>),
    /// No recorded parent, but a session to start the new root in: a
    /// scope's, or inherited from the tree around an explicit root.
    Session(SessionId),
}

#[derive(Default)]
struct LayerCounters {
    open_roots: AtomicUsize,
    trees_logged: AtomicU64,
    trees_refused: AtomicU64,
    spans_omitted: AtomicU64,
    roots_omitted: AtomicU64,
    trees_partial: AtomicU64,
}

/// What a [`HoneyHiveLayer`] did, counted since it was made (clones share
/// the counts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerStats {
    /// Trees handed to the Logger (those of a session the client samples
    /// out included: the Logger counts them in its `events_sampled_out`).
    pub trees_logged: u64,
    /// Trees the Logger refused: its queue was full or it was shut down
    /// (also counted in its `dropped`), or the root's
    /// `honeyhive.session_id` cannot name a session (empty, blank, `.` or
    /// `..`).
    pub trees_refused: u64,
    /// Spans not recorded because their tree was at `max_nodes`.
    pub spans_omitted: u64,
    /// Root spans not recorded because `max_open_roots` trees were open.
    pub roots_omitted: u64,
    /// Parts sent while their root was open: past `max_age`, or at the
    /// Logger's shutdown.
    pub trees_partial: u64,
}

impl HoneyHiveLayer {
    /// Spans a tree holds at most, by default.
    pub const DEFAULT_MAX_NODES: usize = 1_000;
    /// Trees open at once at most, by default.
    pub const DEFAULT_MAX_OPEN_ROOTS: usize = 10_000;
    /// How long a root may stay open before its tree is sent as it stands,
    /// by default.
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);

    /// A layer logging each closed span tree through `logger`. The Logger
    /// ticks it (so long roots go out in parts on time) and closes it at
    /// shutdown (so open roots go out as they stand).
    pub fn new(logger: Logger) -> Self {
        let shared = Arc::new(Shared {
            logger,
            counters: LayerCounters::default(),
            max_age: Mutex::new(Self::DEFAULT_MAX_AGE),
            roots: Mutex::default(),
            closed: AtomicBool::new(false),
            fields: Mutex::new(Arc::new(FieldMap::new())),
        });
        let source: Arc<dyn Source> = Arc::clone(&shared) as Arc<dyn Source>;
        shared.logger.add_source(Arc::downgrade(&source));
        HoneyHiveLayer {
            session_id: None,
            max_nodes: Self::DEFAULT_MAX_NODES,
            max_open_roots: Self::DEFAULT_MAX_OPEN_ROOTS,
            shared,
        }
    }

    /// Sets the session for trees whose root has no `honeyhive.session_id`
    /// field (else each root gets a new session).
    pub fn session_id(mut self, id: impl Into<SessionId>) -> Self {
        self.session_id = Some(id.into());
        self
    }

    /// Sets how many spans a tree holds at most; at least 1.
    pub fn max_nodes(mut self, nodes: usize) -> Self {
        self.max_nodes = nodes.max(1);
        self
    }

    /// Sets how many trees may be open at once; at least 1.
    pub fn max_open_roots(mut self, roots: usize) -> Self {
        self.max_open_roots = roots.max(1);
        self
    }

    /// Sets how long a root may stay open before what closed under it is
    /// sent as a part, and then how often (see the [module
    /// docs](self#long-roots-and-shutdown)). Acts on the Logger's tick,
    /// about every 100 ms. Applies to every clone of this layer.
    pub fn max_age(self, age: Duration) -> Self {
        *self.shared.max_age.lock() = age;
        self
    }

    /// Sets how span fields are renamed or dropped before the GenAI
    /// mapping (see [`FieldMap`]); by default [`FieldMap::new`], the
    /// built-in list of framework-internal fields. Applies to every clone
    /// of this layer.
    ///
    /// ```
    /// use honeyhive::tracing::{FieldMap, HoneyHiveLayer};
    /// # let mock = honeyhive::testing::MockHoneyHive::start();
    /// # let logger = honeyhive::Logger::on_own_thread(&mock.client()?, Default::default())?;
    /// let layer = HoneyHiveLayer::new(logger)
    ///     .field_map(FieldMap::new().rename("myfw.answer", "gen_ai.completion"));
    /// # Ok::<(), honeyhive::Error>(())
    /// ```
    pub fn field_map(self, fields: FieldMap) -> Self {
        *self.shared.fields.lock() = Arc::new(fields);
        self
    }

    /// What the layer did so far.
    pub fn stats(&self) -> LayerStats {
        let c = &self.shared.counters;
        LayerStats {
            trees_logged: c.trees_logged.load(Ordering::Relaxed),
            trees_refused: c.trees_refused.load(Ordering::Relaxed),
            spans_omitted: c.spans_omitted.load(Ordering::Relaxed),
            roots_omitted: c.roots_omitted.load(Ordering::Relaxed),
            trees_partial: c.trees_partial.load(Ordering::Relaxed),
        }
    }
}

impl std::fmt::Debug for HoneyHiveLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HoneyHiveLayer")
            .field("session_id", &self.session_id)
            .field("max_nodes", &self.max_nodes)
            .field("max_open_roots", &self.max_open_roots)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// What an omitted span holds in its extensions (a recorded one holds its
/// [`Node`], a root its [`RootRef`]): over a bound, this span and its
/// descendants are counted, not kept.
struct Omitted(Arc<Tree>);

/// What a recorded root span holds in its extensions.
struct RootRef(Arc<Root>);

/// Takes an event's message.
#[derive(Default)]
struct Message(Option<String>);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl<S> Layer<S> for HoneyHiveLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        // The nearest ancestor this layer sees (filtered ones are skipped).
        let parent = span.parent().and_then(|parent| {
            let extensions = parent.extensions();
            if let Some(node) = extensions.get::<Node>() {
                return Some(Parent::Tree(Arc::clone(&node.tree)));
            }
            if let Some(RootRef(root)) = extensions.get::<RootRef>() {
                if root.scope {
                    return root.session.get().cloned().map(Parent::Session);
                }
                return root
                    .node
                    .lock()
                    .as_ref()
                    .map(|node| Parent::Tree(Arc::clone(&node.tree)));
            }
            Some(Parent::Omitted(Arc::clone(&extensions.get::<Omitted>()?.0)))
        });
        // A span started as a root (`parent: None`) while a span is
        // current takes the session of the tree around it: its scope's,
        // or its root's, decided now if it was not yet (the root's
        // `honeyhive.session_id`, the one it was given, or a new one) so
        // both trees go to one session.
        let parent = parent.or_else(|| {
            if !attrs.is_root() {
                return None;
            }
            let current = ctx.lookup_current()?;
            let root = current.scope().find_map(|span| {
                let extensions = span.extensions();
                extensions
                    .get::<RootRef>()
                    .map(|RootRef(root)| Arc::clone(root))
            })?;
            if root.scope {
                return root.session.get().cloned().map(Parent::Session);
            }
            let session = root.session.get_or_init(|| {
                let node = root.node.lock();
                let own = node.as_ref().and_then(|node| node.session_id.clone());
                own.map(SessionId::from)
                    .or_else(|| root.fallback.clone())
                    .unwrap_or_else(SessionId::new)
            });
            Some(Parent::Session(session.clone()))
        });
        let record = |tree, root| {
            let mut node = Node::new(span.name(), tree, root, attrs.fields().len());
            attrs.record(&mut Fields(&mut node));
            node
        };
        let counters = &self.shared.counters;
        let omit = |tree: Arc<Tree>| {
            tree.omitted.fetch_add(1, Ordering::Relaxed);
            counters.spans_omitted.fetch_add(1, Ordering::Relaxed);
            Omitted(tree)
        };
        let scope_session = match parent {
            Some(Parent::Omitted(tree)) => {
                span.extensions_mut().insert(omit(tree));
                return;
            }
            Some(Parent::Tree(tree)) => {
                if tree.nodes.fetch_add(1, Ordering::Relaxed) >= self.max_nodes {
                    tree.nodes.fetch_sub(1, Ordering::Relaxed);
                    span.extensions_mut().insert(omit(tree));
                } else {
                    span.extensions_mut().insert(record(tree, false));
                }
                return;
            }
            Some(Parent::Session(session)) => Some(session),
            None => None,
        };
        let tree = Arc::new(Tree {
            nodes: AtomicUsize::new(1),
            omitted: AtomicU64::new(0),
        });
        let room = |n: usize| (n < self.max_open_roots).then_some(n + 1);
        let open = &counters.open_roots;
        if open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, room)
            .is_err()
        {
            counters.roots_omitted.fetch_add(1, Ordering::Relaxed);
            span.extensions_mut().insert(Omitted(tree));
            return;
        }
        let node = record(tree, true);
        let due = node.clock + *self.shared.max_age.lock();
        let fallback = scope_session.or_else(|| self.session_id.clone());
        let scope = node.event_type == Some(EventType::Session);
        let session = OnceLock::new();
        if scope {
            // A scope's session is decided at its start: the roots under
            // it are logged into it before it closes.
            let id = node.session_id.clone().map(SessionId::from);
            let _ = session.set(
                id.or_else(|| fallback.clone())
                    .unwrap_or_else(SessionId::new),
            );
        }
        let root = Arc::new(Root {
            node: Mutex::new(Some(node)),
            parts: AtomicU64::new(0),
            fallback,
            session,
            scope,
        });
        let mut roots = self.shared.roots.lock();
        roots.by_id.insert(id.into_u64(), Arc::clone(&root));
        roots.due.insert((due, id.into_u64()));
        drop(roots);
        span.extensions_mut().insert(RootRef(root));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(node) = extensions.get_mut::<Node>() {
            values.record(&mut Fields(node));
        } else if let Some(RootRef(root)) = extensions.get_mut::<RootRef>()
            && let Some(node) = root.node.lock().as_mut()
        {
            values.record(&mut Fields(node));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        if *event.metadata().level() != Level::ERROR {
            return;
        }
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let mut message = Message::default();
        event.record(&mut message);
        let error = message
            .0
            .unwrap_or_else(|| event.metadata().name().to_owned());
        let mut extensions = span.extensions_mut();
        if let Some(node) = extensions.get_mut::<Node>() {
            node.error = Some(error);
        } else if let Some(RootRef(root)) = extensions.get_mut::<RootRef>()
            && let Some(node) = root.node.lock().as_mut()
        {
            node.error = Some(error);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let root = span.extensions_mut().remove::<RootRef>();
        if let Some(RootRef(root)) = root {
            let mut roots = self.shared.roots.lock();
            roots.by_id.remove(&id.into_u64());
            roots.due.retain(|(_, open)| *open != id.into_u64());
            drop(roots);
            let taken = root.node.lock().take();
            if let Some(mut node) = taken {
                node.took = Some(node.clock.elapsed());
                if !(root.scope && node.scope_only) {
                    self.shared.send(&root, node, false);
                }
                self.shared
                    .counters
                    .open_roots
                    .fetch_sub(1, Ordering::AcqRel);
            }
            return;
        }
        let Some(mut node) = span.extensions_mut().remove::<Node>() else {
            return;
        };
        node.took = Some(node.clock.elapsed());
        if let Some(parent) = span.parent() {
            let mut extensions = parent.extensions_mut();
            if let Some(parent) = extensions.get_mut::<Node>() {
                parent.children.push(node);
                return;
            }
            if let Some(RootRef(root)) = extensions.get_mut::<RootRef>()
                && let Some(parent) = root.node.lock().as_mut()
            {
                parent.children.push(node);
                return;
            }
        }
        // Its tree was sent before it closed.
        node.tree.omitted.fetch_add(1, Ordering::Relaxed);
        self.shared
            .counters
            .spans_omitted
            .fetch_add(1, Ordering::Relaxed);
    }
}

impl Shared {
    /// Logs a root's tree (a part, when `partial`).
    fn send(&self, root: &Root, node: Node, partial: bool) {
        // Every part of a root to one session: decided at the first (a
        // root may record `honeyhive.session_id` after it starts).
        let session = root
            .session
            .get_or_init(|| {
                node.session_id
                    .clone()
                    .map(SessionId::from)
                    .or_else(|| root.fallback.clone())
                    .unwrap_or_else(SessionId::new)
            })
            .clone();
        let parts_before = root.parts.fetch_add(1, Ordering::Relaxed);
        let part = (partial || parts_before > 0)
            .then(|| u32::try_from(parts_before + 1).unwrap_or(u32::MAX));
        let mark = Mark {
            partial,
            part,
            omitted: node.tree.omitted.load(Ordering::Relaxed),
        };
        if partial {
            self.counters.trees_partial.fetch_add(1, Ordering::Relaxed);
        }
        let heap = node.heap();
        let fields = Arc::clone(&self.fields.lock());
        let make = Box::new(move || Event::from(node.into_event(mark, &fields)));
        if self.logger.log_later(session, heap, make) {
            self.counters.trees_logged.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counters.trees_refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends, as a part, what closed under each root due by `now` (all of
    /// them with `None`), and sets when each is due next.
    fn send_parts(&self, now: Option<Instant>) {
        let max_age = *self.max_age.lock();
        let due: Vec<(u64, Arc<Root>)> = {
            let mut roots = self.roots.lock();
            let ids: Vec<u64> = roots
                .due
                .iter()
                .take_while(|(at, _)| now.is_none_or(|now| *at <= now))
                .map(|(_, id)| *id)
                .collect();
            roots.due.retain(|(_, id)| !ids.contains(id));
            let next = now.unwrap_or_else(Instant::now) + max_age;
            for id in &ids {
                roots.due.insert((next, *id));
            }
            ids.iter()
                .filter_map(|id| Some((*id, Arc::clone(roots.by_id.get(id)?))))
                .collect()
        };
        for (_, root) in due {
            // A scope's event goes out when it closes, or as it stands at
            // shutdown; its spans went out as roots of their own.
            if root.scope && now.is_some() {
                continue;
            }
            if root.scope
                && root
                    .node
                    .lock()
                    .as_ref()
                    .is_some_and(|node| node.scope_only)
            {
                continue;
            }
            let part = {
                let mut node = root.node.lock();
                let Some(node) = node.as_mut() else { continue };
                let (part, nodes) = node.split();
                // What went with the part no longer counts against the
                // tree's bound: a long root keeps recording.
                node.tree.nodes.fetch_sub(nodes, Ordering::Relaxed);
                part
            };
            self.send(&root, part, true);
        }
    }
}

impl Source for Shared {
    fn tick(&self, now: Instant) {
        if !self.closed.load(Ordering::Relaxed) {
            self.send_parts(Some(now));
        }
    }

    fn close(&self) {
        if !self.closed.swap(true, Ordering::Relaxed) {
            self.send_parts(None);
        }
    }
}
