//! [`HoneyHiveLayer`]: `tracing` spans in, HoneyHive event trees out
//! (feature `tracing`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), honeyhive::Error> {
//! use std::time::Duration;
//! use honeyhive::{LoggerConfig, testing::MockHoneyHive, tracing::HoneyHiveLayer};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let mock = MockHoneyHive::start_async().await;
//! let logger = mock.client()?.logger(LoggerConfig::default())?;
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
//! assert_eq!(root["children"][0]["metrics"]["input_tokens"], 12);
//! # Ok(()) }
//! ```
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
//! | `honeyhive.event_type` | `event_type` (`model`, `tool`, `chain`, `session`) |
//! | `honeyhive.event_name` | `event_name` (else the span's name) |
//! | `inputs.*`, `outputs.*`, `config.*`, `metadata.*`, `metrics.*`, `feedback.*`, `user_properties.*` | that object, under the rest of the key |
//! | `error` | `error` |
//! | `gen_ai.operation.name` | `event_type`: `chat`, `text_completion`, `generate_content` → `model`; `execute_tool` → `tool`; `invoke_agent`, `create_agent` → `chain` (an explicit `honeyhive.event_type` wins) |
//! | `gen_ai.request.model` | `config.model` |
//! | `gen_ai.usage.*` | `metrics.*` |
//! | anything else | `metadata`, under its full name |
//!
//! Integers, floats, booleans and strings keep their JSON type; values
//! recorded with `%` or `?` are strings. Without a type, a span with
//! children is a `chain` and a leaf a `tool`. An `ERROR`-level `tracing`
//! event inside a span sets that span's `error` (its message).
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
//! are open at once; a root beyond is not recorded. A root open longer than
//! [`max_age`](HoneyHiveLayer::max_age) (default 10 minutes) is sent as it
//! stands when the next root starts, marked `honeyhive.partial`. Callbacks never block,
//! spawn or do I/O. Everything dropped is counted in [`HoneyHiveLayer::stats`].
//!
//! # Cost
//! A callback does little: a span keeps its fields as they came (name and
//! value) and its closed children as they are. A closed tree goes into the
//! [`Logger`]'s queue as it stands, counted against the queue's bounds like
//! any event (a tree the queue has no room for is counted in
//! `trees_refused` and in the Logger's `dropped`); it becomes an [`Event`],
//! with its JSON objects, ids and times, when the Logger takes it to send,
//! on the Logger's runtime. So the application's thread pays about 0.6 µs a
//! span with three fields, less than `tracing-opentelemetry` on the
//! OpenTelemetry SDK (BENCHMARKS.md).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::{Event, Logger, SessionId};

mod node;

use node::{Fields, Node, Tree};

/// Turns `tracing` spans into HoneyHive event trees; see the
/// [module docs](self).
#[derive(Clone)]
pub struct HoneyHiveLayer {
    logger: Logger,
    session_id: Option<SessionId>,
    max_nodes: usize,
    max_open_roots: usize,
    max_age: Duration,
    counters: Arc<Counters>,
    /// Open roots by when they started, to send the ones past `max_age`.
    roots: Arc<Mutex<BTreeSet<(Instant, u64)>>>,
}

#[derive(Default)]
struct Counters {
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
    /// Trees handed to the Logger.
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
    /// Trees sent partial because their root was open past `max_age`.
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

    /// A layer logging each closed span tree through `logger`.
    pub fn new(logger: Logger) -> Self {
        HoneyHiveLayer {
            logger,
            session_id: None,
            max_nodes: Self::DEFAULT_MAX_NODES,
            max_open_roots: Self::DEFAULT_MAX_OPEN_ROOTS,
            max_age: Self::DEFAULT_MAX_AGE,
            counters: Arc::default(),
            roots: Arc::default(),
        }
    }

    /// The session for trees whose root has no `honeyhive.session_id`
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

    /// Sets how long a root may stay open. Looked at whenever a root span
    /// starts: a tree whose root is older is sent as it stands (the spans
    /// closed so far, `metadata."honeyhive.partial": true`), and what it
    /// gets later is counted as omitted.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// What the layer did so far.
    pub fn stats(&self) -> LayerStats {
        let c = &self.counters;
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
/// [`Node`]): over a bound, this span and its descendants are counted, not
/// kept.
struct Omitted(Arc<Tree>);

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
        let parent_tree = span.parent().and_then(|parent| {
            let extensions = parent.extensions();
            match extensions.get::<Node>() {
                Some(node) => Some(Ok(Arc::clone(&node.tree))),
                None => Some(Err(Arc::clone(&extensions.get::<Omitted>()?.0))),
            }
        });
        let record = |tree, root| {
            let mut node = Node::new(span.name(), tree, root, attrs.fields().len());
            attrs.record(&mut Fields(&mut node));
            node
        };
        let omit = |tree: Arc<Tree>| {
            tree.omitted.fetch_add(1, Ordering::Relaxed);
            self.counters.spans_omitted.fetch_add(1, Ordering::Relaxed);
            Omitted(tree)
        };
        match parent_tree {
            Some(Err(tree)) => span.extensions_mut().insert(omit(tree)),
            Some(Ok(tree)) => {
                if tree.nodes.fetch_add(1, Ordering::Relaxed) >= self.max_nodes {
                    span.extensions_mut().insert(omit(tree));
                } else {
                    span.extensions_mut().insert(record(tree, false));
                }
            }
            None => {
                let tree = Arc::new(Tree {
                    nodes: AtomicUsize::new(1),
                    omitted: AtomicU64::new(0),
                });
                let room = |n: usize| (n < self.max_open_roots).then_some(n + 1);
                let open = &self.counters.open_roots;
                if open
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, room)
                    .is_err()
                {
                    self.counters.roots_omitted.fetch_add(1, Ordering::Relaxed);
                    span.extensions_mut().insert(Omitted(tree));
                    return;
                }
                let node = record(tree, true);
                self.lock_roots().insert((node.clock, id.into_u64()));
                span.extensions_mut().insert(node);
                self.send_old_roots(&ctx);
            }
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if let Some(node) = span.extensions_mut().get_mut::<Node>() {
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
        if let Some(node) = span.extensions_mut().get_mut::<Node>() {
            node.error = Some(
                message
                    .0
                    .unwrap_or_else(|| event.metadata().name().to_owned()),
            );
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(mut node) = span.extensions_mut().remove::<Node>() else {
            return;
        };
        node.took = Some(node.clock.elapsed());
        if !node.root {
            if let Some(parent) = span.parent()
                && let Some(parent) = parent.extensions_mut().get_mut::<Node>()
            {
                parent.children.push(node);
                return;
            }
            // Its tree was sent partial before it closed.
            node.tree.omitted.fetch_add(1, Ordering::Relaxed);
            self.counters.spans_omitted.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.lock_roots().remove(&(node.clock, id.into_u64()));
        self.send_root(node, false);
    }
}

impl HoneyHiveLayer {
    fn lock_roots(&self) -> std::sync::MutexGuard<'_, BTreeSet<(Instant, u64)>> {
        self.roots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends the trees whose root is open past `max_age`, as they stand.
    fn send_old_roots<S>(&self, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(cutoff) = Instant::now().checked_sub(self.max_age) else {
            return;
        };
        loop {
            let oldest = {
                let mut roots = self.lock_roots();
                match roots.first() {
                    Some(&(started, id)) if started < cutoff => roots.pop_first().map(|_| id),
                    _ => None,
                }
            };
            let Some(id) = oldest else { return };
            let Some(span) = ctx.span(&Id::from_u64(id)) else {
                continue;
            };
            let mut extensions = span.extensions_mut();
            let Some(node) = extensions.remove::<Node>() else {
                continue;
            };
            extensions.insert(Omitted(Arc::clone(&node.tree)));
            drop(extensions);
            self.counters.trees_partial.fetch_add(1, Ordering::Relaxed);
            self.send_root(node, true);
        }
    }

    /// Logs a root's tree.
    fn send_root(&self, mut node: Node, partial: bool) {
        self.counters.open_roots.fetch_sub(1, Ordering::AcqRel);
        let session = node
            .session_id
            .clone()
            .map(SessionId::from)
            .or_else(|| self.session_id.clone())
            .unwrap_or_default();
        // A partial tree's root is still open: its age now.
        let clock = node.clock;
        node.took.get_or_insert_with(|| clock.elapsed());
        let omitted = node.tree.omitted.load(Ordering::Relaxed);
        let heap = node.heap();
        let make = Box::new(move || Event::from(node.into_event(partial, omitted)));
        if self.logger.log_later(session, heap, make) {
            self.counters.trees_logged.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counters.trees_refused.fetch_add(1, Ordering::Relaxed);
        }
    }
}
