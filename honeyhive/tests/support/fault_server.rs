//! A loopback HTTP/1.1 server for fault injection: it answers
//! `POST /session/{id}/event` and `POST /v1/events/batch` like the API,
//! except when its plan says to fail the request, in one of the ways real
//! servers and networks fail.
//!
//! It records events by `event_id`, the way an idempotent API would: an event
//! it already processed is not recorded again, however often it arrives.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::http::{read_request, write};

/// How to answer one request.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// The documented 200.
    None,
    /// 429 with this `Retry-After` value.
    TooManyRequests(String),
    /// 503 with a JSON body.
    Unavailable,
    /// 500 with a JSON body.
    Internal,
    /// 502 with an HTML body, as a proxy would send.
    BadGatewayHtml,
    /// Close the connection without answering; `processed` says whether the
    /// event was recorded first (the answer was lost, not the request).
    Drop { processed: bool },
    /// Process the event, then answer this late.
    Slow(Duration),
    /// Process the event, then send a 200 whose body stops short of its
    /// Content-Length, and close.
    Truncated,
    /// Any other status, with a JSON body.
    Status(u16),
    /// Process the first half of a batch's events, then answer 500 ("events
    /// partially created", as the spec has it).
    PartlyRecorded,
}

impl Fault {
    fn processes(&self) -> bool {
        matches!(
            self,
            Fault::None | Fault::Slow(_) | Fault::Truncated | Fault::Drop { processed: true }
        )
    }
}

/// What the plan sees of a request.
#[derive(Debug)]
pub struct Arrival<'a> {
    /// 0 for the first request the server got.
    pub number: usize,
    /// The `event_id` of the body (a batch's first event's), if it has one.
    pub event_id: Option<&'a str>,
    /// How many requests with this `event_id` came before this one.
    pub seen_before: usize,
    /// Every event id the body carries: one, or a batch's.
    pub event_ids: &'a [String],
}

type Plan = Box<dyn Fn(&Arrival<'_>) -> Fault + Send + Sync>;

#[derive(Default)]
struct Log {
    /// Every body that arrived, by event_id, in order (a batch's under each
    /// of its ids).
    bodies: HashMap<String, Vec<Arc<Vec<u8>>>>,
    /// Events processed, by event_id: recorded once each.
    recorded: Vec<String>,
    processed: HashSet<String>,
    /// Requests per fault used.
    faults: BTreeMap<Fault, usize>,
}

struct Shared {
    plan: Plan,
    requests: AtomicUsize,
    log: Mutex<Log>,
}

/// The running server; stops when dropped.
pub struct FaultServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _accept: super::Aborting,
}

impl FaultServer {
    /// Starts on 127.0.0.1 with the given plan.
    pub async fn start(plan: impl Fn(&Arrival<'_>) -> Fault + Send + Sync + 'static) -> Self {
        let shared = Arc::new(Shared {
            plan: Box::new(plan),
            requests: AtomicUsize::new(0),
            log: Mutex::new(Log::default()),
        });
        let for_accept = Arc::clone(&shared);
        let (addr, accept) =
            super::serve_loopback(move |stream| serve(stream, Arc::clone(&for_accept))).await;
        FaultServer {
            addr,
            shared,
            _accept: accept,
        }
    }

    /// Always the same answer.
    pub async fn always(fault: Fault) -> Self {
        Self::start(move |_| fault.clone()).await
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Event ids processed, once each, in the order first processed.
    pub fn recorded(&self) -> Vec<String> {
        self.shared.log.lock().unwrap().recorded.clone()
    }

    /// Every body that arrived with this event id.
    pub fn bodies(&self, event_id: &str) -> Vec<Vec<u8>> {
        self.shared
            .log
            .lock()
            .unwrap()
            .bodies
            .get(event_id)
            .map(|bodies| bodies.iter().map(|b| b.to_vec()).collect())
            .unwrap_or_default()
    }

    /// How many requests got each answer.
    pub fn faults(&self) -> BTreeMap<Fault, usize> {
        self.shared.log.lock().unwrap().faults.clone()
    }
}

async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut buffer = Vec::with_capacity(4096);
    loop {
        let Some(body) = read_request(&mut stream, &mut buffer).await else {
            return;
        };
        let number = shared.requests.fetch_add(1, Ordering::SeqCst);
        let parsed = serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default();
        let batch = parsed["events"].as_array();
        let event_ids: Vec<String> = match batch {
            Some(events) => events
                .iter()
                .filter_map(|e| e["event_id"].as_str().map(str::to_owned))
                .collect(),
            None => parsed["event_id"]
                .as_str()
                .map(str::to_owned)
                .into_iter()
                .collect(),
        };

        let fault = {
            let mut log = shared.log.lock().unwrap();
            let seen_before = event_ids
                .first()
                .map_or(0, |id| log.bodies.get(id).map_or(0, Vec::len));
            let fault = (shared.plan)(&Arrival {
                number,
                event_id: event_ids.first().map(String::as_str),
                seen_before,
                event_ids: &event_ids,
            });
            let body = Arc::new(body.clone());
            let processed = match fault {
                Fault::PartlyRecorded => event_ids.len() / 2,
                _ if fault.processes() => event_ids.len(),
                _ => 0,
            };
            for (index, id) in event_ids.iter().enumerate() {
                log.bodies
                    .entry(id.clone())
                    .or_default()
                    .push(Arc::clone(&body));
                if index < processed && log.processed.insert(id.clone()) {
                    log.recorded.push(id.clone());
                }
            }
            *log.faults.entry(fault.clone()).or_default() += 1;
            fault
        };

        let ok_body = if batch.is_some() {
            serde_json::json!({"event_ids": event_ids, "success": true}).to_string()
        } else {
            let id = event_ids.first().cloned().unwrap_or_default();
            format!(r#"{{"event_id":"{id}","success":true}}"#)
        };
        let keep_going = match fault {
            Fault::None => write(&mut stream, 200, &[], "application/json", &ok_body).await,
            Fault::TooManyRequests(after) => {
                let headers = [("Retry-After", after.as_str())];
                write(
                    &mut stream,
                    429,
                    &headers,
                    "application/json",
                    r#"{"error":"slow down"}"#,
                )
                .await
            }
            Fault::Unavailable => {
                write(
                    &mut stream,
                    503,
                    &[],
                    "application/json",
                    r#"{"error":"unavailable"}"#,
                )
                .await
            }
            Fault::Internal | Fault::PartlyRecorded => {
                write(
                    &mut stream,
                    500,
                    &[],
                    "application/json",
                    r#"{"error":"oops"}"#,
                )
                .await
            }
            Fault::BadGatewayHtml => {
                let html = "<html><body><h1>502 Bad Gateway</h1></body></html>";
                write(&mut stream, 502, &[], "text/html", html).await
            }
            Fault::Drop { .. } => false,
            Fault::Slow(delay) => {
                tokio::time::sleep(delay).await;
                write(&mut stream, 200, &[], "application/json", &ok_body).await
            }
            Fault::Truncated => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    ok_body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream
                    .write_all(&ok_body.as_bytes()[..ok_body.len() / 2])
                    .await;
                let _ = stream.flush().await;
                false
            }
            Fault::Status(status) => {
                write(
                    &mut stream,
                    status,
                    &[],
                    "application/json",
                    r#"{"error":"refused"}"#,
                )
                .await
            }
        };
        if !keep_going {
            return; // dropping the stream closes the connection
        }
    }
}
