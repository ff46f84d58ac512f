//! The GenAI mapping: a span's fields, as recorded, into HoneyHive's event
//! buckets. Runs when the Logger builds the event (on its runtime, not in
//! a `tracing` callback), so parsing JSON text costs the application
//! nothing. The table it follows is in the [module docs](super#genai-fields).

use serde_json::{Map, Value};

use super::field_map::{FieldMap, Target};
use crate::EventType;

/// The seven buckets, in the order [`Buckets`] holds them.
pub(super) const BUCKETS: [&str; 7] = [
    "inputs",
    "outputs",
    "config",
    "metadata",
    "metrics",
    "feedback",
    "user_properties",
];
pub(super) const INPUTS: usize = 0;
pub(super) const OUTPUTS: usize = 1;
pub(super) const CONFIG: usize = 2;
pub(super) const METADATA: usize = 3;
pub(super) const METRICS: usize = 4;

pub(super) type Buckets = [Map<String, Value>; 7];

/// What a span's fields make of its event.
#[derive(Default)]
pub(super) struct Mapped {
    pub(super) buckets: Buckets,
    /// From the span-kind fields (`gen_ai.operation.name`,
    /// `openinference.span.kind`, `traceloop.span.kind`).
    pub(super) kind: Option<EventType>,
    /// The model (`gen_ai.request.model`, else the response's): a model
    /// event's name.
    pub(super) model: Option<String>,
    /// `gen_ai.tool.name`: a tool event's name.
    pub(super) tool: Option<String>,
    /// `error.type`, `gen_ai.tool.error.type`, `exception.message`.
    pub(super) error: Option<String>,
}

/// Messages, gathered from their fields and put together at the end (the
/// system instructions come first, whichever field was recorded first).
#[derive(Default)]
struct Messages {
    system: Vec<Value>,
    input: Option<Vec<Value>>,
    output: Option<Value>,
}

/// Maps `fields` (name as recorded, value) through `map` and the GenAI
/// table. A field the table has no home for lands in `metadata` under its
/// own name, so nothing is lost.
pub(super) fn map(fields: Vec<(&'static str, Value)>, map: &FieldMap) -> Mapped {
    let mut mapped = Mapped::default();
    let mut messages = Messages::default();
    for (name, value) in fields {
        let name: &str = match map.target(name) {
            Some(Target::Drop) => continue,
            Some(Target::Rename(to)) => to,
            None => name,
        };
        place(&mut mapped, &mut messages, name, value);
    }
    if let Some(history) = chat_history(messages.system, messages.input) {
        mapped.buckets[INPUTS].insert("chat_history".to_owned(), Value::Array(history));
    }
    match messages.output {
        Some(Value::Object(message)) => {
            for (key, value) in message {
                mapped.buckets[OUTPUTS].entry(key).or_insert(value);
            }
        }
        Some(other) => {
            mapped.buckets[OUTPUTS].insert("messages".to_owned(), other);
        }
        None => {}
    }
    total_tokens(&mut mapped.buckets[METRICS]);
    mapped
}

/// One field into its place.
fn place(mapped: &mut Mapped, messages: &mut Messages, name: &str, value: Value) {
    let buckets = &mut mapped.buckets;
    let mut put = |bucket: usize, key: &str, value: Value| {
        buckets[bucket].insert(key.to_owned(), value);
    };
    match name {
        // Kinds.
        "gen_ai.operation.name" => {
            mapped.kind = mapped.kind.or(text(&value).and_then(operation_kind));
            put(METADATA, name, value);
        }
        "openinference.span.kind" | "traceloop.span.kind" => {
            mapped.kind = mapped.kind.or(text(&value).and_then(span_kind));
            let kind = text(&value).map(str::to_ascii_lowercase);
            put(METADATA, "span_kind", kind.map_or(value, Value::String));
        }
        // Messages.
        "gen_ai.system_instructions" => messages.system.extend(system_messages(value)),
        "gen_ai.input.messages" | "gen_ai.prompt" => {
            messages.input = Some(input_messages(value));
        }
        "gen_ai.output.messages" | "gen_ai.completion" => {
            messages.output = Some(output_message(value));
        }
        // Tool calls.
        "gen_ai.tool.name" => {
            mapped.tool = text(&value).map(str::to_owned);
            put(CONFIG, "tool_name", value);
        }
        "gen_ai.tool.description" => put(CONFIG, "tool_description", value),
        "gen_ai.tool.call.id" => put(METADATA, "tool_call_id", value),
        "gen_ai.tool.call.arguments" => match parsed(value) {
            Value::Object(arguments) => {
                for (key, value) in arguments {
                    buckets[INPUTS].insert(key, value);
                }
            }
            other => put(INPUTS, "arguments", other),
        },
        "gen_ai.tool.call.result" => put(OUTPUTS, "result", parsed(value)),
        // Model and request.
        "gen_ai.request.model" | "llm.model_name" => {
            mapped.model = text(&value).map(str::to_owned);
            put(CONFIG, "model", value);
        }
        "gen_ai.provider.name" | "gen_ai.system" | "llm.provider" | "llm.system" => {
            put(CONFIG, "provider", value);
        }
        "llm.invocation_parameters" => match parsed(value) {
            Value::Object(parameters) => {
                for (key, value) in parameters {
                    buckets[CONFIG].insert(key, value);
                }
            }
            other => put(CONFIG, "invocation_parameters", other),
        },
        // Response.
        "gen_ai.response.model" => {
            if mapped.model.is_none() {
                mapped.model = text(&value).map(str::to_owned);
            }
            put(METADATA, "response_model", value);
        }
        "gen_ai.response.id" => put(METADATA, "response_id", value),
        "gen_ai.response.finish_reasons" => put(METADATA, "finish_reasons", parsed(value)),
        // Usage, under the names HoneyHive sums.
        "gen_ai.usage.input_tokens"
        | "gen_ai.usage.prompt_tokens"
        | "llm.usage.prompt_tokens"
        | "llm.token_count.prompt" => put(METRICS, "prompt_tokens", value),
        "gen_ai.usage.output_tokens"
        | "gen_ai.usage.completion_tokens"
        | "llm.usage.completion_tokens"
        | "llm.token_count.completion" => put(METRICS, "completion_tokens", value),
        "gen_ai.usage.total_tokens" | "llm.usage.total_tokens" | "llm.token_count.total" => {
            put(METRICS, "total_tokens", value);
        }
        // Errors: the text in `error`, the field kept too.
        "error.type" | "gen_ai.tool.error.type" | "exception.message" => {
            if mapped.error.is_none() {
                mapped.error = Some(match &value {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                });
            }
            put(METADATA, name, value);
        }
        _ => {
            if let Some(rest) = name.strip_prefix("gen_ai.request.") {
                put(CONFIG, rest, value);
            } else if let Some(rest) = name.strip_prefix("gen_ai.usage.") {
                // `cache_read.input_tokens` → `cache_read_input_tokens`: a
                // metric name without a dot, which HoneyHive's filters
                // would read as a path.
                put(METRICS, &rest.replace('.', "_"), value);
            } else {
                let (bucket, key) = bucket_of(name);
                put(bucket, key, value);
            }
        }
    }
}

/// `inputs.x` and the other bucket prefixes; anything else to `metadata`
/// under its full name.
pub(super) fn bucket_of(name: &str) -> (usize, &str) {
    for (index, bucket) in BUCKETS.iter().enumerate() {
        if let Some(rest) = name
            .strip_prefix(bucket)
            .and_then(|rest| rest.strip_prefix('.'))
        {
            return (index, rest);
        }
    }
    (METADATA, name)
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

/// JSON text (an object, an array or a string) as JSON; anything else as
/// it came: text that is not JSON stays text, and so does `42` (a tool's
/// text answer is not a number because it reads as one).
pub(super) fn parsed(value: Value) -> Value {
    match value {
        Value::String(text) => {
            let trimmed = text.trim_start();
            let looks_like_json = trimmed.starts_with(['{', '[', '"']);
            match looks_like_json.then(|| serde_json::from_str::<Value>(&text)) {
                Some(Ok(json)) => json,
                _ => Value::String(text),
            }
        }
        other => other,
    }
}

/// `gen_ai.system_instructions`: parts (or text) as system messages.
fn system_messages(value: Value) -> Vec<Value> {
    let content = match parsed(value) {
        Value::Array(parts) => {
            return chat_messages(Value::Object(Map::from_iter([
                ("role".to_owned(), Value::from("system")),
                ("parts".to_owned(), Value::Array(parts)),
            ])));
        }
        other => other,
    };
    vec![role_content("system", content)]
}

/// `gen_ai.input.messages` or `gen_ai.prompt`: a list of messages, or text
/// (a user's prompt).
fn input_messages(value: Value) -> Vec<Value> {
    match parsed(value) {
        Value::Array(messages) if messages.iter().all(is_message) => {
            messages.into_iter().flat_map(chat_messages).collect()
        }
        message @ Value::Object(_) if is_message(&message) => chat_messages(message),
        other => vec![role_content("user", other)],
    }
}

/// `gen_ai.output.messages` or `gen_ai.completion`: one message as the
/// outputs themselves (`role`, `content`…), several as a list, text as
/// the assistant's content.
fn output_message(value: Value) -> Value {
    match parsed(value) {
        Value::Array(messages) if messages.iter().all(is_message) => {
            let mut messages: Vec<Value> = messages.into_iter().flat_map(chat_messages).collect();
            if messages.len() == 1 {
                messages.remove(0)
            } else {
                Value::Array(messages)
            }
        }
        message @ Value::Object(_) if is_message(&message) => {
            let mut messages = chat_messages(message);
            if messages.len() == 1 {
                messages.remove(0)
            } else {
                Value::Array(messages)
            }
        }
        other => role_content("assistant", other),
    }
}

fn chat_history(mut system: Vec<Value>, input: Option<Vec<Value>>) -> Option<Vec<Value>> {
    match input {
        None if system.is_empty() => None,
        None => Some(system),
        Some(input) => {
            // A system message both in the instructions and in the history
            // is shown once.
            let input: Vec<Value> = input
                .into_iter()
                .filter(|message| !system.contains(message))
                .collect();
            system.extend(input);
            Some(system)
        }
    }
}

fn is_message(value: &Value) -> bool {
    value.get("role").is_some_and(Value::is_string)
        && (value.get("parts").is_some() || value.get("content").is_some())
}

fn role_content(role: &str, content: Value) -> Value {
    Value::Object(Map::from_iter([
        ("role".to_owned(), Value::from(role)),
        ("content".to_owned(), content),
    ]))
}

/// A semconv message (`role`, `parts`) in HoneyHive's chat shape (`role`,
/// `content`, `tool_calls`, `tool_call_id`), OpenAI's: each tool call's
/// response becomes a `tool` message of its own (first, as they answer
/// earlier calls), the rest one message with the original role. A message
/// already in that shape is left as it is; parts with no place in it
/// (media, reasoning, provider items) stay under `parts`.
fn chat_messages(message: Value) -> Vec<Value> {
    let Value::Object(mut message) = message else {
        return vec![message];
    };
    let Some(Value::Array(parts)) = message.remove("parts") else {
        return vec![Value::Object(message)];
    };
    let mut messages = Vec::new();
    let mut content: Vec<Value> = Vec::new();
    let mut tool_calls = Vec::new();
    let mut kept = Vec::new();
    for part in parts {
        let Value::Object(mut part) = part else {
            kept.push(part);
            continue;
        };
        match part.get("type").and_then(Value::as_str) {
            Some("text") if part.get("content").is_some_and(Value::is_string) => {
                content.extend(part.remove("content"));
            }
            Some("tool_call") => {
                let mut function = Map::new();
                function.extend(part.remove("name").map(|name| ("name".to_owned(), name)));
                let arguments = part.remove("arguments").map(parsed);
                function.extend(arguments.map(|arguments| ("arguments".to_owned(), arguments)));
                let mut call = Map::new();
                call.extend(part.remove("id").map(|id| ("id".to_owned(), id)));
                call.insert("type".to_owned(), "function".into());
                call.insert("function".to_owned(), Value::Object(function));
                tool_calls.push(Value::Object(call));
            }
            Some("tool_call_response") => {
                let mut answer = Map::new();
                answer.insert("role".to_owned(), "tool".into());
                if let Some(id) = part.remove("id") {
                    answer.insert("tool_call_id".to_owned(), id);
                }
                // `response` in semconv's schema, `result` in its examples.
                let response = part.remove("response").or_else(|| part.remove("result"));
                answer.insert("content".to_owned(), response.map_or(Value::Null, parsed));
                messages.push(Value::Object(answer));
            }
            _ => kept.push(Value::Object(part)),
        }
    }
    let content = match content.len() {
        0 => None,
        1 => content.pop(),
        _ if content.iter().all(Value::is_string) => Some(Value::String(
            content
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n"),
        )),
        _ => Some(Value::Array(content)),
    };
    let answers_only =
        !messages.is_empty() && content.is_none() && tool_calls.is_empty() && kept.is_empty();
    if answers_only {
        return messages;
    }
    if let Some(content) = content {
        message.insert("content".to_owned(), content);
    }
    if !tool_calls.is_empty() {
        message.insert("tool_calls".to_owned(), Value::Array(tool_calls));
    }
    if !kept.is_empty() {
        message.insert("parts".to_owned(), Value::Array(kept));
    }
    messages.push(Value::Object(message));
    messages
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn mapped(fields: &[(&'static str, Value)]) -> Mapped {
        map(fields.to_vec(), &FieldMap::new())
    }

    fn bucket(mapped: &Mapped, index: usize) -> Value {
        Value::Object(mapped.buckets[index].clone())
    }

    /// The `gen_ai.input.messages` example of GenAI semconv 1.36: a
    /// question, the model's tool call, the tool's response.
    #[test]
    fn semconv_input_messages_become_the_chat_history_in_openai_shape() {
        let messages = json!([
            {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
            {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_VSPygqKTWdrhaFErNvMV18Yl",
                "name": "get_weather", "arguments": {"location": "Paris"}}]},
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_VSPygqKTWdrhaFErNvMV18Yl",
                "result": "rainy, 57°F"}]},
        ]);
        let mapped = mapped(&[("gen_ai.input.messages", messages.to_string().into())]);
        assert_eq!(
            bucket(&mapped, INPUTS),
            json!({"chat_history": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "tool_calls": [{"id": "call_VSPygqKTWdrhaFErNvMV18Yl",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"location": "Paris"}}}]},
                {"role": "tool", "tool_call_id": "call_VSPygqKTWdrhaFErNvMV18Yl",
                    "content": "rainy, 57°F"},
            ]})
        );
        assert!(mapped.buckets[METADATA].is_empty());
    }

    /// The `gen_ai.system_instructions` and `gen_ai.output.messages`
    /// examples: the instructions lead the history, wherever they were
    /// recorded; the one output message is the outputs.
    #[test]
    fn system_instructions_lead_the_history_and_one_output_message_is_the_outputs() {
        let output = json!([{"role": "assistant", "finish_reason": "stop",
            "parts": [{"type": "text", "content": "The weather in Paris is currently rainy."}]}]);
        let mapped = mapped(&[
            (
                "gen_ai.input.messages",
                json!([{"role": "user", "parts": [{"type": "text", "content": "Weather?"}]}])
                    .to_string()
                    .into(),
            ),
            (
                "gen_ai.system_instructions",
                json!([{"type": "text", "content": "You are a forecaster."}])
                    .to_string()
                    .into(),
            ),
            ("gen_ai.output.messages", output.to_string().into()),
        ]);
        assert_eq!(
            bucket(&mapped, INPUTS)["chat_history"],
            json!([
                {"role": "system", "content": "You are a forecaster."},
                {"role": "user", "content": "Weather?"},
            ])
        );
        assert_eq!(
            bucket(&mapped, OUTPUTS),
            json!({"role": "assistant", "finish_reason": "stop",
                "content": "The weather in Paris is currently rainy."})
        );
    }

    #[test]
    fn text_that_is_not_json_stays_text_and_parts_without_a_place_are_kept() {
        let mapped = mapped(&[
            ("gen_ai.prompt", "{not json".into()),
            ("gen_ai.completion", "Sure.".into()),
        ]);
        assert_eq!(
            bucket(&mapped, INPUTS),
            json!({"chat_history": [{"role": "user", "content": "{not json"}]})
        );
        assert_eq!(
            bucket(&mapped, OUTPUTS),
            json!({"role": "assistant", "content": "Sure."})
        );
        let image = json!({"type": "uri", "modality": "image", "uri": "https://example.com/a.png"});
        let messages =
            json!([{"role": "user", "parts": [{"type": "text", "content": "What is it?"}, image]}]);
        let mapped = super::map(
            vec![("gen_ai.input.messages", messages.to_string().into())],
            &FieldMap::new(),
        );
        assert_eq!(
            bucket(&mapped, INPUTS)["chat_history"],
            json!([{"role": "user", "content": "What is it?", "parts": [image]}])
        );
    }

    #[test]
    fn usage_lands_on_the_metric_names_honeyhive_sums_with_a_total() {
        let mapped = mapped(&[
            ("gen_ai.usage.input_tokens", 100.into()),
            ("gen_ai.usage.output_tokens", 180.into()),
            ("gen_ai.usage.cache_read.input_tokens", 50.into()),
        ]);
        assert_eq!(
            bucket(&mapped, METRICS),
            json!({"prompt_tokens": 100, "completion_tokens": 180,
                "cache_read_input_tokens": 50, "total_tokens": 280})
        );
        // A total the span gives is kept as given.
        let given = self::mapped(&[
            ("llm.token_count.prompt", 1.into()),
            ("llm.token_count.completion", 2.into()),
            ("llm.token_count.total", 4.into()),
        ]);
        assert_eq!(bucket(&given, METRICS)["total_tokens"], 4);
    }

    #[test]
    fn request_parameters_and_the_provider_are_config_and_the_response_metadata() {
        let mapped = mapped(&[
            ("gen_ai.operation.name", "chat".into()),
            ("gen_ai.provider.name", "openai".into()),
            ("gen_ai.request.model", "gpt-4".into()),
            ("gen_ai.request.temperature", 0.5.into()),
            ("gen_ai.request.max_tokens", 200.into()),
            ("gen_ai.request.top_p", 1.0.into()),
            ("gen_ai.response.id", "chatcmpl-123".into()),
            ("gen_ai.response.model", "gpt-4-0613".into()),
            ("gen_ai.response.finish_reasons", r#"["stop"]"#.into()),
        ]);
        assert_eq!(mapped.kind, Some(EventType::Model));
        assert_eq!(mapped.model.as_deref(), Some("gpt-4"));
        assert_eq!(
            bucket(&mapped, CONFIG),
            json!({"provider": "openai", "model": "gpt-4", "temperature": 0.5,
                "max_tokens": 200, "top_p": 1.0})
        );
        assert_eq!(
            bucket(&mapped, METADATA),
            json!({"gen_ai.operation.name": "chat", "response_id": "chatcmpl-123",
                "response_model": "gpt-4-0613", "finish_reasons": ["stop"]})
        );
    }

    #[test]
    fn a_tool_call_has_its_arguments_in_and_its_result_out() {
        let mapped = mapped(&[
            ("gen_ai.operation.name", "execute_tool".into()),
            ("gen_ai.tool.name", "get_weather".into()),
            ("gen_ai.tool.call.id", "call_1".into()),
            (
                "gen_ai.tool.call.arguments",
                r#"{"location": "Paris"}"#.into(),
            ),
            ("gen_ai.tool.call.result", r#"{"forecast": "rainy"}"#.into()),
        ]);
        assert_eq!(mapped.kind, Some(EventType::Tool));
        assert_eq!(mapped.tool.as_deref(), Some("get_weather"));
        assert_eq!(bucket(&mapped, INPUTS), json!({"location": "Paris"}));
        assert_eq!(
            bucket(&mapped, OUTPUTS),
            json!({"result": {"forecast": "rainy"}})
        );
        assert_eq!(bucket(&mapped, CONFIG), json!({"tool_name": "get_weather"}));
        assert_eq!(bucket(&mapped, METADATA)["tool_call_id"], "call_1");
        // Arguments that are not an object keep a key of their own.
        let list = self::mapped(&[("gen_ai.tool.call.arguments", "[1, 2]".into())]);
        assert_eq!(bucket(&list, INPUTS), json!({"arguments": [1, 2]}));
    }

    #[test]
    fn an_error_type_is_the_error_and_stays_in_metadata() {
        let mapped = mapped(&[("gen_ai.tool.error.type", "timeout".into())]);
        assert_eq!(mapped.error.as_deref(), Some("timeout"));
        assert_eq!(
            bucket(&mapped, METADATA),
            json!({"gen_ai.tool.error.type": "timeout"})
        );
    }

    #[test]
    fn openinference_names_map_like_their_semconv_twins() {
        let mapped = mapped(&[
            ("openinference.span.kind", "LLM".into()),
            ("llm.model_name", "claude-3".into()),
            (
                "llm.invocation_parameters",
                r#"{"temperature": 0.1}"#.into(),
            ),
        ]);
        assert_eq!(mapped.kind, Some(EventType::Model));
        assert_eq!(
            bucket(&mapped, CONFIG),
            json!({"model": "claude-3", "temperature": 0.1})
        );
        assert_eq!(bucket(&mapped, METADATA), json!({"span_kind": "llm"}));
    }

    #[test]
    fn the_field_map_renames_and_drops_before_the_mapping_and_the_rest_is_metadata() {
        let fields = FieldMap::new()
            .rename("myfw.question", "gen_ai.prompt")
            .drop_prefix("myfw.internal.");
        let mapped = super::map(
            vec![
                ("myfw.question", "Hi?".into()),
                ("myfw.internal.retry", 2.into()),
                ("rig.completion_parent", true.into()),
                ("rig.provider_request_id", "req-1".into()),
                ("request.path", "/chat".into()),
            ],
            &fields,
        );
        assert_eq!(
            bucket(&mapped, INPUTS),
            json!({"chat_history": [{"role": "user", "content": "Hi?"}]})
        );
        assert_eq!(
            bucket(&mapped, METADATA),
            json!({"provider_request_id": "req-1", "request.path": "/chat"})
        );
    }
}
