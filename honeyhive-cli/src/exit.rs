//! How the command ends: its exit codes, the failure that ends it early,
//! and printing a result line.

/// The command's exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Every line sent (or skipped by the checkpoint); the event logged;
    /// every datapoint of the experiment ran and was scored (a score that
    /// says no is a result, not an error).
    Ok = 0,
    /// Some lines were rejected or failed (see the rejects file), a line
    /// did not validate, or datapoints of the experiment errored (the
    /// command failed, timed out or printed what is not JSON; an evaluator
    /// gave no score) or were not recorded.
    Partial = 1,
    /// The command line is wrong, or an input file cannot be read.
    Usage = 2,
    /// Configuration: no API key, a bad URL or setting, a checkpoint that
    /// does not fit the file, the API refused the key.
    Config = 3,
    /// The API could not be reached at all: nothing was sent.
    Unreachable = 4,
    /// The experiment broke a `--fail-if` gate against its base run.
    GateFailed = 5,
    /// Stopped by Ctrl-C (after saving the checkpoint and the rejects), or
    /// an experiment by Ctrl-C or SIGTERM (the run closed as cancelled).
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
