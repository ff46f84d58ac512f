use honeyhive::{Event, testing::MockHoneyHive};
use serde_json::json;

#[tokio::test]
async fn logs_a_search_event_the_spec_accepts() -> Result<(), honeyhive::Error> {
    let mock = MockHoneyHive::start_async().await;
    let client = mock.client()?; // base URL and key aimed at the mock
    // (mock.client_builder() to add settings: .mask(..), .sample_rate(..))

    client
        .log_event(
            "session-1",
            Event::tool("search").inputs(json!({"q": "rust"})),
        )
        .await?;

    let events = mock.events();
    assert_eq!(events[0].session_id, "session-1");
    assert_eq!(events[0].event["inputs"]["q"], "rust");
    assert!(mock.violations().is_empty());
    Ok(())
}

// ---- the README shows the file down to here ----

/// The README's example is this file, so what users paste runs as a test.
#[test]
fn the_readme_shows_this_file() {
    let file = include_str!("readme_mock.rs");
    let shown = &file[..file
        .find("// ---- the README shows")
        .expect("the marker line")];
    let readme = include_str!("../../README.md");
    let block = format!("```rust\n{}```", shown.trim_end().to_owned() + "\n");
    assert!(
        readme.contains(&block),
        "README.md's mock example differs from honeyhive/tests/readme_mock.rs"
    );
}
