//! The Logger's batches (`Route::EventBatch`) against a loopback server
//! that fails them in the ways real servers and networks do.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use honeyhive::StatusCode;
use honeyhive::{Client, Event, Logger, LoggerConfig, RetryPolicy, Route};
use serde_json::Value;
use support::fault_server::{Fault, FaultServer};

const KEY: &str = "hh-batch-key";

fn client(server: &FaultServer, retry: RetryPolicy) -> Client {
    Client::builder()
        .api_key(KEY)
        .base_url(server.base_url())
        .timeout(Duration::from_secs(1))
        .retry_policy(retry)
        .build()
        .unwrap()
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(8)
        .initial_backoff(Duration::from_millis(2))
        .max_backoff(Duration::from_millis(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_30_percent_faults_and_half_recorded_batches_no_event_is_lost_or_renamed() {
    let transient = [
        Fault::TooManyRequests("0".into()),
        Fault::Unavailable,
        Fault::BadGatewayHtml,
        Fault::Drop { processed: false },
        Fault::Drop { processed: true },
        Fault::Truncated,
        Fault::PartlyRecorded,
        Fault::PartlyRecorded,
    ];
    let server = FaultServer::start(move |arrival| {
        let roll = support::mix(arrival.number);
        if arrival.seen_before < 4 && roll % 100 < 30 {
            transient[(roll / 100) as usize % transient.len()].clone()
        } else {
            Fault::None
        }
    })
    .await;
    let logger = Logger::new(
        &client(&server, fast_retries()),
        LoggerConfig::default()
            .route(Route::EventBatch)
            .max_in_flight(8)
            .adaptive_concurrency(false),
    )
    .unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let logger = logger.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..2_500 {
                    let id = format!("task{t}-{i}");
                    let event = Event::chain("c")
                        .event_id(id.clone())
                        .child(Event::tool("t").event_id(format!("{id}-kid")));
                    logger.log(format!("session-{t}"), event).unwrap();
                    ids.push(id);
                    if i % 100 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                ids
            })
        })
        .collect();
    let mut logged = HashSet::new();
    for task in tasks {
        logged.extend(task.await.unwrap());
    }
    let report = logger.shutdown(Duration::from_secs(60)).await;
    assert!(report.complete, "{:?}", report.stats);
    assert_eq!(
        (report.stats.sent, report.stats.failed, report.stats.dropped),
        (10_000, 0, 0)
    );
    assert!(report.stats.retried > 0);

    // Every event (roots and children) recorded, each once.
    let recorded = server.recorded();
    assert_eq!(recorded.len(), 20_000);
    let expected: HashSet<String> = logged
        .iter()
        .flat_map(|id| [id.clone(), format!("{id}-kid")])
        .collect();
    assert_eq!(recorded.into_iter().collect::<HashSet<_>>(), expected);
    // A repeat delivery carries the same event under the same id: every
    // body that carried an event carried it byte for byte the same.
    let mut repeated = 0;
    for id in logged.iter().take(500) {
        let copies: Vec<Value> = server
            .bodies(id)
            .iter()
            .map(|body| {
                let body: Value = serde_json::from_slice(body).unwrap();
                body["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["event_id"] == id.as_str())
                    .cloned()
                    .unwrap()
            })
            .collect();
        repeated += usize::from(copies.len() > 1);
        assert!(
            copies.windows(2).all(|pair| pair[0] == pair[1]),
            "{id}: {copies:?}"
        );
    }
    assert!(repeated > 0, "some batches were sent again");
    let partly = server
        .faults()
        .get(&Fault::PartlyRecorded)
        .copied()
        .unwrap_or(0);
    assert!(partly > 0, "some batches were half recorded");
}

#[tokio::test(flavor = "current_thread")]
async fn one_event_the_server_refuses_costs_only_itself_in_at_most_15_requests() {
    let server = FaultServer::start(|arrival| {
        if arrival.event_ids.iter().any(|id| id == "e-37") {
            Fault::Status(400)
        } else {
            Fault::None
        }
    })
    .await;
    let logger = Logger::new(
        &client(&server, fast_retries()),
        LoggerConfig::default().route(Route::EventBatch),
    )
    .unwrap();
    for i in 0..100 {
        logger
            .log("s", Event::tool("t").event_id(format!("e-{i}")))
            .unwrap();
    }
    let report = logger.shutdown(Duration::from_secs(10)).await;
    assert!(report.complete);
    assert_eq!((report.stats.sent, report.stats.failed), (99, 1));
    let recorded: HashSet<String> = server.recorded().into_iter().collect();
    assert_eq!(recorded.len(), 99);
    assert!(!recorded.contains("e-37"));
    let letter = &report.dead_letters[0];
    assert_eq!(letter.event_id.as_deref(), Some("e-37"));
    assert_eq!(letter.status, Some(StatusCode::BAD_REQUEST));
    assert!(
        letter.reason.contains("refused"),
        "the server's answer: {}",
        letter.reason
    );
    assert!(server.requests() <= 15, "{} requests", server.requests());
    let by_fault: HashMap<_, _> = server.faults().into_iter().collect();
    assert!(by_fault[&Fault::Status(400)] >= 7, "one 400 per halving");
}
