//! Per-span cost of `HoneyHiveLayer` next to the two references issue 13
//! names, in the same run: `tracing_subscriber::fmt` writing to
//! `io::sink()`, and `tracing-opentelemetry` on the OpenTelemetry SDK with
//! a no-op exporter, behind the simple span processor (each span exported
//! on the thread that ends it) and behind the batch processor (spans
//! handed to its own thread, which exports them; as our layer hands trees
//! to the Logger's runtime).
//!
//! A span here is new + enter + exit + close with three fields, inside a
//! tree of ten (a root and nine children). Each tree is timed whole; the
//! figures are per span (a tenth of a tree). The three subscribers take
//! turns, `--rounds` times, and the summary gives the median of the
//! rounds' p50s with the ratios.
//!
//! The layer's trees go to a Logger whose loopback sink holds its answers
//! while a round runs and lets them through between rounds (the Logger
//! drains its queue then): delivery is the Logger's work on its own
//! runtime, not the span's, and on two cores it would otherwise compete
//! with the span being timed.
//!
//! With `--open`, the sink answers during the rounds too: the Logger
//! builds, serializes and sends trees while the next ones are timed, on the
//! same two cores (as the batch processor's thread exports).
//!
//! ```text
//! cargo bench -p honeyhive --features tracing --bench spans      # --trees 20000 --rounds 5 [--open]
//! ```

#[path = "../tests/support/http.rs"]
mod http;

use std::time::{Duration, Instant};

use honeyhive::tracing::HoneyHiveLayer;
use honeyhive::{Client, Logger, LoggerConfig};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing_subscriber::layer::SubscriberExt;

fn tree() {
    let root = tracing::info_span!(
        "request",
        inputs.q = "weather",
        metrics.n = 1,
        feedback.ok = true
    );
    let _in = root.enter();
    for i in 0..9 {
        let child = tracing::info_span!(
            "step",
            inputs.i = i,
            gen_ai.request.model = "m",
            retries = 0
        );
        let _step = child.enter();
    }
}

/// Times `trees` trees under `subscriber`: per-span nanoseconds, sorted.
fn run(subscriber: impl tracing::Subscriber + Send + Sync, trees: usize) -> Vec<u64> {
    let mut samples: Vec<u64> = tracing::subscriber::with_default(subscriber, || {
        (0..trees)
            .map(|_| {
                let started = Instant::now();
                tree();
                started.elapsed().as_nanos() as u64 / 10
            })
            .collect()
    });
    samples.sort_unstable();
    samples
}

fn at(samples: &[u64], p: f64) -> u64 {
    samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)]
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

/// An exporter that takes the spans and does nothing with them.
#[derive(Debug)]
struct NoExport;

impl SpanExporter for NoExport {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        drop(batch);
        Ok(())
    }
}

/// Times `trees` trees under `tracing-opentelemetry` on an SDK provider
/// with the simple or the batch processor, shut down (its export thread
/// stopped) before the next subscriber runs.
fn otel(batch: bool, trees: usize) -> Vec<u64> {
    let builder = SdkTracerProvider::builder();
    let provider = if batch {
        builder.with_batch_exporter(NoExport)
    } else {
        builder.with_simple_exporter(NoExport)
    }
    .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
    let samples = run(tracing_subscriber::registry().with(layer), trees);
    provider.shutdown().expect("the no-op exporter shuts down");
    samples
}

/// A loopback sink that answers only while `open` is true, and the Logger
/// sending to it.
fn gated_logger(rt: &tokio::runtime::Runtime, trees: usize) -> (Logger, watch::Sender<bool>) {
    let (open, gate) = watch::channel(false);
    let logger = rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("loopback");
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut gate = gate.clone();
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    while http::read_request(&mut stream, &mut buffer).await.is_some() {
                        if gate.wait_for(|open| *open).await.is_err() {
                            return;
                        }
                        let body = r#"{"event_id":"sink","success":true}"#;
                        if !http::write(&mut stream, 200, &[], "application/json", body).await {
                            return;
                        }
                    }
                });
            }
        });
        let client = Client::builder()
            .api_key("bench")
            .base_url(&url)
            .build()
            .expect("client");
        let config = LoggerConfig::default()
            .max_queue_events(trees + 1)
            .max_queue_bytes(usize::MAX / 2);
        Logger::new(&client, config).expect("runtime")
    });
    (logger, open)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().expect("a number"))
    };
    let trees = arg("--trees", 20_000);
    let rounds = arg("--rounds", 5);
    let open_rounds = args.iter().any(|a| a == "--open");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (logger, open) = gated_logger(&rt, trees);
    open.send_replace(open_rounds);
    let sink = if open_rounds {
        "answers during rounds"
    } else {
        "held during rounds"
    };
    println!("{trees} trees of 10 spans per round, {rounds} rounds, sink {sink}; per-span ns");
    let mut p50s: [Vec<u64>; 4] = Default::default();
    for round in 1..=rounds {
        let fmt = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::sink)
                .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE),
        );
        let layer = HoneyHiveLayer::new(logger.clone());
        let ours = tracing_subscriber::registry().with(layer.clone());
        let results = [
            ("fmt to io::sink (span close events)", run(fmt, trees)),
            ("tracing-opentelemetry, simple, no-op", otel(false, trees)),
            ("tracing-opentelemetry, batch, no-op", otel(true, trees)),
            ("HoneyHiveLayer", run(ours, trees)),
        ];
        for (index, (label, samples)) in results.iter().enumerate() {
            println!(
                "round {round}: {label:<40} p50={:>6}  p90={:>6}  p99={:>7}",
                at(samples, 0.5),
                at(samples, 0.9),
                at(samples, 0.99)
            );
            p50s[index].push(at(samples, 0.5));
        }
        let stats = layer.stats();
        assert_eq!(stats.trees_logged, trees as u64, "{stats:?}");
        // Between rounds: the sink answers, the Logger delivers its queue.
        open.send_replace(true);
        let report = rt.block_on(logger.flush(Duration::from_secs(120)));
        assert_eq!(report.stats.pending, 0, "{:?}", report.stats);
        open.send_replace(open_rounds);
    }
    let [fmt, otel, batch, ours] = p50s.map(median);
    println!(
        "RESULT median p50 per span: fmt {fmt} ns, tracing-opentelemetry simple {otel} ns, batch {batch} ns, \
         HoneyHiveLayer {ours} ns; HoneyHiveLayer/otel simple = {:.2}, /otel batch = {:.2}, /fmt = {:.2}",
        ours as f64 / otel as f64,
        ours as f64 / batch as f64,
        ours as f64 / fmt as f64
    );
    let report = rt.block_on(logger.shutdown(Duration::from_secs(60)));
    println!("logger: {:?}", report.stats);
}
