//! A cleartext HTTP/2 (h2c) server on loopback that answers every request
//! with the documented 200 after `delay`, and counts the connections and
//! the requests by HTTP version. Used by the HTTP/2 tests and the bench.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// What the server saw.
#[derive(Default)]
pub struct H2cCounts {
    pub connections: AtomicU64,
    pub http2_requests: AtomicU64,
    pub other_requests: AtomicU64,
    /// The most requests one connection carried at once.
    pub busiest: AtomicU64,
}

/// Serves h2c on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, delay: Duration, counts: Arc<H2cCounts>) {
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        counts.connections.fetch_add(1, Ordering::Relaxed);
        let counts = Arc::clone(&counts);
        tokio::spawn(async move {
            let carrying = Arc::new(AtomicU64::new(0));
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let counts = Arc::clone(&counts);
                    let carrying = Arc::clone(&carrying);
                    async move {
                        let now = carrying.fetch_add(1, Ordering::SeqCst) + 1;
                        counts.busiest.fetch_max(now, Ordering::SeqCst);
                        let seen = if request.version() == Version::HTTP_2 {
                            &counts.http2_requests
                        } else {
                            &counts.other_requests
                        };
                        seen.fetch_add(1, Ordering::Relaxed);
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                        // A batch (createEventBatch) gets its documented answer.
                        let body = if request.uri().path().ends_with("/events/batch") {
                            r#"{"event_ids":[],"success":true}"#
                        } else {
                            r#"{"event_id":"h2c","success":true}"#
                        };
                        let answer = Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from_static(body.as_bytes())))
                            .expect("a valid answer");
                        carrying.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, Infallible>(answer)
                    }
                });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
