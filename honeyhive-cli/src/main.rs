//! `honeyhive`: the HoneyHive API from the shell, built on the `honeyhive`
//! crate.
//!
//! - `honeyhive send FILE...`: JSONL events (or `JsonlDeadLetters` files)
//!   through the Logger; idempotent, resumable, nothing lost.
//! - `honeyhive validate FILE...`: each line against the embedded spec,
//!   offline.
//! - `honeyhive mock`: the spec-validating mock as a process on loopback.
//! - `honeyhive log`: one event from flags.
//!
//! Exit codes (see [`Exit`]): 0 done, 1 some lines rejected or failed, 2
//! usage, 3 configuration, 4 the API could not be reached, 130 interrupted.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod checkpoint;
mod config;
mod event_line;
mod input;
mod log;
mod mock;
mod progress;
mod send;
mod validate;

/// The command's exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Every line sent (or skipped by the checkpoint); the event logged.
    Ok = 0,
    /// Some lines were rejected or failed (see the rejects file), or a line
    /// did not validate.
    Partial = 1,
    /// The command line is wrong, or an input file cannot be read.
    Usage = 2,
    /// Configuration: no API key, a bad URL or setting, a checkpoint that
    /// does not fit the file, the API refused the key.
    Config = 3,
    /// The API could not be reached at all: nothing was sent.
    Unreachable = 4,
    /// Stopped by Ctrl-C (after saving the checkpoint and the rejects).
    Interrupted = 130,
}

/// Prints a line on stdout. A reader that went away (`| head`) is not an
/// error worth a panic: the line is dropped and the exit code stands.
pub fn out(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _gone = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

/// A failure that ends the command, with its exit code and what to do.
#[derive(Debug)]
pub struct Fail {
    pub exit: Exit,
    pub message: String,
}

impl Fail {
    pub fn new(exit: Exit, message: impl Into<String>) -> Fail {
        Fail {
            exit,
            message: message.into(),
        }
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "honeyhive",
    version,
    about = "The HoneyHive API from the shell: send JSONL, validate offline, run the spec-validating mock",
    after_help = "Exit codes: 0 done; 1 some lines rejected or failed; 2 usage; \
                  3 configuration (no key, bad URL, the API refused the key); \
                  4 the API could not be reached; 130 interrupted."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Send(send::Args),
    Validate(validate::Args),
    Mock(mock::Args),
    Log(log::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("honeyhive: could not start the async runtime: {e}");
            return ExitCode::from(Exit::Config as u8);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Send(args) => send::run(args).await,
            Command::Validate(args) => validate::run(&args),
            Command::Mock(args) => mock::run(args).await,
            Command::Log(args) => log::run(args).await,
        }
    });
    // Do not wait for blocking tasks still holding a file: everything worth
    // keeping was written and flushed before `run` returned.
    runtime.shutdown_background();
    match result {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(fail) => {
            eprintln!("honeyhive: {}", fail.message);
            ExitCode::from(fail.exit as u8)
        }
    }
}
