//! The mapping, from the GenAI semantic conventions' examples and the
//! shapes frameworks record.
use serde_json::json;

use super::*;

fn mapped(fields: &[(&'static str, Value)]) -> Mapped {
    map(fields.to_vec(), &FieldMap::new(), None, true)
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
        None,
        true,
    );
    assert_eq!(
        bucket(&mapped, INPUTS)["chat_history"],
        json!([{"role": "user", "content": "What is it?", "parts": [image]}])
    );
}

#[test]
fn usage_lands_on_the_metric_names_honeyhive_sums_with_a_total() {
    let mapped = mapped(&[
        ("gen_ai.operation.name", "chat".into()),
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
        ("openinference.span.kind", "LLM".into()),
        ("llm.token_count.prompt", 1.into()),
        ("llm.token_count.completion", 2.into()),
        ("llm.token_count.total", 4.into()),
    ]);
    assert_eq!(bucket(&given, METRICS)["total_tokens"], 4);
}

/// An agent's run records its model calls' usage again: on any event
/// but a model event the usage stays in metadata under its own names,
/// so a session's sum counts each token once.
#[test]
fn usage_off_a_model_event_stays_in_metadata_under_its_own_names() {
    let fields = [
        ("gen_ai.operation.name", "invoke_agent".into()),
        ("gen_ai.usage.input_tokens", 65.into()),
        ("gen_ai.usage.output_tokens", 16.into()),
        ("gen_ai.usage.cache_read.input_tokens", 5.into()),
    ];
    let agent = map(fields.to_vec(), &FieldMap::new(), None, false);
    assert_eq!(agent.kind, EventType::Chain);
    assert!(agent.buckets[METRICS].is_empty());
    assert_eq!(
        bucket(&agent, METADATA),
        json!({"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 65,
            "gen_ai.usage.output_tokens": 16, "gen_ai.usage.cache_read.input_tokens": 5})
    );
    // An explicit type decides too.
    let fields = [("llm.token_count.prompt", 3.into())];
    let model = map(
        fields.to_vec(),
        &FieldMap::new(),
        Some(EventType::Model),
        true,
    );
    assert_eq!(bucket(&model, METRICS), json!({"prompt_tokens": 3}));
}

/// When a field's place is taken, by the app's own key or by a field
/// placed first, the field is kept in metadata under its recorded
/// name: nothing is overwritten, nothing dropped.
#[test]
fn a_field_whose_place_is_taken_is_kept_in_metadata_under_its_name() {
    let tool = mapped(&[
        ("gen_ai.operation.name", "execute_tool".into()),
        (
            "gen_ai.tool.call.arguments",
            r#"{"city": "Paris", "units": "C"}"#.into(),
        ),
        // Recorded after the arguments, still the app's.
        ("inputs.city", "Lyon".into()),
        ("inputs.chat_history", "the app's".into()),
        ("gen_ai.prompt", "Weather?".into()),
        (
            "gen_ai.completion",
            r#"{"role": "assistant", "content": "Sunny", "n": 1}"#.into(),
        ),
        ("outputs.content", "the app's answer".into()),
        ("gen_ai.output.messages", "Later".into()),
        ("gen_ai.system", "openai".into()),
        ("gen_ai.provider.name", "azure".into()),
        (
            "llm.invocation_parameters",
            r#"{"model": "x", "seed": 1}"#.into(),
        ),
        ("gen_ai.request.model", "gpt-4".into()),
        ("config.provider", "the app's".into()),
    ]);
    assert_eq!(
        bucket(&tool, INPUTS),
        json!({"city": "Lyon", "units": "C", "chat_history": "the app's"})
    );
    assert_eq!(
        bucket(&tool, OUTPUTS),
        json!({"content": "the app's answer", "role": "assistant", "n": 1})
    );
    assert_eq!(
        bucket(&tool, CONFIG),
        json!({"provider": "the app's", "model": "gpt-4", "seed": 1})
    );
    assert_eq!(
        bucket(&tool, METADATA),
        json!({
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.call.arguments": {"city": "Paris"},
            "gen_ai.prompt": [{"role": "user", "content": "Weather?"}],
            "gen_ai.completion": {"content": "Sunny"},
            "gen_ai.output.messages": {"role": "assistant", "content": "Later"},
            "gen_ai.system": "openai",
            "gen_ai.provider.name": "azure",
            "llm.invocation_parameters": {"model": "x"},
        })
    );
    // Two fields for one place: the first recorded wins, the second is
    // kept; likewise for two names of one token count.
    let model = mapped(&[
        ("gen_ai.operation.name", "chat".into()),
        ("gen_ai.prompt", "Old".into()),
        (
            "gen_ai.input.messages",
            r#"[{"role": "user", "content": "New"}]"#.into(),
        ),
        ("gen_ai.usage.input_tokens", 10.into()),
        ("gen_ai.usage.prompt_tokens", 11.into()),
    ]);
    assert_eq!(
        bucket(&model, INPUTS),
        json!({"chat_history": [{"role": "user", "content": "Old"}]})
    );
    assert_eq!(
        bucket(&model, METADATA)["gen_ai.input.messages"],
        json!([{"role": "user", "content": "New"}])
    );
    assert_eq!(bucket(&model, METRICS)["prompt_tokens"], 10);
    assert_eq!(bucket(&model, METADATA)["gen_ai.usage.prompt_tokens"], 11);
    // The app's metadata key has the loser's name too: a suffix.
    let taken = mapped(&[
        ("gen_ai.system", "openai".into()),
        ("gen_ai.provider.name", "azure".into()),
        ("metadata.gen_ai.provider.name", "the app's".into()),
    ]);
    assert_eq!(
        bucket(&taken, METADATA),
        json!({"gen_ai.provider.name": "the app's", "gen_ai.provider.name#2": "azure"})
    );
}

/// Within a message, keys the shape has no place for go with what
/// their part becomes, or stay under `parts`.
#[test]
fn message_parts_keep_every_key() {
    let messages = json!([
        {"role": "user", "parts": "not a list"},
        {"role": "assistant", "parts": [
            {"type": "tool_call", "id": "c1", "name": "f", "arguments": "{}", "index": 0},
            {"type": "tool_call", "function": "its own"},
        ]},
        {"role": "tool", "name": "f", "parts": [
            {"type": "tool_call_response", "id": "c1", "response": "ok", "result": "raw"},
        ]},
        {"role": "user", "content": "Mine", "parts": [{"type": "text", "content": "Also"}]},
    ]);
    let mapped = mapped(&[("gen_ai.input.messages", messages.to_string().into())]);
    assert_eq!(
        bucket(&mapped, INPUTS)["chat_history"],
        json!([
            {"role": "user", "parts": "not a list"},
            {"role": "assistant",
                "tool_calls": [{"id": "c1", "type": "function", "index": 0,
                    "function": {"name": "f", "arguments": {}}}],
                "parts": [{"type": "tool_call", "function": "its own"}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok", "result": "raw"},
            {"role": "tool", "name": "f"},
            {"role": "user", "content": "Mine", "parts": [{"type": "text", "content": "Also"}]},
        ])
    );
}

/// The names the layer reads while recording are not read here: a
/// field renamed to one stays in metadata under it.
#[test]
fn a_rename_to_a_name_read_while_recording_lands_in_metadata() {
    let renames = FieldMap::empty()
        .rename("myfw.failure", "error")
        .rename("myfw.kind", "honeyhive.event_type");
    let fields = [
        ("myfw.failure", "boom".into()),
        ("myfw.kind", "model".into()),
    ];
    let mapped = map(fields.to_vec(), &renames, None, true);
    assert_eq!(mapped.error, None);
    assert_eq!(mapped.kind, EventType::Tool);
    assert_eq!(
        bucket(&mapped, METADATA),
        json!({"error": "boom", "honeyhive.event_type": "model"})
    );
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
    assert_eq!(mapped.kind, EventType::Model);
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
    assert_eq!(mapped.kind, EventType::Tool);
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
    assert_eq!(mapped.kind, EventType::Model);
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
        None,
        true,
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
