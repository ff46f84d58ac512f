//! The resource handles (`client.runs()`, `.datasets()`, `.datapoints()`,
//! `.events()`) against loopback servers: the exact method, path, query and
//! body each method sends; paged lists streamed whole, page by page; input
//! refused before any request; a 404 naming the resource and id; retries
//! only where a repeat cannot do harm; a raw call's failure as an `Error`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{StreamExt, TryStreamExt};
use honeyhive::api::types::DatapointMapping;
use honeyhive::{
    Aggregate, Client, DatapointBatch, DatapointUpdate, DatasetUpdate, Error, EventSearch,
    EventType, NewDatapoint, NewRun, RetryPolicy, RunQuery, RunStatus, RunUpdate,
};
use httpmock::{HttpMockRequest, Mock, MockServer};
use serde_json::{Value, json};

const KEY: &str = "hh-resources-key-0123456789";
const ATTEMPTS: u32 = 3;
const RUN: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
const OLD_RUN: &str = "9b2e1c4a-0f6d-4d7e-8a1b-5c3d2e1f0a9b";
const EVENT: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";

fn client(server: &MockServer) -> Client {
    Client::builder()
        .api_key(KEY)
        .base_url(server.base_url())
        .retry_policy(
            RetryPolicy::default()
                .max_attempts(ATTEMPTS)
                .initial_backoff(Duration::from_millis(1))
                .max_backoff(Duration::from_millis(5)),
        )
        .build()
        .expect("a loopback URL and a key make a valid client")
}

/// The request line's target (path and query, as sent) and the body.
fn target(req: &HttpMockRequest) -> String {
    let uri = req.uri();
    uri.path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default()
}

/// A mock that answers `answer` to exactly this method, target (path and
/// query as sent) and body bytes (`None`: no body), and to nothing else.
async fn exact<'a>(
    server: &'a MockServer,
    method: &'static str,
    path_and_query: &str,
    body: Option<&str>,
    answer: Value,
) -> Mock<'a> {
    let path_and_query = path_and_query.to_owned();
    let body = body.map(str::to_owned);
    server
        .mock_async(move |when, then| {
            when.is_true(move |req: &HttpMockRequest| {
                req.method().as_str() == method
                    && target(req) == path_and_query
                    && match &body {
                        Some(body) => req.body_ref() == body.as_bytes(),
                        None => req.body_ref().is_empty(),
                    }
            });
            then.status(200)
                .header("content-type", "application/json")
                .json_body(answer);
        })
        .await
}

/// What the server saw that no exact mock took: printed when a call fails,
/// so a wrong byte shows.
async fn anything_else(server: &MockServer) -> Mock<'_> {
    server
        .mock_async(|when, then| {
            when.is_true(|req: &HttpMockRequest| {
                eprintln!(
                    "unexpected request: {} {} {}",
                    req.method(),
                    target(req),
                    String::from_utf8_lossy(req.body_ref())
                );
                true
            });
            then.status(599).body("no mock for this request");
        })
        .await
}

/// A run as HoneyHive answers it.
fn run_object() -> Value {
    json!({
        "id": "r-1", "run_id": RUN, "metadata": {}, "results": {}, "event_ids": [],
        "configuration": {}, "is_active": true, "created_at": "2026-01-01T00:00:00.000Z",
        "scope_type": "project", "scope_id": "p-1", "status": "completed"
    })
}

fn dataset() -> Value {
    json!({"id": "ds-1", "name": "qa", "datapoints": ["dp-1"]})
}

fn datapoint() -> Value {
    json!({
        "id": "dp-1", "inputs": {"q": "2 + 2?"}, "history": [], "ground_truth": {"a": "4"},
        "metadata": null, "linked_event": null, "created_at": "2026-01-01T00:00:00Z"
    })
}

#[tokio::test]
async fn each_run_method_sends_the_documented_request() {
    let server = MockServer::start_async().await;
    let runs = client(&server).runs();
    let create = exact(
        &server,
        "POST",
        "/v1/runs",
        Some(&format!(
            r#"{{"dataset_id":"ds-1","description":"nightly eval","event_ids":["e-1"],"metadata":{{"commit":"abc"}},"name":"nightly","run_id":"{RUN}","status":"running"}}"#
        )),
        json!({"evaluation": run_object(), "run_id": RUN}),
    )
    .await;
    let get = exact(
        &server,
        "GET",
        &format!("/v1/runs/{RUN}"),
        None,
        json!({"evaluation": run_object()}),
    )
    .await;
    let update = exact(
        &server,
        "PUT",
        &format!("/v1/runs/{RUN}"),
        Some(r#"{"name":"renamed","results":{"accuracy":0.5},"status":"completed"}"#),
        json!({"evaluation": run_object()}),
    )
    .await;
    let delete = exact(
        &server,
        "DELETE",
        &format!("/v1/runs/{RUN}"),
        None,
        json!({"id": RUN, "deleted": true}),
    )
    .await;
    let summary = exact(
        &server,
        "GET",
        &format!("/v1/runs/{RUN}/summary?aggregate_function=median"),
        None,
        json!({
            "status": "completed", "success": true, "passed": ["dp-1"], "failed": [],
            "metrics": {"aggregation_function": "median"}, "datapoints": [],
            "event_details": [], "run_object": run_object()
        }),
    )
    .await;
    let compare = exact(
        &server,
        "GET",
        &format!("/v1/runs/{RUN}/compare/{OLD_RUN}?aggregate_function=p95"),
        None,
        json!({
            "metrics": [{"metric_name": "accuracy"}], "commonDatapoints": ["dp-1"],
            "event_details": [], "old_run": run_object(), "new_run": run_object()
        }),
    )
    .await;
    anything_else(&server).await;

    let created = runs
        .create(
            NewRun::new("nightly")
                .run_id(RUN)
                .dataset_id("ds-1")
                .description("nightly eval")
                .event_ids(["e-1"])
                .metadata(json!({"commit": "abc"}))
                .status(RunStatus::Running),
        )
        .await
        .expect("created");
    assert_eq!(created.run_id, RUN);
    let got = runs.get(RUN).await.expect("read");
    assert_eq!(got.status.as_deref(), Some("completed"));
    runs.update(
        RUN,
        RunUpdate::new()
            .name("renamed")
            .results(json!({"accuracy": 0.5}))
            .status(RunStatus::Completed),
    )
    .await
    .expect("updated");
    assert!(runs.delete(RUN).await.expect("deleted").deleted);
    let summed = runs.summary(RUN, Aggregate::Median).await.expect("summary");
    assert_eq!(summed.passed, ["dp-1"]);
    let compared = runs
        .compare(RUN, OLD_RUN, Aggregate::P95)
        .await
        .expect("compared");
    assert_eq!(compared.common_datapoints, ["dp-1"]);
    for (name, mock) in [
        ("create", &create),
        ("get", &get),
        ("update", &update),
        ("delete", &delete),
        ("summary", &summary),
        ("compare", &compare),
    ] {
        assert_eq!(mock.calls_async().await, 1, "{name}");
    }
}

#[tokio::test]
async fn a_new_run_without_an_id_gets_a_uuid_so_its_create_is_retried() {
    let server = MockServer::start_async().await;
    let failing = server
        .mock_async(|when, then| {
            when.method("POST").path("/v1/runs");
            then.status(500).body("down");
        })
        .await;
    let err = client(&server)
        .runs()
        .create(NewRun::new("nightly"))
        .await
        .expect_err("the server is down");
    assert_eq!(failing.calls_async().await, ATTEMPTS as usize);
    assert_eq!(err.attempts(), Some(ATTEMPTS));
    assert_eq!(
        err.status(),
        Some(honeyhive::StatusCode::INTERNAL_SERVER_ERROR)
    );
}

#[tokio::test]
async fn every_run_of_every_page_is_streamed_in_order() {
    let server = MockServer::start_async().await;
    let page = |n: u64, ids: &[&str], has_next: bool| {
        let runs: Vec<Value> = ids
            .iter()
            .map(|id| {
                let mut run = run_object();
                run["run_id"] = json!(id);
                run
            })
            .collect();
        json!({
            "evaluations": runs, "metrics": [],
            "pagination": {"page": n, "limit": 2, "total": 5, "total_unfiltered": 5,
                "total_pages": 3, "has_next": has_next, "has_prev": n > 1}
        })
    };
    let mut mocks = Vec::new();
    for (n, ids, more) in [
        (1, &["a", "b"][..], true),
        (2, &["c", "d"][..], true),
        (3, &["e"][..], false),
    ] {
        mocks.push(
            exact(
                &server,
                "GET",
                &format!("/v1/runs?dataset_id=ds-1&limit=2&page={n}&status=completed"),
                None,
                page(n, ids, more),
            )
            .await,
        );
    }
    anything_else(&server).await;
    let query = RunQuery::new()
        .dataset_id("ds-1")
        .status(RunStatus::Completed)
        .page_size(2);
    let mut runs = client(&server).runs().list(query);
    let first = runs.next().await.expect("an item").expect("page 1");
    assert_eq!(first.run_id, "a");
    assert_eq!(
        mocks[1].calls_async().await,
        0,
        "page 2 waits until page 1 is used up"
    );
    let rest: Vec<String> = runs
        .map_ok(|run| run.run_id)
        .try_collect()
        .await
        .expect("every page");
    assert_eq!(rest, ["b", "c", "d", "e"]);
    for mock in &mocks {
        assert_eq!(mock.calls_async().await, 1);
    }
}

#[tokio::test]
async fn each_dataset_method_sends_the_documented_request() {
    let server = MockServer::start_async().await;
    let datasets = client(&server).datasets();
    let mocks = [
        exact(&server, "GET", "/v1/datasets", None, json!({"datasets": [dataset()]})).await,
        exact(&server, "GET", "/v1/datasets?name=qa", None, json!({"datasets": [dataset()]})).await,
        exact(&server, "GET", "/v1/datasets?dataset_id=ds-1", None, json!({"datasets": [dataset()]})).await,
        exact(
            &server,
            "POST",
            "/v1/datasets",
            Some(r#"{"description":"questions","name":"qa"}"#),
            json!({"inserted": true, "result": {"insertedId": "ds-1"}}),
        )
        .await,
        exact(
            &server,
            "PUT",
            "/v1/datasets/ds-1",
            Some(r#"{"datapoints":["dp-1","dp-2"],"description":"checked","name":"qa-2"}"#),
            json!({"result": dataset()}),
        )
        .await,
        exact(&server, "DELETE", "/v1/datasets/ds-1", None, json!({"result": {"id": "ds-1"}})).await,
        exact(
            &server,
            "POST",
            "/v1/datasets/ds-1/datapoints",
            Some(r#"{"data":[{"a":"4","q":"2 + 2?"}],"mapping":{"ground_truth":["a"],"inputs":["q"]}}"#),
            json!({"inserted": true, "datapoint_ids": ["dp-9"]}),
        )
        .await,
        exact(
            &server,
            "DELETE",
            "/v1/datasets/ds-1/datapoints/dp-1",
            None,
            json!({"dereferenced": true, "message": "removed"}),
        )
        .await,
    ];
    anything_else(&server).await;

    assert_eq!(datasets.list().await.expect("list").len(), 1);
    assert_eq!(datasets.find("qa").await.expect("find").len(), 1);
    assert_eq!(datasets.get("ds-1").await.expect("get").name.as_str(), "qa");
    let created = datasets
        .create("qa", Some("questions"))
        .await
        .expect("create");
    assert_eq!(created.result.inserted_id.as_str(), "ds-1");
    datasets
        .update(
            "ds-1",
            DatasetUpdate::new()
                .name("qa-2")
                .description("checked")
                .datapoints(["dp-1", "dp-2"]),
        )
        .await
        .expect("update");
    datasets.delete("ds-1").await.expect("delete");
    let mapping = DatapointMapping {
        inputs: vec!["q".into()],
        ground_truth: vec!["a".into()],
        history: vec![],
    };
    let added = datasets
        .add_datapoints("ds-1", [json!({"q": "2 + 2?", "a": "4"})], mapping)
        .await
        .expect("add");
    assert_eq!(added.datapoint_ids.len(), 1);
    assert!(
        datasets
            .remove_datapoint("ds-1", "dp-1")
            .await
            .expect("remove")
            .dereferenced
    );
    for (i, mock) in mocks.iter().enumerate() {
        assert_eq!(mock.calls_async().await, 1, "request {i}");
    }
}

#[tokio::test]
async fn each_datapoint_method_sends_the_documented_request() {
    let server = MockServer::start_async().await;
    let datapoints = client(&server).datapoints();
    let start = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    let end = start + Duration::from_secs(60);
    let mocks = [
        exact(
            &server,
            "GET",
            "/v1/datapoints?datapoint_ids=dp-1&datapoint_ids=dp-2",
            None,
            json!({"datapoints": [datapoint()]}),
        )
        .await,
        exact(
            &server,
            "GET",
            "/v1/datapoints?dataset_name=qa+golden",
            None,
            json!({"datapoints": [datapoint()]}),
        )
        .await,
        exact(&server, "GET", "/v1/datapoints/dp-1", None, json!({"datapoint": [datapoint()]})).await,
        exact(
            &server,
            "POST",
            "/v1/datapoints",
            Some(r#"{"ground_truth":{"a":"4"},"history":[{"role":"user"}],"inputs":{"q":"2 + 2?"},"linked_datasets":["ds-1"],"metadata":{"k":1}}"#),
            json!({"inserted": true, "result": {"insertedIds": ["dp-1"]}}),
        )
        .await,
        exact(
            &server,
            "POST",
            "/v1/datapoints/batch",
            Some(r#"{"dataset_id":"ds-1","dateRange":{"$gte":"2023-11-14T22:13:20.123Z","$lte":"2023-11-14T22:14:20.123Z"},"filters":[{"field":"event_type","value":"model"}],"selectAll":true}"#),
            json!({"inserted": true, "insertedIds": ["dp-2", "dp-3"]}),
        )
        .await,
        exact(
            &server,
            "PUT",
            "/v1/datapoints/dp-1",
            Some(r#"{"ground_truth":{"a":"four"}}"#),
            json!({"updated": true, "result": {"modifiedCount": 1}}),
        )
        .await,
        exact(&server, "DELETE", "/v1/datapoints/dp-1", None, json!({"deleted": true})).await,
    ];
    anything_else(&server).await;

    assert_eq!(
        datapoints
            .list_by_ids(["dp-1", "dp-2"])
            .await
            .expect("by ids")
            .len(),
        1
    );
    assert_eq!(
        datapoints
            .list_in_dataset("qa golden")
            .await
            .expect("in dataset")
            .len(),
        1
    );
    assert_eq!(
        datapoints.get("dp-1").await.expect("get").id.as_str(),
        "dp-1"
    );
    datapoints
        .create(
            NewDatapoint::new()
                .inputs(json!({"q": "2 + 2?"}))
                .ground_truth(json!({"a": "4"}))
                .history([json!({"role": "user"})])
                .metadata(json!({"k": 1}))
                .linked_datasets(["ds-1"]),
        )
        .await
        .expect("create");
    let made = datapoints
        .create_batch(
            DatapointBatch::new("ds-1")
                .filters([json!({"field": "event_type", "value": "model"})])
                .date_range(start, end)
                .select_all(true),
        )
        .await
        .expect("batch");
    assert_eq!(made.inserted_ids.len(), 2);
    datapoints
        .update(
            "dp-1",
            DatapointUpdate::new().ground_truth(json!({"a": "four"})),
        )
        .await
        .expect("update");
    assert!(datapoints.delete("dp-1").await.expect("delete").deleted);
    for (i, mock) in mocks.iter().enumerate() {
        assert_eq!(mock.calls_async().await, 1, "request {i}");
    }
}

#[tokio::test]
async fn an_event_is_read_by_id_and_a_search_is_sent_as_documented() {
    let server = MockServer::start_async().await;
    let events = client(&server).events();
    let get = exact(
        &server,
        "GET",
        &format!("/v1/events/{EVENT}"),
        None,
        json!({"event": {"event_id": EVENT, "event_name": "search"}}),
    )
    .await;
    let search = exact(
        &server,
        "POST",
        "/v1/events/search",
        Some(&format!(
            r#"{{"dateRange":{{"end_time":"2023-11-14T22:14:20.123Z","start_time":"2023-11-14T22:13:20.123Z"}},"evaluation_id":"{RUN}","filters":[{{"field":"session_id","operator":"is","type":"string","value":"{EVENT}"}},{{"field":"event_type","operator":"is","type":"string","value":"tool"}},{{"field":"event_name","operator":"is","type":"string","value":"search"}},{{"field":"metadata.tier","operator":"is","type":"string","value":"pro"}}],"limit":10,"page":1}}"#
        )),
        json!({"events": [{"event_id": "e-1"}], "count": 1}),
    )
    .await;
    anything_else(&server).await;

    let event = events.get(EVENT).await.expect("read");
    assert_eq!(event.event_name.as_deref(), Some("search"));
    let start = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    let found: Vec<_> = events
        .search(
            EventSearch::new()
                .session_id(EVENT)
                .event_type(EventType::Tool)
                .event_name("search")
                .is("metadata.tier", "pro")
                .date_range(start, start + Duration::from_secs(60))
                .evaluation_id(RUN)
                .page_size(10),
        )
        .try_collect()
        .await
        .expect("one short page");
    assert_eq!(found.len(), 1);
    assert_eq!(get.calls_async().await, 1);
    assert_eq!(search.calls_async().await, 1, "a short page is the last");
}

#[tokio::test]
async fn a_search_over_many_pages_is_streamed_one_page_at_a_time() {
    let server = MockServer::start_async().await;
    const PAGES: u64 = 5;
    const SIZE: u64 = 3;
    let mut mocks = Vec::new();
    for page in 1..=PAGES {
        // The last page is short: 2 events.
        let count = if page == PAGES { 2 } else { SIZE };
        let events: Vec<Value> = (0..count)
            .map(|i| json!({"event_id": format!("e-{page}-{i}")}))
            .collect();
        mocks.push(
            exact(
                &server,
                "POST",
                "/v1/events/search",
                Some(&format!(r#"{{"limit":{SIZE},"page":{page}}}"#)),
                json!({"events": events, "count": 14}),
            )
            .await,
        );
    }
    anything_else(&server).await;
    let mut events = client(&server)
        .events()
        .search(EventSearch::new().page_size(SIZE));
    let mut seen = 0;
    while let Some(event) = events.next().await {
        let event = event.expect("every page answers");
        let page = seen / SIZE + 1;
        assert_eq!(
            event.event_id.as_deref(),
            Some(format!("e-{page}-{}", seen % SIZE).as_str())
        );
        // Only the pages up to this item's were asked for.
        let asked: usize = {
            let mut asked = 0;
            for mock in &mocks {
                asked += mock.calls_async().await;
            }
            asked
        };
        assert_eq!(asked as u64, page, "after item {seen}");
        seen += 1;
    }
    assert_eq!(seen, (PAGES - 1) * SIZE + 2);
}

#[tokio::test]
async fn a_search_reads_to_the_answer_s_count_whatever_the_server_s_page_size() {
    // The server pages by 2 although 5 were asked for: the stream reads on
    // to the total (5), not stopping at the first short page.
    let server = MockServer::start_async().await;
    let mut short_pages = Vec::new();
    for (page, ids) in [(1, vec!["a", "b"]), (2, vec!["c", "d"]), (3, vec!["e"])] {
        let events: Vec<Value> = ids.iter().map(|id| json!({"event_id": id})).collect();
        short_pages.push(
            exact(
                &server,
                "POST",
                "/v1/events/search",
                Some(&format!(r#"{{"limit":5,"page":{page}}}"#)),
                json!({"events": events, "count": 5}),
            )
            .await,
        );
    }
    let unasked = anything_else(&server).await;
    let found: Vec<_> = client(&server)
        .events()
        .search(EventSearch::new().page_size(5))
        .try_collect()
        .await
        .expect("every page");
    let ids: Vec<_> = found.iter().filter_map(|e| e.event_id.as_deref()).collect();
    assert_eq!(ids, ["a", "b", "c", "d", "e"]);
    // A total that fills the last page costs no empty page after it.
    assert_eq!(unasked.calls_async().await, 0);
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_before_any_request() {
    let server = MockServer::start_async().await;
    let anything = anything_else(&server).await;
    let client = client(&server);
    let field = |err: Error| match err {
        Error::InvalidInput { field, problem, .. } => {
            assert!(!problem.is_empty());
            field
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    };
    let runs = client.runs();
    assert_eq!(field(runs.get("run-1").await.unwrap_err()), "run_id");
    assert_eq!(field(runs.delete("").await.unwrap_err()), "run_id");
    assert_eq!(
        field(
            runs.compare(RUN, "old", Aggregate::Average)
                .await
                .unwrap_err()
        ),
        "old_run_id"
    );
    assert_eq!(
        field(runs.summary("x", Aggregate::Average).await.unwrap_err()),
        "run_id"
    );
    assert_eq!(
        field(runs.create(NewRun::new(" ")).await.unwrap_err()),
        "name"
    );
    assert_eq!(
        field(
            runs.create(NewRun::new("n").run_id("r-1"))
                .await
                .unwrap_err()
        ),
        "run_id"
    );
    assert_eq!(
        field(
            runs.create(NewRun::new("n").metadata(json!([1, 2])))
                .await
                .unwrap_err()
        ),
        "metadata"
    );
    assert_eq!(
        field(
            runs.update(RUN, RunUpdate::new().name(""))
                .await
                .unwrap_err()
        ),
        "name"
    );
    for size in [0, 101] {
        let first = runs.list(RunQuery::new().page_size(size)).next().await;
        assert_eq!(
            field(first.expect("one item").unwrap_err()),
            "page_size",
            "{size}"
        );
    }
    let datasets = client.datasets();
    assert_eq!(field(datasets.create("", None).await.unwrap_err()), "name");
    assert_eq!(
        field(datasets.create(&"x".repeat(201), None).await.unwrap_err()),
        "name"
    );
    assert_eq!(field(datasets.get(" ").await.unwrap_err()), "dataset_id");
    assert_eq!(
        field(datasets.delete("..").await.unwrap_err()),
        "dataset_id"
    );
    assert_eq!(field(datasets.find("").await.unwrap_err()), "name");
    let mapping = DatapointMapping {
        inputs: vec!["q".into()],
        ..Default::default()
    };
    assert_eq!(
        field(
            datasets
                .add_datapoints("ds-1", Vec::<Value>::new(), mapping.clone())
                .await
                .unwrap_err()
        ),
        "rows"
    );
    assert_eq!(
        field(
            datasets
                .add_datapoints("ds-1", [json!({"q": 1}), json!("not an object")], mapping)
                .await
                .unwrap_err()
        ),
        "rows[1]"
    );
    assert_eq!(
        field(
            datasets
                .add_datapoints("ds-1", [json!({"q": 1})], DatapointMapping::default())
                .await
                .unwrap_err()
        ),
        "mapping"
    );
    assert_eq!(
        field(
            datasets
                .update(
                    "ds-1",
                    DatasetUpdate::new().datapoints(Vec::<String>::new())
                )
                .await
                .unwrap_err()
        ),
        "datapoints"
    );
    assert_eq!(
        field(datasets.remove_datapoint("ds-1", "").await.unwrap_err()),
        "datapoint_id"
    );
    let datapoints = client.datapoints();
    assert_eq!(
        field(
            datapoints
                .list_by_ids(Vec::<String>::new())
                .await
                .unwrap_err()
        ),
        "datapoint_ids"
    );
    assert_eq!(
        field(datapoints.list_in_dataset("").await.unwrap_err()),
        "dataset_name"
    );
    assert_eq!(
        field(
            datapoints
                .create(NewDatapoint::new().inputs("text"))
                .await
                .unwrap_err()
        ),
        "inputs"
    );
    let now = SystemTime::now();
    assert_eq!(
        field(
            datapoints
                .create_batch(
                    DatapointBatch::new("ds-1").date_range(now, now - Duration::from_secs(1))
                )
                .await
                .unwrap_err()
        ),
        "date_range"
    );
    let events = client.events();
    assert_eq!(field(events.get("e-1").await.unwrap_err()), "event_id");
    for size in [0, 1001] {
        let first = events
            .search(EventSearch::new().page_size(size))
            .next()
            .await;
        assert_eq!(
            field(first.expect("one item").unwrap_err()),
            "page_size",
            "{size}"
        );
    }
    assert_eq!(anything.calls_async().await, 0, "nothing was sent");
}

#[tokio::test]
async fn a_missing_resource_is_not_found_naming_it_and_its_id() {
    let server = MockServer::start_async().await;
    for path in [
        format!("/v1/runs/{RUN}"),
        format!("/v1/events/{EVENT}"),
        "/v1/datapoints/dp-404".to_owned(),
    ] {
        server
            .mock_async(|when, then| {
                when.path(path);
                then.status(404).body(r#"{"error":"not found"}"#);
            })
            .await;
    }
    server
        .mock_async(|when, then| {
            when.path("/v1/datasets")
                .query_param("dataset_id", "ds-404");
            then.status(200)
                .header("content-type", "application/json")
                .json_body(json!({"datasets": []}));
        })
        .await;
    let client = client(&server);
    let not_found = |err: Error| match err {
        Error::NotFound {
            resource, id, url, ..
        } => (resource, id, url),
        other => panic!("expected NotFound, got {other:?}"),
    };

    let err = client.runs().get(RUN).await.unwrap_err();
    assert_eq!(err.status(), Some(honeyhive::StatusCode::NOT_FOUND));
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        format!(
            "the API has no run with id {RUN} from {}/v1/runs/{RUN}: check the id, and that it \
             belongs to the API key's project",
            server.base_url()
        )
    );
    let (resource, id, url) = not_found(err);
    assert_eq!((resource, id.as_str()), ("run", RUN));
    assert_eq!(url, Some(format!("{}/v1/runs/{RUN}", server.base_url())));
    let (resource, id, ..) = not_found(client.events().get(EVENT).await.unwrap_err());
    assert_eq!((resource, id.as_str()), ("event", EVENT));
    let (resource, id, ..) = not_found(client.datapoints().get("dp-404").await.unwrap_err());
    assert_eq!((resource, id.as_str()), ("datapoint", "dp-404"));
    let (resource, id, ..) = not_found(client.datasets().get("ds-404").await.unwrap_err());
    assert_eq!((resource, id.as_str()), ("dataset", "ds-404"));
}

#[tokio::test]
async fn a_create_under_server_ids_is_sent_once_after_a_500_and_a_read_is_retried() {
    let server = MockServer::start_async().await;
    let mut failing = Vec::new();
    for (method, path) in [
        ("POST", "/v1/datasets"),
        ("POST", "/v1/datapoints"),
        ("GET", "/v1/datasets"),
        ("POST", "/v1/events/search"),
    ] {
        failing.push(
            server
                .mock_async(|when, then| {
                    when.method(method).path(path);
                    then.status(500).body(format!("down, key {KEY}"));
                })
                .await,
        );
    }
    let client = client(&server);
    let err = client.datasets().create("qa", None).await.unwrap_err();
    assert_eq!(
        failing[0].calls_async().await,
        1,
        "a repeat could make a second dataset"
    );
    match &err {
        Error::Api {
            status,
            body,
            attempts,
            url,
            ..
        } => {
            assert_eq!(*status, 500);
            assert_eq!(body, "down, key [redacted]", "the key is scrubbed");
            assert_eq!(*attempts, 1);
            assert_eq!(
                url.as_deref(),
                Some(format!("{}/v1/datasets", server.base_url()).as_str())
            );
        }
        other => panic!("expected Api, got {other:?}"),
    }
    assert!(!format!("{err} {err:?} {err:#?}").contains(KEY));
    client
        .datapoints()
        .create(NewDatapoint::new().inputs(json!({"q": 1})))
        .await
        .unwrap_err();
    assert_eq!(
        failing[1].calls_async().await,
        1,
        "a repeat could make a second datapoint"
    );
    let err = client.datasets().list().await.unwrap_err();
    assert_eq!(
        failing[2].calls_async().await,
        ATTEMPTS as usize,
        "a GET is retried"
    );
    assert_eq!(err.attempts(), Some(ATTEMPTS));
    let err = client
        .events()
        .search(EventSearch::new())
        .next()
        .await
        .expect("one item")
        .unwrap_err();
    assert_eq!(
        failing[3].calls_async().await,
        ATTEMPTS as usize,
        "a search only reads"
    );
    assert_eq!(err.attempts(), Some(ATTEMPTS));
}

#[tokio::test]
async fn a_failed_raw_call_is_an_error_with_status_scrubbed_body_and_url() {
    let server = MockServer::start_async().await;
    // A status the spec documents for getRun (progenitor keeps no body of
    // it), and one it does not (progenitor hands the answer back).
    server
        .mock_async(|when, then| {
            when.path(format!("/v1/runs/{RUN}"));
            then.status(400).body(format!("bad id\nfor key {KEY}"));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/v1/datasets");
            then.status(403).body(format!("key {KEY} refused"));
        })
        .await;
    let client = client(&server);
    let raw = client
        .raw()
        .get_run()
        .run_id(uuid::Uuid::parse_str(RUN).unwrap())
        .send()
        .await
        .unwrap_err();
    let err = Error::from(raw);
    assert_eq!(err.status(), Some(honeyhive::StatusCode::BAD_REQUEST));
    assert_eq!(
        err.url(),
        Some(format!("{}/v1/runs/{RUN}", server.base_url()).as_str())
    );
    match &err {
        Error::Api { body, .. } => assert_eq!(body, "bad id\nfor key [redacted]"),
        other => panic!("expected Api, got {other:?}"),
    }
    assert!(!err.to_string().contains("no.url.provided"));
    let err = client
        .call(client.raw().get_datasets().send())
        .await
        .unwrap_err();
    match &err {
        Error::Unauthorized {
            status,
            body,
            attempts,
            url,
            ..
        } => {
            assert_eq!(*status, 403);
            assert_eq!(body, "key [redacted] refused");
            assert_eq!(*attempts, 1, "a refused key is not retried");
            assert_eq!(
                url.as_deref(),
                Some(format!("{}/v1/datasets", server.base_url()).as_str())
            );
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

#[tokio::test]
async fn a_raw_call_that_never_reaches_a_server_says_the_host_and_its_attempts() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let client = Client::builder()
        .api_key(KEY)
        .base_url(format!("http://127.0.0.1:{port}"))
        .retry_policy(
            RetryPolicy::default()
                .max_attempts(2)
                .initial_backoff(Duration::from_millis(1)),
        )
        .build()
        .unwrap();
    match client.datasets().list().await.unwrap_err() {
        Error::Transport { host, attempts, .. } => {
            assert_eq!(host, format!("127.0.0.1:{port}"));
            assert_eq!(attempts, 2);
        }
        other => panic!("expected Transport, got {other:?}"),
    }
}

/// A whole workflow against the mock that remembers: a dataset, its
/// datapoints, a run over them, the events of a session found by search,
/// the run's summary; every request valid for the spec.
#[tokio::test]
async fn a_dataset_its_datapoints_a_run_and_its_events_round_trip_through_the_mock() {
    let mock = honeyhive::testing::MockHoneyHive::start_async().await;
    let client = mock.client().expect("the mock's client");

    let created = client
        .datasets()
        .create("qa-golden", Some("questions"))
        .await
        .expect("dataset");
    let dataset_id = created.result.inserted_id.to_string();
    let mapping = DatapointMapping {
        inputs: vec!["q".into()],
        ground_truth: vec!["a".into()],
        history: vec![],
    };
    let added = client
        .datasets()
        .add_datapoints(
            &dataset_id,
            [
                json!({"q": "2 + 2?", "a": "4"}),
                json!({"q": "3 + 3?", "a": "6"}),
            ],
            mapping,
        )
        .await
        .expect("datapoints");
    assert_eq!(added.datapoint_ids.len(), 2);
    let listed = client
        .datapoints()
        .list_in_dataset("qa-golden")
        .await
        .expect("listed");
    assert_eq!(listed.len(), 2);
    let first = client
        .datapoints()
        .get(&added.datapoint_ids[0])
        .await
        .expect("one datapoint");
    assert_eq!(first.inputs["q"], "2 + 2?");

    let session = honeyhive::SessionId::new();
    let run = client
        .runs()
        .create(
            NewRun::new("nightly")
                .dataset_id(&dataset_id)
                .session_ids([session.as_str()]),
        )
        .await
        .expect("run");
    client
        .log_batch([
            (
                &session,
                honeyhive::Event::session("eval")
                    .inputs(json!({}))
                    .metadata(json!({
                        "run_id": run.run_id, "datapoint_id": added.datapoint_ids[0]
                    })),
            ),
            (
                &session,
                honeyhive::Event::tool("answer").inputs(json!({"q": 1})),
            ),
        ])
        .await
        .expect("events");
    let found: Vec<_> = client
        .events()
        .search(EventSearch::new().session_id(session.as_str()).page_size(1))
        .try_collect()
        .await
        .expect("search");
    assert_eq!(found.len(), 2, "two pages of one event each");
    client
        .runs()
        .update(&run.run_id, RunUpdate::new().status(RunStatus::Completed))
        .await
        .expect("update");
    let got = client.runs().get(&run.run_id).await.expect("the run");
    assert_eq!(got.status.as_deref(), Some("completed"));
    let summary = client
        .runs()
        .summary(&run.run_id, Aggregate::Average)
        .await
        .expect("summary");
    assert_eq!(summary.run_object.run_id, run.run_id);

    let missing = client
        .datasets()
        .get("no-such-dataset")
        .await
        .expect_err("not there");
    assert!(
        matches!(&missing, Error::NotFound { resource: "dataset", id, .. } if id == "no-such-dataset"),
        "{missing:?}"
    );
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}
