//! The event every Logger benchmark logs: a small, realistic model event.

use std::time::Duration;

use honeyhive::Event;
use serde_json::json;

/// The benchmark's event, numbered `i` (in its metrics).
pub fn sample_event(i: usize) -> Event {
    Event::model("gpt-4o")
        .config(json!({"provider": "openai", "temperature": 0.2}))
        .inputs(json!({"messages": [{"role": "user", "content": "Where is my order #1234?"}]}))
        .outputs(json!({"role": "assistant", "content": "It shipped today."}))
        .metrics(json!({"prompt_tokens": 41, "completion_tokens": 12, "i": i}))
        .duration(Duration::from_millis(820))
}
