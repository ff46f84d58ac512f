//! `cargo xtask regen` and `cargo xtask check`.

use std::path::Path;
use std::process::Command;

use similar::TextDiff;

use crate::generation;
use crate::spec;

pub const SPEC: &str = "openapi.yaml";
const SPEC_COPY: &str = "honeyhive-gen/openapi.yaml";
const RENDERING: &str = "honeyhive-gen/generated/client.rs";
const SPEC_JSON: &str = "honeyhive-gen/generated/openapi.json";

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

/// The spec as JSON, as `honeyhive_gen::OPENAPI_JSON` embeds it: for code
/// that validates requests against the spec at run time without a YAML parser.
pub fn spec_json(spec_text: &str) -> Result<String, String> {
    let value: serde_json::Value =
        serde_yaml_ng::from_str(spec_text).map_err(|e| format!("{SPEC} is not valid YAML: {e}"))?;
    let mut json = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
    json.push('\n');
    Ok(json)
}

/// Brings one generated file up to date (or, with `check_only`, says with
/// a diff whether it is). True when it was already fresh.
fn refresh(root: &Path, path: &str, fresh_text: &str, check_only: bool) -> Result<bool, String> {
    let committed = std::fs::read_to_string(root.join(path)).unwrap_or_default();
    if committed == fresh_text {
        outln!(
            "{path} is up to date ({} lines)",
            fresh_text.lines().count()
        );
        return Ok(true);
    }
    show_diff(&committed, fresh_text, path);
    if !check_only {
        if let Some(dir) = root.join(path).parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        std::fs::write(root.join(path), fresh_text)
            .map_err(|e| format!("cannot write {path}: {e}"))?;
        outln!("wrote {path}: review the diff above and commit it with the spec");
    }
    Ok(false)
}

/// Brings the spec copy and the renderings honeyhive-gen compiles (the
/// client, the spec as JSON) up to date, or, with `check_only`, says whether
/// they are. Ok(true) when nothing was or would be stale.
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
    fresh &= refresh(root, RENDERING, &rendered, check_only)?;
    fresh &= refresh(root, SPEC_JSON, &spec_json(&spec_text)?, check_only)?;
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

    const TINY_SPEC: &str = "openapi: 3.0.3\ninfo:\n  title: t\n  version: 1.0.0\npaths:\n  /things:\n    get:\n      operationId: listThings\n      responses:\n        '200':\n          description: the things\n          content:\n            application/json:\n              schema:\n                type: array\n                items:\n                  type: string\n";

    #[test]
    fn a_deprecated_operation_s_method_is_deprecated_naming_the_replacement_s_method() {
        let spec = TINY_SPEC.replace(
            "paths:\n",
            "paths:\n  /old-things:\n    get:\n      operationId: listOldThings\n      deprecated: true\n      description: 'Deprecated: use listThings (`GET /things`). The old route.'\n      responses:\n        '200':\n          description: the things\n",
        );
        let client = generation::render(&generation::parse_spec(&spec).unwrap()).unwrap();
        let marked = client
            .find("#[deprecated(note = \"use list_things (`GET /things`)\")]\n    pub fn list_old_things")
            .is_some();
        assert!(marked, "{client}");
        assert_eq!(
            client.matches("#[deprecated").count(),
            1,
            "only the deprecated one"
        );
    }

    #[test]
    fn regen_writes_what_honeyhive_gen_compiles_and_check_refuses_each_stale_file() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join(SPEC), TINY_SPEC).unwrap();
        std::fs::create_dir(root.path().join("honeyhive-gen")).unwrap();

        assert!(!regen(root.path(), true).unwrap(), "nothing written yet");
        assert!(regen(root.path(), false).unwrap());
        assert!(regen(root.path(), true).unwrap(), "fresh after regen");

        let copy = std::fs::read_to_string(root.path().join(SPEC_COPY)).unwrap();
        assert_eq!(copy, TINY_SPEC);
        let client = std::fs::read_to_string(root.path().join(RENDERING)).unwrap();
        assert!(client.starts_with(generation::HEADER));
        assert!(client.contains("pub fn list_things"));
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.path().join(SPEC_JSON)).unwrap())
                .unwrap();
        assert_eq!(json["paths"]["/things"]["get"]["operationId"], "listThings");

        for stale in [SPEC_COPY, RENDERING, SPEC_JSON] {
            let path = root.path().join(stale);
            let fresh = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, format!("{fresh} ")).unwrap();
            assert!(!regen(root.path(), true).unwrap(), "{stale} edited by hand");
            std::fs::write(&path, fresh).unwrap();
        }
    }
}
