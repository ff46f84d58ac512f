//! `honeyhive`: the HoneyHive API from the shell, built on the `honeyhive`
//! crate.
//!
//! - `honeyhive send FILE...`: JSONL events (or `JsonlDeadLetters` files)
//!   through the Logger; idempotent, resumable, nothing lost.
//! - `honeyhive validate FILE...`: each line against the embedded spec,
//!   offline.
//! - `honeyhive mock`: the spec-validating mock as a process on loopback.
//! - `honeyhive log`: one event from flags.
//! - `honeyhive experiment run`: a command run over a dataset, recorded as
//!   a HoneyHive run.
//! - `honeyhive datasets list | push NAME FILE | pull ID`: datasets as JSONL.
//! - `honeyhive events get ID | search [...]`: events read back as JSONL.
//!
//! Exit codes (see [`exit::Exit`]): 0 done, 1 some lines failed (or
//! datapoints errored), 2 usage, 3 configuration, 4 the API could not be reached, 5 an
//! experiment's gate failed, 130 interrupted.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod config;
mod event_line;
mod exit;
mod fields;
mod input;
mod jsonl;
mod progress;

#[cfg(feature = "mock")]
use commands::mock;
use commands::{datasets, events, experiment, log, send, validate};
use exit::Exit;

#[derive(Parser, Debug)]
#[command(
    name = "honeyhive",
    version,
    about = "The HoneyHive API from the shell: send JSONL, validate offline, run the spec-validating mock, push and pull datasets, read events back, run experiments",
    after_help = "Exit codes: 0 done (an experiment's datapoints that scored badly included); \
                  1 some lines rejected or failed, or datapoints errored; 2 usage; \
                  3 configuration (no key, bad URL, the API refused the key); \
                  4 the API could not be reached; 5 an experiment's --fail-if gate failed; \
                  130 interrupted."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Send(send::Args),
    Validate(validate::Args),
    #[cfg(feature = "mock")]
    Mock(mock::Args),
    Log(log::Args),
    Experiment(experiment::Args),
    Datasets(datasets::Args),
    Events(events::Args),
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
            #[cfg(feature = "mock")]
            Command::Mock(args) => mock::run(args).await,
            Command::Log(args) => log::run(args).await,
            Command::Experiment(args) => experiment::run(args).await,
            Command::Datasets(args) => datasets::run(args).await,
            Command::Events(args) => events::run(args).await,
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
