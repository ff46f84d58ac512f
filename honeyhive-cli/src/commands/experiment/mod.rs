//! `honeyhive experiment run`: an experiment whose task and evaluators are
//! commands, so that a program in any language can be evaluated (in CI)
//! by this binary. Built on `honeyhive::experiment`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Subcommand;
use honeyhive::RunStatus;
use honeyhive::experiment::{
    Datapoint, DatapointResult, Experiment, ExperimentError, Gate, Outcome,
};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::config::{Api, api_error};
use crate::exit::{self, Exit, Fail};
use crate::progress::{Progress, per_second};
use summary::Summary;

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
    // Boxed: their sizes differ much (clippy's large_enum_variant).
    Run(Box<RunArgs>),
    Close(Box<CloseArgs>),
}

/// Closes a run as it stands, with every session its summary links to it:
/// for a sharded run whose last shard will not come, or any run left
/// running. Prints the run's summary table.
#[derive(clap::Args, Debug)]
pub struct CloseArgs {
    /// The run's id (printed when it started).
    run_id: String,
    /// How the run ended: completed, failed or cancelled.
    #[arg(long, default_value = "completed", value_parser = ["completed", "failed", "cancelled"])]
    status: String,
    #[command(flatten)]
    api: Api,
}

/// Runs CMD once per datapoint, records each as a session of one run, and
/// prints a summary table (stdout); the run's id goes to stderr first.
///
/// CMD gets the datapoint on stdin as JSON, `{"id", "inputs",
/// "ground_truth", "metadata"}`, and prints its output as JSON on stdout:
/// the outputs, or `{"outputs": ..., "metrics": {...}}` with metrics it
/// measured itself. A CMD that exits non-zero, prints something that is
/// not JSON or outlives --timeout fails that datapoint, with the reason;
/// the others go on. CMD and the evaluators do not get `HH_API_KEY`; the
/// key is scrubbed from what they print.
#[derive(clap::Args, Debug)]
#[command(
    group(clap::ArgGroup::new("datapoints").required(true).args(["dataset", "data"])),
    // `--timeout` is the datapoint's here: the API's is --api-timeout.
    mut_arg("timeout", |arg| arg.long("api-timeout")),
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
    /// them it is killed, with every process it started, and the
    /// datapoint fails.
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
    /// (or X% of it) from the base run's (needs --compare-to). Repeatable.
    #[arg(long, value_name = "'METRIC drop > X'", value_parser = flags::parse_gate,
          requires = "compare_to")]
    fail_if: Vec<Gate>,
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
        Command::Run(args) => run_experiment(*args).await,
        Command::Close(args) => close(*args).await,
    }
}

async fn close(args: CloseArgs) -> Result<Exit, Fail> {
    let client = args.api.client()?;
    let status = match args.status.as_str() {
        "failed" => RunStatus::Failed,
        "cancelled" => RunStatus::Cancelled,
        _ => RunStatus::Completed,
    };
    let summary = honeyhive::experiment::close_run(&client, &args.run_id, status)
        .await
        .map_err(crate::config::api_error)?;
    crate::exit::out(&format!(
        "run {} {status}: {} datapoints passed, {} failed",
        args.run_id,
        summary.passed.len(),
        summary.failed.len()
    ));
    Ok(Exit::Ok)
}

/// What `run_experiment` waits on past the commands' own timeout, so that
/// the reason given is the command's (killed at --timeout).
const BACKSTOP: Duration = Duration::from_secs(5);

async fn run_experiment(args: RunArgs) -> Result<Exit, Fail> {
    let client = args.api.client()?;
    let lines = match &args.data {
        Some(path) => data::load(path)?,
        None => Vec::new(),
    };
    let limit = Duration::from_secs_f64(args.datapoint_timeout);
    let mut experiment = Experiment::new(&args.name)
        .concurrency(usize::try_from(args.concurrency).unwrap_or(usize::MAX))
        .timeout(limit.saturating_add(BACKSTOP))
        .repetitions(args.repeat);
    experiment = match &args.dataset {
        Some(id) => experiment.dataset(id),
        None => experiment.datapoints(lines.iter().map(|(_, datapoint)| datapoint.clone())),
    };
    if let Some(id) = &args.run_id {
        experiment = experiment.run_id(id);
    }
    if let Some(id) = &args.resume {
        experiment = experiment.resume(id);
    }
    if let Some(shard) = args.shard {
        experiment = experiment.shard(shard.index - 1, shard.count);
    }
    if let Some(id) = &args.compare_to {
        experiment = experiment.compare_to(id);
    }
    for gate in &args.fail_if {
        experiment = experiment.gate(gate.clone());
    }

    // Each datapoint's lines in the file, found by its content when its
    // command starts (the library gives local datapoints their ids).
    let lines_of = Arc::new(Lines::new(&lines));
    let task = child::Program::new(args.command.clone());
    let scrub = child::Scrub::new(args.api.key());
    let seen = Arc::clone(&lines_of);
    let scrubbed = scrub.clone();
    experiment = experiment.task(move |datapoint: Datapoint| {
        let (task, scrub) = (task.clone(), scrubbed.clone());
        seen.note(&datapoint);
        async move {
            let input = serde_json::to_vec(&datapoint).map_err(|e| e.to_string())?;
            let value = child::run(&task, &input, Some(limit))
                .await
                .map_err(|failure| scrub.said(&failure))?;
            child::task_output(value).map_err(|failure| scrub.said(&failure))
        }
    });
    for evaluator in &args.evaluator {
        let program = child::Program::shell(&evaluator.command);
        let scrub = scrub.clone();
        experiment = experiment.evaluator_async(
            &evaluator.name,
            move |outputs: Value, datapoint: Datapoint| {
                let (program, scrub) = (program.clone(), scrub.clone());
                async move {
                    let input = json!({"outputs": outputs, "datapoint": datapoint});
                    child::run(&program, input.to_string().as_bytes(), Some(limit))
                        .await
                        .map_err(|failure| scrub.said(&failure))
                }
            },
        );
    }

    let progress = Arc::new(Mutex::new(Progress::new(
        args.quiet,
        None,
        "{bar:30} {pos}/{len} ETA {eta}  {msg}",
    )));
    let counts = Arc::new(Counts::default());
    let (shown, started) = (Arc::clone(&progress), Instant::now());
    experiment = experiment.on_start(move |start| {
        eprintln!(
            "honeyhive experiment: run {} ({} to run{})",
            start.run_id,
            start.to_run,
            if start.skipped > 0 {
                format!(", {} recorded before or in other shards", start.skipped)
            } else {
                String::new()
            }
        );
        if let Progress::Bar(bar) = &*shown.lock() {
            bar.set_length(start.to_run as u64);
        }
    });
    let (shown, tally) = (Arc::clone(&progress), Arc::clone(&counts));
    experiment = experiment.on_result(move |result| {
        let (done, not_passed) = tally.add(result);
        let mut progress = shown.lock();
        let rate = per_second(done, started.elapsed());
        if let Progress::Bar(bar) = &*progress {
            bar.inc(1);
            bar.set_message(format!("{rate:.0}/s  not passed {not_passed}"));
        } else if progress.plain_due() {
            eprintln!(
                "honeyhive experiment: {done} done, {not_passed} not passed; {rate:.0} datapoints/s"
            );
        }
    });
    let mut stop = Stop::listen();
    experiment = experiment.stop_when(async move {
        stop.next().await;
        eprintln!(
            "honeyhive experiment: stopping: no datapoint starts now, the run is closed as \
             cancelled (--resume finishes it; Ctrl-C again to quit now)"
        );
        tokio::spawn(async move {
            stop.next().await;
            std::process::exit(i32::from(Exit::Interrupted as u8));
        });
    });

    let ran = experiment.run(&client).await;
    progress.lock().finish();
    let (report, broken, unclosed) = match ran {
        Ok(report) => (report, Vec::new(), None),
        Err(ExperimentError::Gate { report, failures }) => (*report, failures, None),
        Err(ExperimentError::Close { report, error }) => (*report, Vec::new(), Some(error)),
        Err(ExperimentError::Api(error)) => return Err(api_error(error)),
        Err(other) => return Err(Fail::new(Exit::Partial, other.to_string())),
    };
    let summary = Summary::of(&args.name, &report, &args.fail_if, &broken, |result| {
        lines_of.name(result, args.repeat > 1)
    });
    exit::out(summary.render().trim_end());
    if let Some(error) = unclosed {
        let mut fail = api_error(error);
        fail.message = format!(
            "run {} ran, but closing it failed (--resume {} closes it): {}",
            report.run_id, report.run_id, fail.message
        );
        return Err(fail);
    }
    Ok(if !broken.is_empty() {
        Exit::GateFailed
    } else if report.status == RunStatus::Cancelled {
        Exit::Interrupted
    } else if report.errored() > 0
        || report
            .results
            .iter()
            .any(|r| !r.evaluator_errors.is_empty())
        || report.status == RunStatus::Failed
    {
        // A score that says no is a measurement; a datapoint (or a score)
        // that could not be had is an error.
        Exit::Partial
    } else {
        Exit::Ok
    })
}

/// Ctrl-C, or SIGTERM (what CI runners and `kill` send): both stop the
/// run the same way. SIGTERM is listened to from the start, so one sent
/// while the run is being created is not the default (death).
struct Stop {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Stop {
    fn listen() -> Stop {
        Stop {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    /// The next signal; never, when none can be listened to.
    async fn next(&mut self) {
        let interrupt = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let terminate = async {
            match &mut self.term {
                Some(term) => {
                    term.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            () = interrupt => {}
            () = terminate => {}
        }
    }
}

/// Datapoints done and not passed, for the progress.
#[derive(Default)]
struct Counts {
    done: AtomicU64,
    not_passed: AtomicU64,
}

impl Counts {
    fn add(&self, result: &DatapointResult) -> (u64, u64) {
        let not_passed = u64::from(!matches!(result.outcome, Outcome::Passed));
        (
            self.done.fetch_add(1, Ordering::Relaxed) + 1,
            self.not_passed.fetch_add(not_passed, Ordering::Relaxed) + not_passed,
        )
    }
}

/// The lines of `--data` a datapoint was read from, found by its content.
struct Lines {
    by_content: HashMap<String, Vec<u64>>,
    by_id: Mutex<HashMap<String, Vec<u64>>>,
}

impl Lines {
    fn new(lines: &[data::Line]) -> Lines {
        let mut by_content: HashMap<String, Vec<u64>> = HashMap::new();
        for (line, datapoint) in lines {
            by_content
                .entry(content(datapoint))
                .or_default()
                .push(*line);
        }
        Lines {
            by_content,
            by_id: Mutex::default(),
        }
    }

    fn note(&self, datapoint: &Datapoint) {
        if let Some(lines) = self.by_content.get(&content(datapoint)) {
            self.by_id
                .lock()
                .entry(datapoint.id.clone())
                .or_insert_with(|| lines.clone());
        }
    }

    /// `datapoint ID (line N)`, with `#R` for a repetition.
    fn name(&self, result: &DatapointResult, repeated: bool) -> String {
        let mut name = format!("datapoint {}", result.datapoint_id);
        if repeated {
            name.push_str(&format!(" #{}", result.repetition));
        }
        if let Some(lines) = self.by_id.lock().get(&result.datapoint_id) {
            let lines: Vec<String> = lines.iter().map(u64::to_string).collect();
            let word = if lines.len() == 1 { "line" } else { "lines" };
            name.push_str(&format!(" ({word} {})", lines.join(", ")));
        }
        name
    }
}

/// A datapoint's content (its id aside), as a key.
fn content(datapoint: &Datapoint) -> String {
    json!([datapoint.inputs, datapoint.ground_truth, datapoint.metadata]).to_string()
}
