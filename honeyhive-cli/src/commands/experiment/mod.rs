//! `honeyhive experiment run`: an experiment whose task and evaluators are
//! commands, so that a program in any language can be evaluated (in CI)
//! by this binary. Built on `honeyhive::experiment`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

use crate::config::Api;
use crate::exit::{Exit, Fail};

mod child;
mod data;
mod flags;
mod summary;

/// Experiments: run a command over a dataset, score it, record it as a
/// HoneyHive run.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Run(RunArgs),
}

/// Runs CMD once per datapoint, records each as a session of one run, and
/// prints a summary table (stdout); the run's id goes to stderr first.
///
/// CMD gets the datapoint on stdin as JSON, `{"id", "inputs",
/// "ground_truth", "metadata"}`, and prints its output as JSON on stdout:
/// the outputs, or `{"outputs": ..., "metrics": {...}}` with metrics it
/// measured itself. A CMD that exits non-zero, prints something that is
/// not JSON or outlives --timeout fails that datapoint, with the reason;
/// the others go on.
#[derive(clap::Args, Debug)]
#[command(
    group(clap::ArgGroup::new("datapoints").required(true).args(["dataset", "data"])),
    // `--timeout` is the datapoint's here: the API's is --api-timeout.
    mut_arg("timeout", |arg| arg.long("api-timeout")),
    after_help = "Exit codes: 0 every datapoint passed; 1 some failed; 5 a --fail-if gate \
                  failed; 2 usage (or a line of --data that is not a datapoint); 3 \
                  configuration; 4 the API could not be reached; 130 interrupted."
)]
pub struct RunArgs {
    /// The experiment's name (the run's name in HoneyHive).
    #[arg(long)]
    name: String,
    /// A dataset hosted in HoneyHive, by id.
    #[arg(long, value_name = "ID")]
    dataset: Option<String>,
    /// A local dataset: a JSONL file (`-`: stdin), one datapoint a line,
    /// `{"inputs": {...}, "ground_truth": ..., "metadata": {...}, "id": ...}`
    /// (all but inputs optional; ids derived from the content when absent).
    #[arg(long, value_name = "FILE.jsonl")]
    data: Option<PathBuf>,
    /// Datapoints run at once.
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    concurrency: u64,
    /// Seconds CMD (and each evaluator) may take for one datapoint; past
    /// them it is killed and the datapoint fails.
    #[arg(long = "timeout", value_name = "SECONDS", default_value_t = 300.0,
          value_parser = seconds)]
    datapoint_timeout: f64,
    /// Runs every datapoint K times.
    #[arg(long, value_name = "K", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    repeat: u32,
    /// The run's id, a UUID [default: a new one]. Shards of one run give
    /// the same id.
    #[arg(long, value_name = "UUID")]
    run_id: Option<String>,
    /// Runs only the I-th of N shards (counted from 1) of the datapoints,
    /// split by their ids; every shard gives the same --run-id.
    #[arg(long, value_name = "I/N", value_parser = flags::parse_shard)]
    shard: Option<flags::Shard>,
    /// Finishes a run that was stopped: runs only its datapoints with no
    /// completed session, then closes it.
    #[arg(long, value_name = "RUN_ID", conflicts_with = "run_id")]
    resume: Option<String>,
    /// Compares with a base run: each metric's delta in the summary.
    #[arg(long, value_name = "RUN_ID")]
    compare_to: Option<String>,
    /// Fails the run (exit 5) when METRIC's mean dropped by more than X
    /// from the base run's (needs --compare-to). Repeatable.
    #[arg(long, value_name = "'METRIC drop > X'", value_parser = flags::parse_gate,
          requires = "compare_to")]
    fail_if: Vec<flags::Gate>,
    /// Scores each output: CMD (run by `sh -c`) gets `{"outputs": ...,
    /// "datapoint": {...}}` on stdin and prints the score as JSON (a
    /// number, a bool, or any JSON), recorded as the metric NAME.
    /// Repeatable.
    #[arg(long, value_name = "NAME=CMD", value_parser = flags::parse_evaluator)]
    evaluator: Vec<flags::EvaluatorCmd>,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// The command run once per datapoint, and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
    #[command(flatten)]
    api: Api,
}

fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && Duration::try_from_secs_f64(s).is_ok() => Ok(s),
        _ => Err(format!(
            "`{text}` is not a number of seconds above 0, such as 30 or 0.5"
        )),
    }
}

pub async fn run(args: Args) -> Result<Exit, Fail> {
    match args.command {
        Command::Run(args) => run_experiment(args).await,
    }
}

async fn run_experiment(args: RunArgs) -> Result<Exit, Fail> {
    let _ = args;
    Err(Fail::new(Exit::Usage, "not yet"))
}
