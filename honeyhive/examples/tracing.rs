//! An app instrumented with `tracing`: its spans become one HoneyHive event
//! tree per request.
//!
//! ```text
//! cargo run --example tracing --features tracing
//! ```
//!
//! With `HH_API_KEY` set, it logs to the real API (configured like
//! `Client::from_env`). Without it, it logs to `MockHoneyHive` on 127.0.0.1,
//! which checks every request against openapi.yaml, and prints the tree the
//! mock received. No network needed.

use std::time::Duration;

use honeyhive::testing::MockHoneyHive;
use honeyhive::tracing::HoneyHiveLayer;
use honeyhive::{Client, Logger, LoggerConfig};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// A tool call: a leaf span.
async fn search(query: &str) -> String {
    let span = tracing::info_span!(
        "search",
        gen_ai.operation.name = "execute_tool",
        inputs.query = query,
        outputs.hits = tracing::field::Empty
    );
    async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        tracing::Span::current().record("outputs.hits", 3);
        "3 results".to_owned()
    }
    .instrument(span)
    .await
}

/// A model call, named the way OpenTelemetry's GenAI conventions name it.
async fn chat(prompt: &str) -> String {
    let span = tracing::info_span!(
        "chat gpt-4o",
        gen_ai.operation.name = "chat",
        gen_ai.request.model = "gpt-4o",
        gen_ai.usage.input_tokens = 42,
        gen_ai.usage.output_tokens = tracing::field::Empty,
        inputs.prompt = prompt,
    );
    async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        tracing::Span::current().record("gen_ai.usage.output_tokens", 17);
        "It is sunny.".to_owned()
    }
    .instrument(span)
    .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock;
    let client = if std::env::var_os("HH_API_KEY").is_some() {
        mock = None;
        Client::from_env()?
    } else {
        let started = MockHoneyHive::start_async().await;
        let client = started.client()?;
        mock = Some(started);
        client
    };
    let logger = Logger::new(&client, LoggerConfig::default())?;
    tracing_subscriber::registry()
        .with(HoneyHiveLayer::new(logger.clone()))
        .init();

    let request = tracing::info_span!(
        "answer",
        honeyhive.event_type = "chain",
        inputs.question = "weather in Paris?"
    );
    async {
        let found = search("weather Paris").await;
        chat(&format!("Answer from: {found}")).await
    }
    .instrument(request)
    .await;

    let report = logger.shutdown(Duration::from_secs(10)).await;
    println!(
        "sent {} event tree(s), failed {}",
        report.stats.sent, report.stats.failed
    );
    if let Some(mock) = mock {
        for received in mock.events() {
            println!("{}", serde_json::to_string_pretty(&received.event)?);
        }
        assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    }
    Ok(())
}
