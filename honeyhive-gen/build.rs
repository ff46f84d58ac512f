//! Generates the HoneyHive client from the OpenAPI spec into `OUT_DIR`.

#[path = "generation.rs"]
mod generation;

use std::{env, fs, path::PathBuf};

fn main() {
    let spec_path = PathBuf::from("../openapi.yaml");
    println!("cargo::rerun-if-changed={}", spec_path.display());
    println!("cargo::rerun-if-changed=generation.rs");

    let text = fs::read_to_string(&spec_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", spec_path.display()));
    let spec = generation::parse_spec(&text).unwrap_or_else(|e| panic!("{e}"));
    let source = generation::render(&spec).unwrap_or_else(|e| panic!("{e}"));

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts"));
    fs::write(out.join("client.rs"), source).expect("OUT_DIR is writable");
    // The spec as JSON, for code that validates requests against it at run time
    // without a YAML parser.
    let as_json: serde_json::Value = serde_yaml_ng::from_str(&text).expect("parsed above");
    fs::write(out.join("openapi.json"), as_json.to_string()).expect("OUT_DIR is writable");
}
