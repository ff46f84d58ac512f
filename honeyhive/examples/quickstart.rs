//! Logs a small support-bot session.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! With `HH_API_KEY` set, it logs to the real API (configured like
//! `Client::from_env`: `HH_API_URL`, `HH_PROJECT`, `HH_SOURCE`, ...). Without
//! it, it starts `MockHoneyHive` on 127.0.0.1, which checks every request
//! against openapi.yaml, and prints what the mock received. No network needed.

use std::time::{Duration, SystemTime};

use honeyhive::testing::MockHoneyHive;
use honeyhive::{Client, Event, SessionId};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock;
    let client = if std::env::var_os("HH_API_KEY").is_some() {
        mock = None;
        let client = Client::from_env()?;
        println!("HH_API_KEY is set: logging to {}", client.base_url());
        client
    } else {
        let started = MockHoneyHive::start_async().await;
        println!(
            "HH_API_KEY is not set: logging to a local mock of the HoneyHive API at {},\n\
             which validates every request against openapi.yaml. Set HH_API_KEY to log for real.",
            started.base_url()
        );
        let client = started
            .client_builder()
            .project("quickstart")
            .source("example")
            .build()?;
        mock = Some(started);
        client
    };

    let session = client.session(SessionId::new());
    println!("\nsession {}", session.id());

    let started = SystemTime::now();
    let root = session
        .log(
            Event::session("support-chat")
                .inputs(json!({"channel": "web"}))
                .user_properties(json!({"plan": "pro", "locale": "en-GB"}))
                .start_time(started),
        )
        .await?;
    println!("  session event   {}", root.event_id);

    let model = session
        .log(
            Event::model("gpt-4o")
                .config(json!({"provider": "openai", "temperature": 0.2, "max_tokens": 256}))
                .inputs(json!({"messages": [
                    {"role": "system", "content": "You are a helpful support agent."},
                    {"role": "user", "content": "Where is my order #1234?"}
                ]}))
                .outputs(json!({"role": "assistant", "content": "Your order shipped today and arrives Monday."}))
                .metrics(json!({"prompt_tokens": 41, "completion_tokens": 12}))
                .start_time(started)
                .end_time(started + Duration::from_millis(820))
                .duration(Duration::from_millis(820))
                .child(
                    Event::tool("order-lookup")
                        .inputs(json!({"order_id": "1234"}))
                        .outputs(json!({"status": "shipped", "eta": "Monday"}))
                        .duration(Duration::from_micros(12_500)),
                ),
        )
        .await?;
    println!("  model event     {} (with a tool child)", model.event_id);

    let chain = session
        .log(
            Event::chain("format-reply")
                .inputs(json!({"draft": "Your order shipped today and arrives Monday."}))
                .outputs(
                    json!({"reply": "Good news: your order shipped today and arrives Monday."}),
                )
                .metadata(json!({"template": "friendly-v2"}))
                .duration(Duration::from_millis(3)),
        )
        .await?;
    println!("  chain event     {}", chain.event_id);

    if let Some(mock) = mock {
        let events = mock.events();
        // A request carries an event tree: the tool nested in the model
        // event is an event too.
        fn in_tree(event: &serde_json::Value) -> usize {
            1 + event["children"]
                .as_array()
                .map_or(0, |children| children.iter().map(in_tree).sum())
        }
        println!(
            "\nThe mock accepted {} requests carrying {} events; this is what it received:",
            events.len(),
            events.iter().map(|e| in_tree(&e.event)).sum::<usize>()
        );
        for received in &events {
            println!(
                "\nPOST /session/{}/event\n{}",
                received.session_id,
                serde_json::to_string_pretty(&received.event)?
            );
        }
        let violations = mock.violations();
        if !violations.is_empty() {
            for violation in &violations {
                eprintln!("spec violation: {violation}");
            }
            return Err(format!("{} requests broke the spec", violations.len()).into());
        }
        println!("\nNo request broke the spec.");
    }
    Ok(())
}
