//! Experiments (`honeyhive::experiment`) against a loopback server that
//! remembers runs and sessions, and fails what it is told to.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use honeyhive::experiment::{
    Datapoint, Experiment, ExperimentError, Gate, Outcome, TaskFailure, TaskOutput,
};
use honeyhive::{Client, Error, RetryPolicy, RunStatus};
use serde_json::{Value, json};
use support::runs_server::RunsServer;

fn client(server: &RunsServer) -> Client {
    Client::builder()
        .api_key("hh-experiment-key")
        .base_url(server.base_url())
        .timeout(Duration::from_secs(2))
        .retry_policy(
            RetryPolicy::default()
                .max_attempts(12)
                .initial_backoff(Duration::from_millis(2))
                .max_backoff(Duration::from_millis(20)),
        )
        .build()
        .unwrap()
}

fn rows(n: usize) -> Vec<Datapoint> {
    (0..n)
        .map(|i| Datapoint::new(json!({"n": i})).ground_truth(json!({"double": i * 2})))
        .collect()
}

/// Doubles `n`; right for every datapoint.
fn doubling(exp: Experiment) -> Experiment {
    exp.task(|row: Datapoint| async move {
        let n = row.inputs["n"].as_u64().unwrap();
        Ok::<_, String>(json!({"double": n * 2}))
    })
    .evaluator("exact", |outputs: &Value, row: &Datapoint| {
        row.ground_truth.as_ref() == Some(outputs)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_run_is_created_first_recorded_as_sessions_and_closed_with_their_ids() {
    let server = RunsServer::start().await;
    let report = doubling(Experiment::new("doubling"))
        .datapoints(rows(5))
        .metadata(json!({"model": "m-1"}))
        .run(&client(&server))
        .await
        .unwrap();

    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(
        (report.passed(), report.failed(), report.errored()),
        (5, 0, 0)
    );
    assert_eq!(report.aggregates["exact"].mean, 1.0);
    // Only v1 routes, the run first, its close after every session.
    let routes = server.routes();
    assert_eq!(routes.first().unwrap(), "POST /v1/runs");
    let close = routes
        .iter()
        .position(|r| r.starts_with("PUT /v1/runs/"))
        .unwrap();
    let last_batch = routes
        .iter()
        .rposition(|r| r == "POST /v1/events/batch")
        .unwrap();
    assert!(last_batch < close, "{routes:?}");
    assert!(routes.iter().all(|r| r.contains("/v1/")), "{routes:?}");
    assert_eq!(
        routes.last().unwrap(),
        &format!("GET /v1/runs/{}/summary", report.run_id)
    );

    // The run as created: the client's id, the datapoints, the local
    // dataset's id in metadata (as HoneyHive's Python SDK sends it), no
    // `dataset_id` (the generated type leaves out a null).
    let created = server.requests()[0].body.clone();
    let ids: Vec<String> = report
        .results
        .iter()
        .map(|r| r.datapoint_id.clone())
        .collect();
    let offline = created["metadata"]["offline_dataset_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        created,
        json!({"run_id": report.run_id, "name": "doubling", "status": "running",
               "datapoint_ids": ids,
               "metadata": {"model": "m-1", "offline_dataset_id": offline},
               "configuration": {"repetitions": 1}})
    );
    // Each datapoint a session linked to the run, its outputs and scores on it.
    let sessions = server.sessions();
    assert_eq!(sessions.len(), 5);
    for result in &report.results {
        // In the order they finished, not the dataset's.
        let session = sessions
            .iter()
            .find(|s| s["session_id"] == result.session_id.as_str())
            .expect("the datapoint's session");
        assert_eq!(session["event_id"], session["session_id"]);
        assert_eq!(session["metadata"]["run_id"], report.run_id.as_str());
        assert_eq!(
            session["metadata"]["datapoint_id"],
            result.datapoint_id.as_str()
        );
        assert_eq!(session["metadata"]["dataset_id"], offline.as_str());
        assert_eq!(session["metadata"]["source"], "evaluation");
        assert_eq!(session["outputs"], *result.outputs.as_ref().unwrap());
        assert_eq!(session["metrics"], json!({"exact": true}));
        assert_eq!(session["feedback"]["ground_truth"], session["outputs"]);
    }
    // Closed with the sessions' ids and the truth.
    let run = server.with(|s| s.runs[&report.run_id].clone());
    assert_eq!(run["status"], "completed");
    let closed: HashSet<&str> = run["session_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let ours: HashSet<&str> = report
        .results
        .iter()
        .map(|r| r.session_id.as_str())
        .collect();
    assert_eq!(closed, ours);
    assert_eq!(report.summary.as_ref().unwrap().datapoints.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_ids_are_stable_so_two_runs_name_the_same_datapoints() {
    let server = RunsServer::start().await;
    let mut ids = Vec::new();
    for name in ["a", "b"] {
        let report = Experiment::new(name)
            .datapoints(rows(3))
            .task(|_: Datapoint| async { Ok::<_, String>(json!({})) })
            .record(false)
            .run(&client(&server))
            .await
            .unwrap();
        ids.push(
            report
                .results
                .into_iter()
                .map(|d| d.datapoint_id)
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(ids[0], ids[1]);
    assert_eq!(server.requests().len(), 0, "record(false) sends nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_30_percent_server_errors_nothing_recorded_is_lost_or_doubled() {
    // 30% of requests answered 500 while the run goes on (not the run's
    // creation, which is sent first and would just be retried).
    let server = RunsServer::failing(|_, path, n| {
        n > 0 && path.starts_with("/v1/") && support::mix(n) % 10 < 3
    })
    .await;
    let report = doubling(Experiment::new("faulty"))
        .datapoints(rows(200))
        .concurrency(20)
        .run(&client(&server))
        .await
        .unwrap();
    let failed = server.requests().iter().filter(|r| r.failed).count();
    assert!(failed > 0, "the plan failed nothing");
    assert_eq!(
        report.status,
        RunStatus::Completed,
        "{:?}",
        report.status_reason
    );
    assert_eq!(report.passed(), 200);
    let sessions = server.sessions();
    assert_eq!(sessions.len(), 200, "every session once");
    let run = server.with(|s| s.runs[&report.run_id].clone());
    assert_eq!(run["status"], "completed");
    assert_eq!(run["session_ids"].as_array().unwrap().len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_errors_panics_or_never_returns_fails_only_its_datapoint() {
    let server = RunsServer::start().await;
    let report = Experiment::new("isolation")
        .datapoints(rows(4))
        .task(|row: Datapoint| async move {
            match row.inputs["n"].as_u64().unwrap() {
                0 => Err("model refused".to_owned()),
                1 => panic!("boom at 1"),
                2 => std::future::pending().await,
                n => Ok(json!({"double": n * 2})),
            }
        })
        // Long enough for a panic to print its backtrace on a busy machine.
        .timeout(Duration::from_millis(2000))
        .run(&client(&server))
        .await
        .unwrap();
    let outcomes: Vec<&Outcome> = report.results.iter().map(|r| &r.outcome).collect();
    assert_eq!(
        outcomes[0],
        &Outcome::Errored(TaskFailure::Error("model refused".into()))
    );
    assert_eq!(
        outcomes[1],
        &Outcome::Errored(TaskFailure::Panic("boom at 1".into()))
    );
    assert_eq!(
        outcomes[2],
        &Outcome::Errored(TaskFailure::Timeout(Duration::from_millis(2000)))
    );
    assert_eq!(outcomes[3], &Outcome::Passed);
    assert_eq!(report.status, RunStatus::Completed);
    // Every datapoint recorded, the failures with their reason.
    let sessions = server.sessions();
    assert_eq!(sessions.len(), 4);
    let error_of = |i: usize| {
        sessions
            .iter()
            .find(|s| s["session_id"] == report.results[i].session_id.as_str())
            .unwrap()["error"]
            .clone()
    };
    assert_eq!(error_of(0), "the task failed: model refused");
    assert_eq!(error_of(1), "the task panicked: boom at 1");
    assert_eq!(error_of(2), "the task did not finish within 2000 ms");
    assert_eq!(error_of(3), Value::Null);
}

#[tokio::test(flavor = "current_thread")]
async fn a_sync_evaluator_runs_off_the_runtime_thread_within_the_timeout() {
    let server = RunsServer::start().await;
    let runtime_thread = std::thread::current().id();
    let started = std::time::Instant::now();
    let report = Experiment::new("slow sync judge")
        .datapoints(rows(2))
        .task(|_: Datapoint| async { Ok::<_, String>(json!({"acc": 1.0})) })
        .timeout(Duration::from_millis(300))
        .evaluator("elsewhere", move |_: &Value, _: &Datapoint| {
            std::thread::current().id() != runtime_thread
        })
        .evaluator("slow", |_: &Value, row: &Datapoint| {
            if row.inputs["n"] == 1 {
                std::thread::sleep(Duration::from_secs(3));
            }
            1.0
        })
        .record(false)
        .run(&client(&server))
        .await
        .unwrap();
    // Off the one runtime thread: the runtime stayed free meanwhile.
    assert!(
        report
            .results
            .iter()
            .all(|r| r.scores["elsewhere"] == json!(true).into())
    );
    // The sleeping one gave up at the timeout, not after its 3 s, and left
    // no score.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let slow = report
        .results
        .iter()
        .find(|r| r.evaluator_errors.contains_key("slow"))
        .unwrap();
    assert!(
        slow.evaluator_errors["slow"].contains("did not finish within 300 ms"),
        "{:?}",
        slow.evaluator_errors
    );
    assert!(!slow.scores.contains_key("slow"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evaluator_that_fails_or_panics_gives_no_score_not_a_zero() {
    let server = RunsServer::start().await;
    let report = doubling(Experiment::new("evaluators"))
        .datapoints(rows(3))
        .evaluator("fragile", |_: &Value, row: &Datapoint| {
            if row.inputs["n"] == 1 {
                panic!("judge crashed");
            }
            0.5
        })
        .evaluator("picky", |_: &Value, row: &Datapoint| {
            if row.inputs["n"] == 2 {
                Err("no verdict")
            } else {
                Ok(true)
            }
        })
        .evaluator_async("slow judge", |_: Value, _: Datapoint| async { 3 })
        .run(&client(&server))
        .await
        .unwrap();
    assert_eq!(
        (report.passed(), report.failed(), report.errored()),
        (1, 2, 0)
    );
    let second = &report.results[1];
    assert_eq!(second.outcome, Outcome::Failed);
    assert_eq!(
        second.evaluator_errors["fragile"],
        "panicked: judge crashed"
    );
    assert!(!second.scores.contains_key("fragile"));
    assert_eq!(report.results[2].evaluator_errors["picky"], "no verdict");
    assert_eq!(report.aggregates["fragile"].count, 2);
    assert_eq!(report.aggregates["fragile"].missing, 1);
    assert_eq!(report.aggregates["slow judge"].mean, 3.0);
    let sessions = server.sessions();
    let of = |i: usize| {
        sessions
            .iter()
            .find(|s| s["session_id"] == report.results[i].session_id.as_str())
            .unwrap()
            .clone()
    };
    assert_eq!(
        of(1)["metrics"],
        json!({"exact": true, "picky": true, "slow judge": 3.0})
    );
    assert_eq!(
        of(1)["metadata"]["evaluator_errors"]["fragile"],
        "panicked: judge crashed"
    );
    assert_eq!(of(0)["metrics"]["fragile"], 0.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_run_is_cancelled_and_resume_runs_only_what_is_missing() {
    let server = RunsServer::start().await;
    let client = client(&server);
    let started = Arc::new(AtomicUsize::new(0));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stop = Arc::new(parking_lot::Mutex::new(Some(stop)));
    let counter = Arc::clone(&started);
    let first = Experiment::new("interrupted")
        .datapoints(rows(20))
        .concurrency(2)
        .task(move |row: Datapoint| {
            let counter = Arc::clone(&counter);
            let stop = Arc::clone(&stop);
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) == 10 {
                    // Half-way: the process is told to stop.
                    if let Some(stop) = stop.lock().take() {
                        let _ = stop.send(());
                    }
                    std::future::pending::<()>().await;
                }
                Ok::<_, String>(json!({"double": row.inputs["n"].as_u64().unwrap() * 2}))
            }
        })
        .stop_when(async move {
            let _ = stopped.await;
        })
        .run(&client)
        .await
        .unwrap();
    assert_eq!(first.status, RunStatus::Cancelled);
    assert_eq!(first.results.len(), 20, "every datapoint counted once");
    let done_before = first
        .results
        .iter()
        .filter(|r| r.outcome == Outcome::Passed)
        .count();
    // The stop lands while the other worker may finish one or two more.
    assert!((9..20).contains(&done_before), "{done_before}");
    assert_eq!(
        server.with(|s| s.runs[&first.run_id]["status"].clone()),
        "cancelled"
    );
    assert_eq!(
        server.sessions().len(),
        done_before,
        "cancelled datapoints are not recorded"
    );

    let ran = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran);
    let resumed = doubling(Experiment::new("interrupted"))
        .datapoints(rows(20))
        .task(move |row: Datapoint| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, String>(json!({"double": row.inputs["n"].as_u64().unwrap() * 2})) }
        })
        .resume(first.run_id.clone())
        .run(&client)
        .await
        .unwrap();
    assert_eq!(
        ran.load(Ordering::SeqCst),
        20 - done_before,
        "only the missing ones ran"
    );
    assert_eq!(resumed.skipped, done_before);
    assert_eq!(resumed.status, RunStatus::Completed);
    let run = server.with(|s| s.runs[&first.run_id].clone());
    assert_eq!(run["status"], "completed");
    assert_eq!(run["session_ids"].as_array().unwrap().len(), 20);
    assert!(
        run["metadata"].get("status_reason").is_none(),
        "the stop's reason no longer holds: {run}"
    );
    let datapoints: HashSet<String> = server
        .sessions()
        .iter()
        .map(|s| s["metadata"]["datapoint_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        datapoints.len(),
        20,
        "each datapoint recorded once over both"
    );
    assert_eq!(server.sessions().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_refuses_a_run_that_does_not_exist_and_other_rows() {
    let server = RunsServer::start().await;
    let client = client(&server);
    let missing = doubling(Experiment::new("x"))
        .datapoints(rows(2))
        .resume("6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f")
        .run(&client)
        .await
        .unwrap_err();
    let ExperimentError::Api(Error::InvalidInput { field, .. }) = &missing else {
        panic!("{missing:?}")
    };
    assert_eq!(field, "resume");
    let first = doubling(Experiment::new("x"))
        .datapoints(rows(2))
        .run(&client)
        .await
        .unwrap();
    let other = doubling(Experiment::new("x"))
        .datapoints(rows(3))
        .resume(first.run_id)
        .run(&client)
        .await
        .unwrap_err();
    assert!(
        other.to_string().contains("are not the ones run"),
        "{other}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_fill_one_run_and_the_last_completes_it() {
    let server = RunsServer::start().await;
    let client = client(&server);
    let run_id = "0c9a8b7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d";
    let mut reports = Vec::new();
    for index in 0..3 {
        reports.push(
            doubling(Experiment::new("sharded"))
                .datapoints(rows(30))
                .run_id(run_id)
                .shard(index, 3)
                .run(&client)
                .await
                .unwrap(),
        );
    }
    let ran: usize = reports.iter().map(|r| r.results.len()).sum();
    assert_eq!(ran, 30, "each datapoint in exactly one shard");
    assert!(
        reports
            .iter()
            .all(|r| r.results.len() < 30 && !r.results.is_empty())
    );
    assert_eq!(reports[0].status, RunStatus::Running);
    assert_eq!(reports[1].status, RunStatus::Running);
    assert_eq!(reports[2].status, RunStatus::Completed);
    let creates = server
        .routes()
        .iter()
        .filter(|r| *r == "POST /v1/runs")
        .count();
    assert_eq!(creates, 1, "the first creates, the others join");
    let run = server.with(|s| s.runs[run_id].clone());
    assert_eq!(run["status"], "completed");
    assert_eq!(run["session_ids"].as_array().unwrap().len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_last_shard_never_comes_is_closed_explicitly_with_the_sessions_it_has() {
    let server = RunsServer::start().await;
    let client = client(&server);
    let run_id = "7d0c9a8b-6e5f-4a3b-9c2d-1e0f9a8b7c6d";
    let first = doubling(Experiment::new("sharded"))
        .datapoints(rows(20))
        .run_id(run_id)
        .shard(0, 2)
        .run(&client)
        .await
        .unwrap();
    assert_eq!(first.status, RunStatus::Running, "shard 1 never comes");
    let summary = honeyhive::experiment::close_run(&client, run_id, RunStatus::Failed)
        .await
        .unwrap();
    let run = server.with(|s| s.runs[run_id].clone());
    assert_eq!(run["status"], "failed");
    assert_eq!(
        run["session_ids"].as_array().unwrap().len(),
        first.results.len(),
        "every session the shard recorded"
    );
    assert!(run["metadata"].get("status_reason").is_none(), "{run}");
    assert_eq!(summary.datapoints.len(), first.results.len());

    for (id, status, field) in [
        ("not-a-run", RunStatus::Completed, "run_id"),
        (run_id, RunStatus::Running, "status"),
    ] {
        match honeyhive::experiment::close_run(&client, id, status).await {
            Err(Error::InvalidInput { field: named, .. }) => assert_eq!(named, field),
            other => panic!("{id} {status}: {other:?}"),
        }
    }
    let missing = "00000000-0000-4000-8000-000000000000";
    assert!(matches!(
        honeyhive::experiment::close_run(&client, missing, RunStatus::Completed).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regression_against_the_base_run_breaks_the_gate() {
    let server = RunsServer::start().await;
    let client = client(&server);
    let base = doubling(Experiment::new("v1"))
        .datapoints(rows(10))
        .run(&client)
        .await
        .unwrap();
    // The new version gets half of them wrong.
    let err = Experiment::new("v2")
        .datapoints(rows(10))
        .task(|row: Datapoint| async move {
            let n = row.inputs["n"].as_u64().unwrap();
            Ok::<_, String>(json!({"double": if n.is_multiple_of(2) { n * 2 } else { n }}))
        })
        .evaluator("exact", |outputs: &Value, row: &Datapoint| {
            row.ground_truth.as_ref() == Some(outputs)
        })
        .compare_to(base.run_id.clone())
        .gate("exact drop > 0.1".parse::<Gate>().unwrap())
        .gate(Gate::max_drop("latency", 1.0))
        .run(&client)
        .await
        .unwrap_err();
    let ExperimentError::Gate { report, failures } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(failures.len(), 2);
    assert_eq!((failures[0].old, failures[0].new), (Some(1.0), Some(0.5)));
    assert_eq!(
        (failures[1].old, failures[1].new),
        (None, None),
        "a gate that cannot be checked fails"
    );
    let comparison = report.comparison.as_ref().unwrap();
    assert_eq!(comparison.delta("exact"), Some(-0.5));
    assert!(
        err.to_string()
            .starts_with("2 gates broken: exact went from 1 to 0.5"),
        "{err}"
    );
    assert!(report.to_string().contains("-0.5000"), "{report}");
    // A gate within its bound passes.
    let ok = doubling(Experiment::new("v3"))
        .datapoints(rows(10))
        .compare_to(base.run_id)
        .gate(Gate::max_drop_percent("exact", 1.0))
        .run(&client)
        .await
        .unwrap();
    assert_eq!(ok.comparison.unwrap().delta("exact"), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosted_dataset_is_read_and_its_ids_recorded() {
    let server = RunsServer::start().await;
    server.add_dataset(
        "ds-1",
        vec![
            json!({"id": "dp-a", "inputs": {"n": 1}, "ground_truth": {"double": 2}}),
            json!({"id": "dp-b", "inputs": {"n": 2}, "ground_truth": {"double": 4}}),
        ],
    );
    server.add_dataset("ds-empty", vec![]);
    let client = client(&server);
    let report = doubling(Experiment::new("hosted"))
        .dataset("ds-1")
        .repetitions(2)
        .run(&client)
        .await
        .unwrap();
    assert_eq!(report.passed(), 4);
    let created = server.with(|s| s.runs[&report.run_id].clone());
    assert_eq!(created["dataset_id"], "ds-1");
    assert_eq!(created["datapoint_ids"], json!(["dp-a", "dp-b"]));
    let sessions = server.sessions();
    assert_eq!(sessions.len(), 4);
    assert!(
        sessions
            .iter()
            .all(|s| s["metadata"]["dataset_id"] == "ds-1")
    );
    let reps: Vec<(String, u64)> = sessions
        .iter()
        .map(|s| {
            (
                s["metadata"]["datapoint_id"].as_str().unwrap().to_owned(),
                s["metadata"]["repetition"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(reps.contains(&("dp-b".into(), 1)));

    let missing = doubling(Experiment::new("h"))
        .dataset("ds-none")
        .run(&client)
        .await
        .unwrap_err();
    assert!(
        matches!(&missing, ExperimentError::Api(Error::NotFound { resource: "dataset", id, .. }) if id == "ds-none"),
        "{missing:?}"
    );
    let empty = doubling(Experiment::new("h"))
        .dataset("ds-empty")
        .run(&client)
        .await
        .unwrap_err();
    assert!(
        empty.to_string().contains("ds-empty has no datapoints"),
        "{empty}"
    );
}

#[tokio::test]
async fn bad_input_is_refused_before_any_request() {
    let server = RunsServer::start().await;
    let client = client(&server);
    let field = |err: ExperimentError| match err {
        ExperimentError::Api(Error::InvalidInput { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    let cases = [
        (Experiment::new("x").datapoints(rows(1)), "task"),
        (doubling(Experiment::new("x")), "dataset"),
        (doubling(Experiment::new("x")).datapoints([]), "datapoints"),
        (
            doubling(Experiment::new("x")).datapoints([Datapoint::new(json!(["a"]))]),
            "datapoints[0].inputs",
        ),
        (
            doubling(Experiment::new("x"))
                .datapoints(rows(1))
                .run_id("ci-42"),
            "run_id",
        ),
        (
            doubling(Experiment::new("x"))
                .datapoints(rows(1))
                .shard(0, 2),
            "shard",
        ),
        (
            doubling(Experiment::new("x"))
                .datapoints(rows(1))
                .shard(2, 2)
                .run_id("0c9a8b7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d"),
            "shard",
        ),
        (
            doubling(Experiment::new("x"))
                .datapoints(rows(1))
                .gate(Gate::max_drop("exact", 0.1)),
            "gate",
        ),
        (
            doubling(Experiment::new("x"))
                .datapoints(rows(1))
                .concurrency(0),
            "concurrency",
        ),
        (
            doubling(Experiment::new("x"))
                .datapoints(rows(1))
                .evaluator("exact", |_: &Value, _: &Datapoint| 1),
            "evaluator",
        ),
    ];
    for (exp, expected) in cases {
        assert_eq!(field(exp.run(&client).await.unwrap_err()), expected);
    }
    let unrecorded = doubling(Experiment::new("x"))
        .datapoints(rows(1))
        .record(false)
        .compare_to("0c9a8b7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d")
        .run(&client)
        .await
        .unwrap_err();
    assert_eq!(field(unrecorded), "record");
    let per_event = honeyhive::Logger::new(&client, honeyhive::LoggerConfig::default()).unwrap();
    let refused = doubling(Experiment::new("x"))
        .datapoints(rows(1))
        .logger(per_event)
        .run(&client)
        .await
        .unwrap_err();
    assert_eq!(field(refused), "logger");
    assert_eq!(server.requests().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_bounds_the_tasks_in_flight_and_outputs_carry_metrics() {
    let server = RunsServer::start().await;
    let now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (n, m) = (Arc::clone(&now), Arc::clone(&most));
    let report = Experiment::new("bounded")
        .datapoints(rows(40))
        .concurrency(4)
        .task(move |_: Datapoint| {
            let (now, most) = (Arc::clone(&n), Arc::clone(&m));
            async move {
                let in_flight = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(in_flight, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, String>(TaskOutput::from(json!({"a": 1})).metric("tokens", 7))
            }
        })
        .run(&client(&server))
        .await
        .unwrap();
    assert_eq!(most.load(Ordering::SeqCst), 4);
    assert_eq!(report.aggregates["tokens"].mean, 7.0);
    assert_eq!(server.sessions()[0]["metrics"], json!({"tokens": 7.0}));
}

#[cfg(feature = "tracing")]
#[tokio::test]
async fn the_tasks_own_spans_land_in_the_datapoints_session() {
    use honeyhive::tracing::HoneyHiveLayer;
    use honeyhive::{Logger, LoggerConfig, Route};
    use tracing_subscriber::layer::SubscriberExt;

    let server = RunsServer::start().await;
    let client = client(&server);
    let logger = Logger::new(&client, LoggerConfig::default().route(Route::EventBatch)).unwrap();
    let subscriber = tracing_subscriber::registry().with(HoneyHiveLayer::new(logger.clone()));
    // A current-thread runtime: every task sees this thread's subscriber.
    let _default = tracing::subscriber::set_default(subscriber);
    let report = Experiment::new("traced")
        .datapoints(rows(3))
        .task(|row: Datapoint| async move {
            let n = row.inputs["n"].as_u64().unwrap();
            tracing::info_span!("model call", honeyhive.event_type = "model", inputs.n = n)
                .in_scope(|| {});
            Ok::<_, String>(json!({"double": n * 2}))
        })
        .logger(logger.clone())
        .run(&client)
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    let events: Vec<Value> =
        server.with(|s| s.order.iter().map(|id| s.events[id].clone()).collect());
    for result in &report.results {
        let of_session: Vec<&Value> = events
            .iter()
            .filter(|e| e["session_id"] == result.session_id.as_str())
            .collect();
        let kinds: Vec<&str> = of_session
            .iter()
            .map(|e| e["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == "session").count(),
            1,
            "one session event: {kinds:?}"
        );
        let model = of_session
            .iter()
            .find(|e| e["event_type"] == "model")
            .expect("the task's span in the session");
        let row = report
            .results
            .iter()
            .position(|r| r.session_id == result.session_id)
            .unwrap();
        assert_eq!(
            model["inputs"]["n"], row,
            "the span of this datapoint's task"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_mock_every_request_keeps_to_the_spec_and_the_summary_and_comparison_come_back() {
    let mock = honeyhive::testing::MockHoneyHive::start_async().await;
    let client = mock.client().unwrap();
    let base = doubling(Experiment::new("v1"))
        .datapoints(rows(6))
        .run(&client)
        .await
        .unwrap();
    let report = doubling(Experiment::new("v2"))
        .datapoints(rows(6))
        .evaluator("half", |_: &Value, row: &Datapoint| {
            row.inputs["n"].as_u64().unwrap().is_multiple_of(2)
        })
        .compare_to(base.run_id.clone())
        .gate(Gate::max_drop("exact", 0.0))
        .run(&client)
        .await
        .unwrap();
    assert_eq!(mock.violations(), vec![], "every request as the spec says");
    assert_eq!(
        (report.passed(), report.failed()),
        (3, 3),
        "a false score fails its datapoint"
    );
    let summary = report.summary.as_ref().unwrap();
    assert_eq!(summary.datapoints.len(), 6, "{summary:?}");
    assert_eq!(summary.failed.len(), 3, "{summary:?}");
    let comparison = report.comparison.as_ref().unwrap();
    assert_eq!(comparison.delta("exact"), Some(0.0), "{comparison:?}");
    assert_eq!(comparison.changed.len(), 3, "{comparison:?}");
    // Resume on the mock: nothing left to run, the run closed again.
    let again = doubling(Experiment::new("v1"))
        .datapoints(rows(6))
        .resume(base.run_id)
        .run(&client)
        .await
        .unwrap();
    assert_eq!((again.results.len(), again.skipped), (0, 6));
    assert_eq!(mock.violations(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_not_delivered_within_the_budget_close_the_run_failed_with_the_reason() {
    // Every batch of events fails; the run's own calls go through.
    let server = RunsServer::failing(|_, path, _| path == "/v1/events/batch").await;
    let report = doubling(Experiment::new("undelivered"))
        .datapoints(rows(3))
        .flush_timeout(Duration::from_millis(300))
        .run(&client(&server))
        .await
        .unwrap();
    assert_eq!(report.passed(), 3, "the datapoints themselves went fine");
    assert_eq!(report.status, RunStatus::Failed);
    let reason = report.status_reason.clone().unwrap();
    assert!(
        reason.contains("of 3 sessions were not delivered within 300 ms"),
        "{reason}"
    );
    let recording = report.recording.as_ref().unwrap();
    assert!(
        !recording.complete || !recording.dead_letters.is_empty(),
        "{recording:?}"
    );
    let run = server.with(|s| s.runs[&report.run_id].clone());
    assert_eq!(run["status"], "failed");
    assert_eq!(run["metadata"]["status_reason"], reason.as_str());
    assert_eq!(
        run["session_ids"],
        json!([]),
        "only delivered sessions are listed"
    );
}

/// The field an experiment's refusal names.
fn refused_field(err: &ExperimentError) -> &str {
    match err {
        ExperimentError::Api(Error::InvalidInput { field, .. }) => field,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_and_shards_refuse_a_dataset_other_than_the_runs() {
    let server = RunsServer::start().await;
    for id in ["ds-1", "ds-2"] {
        server.add_dataset(
            id,
            vec![json!({"id": "dp-a", "inputs": {"n": 1}, "ground_truth": {"double": 2}})],
        );
    }
    let client = client(&server);
    let hosted = doubling(Experiment::new("h"))
        .dataset("ds-1")
        .run(&client)
        .await
        .unwrap();
    let local = doubling(Experiment::new("l"))
        .datapoints(rows(2))
        .run(&client)
        .await
        .unwrap();
    let before = server.sessions().len();
    let other_hosted = doubling(Experiment::new("h"))
        .dataset("ds-2")
        .resume(hosted.run_id.clone())
        .run(&client)
        .await
        .unwrap_err();
    assert_eq!(refused_field(&other_hosted), "dataset", "{other_hosted}");
    assert!(other_hosted.to_string().contains("ds-1"), "{other_hosted}");
    let joined = doubling(Experiment::new("h"))
        .dataset("ds-2")
        .run_id(hosted.run_id.clone())
        .shard(0, 2)
        .run(&client)
        .await
        .unwrap_err();
    assert_eq!(refused_field(&joined), "dataset", "{joined}");
    let local_for_hosted = doubling(Experiment::new("h"))
        .datapoints(rows(2))
        .resume(hosted.run_id)
        .run(&client)
        .await
        .unwrap_err();
    assert_eq!(refused_field(&local_for_hosted), "datapoints");
    let hosted_for_local = doubling(Experiment::new("l"))
        .dataset("ds-1")
        .resume(local.run_id)
        .run(&client)
        .await
        .unwrap_err();
    assert_eq!(refused_field(&hosted_for_local), "dataset");
    assert_eq!(server.sessions().len(), before, "nothing ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_id_given_again_without_resume_is_refused_not_run_twice() {
    let server = RunsServer::start().await;
    let client = client(&server);
    let run_id = "1d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a";
    let first = doubling(Experiment::new("once"))
        .datapoints(rows(3))
        .run_id(run_id)
        .run(&client)
        .await
        .unwrap();
    assert_eq!(first.status, RunStatus::Completed);
    let again = doubling(Experiment::new("once"))
        .datapoints(rows(3))
        .run_id(run_id)
        .run(&client)
        .await
        .unwrap_err();
    assert_eq!(refused_field(&again), "run_id");
    assert!(again.to_string().contains("resume"), "{again}");
    assert_eq!(server.sessions().len(), 3, "no datapoint ran twice");
    let run = server.with(|s| s.runs[run_id].clone());
    assert_eq!(run["session_ids"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_base_run_is_refused_first_and_a_failed_comparison_is_shown() {
    // Every comparison read fails.
    let server = RunsServer::failing(|_, path, _| path.contains("/compare/")).await;
    let client = client(&server);
    let missing = doubling(Experiment::new("v2"))
        .datapoints(rows(2))
        .compare_to("2e3f4a5b-6c7d-4e8f-9a0b-1c2d3e4f5a6b")
        .run(&client)
        .await
        .unwrap_err();
    assert_eq!(refused_field(&missing), "compare_to");
    assert!(server.with(|s| s.runs.is_empty()) && server.sessions().is_empty());
    let base = doubling(Experiment::new("v1"))
        .datapoints(rows(2))
        .run(&client)
        .await
        .unwrap();
    let report = doubling(Experiment::new("v2"))
        .datapoints(rows(2))
        .compare_to(base.run_id)
        .run(&client)
        .await
        .unwrap();
    assert!(report.comparison.is_none());
    let error = report
        .comparison_error
        .as_ref()
        .expect("the comparison's error");
    assert!(
        report
            .to_string()
            .contains(&format!("the comparison with the base run failed: {error}")),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_close_keeps_the_report_and_resume_closes_the_run() {
    use std::sync::atomic::AtomicBool;
    let closing_fails = Arc::new(AtomicBool::new(true));
    let fails = Arc::clone(&closing_fails);
    let server = RunsServer::failing(move |method, path, _| {
        method == hyper::Method::PUT
            && path.starts_with("/v1/runs/")
            && fails.load(Ordering::SeqCst)
    })
    .await;
    let client = client(&server);
    let err = doubling(Experiment::new("unclosed"))
        .datapoints(rows(3))
        .run(&client)
        .await
        .unwrap_err();
    let ExperimentError::Close { report, error } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(report.passed(), 3, "the report is kept");
    assert!(error.status().is_some(), "{error:?}");
    assert!(err.to_string().contains("resume it to close it"), "{err}");
    assert_eq!(err.report().map(|r| r.results.len()), Some(3));
    let run_id = report.run_id.clone();
    assert_eq!(
        server.with(|s| s.runs[&run_id]["status"].clone()),
        "running"
    );
    closing_fails.store(false, Ordering::SeqCst);
    let resumed = doubling(Experiment::new("unclosed"))
        .datapoints(rows(3))
        .resume(run_id.clone())
        .run(&client)
        .await
        .unwrap();
    assert!(resumed.results.is_empty(), "nothing ran again");
    let run = server.with(|s| s.runs[&run_id].clone());
    assert_eq!(run["status"], "completed");
    assert_eq!(run["session_ids"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shard_that_closes_the_run_keeps_the_runs_metadata() {
    let server = RunsServer::start().await;
    let client = client(&server);
    let run_id = "4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d";
    let first = doubling(Experiment::new("sharded"))
        .datapoints(rows(10))
        .run_id(run_id)
        .shard(0, 2)
        .metadata(json!({"model": "m-1", "commit": "abc"}))
        .run(&client)
        .await
        .unwrap();
    assert_eq!(first.status, RunStatus::Running);
    let last = doubling(Experiment::new("sharded"))
        .datapoints(rows(10))
        .run_id(run_id)
        .shard(1, 2)
        .metadata(json!({"commit": "def"}))
        .run(&client)
        .await
        .unwrap();
    assert_eq!(last.status, RunStatus::Completed);
    let run = server.with(|s| s.runs[run_id].clone());
    assert_eq!(run["status"], "completed");
    assert_eq!(run["metadata"]["model"], "m-1", "{run}");
    assert_eq!(
        run["metadata"]["commit"], "def",
        "the closing shard's on top"
    );
    assert!(run["metadata"]["offline_dataset_id"].is_string(), "{run}");
}
