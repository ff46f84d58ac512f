//! `--data FILE.jsonl`: one datapoint a line, `{"inputs": {...},
//! "ground_truth": ..., "metadata": {...}}`. Every line is read and checked
//! before the run starts: a line that is not a datapoint stops the command
//! with its line number and what is wrong, so none is dropped.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use honeyhive::experiment::Datapoint;
use serde_json::Value;

use crate::exit::{Exit, Fail};
use crate::input;

/// The keys a datapoint line may have (those `Datapoint::from_json`
/// reads: any other would be dropped, so it is refused).
pub const KEYS: [&str; 4] = ["inputs", "ground_truth", "metadata", "id"];

/// How many bad lines the error lists before it counts the rest.
const LISTED: usize = 20;

/// A datapoint and the line it was read from (from 1).
pub type Line = (u64, Datapoint);

/// One line as a datapoint, or what makes it not one.
pub fn parse_line(text: &str) -> Result<Datapoint, String> {
    let mut value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    // `honeyhive datasets pull` writes a `history`: an empty one is no
    // data, so such a file reads as it is; a chat history would be lost.
    if let Value::Object(fields) = &mut value {
        match fields.get("history") {
            Some(Value::Null) => drop(fields.remove("history")),
            Some(Value::Array(turns)) if turns.is_empty() => drop(fields.remove("history")),
            Some(_) => {
                return Err("`history` is not given to CMD, so it would be lost: \
                            run the hosted dataset with --dataset ID, or drop the key"
                    .to_owned());
            }
            None => {}
        }
    }
    if let Value::Object(fields) = &value
        && let Some(key) = fields.keys().find(|k| !KEYS.contains(&k.as_str()))
    {
        let nearest = KEYS
            .iter()
            .map(|known| (strsim::levenshtein(key, known), *known))
            .min()
            .filter(|(distance, _)| *distance <= 3)
            .map(|(_, known)| format!(" (did you mean `{known}`?)"))
            .unwrap_or_default();
        let keys = KEYS.map(|k| format!("`{k}`")).join(", ");
        return Err(format!(
            "`{key}` is not a key of a datapoint{nearest}: a datapoint has {keys}"
        ));
    }
    Datapoint::from_json(value).map_err(|e| crate::config::for_the_shell(&e))
}

/// Every datapoint of `path` (`-`: standard input), in line order; blank
/// lines are skipped. Any bad line: exit 2, each listed as `FILE:LINE:
/// reason`.
pub fn load(path: &Path) -> Result<Vec<Line>, Fail> {
    let name = path.display().to_string();
    let cannot = |e: std::io::Error| Fail::new(Exit::Usage, format!("reading {name}: {e}"));
    let mut reader: Box<dyn std::io::BufRead> = if name == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        Box::new(BufReader::new(File::open(path).map_err(cannot)?))
    };
    read(&mut reader, &name).map_err(|problem| match problem {
        Problem::Io(e) => cannot(e),
        Problem::Lines(text) => Fail::new(Exit::Usage, text),
    })
}

enum Problem {
    Io(std::io::Error),
    Lines(String),
}

fn read(reader: &mut dyn std::io::BufRead, name: &str) -> Result<Vec<Line>, Problem> {
    let mut bytes = Vec::new();
    let mut datapoints = Vec::new();
    let mut bad: Vec<String> = Vec::new();
    let mut bad_count = 0usize;
    let mut line = 0u64;
    loop {
        if input::read_line(reader, &mut bytes).map_err(Problem::Io)? == 0 {
            break;
        }
        line += 1;
        let mut start = 0;
        if line == 1 {
            start = input::sniff(&bytes).map_err(|e| Problem::Lines(format!("{name}: {e}")))?;
        }
        let parsed = input::text(&bytes[start..]).and_then(|text| {
            if text.trim().is_empty() {
                Ok(None)
            } else {
                parse_line(text).map(|datapoint| Some((line, datapoint)))
            }
        });
        match parsed {
            Ok(Some(datapoint)) => datapoints.push(datapoint),
            Ok(None) => {}
            Err(reason) => {
                bad_count += 1;
                if bad.len() < LISTED {
                    bad.push(format!("{name}:{line}: {reason}"));
                }
            }
        }
    }
    if bad_count > 0 {
        let mut text = format!(
            "{bad_count} line(s) of {name} are not datapoints; nothing was run:\n{}",
            bad.join("\n")
        );
        if bad_count > bad.len() {
            text.push_str(&format!("\n... and {} more", bad_count - bad.len()));
        }
        return Err(Problem::Lines(text));
    }
    if datapoints.is_empty() {
        return Err(Problem::Lines(format!(
            "{name} has no datapoints: give one JSON object a line, such as \
             {{\"inputs\": {{\"question\": \"2+2?\"}}, \"ground_truth\": \"4\"}}"
        )));
    }
    Ok(datapoints)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lines(text: &[u8]) -> Result<Vec<Line>, String> {
        read(&mut &text[..], "data.jsonl").map_err(|p| match p {
            Problem::Io(e) => e.to_string(),
            Problem::Lines(text) => text,
        })
    }

    #[test]
    fn datapoints_keep_their_line_and_fields() {
        let read = lines(
            b"\xEF\xBB\xBF{\"inputs\": {\"q\": 1}, \"ground_truth\": \"4\"}\n\n  \r\n\
              {\"inputs\": {}, \"metadata\": {\"tag\": \"x\"}, \"ground_truth\": null}",
        )
        .unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].0, 1);
        assert_eq!(Value::Object(read[0].1.inputs.clone()), json!({"q": 1}));
        assert_eq!(read[0].1.ground_truth, Some(json!("4")));
        assert_eq!(read[1].0, 4);
        assert_eq!(read[1].1.ground_truth, None);
        assert_eq!(
            Value::Object(read[1].1.metadata.clone()),
            json!({"tag": "x"})
        );
    }

    #[test]
    fn every_bad_line_is_named_with_its_number_and_reason() {
        let text = "{\"inputs\": {\"q\": 1}}\n\
                    not json\n\
                    [1, 2]\n\
                    {\"input\": {\"q\": 1}}\n\
                    {\"inputs\": \"q\"}\n\
                    {\"metadata\": {}}\n\
                    {\"inputs\": {}, \"metadata\": 3}\n\
                    {\"inputs\": {}, \"ground_truths\": 3}\n\
                    {\"inputs\": {}, \"history\": [{\"role\": \"user\"}]}\n\
                    {\"id\": \"d1\", \"inputs\": {}, \"history\": [], \"ground_truth\": null}\n";
        let said = lines(text.as_bytes()).unwrap_err();
        assert!(
            said.starts_with("8 line(s) of data.jsonl are not datapoints; nothing was run:"),
            "{said}"
        );
        for expected in [
            "data.jsonl:2: not JSON: expected ident",
            "data.jsonl:3: invalid datapoint: is an array",
            "data.jsonl:4: `input` is not a key of a datapoint (did you mean `inputs`?)",
            "data.jsonl:5: invalid inputs: is a string",
            "data.jsonl:6: invalid inputs: is missing",
            "data.jsonl:7: invalid metadata: is a number",
            "data.jsonl:8: `ground_truths` is not a key of a datapoint (did you mean `ground_truth`?)",
            "data.jsonl:9: `history` is not given to CMD",
        ] {
            assert!(said.contains(expected), "{expected} in {said}");
        }
        // What `datasets pull` writes, with an empty history, is a datapoint.
        assert!(!said.contains("data.jsonl:1:") && !said.contains("data.jsonl:10:"));
    }

    #[test]
    fn many_bad_lines_are_listed_up_to_a_bound_and_counted() {
        let text = "x\n".repeat(LISTED + 5);
        let said = lines(text.as_bytes()).unwrap_err();
        assert_eq!(
            said.lines()
                .filter(|l| l.starts_with("data.jsonl:"))
                .count(),
            LISTED
        );
        assert!(said.ends_with("... and 5 more"), "{said}");
    }

    #[test]
    fn an_empty_file_or_one_not_in_utf8_is_refused() {
        assert!(lines(b"\n\n").unwrap_err().contains("has no datapoints"));
        let utf16: Vec<u8> = "{\"inputs\": {}}"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert!(lines(&utf16).unwrap_err().contains("UTF-16"));
        let latin1 = b"{\"inputs\": {\"q\": \"caf\xE9\"}}\n";
        assert!(
            lines(latin1)
                .unwrap_err()
                .contains("data.jsonl:1: not UTF-8")
        );
    }
}
