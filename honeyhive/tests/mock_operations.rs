//! Every operation of the spec, sent to `MockHoneyHive` once in an order
//! that makes each find what it needs: each is answered 2xx, and each
//! answer holds to the spec's response schema for its status.

mod support;

use std::collections::{BTreeSet, HashMap};

use honeyhive::testing::MockHoneyHive;
use honeyhive::validate;
use serde_json::{Value, json};
use support::bare_client;

const RUN: &str = "6f1c9a52-8d4e-4c3a-9f6b-0e5d2a7b1c11";
const RUN2: &str = "7a2d0b63-9e5f-4d4b-8a7c-1f6e3b8c2d22";
const S1: &str = "8b3e1c74-af60-4e5c-9b8d-2a7f4c9d3e33";
const S2: &str = "9c4f2d85-b071-4f6d-8c9e-3b8a5dae4f44";
const E1: &str = "ad5a3e96-c182-4a7e-9daf-4c9b6ebf5a55";

/// One request: the operation it is for, method, path and body, with
/// `{name}` replaced by what an earlier answer gave; and, when its answer
/// gives an id later steps need, the name to keep it under and where it
/// is in the answer.
type Step = (
    &'static str,
    &'static str,
    &'static str,
    Value,
    Option<(&'static str, &'static str)>,
);

fn steps() -> Vec<Step> {
    let none = Value::Null;
    vec![
        (
            "createDataset",
            "POST",
            "/v1/datasets",
            json!({"name": "d"}),
            Some(("dataset", "/result/insertedId")),
        ),
        (
            "createDataset",
            "POST",
            "/v1/datasets",
            json!({"name": "other"}),
            Some(("dataset2", "/result/insertedId")),
        ),
        (
            "getDatasets",
            "GET",
            "/v1/datasets?name=d",
            none.clone(),
            None,
        ),
        (
            "updateDataset",
            "PUT",
            "/v1/datasets/{dataset}",
            json!({"name": "d2"}),
            None,
        ),
        (
            "updateDatasetLegacy",
            "PUT",
            "/v1/datasets",
            json!({"dataset_id": "{dataset}", "name": "d3"}),
            None,
        ),
        (
            "createDatapoint",
            "POST",
            "/v1/datapoints",
            json!({"inputs": {"q": 1}, "linked_datasets": ["{dataset}"]}),
            Some(("datapoint", "/result/insertedIds/0")),
        ),
        (
            "addDatapoints",
            "POST",
            "/v1/datasets/{dataset}/datapoints",
            json!({"data": [{"q": 2, "a": 3}], "mapping": {"inputs": ["q"], "ground_truth": ["a"]}}),
            Some(("datapoint2", "/datapoint_ids/0")),
        ),
        (
            "getDatapoints",
            "GET",
            "/v1/datapoints?dataset_name=d3",
            none.clone(),
            None,
        ),
        (
            "getDatapoint",
            "GET",
            "/v1/datapoints/{datapoint}",
            none.clone(),
            None,
        ),
        (
            "updateDatapoint",
            "PUT",
            "/v1/datapoints/{datapoint}",
            json!({"metadata": {"k": 1}}),
            None,
        ),
        (
            "createRun",
            "POST",
            "/v1/runs",
            json!({"run_id": RUN, "name": "r", "dataset_id": "{dataset}", "passing_ranges": {"score": {"min": 0.6}}}),
            None,
        ),
        (
            "createRun",
            "POST",
            "/v1/runs",
            json!({"run_id": RUN2, "name": "r2"}),
            None,
        ),
        (
            "createSession",
            "POST",
            "/v1/sessions",
            json!({"session_id": S1, "session_name": "eval", "metadata": {"run_id": RUN, "datapoint_id": "{datapoint}"}}),
            None,
        ),
        (
            "createEvent",
            "POST",
            "/v1/events",
            json!({"event_id": E1, "event_type": "model", "event_name": "llm", "inputs": {}, "session_id": S1,
                   "metrics": {"score": 0.8}}),
            None,
        ),
        (
            "createEventBatch",
            "POST",
            "/v1/events/batch",
            json!({"events": [
                {"event_type": "session", "event_id": S2, "session_id": S2, "event_name": "eval", "inputs": {},
                 "metadata": {"run_id": RUN2, "datapoint_id": "{datapoint}"}, "metrics": {"score": 0.5}},
                {"event_type": "model", "event_name": "llm", "inputs": {}, "session_id": S2, "metrics": {"score": 0.4}},
            ]}),
            None,
        ),
        (
            "createSessionEventBatch",
            "POST",
            "/v1/sessions/{S1}/events/batch",
            json!({"events": [{"event_type": "tool", "inputs": {}}]}),
            None,
        ),
        (
            "logEvent",
            "POST",
            "/session/{S1}/event",
            json!({"event_type": "tool", "event_name": "t"}),
            None,
        ),
        (
            "createEventLegacy",
            "POST",
            "/events",
            json!({"event": {"event_type": "tool", "inputs": {}, "session_id": S1}}),
            None,
        ),
        (
            "createEventBatchLegacy",
            "POST",
            "/events/batch",
            json!({"events": [{"event_type": "tool", "inputs": {}}], "single_session": true}),
            None,
        ),
        (
            "createModelEventLegacy",
            "POST",
            "/events/model",
            json!({"model_event": {"inputs": {}}}),
            None,
        ),
        (
            "createModelEventBatchLegacy",
            "POST",
            "/events/model/batch",
            json!({"model_events": [{"inputs": {}}]}),
            None,
        ),
        (
            "startSessionLegacy",
            "POST",
            "/session/start",
            json!({"session": {"session_name": "old"}}),
            None,
        ),
        (
            "addSessionTracesLegacy",
            "POST",
            "/session/{S1}/traces",
            json!({"events": [{"event_type": "tool", "inputs": {}}]}),
            None,
        ),
        (
            "updateEvent",
            "PUT",
            "/v1/events/{E1}",
            json!({"metrics": {"score": 0.9}}),
            None,
        ),
        (
            "updateEventLegacy",
            "PUT",
            "/events",
            json!({"event_id": E1, "feedback": {"ok": true}}),
            None,
        ),
        ("getEvent", "GET", "/v1/events/{E1}", none.clone(), None),
        (
            "searchEvents",
            "POST",
            "/v1/events/search",
            json!({"filters": [{"field": "session_id", "operator": "is", "value": S1}], "limit": 2}),
            None,
        ),
        (
            "exportEventsLegacy",
            "POST",
            "/v1/events/export",
            json!({"filters": [{"field": "event_type", "operator": "is", "value": "tool", "type": "string"}], "limit": 5}),
            None,
        ),
        (
            "getEventsSchemaLegacy",
            "GET",
            "/v1/events/schema?evaluation_id={RUN}",
            none.clone(),
            None,
        ),
        (
            "batchCreateDatapoints",
            "POST",
            "/v1/datapoints/batch",
            json!({"dataset_id": "{dataset}", "events": [E1]}),
            None,
        ),
        (
            "getRuns",
            "GET",
            "/v1/runs?limit=10&sort_order=asc",
            none.clone(),
            None,
        ),
        ("getRun", "GET", "/v1/runs/{RUN}", none.clone(), None),
        (
            "updateRun",
            "PUT",
            "/v1/runs/{RUN}",
            json!({"status": "completed"}),
            None,
        ),
        (
            "getExperimentSummary",
            "GET",
            "/v1/runs/{RUN}/summary?aggregate_function=median",
            none.clone(),
            None,
        ),
        (
            "getExperimentResultLegacy",
            "GET",
            "/v1/runs/{RUN}/result",
            none.clone(),
            None,
        ),
        (
            "getExperimentComparison",
            "GET",
            "/v1/runs/{RUN2}/compare/{RUN}",
            none.clone(),
            None,
        ),
        (
            "getExperimentComparisonLegacy",
            "GET",
            "/v1/runs/{RUN2}/compare-with/{RUN}?aggregate_function=sum",
            none.clone(),
            None,
        ),
        (
            "getExperimentCompareEvents",
            "GET",
            "/v1/runs/{RUN2}/compare/{RUN}/events?event_type=model&limit=5",
            none.clone(),
            None,
        ),
        (
            "getExperimentCompareEventsLegacy",
            "GET",
            "/v1/runs/compare/events?run_id_1={RUN2}&run_id_2={RUN}",
            none.clone(),
            None,
        ),
        (
            "getExperimentRunMetrics",
            "GET",
            "/v1/runs/{RUN}/metrics",
            none.clone(),
            None,
        ),
        (
            "getRunSchema",
            "GET",
            "/v1/runs/{RUN}/schema",
            none.clone(),
            None,
        ),
        (
            "getRunsSchema",
            "GET",
            "/v1/runs/schema",
            none.clone(),
            None,
        ),
        (
            "createMetric",
            "POST",
            "/v1/metrics",
            json!({"name": "score", "type": "PYTHON", "criteria": "x"}),
            Some(("metric", "/metric_id")),
        ),
        (
            "createMetric",
            "POST",
            "/v1/metrics",
            json!({"name": "other", "type": "LLM", "criteria": "y"}),
            Some(("metric2", "/metric_id")),
        ),
        (
            "getMetrics",
            "GET",
            "/v1/metrics?type=PYTHON",
            none.clone(),
            None,
        ),
        (
            "updateMetric",
            "PUT",
            "/v1/metrics/{metric}",
            json!({"description": "d"}),
            None,
        ),
        (
            "updateMetricLegacy",
            "PUT",
            "/v1/metrics",
            json!({"id": "{metric}", "enabled_in_prod": true}),
            None,
        ),
        (
            "createMetricVersion",
            "POST",
            "/v1/metrics/{metric}/versions",
            json!({"message": "m", "content": {"name": "score", "type": "PYTHON", "criteria": "z"}}),
            None,
        ),
        (
            "getMetricVersions",
            "GET",
            "/v1/metrics/{metric}/versions",
            none.clone(),
            None,
        ),
        (
            "deployMetricVersion",
            "POST",
            "/v1/metrics/{metric}/versions/v1/deploy",
            none.clone(),
            None,
        ),
        (
            "runMetric",
            "POST",
            "/v1/metrics/run",
            json!({"metric": {"name": "score", "type": "PYTHON", "criteria": "x"}, "event": {}}),
            None,
        ),
        (
            "runMetricLegacy",
            "POST",
            "/v1/metrics/run_metric",
            json!({"metric": {"name": "score", "type": "PYTHON", "criteria": "x"}, "event": {}}),
            None,
        ),
        (
            "createConfiguration",
            "POST",
            "/v1/configurations",
            json!({"name": "c", "provider": "openai", "parameters": {"call_type": "chat", "model": "m"}, "env": ["dev"]}),
            Some(("config", "/insertedId")),
        ),
        (
            "getConfigurations",
            "GET",
            "/v1/configurations?env=dev",
            none.clone(),
            None,
        ),
        (
            "updateConfiguration",
            "PUT",
            "/v1/configurations/{config}",
            json!({"name": "c2"}),
            None,
        ),
        (
            "createQueue",
            "POST",
            "/v1/queues",
            json!({"name": "q"}),
            Some(("queue", "/queue/id")),
        ),
        (
            "getQueues",
            "GET",
            "/v1/queues?enabled=true",
            none.clone(),
            None,
        ),
        ("getQueue", "GET", "/v1/queues/{queue}", none.clone(), None),
        (
            "updateQueue",
            "PUT",
            "/v1/queues/{queue}",
            json!({"id": "{queue}", "add_event_ids": [E1]}),
            None,
        ),
        (
            "createChart",
            "POST",
            "/v1/charts",
            json!({"name": "ch", "metric": "score"}),
            Some(("chart", "/data/id")),
        ),
        ("getCharts", "GET", "/v1/charts", none.clone(), None),
        ("getChart", "GET", "/v1/charts/{chart}", none.clone(), None),
        (
            "updateChart",
            "PUT",
            "/v1/charts/{chart}",
            json!({"name": "ch2"}),
            None,
        ),
        (
            "deleteChart",
            "DELETE",
            "/v1/charts/{chart}",
            none.clone(),
            None,
        ),
        (
            "deleteQueue",
            "DELETE",
            "/v1/queues/{queue}",
            none.clone(),
            None,
        ),
        (
            "deleteConfiguration",
            "DELETE",
            "/v1/configurations/{config}",
            none.clone(),
            None,
        ),
        (
            "deleteMetric",
            "DELETE",
            "/v1/metrics/{metric}",
            none.clone(),
            None,
        ),
        (
            "deleteMetricLegacy",
            "DELETE",
            "/v1/metrics?metric_id={metric2}",
            none.clone(),
            None,
        ),
        (
            "removeDatapoint",
            "DELETE",
            "/v1/datasets/{dataset}/datapoints/{datapoint2}",
            none.clone(),
            None,
        ),
        (
            "removeDatapointLegacy",
            "DELETE",
            "/v1/datasets/{dataset}/{datapoint}",
            none.clone(),
            None,
        ),
        (
            "deleteDatapoint",
            "DELETE",
            "/v1/datapoints/{datapoint}",
            none.clone(),
            None,
        ),
        ("deleteRun", "DELETE", "/v1/runs/{RUN2}", none.clone(), None),
        (
            "deleteDataset",
            "DELETE",
            "/v1/datasets/{dataset}",
            none.clone(),
            None,
        ),
        (
            "deleteDatasetLegacy",
            "DELETE",
            "/v1/datasets?dataset_id={dataset2}",
            none,
            None,
        ),
    ]
}

/// `text` with each `{name}` replaced by its value.
fn fill(text: &str, ids: &HashMap<&str, String>) -> String {
    ids.iter().fold(text.to_owned(), |text, (name, id)| {
        text.replace(&format!("{{{name}}}"), id)
    })
}

/// The ids every run of the steps starts with.
fn start_ids() -> HashMap<&'static str, String> {
    [("RUN", RUN), ("RUN2", RUN2), ("S1", S1), ("E1", E1)]
        .into_iter()
        .map(|(name, id)| (name, id.to_owned()))
        .collect()
}

/// Sends one step; keeps the id its answer gives when the step says so.
/// The status and the body as text.
async fn send(
    http: &reqwest::Client,
    mock: &MockHoneyHive,
    (operation, method, path, body, keep): &Step,
    ids: &mut HashMap<&'static str, String>,
) -> (u16, String) {
    let url = format!("{}{}", mock.base_url(), fill(path, ids));
    let mut request = http
        .request(method.parse().unwrap(), &url)
        .bearer_auth(MockHoneyHive::API_KEY);
    if !body.is_null() {
        let body: Value = serde_json::from_str(&fill(&body.to_string(), ids)).unwrap();
        request = request.json(&body);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap();
    assert!(
        (200..300).contains(&status),
        "{operation} {url}: {status} {text}"
    );
    if let Some((name, pointer)) = keep {
        let json: Value = serde_json::from_str(&text).unwrap();
        let id = json.pointer(pointer).and_then(Value::as_str);
        let id = id.unwrap_or_else(|| panic!("{operation}: no {pointer} in {json}"));
        ids.insert(name, id.to_owned());
    }
    (status, text)
}

#[tokio::test]
async fn every_operation_is_answered_as_the_spec_says() {
    let mock = MockHoneyHive::start_async().await;
    let http = bare_client();
    let mut ids = start_ids();
    let mut answered = BTreeSet::new();
    for step in steps() {
        let operation = step.0;
        let (status, text) = send(&http, &mock, &step, &mut ids).await;
        if text.is_empty() {
            assert!(
                operation.starts_with("updateEvent"),
                "{operation} answered no body"
            );
        } else {
            let json: Value = serde_json::from_str(&text).unwrap();
            if let Err(problems) = validate::response_body(
                operation,
                honeyhive::StatusCode::from_u16(status).unwrap(),
                &json,
            ) {
                panic!("{operation}: {problems:?}\n{json:#}");
            }
        }
        answered.insert(operation);
    }
    assert!(mock.violations().is_empty(), "{:#?}", mock.violations());

    // Every operation of the spec was among them.
    let spec: Value =
        serde_json::from_str(include_str!("../../honeyhive-gen/generated/openapi.json")).unwrap();
    let all: BTreeSet<&str> = spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    let missed: Vec<_> = all.difference(&answered).collect();
    assert!(missed.is_empty(), "not sent: {missed:?}");
    assert_eq!(all.len(), 71);
}

#[tokio::test]
async fn the_steps_leave_state_that_later_reads_find() {
    let mock = MockHoneyHive::start_async().await;
    let http = bare_client();
    let mut ids = start_ids();
    let get = |path: String| {
        let mock = &mock;
        async move { support::call_mock(mock, reqwest::Method::GET, &path, None).await }
    };
    for step in steps() {
        match step.0 {
            "getExperimentSummary" => {
                // RUN's one session (S1): its model event's score, updated
                // to 0.9, is inside the run's passing range (min 0.6).
                let (_, summary) =
                    get(format!("/v1/runs/{RUN}/summary?aggregate_function=max")).await;
                assert_eq!(summary["passed"], json!([ids["datapoint"]]), "{summary:#}");
                assert_eq!(summary["failed"], json!([]));
                let score = &summary["metrics"]["details"][0];
                assert_eq!(
                    (score["metric_name"].as_str(), score["aggregate"].as_f64()),
                    (Some("score"), Some(0.9))
                );
                // RUN2 has no passing range: a number never fails it. Its
                // score was measured on the session and on a model event.
                let (_, summary) = get(format!("/v1/runs/{RUN2}/summary")).await;
                assert_eq!(summary["passed"], json!([ids["datapoint"]]));
                assert_eq!(summary["metrics"]["details"].as_array().unwrap().len(), 2);
            }
            "getQueue" => {
                let (_, versions) = get(format!("/v1/metrics/{}/versions", ids["metric"])).await;
                assert_eq!(versions["data"][0]["deployed"], true);
                let (_, metrics) = get("/v1/metrics?type=PYTHON".into()).await;
                let metric = &metrics["metrics"][0];
                assert_eq!(
                    (
                        metric["description"].as_str(),
                        metric["enabled_in_prod"].as_bool()
                    ),
                    (Some("d"), Some(true))
                );
                // The deployed version's content is the metric's.
                assert_eq!(metric["criteria"], "z");
            }
            "deleteDatasetLegacy" => {
                let (_, left) = get("/v1/datasets".into()).await;
                assert_eq!(left["datasets"].as_array().unwrap().len(), 1);
                let (status, queue) = get(format!("/v1/queues/{}", ids["queue"])).await;
                assert_eq!((status, queue["resource"].as_str()), (404, Some("queue")));
                let (_, metrics) = get("/v1/metrics".into()).await;
                assert_eq!(metrics["metrics"], json!([]));
                let (_, runs) = get("/v1/runs".into()).await;
                assert_eq!(runs["pagination"]["total"], 1);
                assert_eq!(runs["evaluations"][0]["status"], "completed");
                let (_, event) = get(format!("/v1/events/{E1}")).await;
                assert_eq!(event["event"]["feedback"], json!({"ok": true}));
                assert_eq!(event["event"]["metrics"], json!({"score": 0.9}));
            }
            _ => {}
        }
        send(&http, &mock, &step, &mut ids).await;
    }
    // The 404 read above is no violation: it held to the spec.
    assert!(mock.violations().is_empty(), "{:#?}", mock.violations());
}
