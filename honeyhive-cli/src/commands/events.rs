//! `honeyhive events get ID` and `honeyhive events search [...]`: events
//! read back as JSON lines on stdout, every page of a search streamed (one
//! page in memory, whatever the number of events).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::TryStreamExt;
use honeyhive::{EventSearch, EventType};

use crate::config::{Api, api_error};
use crate::exit::{Exit, Fail};
use crate::jsonl::{Count, Lines};

/// Events read back: one by id, or every event a search selects.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Prints the event with this id as one JSON line.
    Get {
        /// The event's id (a UUID).
        id: String,
        #[command(flatten)]
        api: Api,
    },
    /// Prints every event the filters select, newest first, one JSON line
    /// each; each condition narrows further.
    Search(Search),
}

#[derive(clap::Args, Debug)]
struct Search {
    /// Only events of this session.
    #[arg(long, value_name = "ID")]
    session: Option<String>,
    /// Only events of this type: model, tool, chain or session.
    #[arg(long = "type", value_name = "TYPE", value_parser = crate::input::event_type)]
    event_type: Option<EventType>,
    /// Only events with this name.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Only events that started at or after this time: milliseconds since
    /// the Unix epoch, or an age such as 90s, 15m, 24h, 7d.
    #[arg(long, value_name = "TIME", value_parser = time)]
    since: Option<SystemTime>,
    /// Only events that started at or before this time (as --since)
    /// [default: now, when --since is given].
    #[arg(long, value_name = "TIME", value_parser = time)]
    until: Option<SystemTime>,
    /// Only events whose FIELD (dotted: metadata.customer) is VALUE;
    /// repeatable.
    #[arg(long = "filter", value_name = "FIELD=VALUE", value_parser = field_is)]
    filters: Vec<(String, String)>,
    /// Events asked for per request, 1 to 1000.
    #[arg(long, value_name = "N", default_value_t = EventSearch::MAX_PAGE_SIZE)]
    page_size: u64,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    api: Api,
}

pub async fn run(args: Args) -> Result<Exit, Fail> {
    match args.command {
        Command::Get { id, api } => {
            let event = api.client()?.events().get(&id).await.map_err(api_error)?;
            let mut out = Lines::stdout();
            out.write(&event)?;
            out.finish()?;
            Ok(Exit::Ok)
        }
        Command::Search(search) => run_search(search).await,
    }
}

async fn run_search(args: Search) -> Result<Exit, Fail> {
    let client = args.api.client()?;
    let mut search = EventSearch::new().page_size(args.page_size);
    if let Some(session) = args.session {
        search = search.session_id(session);
    }
    if let Some(event_type) = args.event_type {
        search = search.event_type(event_type);
    }
    if let Some(name) = args.name {
        search = search.event_name(name);
    }
    for (field, value) in args.filters {
        search = search.is(field, value);
    }
    match (args.since, args.until) {
        (Some(since), until) => {
            search = search.date_range(since, until.unwrap_or_else(SystemTime::now));
        }
        (None, Some(_)) => {
            return Err(Fail::new(
                Exit::Usage,
                "--until needs --since: give the start of the range too",
            ));
        }
        (None, None) => {}
    }
    let mut events = client.events().search(search);
    let mut out = Lines::stdout();
    let mut count = Count::new("events", args.quiet);
    while let Some(event) = events.try_next().await.map_err(|e| count.failed(e))? {
        if !out.write(&event)? {
            break;
        }
        count.one();
    }
    out.finish()?;
    count.done();
    Ok(Exit::Ok)
}

fn field_is(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((field, value)) if !field.trim().is_empty() => {
            Ok((field.trim().to_owned(), value.to_owned()))
        }
        _ => Err("expected FIELD=VALUE, such as metadata.customer=acme".to_owned()),
    }
}

/// Milliseconds since the epoch, or an age (`90s`, `15m`, `24h`, `7d`)
/// counted back from now.
fn time(text: &str) -> Result<SystemTime, String> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<u64>() {
        // 10^11 ms is March 1973: a smaller number is seconds, most likely.
        if ms < 100_000_000_000 {
            return Err(format!(
                "{ms} milliseconds is before 1973: give milliseconds since the Unix epoch \
                 (seconds x 1000, such as {}000), or an age such as 24h",
                ms
            ));
        }
        return Ok(UNIX_EPOCH + Duration::from_millis(ms));
    }
    let unit = |suffix: char, seconds: u64| {
        text.strip_suffix(suffix)
            .and_then(|n| n.parse::<u64>().ok())
            .map(|n| Duration::from_secs(n.saturating_mul(seconds)))
    };
    let age = unit('s', 1)
        .or_else(|| unit('m', 60))
        .or_else(|| unit('h', 3600))
        .or_else(|| unit('d', 86_400))
        .ok_or_else(|| {
            "expected milliseconds since the Unix epoch, or an age such as 90s, 15m, 24h, 7d"
                .to_owned()
        })?;
    SystemTime::now()
        .checked_sub(age)
        .ok_or_else(|| "that age reaches before the Unix epoch".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_milliseconds_or_ages() {
        assert_eq!(
            time("1700000000000").unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
        let hour_ago = time("1h").unwrap();
        let age = SystemTime::now().duration_since(hour_ago).unwrap();
        assert!(
            age >= Duration::from_secs(3600) && age < Duration::from_secs(3660),
            "{age:?}"
        );
        assert!(time("yesterday").unwrap_err().contains("such as 90s"));
        assert!(time("1700000000").unwrap_err().contains("1700000000000"));
        assert!(time("5w").is_err());
    }

    #[test]
    fn filters_are_field_equals_value() {
        assert_eq!(
            field_is("metadata.customer=acme=corp").unwrap(),
            ("metadata.customer".to_owned(), "acme=corp".to_owned())
        );
        assert!(field_is("=x").is_err());
        assert!(field_is("metadata.customer").is_err());
    }
}
