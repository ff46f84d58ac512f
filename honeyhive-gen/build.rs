//! Generates the HoneyHive client from the OpenAPI spec into `OUT_DIR`.
//!
//! The spec read is `honeyhive-gen/openapi.yaml`, so that it travels in this
//! crate's package. The file people edit is the workspace's `openapi.yaml`;
//! in the workspace this build refuses to run while the two differ, and
//! `cargo xtask regen` copies one to the other.

#[path = "generation.rs"]
mod generation;

use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let spec_path = manifest_dir.join("openapi.yaml");
    println!("cargo::rerun-if-changed={}", spec_path.display());
    println!("cargo::rerun-if-changed=generation.rs");

    let text = fs::read_to_string(&spec_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", spec_path.display()));
    if let Some(root) = workspace_spec(&manifest_dir) {
        println!("cargo::rerun-if-changed={}", root.display());
        let root_text = fs::read_to_string(&root)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", root.display()));
        if root_text != text {
            panic!(
                "openapi.yaml changed but honeyhive-gen/openapi.yaml (the copy this crate's \
                 package carries) did not: run `cargo xtask regen` to copy it and see the \
                 generated code change"
            );
        }
    }

    let spec = generation::parse_spec(&text).unwrap_or_else(|e| panic!("{e}"));
    let source = generation::render(&spec).unwrap_or_else(|e| panic!("{e}"));

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts"));
    fs::write(out.join("client.rs"), source).expect("OUT_DIR is writable");
    // The spec as JSON, for code that validates requests against it at run time
    // without a YAML parser.
    let as_json: serde_json::Value = serde_yaml_ng::from_str(&text).expect("parsed above");
    fs::write(out.join("openapi.json"), as_json.to_string()).expect("OUT_DIR is writable");
}

/// The workspace's `openapi.yaml`, when this crate is built inside the
/// honeyhive-rs workspace (and not from its package).
fn workspace_spec(manifest_dir: &Path) -> Option<PathBuf> {
    let root = manifest_dir.parent()?;
    let is_ours = root.join("honeyhive-gen").canonicalize().ok()?
        == manifest_dir.canonicalize().ok()?
        && root.join("Cargo.toml").is_file();
    let spec = root.join("openapi.yaml");
    (is_ours && spec.is_file()).then_some(spec)
}
