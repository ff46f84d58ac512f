//! The paged reads' benchmark parts (run by `pull.sh`, beside it):
//!
//! - `pages serve --port P --records N`: a loopback server holding N
//!   records, made on the fly from their index, so the server stays cheap
//!   at any N: `POST /v1/events/search` answers pages of N events
//!   (`limit` a page, `count` the total); `GET /v1/datasets?dataset_id=D`
//!   answers one dataset listing N datapoint ids; `GET /v1/datapoints`
//!   answers the datapoints whose ids the query names.
//! - `pages loop --url U --records N`: the reference, a hand-written loop
//!   of raw calls (`client.raw().search_events()`) paging the same server
//!   and writing each event as a JSON line on stdout, as `honeyhive events
//!   search` does.
//! - `pages pull-loop --url U --records N`: the same for a dataset: the
//!   dataset's ids (`get_datasets`), then `get_datapoints` 100 ids at a
//!   time, each datapoint a line, as `honeyhive datasets pull` does.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::time::Instant;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::{Value, json};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .unwrap_or_else(|| panic!("{name} is required"))
            .clone()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let records: u64 = value("--records").parse().expect("--records N");
    match args.first().map(String::as_str) {
        Some("serve") => runtime.block_on(serve(value("--port").parse().expect("--port"), records)),
        Some("loop") => runtime.block_on(raw_loop(&value("--url"), records)),
        Some("pull-loop") => runtime.block_on(raw_pull_loop(&value("--url"))),
        _ => panic!("usage: pages serve --port P --records N | pages loop --url U --records N"),
    }
}

/// Event `i`, about 600 bytes of JSON, as the search answers it.
fn event(i: u64) -> Value {
    json!({
        "event_id": uuid_of(i),
        "session_id": uuid_of(i / 10),
        "project_id": "bench",
        "event_type": "model",
        "event_name": "gpt-4o",
        "source": "bench",
        "start_time": 1_764_000_000_000u64 + i,
        "end_time": 1_764_000_000_900u64 + i,
        "duration": 900,
        "inputs": {"chat_history": [{"role": "user", "content": format!("question {i}: what is the capital of France?")}]},
        "outputs": {"role": "assistant", "content": "Paris is the capital of France."},
        "config": {"model": "gpt-4o", "temperature": 0.2},
        "metadata": {"tokens": 42, "index": i},
        "metrics": {"latency_ms": 900},
        "feedback": {},
        "user_properties": {},
        "children_ids": [],
        "parent_id": uuid_of(i / 10),
    })
}

fn datapoint(i: u64) -> Value {
    json!({
        "id": uuid_of(i),
        "inputs": {"question": format!("question {i}: what is the capital of France?")},
        "history": [],
        "ground_truth": {"answer": "Paris"},
        "metadata": {"index": i},
        "linked_event": "",
        "created_at": "2026-12-05T00:00:00Z",
    })
}

/// A UUID made from an index, so a datapoint's id gives its index back.
fn uuid_of(i: u64) -> String {
    format!("00000000-0000-4000-8000-{i:012x}")
}

fn index_of(id: &str) -> Option<u64> {
    u64::from_str_radix(id.rsplit('-').next()?, 16).ok()
}

async fn serve(port: u16, records: u64) {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .expect("the port is free");
    loop {
        let (stream, _) = listener.accept().await.expect("accept");
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| answer(request, records));
            let _closed = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    request: Request<Incoming>,
    records: u64,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let answer = match path.as_str() {
        "/v1/events/search" => {
            let asked: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let page = asked["page"].as_u64().unwrap_or(1).max(1);
            let limit = asked["limit"].as_u64().unwrap_or(1000).clamp(1, 1000);
            let first = (page - 1) * limit;
            let events: Vec<Value> = (first..(first + limit).min(records)).map(event).collect();
            json!({"events": events, "count": records})
        }
        "/v1/datasets" => json!({"datasets": [{
            "id": "bench-dataset",
            "name": "bench",
            "datapoints": (0..records).map(uuid_of).collect::<Vec<_>>(),
        }]}),
        "/v1/datapoints" => {
            let datapoints: Vec<Value> = query
                .split('&')
                .filter_map(|pair| pair.strip_prefix("datapoint_ids="))
                .flat_map(|ids| ids.split("%2C").flat_map(|id| id.split(',')))
                .filter_map(index_of)
                .filter(|&i| i < records)
                .map(datapoint)
                .collect();
            json!({"datapoints": datapoints})
        }
        _ => {
            return Ok(Response::builder()
                .status(404)
                .body(Full::new(Bytes::from_static(b"{}")))
                .expect("a response"));
        }
    };
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(answer.to_string())))
        .expect("a response"))
}

fn client(url: &str) -> honeyhive::Client {
    honeyhive::Client::builder()
        .api_key("bench-key")
        .base_url(url)
        .build()
        .expect("a loopback URL")
}

/// The reference for a dataset: its ids, then their datapoints 100 at a
/// time, each a line on stdout.
async fn raw_pull_loop(url: &str) {
    let client = client(url);
    let started = Instant::now();
    let dataset = client
        .raw()
        .get_datasets()
        .dataset_id("bench-dataset".to_owned())
        .send()
        .await
        .expect("the dataset")
        .into_inner()
        .datasets
        .remove(0);
    let ids: Vec<String> = dataset.datapoints.iter().map(|d| d.to_string()).collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut seen = 0u64;
    for chunk in ids.chunks(100) {
        let answer = client
            .raw()
            .get_datapoints()
            .datapoint_ids(chunk.to_vec())
            .send()
            .await
            .expect("a chunk");
        for datapoint in answer.into_inner().datapoints {
            serde_json::to_writer(&mut out, &datapoint).expect("stdout");
            out.write_all(b"\n").expect("stdout");
            seen += 1;
        }
    }
    out.flush().expect("stdout");
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "raw pull loop: {seen} datapoints in {seconds:.2} s: {:.0} datapoints/s",
        seen as f64 / seconds
    );
}

/// The reference: page after page of raw calls, each event a line on
/// stdout.
async fn raw_loop(url: &str, records: u64) {
    let client = client(url);
    let started = Instant::now();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut seen = 0u64;
    for page in 1.. {
        let answer = client
            .raw()
            .search_events()
            .body(
                honeyhive::api::types::SearchEventsRequest::builder()
                    .page(NonZeroU64::new(page))
                    .limit(NonZeroU64::new(1000)),
            )
            .send()
            .await
            .expect("a page");
        let events = answer.into_inner().events;
        if events.is_empty() {
            break;
        }
        for event in events {
            serde_json::to_writer(&mut out, &event).expect("stdout");
            out.write_all(b"\n").expect("stdout");
            seen += 1;
        }
        if seen >= records {
            break;
        }
    }
    out.flush().expect("stdout");
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "raw loop: {seen} events in {seconds:.2} s: {:.0} events/s",
        seen as f64 / seconds
    );
}
