//! `MockHoneyHive` remembers: what one call creates, the next finds, through
//! the generated client (`client.raw()`), offline.

mod support;

use honeyhive::api::types;
use honeyhive::testing::MockHoneyHive;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use support::bare_client;

/// A mock, and a client aimed at it.
async fn started() -> (MockHoneyHive, honeyhive::Client) {
    let mock = MockHoneyHive::start_async().await;
    let client = mock.client().unwrap();
    (mock, client)
}

/// A generated body type from JSON (the test's bodies are valid).
fn body<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

/// The JSON of a generated answer.
fn of<T: serde::Serialize>(value: T) -> Value {
    serde_json::to_value(value).unwrap()
}

fn uuid(text: &str) -> uuid::Uuid {
    text.parse().unwrap()
}

/// The status of a raw call that failed.
fn status<T: std::fmt::Debug>(result: Result<T, honeyhive::api::Error<()>>) -> u16 {
    result.unwrap_err().status().unwrap().as_u16()
}

/// The events of a session of an experiment run, as the SDKs log them:
/// the session (its metadata linking it to the run and the datapoint, its
/// metrics) and one model event in it.
fn session_events(run: &str, datapoint: &str, accuracy: f64, start: u64) -> Vec<Value> {
    let session = uuid::Uuid::new_v4().to_string();
    vec![
        json!({
            "event_type": "session", "event_id": session, "session_id": session,
            "event_name": "eval", "inputs": {}, "start_time": start,
            "metadata": {"run_id": run, "datapoint_id": datapoint},
            "metrics": {"accuracy": accuracy},
        }),
        json!({
            "event_type": "model", "event_id": uuid::Uuid::new_v4().to_string(),
            "session_id": session, "event_name": "answer", "inputs": {"q": datapoint},
            "start_time": start + 1, "metrics": {"latency": 100.0 * accuracy},
        }),
    ]
}

#[tokio::test]
async fn a_whole_experiment_runs_offline_dataset_datapoints_run_events_summary() {
    let (mock, client) = started().await;
    let raw = client.raw();

    // A dataset, and datapoints added with a mapping and one by one.
    let created = raw
        .create_dataset()
        .body(body::<types::CreateDatasetRequest>(
            json!({"name": "qa", "description": "questions"}),
        ))
        .send()
        .await
        .unwrap()
        .into_inner();
    let dataset = of(created)["result"]["insertedId"]
        .as_str()
        .unwrap()
        .to_owned();
    let added = raw
        .add_datapoints()
        .dataset_id(&dataset)
        .body(body::<types::AddDatapointsToDatasetRequest>(json!({
            "data": [
                {"question": "2+2?", "answer": "4", "topic": "sums"},
                {"question": "3+3?", "answer": "6", "topic": "sums"},
            ],
            "mapping": {"inputs": ["question"], "ground_truth": ["answer"]},
        })))
        .send()
        .await
        .unwrap()
        .into_inner();
    let mut datapoints: Vec<String> = added
        .datapoint_ids
        .iter()
        .map(|id| id.to_string())
        .collect();
    assert_eq!(datapoints.len(), 2);
    let one = raw
        .create_datapoint()
        .body(body::<types::CreateDatapointRequest>(json!({
            "inputs": {"question": "4+4?"}, "ground_truth": {"answer": "8"},
            "linked_datasets": [dataset],
        })))
        .send()
        .await
        .unwrap()
        .into_inner();
    datapoints.push(
        of(one)["result"]["insertedIds"][0]
            .as_str()
            .unwrap()
            .to_owned(),
    );

    let listed = of(raw
        .get_datasets()
        .name("qa")
        .send()
        .await
        .unwrap()
        .into_inner());
    assert_eq!(listed["datasets"][0]["id"], dataset.as_str());
    assert_eq!(listed["datasets"][0]["description"], "questions");
    assert_eq!(listed["datasets"][0]["datapoints"], json!(datapoints));
    let in_qa = || async {
        let listed = raw.get_datapoints().dataset_name("qa").send().await;
        listed.unwrap().into_inner().datapoints.len()
    };
    assert_eq!(in_qa().await, 3);
    let by_id = of(raw
        .get_datapoints()
        .datapoint_ids(vec![datapoints[1].clone()])
        .send()
        .await
        .unwrap()
        .into_inner());
    assert_eq!(by_id["datapoints"].as_array().unwrap().len(), 1);
    assert_eq!(
        by_id["datapoints"][0]["inputs"],
        json!({"question": "3+3?"})
    );
    assert_eq!(
        by_id["datapoints"][0]["ground_truth"],
        json!({"answer": "6"})
    );
    assert_eq!(by_id["datapoints"][0]["metadata"], json!({"topic": "sums"}));
    let got = of(raw
        .get_datapoint()
        .datapoint_id(&datapoints[2])
        .send()
        .await
        .unwrap()
        .into_inner());
    assert_eq!(got["datapoint"][0]["linked_datasets"], json!([dataset]));

    // A run with the client's id, then updated.
    let run = uuid::Uuid::new_v4().to_string();
    let created = json!({
        "run_id": run, "name": "first try", "dataset_id": dataset,
        "passing_ranges": {"accuracy": {"min": 0.5}}, "status": "running",
    });
    let answer = raw
        .create_run()
        .body(body::<types::PostExperimentRunRequest>(created))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.run_id, run);
    let update = json!({"status": "completed", "name": "renamed"});
    raw.update_run()
        .run_id(uuid(&run))
        .body(body::<types::PutExperimentRunRequest>(update))
        .send()
        .await
        .unwrap();
    let got = of(raw
        .get_run()
        .run_id(uuid(&run))
        .send()
        .await
        .unwrap()
        .into_inner());
    assert_eq!(got["evaluation"]["name"], "renamed");
    assert_eq!(got["evaluation"]["status"], "completed");
    assert_eq!(got["evaluation"]["dataset_id"], dataset.as_str());
    let runs = of(raw
        .get_runs()
        .dataset_id(&dataset)
        .send()
        .await
        .unwrap()
        .into_inner());
    assert_eq!(runs["evaluations"][0]["name"], "renamed");
    assert_eq!(runs["pagination"]["total"], 1);
    let by_id = raw
        .get_runs()
        .run_ids(vec![run.clone()])
        .limit(5)
        .send()
        .await;
    let by_id = of(by_id.unwrap().into_inner());
    assert_eq!(by_id["evaluations"][0]["run_id"], run.as_str());
    assert_eq!(by_id["pagination"]["limit"], 5);
    let other = raw
        .get_runs()
        .run_ids(vec!["other".to_owned()])
        .send()
        .await;
    assert_eq!(other.unwrap().into_inner().evaluations.len(), 0);

    // The sessions and their events, through the v1 batch route.
    let accuracies = [0.9, 0.2, 0.7];
    let mut events = Vec::new();
    for (i, (datapoint, accuracy)) in datapoints.iter().zip(accuracies).enumerate() {
        events.extend(session_events(
            &run,
            datapoint,
            accuracy,
            1_000 * (i as u64 + 1),
        ));
    }
    let logged = raw
        .create_event_batch()
        .body(body::<types::PostEventBatchRequest>(
            json!({"events": events}),
        ))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(logged.event_ids.len(), 6);

    // Each event found by id...
    let model = events[1]["event_id"].as_str().unwrap();
    let got = of(raw
        .get_event()
        .event_id(uuid(model))
        .send()
        .await
        .unwrap()
        .into_inner());
    assert_eq!(got["event"]["event_name"], "answer");
    assert_eq!(got["event"]["session_id"], events[1]["session_id"]);

    // ...and by search: session, type, name, metadata, date range.
    let search = |filters: Value, range: Option<Value>| {
        let mut request = json!({"filters": filters});
        if let Some(range) = range {
            request["dateRange"] = range;
        }
        let request: types::SearchEventsRequest = body(request);
        async move {
            of(raw
                .search_events()
                .body(request)
                .send()
                .await
                .unwrap()
                .into_inner())
        }
    };
    let filter =
        |field: &str, value: Value| json!({"field": field, "operator": "is", "value": value});
    let found = search(
        json!([filter("session_id", events[2]["session_id"].clone())]),
        None,
    )
    .await;
    assert_eq!(found["count"], 2);
    let found = search(json!([filter("event_type", json!("model"))]), None).await;
    assert_eq!(found["count"], 3);
    // Newest start_time first.
    assert_eq!(found["events"][0]["event_id"], events[5]["event_id"]);
    let found = search(
        json!([
            filter("event_name", json!("eval")),
            filter("metadata.datapoint_id", json!(datapoints[1]))
        ]),
        None,
    )
    .await;
    assert_eq!(found["count"], 1);
    assert_eq!(found["events"][0]["metrics"]["accuracy"], 0.2);
    let range =
        json!({"start_time": "1970-01-01T00:00:01.500Z", "end_time": "1970-01-01T00:00:02.500Z"});
    let found = search(json!([]), Some(range)).await;
    assert_eq!(found["count"], 2, "{found}");

    // The run's summary, computed from its sessions.
    let summary = raw.get_experiment_summary().run_id(uuid(&run)).send().await;
    let summary = of(summary.unwrap().into_inner());
    assert_eq!(summary["passed"], json!([datapoints[0], datapoints[2]]));
    assert_eq!(summary["failed"], json!([datapoints[1]]));
    assert_eq!(summary["status"], "completed");
    let details = summary["metrics"]["details"].as_array().unwrap();
    let accuracy = details
        .iter()
        .find(|d| d["metric_name"] == "accuracy")
        .unwrap();
    assert_eq!(accuracy["event_type"], "session");
    assert!((accuracy["aggregate"].as_f64().unwrap() - 0.6).abs() < 1e-9);
    assert_eq!(accuracy["datapoints"]["failed"], json!([datapoints[1]]));
    assert_eq!(accuracy["passing_range"], json!({"min": 0.5}));
    let latency = details
        .iter()
        .find(|d| d["metric_name"] == "latency")
        .unwrap();
    assert_eq!(latency["event_name"], "answer");
    let max = raw
        .get_experiment_summary()
        .run_id(uuid(&run))
        .aggregate_function(types::GetExperimentSummaryAggregateFunction::Max)
        .send()
        .await;
    let max = of(max.unwrap().into_inner());
    let accuracy = &max["metrics"]["details"].as_array().unwrap()[0];
    assert_eq!(
        (
            accuracy["metric_name"].as_str(),
            accuracy["aggregate"].as_f64()
        ),
        (Some("accuracy"), Some(0.9))
    );
    assert_eq!(max["metrics"]["aggregation_function"], "max");

    // Removal: a datapoint out of the dataset, the run deleted.
    raw.remove_datapoint()
        .dataset_id(&dataset)
        .datapoint_id(&datapoints[0])
        .send()
        .await
        .unwrap();
    assert_eq!(in_qa().await, 2);
    raw.delete_run().run_id(uuid(&run)).send().await.unwrap();
    assert_eq!(status(raw.get_run().run_id(uuid(&run)).send().await), 404);

    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

#[tokio::test]
async fn a_second_run_compares_with_the_first_on_common_datapoints() {
    let (mock, client) = started().await;
    let raw = client.raw();
    let (old, new) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    let mut events = Vec::new();
    for (run, accuracies) in [(&old, [0.4, 0.6]), (&new, [0.8, 1.0])] {
        raw.create_run()
            .body(body::<types::PostExperimentRunRequest>(
                json!({"run_id": run}),
            ))
            .send()
            .await
            .unwrap();
        for (datapoint, accuracy) in ["d1", "d2"].iter().zip(accuracies) {
            events.extend(session_events(run, datapoint, accuracy, 1));
        }
    }
    raw.create_event_batch()
        .body(body::<types::PostEventBatchRequest>(
            json!({"events": events}),
        ))
        .send()
        .await
        .unwrap();
    let compared = raw
        .get_experiment_comparison()
        .new_run_id(uuid(&new))
        .old_run_id(uuid(&old))
        .send()
        .await;
    let compared = of(compared.unwrap().into_inner());
    assert_eq!(compared["commonDatapoints"], json!(["d1", "d2"]));
    let accuracy = compared["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric_name"] == "accuracy")
        .unwrap()
        .clone();
    let close = |v: &Value, want: f64| (v.as_f64().unwrap() - want).abs() < 1e-9;
    assert!(close(&accuracy["old_aggregate"], 0.5), "{accuracy}");
    assert!(close(&accuracy["new_aggregate"], 0.9), "{accuracy}");
    assert!(close(&accuracy["difference"], 0.4), "{accuracy}");
    assert!(close(&accuracy["percentage_change"], 80.0), "{accuracy}");
    assert_eq!(compared["event_details"][0]["presence"], "both");
    let paired = raw
        .get_experiment_compare_events()
        .new_run_id(uuid(&new))
        .old_run_id(uuid(&old))
        .event_type("model")
        .send()
        .await
        .unwrap();
    let paired = of(paired.into_inner());
    assert_eq!(paired["totalEvents"], 2);
    assert_eq!(paired["events"][0]["event_1"]["event_name"], "answer");
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

#[tokio::test]
async fn a_run_finds_sessions_it_lists_and_a_false_metric_or_an_error_fails_one() {
    let (mock, client) = started().await;
    let raw = client.raw();
    let id = || uuid::Uuid::new_v4().to_string();
    let (run, by_event, by_session, errored) = (id(), id(), id(), id());
    let session = |sid: &str, metrics: Value| json!({"event_type": "session", "event_id": sid, "session_id": sid, "inputs": {}, "metrics": metrics});
    let mut events = vec![
        session(&by_event, json!({"ok": false})),
        session(&by_session, json!({"ok": true})),
        session(&errored, json!({"ok": true})),
    ];
    // An error on an event inside the session fails it.
    events.push(
        json!({"event_type": "tool", "inputs": {}, "session_id": errored, "error": "timeout"}),
    );
    raw.create_event_batch()
        .body(body::<types::PostEventBatchRequest>(
            json!({"events": events}),
        ))
        .send()
        .await
        .unwrap();
    let listed =
        json!({"run_id": run, "event_ids": [by_event], "session_ids": [by_session, errored]});
    raw.create_run()
        .body(body::<types::PostExperimentRunRequest>(listed))
        .send()
        .await
        .unwrap();
    let summary = raw.get_experiment_summary().run_id(uuid(&run)).send().await;
    let summary = of(summary.unwrap().into_inner());
    // No datapoint ids: the sessions' ids stand for them.
    assert_eq!(summary["passed"], json!([by_session]));
    assert_eq!(summary["failed"], json!([by_event, errored]));
    let ok = &summary["metrics"]["details"][0];
    assert_eq!(
        (ok["metric_name"].as_str(), ok["values"].clone()),
        (Some("ok"), json!([0.0, 1.0, 1.0]))
    );
    let count = raw
        .get_experiment_summary()
        .run_id(uuid(&run))
        .aggregate_function(types::GetExperimentSummaryAggregateFunction::Count)
        .send()
        .await;
    assert_eq!(
        of(count.unwrap().into_inner())["metrics"]["details"][0]["aggregate"],
        3.0
    );
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

#[tokio::test]
async fn unknown_ids_answer_404_naming_the_resource() {
    let (mock, client) = started().await;
    let raw = client.raw();
    let nobody = uuid::Uuid::new_v4();
    assert_eq!(status(raw.get_event().event_id(nobody).send().await), 404);
    assert_eq!(status(raw.get_run().run_id(nobody).send().await), 404);
    assert_eq!(
        status(raw.get_experiment_summary().run_id(nobody).send().await),
        404
    );
    assert_eq!(
        status(raw.get_datapoint().datapoint_id("dp-0").send().await),
        404
    );
    assert_eq!(
        status(raw.delete_dataset().dataset_id("ds-0").send().await),
        404
    );
    assert_eq!(status(raw.get_queue().queue_id("q-0").send().await), 404);
    assert_eq!(status(raw.get_chart().chart_id("c-0").send().await), 404);
    assert_eq!(
        status(raw.delete_metric().metric_id("m-0").send().await),
        404
    );
    // The answer names what was not found.
    let path = format!("/v1/runs/{nobody}");
    let (code, answer) = support::call_mock(&mock, reqwest::Method::GET, &path, None).await;
    assert_eq!(code, 404);
    assert_eq!(answer["resource"], "run");
    assert_eq!(answer["id"], nobody.to_string());
    // A 404 is not a violation: the request held to the spec.
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    assert_eq!(mock.stats().requests, 9);
}

#[tokio::test]
async fn a_query_parameter_off_its_schema_is_refused_naming_it() {
    let (mock, _) = started().await;
    let get = reqwest::Method::GET;
    let (status, answer) = support::call_mock(&mock, get.clone(), "/v1/runs?limit=500", None).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["violation"]
            .as_str()
            .unwrap()
            .contains("query parameter limit"),
        "{answer}"
    );
    let path = "/v1/runs?sort_order=sideways";
    let (status, _) = support::call_mock(&mock, get.clone(), path, None).await;
    assert_eq!(status, 400);
    // A required one missing.
    let (status, answer) =
        support::call_mock(&mock, reqwest::Method::DELETE, "/v1/datasets", None).await;
    assert_eq!(status, 400);
    assert!(
        answer["violation"].as_str().unwrap().contains("dataset_id"),
        "{answer}"
    );
    let (status, _) = support::call_mock(&mock, get, "/v1/runs?limit=100&page=2", None).await;
    assert_eq!(status, 200);
    assert_eq!(mock.violations().len(), 3);
}

#[tokio::test]
async fn searches_page_through_every_match_once_newest_first() {
    let (mock, client) = started().await;
    let raw = client.raw();
    let session = uuid::Uuid::new_v4().to_string();
    let events: Vec<Value> = (0..25)
        .map(|i| {
            json!({"event_type": "tool", "event_name": format!("e{i}"), "inputs": {},
                   "session_id": session, "start_time": 1_000 + i})
        })
        .collect();
    // Another session's events are not found by the filter.
    let others: Vec<Value> = (0..3)
        .map(|_| json!({"event_type": "tool", "inputs": {}, "session_id": "other"}))
        .collect();
    for batch in [events, others] {
        raw.create_event_batch()
            .body(body::<types::PostEventBatchRequest>(
                json!({"events": batch}),
            ))
            .send()
            .await
            .unwrap();
    }
    let mut names = Vec::new();
    for page in 1..=4 {
        let request: types::SearchEventsRequest = body(json!({
            "filters": [{"field": "session_id", "operator": "is", "value": session}],
            "limit": 10, "page": page,
        }));
        let found = of(raw
            .search_events()
            .body(request)
            .send()
            .await
            .unwrap()
            .into_inner());
        assert_eq!(found["count"], 25);
        let sizes = [10, 10, 5, 0];
        assert_eq!(found["events"].as_array().unwrap().len(), sizes[page - 1]);
        names.extend(
            found["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["event_name"].clone()),
        );
    }
    let expected: Vec<Value> = (0..25).rev().map(|i| json!(format!("e{i}"))).collect();
    assert_eq!(names, expected);
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

#[tokio::test]
async fn two_mocks_share_nothing() {
    let (a, b) = (
        MockHoneyHive::start_async().await,
        MockHoneyHive::start_async().await,
    );
    let (ca, cb) = (a.client().unwrap(), b.client().unwrap());
    ca.raw()
        .create_dataset()
        .body(body::<types::CreateDatasetRequest>(
            json!({"name": "only in a"}),
        ))
        .send()
        .await
        .unwrap();
    let logged = ca
        .log_event("s", honeyhive::Event::tool("t"))
        .await
        .unwrap();
    let in_a = ca.raw().get_datasets().send().await.unwrap();
    let in_b = cb.raw().get_datasets().send().await.unwrap();
    assert_eq!((in_a.datasets.len(), in_b.datasets.len()), (1, 0));
    let id = uuid(logged.event_id.as_str());
    assert!(ca.raw().get_event().event_id(id).send().await.is_ok());
    assert_eq!(status(cb.raw().get_event().event_id(id).send().await), 404);
}

#[tokio::test]
async fn events_of_every_route_are_found_and_an_update_changes_the_stored_event() {
    let (mock, client) = started().await;
    let (url, key) = (mock.base_url(), MockHoneyHive::API_KEY);
    let http = bare_client();
    let id = || uuid::Uuid::new_v4().to_string();
    let (nested, child, v1, legacy, model, session) = (id(), id(), id(), id(), id(), id());
    let sends = [
        (
            "/session/s-1/event",
            json!({"event_id": nested, "event_type": "chain",
            "children": [{"event_id": child, "event_type": "tool", "event_name": "inner"}]}),
        ),
        (
            "/v1/events",
            json!({"event_id": v1, "event_type": "tool", "inputs": {}, "session_id": "s-2"}),
        ),
        (
            "/events",
            json!({"event": {"event_id": legacy, "event_type": "tool", "session_id": "s-3", "inputs": {}}}),
        ),
        (
            "/events/model",
            json!({"model_event": {"event_id": model, "session_id": "s-3", "inputs": {}}}),
        ),
        (
            "/session/start",
            json!({"session": {"session_id": session, "session_name": "chat"}}),
        ),
    ];
    for (path, body) in sends {
        let answer = http
            .post(format!("{url}{path}"))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status().as_u16(),
            200,
            "{path}: {}",
            answer.text().await.unwrap()
        );
    }
    let get = |event: String| {
        let raw = client.raw();
        async move {
            of(raw
                .get_event()
                .event_id(uuid(&event))
                .send()
                .await
                .unwrap()
                .into_inner())["event"]
                .clone()
        }
    };
    assert_eq!(get(nested.clone()).await["children_ids"], json!([child]));
    assert_eq!(get(child.clone()).await["parent_id"], nested.as_str());
    assert_eq!(get(child).await["session_id"], "s-1");
    assert_eq!(get(v1.clone()).await["session_id"], "s-2");
    assert_eq!(get(legacy).await["session_id"], "s-3");
    assert_eq!(get(model.clone()).await["event_type"], "model");
    let started = get(session).await;
    assert_eq!(
        (
            started["event_type"].as_str(),
            started["event_name"].as_str()
        ),
        (Some("session"), Some("chat"))
    );

    client
        .update_event(
            &v1,
            honeyhive::EventUpdate::new()
                .metrics(json!({"score": 0.5}))
                .outputs(json!({"a": 1})),
        )
        .await
        .unwrap();
    let updated = get(v1).await;
    assert_eq!(
        (
            updated["metrics"]["score"].as_f64(),
            updated["outputs"]["a"].as_i64()
        ),
        (Some(0.5), Some(1))
    );
    // An update that comes before its event is applied when the event does.
    let late = id();
    client
        .update_event(
            &late,
            honeyhive::EventUpdate::new().feedback(json!({"ok": true})),
        )
        .await
        .unwrap();
    client
        .log_event("s-4", honeyhive::Event::tool("late").event_id(&late))
        .await
        .unwrap();
    assert_eq!(get(late).await["feedback"], json!({"ok": true}));
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}
