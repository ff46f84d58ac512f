//! Nothing here: the test is `tests/agent.rs` (see `Cargo.toml`).
