//! `honeyhive mock`: the spec-validating mock as a process on loopback,
//! for tests in any language.

use std::io::Write;
use std::time::Duration;

use honeyhive::EventLine;

use crate::event_line::Record;
use honeyhive::testing::MockHoneyHive;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::exit::{Exit, Fail};

/// Runs the spec-validating mock of the API on 127.0.0.1 until Ctrl-C.
///
/// It answers every operation of the spec and remembers what it is given
/// until it stops: datasets, datapoints, runs (with their summary) and
/// events (found by id and by search) come back as the API would give
/// them; an unknown id gets a 404. Prints its URL and the key it accepts
/// (a fixed test key, not a secret), then, with --print, what it accepts
/// as JSON lines on stdout: each event (of every route), session started
/// and update. `GET /_mock/stats` answers {"requests", "events",
/// "sessions", "updates", "violations"}.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Port to listen on (0: any free port).
    #[arg(long, short, default_value_t = 0)]
    port: u16,
    /// Print each accepted event as `{"session_id": ..., "event": {...}}`
    /// (with `"operation"`, the route's operationId), each session started
    /// as `{"session_id": ..., "session": {...}}` and each update as
    /// `{"event_id": ..., "update": {...}}`.
    #[arg(long)]
    print: bool,
}

pub async fn run(args: Args) -> Result<Exit, Fail> {
    let mock = MockHoneyHive::start_async().await;
    let listener = TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| {
            Fail::new(
                Exit::Usage,
                format!("cannot listen on 127.0.0.1:{}: {e}", args.port),
            )
        })?;
    let address = listener
        .local_addr()
        .map_err(|e| Fail::new(Exit::Usage, format!("cannot listen: {e}")))?;
    // The mock picks its own port; connections to ours are relayed to it.
    let target = mock.base_url().trim_start_matches("http://").to_owned();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                let _ = inbound.set_nodelay(true);
                if let Ok(mut outbound) = TcpStream::connect(&target).await {
                    let _ = outbound.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    eprintln!("honeyhive mock: listening on http://{address}");
    eprintln!("honeyhive mock: API key {}", MockHoneyHive::API_KEY);
    eprintln!(
        "honeyhive mock: try HH_API_URL=http://{address} HH_API_KEY={}; stats at http://{address}{}; Ctrl-C stops",
        MockHoneyHive::API_KEY,
        MockHoneyHive::STATS_PATH
    );
    // The URL on stdout too, alone on its line, for scripts.
    crate::exit::out(&format!("http://{address}"));
    let _ = std::io::stdout().flush();

    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let stopped = tokio::signal::ctrl_c();
    tokio::pin!(stopped);
    let mut reported = 0;
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tick.tick() => {
                drain(&mock, args.print)?;
                let violations = mock.violations();
                for violation in violations.iter().skip(reported) {
                    eprintln!("honeyhive mock: refused {violation}");
                }
                reported = violations.len();
            }
        }
    }
    drain(&mock, args.print)?;
    // Refused since the last tick: said before exit, never lost.
    for violation in mock.violations().iter().skip(reported) {
        eprintln!("honeyhive mock: refused {violation}");
    }
    let stats = mock.stats();
    eprintln!(
        "honeyhive mock: {} requests, {} events, {} sessions, {} updates, {} violations",
        stats.requests, stats.events, stats.sessions, stats.updates, stats.violations
    );
    Ok(if stats.violations == 0 {
        Exit::Ok
    } else {
        Exit::Partial
    })
}

/// Takes what the mock accepted (so it holds nothing for long) and prints
/// it with --print.
fn drain(mock: &MockHoneyHive, print: bool) -> Result<(), Fail> {
    let events = mock.take_events();
    let (sessions, updates) = mock.take_sessions_and_updates();
    if !print {
        return Ok(());
    }
    let lines = events
        .into_iter()
        .map(|e| {
            let line = Record {
                operation: Some(e.operation.to_owned()),
                ..Record::from(EventLine::new(e.session_id, e.event))
            };
            serde_json::to_value(line).unwrap_or_default()
        })
        .chain(
            sessions
                .into_iter()
                .map(|s| json!({"session_id": s.session_id, "session": s.session})),
        )
        .chain(
            updates
                .into_iter()
                .map(|u| json!({"event_id": u.event_id, "update": u.update})),
        );
    let mut out = std::io::stdout().lock();
    let failed = |e: std::io::Error| Fail::new(Exit::Usage, format!("stdout: {e}"));
    for line in lines {
        writeln!(out, "{line}").map_err(failed)?;
    }
    out.flush().map_err(failed)
}
