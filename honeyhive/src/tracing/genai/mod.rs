//! The GenAI mapping: a span's fields, as recorded, into HoneyHive's event
//! buckets. Runs when the Logger builds the event, on the Logger's runtime
//! rather than in a `tracing` callback, so the JSON parsing is not paid on
//! the application's thread while its spans run. The table it follows is
//! in the [module docs](super#genai-fields).

use serde_json::{Map, Value};

use super::field_map::{FieldMap, Target};

mod messages;

use crate::EventType;
use crate::mask::FreeForm;
use messages::{chat_history, input_messages, output_message, parsed, system_messages};

/// The seven buckets, in the order [`Buckets`] holds them.
pub(super) const BUCKETS: [FreeForm; 7] = [
    FreeForm::Inputs,
    FreeForm::Outputs,
    FreeForm::Config,
    FreeForm::Metadata,
    FreeForm::Metrics,
    FreeForm::Feedback,
    FreeForm::UserProperties,
];
pub(super) const INPUTS: usize = 0;
pub(super) const OUTPUTS: usize = 1;
pub(super) const CONFIG: usize = 2;
pub(super) const METADATA: usize = 3;
pub(super) const METRICS: usize = 4;

pub(super) type Buckets = [Map<String, Value>; 7];

/// What a span's fields make of its event.
pub(super) struct Mapped {
    pub(super) buckets: Buckets,
    /// The event type: the app's `honeyhive.event_type`, else from the
    /// span-kind fields (`gen_ai.operation.name`,
    /// `openinference.span.kind`, `traceloop.span.kind`), else `chain`
    /// with children and `tool` without.
    pub(super) kind: EventType,
    /// The model (`gen_ai.request.model`, else the response's): a model
    /// event's name.
    pub(super) model: Option<String>,
    /// `gen_ai.tool.name`: a tool event's name.
    pub(super) tool: Option<String>,
    /// `error.type`, `gen_ai.tool.error.type`, `exception.message`.
    pub(super) error: Option<String>,
}

/// A field: the name it is mapped by (after the [`FieldMap`]) and the name
/// it was recorded under (what it is kept under when it loses its place).
#[derive(Clone, Copy)]
struct Name<'a> {
    mapped: &'a str,
    recorded: &'static str,
}

/// What is placed after the other fields, so that it never takes a key a
/// field of its own wanted: messages, and objects spread key by key.
#[derive(Default)]
struct Later {
    /// `gen_ai.system_instructions`, each field's messages.
    system: Vec<(&'static str, Vec<Value>)>,
    /// The first input-messages field; a later one is kept in metadata.
    input: Option<(&'static str, Vec<Value>)>,
    /// The first output-messages field; likewise.
    output: Option<(&'static str, Value)>,
    /// Objects spread into a bucket (tool arguments, invocation
    /// parameters): field, bucket, object.
    spread: Vec<(&'static str, usize, Map<String, Value>)>,
}

/// The state of one span's mapping.
struct Mapping {
    buckets: Buckets,
    kind: EventType,
    request_model: Option<String>,
    response_model: Option<String>,
    tool: Option<String>,
    error: Option<String>,
    later: Later,
}

impl Mapping {
    /// `value` into `bucket` under `key`, unless a field took that key
    /// first: then it is kept in `metadata` under the name it was recorded
    /// under.
    fn put(&mut self, bucket: usize, key: &str, value: Value, name: Name<'_>) {
        let target = &mut self.buckets[bucket];
        if target.contains_key(key) {
            self.keep(name.recorded, value);
        } else {
            target.insert(key.to_owned(), value);
        }
    }

    /// A field with no place of its own: `metadata`, under the name it was
    /// recorded under, or `name#2` (`#3`…) when the app's own metadata key
    /// has that name too.
    fn keep(&mut self, recorded: &str, value: Value) {
        let metadata = &mut self.buckets[METADATA];
        let mut key = recorded.to_owned();
        let mut n = 1u32;
        while metadata.contains_key(&key) {
            n = n.saturating_add(1);
            key = format!("{recorded}#{n}");
        }
        metadata.insert(key, value);
    }

    /// `value` (JSON text parsed) spread into `bucket` after the other
    /// fields when it is an object (tool arguments, invocation
    /// parameters); anything else into `bucket` under `key`.
    fn spread_later(&mut self, bucket: usize, key: &str, value: Value, name: Name<'_>) {
        match parsed(value) {
            Value::Object(object) => self.later.spread.push((name.recorded, bucket, object)),
            other => self.put(bucket, key, other, name),
        }
    }

    /// An object's keys into `bucket`, each one that is free; the keys
    /// already taken are kept together in `metadata` under the field's
    /// recorded name.
    fn spread(&mut self, bucket: usize, object: Map<String, Value>, recorded: &str) {
        let mut taken = Map::new();
        for (key, value) in object {
            if self.buckets[bucket].contains_key(&key) {
                taken.insert(key, value);
            } else {
                self.buckets[bucket].insert(key, value);
            }
        }
        if !taken.is_empty() {
            self.keep(recorded, Value::Object(taken));
        }
    }
}

/// Maps `fields` (name as recorded, value) through `map` and the GenAI
/// table, for a span of type `explicit` (`honeyhive.event_type`), a leaf
/// or not. A field the table has no home for, or whose place another field
/// took, lands in `metadata` under its own name, so nothing is lost.
pub(super) fn map(
    fields: Vec<(&'static str, Value)>,
    map: &FieldMap,
    explicit: Option<EventType>,
    leaf: bool,
) -> Mapped {
    let fields: Vec<(Name<'_>, Value)> = fields
        .into_iter()
        .filter_map(|(recorded, value)| {
            let mapped = match map.target(recorded) {
                Some(Target::Drop) => return None,
                Some(Target::Rename(to)) => to.as_str(),
                None => recorded,
            };
            Some((Name { mapped, recorded }, value))
        })
        .collect();
    let kind = explicit
        .or_else(|| {
            fields.iter().find_map(|(name, value)| match name.mapped {
                "gen_ai.operation.name" => text(value).and_then(operation_kind),
                "openinference.span.kind" | "traceloop.span.kind" => {
                    text(value).and_then(span_kind)
                }
                _ => None,
            })
        })
        .unwrap_or(if leaf {
            EventType::Tool
        } else {
            EventType::Chain
        });
    let mut mapping = Mapping {
        buckets: Buckets::default(),
        kind,
        request_model: None,
        response_model: None,
        tool: None,
        error: None,
        later: Later::default(),
    };
    // The app's own bucket keys (`inputs.x`…) first: a mapped field never
    // takes their place.
    let (own, others): (Vec<_>, Vec<_>) = fields
        .into_iter()
        .partition(|(name, _)| bucket_key(name.mapped).is_some());
    for (name, value) in own.into_iter().chain(others) {
        place(&mut mapping, name, value);
    }
    let later = std::mem::take(&mut mapping.later);
    let input = later.input;
    if mapping.buckets[INPUTS].contains_key("chat_history") {
        for (recorded, messages) in later.system {
            mapping.keep(recorded, Value::Array(messages));
        }
        if let Some((recorded, messages)) = input {
            mapping.keep(recorded, Value::Array(messages));
        }
    } else {
        let system = later.system.into_iter().flat_map(|(_, messages)| messages);
        let history = chat_history(system.collect(), input.map(|(_, messages)| messages));
        if let Some(history) = history {
            mapping.buckets[INPUTS].insert("chat_history".to_owned(), Value::Array(history));
        }
    }
    match later.output {
        Some((recorded, Value::Object(message))) => mapping.spread(OUTPUTS, message, recorded),
        Some((recorded, other)) => {
            let name = Name {
                mapped: recorded,
                recorded,
            };
            mapping.put(OUTPUTS, "messages", other, name);
        }
        None => {}
    }
    for (recorded, bucket, object) in later.spread {
        mapping.spread(bucket, object, recorded);
    }
    if kind == EventType::Model {
        total_tokens(&mut mapping.buckets[METRICS]);
    }
    Mapped {
        buckets: mapping.buckets,
        kind,
        model: mapping.request_model.or(mapping.response_model),
        tool: mapping.tool,
        error: mapping.error,
    }
}

/// One field into its place.
fn place(mapping: &mut Mapping, name: Name<'_>, value: Value) {
    match name.mapped {
        // Kinds (read before, in `map`).
        "gen_ai.operation.name" => mapping.put(METADATA, name.mapped, value, name),
        "openinference.span.kind" | "traceloop.span.kind" => {
            let kind = text(&value).map(str::to_ascii_lowercase);
            mapping.put(
                METADATA,
                "span_kind",
                kind.map_or(value, Value::String),
                name,
            );
        }
        // Messages, placed after the rest.
        "gen_ai.system_instructions" => {
            let messages = system_messages(value);
            mapping.later.system.push((name.recorded, messages));
        }
        "gen_ai.input.messages" | "gen_ai.prompt" => {
            let messages = input_messages(value);
            if mapping.later.input.is_some() {
                mapping.keep(name.recorded, Value::Array(messages));
            } else {
                mapping.later.input = Some((name.recorded, messages));
            }
        }
        "gen_ai.output.messages" | "gen_ai.completion" => {
            let message = output_message(value);
            if mapping.later.output.is_some() {
                mapping.keep(name.recorded, message);
            } else {
                mapping.later.output = Some((name.recorded, message));
            }
        }
        // Tool calls.
        "gen_ai.tool.name" => {
            if mapping.tool.is_none() {
                mapping.tool = text(&value).map(str::to_owned);
            }
            mapping.put(CONFIG, "tool_name", value, name);
        }
        "gen_ai.tool.description" => mapping.put(CONFIG, "tool_description", value, name),
        "gen_ai.tool.call.id" => mapping.put(METADATA, "tool_call_id", value, name),
        "gen_ai.tool.call.arguments" => mapping.spread_later(INPUTS, "arguments", value, name),
        "gen_ai.tool.call.result" => mapping.put(OUTPUTS, "result", parsed(value), name),
        // Model and request.
        "gen_ai.request.model" | "llm.model_name" => {
            if mapping.request_model.is_none() {
                mapping.request_model = text(&value).map(str::to_owned);
            }
            mapping.put(CONFIG, "model", value, name);
        }
        "gen_ai.provider.name" | "gen_ai.system" | "llm.provider" | "llm.system" => {
            mapping.put(CONFIG, "provider", value, name);
        }
        "llm.invocation_parameters" => {
            mapping.spread_later(CONFIG, "invocation_parameters", value, name);
        }
        // Response.
        "gen_ai.response.model" => {
            if mapping.response_model.is_none() {
                mapping.response_model = text(&value).map(str::to_owned);
            }
            mapping.put(METADATA, "response_model", value, name);
        }
        "gen_ai.response.id" => mapping.put(METADATA, "response_id", value, name),
        "gen_ai.response.finish_reasons" => {
            mapping.put(METADATA, "finish_reasons", parsed(value), name);
        }
        // Errors: the text in `error`, the field kept too.
        "error.type" | "gen_ai.tool.error.type" | "exception.message" => {
            if mapping.error.is_none() {
                mapping.error = Some(match &value {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                });
            }
            mapping.put(METADATA, name.mapped, value, name);
        }
        mapped => {
            if let Some(key) = usage_metric(mapped) {
                // The names HoneyHive sums into a session on model events
                // only; elsewhere (an agent's run, which repeats its model
                // calls' usage) the field stays in metadata.
                if mapping.kind == EventType::Model {
                    mapping.put(METRICS, &key, value, name);
                } else {
                    mapping.put(METADATA, name.recorded, value, name);
                }
            } else if let Some(rest) = mapped.strip_prefix("gen_ai.request.") {
                mapping.put(CONFIG, rest, value, name);
            } else {
                let (bucket, key) = bucket_of(mapped);
                mapping.put(bucket, key, value, name);
            }
        }
    }
}

/// A usage field's metric name: the three HoneyHive sums, and any other
/// `gen_ai.usage.*` with its dots as `_` (`cache_read.input_tokens` →
/// `cache_read_input_tokens`: a metric name without a dot, which
/// HoneyHive's filters would read as a path).
fn usage_metric(name: &str) -> Option<String> {
    let key = match name {
        "gen_ai.usage.input_tokens"
        | "gen_ai.usage.prompt_tokens"
        | "llm.usage.prompt_tokens"
        | "llm.token_count.prompt" => "prompt_tokens",
        "gen_ai.usage.output_tokens"
        | "gen_ai.usage.completion_tokens"
        | "llm.usage.completion_tokens"
        | "llm.token_count.completion" => "completion_tokens",
        "gen_ai.usage.total_tokens" | "llm.usage.total_tokens" | "llm.token_count.total" => {
            "total_tokens"
        }
        _ => return Some(name.strip_prefix("gen_ai.usage.")?.replace('.', "_")),
    };
    Some(key.to_owned())
}

/// `inputs.x` and the other bucket prefixes: the bucket and the rest.
fn bucket_key(name: &str) -> Option<(usize, &str)> {
    BUCKETS.iter().enumerate().find_map(|(index, bucket)| {
        let rest = name.strip_prefix(bucket.as_str())?.strip_prefix('.')?;
        Some((index, rest))
    })
}

/// `inputs.x` and the other bucket prefixes; anything else to `metadata`
/// under its full name.
pub(super) fn bucket_of(name: &str) -> (usize, &str) {
    bucket_key(name).unwrap_or((METADATA, name))
}

/// `total_tokens` from its parts, when the span gave the parts only.
fn total_tokens(metrics: &mut Map<String, Value>) {
    if metrics.contains_key("total_tokens") {
        return;
    }
    let count = |key| metrics.get(key).and_then(Value::as_u64);
    if let (Some(prompt), Some(completion)) = (count("prompt_tokens"), count("completion_tokens")) {
        metrics.insert(
            "total_tokens".to_owned(),
            prompt.saturating_add(completion).into(),
        );
    }
}

fn text(value: &Value) -> Option<&str> {
    value.as_str()
}

/// `gen_ai.operation.name` (semconv 1.36) to the event type.
fn operation_kind(operation: &str) -> Option<EventType> {
    match operation {
        "chat" | "text_completion" | "generate_content" | "embeddings" => Some(EventType::Model),
        "execute_tool" => Some(EventType::Tool),
        "invoke_agent" | "create_agent" => Some(EventType::Chain),
        _ => None,
    }
}

/// OpenInference's and Traceloop's span kinds to the event type.
fn span_kind(kind: &str) -> Option<EventType> {
    match kind.to_ascii_lowercase().as_str() {
        "llm" | "embedding" => Some(EventType::Model),
        "tool" | "retriever" | "reranker" => Some(EventType::Tool),
        "agent" | "chain" | "task" | "workflow" => Some(EventType::Chain),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
