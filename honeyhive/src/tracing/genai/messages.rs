//! Chat messages in the shapes frameworks record them (GenAI semconv's
//! `{role, parts: [...]}`, the older prompt and completion, OpenAI's) as
//! the `{role, content, tool_calls}` messages HoneyHive shows; and JSON
//! text parsed where a framework left JSON as text.

use serde_json::{Map, Value};

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
pub(super) fn system_messages(value: Value) -> Vec<Value> {
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
pub(super) fn input_messages(value: Value) -> Vec<Value> {
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
pub(super) fn output_message(value: Value) -> Value {
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

pub(super) fn chat_history(
    mut system: Vec<Value>,
    input: Option<Vec<Value>>,
) -> Option<Vec<Value>> {
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
/// already in that shape is left as it is. Nothing is dropped: a part's
/// other keys go with what it becomes; parts with no place in the shape
/// (media, reasoning, provider items, a text part where the message has a
/// `content` already, a part with a key the shape uses) stay under
/// `parts`, and `parts` that is no list stays as it is.
fn chat_messages(message: Value) -> Vec<Value> {
    let Value::Object(mut message) = message else {
        return vec![message];
    };
    let parts = match message.remove("parts") {
        Some(Value::Array(parts)) => parts,
        Some(other) => {
            message.insert("parts".to_owned(), other);
            return vec![Value::Object(message)];
        }
        None => return vec![Value::Object(message)],
    };
    let has_content = message.contains_key("content");
    let has_calls = message.contains_key("tool_calls");
    let mut messages = Vec::new();
    let mut content: Vec<Value> = Vec::new();
    let mut tool_calls = Vec::new();
    let mut kept = Vec::new();
    for part in parts {
        let Value::Object(mut part) = part else {
            kept.push(part);
            continue;
        };
        let uses = |keys: &[&str]| keys.iter().any(|key| part.contains_key(*key));
        match part.get("type").and_then(Value::as_str) {
            Some("text")
                if !has_content
                    && part.len() == 2
                    && part.get("content").is_some_and(Value::is_string) =>
            {
                content.extend(part.remove("content"));
            }
            Some("tool_call") if !has_calls && !uses(&["function"]) => {
                part.remove("type");
                let mut function = Map::new();
                function.extend(part.remove("name").map(|name| ("name".to_owned(), name)));
                let arguments = part.remove("arguments").map(parsed);
                function.extend(arguments.map(|arguments| ("arguments".to_owned(), arguments)));
                let mut call = Map::new();
                call.extend(part.remove("id").map(|id| ("id".to_owned(), id)));
                call.insert("type".to_owned(), "function".into());
                call.insert("function".to_owned(), Value::Object(function));
                call.extend(part);
                tool_calls.push(Value::Object(call));
            }
            Some("tool_call_response") if !uses(&["role", "tool_call_id", "content"]) => {
                part.remove("type");
                let mut answer = Map::new();
                answer.insert("role".to_owned(), "tool".into());
                if let Some(id) = part.remove("id") {
                    answer.insert("tool_call_id".to_owned(), id);
                }
                // `response` in semconv's schema, `result` in its examples;
                // with both, `result` stays a key of the message.
                let response = part.remove("response").or_else(|| part.remove("result"));
                answer.insert("content".to_owned(), response.map_or(Value::Null, parsed));
                answer.extend(part);
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
    // A message of tool answers only is those answers, unless it has keys
    // of its own (a `name`…) to keep.
    let answers_only = !messages.is_empty()
        && content.is_none()
        && tool_calls.is_empty()
        && kept.is_empty()
        && message.keys().all(|key| key == "role");
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
