//! `cargo xtask regen` and `cargo xtask check`.

use std::path::Path;
use std::process::Command;

use similar::TextDiff;

use crate::generation;
use crate::spec;

pub const SPEC: &str = "openapi.yaml";
const SPEC_COPY: &str = "honeyhive-gen/openapi.yaml";
const RENDERING: &str = "honeyhive-gen/generated/client.rs";

fn read(root: &Path, path: &str) -> Result<String, String> {
    std::fs::read_to_string(root.join(path)).map_err(|e| format!("cannot read {path}: {e}"))
}

fn show_diff(old: &str, new: &str, path: &str) {
    let diff = TextDiff::from_lines(old, new);
    out!(
        "{}",
        diff.unified_diff()
            .context_radius(3)
            .header(&format!("a/{path}"), &format!("b/{path}"))
    );
}

/// Brings the spec copy and the rendering up to date (or, with `check_only`,
/// says whether they are). Ok(true) when nothing was or would be stale.
pub fn regen(root: &Path, check_only: bool) -> Result<bool, String> {
    let spec_text = read(root, SPEC)?;
    let mut fresh = true;

    let copy = std::fs::read_to_string(root.join(SPEC_COPY)).unwrap_or_default();
    if copy != spec_text {
        fresh = false;
        if check_only {
            outln!("{SPEC_COPY} differs from {SPEC}:");
            show_diff(&copy, &spec_text, SPEC_COPY);
        } else {
            std::fs::write(root.join(SPEC_COPY), &spec_text)
                .map_err(|e| format!("cannot write {SPEC_COPY}: {e}"))?;
            outln!("copied {SPEC} to {SPEC_COPY}");
        }
    }

    let parsed = generation::parse_spec(&spec_text)?;
    let rendered = generation::render(&parsed)?;
    let committed = std::fs::read_to_string(root.join(RENDERING)).unwrap_or_default();
    if committed == rendered {
        outln!(
            "{RENDERING} is up to date ({} lines)",
            rendered.lines().count()
        );
    } else {
        fresh = false;
        show_diff(&committed, &rendered, RENDERING);
        if !check_only {
            if let Some(dir) = root.join(RENDERING).parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            std::fs::write(root.join(RENDERING), &rendered)
                .map_err(|e| format!("cannot write {RENDERING}: {e}"))?;
            outln!("wrote {RENDERING}: review the diff above and commit it with the spec");
        }
    }
    Ok(fresh || !check_only)
}

/// The `version` of `[workspace.package]` in a Cargo.toml.
fn workspace_version(manifest: &str) -> Option<(u64, u64)> {
    let section = manifest.split("[workspace.package]").nth(1)?;
    let line = section
        .lines()
        .find(|l| l.trim_start().starts_with("version"))?;
    let version = line.split('"').nth(1)?;
    let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??))
}

/// Whether going from `old` to `new` is a semver-major step (0.x → 0.y counts).
fn major_bump(old: (u64, u64), new: (u64, u64)) -> bool {
    new.0 > old.0 || (new.0 == 0 && old.0 == 0 && new.1 > old.1)
}

pub fn check(
    root: &Path,
    base: Option<&str>,
    allow_breaking: bool,
    skip_lint: bool,
) -> Result<bool, String> {
    let mut ok = true;
    let mut skipped = false;

    outln!("== lint");
    let redocly = root.join(".ci/node_modules/.bin/redocly");
    if redocly.exists() {
        std::io::Write::flush(&mut std::io::stdout()).map_err(|e| e.to_string())?;
        let status = Command::new(&redocly)
            .args(["lint", SPEC])
            .current_dir(root)
            .env("REDOCLY_TELEMETRY", "off")
            .env("REDOCLY_SUPPRESS_UPDATE_NOTICE", "true")
            .status()
            .map_err(|e| format!("cannot run redocly: {e}"))?;
        if !status.success() {
            ok = false;
            outln!("redocly lint failed: fix openapi.yaml (rules in redocly.yaml)");
        }
    } else if skip_lint {
        skipped = true;
        outln!("the lint was skipped (--skip-lint)");
    } else {
        ok = false;
        outln!(
            "redocly is not installed: run `npm ci --prefix .ci` (what CI runs), or pass \
             --skip-lint to check the rest"
        );
    }

    outln!("== generated code");
    if !regen(root, true)? {
        ok = false;
        outln!("stale: run `cargo xtask regen`, review the diff and commit it");
    }

    outln!("== spec changes");
    let spec_changed = spec::git_show(&format!("HEAD:{SPEC}"), root)
        .is_ok_and(|committed| read(root, SPEC).is_ok_and(|now| now != committed));
    let base = base.map(str::to_owned).unwrap_or_else(|| {
        if spec_changed {
            "HEAD".into()
        } else {
            "HEAD~1".into()
        }
    });
    match spec::load(&format!("{base}:{SPEC}"), root) {
        Err(why) => outln!("no base spec to diff against ({why}): skipped"),
        Ok(old) => {
            let changes = crate::diff::diff(old, spec::load(SPEC, root)?);
            for change in &changes {
                outln!("{change}");
            }
            let breaking = changes
                .iter()
                .filter(|c| c.severity == crate::diff::Severity::Breaking)
                .count();
            outln!(
                "{breaking} breaking, {} compatible change(s) since {base}",
                changes.len() - breaking
            );
            if breaking > 0 {
                let bumped = spec::git_show(&format!("{base}:Cargo.toml"), root)
                    .ok()
                    .and_then(|m| workspace_version(&m))
                    .zip(workspace_version(&read(root, "Cargo.toml")?))
                    .is_some_and(|(old, new)| major_bump(old, new));
                if bumped {
                    outln!(
                        "acknowledged: the workspace version has a semver-major bump since {base}"
                    );
                } else if allow_breaking {
                    outln!("acknowledged with --allow-breaking");
                } else {
                    ok = false;
                    outln!(
                        "unacknowledged breaking change: bump the version in Cargo.toml's [workspace.package] \
                         (0.x -> 0.(x+1)) and say why in CHANGELOG.md, or pass --allow-breaking"
                    );
                }
            }
        }
    }
    outln!(
        "{}",
        match (ok, skipped) {
            (true, false) => "check passed",
            (true, true) => "check passed, but the spec was not linted",
            (false, _) => "check FAILED",
        }
    );
    Ok(ok)
}

/// Adds `line` under `[dependencies]` of `manifest` unless a dependency
/// named `krate` is there already; says whether it added it.
pub fn add_dependency(manifest: &Path, krate: &str, line: &str) -> Result<bool, String> {
    let text = std::fs::read_to_string(manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let Some(start) = text.find("[dependencies]\n") else {
        return Err(format!(
            "{} has no [dependencies] table",
            manifest.display()
        ));
    };
    let table_end = text[start + 1..]
        .find("\n[")
        .map_or(text.len(), |at| start + 1 + at + 1);
    let table = &text[start..table_end];
    if table
        .lines()
        .any(|l| l.split(['=', '.', ' ']).next() == Some(krate))
    {
        return Ok(false);
    }
    let insert_at = start + "[dependencies]\n".len();
    let updated = format!("{}{line}\n{}", &text[..insert_at], &text[insert_at..]);
    std::fs::write(manifest, updated)
        .map_err(|e| format!("cannot write {}: {e}", manifest.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_workspace_version_and_knows_a_major_bump() {
        let manifest = "[workspace]\nmembers = []\n\n[workspace.package]\nversion = \"0.3.1\"\nedition = \"2024\"\n";
        assert_eq!(workspace_version(manifest), Some((0, 3)));
        assert!(major_bump((0, 3), (0, 4)));
        assert!(!major_bump((0, 3), (0, 3)));
        assert!(major_bump((1, 9), (2, 0)));
        assert!(!major_bump((1, 2), (1, 3)));
    }
}
