//! `cargo xtask import`: each rewrite on the 3.1 fixture, the refusals with
//! their JSON pointers, and `--operations`. (xtask/import-check generates and
//! compiles a client from the same fixture's output.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

fn import(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("import")
        .args(args)
        .output()
        .expect("xtask runs")
}

fn imported(extra: &[&str]) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    // Every rewrite listed, each with its pointer.
    let mut args = vec![
        fixture("openapi-3.1.yaml").to_str().unwrap().to_owned(),
        "--out".into(),
        out.to_str().unwrap().into(),
        "--verbose".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = import(&args);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    (
        serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap(),
        stderr,
    )
}

#[test]
fn every_31_construct_is_rewritten_and_listed() {
    let (spec, stderr) = imported(&[]);
    let widget = |p: &str| {
        spec.pointer(&format!("/components/schemas/Widget/properties/{p}"))
            .cloned()
            .unwrap()
    };
    let expectations: [(&str, Value, &str); 13] = [
        ("/openapi", "3.0.3".into(), "/openapi: 3.1.0 -> 3.0.3"),
        (
            "name",
            serde_json::json!({"type": "string", "nullable": true}),
            "name/type: type array -> type + nullable",
        ),
        (
            "kind",
            serde_json::json!({"enum": ["gadget"]}),
            "kind/const: const -> enum",
        ),
        (
            "id",
            serde_json::json!({"type": "string", "example": "w-1"}),
            "id/examples: examples -> example",
        ),
        (
            "weight",
            serde_json::json!({"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 1000, "exclusiveMaximum": true}),
            "weight/exclusiveMaximum: numeric -> maximum",
        ),
        (
            "owner",
            serde_json::json!({"nullable": true, "allOf": [{"$ref": "#/components/schemas/Owner"}]}),
            "owner/anyOf: null branch -> nullable",
        ),
        (
            "note",
            serde_json::json!({"nullable": true, "type": "string", "maxLength": 200}),
            "note/oneOf: null branch -> nullable; merged",
        ),
        (
            "stamp",
            serde_json::json!({"nullable": true, "type": "string", "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string"}]}),
            "stamp/anyOf: null branch -> nullable beside the branches' one type",
        ),
        (
            "reading",
            serde_json::json!({"oneOf": [{"type": "number", "nullable": true}, {"type": "string"}]}),
            "reading/oneOf: null branch -> nullable on the first typed branch",
        ),
        (
            "parent",
            serde_json::json!({"description": "who made it", "allOf": [{"$ref": "#/components/schemas/Owner"}]}),
            "parent: $ref with sibling keywords",
        ),
        (
            "size",
            serde_json::json!({"anyOf": [{"type": "integer"}, {"type": "string"}]}),
            "size/type: type array of several types -> anyOf",
        ),
        (
            "picture",
            serde_json::json!({"type": "string"}),
            "picture/contentMediaType: removed",
        ),
        (
            "/paths/~1widgets~1{widget_id}/get/operationId",
            "getWidgetsWidgetId".into(),
            "operationId: missing; named getWidgetsWidgetId",
        ),
    ];
    for (place, expected, listed) in expectations {
        let got = if place.starts_with('/') {
            spec.pointer(place).cloned().unwrap()
        } else {
            widget(place)
        };
        assert_eq!(got, expected, "{place}");
        assert!(
            stderr.contains(listed),
            "{listed:?} is listed on stderr:\n{stderr}"
        );
    }
    for gone in [
        "/webhooks",
        "/jsonSchemaDialect",
        "/info/summary",
        "/info/license/identifier",
        "/components/schemas/Widget/$schema",
    ] {
        assert!(spec.pointer(gone).is_none(), "{gone} removed");
        assert!(stderr.contains(gone), "{gone} listed");
    }
    // One body per kind of answer, one media type per body.
    let get = spec
        .pointer("/paths/~1widgets~1{widget_id}/get/responses")
        .unwrap();
    let codes: Vec<&String> = get.as_object().unwrap().keys().collect();
    assert_eq!(
        codes,
        ["200", "404"],
        "the 203 and 500 with other bodies are removed"
    );
    assert!(get.pointer("/200/content/application~1xml").is_none());
    assert!(stderr.contains("responses/203: removed"), "{stderr}");
    assert!(
        stderr.contains("kept application/json; removed application/xml"),
        "{stderr}"
    );
}

#[test]
fn what_has_no_30_form_is_refused_naming_each_place() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.yaml");
    let output = import(&[
        fixture("unconvertible-3.1.yaml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    for pointer in [
        "/components/schemas/Pair/prefixItems",
        "/components/schemas/Conditional/if",
        "/components/schemas/Conditional/then",
    ] {
        assert!(
            stderr.contains(&format!("cannot convert {pointer}:")),
            "{pointer}:\n{stderr}"
        );
    }
    // `type: null` alone has a 3.0 form (nullable, enum: [null]).
    assert!(
        !stderr.contains("cannot convert /components/schemas/Nothing"),
        "{stderr}"
    );
    assert!(
        !out.exists(),
        "nothing is written when anything cannot be converted"
    );
}

#[test]
fn operations_keeps_the_named_ones_and_the_schemas_they_use() {
    let (spec, stderr) = imported(&["--operations", "createWidget"]);
    let paths: Vec<&String> = spec["paths"].as_object().unwrap().keys().collect();
    assert_eq!(paths, ["/widgets"]);
    let schemas: Vec<&String> = spec["components"]["schemas"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        schemas,
        ["NewWidget", "Owner", "Widget"],
        "Widget refers to Owner"
    );
    assert!(
        stderr.contains("removed operation deleteEverything"),
        "{stderr}"
    );

    let output = import(&[
        fixture("openapi-3.1.yaml").to_str().unwrap(),
        "--operations",
        "nope",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--operations names nope"));
}

#[test]
fn a_30_document_passes_through_unchanged() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let output = import(&[root.join("openapi.yaml").to_str().unwrap()]);
    assert!(output.status.success());
    assert!(
        output.stderr.is_empty(),
        "no rewrites: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let before: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(root.join("openapi.yaml")).unwrap())
            .unwrap();
    let after: Value =
        serde_yaml_ng::from_str(std::str::from_utf8(&output.stdout).unwrap()).unwrap();
    assert_eq!(before, after);
}

#[test]
fn the_report_is_one_line_per_kind_with_a_count_unless_verbose() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let output = import(&[
        fixture("openapi-3.1.yaml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines[0], "rewrites, by kind (--verbose lists each):",
        "{stderr}"
    );
    // "    4  removed (annotation 3.0 lacks)": a count, then the kind, once.
    let kinds: Vec<&str> = lines[1..lines.len() - 1]
        .iter()
        .map(|l| l.trim_start().split_once("  ").expect("count  kind").1)
        .collect();
    let mut distinct = kinds.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), kinds.len(), "one line per kind: {stderr}");
    assert!(kinds.contains(&"openapi 3.1 -> 3.0.3"), "{stderr}");
    assert!(!stderr.contains("/components/"), "no pointers: {stderr}");
    assert!(lines.last().unwrap().starts_with("wrote "), "{stderr}");
}
