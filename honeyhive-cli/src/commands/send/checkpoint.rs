//! `--checkpoint FILE`: how far each input has been delivered, so a re-run
//! after Ctrl-C or a crash continues there.
//!
//! The file is JSON, `{"version": 1, "inputs": {"/abs/path.jsonl": {"line":
//! 1200, "offset": 345678, "events": 1187}}}`: every line up to `line`
//! (ending at byte `offset`, `events` of them not blank) was sent or
//! written to the rejects file. It is replaced whole (written beside, then
//! renamed), so a crash leaves the old one or the new one, never half.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::exit::{Exit, Fail};

/// How far one input has been delivered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The last line settled (numbered from 1; 0: none).
    pub line: u64,
    /// The byte just after that line.
    pub offset: u64,
    /// Lines up to there that were not blank.
    pub events: u64,
}

/// The file's shape.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    version: u32,
    /// By the input's absolute path.
    inputs: BTreeMap<String, Position>,
}

impl Saved {
    const VERSION: u32 = 1;
}

#[derive(Debug)]
pub struct Checkpoint {
    path: PathBuf,
    saved: Saved,
}

impl Checkpoint {
    /// Reads `path`, or starts empty when it does not exist yet.
    pub fn load(path: &Path) -> Result<Checkpoint, Fail> {
        let unusable = |why: String| {
            Fail::new(
                Exit::Config,
                format!(
                    "checkpoint {}: {why}; fix it, or remove it to send from the start",
                    path.display()
                ),
            )
        };
        let saved = match fs::read_to_string(path) {
            Ok(text) => {
                serde_json::from_str::<serde_json::Value>(&text)
                    .map_err(|e| unusable(format!("not JSON ({e})")))?;
                match serde_json::from_str::<Saved>(&text) {
                    Ok(saved) if saved.version == Saved::VERSION => saved,
                    Ok(_) | Err(_) => {
                        return Err(unusable("not a checkpoint of this version".to_owned()));
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Saved {
                version: Saved::VERSION,
                inputs: BTreeMap::new(),
            },
            Err(e) => return Err(unusable(format!("cannot be read ({e})"))),
        };
        Ok(Checkpoint {
            path: path.to_owned(),
            saved,
        })
    }

    /// Where `input` was left, if it was.
    pub fn get(&self, input: &str) -> Position {
        self.saved.inputs.get(input).copied().unwrap_or_default()
    }

    /// Records `position` for `input` and replaces the file whole: written
    /// to a temporary file in the same directory, synced, then renamed over
    /// it.
    pub fn save(&mut self, input: &str, position: Position) -> io::Result<()> {
        self.saved.inputs.insert(input.to_owned(), position);
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        serde_json::to_writer(&mut file, &self.saved)?;
        file.write_all(b"\n")?;
        file.as_file().sync_all()?;
        file.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_survive_a_save_and_a_load_and_inputs_stay_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        let mut checkpoint = Checkpoint::load(&path).unwrap();
        assert_eq!(checkpoint.get("a"), Position::default());
        let a = Position {
            line: 12,
            offset: 3456,
            events: 11,
        };
        checkpoint.save("a", a).unwrap();
        checkpoint
            .save(
                "b",
                Position {
                    line: 1,
                    offset: 9,
                    events: 1,
                },
            )
            .unwrap();
        let again = Checkpoint::load(&path).unwrap();
        assert_eq!(again.get("a"), a);
        assert_eq!(again.get("b").line, 1);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "only the checkpoint is left"
        );
    }

    #[test]
    fn a_file_that_is_not_a_checkpoint_is_a_configuration_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        fs::write(&path, "{\"something\": 1}").unwrap();
        let fail = Checkpoint::load(&path).unwrap_err();
        assert_eq!(fail.exit, Exit::Config);
        assert!(fail.message.contains("cp.json"), "{}", fail.message);
        fs::write(&path, "not json").unwrap();
        assert!(
            Checkpoint::load(&path)
                .unwrap_err()
                .message
                .contains("not JSON")
        );
    }
}
