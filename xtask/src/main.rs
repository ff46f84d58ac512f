//! `cargo xtask`: maintenance commands for honeyhive-rs.
//!
//! - `regen`: copy the spec into honeyhive-gen, render the generated client
//!   into `honeyhive-gen/generated/client.rs` and the spec as JSON into
//!   `honeyhive-gen/generated/openapi.json`, and show what changed.
//! - `check`: for CI: lint, copies and rendering fresh, no unacknowledged
//!   breaking spec change.
//! - `diff OLD NEW`: semantic, breaking-change-aware diff of two specs.
//! - `import SPEC`: OpenAPI 3.1 (or 3.0) in, progenitor-ready 3.0.3 out.
//! - `adopt SPEC --operations a,b`: those operations of a newer spec, and
//!   what they reach, into `openapi.yaml`, leaving the rest as it is.
//! - `layers`: the `honeyhive` crate's modules keep their layers (see
//!   `layers.rs`): no upward import, no loop, nothing through the root.

/// `println!` to stdout, except that once the reader has gone (`xtask diff
/// | head`), the rest is dropped instead of panicking, and the command still
/// ends with its own exit code.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::out::line(format_args!($($arg)*)) };
}

/// `print!` to stdout, with [`outln!`]'s handling of a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => { $crate::out::text(format_args!($($arg)*)) };
}

mod adopt;
mod diff;
#[path = "../../honeyhive-gen/generation.rs"]
mod generation;
mod import;
mod layers;
mod out;
mod regen;
mod spec;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Maintenance commands for honeyhive-rs",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Copy openapi.yaml into honeyhive-gen, render progenitor's output with
    /// honeyhive-gen/generation.rs's settings into
    /// honeyhive-gen/generated/client.rs and the spec as JSON into
    /// generated/openapi.json (what honeyhive-gen compiles), and print a
    /// unified diff of what changed.
    Regen {
        /// Change nothing; exit 1 if anything would change.
        #[arg(long)]
        check: bool,
    },
    /// For CI: lint the spec (redocly, from `npm ci --prefix .ci`), check
    /// the packaged copy and the committed rendering are fresh, and diff the
    /// spec against the last commit; fails on an unacknowledged breaking
    /// change, and when redocly is missing unless --skip-lint says so.
    Check {
        /// The revision to diff against. Default: HEAD when openapi.yaml has
        /// uncommitted changes, HEAD~1 otherwise.
        #[arg(long)]
        base: Option<String>,
        /// Accept breaking changes without a version bump.
        #[arg(long)]
        allow_breaking: bool,
        /// Check the rest without linting (redocly not installed); the
        /// result says the lint was skipped.
        #[arg(long)]
        skip_lint: bool,
    },
    /// Semantic diff of two specs, each change classified breaking or
    /// compatible for clients. OLD and NEW are files or git REV:path.
    /// Exits 1 when anything is breaking, unless --allow-breaking.
    Diff {
        old: String,
        new: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[arg(long)]
        allow_breaking: bool,
    },
    /// Convert an OpenAPI 3.1 or 3.0 spec (YAML or JSON) into the 3.0.3
    /// dialect progenitor reads. The rewrites are summed up on stderr, one
    /// line per kind (--verbose: each, with its JSON pointer); what cannot
    /// be converted is an error naming its JSON pointer.
    Import {
        spec: PathBuf,
        /// Where to write (YAML, or JSON if it ends in .json). Default: stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Keep only these operations (by operationId), and the schemas they use.
        #[arg(long, value_delimiter = ',')]
        operations: Option<Vec<String>>,
        /// List every rewrite, not one line per kind.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Adopt operations of a newer spec (OpenAPI 3.1 or 3.0) into
    /// openapi.yaml: each converted as `import` does and added with every
    /// component it reaches; the operations already there stay as they are.
    /// A component whose name is taken by another shape is renamed (and
    /// said); one of the same shape is shared. What the generated code then
    /// needs (uuid for format: uuid, chrono for date-time) is added to
    /// honeyhive-gen/Cargo.toml. Then run `cargo xtask regen`.
    Adopt {
        spec: PathBuf,
        /// The operations to adopt, by operationId.
        #[arg(long, value_delimiter = ',', required = true)]
        operations: Vec<String>,
        /// The spec to adopt into, rewritten in place [default: the
        /// repository's openapi.yaml].
        #[arg(long)]
        into: Option<PathBuf>,
        /// Write the result here instead of in place (nothing else is
        /// changed then).
        #[arg(long)]
        out: Option<PathBuf>,
        /// What renamed components get after their name [default: V and
        /// the newer spec's major version, such as V1].
        #[arg(long)]
        rename_suffix: Option<String>,
        /// List every rewrite of the conversion, not one line per kind.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Check that the modules of honeyhive/src keep their layers (the list
    /// is LAYERS in xtask/src/layers.rs): no import from a lower layer to a
    /// higher one, no modules that import each other, nothing imported
    /// through the crate root. Exits 1 naming each file and line at fault.
    Layers,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = repo_root();
    let result = match cli.command {
        Command::Regen { check } => regen::regen(&root, check),
        Command::Check {
            base,
            allow_breaking,
            skip_lint,
        } => regen::check(&root, base.as_deref(), allow_breaking, skip_lint),
        Command::Diff {
            old,
            new,
            format,
            allow_breaking,
        } => run_diff(&root, &old, &new, format, allow_breaking),
        Command::Import {
            spec,
            out,
            operations,
            verbose,
        } => run_import(&spec, out.as_deref(), operations.as_deref(), verbose),
        Command::Adopt {
            spec,
            operations,
            into,
            out,
            rename_suffix,
            verbose,
        } => run_adopt(
            &root,
            &spec,
            &operations,
            into.as_deref(),
            out.as_deref(),
            rename_suffix.as_deref(),
            verbose,
        ),
        Command::Layers => run_layers(&root),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run_layers(root: &std::path::Path) -> Result<bool, String> {
    let src = root.join("honeyhive/src");
    let problems = layers::check(&src, layers::LAYERS, layers::KNOWN_LOOPS)?;
    for problem in &problems {
        outln!("honeyhive/src/{problem}");
    }
    if problems.is_empty() {
        outln!(
            "layers: every import of honeyhive/src keeps to the {} layers",
            layers::LAYERS.len()
        );
    }
    Ok(problems.is_empty())
}

fn run_adopt(
    root: &std::path::Path,
    newer: &std::path::Path,
    operations: &[String],
    into: Option<&std::path::Path>,
    out: Option<&std::path::Path>,
    suffix: Option<&str>,
    verbose: bool,
) -> Result<bool, String> {
    let base_path = into.map_or_else(|| root.join(regen::SPEC), std::path::Path::to_path_buf);
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let base_text = read(&base_path)?;
    let newer_doc = spec::parse(&read(newer)?)?;
    let adopted = match adopt::adopt(spec::parse(&base_text)?, newer_doc, operations, suffix) {
        Ok(adopted) => adopted,
        Err(problems) => {
            for problem in &problems {
                eprintln!("cannot adopt {problem}");
            }
            return Err(format!(
                "{} problem(s); nothing was written",
                problems.len()
            ));
        }
    };
    report_rewrites(&adopted.rewrites, verbose);
    for line in &adopted.report {
        outln!("{line}");
    }
    let rendered = spec::render_like(&adopted.spec, &base_text)?;
    let target = out.unwrap_or(&base_path);
    std::fs::write(target, rendered)
        .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    outln!("wrote {}", target.display());
    let in_repo = out.is_none() && base_path == root.join(regen::SPEC);
    for need in &adopted.needs {
        let line = need.dependency_line();
        if in_repo {
            let manifest = root.join("honeyhive-gen/Cargo.toml");
            if regen::add_dependency(&manifest, need.krate, &line)? {
                outln!(
                    "added to honeyhive-gen/Cargo.toml: {line} (the generated code needs {} for {})",
                    need.krate,
                    need.because
                );
            }
        } else {
            outln!(
                "the generated code needs {}: {line} (for {})",
                need.krate,
                need.because
            );
        }
    }
    if in_repo {
        outln!(
            "next: `cargo xtask regen` to see the generated code change, then `cargo xtask diff HEAD:openapi.yaml openapi.yaml`"
        );
    }
    Ok(true)
}

/// The rewrites on stderr: one line per kind with its count, or each.
fn report_rewrites(rewrites: &[import::Rewrite], verbose: bool) {
    if verbose {
        for rewrite in rewrites {
            eprintln!("rewrote {rewrite}");
        }
    } else if !rewrites.is_empty() {
        eprintln!("rewrites, by kind (--verbose lists each):");
        for line in import::summary(rewrites) {
            eprintln!("{line}");
        }
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// Prints the diff; Ok(false) when it has breaking changes not allowed.
fn run_diff(
    root: &std::path::Path,
    old: &str,
    new: &str,
    format: Format,
    allow_breaking: bool,
) -> Result<bool, String> {
    let changes = diff::diff(spec::load(old, root)?, spec::load(new, root)?);
    let breaking = changes
        .iter()
        .filter(|c| c.severity == diff::Severity::Breaking)
        .count();
    match format {
        Format::Json => {
            let report = serde_json::json!({
                "breaking": breaking,
                "compatible": changes.len() - breaking,
                "changes": changes.iter().map(diff::Change::to_json).collect::<Vec<_>>(),
            });
            outln!(
                "{}",
                serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
            );
        }
        Format::Text => {
            for change in &changes {
                outln!("{change}");
            }
            outln!(
                "{breaking} breaking, {} compatible change(s) from {old} to {new}",
                changes.len() - breaking
            );
        }
    }
    Ok(breaking == 0 || allow_breaking)
}

fn run_import(
    path: &std::path::Path,
    out: Option<&std::path::Path>,
    operations: Option<&[String]>,
    verbose: bool,
) -> Result<bool, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let document = spec::parse(&text)?;
    match import::import(document, operations) {
        Ok(imported) => {
            report_rewrites(&imported.rewrites, verbose);
            let json = out.is_some_and(|p| p.extension().is_some_and(|e| e == "json"));
            let rendered = spec::render(&imported.spec, json)?;
            match out {
                Some(out) => {
                    std::fs::write(out, rendered)
                        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
                    eprintln!(
                        "wrote {} ({} rewrites)",
                        out.display(),
                        imported.rewrites.len()
                    );
                }
                None => out!("{rendered}"),
            }
            Ok(true)
        }
        Err(problems) => {
            for problem in &problems {
                eprintln!("cannot convert {problem}");
            }
            Err(format!(
                "{} place(s) have no OpenAPI 3.0 form; nothing written",
                problems.len()
            ))
        }
    }
}
