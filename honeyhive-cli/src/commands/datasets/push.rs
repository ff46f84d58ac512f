//! `honeyhive datasets push NAME FILE`: each line a datapoint added to the
//! dataset, once. Creating a datapoint is a POST whose id the server
//! chooses, so the library sends it once; what makes a re-run safe is the
//! content: before adding, `push` reads the dataset's datapoints and skips
//! every line whose inputs, ground truth, metadata and history it already
//! holds. Every line ends in one count: added, already there, rejected (the
//! line is wrong, or the API refused it: in the rejects file), or failed (no
//! answer, 5xx: in the rejects file, worth a re-run).

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::Arc;

use honeyhive::{Client, Error, NewDatapoint};
use serde_json::{Map, Value, json};
use tokio::task::JoinSet;

use crate::config::{Api, api_error};
use crate::exit::{Exit, Fail};

/// The keys a line may have: a datapoint's four fields, `id` (what `pull`
/// prints: the server's, not sent again), and the keys of a rejects-file
/// record around `datapoint`.
const FIELDS: [&str; 4] = ["inputs", "ground_truth", "metadata", "history"];
const REJECT_KEYS: [&str; 5] = ["file", "line", "reason", "status", "datapoint"];

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The dataset's name (made when no dataset has it).
    name: String,
    /// JSONL of datapoints; a rejects file of an earlier push is read as it
    /// is.
    file: PathBuf,
    /// Where lines that were rejected or failed go [default:
    /// FILE.rejects.jsonl, made only if needed; a re-run replaces it].
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// Datapoints created at once.
    #[arg(long, value_name = "N", default_value_t = 16)]
    concurrency: usize,
    /// Print the counts as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: Api,
}

/// Where every line went.
#[derive(Debug, Default, serde::Serialize)]
struct Counts {
    added: u64,
    already_there: u64,
    rejected: u64,
    failed: u64,
}

/// A line that did not become a datapoint, for the rejects file.
struct Reject {
    line: u64,
    reason: String,
    status: Option<u16>,
    /// The line as JSON when it was JSON, else its text.
    content: Result<Value, String>,
}

pub async fn run(args: Args) -> Result<Exit, Fail> {
    if args.concurrency == 0 {
        return Err(Fail::new(Exit::Usage, "--concurrency: give at least 1"));
    }
    let file = File::open(&args.file).map_err(|e| {
        Fail::new(
            Exit::Usage,
            format!("cannot read {}: {e}", args.file.display()),
        )
    })?;
    let client = args.api.client()?;
    let (dataset_id, mut held) = dataset(&client, &args.name).await?;
    let file_name = args.file.display().to_string();
    let mut counts = Counts::default();
    let mut rejects: Vec<Reject> = Vec::new();
    let mut running: JoinSet<(u64, Value, Result<(), Error>)> = JoinSet::new();
    let dataset_id: Arc<str> = dataset_id.into();
    let mut stop: Option<Fail> = None;

    // Ctrl-C: read no further, let what is in flight end (5 s at most),
    // then account for every line read and say where it stopped.
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let on_signal = Arc::clone(&interrupted);
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.store(true, std::sync::atomic::Ordering::SeqCst);
            eprintln!(
                "honeyhive datasets push: interrupted: finishing what is in flight (Ctrl-C again quits at once)"
            );
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(Exit::Interrupted as u8 as i32);
            }
        }
    });
    let mut read_to: u64 = 0;
    // Lines sent and not yet answered: handed back if the push stops first.
    let mut in_flight: std::collections::BTreeMap<u64, Value> = std::collections::BTreeMap::new();
    let reader = BufReader::new(file);
    for (index, text) in reader.split(b'\n').enumerate() {
        let number = index as u64 + 1;
        if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        read_to = number;
        let bytes = text.map_err(|e| {
            Fail::new(
                Exit::Usage,
                format!("{file_name}: cannot read line {number}: {e}"),
            )
        })?;
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim_end_matches('\r');
        if text.trim().is_empty() {
            continue;
        }
        let datapoint = match parse(text) {
            Ok(datapoint) => datapoint,
            Err((reason, content)) => {
                counts.rejected += 1;
                rejects.push(Reject {
                    line: number,
                    reason,
                    status: None,
                    content,
                });
                continue;
            }
        };
        if !held.insert(key_of(&datapoint)) {
            counts.already_there += 1;
            continue;
        }
        while running.len() >= args.concurrency {
            if let Some(line) = settle(&mut running, &mut counts, &mut rejects, &mut stop).await {
                in_flight.remove(&line);
            }
        }
        if stop.is_some() {
            break;
        }
        in_flight.insert(number, Value::Object(datapoint.clone()));
        let client = client.clone();
        let dataset_id = Arc::clone(&dataset_id);
        running.spawn(async move {
            let new = new_datapoint(&datapoint, &dataset_id);
            let created = client.datapoints().create(new).await.map(drop);
            (number, Value::Object(datapoint), created)
        });
    }
    let was_interrupted = interrupted.load(std::sync::atomic::Ordering::SeqCst);
    let grace = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !running.is_empty() {
        let settled = if was_interrupted {
            tokio::time::timeout_at(
                grace,
                settle(&mut running, &mut counts, &mut rejects, &mut stop),
            )
            .await
        } else {
            Ok(settle(&mut running, &mut counts, &mut rejects, &mut stop).await)
        };
        match settled {
            Ok(line) => {
                if let Some(line) = line {
                    in_flight.remove(&line);
                }
            }
            Err(_past_grace) => {
                // What is still in flight may or may not have been added: a
                // re-run finds out (it skips what the dataset holds).
                running.abort_all();
                for (line, datapoint) in std::mem::take(&mut in_flight) {
                    counts.failed += 1;
                    rejects.push(Reject {
                        line,
                        reason: "interrupted before the API answered (it may have been added: \
                                 a re-run skips it if so)"
                            .into(),
                        status: None,
                        content: Ok(datapoint),
                    });
                }
                break;
            }
        }
    }
    watcher.abort();
    let rejects_path = args.rejects.clone().unwrap_or_else(|| {
        let mut path = args.file.clone().into_os_string();
        path.push(".rejects.jsonl");
        path.into()
    });
    write_rejects(&rejects_path, &file_name, rejects)?;
    let summary = format!(
        "{file_name} into dataset {} ({dataset_id}): added {}, already there {}, rejected {}, failed {}",
        args.name, counts.added, counts.already_there, counts.rejected, counts.failed
    );
    eprintln!("honeyhive datasets push: {summary}");
    if counts.rejected + counts.failed > 0 {
        eprintln!(
            "honeyhive datasets push: the lines not added are in {} (fix them and push it)",
            rejects_path.display()
        );
    }
    if args.json {
        crate::exit::out(&json!(counts).to_string());
    }
    if let Some(fail) = stop {
        return Err(fail);
    }
    if was_interrupted {
        eprintln!(
            "honeyhive datasets push: interrupted after line {read_to}: the rest of {file_name} \
             was not read; run the same command again to push it (nothing is added twice)"
        );
        return Ok(Exit::Interrupted);
    }
    Ok(if counts.rejected + counts.failed > 0 {
        Exit::Partial
    } else {
        Exit::Ok
    })
}

/// The dataset named `name` (made when there is none) and the keys of the
/// datapoints it holds.
async fn dataset(client: &Client, name: &str) -> Result<(String, HashSet<[u8; 16]>), Fail> {
    let found = client.datasets().find(name).await.map_err(api_error)?;
    let id = match found.as_slice() {
        [] => {
            let created = client
                .datasets()
                .create(name, None)
                .await
                .map_err(api_error)?;
            eprintln!("honeyhive datasets push: made dataset {name}");
            return Ok((created.result.inserted_id.to_string(), HashSet::new()));
        }
        [one] => one.id.to_string(),
        several => {
            return Err(Fail::new(
                Exit::Usage,
                format!(
                    "{} datasets are named {name} ({}): rename all but one, so push knows which to add to",
                    several.len(),
                    several
                        .iter()
                        .map(|d| d.id.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    };
    let held = client
        .datapoints()
        .list_in_dataset(name)
        .await
        .map_err(api_error)?
        .into_iter()
        .map(|d| {
            let mut fields = Map::new();
            fields.insert("inputs".into(), Value::Object(d.inputs));
            if let Some(truth) = d.ground_truth {
                fields.insert("ground_truth".into(), Value::Object(truth));
            }
            if let Some(metadata) = d.metadata {
                fields.insert("metadata".into(), Value::Object(metadata));
            }
            fields.insert(
                "history".into(),
                Value::Array(d.history.into_iter().map(Value::Object).collect()),
            );
            key_of(&fields)
        })
        .collect();
    Ok((id, held))
}

/// The line's datapoint (its four fields), or why it is not one.
fn parse(text: &str) -> Result<Map<String, Value>, (String, Result<Value, String>)> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| (format!("not JSON: {e}"), Err(text.to_owned())))?;
    let refuse = |reason: String| (reason, Ok(value.clone()));
    let Value::Object(mut line) = value.clone() else {
        return Err(refuse(
            "not a JSON object: a datapoint is {\"inputs\": {...}, ...}".into(),
        ));
    };
    // A rejects-file record: the datapoint inside.
    if let Some(inner) = line.remove("datapoint") {
        if let Some(key) = line.keys().find(|k| !REJECT_KEYS.contains(&k.as_str())) {
            return Err(refuse(format!("{key}: not a key of a rejects-file record")));
        }
        let Value::Object(inner) = inner else {
            return Err(refuse("datapoint: not a JSON object".into()));
        };
        line = inner;
    }
    line.remove("id");
    if let Some(key) = line.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        let nearest = FIELDS
            .iter()
            .max_by(|a, b| strsim::jaro_winkler(key, a).total_cmp(&strsim::jaro_winkler(key, b)))
            .unwrap_or(&"inputs");
        return Err(refuse(format!(
            "{key}: not a field of a datapoint (did you mean {nearest}?); the fields are {}",
            FIELDS.join(", ")
        )));
    }
    match line.get("inputs") {
        Some(Value::Object(_)) => {}
        Some(_) => return Err(refuse("inputs: not a JSON object".into())),
        None => {
            return Err(refuse(
                "inputs: missing; a datapoint needs its inputs".into(),
            ));
        }
    }
    for field in ["ground_truth", "metadata"] {
        match line.get(field) {
            None | Some(Value::Object(_)) => {}
            Some(Value::Null) => {
                line.remove(field);
            }
            Some(_) => return Err(refuse(format!("{field}: not a JSON object"))),
        }
    }
    match line.get("history") {
        None => {}
        Some(Value::Array(items)) if items.iter().all(Value::is_object) => {}
        Some(_) => {
            return Err(refuse(
                "history: not an array of JSON objects (messages)".into(),
            ));
        }
    }
    Ok(line)
}

/// The content a datapoint is known by: a UUIDv5 of its fields, keys
/// sorted, empty fields left out (as the API gives them back).
fn key_of(fields: &Map<String, Value>) -> [u8; 16] {
    fn canonical(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for key in keys {
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    canonical(&map[key], out);
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for item in items {
                    canonical(item, out);
                    out.push(',');
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    for field in FIELDS {
        let value = fields.get(field);
        let empty = match value {
            None | Some(Value::Null) => true,
            Some(Value::Object(map)) => map.is_empty() && field != "inputs",
            Some(Value::Array(items)) => items.is_empty(),
            Some(_) => false,
        };
        text.push_str(field);
        text.push('=');
        if let (false, Some(value)) = (empty, value) {
            canonical(value, &mut text);
        }
        text.push('\n');
    }
    *uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, text.as_bytes()).as_bytes()
}

fn new_datapoint(fields: &Map<String, Value>, dataset_id: &str) -> NewDatapoint {
    let mut new = NewDatapoint::new().linked_datasets([dataset_id.to_owned()]);
    if let Some(inputs) = fields.get("inputs") {
        new = new.inputs(inputs);
    }
    if let Some(truth) = fields.get("ground_truth") {
        new = new.ground_truth(truth);
    }
    if let Some(metadata) = fields.get("metadata") {
        new = new.metadata(metadata);
    }
    if let Some(Value::Array(history)) = fields.get("history") {
        new = new.history(history.iter());
    }
    new
}

/// Takes one finished create into the counts. A refused key ends the push
/// (every other create would be refused too): what is running finishes,
/// nothing more starts.
async fn settle(
    running: &mut JoinSet<(u64, Value, Result<(), Error>)>,
    counts: &mut Counts,
    rejects: &mut Vec<Reject>,
    stop: &mut Option<Fail>,
) -> Option<u64> {
    let joined = running.join_next().await?;
    let (line, datapoint, created) = match joined {
        Ok(done) => done,
        Err(panicked) => std::panic::resume_unwind(panicked.into_panic()),
    };
    match created {
        Ok(()) => counts.added += 1,
        Err(error) => {
            let status = error.status().map(|s| s.as_u16());
            let refused = matches!(error, Error::InvalidInput { .. })
                || status.is_some_and(|s| (400..500).contains(&s) && s != 408 && s != 429);
            if refused {
                counts.rejected += 1;
            } else {
                counts.failed += 1;
            }
            let reason = crate::config::for_the_shell(&error);
            if matches!(error, Error::Unauthorized { .. }) && stop.is_none() {
                *stop = Some(api_error(error));
            }
            rejects.push(Reject {
                line,
                reason,
                status,
                content: Ok(datapoint),
            });
        }
    }
    Some(line)
}

/// Writes the rejects in line order (replacing the file of an earlier
/// run), or removes an earlier run's file when every line went in.
fn write_rejects(path: &PathBuf, file: &str, mut rejects: Vec<Reject>) -> Result<(), Fail> {
    if rejects.is_empty() {
        let _absent = std::fs::remove_file(path);
        return Ok(());
    }
    rejects.sort_by_key(|r| r.line);
    let cannot = |e: std::io::Error| {
        Fail::new(
            Exit::Usage,
            format!("cannot write the rejects file {}: {e}", path.display()),
        )
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| std::path::Path::new("."));
    let mut out = tempfile::NamedTempFile::new_in(dir).map_err(cannot)?;
    for reject in rejects {
        let mut record = Map::new();
        record.insert("file".into(), json!(file));
        record.insert("line".into(), json!(reject.line));
        record.insert("reason".into(), json!(reject.reason));
        record.insert("status".into(), json!(reject.status));
        match reject.content {
            Ok(datapoint) => record.insert("datapoint".into(), datapoint),
            Err(raw) => record.insert("raw".into(), json!(raw)),
        };
        writeln!(out, "{}", Value::Object(record)).map_err(cannot)?;
    }
    out.persist(path).map_err(|e| cannot(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_a_datapoint_or_refused_by_name() {
        let ok =
            parse(r#"{"inputs": {"q": "2+2"}, "ground_truth": {"a": "4"}, "id": "x"}"#).unwrap();
        assert_eq!(ok.keys().collect::<Vec<_>>(), ["ground_truth", "inputs"]);
        let wrapped = parse(r#"{"file": "f", "line": 3, "reason": "r", "status": null, "datapoint": {"inputs": {}}}"#)
            .unwrap();
        assert_eq!(Value::Object(wrapped), json!({"inputs": {}}));
        for (line, said) in [
            ("not json", "not JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"ground_truth": {}}"#, "inputs: missing"),
            (r#"{"inputs": "q"}"#, "inputs: not a JSON object"),
            (
                r#"{"inputs": {}, "ground_truht": {}}"#,
                "did you mean ground_truth?",
            ),
            (
                r#"{"inputs": {}, "history": [1]}"#,
                "history: not an array of JSON objects",
            ),
            (
                r#"{"datapoint": {"inputs": {}}, "extra": 1}"#,
                "extra: not a key of a rejects-file record",
            ),
        ] {
            let (reason, _) = parse(line).unwrap_err();
            assert!(reason.contains(said), "{line}: {reason}");
        }
    }

    #[test]
    fn the_key_ignores_key_order_and_empty_fields_but_not_content() {
        let a =
            parse(r#"{"inputs": {"q": 1, "r": [1, {"x": 2, "y": 3}]}, "metadata": {}}"#).unwrap();
        let b =
            parse(r#"{"history": [], "inputs": {"r": [1, {"y": 3, "x": 2}], "q": 1}}"#).unwrap();
        let c = parse(r#"{"inputs": {"q": 1, "r": [{"x": 2, "y": 3}, 1]}}"#).unwrap();
        assert_eq!(key_of(&a), key_of(&b));
        assert_ne!(key_of(&a), key_of(&c));
    }
}
