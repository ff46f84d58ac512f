//! Per-span cost of `HoneyHiveLayer` next to `tracing_subscriber::fmt`
//! writing to `io::sink()`, in the same run. A span here is new + enter +
//! exit + close with three fields, inside a tree of ten (a root and nine
//! children); the layer's trees go to a Logger sending to a loopback sink
//! on a runtime thread of its own. Each tree is timed whole; the figures
//! are per span (a tenth of a tree).
//!
//! ```text
//! cargo bench -p honeyhive --features tracing --bench spans            # --trees 100000
//! ```

#[path = "../tests/support/http.rs"]
mod http;

use std::time::{Duration, Instant};

use honeyhive::tracing::HoneyHiveLayer;
use honeyhive::{Client, LoggerConfig};
use tokio::net::TcpListener;
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

/// Times `trees` trees under the current default subscriber: per-span
/// nanoseconds for each tree.
fn run(trees: usize) -> Vec<u64> {
    (0..trees)
        .map(|_| {
            let started = Instant::now();
            tree();
            started.elapsed().as_nanos() as u64 / 10
        })
        .collect()
}

fn summary(label: &str, mut samples: Vec<u64>) {
    samples.sort_unstable();
    let at = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "{label:<44} per span: p50={:>6} ns  p90={:>6} ns  p99={:>7} ns",
        at(0.5),
        at(0.9),
        at(0.99)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let trees = args
        .iter()
        .position(|a| a == "--trees")
        .and_then(|i| args.get(i + 1))
        .map_or(100_000, |v| v.parse().expect("--trees takes a number"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (logger, url) = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("loopback");
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    while http::read_request(&mut stream, &mut buffer).await.is_some() {
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
            .with_max_queue_events(3 * trees + 1)
            .with_max_queue_bytes(usize::MAX / 2);
        (client.logger(config).expect("runtime"), url)
    });
    println!("{trees} trees of 10 spans; the layer's logger sends to {url}");
    for round in 1..=3 {
        let fmt = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::sink)
                .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE),
        );
        let samples = tracing::subscriber::with_default(fmt, || run(trees));
        summary(
            &format!("round {round}: fmt to io::sink (span close events)"),
            samples,
        );
        let layer = HoneyHiveLayer::new(logger.clone());
        let ours = tracing_subscriber::registry().with(layer.clone());
        let samples = tracing::subscriber::with_default(ours, || run(trees));
        summary(&format!("round {round}: HoneyHiveLayer"), samples);
        let stats = layer.stats();
        assert_eq!(stats.trees_logged, trees as u64, "{stats:?}");
    }
    let report = rt.block_on(logger.shutdown(Duration::from_secs(60)));
    println!("logger: {:?}", report.stats);
}
