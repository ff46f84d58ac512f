//! What this crate compiles matches what is committed: the spec its package
//! carries is the workspace's `openapi.yaml` byte for byte (the build script
//! also refuses to build while they differ), and the reviewable rendering in
//! `generated/client.rs` is the code the build generates.

#[test]
fn packaged_spec_is_the_root_spec() {
    let packaged = include_str!("../openapi.yaml");
    let root = include_str!("../../openapi.yaml");
    assert!(
        packaged == root,
        "honeyhive-gen/openapi.yaml differs from openapi.yaml: run `cargo xtask regen`"
    );
}

#[test]
fn the_embedded_json_is_the_spec() {
    let yaml: serde_json::Value = serde_yaml_ng::from_str(include_str!("../openapi.yaml")).unwrap();
    let json: serde_json::Value = serde_json::from_str(honeyhive_gen::OPENAPI_JSON).unwrap();
    assert_eq!(yaml, json);
}

#[test]
fn the_committed_rendering_is_what_the_build_compiles() {
    let compiled = include_str!(concat!(env!("OUT_DIR"), "/client.rs"));
    let committed = include_str!("../generated/client.rs");
    assert!(
        compiled == committed,
        "honeyhive-gen/generated/client.rs is stale: run `cargo xtask regen` and commit the result"
    );
}
