//! Imports the 3.1 fixture with `cargo xtask import`'s own code, generates a
//! client from the result with the settings honeyhive-gen uses, and leaves
//! it for `src/lib.rs` to compile.

#[path = "../../honeyhive-gen/generation.rs"]
mod generation;
#[path = "../src/import.rs"]
#[allow(dead_code)]
mod import;
#[path = "../src/spec.rs"]
#[allow(dead_code)]
mod spec;

use std::path::PathBuf;

fn main() {
    let fixture = "../tests/fixtures/import/openapi-3.1.yaml";
    println!("cargo::rerun-if-changed={fixture}");
    println!("cargo::rerun-if-changed=../src/import.rs");
    println!("cargo::rerun-if-changed=../../honeyhive-gen/generation.rs");

    let text = std::fs::read_to_string(fixture).expect("the fixture is in the repository");
    let document = spec::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let imported = import::import(document, None).unwrap_or_else(|problems| {
        panic!("import refused the fixture: {problems:?}");
    });
    let yaml = spec::render(&imported.spec, false).expect("a JSON value renders as YAML");
    let parsed = generation::parse_spec(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let source = generation::render(&parsed).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("client.rs"), source).expect("OUT_DIR is writable");
    std::fs::write(out.join("imported.yaml"), yaml).expect("OUT_DIR is writable");
}
