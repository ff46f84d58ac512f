//! What leaving the process costs: the redactor, and cutting an oversize
//! event. A bench binary (`harness = false`); every figure is a median of
//! interleaved rounds, next to its reference from the same run.
//!
//! ```text
//! cargo bench -p honeyhive --bench outgoing              # both
//! cargo bench -p honeyhive --bench outgoing -- mask      # the redactor
//! cargo bench -p honeyhive --bench outgoing -- cut       # cutting, memory
//! ```
//!
//! - `mask`: `Logger::log` (the enqueue) on a client with the redactor (5
//!   keys, the 3 default patterns) and on one without, in alternating
//!   rounds; then what the Logger's runtime pays per event where the mask
//!   runs: serializing the benchmark's event, with and without the
//!   redactor applied first.
//! - `cut`: the peak heap the client adds while it sends an event whose
//!   `inputs` holds a 10 MiB string to a limit of 5 MiB (cut to fit), next
//!   to the same event sent whole under a 20 MiB limit, against a loopback
//!   server that reads and discards bodies (it holds 64 KiB).

use std::time::{Duration, Instant};

use honeyhive::{Client, Event, FreeForm, Logger, LoggerConfig, Mask, Redactor, SessionId};
use peak_alloc::PeakAlloc;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[path = "support/event.rs"]
mod event;
use event::sample_event;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let which = args.first().map(String::as_str);
    if which.is_none_or(|w| w == "mask") {
        mask();
    }
    if which.is_none_or(|w| w == "cut") {
        cut();
    }
}

fn redactor() -> Redactor {
    Redactor::new().keys(["password", "api_key", "authorization", "cookie", "ssn"])
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// A loopback server that answers every request with success and keeps
/// no body: it reads into a 64 KiB buffer and discards.
async fn discard_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 64 * 1024];
                loop {
                    // The head: up to the blank line.
                    let mut head = Vec::new();
                    while !head.ends_with(b"\r\n\r\n") {
                        let mut byte = [0u8; 1];
                        if stream.read_exact(&mut byte).await.is_err() {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                    let mut left: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while left > 0 {
                        let want = left.min(buffer.len());
                        match stream.read(&mut buffer[..want]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => left -= n,
                        }
                    }
                    // The benches send one event a request, either route.
                    let body = if head.contains("/v1/events/batch") {
                        r#"{"event_ids":["discarded"],"success":true}"#
                    } else {
                        r#"{"event_id":"discarded","success":true}"#
                    };
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

fn client(url: &str, mask: bool, max_body_bytes: usize) -> Client {
    let builder = Client::builder()
        .api_key("bench-key-0123456789")
        .base_url(url)
        .max_body_bytes(max_body_bytes);
    let builder = if mask {
        builder.mask(redactor())
    } else {
        builder
    };
    builder.build().expect("loopback URL")
}

/// Nanoseconds per `Logger::log` of `calls` events, on one task.
fn enqueue_ns(rt: &tokio::runtime::Runtime, logger: &Logger, calls: usize) -> f64 {
    let session = SessionId::new();
    let events: Vec<Event> = (0..calls).map(sample_event).collect();
    let started = Instant::now();
    for event in events {
        logger.log(&session, event).expect("room for the round");
    }
    let took = started.elapsed();
    rt.block_on(logger.flush(Duration::from_secs(60)));
    took.as_nanos() as f64 / calls as f64
}

fn mask() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let _in = rt.enter();
    let url = rt.block_on(discard_server());
    let config = || {
        LoggerConfig::default()
            .max_queue_events(1 << 20)
            .max_queue_bytes(1 << 30)
    };
    let plain = Logger::new(&client(&url, false, 5 << 20), config()).expect("logger");
    let masked = Logger::new(&client(&url, true, 5 << 20), config()).expect("logger");
    let calls = 20_000;
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 0..11 {
        // Alternate which goes first, so drift favours neither.
        if round % 2 == 0 {
            without.push(enqueue_ns(&rt, &plain, calls));
            with.push(enqueue_ns(&rt, &masked, calls));
        } else {
            with.push(enqueue_ns(&rt, &masked, calls));
            without.push(enqueue_ns(&rt, &plain, calls));
        }
    }
    let (without, with) = (median(&mut without), median(&mut with));
    println!(
        "mask: Logger::log, median of 11 rounds of {calls}: without a mask {without:.0} ns, \
         with the redactor {with:.0} ns: {:.2}x (target <= 1.3x)",
        with / without
    );
    let stats = rt.block_on(masked.shutdown(Duration::from_secs(60))).stats;
    rt.block_on(plain.shutdown(Duration::from_secs(60)));
    assert_eq!(stats.failed, 0);

    // Where the mask runs: per event, serialize vs redact + serialize.
    let redactor = redactor();
    let wire = sample_event(0).into_api().expect("valid");
    let per_event = |apply: bool| {
        let n = 50_000;
        let started = Instant::now();
        for _ in 0..n {
            let mut event = wire.clone();
            if apply {
                for (field, map) in [
                    (FreeForm::Inputs, &mut event.inputs),
                    (FreeForm::Outputs, &mut event.outputs),
                    (FreeForm::Metadata, &mut event.metadata),
                    (FreeForm::Config, &mut event.config),
                    (FreeForm::Feedback, &mut event.feedback),
                    (FreeForm::Metrics, &mut event.metrics),
                    (FreeForm::UserProperties, &mut event.user_properties),
                ] {
                    Mask::mask(&redactor, field, map as &mut Map<String, Value>);
                }
            }
            std::hint::black_box(serde_json::to_vec(&event).expect("serializes"));
        }
        started.elapsed().as_nanos() as f64 / f64::from(n)
    };
    let (mut serialize, mut both) = (Vec::new(), Vec::new());
    for _ in 0..11 {
        serialize.push(per_event(false));
        both.push(per_event(true));
    }
    let (serialize, both) = (median(&mut serialize), median(&mut both));
    println!(
        "mask: on the Logger's runtime, per event (clone + serialize): {serialize:.0} ns; \
         with the redactor first: {both:.0} ns: {:.2}x",
        both / serialize
    );
}

/// Peak heap added while `client` sends `event` (beyond what is held
/// before the call, the event included).
fn peak_extra(rt: &tokio::runtime::Runtime, client: &Client, event: Event) -> (usize, bool) {
    let before = HEAP.current_usage();
    HEAP.reset_peak_usage();
    let sent = rt.block_on(client.log_event("s", event)).is_ok();
    (HEAP.peak_usage().saturating_sub(before), sent)
}

/// As [`peak_extra`], through `log_batch` (the v1 batch route, flat).
fn peak_extra_batch(rt: &tokio::runtime::Runtime, client: &Client, event: Event) -> (usize, bool) {
    let before = HEAP.current_usage();
    HEAP.reset_peak_usage();
    let sent = rt.block_on(client.log_batch([("s", event)])).is_ok();
    (HEAP.peak_usage().saturating_sub(before), sent)
}

fn cut() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = rt.block_on(discard_server());
    let size = 10 << 20;
    let event = || Event::model("m").inputs(json!({"document": "x".repeat(size)}));
    let cutting = client(&url, false, 5 << 20);
    let whole = client(&url, false, 20 << 20);
    // Warm: connections, the runtime's buffers.
    peak_extra(&rt, &whole, Event::tool("warm"));
    peak_extra(&rt, &cutting, Event::tool("warm"));
    let (mut cut, mut reference, mut batch) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let (extra, sent) = peak_extra(&rt, &cutting, event());
        assert!(sent, "cut to fit and sent");
        cut.push(extra as f64);
        let (extra, sent) = peak_extra(&rt, &whole, event());
        assert!(sent);
        reference.push(extra as f64);
        let (extra, sent) = peak_extra_batch(&rt, &cutting, event());
        assert!(sent, "cut to fit and sent in a batch");
        batch.push(extra as f64);
    }
    let (cut, reference, batch) = (median(&mut cut), median(&mut reference), median(&mut batch));
    let mib = |b: f64| b / f64::from(1 << 20);
    println!(
        "cut: a 10 MiB inputs string to fit 5 MiB: peak extra heap {:.1} MiB = {:.2}x the \
         event (target <= 2x); the same event sent whole (20 MiB limit): {:.1} MiB = {:.2}x",
        mib(cut),
        cut / size as f64,
        mib(reference),
        reference / size as f64
    );
    println!(
        "cut: the same through log_batch (flat, the v1 route): peak extra heap {:.1} MiB = {:.2}x",
        mib(batch),
        batch / size as f64
    );
}
