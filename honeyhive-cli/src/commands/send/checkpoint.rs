//! `--checkpoint FILE`: how far each input has been delivered, so a re-run
//! after Ctrl-C or a crash continues there.
//!
//! The file is JSON, `{"version": 1, "inputs": {"/abs/path.jsonl": {"line":
//! 1200, "offset": 345678, "events": 1187}}}`: every line up to `line`
//! (ending at byte `offset`, `events` of them not blank) was sent or
//! written to the rejects file. It is replaced whole (written beside, then
//! renamed), so a crash leaves the old one or the new one, never half.
//!
//! Each file's entry also holds a `fingerprint` of what was delivered: a
//! digest (UUIDv5, SHA-1) of its first bytes and of the bytes just before
//! `offset`, up to 4 KiB each. A re-run resumes only a file whose bytes
//! there are the same (one that grew at its end resumes; one replaced by
//! another is refused, naming it); an entry written without one (by an
//! earlier build) resumes as it did.

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
    inputs: BTreeMap<String, Entry>,
}

/// One input's entry: its position, and what its content was there.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Entry {
    #[serde(flatten)]
    position: Position,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
}

/// How much of each end of the delivered part the fingerprint reads.
const SAMPLE: u64 = 4096;

/// The fingerprint of the file at `path` delivered up to `offset`, or
/// `None` for standard input (`-`) or a file shorter than that.
fn fingerprint(path: &str, offset: u64) -> io::Result<Option<String>> {
    use std::io::{Read, Seek, SeekFrom};
    if path == "-" {
        return Ok(None);
    }
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if file.metadata()?.len() < offset {
        return Ok(None);
    }
    let mut read = |from: u64, len: u64| -> io::Result<Vec<u8>> {
        let mut bytes = Vec::with_capacity(len as usize);
        file.seek(SeekFrom::Start(from))?;
        (&mut file).take(len).read_to_end(&mut bytes)?;
        Ok(bytes)
    };
    let mut sampled = offset.to_le_bytes().to_vec();
    sampled.extend(read(0, offset.min(SAMPLE))?);
    sampled.extend(read(offset.saturating_sub(SAMPLE), offset.min(SAMPLE))?);
    Ok(Some(
        uuid::Uuid::new_v5(&FINGERPRINTS, &sampled)
            .simple()
            .to_string(),
    ))
}

/// The namespace of fingerprints (fixed: a new one would refuse every
/// checkpoint written before).
const FINGERPRINTS: uuid::Uuid = uuid::Uuid::from_u128(0x2b8e_41c7_0d5a_4f93_a6e2_7c1f_90b4_3d58);

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

    /// Where `input` (an absolute path, or `-`) was left, if it was.
    ///
    /// # Errors
    /// A file whose content is not what was delivered from it (replaced by
    /// another, or cut short): resuming it would skip lines never sent.
    pub fn resume(&self, input: &str) -> Result<Position, Fail> {
        let Some(entry) = self.saved.inputs.get(input) else {
            return Ok(Position::default());
        };
        let Some(expected) = &entry.fingerprint else {
            return Ok(entry.position);
        };
        let found = fingerprint(input, entry.position.offset)
            .map_err(|e| Fail::new(Exit::Usage, format!("cannot read {input}: {e}")))?;
        if found.as_ref() == Some(expected) {
            return Ok(entry.position);
        }
        Err(Fail::new(
            Exit::Config,
            format!(
                "checkpoint {}: {input} is not the file it was made for (its first {} bytes \
                 were delivered, and they are not what the file holds now); remove the \
                 checkpoint, or pass another --checkpoint, to send this file from the start",
                self.path.display(),
                entry.position.offset
            ),
        ))
    }

    /// Records `position` for `input` and replaces the file whole: written
    /// to a temporary file in the same directory, synced, then renamed over
    /// it.
    pub fn save(&mut self, input: &str, position: Position) -> io::Result<()> {
        let fingerprint = fingerprint(input, position.offset)?;
        self.saved.inputs.insert(
            input.to_owned(),
            Entry {
                position,
                fingerprint,
            },
        );
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
        assert_eq!(checkpoint.resume("a").unwrap(), Position::default());
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
        assert_eq!(again.resume("a").unwrap(), a);
        assert_eq!(again.resume("b").unwrap().line, 1);
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
