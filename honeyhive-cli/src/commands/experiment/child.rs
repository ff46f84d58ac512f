//! A command run for one datapoint: JSON in on stdin, JSON out on stdout.
//! Its stdout is read up to a bound, its stderr's tail kept for the reason
//! of a failure; past the timeout the child is killed with its process
//! group. Once it exits, what its pipes hold is read, and a process it
//! left running that keeps them open is not waited for. Every way it can
//! fail comes back as a [`Failure`] that says what happened.

use std::fmt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use honeyhive::experiment::TaskOutput;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// The most of stdout read: more is a failure, not memory used.
pub const MAX_STDOUT: usize = 16 << 20;
/// How much of the end of stderr a failure quotes.
const STDERR_TAIL: usize = 500;
/// How much of a stdout that is not JSON a failure quotes.
const QUOTED: usize = 200;

/// What to run: a program and its arguments.
#[derive(Clone, Debug)]
pub struct Program {
    argv: Vec<String>,
}

impl Program {
    /// `argv[0]` found on `PATH`, with the rest as its arguments.
    ///
    /// # Panics
    ///
    /// If `argv` is empty (clap requires CMD).
    pub fn new(argv: Vec<String>) -> Program {
        assert!(!argv.is_empty(), "a command has a program");
        Program { argv }
    }

    /// `sh -c SCRIPT`.
    pub fn shell(script: &str) -> Program {
        Program::new(vec!["sh".into(), "-c".into(), script.into()])
    }

    /// How the command is named in messages.
    pub fn name(&self) -> &str {
        &self.argv[0]
    }
}

/// Replaces the API key in what a command said, so that a child that
/// found the key elsewhere does not put it in the output. Never printed.
#[derive(Clone, Default)]
pub struct Scrub(Option<std::sync::Arc<str>>);

impl Scrub {
    /// Scrubs `key` (none: nothing to scrub).
    pub fn new(key: Option<&str>) -> Scrub {
        Scrub(key.map(std::sync::Arc::from))
    }

    /// `failure`, said, with the key replaced by `[redacted]`.
    pub fn said(&self, failure: &Failure) -> String {
        let text = failure.to_string();
        match &self.0 {
            Some(key) if text.contains(&**key) => text.replace(&**key, "[redacted]"),
            _ => text,
        }
    }
}

/// Why a run gave no output.
#[derive(Debug)]
pub enum Failure {
    /// The program could not be started.
    Spawn { program: String, error: String },
    /// It ended with a failure status (or a signal).
    Status { status: ExitStatus, stderr: String },
    /// It was still running at the timeout, and was killed.
    Timeout(Duration),
    /// It printed more than [`MAX_STDOUT`] bytes.
    TooLong,
    /// It printed nothing on stdout.
    Nothing { stderr: String },
    /// What it printed is not JSON.
    NotJson { error: String, start: String },
    /// `{"outputs", "metrics"}` with metrics that are not an object.
    Metrics(&'static str),
    /// Reading its stdout failed.
    Io(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = |f: &mut fmt::Formatter<'_>, stderr: &str| {
            if stderr.is_empty() {
                Ok(())
            } else {
                write!(f, "; stderr ends: {stderr}")
            }
        };
        match self {
            Failure::Spawn { program, error } => {
                write!(f, "could not start `{program}`: {error}")
            }
            Failure::Status { status, stderr } => {
                match (status.code(), signal(status)) {
                    (Some(code), _) => write!(f, "exited with status {code}")?,
                    (None, Some(signal)) => write!(f, "killed by signal {signal}")?,
                    (None, None) => write!(f, "ended with {status}")?,
                }
                tail(f, stderr)
            }
            Failure::Timeout(after) => write!(
                f,
                "still running after {:.3} s (--timeout): killed",
                after.as_secs_f64()
            ),
            Failure::TooLong => write!(
                f,
                "printed more than {} MiB on stdout: killed",
                MAX_STDOUT >> 20
            ),
            Failure::Nothing { stderr } => {
                write!(f, "printed nothing on stdout; print the output as JSON")?;
                tail(f, stderr)
            }
            Failure::NotJson { error, start } => {
                write!(f, "stdout is not JSON ({error}); it begins: {start}")
            }
            Failure::Metrics(kind) => write!(
                f,
                "`metrics` is {kind}: make it an object of scores, such as {{\"accuracy\": 1}}"
            ),
            Failure::Io(error) => write!(f, "reading its stdout: {error}"),
        }
    }
}

#[cfg(unix)]
fn signal(status: &ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

#[cfg(not(unix))]
fn signal(_: &ExitStatus) -> Option<i32> {
    None
}

/// The variable that carries the API key: not passed on to commands.
const KEY_VARIABLE: &str = "HH_API_KEY";

/// How long the pipes are read after the command exited: what it wrote is
/// in them already, and a process it left running that holds them open
/// is not waited for (it is killed with the command's process group).
const GRACE: Duration = Duration::from_millis(100);

/// Runs `program` with `input` on stdin; its stdout parsed as JSON.
/// `timeout`: killed past it, with every process it started (it runs in a
/// process group of its own). The program does not get `HH_API_KEY`.
pub async fn run(
    program: &Program,
    input: &[u8],
    timeout: Option<Duration>,
) -> Result<Value, Failure> {
    let mut command = Command::new(&program.argv[0]);
    command
        .args(&program.argv[1..])
        .env_remove(KEY_VARIABLE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    command.process_group(0);
    let mut child = command.spawn().map_err(|e| Failure::Spawn {
        program: program.name().to_owned(),
        error: e.to_string(),
    })?;
    let mut group = Group(child.id());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let talked = talk(&mut child, input, &mut out, &mut err);
    let ended = match timeout {
        Some(after) => tokio::time::timeout(after, talked).await.ok(),
        None => Some(talked.await),
    };
    // Returning early drops `group`: killed, the command with it.
    let Some(ended) = ended else {
        return Err(Failure::Timeout(timeout.unwrap_or_default()));
    };
    let status = match ended {
        Ended::Exited {
            status,
            left_running: false,
        } => {
            group.disarm();
            status
        }
        // What it left running goes when `group` is dropped.
        Ended::Exited { status, .. } => status,
        Ended::Failed(failure) => return Err(failure),
    };
    let stderr = tail_text(&err);
    if !status.success() {
        return Err(Failure::Status { status, stderr });
    }
    parse(&out, stderr)
}

/// How the talk with a command ended.
enum Ended {
    /// It exited; `left_running`: its pipes were still open past
    /// [`GRACE`] (a process it started holds them).
    Exited {
        status: ExitStatus,
        left_running: bool,
    },
    /// Its stdout went past the bound, or could not be read.
    Failed(Failure),
}

/// Writes `input`, reads stdout into `out` and stderr's tail into `err`
/// until the command exits, then what is left in the pipes for at most
/// [`GRACE`].
async fn talk(
    child: &mut tokio::process::Child,
    input: &[u8],
    out: &mut Vec<u8>,
    err: &mut Vec<u8>,
) -> Ended {
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let write = async {
        if let Some(mut stdin) = stdin {
            // A command that does not read its input closes the pipe
            // early: that is its business, not a failure.
            let _ignored = stdin.write_all(input).await;
            let _ignored = stdin.shutdown().await;
        }
    };
    let read_out = read_bounded(stdout, out);
    let read_err = read_tail(stderr, err);
    tokio::pin!(write, read_out, read_err);
    let (mut wrote, mut read_all_out, mut read_all_err) = (false, false, false);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            () = &mut write, if !wrote => wrote = true,
            read = &mut read_out, if !read_all_out => match read {
                Ok(()) => read_all_out = true,
                Err(failure) => return Ended::Failed(failure),
            },
            () = &mut read_err, if !read_all_err => read_all_err = true,
        }
    };
    let status = match status {
        Ok(status) => status,
        Err(e) => return Ended::Failed(Failure::Io(e.to_string())),
    };
    let rest = async {
        let out = async {
            if read_all_out {
                Ok(())
            } else {
                (&mut read_out).await
            }
        };
        let err = async {
            if !read_all_err {
                (&mut read_err).await;
            }
        };
        tokio::join!(out, err).0
    };
    match tokio::time::timeout(GRACE, rest).await {
        Ok(Ok(())) => Ended::Exited {
            status,
            left_running: false,
        },
        Ok(Err(failure)) => Ended::Failed(failure),
        Err(_) => Ended::Exited {
            status,
            left_running: true,
        },
    }
}

/// A command's process group (its id is the command's pid), killed when
/// dropped unless disarmed: at the timeout, on a failure, when the
/// datapoint's job is stopped, and when the command exited leaving
/// processes that hold its pipes. Elsewhere the command itself is killed
/// on drop (`kill_on_drop`).
struct Group(Option<u32>);

impl Group {
    /// The command exited and left nothing holding its pipes: its id may
    /// be reused, so it is not signalled.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self
            .0
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            let _already_gone =
                rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

/// Reads stdout into `out`, up to [`MAX_STDOUT`]: more is a failure.
async fn read_bounded(
    stdout: Option<impl AsyncRead + Unpin>,
    out: &mut Vec<u8>,
) -> Result<(), Failure> {
    let Some(mut stdout) = stdout else {
        return Ok(());
    };
    let mut chunk = [0u8; 8192];
    loop {
        match stdout.read(&mut chunk).await {
            Ok(0) => return Ok(()),
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(Failure::Io(e.to_string())),
        }
        if out.len() > MAX_STDOUT {
            return Err(Failure::TooLong);
        }
    }
}

/// All of stderr read (so the child never blocks on it), its end kept in
/// `kept`.
async fn read_tail(stderr: Option<impl AsyncRead + Unpin>, kept: &mut Vec<u8>) {
    let Some(mut stderr) = stderr else {
        return;
    };
    let mut chunk = [0u8; 8192];
    while let Ok(n) = stderr.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&chunk[..n]);
        if kept.len() > 2 * STDERR_TAIL {
            kept.drain(..kept.len() - STDERR_TAIL);
        }
    }
}

/// The end of stderr, as one line.
fn tail_text(kept: &[u8]) -> String {
    let start = kept.len().saturating_sub(STDERR_TAIL);
    let text = String::from_utf8_lossy(&kept[start..]);
    text.trim().replace('\n', " | ")
}

fn parse(out: &[u8], stderr: String) -> Result<Value, Failure> {
    let text = String::from_utf8_lossy(out);
    let text = text.trim();
    if text.is_empty() {
        return Err(Failure::Nothing { stderr });
    }
    serde_json::from_str(text).map_err(|e| Failure::NotJson {
        error: e.to_string(),
        start: text.chars().take(QUOTED).collect(),
    })
}

/// A task's output as the library takes it apart
/// (`TaskOutput::from_json`), but `{"outputs": ..., "metrics": X}` with X
/// not an object is refused rather than taken whole as the outputs.
pub fn task_output(value: Value) -> Result<TaskOutput, Failure> {
    if let Value::Object(object) = &value
        && object.contains_key("outputs")
        && object.keys().all(|k| k == "outputs" || k == "metrics")
    {
        match object.get("metrics") {
            None | Some(Value::Null | Value::Object(_)) => {}
            Some(Value::Array(_)) => return Err(Failure::Metrics("an array")),
            Some(Value::String(_)) => return Err(Failure::Metrics("a string")),
            Some(Value::Number(_)) => return Err(Failure::Metrics("a number")),
            Some(Value::Bool(_)) => return Err(Failure::Metrics("a boolean")),
        }
    }
    Ok(TaskOutput::from_json(value))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Instant;

    fn sh(script: &str) -> Program {
        Program::shell(script)
    }

    async fn said(program: &Program, input: &str) -> String {
        run(program, input.as_bytes(), Some(Duration::from_secs(10)))
            .await
            .unwrap_err()
            .to_string()
    }

    #[tokio::test]
    async fn cat_gives_back_its_input_as_json() {
        let cat = Program::new(vec!["cat".into()]);
        let got = run(&cat, br#"{"inputs": {"q": 1}}"#, None).await.unwrap();
        assert_eq!(got, json!({"inputs": {"q": 1}}));
        // A large input is written while the output is read: no deadlock.
        let big = json!({"text": "x".repeat(1 << 20)}).to_string();
        let got = run(&cat, big.as_bytes(), Some(Duration::from_secs(10)))
            .await
            .unwrap();
        assert_eq!(got["text"].as_str().map(str::len), Some(1 << 20));
    }

    #[tokio::test]
    async fn a_command_that_does_not_read_stdin_is_fine() {
        let got = run(&sh("echo '[1, 2]'"), &vec![b'x'; 1 << 20], None)
            .await
            .unwrap();
        assert_eq!(got, json!([1, 2]));
    }

    #[tokio::test]
    async fn a_failure_status_says_its_code_and_the_end_of_stderr() {
        let reason = said(
            &sh("echo '{}'; echo 'first' >&2; echo 'no model key' >&2; exit 3"),
            "{}",
        )
        .await;
        assert_eq!(
            reason,
            "exited with status 3; stderr ends: first | no model key"
        );
        let reason = said(&sh("kill -9 $$"), "{}").await;
        assert_eq!(reason, "killed by signal 9");
        let long = said(
            &sh("head -c 10000 /dev/zero | tr '\\0' a >&2; echo END >&2; exit 1"),
            "",
        )
        .await;
        assert!(long.ends_with("aaaaEND"), "{long}");
        assert!(long.len() < STDERR_TAIL + 100, "{}", long.len());
    }

    #[tokio::test]
    async fn what_is_not_json_is_quoted_and_nothing_is_said() {
        let reason = said(&sh("echo 'The answer is 4'"), "{}").await;
        assert!(
            reason.starts_with(
                "stdout is not JSON (expected value at line 1 column 1); it begins: The answer is 4"
            ),
            "{reason}"
        );
        let reason = said(&sh("echo oops >&2"), "{}").await;
        assert_eq!(
            reason,
            "printed nothing on stdout; print the output as JSON; stderr ends: oops"
        );
        let reason = said(&sh("head -c 100000 /dev/zero | tr '\\0' a"), "{}").await;
        assert!(reason.len() < QUOTED + 100, "{reason}");
    }

    #[tokio::test]
    async fn past_the_timeout_the_child_is_killed() {
        let started = Instant::now();
        let reason = run(
            &sh("exec sleep 30"),
            b"{}",
            Some(Duration::from_millis(200)),
        )
        .await
        .unwrap_err();
        assert!(matches!(reason, Failure::Timeout(_)));
        assert_eq!(
            reason.to_string(),
            "still running after 0.200 s (--timeout): killed"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn what_the_command_left_running_is_not_waited_for_and_dies_with_it() {
        let started = Instant::now();
        let got = run(
            &sh("sleep 30 & echo '{\"done\": true}'"),
            b"{}",
            Some(Duration::from_secs(20)),
        )
        .await
        .unwrap();
        assert_eq!(got, json!({"done": true}));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // At the timeout the whole group goes, grandchildren too: the pid
        // file's process is gone.
        let dir = tempfile::tempdir().unwrap();
        let pid = dir.path().join("pid");
        let reason = run(
            &sh(&format!("sleep 30 & echo $! > {}; wait", pid.display())),
            b"{}",
            Some(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
        assert!(matches!(reason, Failure::Timeout(_)), "{reason}");
        let pid = std::fs::read_to_string(&pid).unwrap();
        let started = Instant::now();
        while std::path::Path::new(&format!("/proc/{}", pid.trim())).exists() {
            // A killed process stays a zombie until its parent (here
            // init, once the shell is gone) reaps it.
            let state =
                std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
            if state.contains(") Z ") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "sleep {pid} lives"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[tokio::test]
    async fn stdout_past_the_bound_is_a_failure_not_memory() {
        let reason = said(&sh("exec cat /dev/zero"), "").await;
        assert_eq!(reason, "printed more than 16 MiB on stdout: killed");
    }

    #[tokio::test]
    async fn a_program_that_does_not_exist_is_named() {
        let reason = said(&Program::new(vec!["no-such-program-hh".into()]), "{}").await;
        assert!(
            reason.starts_with("could not start `no-such-program-hh`: "),
            "{reason}"
        );
    }

    #[test]
    fn metrics_beside_outputs_must_be_an_object() {
        let split = task_output(json!({"outputs": {"a": 1}, "metrics": {"len": 3}})).unwrap();
        assert_eq!(split.outputs, json!({"a": 1}));
        assert_eq!(split.metrics["len"], json!(3));
        // Another key beside: the object is the output.
        let whole = json!({"outputs": 1, "other": 2});
        assert_eq!(task_output(whole.clone()).unwrap().outputs, whole);
        let refused = task_output(json!({"outputs": 1, "metrics": [1]})).unwrap_err();
        assert!(refused.to_string().starts_with("`metrics` is an array"));
    }
}
