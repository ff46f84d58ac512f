//! Imports the 3.1 fixture with `cargo xtask import`'s own code, generates a
//! client from the result with the settings honeyhive-gen uses, and leaves
//! it for `src/lib.rs` to compile.

#[path = "../src/adopt.rs"]
#[allow(dead_code)]
mod adopt;
#[path = "../../honeyhive-gen/generation.rs"]
mod generation;
#[path = "../src/import.rs"]
#[allow(dead_code)]
mod import;
#[path = "../src/spec.rs"]
#[allow(dead_code)]
mod spec;

use std::path::PathBuf;

/// The specs to import: (output name, fixture, operations to keep).
const CASES: &[(&str, &str, Option<&[&str]>)] = &[
    ("client", "../tests/fixtures/import/openapi-3.1.yaml", None),
    // HoneyHive's published specs (xtask/tests/fixtures/upstream/README.md),
    // whole and cut to the operations an event logger uses.
    (
        "upstream_0209",
        "../tests/fixtures/upstream/2026-02-09.yaml",
        None,
    ),
    (
        "upstream_0212",
        "../tests/fixtures/upstream/2026-02-12.yaml",
        None,
    ),
    (
        "upstream_0212_events",
        "../tests/fixtures/upstream/2026-02-12.yaml",
        Some(&["createEvent", "createEventBatch", "startSession"]),
    ),
];

/// The spec this repository had before adopting HoneyHive's v1 routes
/// (logEvent alone), and the operations it adopted.
const ADOPT_INTO: &str = "../tests/fixtures/adopt/seed.yaml";
const ADOPT_FROM: &str = "../tests/fixtures/upstream/data-plane-1.9.0.yaml";
const ADOPTED: &[&str] = &[
    "createSession",
    "createEvent",
    "createEventBatch",
    "createSessionEventBatch",
    "updateEvent",
];

fn main() {
    println!("cargo::rerun-if-changed=../src/import.rs");
    println!("cargo::rerun-if-changed=../src/adopt.rs");
    println!("cargo::rerun-if-changed=../../honeyhive-gen/generation.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for (name, fixture, operations) in CASES {
        println!("cargo::rerun-if-changed={fixture}");
        let text = std::fs::read_to_string(fixture).expect("the fixture is in the repository");
        let document = spec::parse(&text).unwrap_or_else(|e| panic!("{fixture}: {e}"));
        let keep: Option<Vec<String>> =
            operations.map(|ops| ops.iter().map(|op| op.to_string()).collect());
        let imported = import::import(document, keep.as_deref()).unwrap_or_else(|problems| {
            panic!("import refused {fixture}: {problems:?}");
        });
        let yaml = spec::render(&imported.spec, false).expect("a JSON value renders as YAML");
        let parsed = generation::parse_spec(&yaml).unwrap_or_else(|e| panic!("{fixture}: {e}"));
        let source = generation::render(&parsed).unwrap_or_else(|e| panic!("{fixture}: {e}"));
        std::fs::write(out.join(format!("{name}.rs")), source).expect("OUT_DIR is writable");
        let yaml_name = if *name == "client" {
            "imported".to_owned()
        } else {
            format!("{name}.yaml")
        };
        let yaml_name = if yaml_name == "imported" {
            "imported.yaml".to_owned()
        } else {
            yaml_name
        };
        std::fs::write(out.join(yaml_name), yaml).expect("OUT_DIR is writable");
    }

    // `cargo xtask adopt`'s own code on the published data-plane spec into
    // the seed spec: the merged spec generates and compiles.
    println!("cargo::rerun-if-changed={ADOPT_INTO}");
    println!("cargo::rerun-if-changed={ADOPT_FROM}");
    let read = |path: &str| {
        let text = std::fs::read_to_string(path).expect("the fixture is in the repository");
        spec::parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let operations: Vec<String> = ADOPTED.iter().map(|op| op.to_string()).collect();
    let adopted = adopt::adopt(read(ADOPT_INTO), read(ADOPT_FROM), &operations, None)
        .unwrap_or_else(|problems| panic!("adopt refused: {problems:?}"));
    let yaml = spec::render(&adopted.spec, false).expect("a JSON value renders as YAML");
    let parsed = generation::parse_spec(&yaml).unwrap_or_else(|e| panic!("adopted: {e}"));
    let source = generation::render(&parsed).unwrap_or_else(|e| panic!("adopted: {e}"));
    std::fs::write(out.join("adopted.rs"), source).expect("OUT_DIR is writable");
    std::fs::write(out.join("adopted.yaml"), yaml).expect("OUT_DIR is writable");
}
