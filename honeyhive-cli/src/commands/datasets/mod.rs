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
    /// holds, or an earlier line of the file (same inputs, ground truth,
    /// metadata and history), is not added again, so a re-run after an
    /// interruption adds no duplicate. Lines are added side by side, so the
    /// dataset's order need not be the file's.
    Push(push::Args),
    /// Prints every datapoint of dataset ID as a JSON line (id, inputs, and
    /// ground_truth, metadata, history when not empty), in the dataset's
    /// order, fetched 100 ids at a time.
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
/// (`datapoint_ids=<id>&`, 51 bytes for a UUID), so 100 take about 5 KiB,
/// under the 8 KiB request line many servers take.
const PULL_CHUNK: usize = 100;

async fn pull(id: &str, quiet: bool, api: &Api) -> Result<Exit, Fail> {
    let client = api.client()?;
    let dataset = match client.datasets().get(id).await {
        Ok(dataset) => dataset,
        Err(error @ honeyhive::Error::NotFound { .. }) => {
            // A name where the id goes: say which id it is.
            let named = client.datasets().find(id).await.unwrap_or_default();
            let mut fail = api_error(error);
            if let [one, ..] = named.as_slice() {
                fail.message = format!(
                    "{id} is a dataset's name, not its id: honeyhive datasets pull {}",
                    one.id.as_str()
                );
            }
            return Err(fail);
        }
        Err(error) => return Err(api_error(error)),
    };
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
            if !out.write(&line_of(&datapoint))? {
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
/// datapoint is made of (empty ones left out). Borrowed from the answer, so
/// printing copies nothing.
#[derive(serde::Serialize)]
struct Line<'a> {
    id: &'a str,
    inputs: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ground_truth: Option<&'a Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Map<String, Value>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    history: &'a [Map<String, Value>],
}

fn line_of(datapoint: &types::Datapoint) -> Line<'_> {
    fn present(field: &Option<Map<String, Value>>) -> Option<&Map<String, Value>> {
        field.as_ref().filter(|m| !m.is_empty())
    }
    Line {
        id: datapoint.id.as_str(),
        inputs: &datapoint.inputs,
        ground_truth: present(&datapoint.ground_truth),
        metadata: present(&datapoint.metadata),
        history: &datapoint.history,
    }
}
