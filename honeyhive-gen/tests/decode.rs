//! The generated types decode what the API answers where the spec says
//! `anyOf` (rendered for typify by `generation.rs`'s `any_of_for_typify`).

use honeyhive_gen::types;
use serde_json::json;

#[test]
fn a_run_s_created_at_a_string_decodes() {
    let run: types::ExperimentRunObject = serde_json::from_value(json!({
        "id": "r", "run_id": "r", "metadata": {}, "results": {}, "event_ids": [],
        "configuration": {}, "is_active": true, "scope_type": "project", "scope_id": "p",
        "created_at": "2026-12-05T04:34:06.924Z",
        "updated_at": "2026-12-05T04:35:00Z",
    }))
    .expect("a run as HoneyHive answers it");
    assert_eq!(run.created_at, "2026-12-05T04:34:06.924Z");
}

#[test]
fn an_any_of_of_different_types_decodes_each_and_encodes_it_back() {
    for bound in [json!("2026-12-05"), json!(1_764_000_000_000u64)] {
        let range = json!({"$gte": bound, "$lte": bound});
        let decoded: types::AbsoluteDateRange =
            serde_json::from_value(range.clone()).expect("a date range");
        assert_eq!(serde_json::to_value(&decoded).unwrap(), range);
    }
    for filters in [json!({"a": 1}), json!([{"a": 1}, {"b": 2}])] {
        let body = json!({"filters": filters, "mapping": {"inputs": [], "ground_truth": [], "history": []}});
        let decoded: types::BatchCreateDatapointsRequest =
            serde_json::from_value(body).expect("filters as an object or an array");
        assert_eq!(serde_json::to_value(&decoded).unwrap()["filters"], filters);
    }
}
