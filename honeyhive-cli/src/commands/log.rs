//! `honeyhive log`: one event from the shell.

use honeyhive::{Event, EventType, SessionId};
use serde_json::{Map, Value};

use crate::config::{Api, api_error};
use crate::exit::{Exit, Fail};

/// Logs one event and prints its id on stdout.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The event's type: model, tool, chain or session.
    #[arg(long = "type", value_name = "TYPE", value_parser = crate::input::event_type)]
    event_type: EventType,
    /// The event's name, such as the model or tool.
    #[arg(long)]
    name: String,
    /// The session [default: a new one, printed on stderr once the event is
    /// recorded].
    #[arg(long, value_name = "ID")]
    session: Option<String>,
    /// The event's id [default: a new UUID].
    #[arg(long, value_name = "ID")]
    event_id: Option<String>,
    /// Inputs, a JSON object.
    #[arg(long, value_name = "JSON")]
    inputs: Option<String>,
    /// Outputs, a JSON object.
    #[arg(long, value_name = "JSON")]
    outputs: Option<String>,
    /// Configuration (such as the model's parameters), a JSON object.
    #[arg(long, value_name = "JSON")]
    config: Option<String>,
    /// Metadata, a JSON object.
    #[arg(long, value_name = "JSON")]
    metadata: Option<String>,
    /// Metrics, a JSON object.
    #[arg(long, value_name = "JSON")]
    metrics: Option<String>,
    /// Feedback, a JSON object.
    #[arg(long, value_name = "JSON")]
    feedback: Option<String>,
    /// The error, if the step failed.
    #[arg(long)]
    error: Option<String>,
    /// How long the step took, in milliseconds.
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    duration_ms: Option<f64>,
    /// When the step started, in milliseconds since the Unix epoch.
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    start_time_ms: Option<f64>,
    /// When the step ended, in milliseconds since the Unix epoch.
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    end_time_ms: Option<f64>,
    #[command(flatten)]
    api: Api,
}

pub async fn run(args: Args) -> Result<Exit, Fail> {
    let event = event(&args)?;
    let client = args.api.client()?;
    let (session, new) = match &args.session {
        Some(id) => (SessionId::from(id.as_str()), false),
        None => (SessionId::new(), true),
    };
    match client.log_event(&session, event).await {
        Ok(logged) => {
            if logged.sampled_out {
                eprintln!("honeyhive log: the session is sampled out (--sample): nothing was sent");
            } else if new {
                // Named only once it holds the event: a refused event
                // leaves no session to name.
                eprintln!("honeyhive log: session {}", session.as_str());
            }
            crate::exit::out(&logged.event_id);
            Ok(Exit::Ok)
        }
        Err(error) => {
            // A server error, or no answer in time: the event may be
            // recorded, so its new session is worth knowing. (A refused
            // connection or a 4xx recorded nothing.)
            let maybe_recorded = matches!(error, honeyhive::Error::Timeout { .. })
                || error
                    .status()
                    .is_some_and(|status| status.is_server_error());
            if new && maybe_recorded {
                eprintln!(
                    "honeyhive log: session {} (the event may have been recorded)",
                    session.as_str()
                );
            }
            Err(api_error(error))
        }
    }
}

fn event(args: &Args) -> Result<Event, Fail> {
    let mut event = Event::new(args.event_type, &args.name);
    if let Some(id) = &args.event_id {
        event = event.event_id(id);
    }
    type Setter = fn(Event, Map<String, Value>) -> Event;
    let objects: [(&str, &Option<String>, Setter); 6] = [
        ("--inputs", &args.inputs, |e, v| e.inputs(v)),
        ("--outputs", &args.outputs, |e, v| e.outputs(v)),
        ("--config", &args.config, |e, v| e.config(v)),
        ("--metadata", &args.metadata, |e, v| e.metadata(v)),
        ("--metrics", &args.metrics, |e, v| e.metrics(v)),
        ("--feedback", &args.feedback, |e, v| e.feedback(v)),
    ];
    for (flag, text, set) in objects {
        if let Some(text) = text {
            let object = match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(object)) => object,
                Ok(_) => {
                    return Err(Fail::new(
                        Exit::Usage,
                        format!("{flag}: not a JSON object, such as '{{\"q\": \"hi\"}}'"),
                    ));
                }
                Err(e) => return Err(Fail::new(Exit::Usage, format!("{flag}: not JSON ({e})"))),
            };
            event = set(event, object);
        }
    }
    if let Some(error) = &args.error {
        event = event.error(error);
    }
    if let Some(ms) = args.duration_ms {
        event = event.duration_ms(ms);
    }
    if let Some(ms) = args.start_time_ms {
        event = event.start_time_ms(ms);
    }
    if let Some(ms) = args.end_time_ms {
        event = event.end_time_ms(ms);
    }
    Ok(event)
}
