//! `honeyhive datasets list | push NAME FILE | pull ID`: datasets from the
//! shell. `pull` prints what `push` reads, so a dataset copies with a pipe.

mod push;

use honeyhive::api::types;
use serde_json::{Map, Value};

use crate::config::{Api, api_error};
use crate::exit::{Exit, Fail};
use crate::jsonl::{Count, Lines};

/// Datasets: list them, push a JSONL file of datapoints into one, pull one
/// out as JSONL.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Prints every dataset as a JSON line: id, name, description and its
    /// datapoints' ids.
    List {
        #[command(flatten)]
        api: Api,
    },
    /// Adds each line of FILE (`{"inputs": {...}, "ground_truth": {...},
    /// "metadata": {...}, "history": [...]}`, inputs required) to the
    /// dataset NAME, made if there is none; a datapoint the dataset already
    /// holds (same inputs, ground truth, metadata and history) is not added
    /// again, so a re-run after an interruption adds no duplicate.
    Push(push::Args),
    /// Prints every datapoint of dataset ID as a JSON line (id, inputs,
    /// ground_truth, metadata, history), fetched a chunk of ids at a time.
    Pull {
        /// The dataset's id.
        id: String,
        /// No progress on stderr.
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        api: Api,
    },
}

pub async fn run(args: Args) -> Result<Exit, Fail> {
    match args.command {
        Command::List { api } => {
            let datasets = api.client()?.datasets().list().await.map_err(api_error)?;
            let mut out = Lines::stdout();
            for dataset in &datasets {
                if !out.write(dataset)? {
                    break;
                }
            }
            out.finish()?;
            Ok(Exit::Ok)
        }
        Command::Push(args) => push::run(args).await,
        Command::Pull { id, quiet, api } => pull(&id, quiet, &api).await,
    }
}

/// Datapoints asked for per request: their ids go in the query string
/// (about 25 bytes each), kept well under the 8 KiB many servers take.
const PULL_CHUNK: usize = 200;

async fn pull(id: &str, quiet: bool, api: &Api) -> Result<Exit, Fail> {
    let client = api.client()?;
    let dataset = client.datasets().get(id).await.map_err(api_error)?;
    let ids: Vec<String> = dataset.datapoints.iter().map(|d| d.to_string()).collect();
    let mut out = Lines::stdout();
    let mut count = Count::new("datapoints", quiet);
    let mut missing = 0usize;
    for chunk in ids.chunks(PULL_CHUNK) {
        let found = client
            .datapoints()
            .list_by_ids(chunk.iter().cloned())
            .await
            .map_err(|e| count.failed(e))?;
        missing += chunk.len().saturating_sub(found.len());
        for datapoint in found {
            if !out.write(&line_of(datapoint))? {
                return Ok(Exit::Ok);
            }
            count.one();
        }
    }
    out.finish()?;
    count.done();
    if missing > 0 {
        eprintln!(
            "honeyhive datasets pull: {missing} of the dataset's {} datapoint ids were not found \
             (deleted since they were listed?)",
            ids.len()
        );
        return Ok(Exit::Partial);
    }
    Ok(Exit::Ok)
}

/// A datapoint as `push` reads it back: its id, and the four fields a
/// datapoint is made of (empty ones left out).
fn line_of(datapoint: types::Datapoint) -> Map<String, Value> {
    let mut line = Map::new();
    line.insert("id".into(), Value::String(datapoint.id.to_string()));
    line.insert("inputs".into(), Value::Object(datapoint.inputs));
    if let Some(truth) = datapoint.ground_truth.filter(|t| !t.is_empty()) {
        line.insert("ground_truth".into(), Value::Object(truth));
    }
    if let Some(metadata) = datapoint.metadata.filter(|m| !m.is_empty()) {
        line.insert("metadata".into(), Value::Object(metadata));
    }
    if !datapoint.history.is_empty() {
        let history = datapoint.history.into_iter().map(Value::Object).collect();
        line.insert("history".into(), Value::Array(history));
    }
    line
}
