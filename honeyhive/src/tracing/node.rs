//! A recorded span and what it becomes: [`Node`] keeps a span's fields as
//! they came and its closed children while the tree is open;
//! [`Node::into_event`] turns a closed tree into the generated event type
//! when the Logger takes it to send.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tracing::field::{Field, Visit};

use super::field_map::FieldMap;
use super::genai::{self, Mapped};
use crate::footprint::ALLOCATION;
use crate::{api, event::EventType};

/// What a root's event says of how it was sent.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Mark {
    /// Sent while the root was still open (`honeyhive.partial`).
    pub(super) partial: bool,
    /// Which part of a root sent in parts (`honeyhive.part`, from 1).
    pub(super) part: Option<u32>,
    /// Spans of the tree not recorded (`honeyhive.spans_omitted`).
    pub(super) omitted: u64,
}

/// Shared by the spans of one tree.
#[derive(Default)]
pub(super) struct Tree {
    pub(super) nodes: AtomicUsize,
    pub(super) omitted: AtomicU64,
}

/// A recorded span, kept small while the span is open: fields as they
/// came, children as nodes. It becomes an [`api::types::Event`] (JSON
/// objects and all) only when its tree is taken to be sent, on the Logger's
/// runtime, so the application's thread does not pay for that.
pub(super) struct Node {
    pub(super) tree: Arc<Tree>,
    pub(super) root: bool,
    name: Cow<'static, str>,
    /// From `honeyhive.event_type`.
    pub(super) event_type: Option<EventType>,
    /// `honeyhive.event_name` was recorded: the name is the app's.
    named: bool,
    pub(super) session_id: Option<String>,
    /// `honeyhive.scope_only = true`: a session scope that sends no event
    /// of its own (someone else logs the session's event).
    pub(super) scope_only: bool,
    pub(super) error: Option<String>,
    /// Every other field, by its full name, in the order recorded.
    fields: Vec<(&'static str, Value)>,
    pub(super) children: Vec<Node>,
    started: SystemTime,
    pub(super) clock: Instant,
    /// Set when the span closes; a tree sent before its root closed takes
    /// the root's age then.
    pub(super) took: Option<Duration>,
}

fn event_type(text: &str) -> Option<EventType> {
    text.parse().ok()
}

impl Node {
    pub(super) fn new(name: &'static str, tree: Arc<Tree>, root: bool, fields: usize) -> Self {
        Node {
            tree,
            root,
            name: Cow::Borrowed(name),
            event_type: None,
            named: false,
            session_id: None,
            scope_only: false,
            error: None,
            fields: Vec::with_capacity(fields),
            children: Vec::new(),
            started: SystemTime::now(),
            clock: Instant::now(),
            took: None,
        }
    }

    fn set(&mut self, key: &'static str, value: Value) {
        let text = || match &value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match key {
            "honeyhive.session_id" => self.session_id = Some(text()),
            "honeyhive.event_type" => self.event_type = event_type(&text()),
            "honeyhive.scope_only" => self.scope_only = value == Value::Bool(true),
            "honeyhive.event_name" => {
                self.name = Cow::Owned(text());
                self.named = true;
            }
            "error" => self.error = Some(text()),
            _ => {
                // Recorded again: the new value replaces the old, so a span
                // that records in a loop does not grow.
                match self.fields.iter_mut().find(|(name, _)| *name == key) {
                    Some(field) => field.1 = value,
                    None => self.fields.push((key, value)),
                }
            }
        }
    }

    /// Heap bytes the node and its descendants hold, on the generous side:
    /// what the Logger's queue counts for an unbuilt tree.
    pub(super) fn heap(&self) -> usize {
        let text = |text: Option<&str>| text.map_or(0, |t| t.len() + ALLOCATION);
        let values: usize = self
            .fields
            .iter()
            .map(|(_, value)| match value {
                Value::String(s) => s.len() + ALLOCATION,
                _ => 0,
            })
            .sum();
        let name = match &self.name {
            Cow::Borrowed(_) => 0,
            Cow::Owned(name) => name.len() + ALLOCATION,
        };
        self.fields.capacity() * std::mem::size_of::<(&str, Value)>()
            + self.children.capacity() * std::mem::size_of::<Node>()
            + 2 * ALLOCATION
            + values
            + name
            + text(self.session_id.as_deref())
            + text(self.error.as_deref())
            + self.children.iter().map(Node::heap).sum::<usize>()
    }

    /// A copy of this (root) node as it stands, taking its closed
    /// children with it, for a part sent while the span stays open; its
    /// duration is its age now. Also says how many nodes went with it.
    pub(super) fn split(&mut self) -> (Node, usize) {
        let children = std::mem::take(&mut self.children);
        let nodes = children.iter().map(Node::count).sum();
        let part = Node {
            tree: Arc::clone(&self.tree),
            root: self.root,
            name: self.name.clone(),
            event_type: self.event_type,
            named: self.named,
            session_id: self.session_id.clone(),
            scope_only: self.scope_only,
            error: self.error.clone(),
            fields: self.fields.clone(),
            children,
            started: self.started,
            clock: self.clock,
            took: Some(self.took.unwrap_or_else(|| self.clock.elapsed())),
        };
        (part, nodes)
    }

    /// This node and its descendants.
    fn count(&self) -> usize {
        1 + self.children.iter().map(Node::count).sum::<usize>()
    }

    /// The event this node and its children make; `mark` is noted on the
    /// root. Fields go through `fields` and the GenAI mapping here, on the
    /// Logger's runtime.
    pub(super) fn into_event(self, mark: Mark, fields: &FieldMap) -> api::types::Event {
        let Mapped {
            buckets,
            kind,
            model,
            tool,
            error,
        } = genai::map(
            self.fields,
            fields,
            self.event_type,
            self.children.is_empty(),
        );
        let mut buckets = buckets;
        let metadata = &mut buckets[genai::METADATA];
        if mark.partial {
            metadata.insert("honeyhive.partial".to_owned(), true.into());
        }
        if let Some(part) = mark.part {
            metadata.insert("honeyhive.part".to_owned(), part.into());
        }
        if self.root && mark.omitted > 0 {
            metadata.insert("honeyhive.spans_omitted".to_owned(), mark.omitted.into());
        }
        // A model event is named after its model and a tool event after
        // its tool, as HoneyHive names them; a name the app set wins.
        let name = match kind {
            _ if self.named => None,
            EventType::Model => model,
            EventType::Tool => tool,
            _ => None,
        }
        .unwrap_or_else(|| self.name.into_owned());
        let [
            inputs,
            outputs,
            config,
            metadata,
            metrics,
            feedback,
            user_properties,
        ] = buckets;
        // Built as the generated type directly: the maps hold JSON already
        // (no NaN: `Fields` keeps non-finite floats as text), so going
        // through the builder's setters would only copy them again.
        let millis = crate::millis::since_epoch;
        // The end is the start plus the monotonic duration, so a wall clock
        // set back while the span ran cannot put the end before the start.
        let took = self.took.unwrap_or_default();
        let duration = Some(crate::millis::duration(took));
        api::types::Event {
            children: self
                .children
                .into_iter()
                .map(|child| child.into_event(Mark::default(), fields))
                .collect(),
            config,
            duration,
            end_time: millis(self.started + took),
            error: self.error.or(error),
            event_id: None,
            event_name: Some(name),
            event_type: Some(kind.as_str().to_owned()),
            feedback,
            inputs,
            metadata,
            metrics,
            outputs,
            project: None,
            session_id: None,
            source: None,
            start_time: millis(self.started),
            user_properties,
        }
    }
}

/// Records fields into a node, keeping JSON types.
pub(super) struct Fields<'a>(pub(super) &'a mut Node);

impl Visit for Fields<'_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.set(field.name(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.set(field.name(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        // NaN and infinities have no JSON form: kept as text.
        let value = serde_json::Number::from_f64(value)
            .map_or_else(|| Value::String(value.to_string()), Value::Number);
        self.0.set(field.name(), value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.set(field.name(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.set(field.name(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.set(field.name(), format!("{value:?}").into());
    }
}
