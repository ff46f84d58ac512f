//! A server or proxy that answers from the request head alone (`413
//! Payload Too Large`, and any other early final status) and closes while
//! the body is still being written: that answer is the result, it is not
//! retried, and a body the server refused is not sent again.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use honeyhive::{Client, Error, Event, RetryPolicy};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server saw of one request.
#[derive(Clone, Debug, Default)]
struct Seen {
    /// The request carried `Expect: 100-continue`.
    asked_first: bool,
    /// Body bytes that had arrived when the server answered (or reset).
    body_bytes: usize,
}

/// How the server treats the request on connection number `n` (from 0).
#[derive(Clone, Copy)]
enum Treat {
    /// Read the head, answer 413 with `Connection: close` and close without
    /// reading the body (a reset, since the body is unread); a request that
    /// asks first (`Expect`) is answered only after `wait`, counting what
    /// body arrives meanwhile.
    RefuseAfter(Duration),
    /// Read the head and some of the body, then reset without answering.
    ResetMidBody,
    /// Read the whole request, send a 413 whose body stops short, close.
    RefuseCutShort,
    /// Read the whole request, answer `307` to another path, close.
    Redirect,
}

struct Server {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn server(treat: impl Fn(usize) -> Treat + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut number = 0;
        while let Ok((stream, _)) = listener.accept().await {
            let how = treat(number);
            number += 1;
            tokio::spawn(serve(stream, how, Arc::clone(&record)));
        }
    });
    Server { url, seen }
}

async fn serve(mut stream: TcpStream, how: Treat, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let asked_first = head.contains("expect: 100-continue");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body_bytes = buffer.len() - head_end;
    let refusal = r#"{"error":"payload too large"}"#;
    let answer = format!(
        "HTTP/1.1 413 Payload Too Large\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{refusal}",
        refusal.len()
    );
    match how {
        Treat::RefuseAfter(wait) => {
            if asked_first {
                let until = tokio::time::Instant::now() + wait;
                while let Ok(Ok(n)) = tokio::time::timeout_at(until, stream.read(&mut chunk)).await
                {
                    if n == 0 {
                        break;
                    }
                    body_bytes += n;
                }
            }
            let _ = stream.write_all(answer.as_bytes()).await;
        }
        Treat::ResetMidBody => {
            while body_bytes < 128 * 1024 {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => body_bytes += n,
                }
            }
        }
        Treat::Redirect | Treat::RefuseCutShort => {
            while body_bytes < length {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => body_bytes += n,
                }
            }
            let answer = match how {
                Treat::Redirect => {
                    "HTTP/1.1 307 Temporary Redirect\r\nlocation: /elsewhere\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
                }
                _ => {
                    "HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"error\":\"payl"
                }
            };
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    }
    seen.lock().unwrap().push(Seen {
        asked_first,
        body_bytes,
    });
    // Dropped with the body unread: the peer sees a reset.
}

fn client(url: &str) -> Client {
    Client::builder()
        .api_key("hh-test")
        .base_url(url)
        .max_body_bytes(16 * 1024 * 1024)
        .retry_policy(
            RetryPolicy::default()
                .initial_backoff(Duration::from_millis(1))
                .max_backoff(Duration::from_millis(2)),
        )
        .build()
        .unwrap()
}

fn event_of(bytes: usize) -> Event {
    Event::tool("upload").inputs(json!({"blob": "x".repeat(bytes)}))
}

fn refused_with(result: Result<honeyhive::Logged, Error>, status: u16) -> u32 {
    match result {
        Err(Error::Api {
            status: got,
            attempts,
            ..
        }) if got == status => attempts,
        other => panic!("expected the API's {status}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refusal_whose_body_is_cut_off_is_the_answer_and_is_not_retried() {
    let server = server(|_| Treat::RefuseCutShort).await;
    let client = client(&server.url);
    for size in [100, 300 * 1024] {
        let attempts = refused_with(client.log_event("s", event_of(size)).await, 413);
        assert_eq!(attempts, 1, "{size}-byte event");
    }
    assert_eq!(server.seen.lock().unwrap().len(), 2, "one request each");
}

#[tokio::test]
async fn after_a_reset_mid_body_the_retry_asks_first_and_sends_no_body_the_server_refuses() {
    let server = server(|n| {
        if n == 0 {
            Treat::ResetMidBody
        } else {
            Treat::RefuseAfter(Duration::from_millis(300))
        }
    })
    .await;
    let client = client(&server.url);
    let attempts = refused_with(client.log_event("s", event_of(3 << 20)).await, 413);
    assert_eq!(attempts, 2);
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(!seen[0].asked_first && seen[0].body_bytes > 0, "{seen:?}");
    assert!(seen[1].asked_first, "the retry asks first: {seen:?}");
    assert_eq!(seen[1].body_bytes, 0, "no body before the answer: {seen:?}");
}

#[tokio::test]
async fn the_raw_client_keeps_an_early_refusal_too() {
    let server = server(|_| Treat::RefuseCutShort).await;
    let client = client(&server.url);
    let body = honeyhive::api::types::Event::builder()
        .event_name("raw".to_owned())
        .inputs(serde_json::Map::from_iter([(
            "blob".to_owned(),
            json!("x".repeat(200 * 1024)),
        )]));
    let answer = client
        .raw()
        .log_event()
        .session_id("s")
        .body(body)
        .send()
        .await;
    match answer {
        Err(honeyhive::api::Error::UnexpectedResponse(response)) => {
            assert_eq!(response.status().as_u16(), 413);
        }
        other => panic!("expected the 413, got {other:?}"),
    }
    assert_eq!(server.seen.lock().unwrap().len(), 1, "sent once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_refuses_large_bodies_from_the_head_is_answered_413_every_time() {
    let server = server(|_| Treat::RefuseAfter(Duration::from_millis(200))).await;
    let client = client(&server.url);
    // Bodies of 16 KiB and more are written in parts (Linux starts a
    // socket's send buffer at 16 KiB); the smallest here go as few parts.
    let sizes: Vec<usize> = [20 * 1024, 40 * 1024, 60 * 1024]
        .into_iter()
        .chain((0..12).map(|i| (1 << 20) + i * 300 * 1024))
        .collect();
    for size in &sizes {
        let attempts = refused_with(client.log_event("s", event_of(*size)).await, 413);
        assert!(attempts <= 2, "{size}: {attempts} attempts");
    }
    let seen = server.seen.lock().unwrap().clone();
    assert!(seen.len() <= 2 * sizes.len(), "{seen:?}");
    for again in seen.iter().filter(|s| s.asked_first) {
        assert_eq!(
            again.body_bytes, 0,
            "a refused body was sent again: {seen:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_whose_status_line_came_is_the_answer_with_no_second_request() {
    // The server answers 413 as soon as it has the head, and closes with
    // the body unread: the client sees a reset while it is still writing.
    let server = server(|_| Treat::RefuseAfter(Duration::ZERO)).await;
    let client = client(&server.url);
    let sizes: Vec<usize> = (0..12).map(|i| (1 << 20) + i * 300 * 1024).collect();
    for size in &sizes {
        let attempts = refused_with(client.log_event("s", event_of(*size)).await, 413);
        assert_eq!(attempts, 1, "{size}-byte event");
    }
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), sizes.len(), "one request each: {seen:?}");
}

#[tokio::test]
async fn a_redirect_is_the_answer_whatever_the_body_s_size() {
    // Followed, a 307 would send the body (and the key) again, elsewhere;
    // a large body goes on the client's own connections, a small one
    // through reqwest: the same answer from both.
    let server = server(|_| Treat::Redirect).await;
    let client = client(&server.url);
    let sizes = [100, 300 * 1024];
    for size in sizes {
        let attempts = refused_with(client.log_event("s", event_of(size)).await, 307);
        assert_eq!(attempts, 1, "{size}-byte event");
    }
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        sizes.len(),
        "no request followed a redirect: {seen:?}"
    );
}
