//! `cargo xtask adopt`: HoneyHive's v1 ingestion operations taken from its
//! published data-plane spec (a fixture copy) into this repository's spec,
//! what `diff` then says, and the rules for components that clash.
//! (xtask/import-check generates and compiles a client from the adoption.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

const V1: &str = "createSession,createEvent,createEventBatch,createSessionEventBatch,updateEvent";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn data_plane() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upstream/data-plane-1.9.0.yaml")
}

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("xtask runs")
}

fn read(path: &Path) -> Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The repository's spec as it was before the v1 operations: logEvent
/// alone (the operations adopted since are taken out again).
fn seed_spec(dir: &Path) -> PathBuf {
    let mut spec = read(&root().join("openapi.yaml"));
    let paths = spec["paths"].as_object_mut().unwrap();
    paths.retain(|path, _| path == "/session/{session_id}/event");
    let schemas = spec["components"]["schemas"].as_object_mut().unwrap();
    schemas.retain(|name, _| name == "Event" || name == "LogEventResponse");
    spec["tags"]
        .as_array_mut()
        .unwrap()
        .retain(|t| t["name"] == "Logging");
    let path = dir.join("seed.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&spec).unwrap()).unwrap();
    path
}

/// Adopts `operations` of `newer` into `base`, written to `out`: the exit
/// code, stdout and stderr.
fn adopt(base: &Path, newer: &Path, operations: &str, out: &Path) -> (Option<i32>, String, String) {
    let output = xtask(&[
        "adopt",
        newer.to_str().unwrap(),
        "--operations",
        operations,
        "--into",
        base.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn the_five_v1_operations_come_with_what_they_reach_and_log_event_stays_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed_spec(dir.path());
    let out = dir.path().join("adopted.yaml");
    let (code, stdout, stderr) = adopt(&seed, &data_plane(), V1, &out);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let (before, after) = (read(&seed), read(&out));

    assert_eq!(
        before["paths"]["/session/{session_id}/event"],
        after["paths"]["/session/{session_id}/event"],
        "logEvent unchanged"
    );
    for name in ["Event", "LogEventResponse"] {
        assert_eq!(
            before["components"]["schemas"][name],
            after["components"]["schemas"][name]
        );
    }
    let mut ids: Vec<String> = after["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|op| op["operationId"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "createEvent",
            "createEventBatch",
            "createSession",
            "createSessionEventBatch",
            "logEvent",
            "updateEvent"
        ]
    );
    let mut schemas: Vec<&String> = after["components"]["schemas"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    schemas.sort();
    assert_eq!(
        schemas,
        [
            "Event",
            "LogEventResponse",
            "PostEventBatchRequest",
            "PostEventBatchResponse",
            "PostEventRequest",
            "PostEventResponse",
            "PostSessionStartResponse",
            "SessionEventBatchRequest",
            "SessionProperties",
            "SessionTracesResponse",
            "StartSessionRequest",
            "UpdateEventRequest"
        ]
    );
    // Names, types, required, enum, format, additionalProperties as
    // published (3.1's `type: [string, "null"]` read the 3.0 way).
    let request = &after["components"]["schemas"]["PostEventRequest"];
    assert_eq!(request["required"], json!(["event_type", "inputs"]));
    assert_eq!(request["additionalProperties"], false);
    assert_eq!(
        request["properties"]["event_type"]["enum"],
        json!(["model", "tool", "chain", "session"])
    );
    assert_eq!(request["properties"]["error"]["type"], "string");
    assert_eq!(request["properties"]["error"]["nullable"], true);
    let update = &after["paths"]["/v1/events/{event_id}"]["put"];
    assert_eq!(update["parameters"][0]["schema"]["format"], "uuid");
    let tags: Vec<&str> = after["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["Logging", "Events", "Sessions"]);
    // The report: what came, what was shared, what the code then needs.
    assert!(
        stdout.contains("adopted createEventBatch: POST /v1/events/batch"),
        "{stdout}"
    );
    assert!(
        stdout.contains("shared securitySchemes/BearerAuth"),
        "{stdout}"
    );
    assert!(stdout.contains("the generated code needs uuid"), "{stdout}");
    assert!(stdout.contains("kept this spec's servers"), "{stdout}");
    // The conversion's report: a line per kind, not one per removed item.
    assert!(stderr.lines().count() < 10, "{stderr}");
    assert!(
        stderr.contains("removed operation (not in --operations)"),
        "{stderr}"
    );

    // diff: every addition compatible, each operation named.
    let output = xtask(&[
        "diff",
        seed.to_str().unwrap(),
        out.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["breaking"], 0, "{report:#}");
    let added: Vec<&str> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["message"] == "operation added")
        .map(|c| c["operation_id"].as_str().unwrap())
        .collect();
    assert_eq!(added.len(), 5, "{report:#}");
    for id in ids.iter().filter(|id| *id != "logEvent") {
        assert!(added.contains(&id.as_str()), "{id}: {report:#}");
    }

    // Adopting again changes nothing.
    let again = dir.path().join("again.yaml");
    let (code, stdout, _) = adopt(&out, &data_plane(), V1, &again);
    assert_eq!(code, Some(0));
    assert_eq!(read(&again), after);
    assert!(
        stdout.contains("kept createEvent: POST /v1/events is here already"),
        "{stdout}"
    );
}

/// A 3.1 spec with one operation, `postThing`, whose body is `Event` of
/// another shape than ours, and whose answer `LogEventResponse` is ours.
fn clashing(dir: &Path, path: &str) -> PathBuf {
    let spec = json!({
        "openapi": "3.1.0",
        "info": {"title": "newer", "version": "2.3.0"},
        "paths": {path: {"post": {
            "operationId": "postThing",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Event"}}}},
            "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LogEventResponse"}}}}}
        }}},
        "components": {"schemas": {
            "Event": {"type": "object", "required": ["kind"], "properties": {"kind": {"type": "string"}}},
            "LogEventResponse": {
                "type": "object",
                "description": "Worded otherwise, the same shape.",
                "required": ["event_id", "success"],
                "properties": {"event_id": {"type": "string"}, "success": {"type": "boolean"}}
            }
        }}
    });
    let file = dir.join("newer.yaml");
    std::fs::write(&file, serde_yaml_ng::to_string(&spec).unwrap()).unwrap();
    file
}

#[test]
fn a_component_of_another_shape_is_renamed_everywhere_and_one_of_the_same_shape_is_shared() {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed_spec(dir.path());
    let newer = clashing(dir.path(), "/things");
    let out = dir.path().join("out.yaml");
    let (code, stdout, stderr) = adopt(&seed, &newer, "postThing", &out);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let after = read(&out);
    let schemas = &after["components"]["schemas"];
    assert_eq!(
        schemas["Event"],
        read(&seed)["components"]["schemas"]["Event"],
        "ours kept"
    );
    assert_eq!(schemas["EventV2"]["required"], json!(["kind"]));
    assert!(
        schemas.get("LogEventResponseV2").is_none(),
        "shared, not copied"
    );
    let operation = &after["paths"]["/things"]["post"];
    assert_eq!(
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/EventV2"
    );
    assert_eq!(
        operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/LogEventResponse"
    );
    assert!(
        stdout.contains("renamed schemas/Event -> schemas/EventV2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("shared schemas/LogEventResponse"),
        "{stdout}"
    );
    // A suffix of one's own.
    let (code, _, _) = {
        let output = xtask(&[
            "adopt",
            newer.to_str().unwrap(),
            "--operations",
            "postThing",
            "--into",
            seed.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--rename-suffix",
            "Thing",
        ]);
        (output.status.code(), (), ())
    };
    assert_eq!(code, Some(0));
    assert!(
        read(&out)["components"]["schemas"]
            .get("EventThing")
            .is_some()
    );
}

#[test]
fn another_operation_where_one_is_already_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed_spec(dir.path());
    // postThing at logEvent's place.
    let newer = clashing(dir.path(), "/session/{session_id}/event");
    let out = dir.path().join("out.yaml");
    let (code, _, stderr) = adopt(&seed, &newer, "postThing", &out);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("is here already, as logEvent"), "{stderr}");
    assert!(!out.exists());
    // An operationId that is not in the newer spec.
    let (code, _, stderr) = adopt(&seed, &data_plane(), "logEvent", &out);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--operations names logEvent"), "{stderr}");
}

#[test]
fn diff_says_when_a_schema_changed_shape_under_the_same_name() {
    // The whole published spec, imported, in place of ours: its Event is
    // another shape, which no remaining operation uses.
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.yaml");
    let output = xtask(&[
        "import",
        data_plane().to_str().unwrap(),
        "--out",
        whole.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    let seed = seed_spec(dir.path());
    let output = xtask(&["diff", seed.to_str().unwrap(), whole.to_str().unwrap()]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("(logEvent): operation removed"), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("components/schemas/Event:"))
        .unwrap_or_else(|| panic!("no line for Event: {text}"));
    assert!(line.contains("changed shape under the same name"), "{line}");
    assert!(line.contains("properties gone: children"), "{line}");
}
