//! What this crate compiles matches the spec: the spec its package carries is
//! the workspace's `openapi.yaml` byte for byte, and the JSON it embeds is
//! that spec. (That `generated/client.rs` is progenitor's rendering of it is
//! `cargo xtask check`'s job, which CI runs: rendering needs progenitor, which
//! this crate does not depend on.)

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
