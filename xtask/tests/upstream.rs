//! `cargo xtask import` and `diff` on the specs HoneyHive publishes
//! (`tests/fixtures/upstream/`, see its README). `xtask/import-check`
//! generates and compiles clients from the same imports.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const VERSIONS: [&str; 2] = ["2026-02-09", "2026-02-12"];
const EVENT_OPERATIONS: &str = "createEvent,createEventBatch,startSession";

fn upstream(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upstream")
        .join(format!("{version}.yaml"))
}

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("xtask runs")
}

/// Imports `version` (with `extra` arguments): the spec written and stderr.
fn import(version: &str, extra: &[&str]) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let spec = upstream(version);
    let mut args = vec![
        "import",
        spec.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--verbose",
    ];
    args.extend(extra);
    let output = xtask(&args);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{version} {extra:?}: {stderr}");
    let spec = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    (spec, stderr)
}

fn has_null_type(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            map.get("type").is_some_and(|t| {
                t == "null" || t.as_array().is_some_and(|a| a.contains(&"null".into()))
            }) || map.values().any(has_null_type)
        }
        Value::Array(items) => items.iter().any(has_null_type),
        _ => false,
    }
}

#[test]
fn each_published_version_imports_whole_with_null_only_types_converted() {
    for version in VERSIONS {
        let (spec, stderr) = import(version, &[]);
        assert_eq!(spec["openapi"], "3.0.3");
        assert!(!has_null_type(&spec), "{version}: a null type is left");
        let pointer = "/components/schemas/UpdateConfigurationResponse/properties/upsertedId";
        assert_eq!(
            spec.pointer(pointer).unwrap(),
            &serde_json::json!({"nullable": true, "enum": [null]}),
            "{version}"
        );
        assert!(
            stderr.contains(&format!(
                "rewrote {pointer}/type: type: null -> nullable: true, enum: [null]"
            )),
            "{version}: {stderr}"
        );
        let operations = spec["paths"].as_object().unwrap().len();
        assert!(operations > 20, "{version}: {operations} paths");
    }
}

#[test]
fn each_published_version_imports_cut_to_the_event_operations() {
    for version in VERSIONS {
        let (spec, _) = import(version, &["--operations", EVENT_OPERATIONS]);
        let mut ids: Vec<&str> = spec["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter_map(|op| op["operationId"].as_str())
            .collect();
        ids.sort();
        assert_eq!(
            ids,
            ["createEvent", "createEventBatch", "startSession"],
            "{version}"
        );
        // Only the schemas those reach: the configuration ones are gone.
        let schemas = spec["components"]["schemas"].as_object().unwrap();
        assert!(
            !schemas.contains_key("UpdateConfigurationResponse"),
            "{version}"
        );
    }
}

#[test]
fn the_published_versions_differ_by_exactly_the_four_tools_operations_and_their_schemas() {
    let (old, new) = (upstream(VERSIONS[0]), upstream(VERSIONS[1]));
    let diff = |a: &Path, b: &Path| {
        let output = xtask(&[
            "diff",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--format",
            "json",
        ]);
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        (report, output.status.code())
    };
    let (report, code) = diff(&old, &new);
    assert_eq!(code, Some(1), "{report:#}");
    let mut changes: Vec<(String, String, String, String)> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let field = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            (
                field("severity"),
                field("location"),
                field("operation_id"),
                field("message"),
            )
        })
        .collect();
    changes.sort();
    let removed = |location: &str, id: &str| {
        (
            "breaking".into(),
            location.into(),
            id.into(),
            "operation removed".into(),
        )
    };
    let schema_gone = |name: &str| {
        (
            "breaking".into(),
            format!("components/schemas/{name}"),
            String::new(),
            format!("schema removed: the generated type {name} is gone"),
        )
    };
    let mut expected = vec![
        removed("DELETE /v1/tools", "deleteTool"),
        removed("GET /v1/tools", "getTools"),
        removed("POST /v1/tools", "createTool"),
        removed("PUT /v1/tools", "updateTool"),
    ];
    // The schemas only those used, each a generated type.
    for name in [
        "CreateToolRequest",
        "CreateToolResponse",
        "DeleteToolQuery",
        "DeleteToolResponse",
        "GetToolsResponse",
        "ToolItem",
        "UpdateToolRequest",
        "UpdateToolResponse",
    ] {
        expected.push(schema_gone(name));
    }
    expected.sort();
    assert_eq!(changes, expected);

    // The text output names the generated method too.
    let text = xtask(&["diff", old.to_str().unwrap(), new.to_str().unwrap()]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("DELETE /v1/tools (deleteTool): operation removed"),
        "{text}"
    );

    // The other way round, the tools come back: compatible.
    let (report, code) = diff(&new, &old);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["breaking"], 0);
    assert_eq!(report["changes"].as_array().unwrap().len(), 4 + 8);
}
