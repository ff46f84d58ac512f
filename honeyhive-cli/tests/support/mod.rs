//! What the command-line suites share: the binary, run with a clean
//! environment aimed at a loopback server.

#![allow(dead_code)]

use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_honeyhive");
pub const KEY: &str = "hh-cli-suite-secret-key";

/// The binary with a clean environment: no HH_* from the machine.
pub fn honeyhive(url: &str, key: &str) -> Command {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("HH_") {
            command.env_remove(name);
        }
    }
    command
        .env("HH_API_URL", url)
        .env("HH_API_KEY", key)
        .env("HH_MAX_RETRIES", "2")
        .stdin(Stdio::null());
    command
}

pub fn run(command: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("the binary runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}
