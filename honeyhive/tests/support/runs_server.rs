//! A loopback server that remembers runs and sessions, as far as an
//! experiment needs: `POST/GET/PUT /v1/runs[/{id}]`, the run's summary and
//! comparison computed from the session events it received, event batches
//! recorded once per `event_id`, and hosted datasets. A `fail` plan answers
//! chosen requests 500 before they are processed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub body: Value,
    /// Whether the plan failed it.
    pub failed: bool,
}

#[derive(Default)]
pub struct State {
    /// Runs by id, as created then updated.
    pub runs: HashMap<String, Value>,
    /// Events by event_id, first arrival kept.
    pub events: HashMap<String, Value>,
    /// Event ids in the order first recorded.
    pub order: Vec<String>,
    /// Every request.
    pub seen: Vec<Seen>,
    /// Datasets: id → datapoints (each `{"id", "inputs", ...}`).
    pub datasets: HashMap<String, Vec<Value>>,
}

type Plan = Box<dyn Fn(&Method, &str, usize) -> bool + Send + Sync>;

struct Shared {
    state: Mutex<State>,
    requests: AtomicUsize,
    fail: Plan,
}

/// The running server; stops when dropped (its accept task with it).
pub struct RunsServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _accept: super::Aborting,
}

impl RunsServer {
    /// A server that fails nothing.
    pub async fn start() -> Self {
        Self::failing(|_, _, _| false).await
    }

    /// A server that answers 500 (without processing) the requests for
    /// which `fail(method, path, number)` is true.
    pub async fn failing(
        fail: impl Fn(&Method, &str, usize) -> bool + Send + Sync + 'static,
    ) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            requests: AtomicUsize::new(0),
            fail: Box::new(fail),
        });
        let for_accept = Arc::clone(&shared);
        let (addr, accept) = super::serve_loopback(move |stream| {
            let shared = Arc::clone(&for_accept);
            async move {
                let service = hyper::service::service_fn(move |request| {
                    let shared = Arc::clone(&shared);
                    async move { Ok::<_, Infallible>(answer(&shared, request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
        })
        .await;
        RunsServer {
            addr,
            shared,
            _accept: accept,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Reads the state.
    pub fn with<T>(&self, read: impl FnOnce(&mut State) -> T) -> T {
        read(&mut self.shared.state.lock().expect("state"))
    }

    /// The session events recorded (those with `event_type: session`).
    pub fn sessions(&self) -> Vec<Value> {
        self.with(|s| {
            s.order
                .iter()
                .map(|id| s.events[id].clone())
                .filter(|e| e["event_type"] == "session")
                .collect()
        })
    }

    /// The requests that were not failed, as `METHOD path`.
    pub fn routes(&self) -> Vec<String> {
        self.with(|s| {
            s.seen
                .iter()
                .filter(|r| !r.failed)
                .map(|r| format!("{} {}", r.method, r.path.split('?').next().unwrap_or("")))
                .collect()
        })
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.with(|s| s.seen.clone())
    }

    pub fn add_dataset(&self, id: &str, datapoints: Vec<Value>) {
        self.with(|s| s.datasets.insert(id.to_owned(), datapoints));
    }
}

fn reply(status: u16, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid answer")
}

/// The sessions of `run_id`: `(datapoint_id, session_id, passed, metrics)`.
fn sessions_of(state: &State, run_id: &str) -> Vec<(Value, String, bool, Value)> {
    state
        .order
        .iter()
        .map(|id| &state.events[id])
        .filter(|e| e["event_type"] == "session" && e["metadata"]["run_id"] == run_id)
        .map(|e| {
            (
                e["metadata"]["datapoint_id"].clone(),
                e["session_id"].as_str().unwrap_or_default().to_owned(),
                e["error"].is_null(),
                e["metrics"].clone(),
            )
        })
        .collect()
}

fn means(state: &State, run_id: &str) -> HashMap<String, f64> {
    let mut sums: HashMap<String, (f64, f64)> = HashMap::new();
    for (_, _, _, metrics) in sessions_of(state, run_id) {
        for (name, value) in metrics.as_object().into_iter().flatten() {
            let v = value
                .as_f64()
                .or_else(|| value.as_bool().map(|b| if b { 1.0 } else { 0.0 }));
            if let Some(v) = v {
                let e = sums.entry(name.clone()).or_default();
                e.0 += v;
                e.1 += 1.0;
            }
        }
    }
    sums.into_iter().map(|(k, (s, n))| (k, s / n)).collect()
}

async fn answer(shared: &Shared, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let bytes = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let number = shared.requests.fetch_add(1, Ordering::SeqCst);
    let failed = (shared.fail)(&method, &path, number);
    let mut state = shared.state.lock().expect("state");
    state.seen.push(Seen {
        method: method.to_string(),
        path: path.clone(),
        body: body.clone(),
        failed,
    });
    if failed {
        return reply(500, json!({"error": "injected"}));
    }
    let route = path.split('?').next().unwrap_or("").to_owned();
    let parts: Vec<&str> = route.trim_start_matches('/').split('/').collect();
    match (method.clone(), parts.as_slice()) {
        (Method::POST, ["v1", "events", "batch"]) => {
            let mut ids = Vec::new();
            for event in body["events"].as_array().into_iter().flatten() {
                let id = event["event_id"].as_str().unwrap_or_default().to_owned();
                if !state.events.contains_key(&id) {
                    state.events.insert(id.clone(), event.clone());
                    state.order.push(id.clone());
                }
                ids.push(id);
            }
            reply(200, json!({"event_ids": ids, "success": true}))
        }
        (Method::POST, ["v1", "runs"]) => {
            let id = body["run_id"].as_str().unwrap_or_default().to_owned();
            if state.runs.contains_key(&id) {
                return reply(409, json!({"error": "a run with this id exists"}));
            }
            let mut run = json!({"id": id, "run_id": id, "name": null, "status": "pending",
                "dataset_id": null, "dataset_name": null, "description": null, "configuration": {},
                "created_at": "2026-01-01T00:00:00Z", "updated_at": null, "event_ids": [],
                "session_ids": [], "datapoint_ids": [], "is_active": true, "metadata": {},
                "metrics": {}, "results": {}, "scope_id": "project-1", "scope_type": "project"});
            for (key, value) in body.as_object().into_iter().flatten() {
                run[key] = value.clone();
            }
            state.runs.insert(id.clone(), run.clone());
            reply(200, json!({"run_id": id, "evaluation": run}))
        }
        (Method::GET, ["v1", "runs", id]) => match state.runs.get(*id) {
            Some(run) => reply(200, json!({"evaluation": run})),
            None => reply(404, json!({"error": "no such run"})),
        },
        (Method::PUT, ["v1", "runs", id]) => {
            let Some(run) = state.runs.get_mut(*id) else {
                return reply(404, json!({"error": "no such run"}));
            };
            for (key, value) in body.as_object().into_iter().flatten() {
                run[key] = value.clone();
            }
            reply(200, json!({"evaluation": run.clone(), "warning": null}))
        }
        (Method::GET, ["v1", "runs", id, "summary"]) => {
            if !state.runs.contains_key(*id) {
                return reply(404, json!({"error": "no such run"}));
            }
            let sessions = sessions_of(&state, id);
            let datapoints: Vec<Value> = sessions
                .iter()
                .map(|(dp, session, passed, _)| {
                    json!({"datapoint_id": dp, "session_id": session, "passed": passed, "metrics": []})
                })
                .collect();
            let passed: Vec<&str> = sessions
                .iter()
                .filter(|s| s.2)
                .map(|s| s.1.as_str())
                .collect();
            let failed: Vec<&str> = sessions
                .iter()
                .filter(|s| !s.2)
                .map(|s| s.1.as_str())
                .collect();
            reply(
                200,
                json!({"status": state.runs[*id]["status"], "success": true, "passed": passed,
                       "failed": failed, "datapoints": datapoints,
                       "metrics": {"aggregation_function": "average", "details": []},
                       "event_details": [], "run_object": state.runs[*id]}),
            )
        }
        (Method::GET, ["v1", "runs", new, "compare", old]) => {
            let (n, o) = (means(&state, new), means(&state, old));
            let mut names: Vec<&String> = n.keys().chain(o.keys()).collect();
            names.sort();
            names.dedup();
            let metrics: Vec<Value> = names
                .iter()
                .map(|name| {
                    json!({"metric_name": name, "metric_type": null, "difference": null,
                           "percentage_change": null, "old_aggregate": o.get(*name),
                                   "new_aggregate": n.get(*name)})
                })
                .collect();
            reply(
                200,
                json!({"metrics": metrics, "commonDatapoints": [], "event_details": [],
                              "new_run": state.runs.get(*new), "old_run": state.runs.get(*old)}),
            )
        }
        (Method::GET, ["v1", "datasets"]) => {
            let wanted = query(&path, "dataset_id");
            let datasets: Vec<Value> = state
                .datasets
                .iter()
                .filter(|(id, _)| wanted.first().is_none_or(|w| w == *id))
                .map(|(id, points)| {
                    let ids: Vec<&Value> = points.iter().map(|p| &p["id"]).collect();
                    json!({"id": id, "name": format!("set-{id}"), "datapoints": ids,
                           "created_at": null, "description": null, "updated_at": null})
                })
                .collect();
            reply(200, json!({"datasets": datasets}))
        }
        (Method::GET, ["v1", "datapoints"]) => {
            let wanted = query(&path, "datapoint_ids");
            let found: Vec<Value> = state
                .datasets
                .values()
                .flatten()
                .filter(|p| wanted.iter().any(|w| p["id"] == w.as_str()))
                .map(|p| {
                    let mut full = json!({"created_at": "2026-01-01T00:00:00Z", "ground_truth": null,
                        "history": [], "linked_datasets": [], "linked_event": null, "metadata": null,
                        "updated_at": null});
                    for (k, v) in p.as_object().into_iter().flatten() {
                        full[k] = v.clone();
                    }
                    full
                })
                .collect();
            reply(200, json!({"datapoints": found}))
        }
        _ => reply(404, json!({"error": format!("no route {method} {route}")})),
    }
}

/// Every value of `key` in the query string (repeated keys, or commas).
fn query(path: &str, key: &str) -> Vec<String> {
    let Some((_, query)) = path.split_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| {
            *k == key || k.trim_end_matches("%5B%5D") == key || k.trim_end_matches("[]") == key
        })
        .flat_map(|(_, v)| {
            v.split(',')
                .map(|s| s.replace("%2D", "-"))
                .collect::<Vec<_>>()
        })
        .collect()
}
