//! One module per subcommand, each with the helpers only it uses. They
//! share the modules above them (`config`, `input`, `event_line`,
//! `exit`, `jsonl`, `progress`) and never each other.

pub mod datasets;
pub mod events;
pub mod experiment;
pub mod log;
#[cfg(feature = "mock")]
pub mod mock;
pub mod send;
pub mod validate;
