//! The README's Rust examples, compiled and run as doctests (they use both
//! features).

#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
