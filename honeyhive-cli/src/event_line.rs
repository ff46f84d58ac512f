//! One JSONL line as an event: `{"session_id": "...", "event": {...}}`
//! (other keys ignored, so dead-letter files replay as they are), or a bare
//! event with the session from `--session` or its own `session_id`.

use honeyhive::api::types;
use honeyhive::{Route, SessionId};
use serde_json::{Map, Value};

use crate::config::at_the_shell;
use crate::fields;
use uuid::Uuid;

/// A line the command writes (its rejects files, `mock --print`): an
/// [`honeyhive::EventLine`], as dead-letter files hold them (so `send`
/// replays it as it is), with what only the command knows beside it.
/// Fields that are `None` are left out of the line.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// The input file a rejected line came from (`send`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Its line number there, from 1 (`send`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The operation that carried the event (`mock --print`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The session, the event, and why it was not delivered.
    #[serde(flatten)]
    pub entry: honeyhive::EventLine,
    /// The line's text, for a line that was not an event at all (`send`'s
    /// rejects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

impl From<honeyhive::EventLine> for Record {
    fn from(entry: honeyhive::EventLine) -> Self {
        Record {
            entry,
            ..Record::default()
        }
    }
}

/// An event ready to log, with the id it will be recorded under.
#[derive(Debug)]
pub struct ParsedLine {
    pub session_id: String,
    pub event_id: String,
    pub event: honeyhive::Event,
}

/// Why a line is not an event that can be sent.
#[derive(Debug)]
pub struct Refused {
    /// Each problem, naming its field.
    pub problems: Vec<String>,
    /// The line's session and event (ids filled), when it had both: what a
    /// rejects file keeps, so the event can be fixed where it is.
    pub parsed: Option<(String, Value)>,
}

impl Refused {
    fn one(problem: String) -> Refused {
        Refused {
            problems: vec![problem],
            parsed: None,
        }
    }

    /// The problems, as one line.
    pub fn reason(&self) -> String {
        self.problems.join("; ")
    }
}

/// Ids for events without one: `Uuid::new_v5(NAMESPACE, ...)`. Fixed
/// forever, or re-sending an old file would record its events again.
const NAMESPACE: Uuid = Uuid::from_u128(0x6f1d_3c2a_8b4e_5a70_9c11_d2e3_f405_1627);

/// The session and the event JSON of a line, as sent (ids not filled yet).
pub fn split(line: &str, session: Option<&str>) -> Result<(String, Map<String, Value>), String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut object) = value else {
        return Err(
            "not a JSON object: each line is an event or {\"session_id\": ..., \"event\": {...}}"
                .to_owned(),
        );
    };
    // A wrapped line's own session wins over --session (dead letters name
    // theirs); for a bare event, --session wins over its `session_id`.
    let (first, second, event) = match object.remove("event") {
        Some(Value::Object(event)) => {
            (object.remove("session_id"), session.map(Value::from), event)
        }
        Some(_) => return Err("event: not a JSON object".to_owned()),
        None if object.contains_key("raw") && object.contains_key("reason") => {
            return Err(
                "raw: a rejects-file line for text that was not an event; fix the text in `raw` \
                 and put the event in its place"
                    .to_owned(),
            );
        }
        None => {
            let own = object.get("session_id").cloned();
            (session.map(Value::from), own, object)
        }
    };
    let session_id = match first.or(second) {
        Some(Value::String(id)) => id,
        Some(_) => return Err("session_id: not a string".to_owned()),
        None => {
            return Err("session_id: missing; put it in the line or pass --session ID".to_owned());
        }
    };
    Ok((session_id, event))
}

/// The one checker of `send` and `validate`: line number `number` (the
/// first is 1) of a file as the event `send` would log, or every reason
/// it would not: not JSON, a key that is not a field of an event (serde would drop
/// it), a field of the wrong type, or what `route` refuses
/// ([`Route::check`], which the Logger asks too). An event (or child)
/// without an `event_id` gets one derived from the session, the line's
/// number and its bytes, so sending the same file again records nothing
/// twice.
pub fn parse(
    line: &str,
    number: u64,
    session: Option<&str>,
    route: Route,
) -> Result<ParsedLine, Refused> {
    let parsed = read(line, number, session)?;
    match route.check(&SessionId::from(parsed.session_id.as_str()), &parsed.event) {
        Ok(()) => Ok(parsed),
        Err(error) => {
            let problem = match &error {
                honeyhive::Error::InvalidInput {
                    field,
                    problem,
                    fix,
                    ..
                } => {
                    let fix = fix.map(|fix| format!("; {}", at_the_shell(fix)));
                    format!("{field}: {problem}{}", fix.unwrap_or_default())
                }
                other => other.to_string(),
            };
            let event = serde_json::to_value(parsed.event.as_api()).unwrap_or(Value::Null);
            Err(Refused {
                problems: vec![problem],
                parsed: Some((parsed.session_id, event)),
            })
        }
    }
}

/// [`parse`] up to the route's check.
fn read(line: &str, number: u64, session: Option<&str>) -> Result<ParsedLine, Refused> {
    // The common case, a wrapped line with a valid event, straight into the
    // generated type (its keys looked at apart); anything else (bare
    // events, errors) through a JSON value, which can say what is wrong.
    if let Ok(Wrapped {
        session_id,
        event: Some(mut event),
    }) = serde_json::from_str::<Wrapped>(line)
        && let Some(session_id) = session_id.or_else(|| session.map(str::to_owned))
        && fields::unknown_in_line(line).is_empty()
    {
        let derived = derive(&session_id, number, line);
        let event_id = fill_typed_ids(&mut event, derived);
        return Ok(ParsedLine {
            session_id,
            event_id,
            event: honeyhive::Event::from(event),
        });
    }
    let (session_id, mut event) = split(line, session).map_err(Refused::one)?;
    let unknown = fields::unknown_in_line(line);
    let derived = Uuid::new_v5(
        &NAMESPACE,
        format!("{session_id}\n{number}\n{line}").as_bytes(),
    );
    let filled = fill_ids(&mut event, derived);
    let value = Value::Object(event);
    let refused = |problems| Refused {
        problems,
        parsed: Some((session_id.clone(), value.clone())),
    };
    let event_id = filled.map_err(|problem| refused(vec![problem]))?;
    if !unknown.is_empty() {
        return Err(refused(unknown));
    }
    match serde_json::from_value::<types::Event>(value.clone()) {
        Ok(api) => Ok(ParsedLine {
            session_id,
            event_id,
            event: honeyhive::Event::from(api),
        }),
        Err(e) => Err(refused(match honeyhive::validate::event(&value) {
            Err(problems) => problems.iter().map(|p| field_problem(p)).collect(),
            Ok(()) => vec![format!("event: {e}")],
        })),
    }
}

/// `{"session_id": ..., "event": {...}}`, other keys ignored.
#[derive(serde::Deserialize)]
/// The fields of an [`honeyhive::EventLine`] the reader needs, the event
/// typed at once (`EventLine`'s flattened `undelivered` would buffer every
/// line first); other fields are ignored, so any such line replays.
struct Wrapped {
    session_id: Option<String>,
    event: Option<types::Event>,
}

/// The id of an event without one: from its session, line number and bytes.
fn derive(session_id: &str, number: u64, line: &str) -> Uuid {
    let mut name = Vec::with_capacity(session_id.len() + line.len() + 24);
    name.extend_from_slice(session_id.as_bytes());
    name.push(b'\n');
    name.extend_from_slice(number.to_string().as_bytes());
    name.push(b'\n');
    name.extend_from_slice(line.as_bytes());
    Uuid::new_v5(&NAMESPACE, &name)
}

/// A child's id, from its parent's id and its place.
fn derive_child(parent: &str, index: usize) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("{parent}/{index}").as_bytes())
}

/// [`fill_ids`] on the generated type.
fn fill_typed_ids(event: &mut types::Event, derived: Uuid) -> String {
    let id = event
        .event_id
        .get_or_insert_with(|| derived.to_string())
        .clone();
    for (index, child) in event.children.iter_mut().enumerate() {
        fill_typed_ids(child, derive_child(&id, index));
    }
    id
}

/// Gives `event` (and each child without one) an id; returns the event's.
fn fill_ids(event: &mut Map<String, Value>, derived: Uuid) -> Result<String, String> {
    let id = match event.get("event_id") {
        Some(Value::String(id)) => id.clone(),
        None | Some(Value::Null) => {
            let id = derived.to_string();
            event.insert("event_id".to_owned(), Value::String(id.clone()));
            id
        }
        Some(_) => return Err("event_id: not a string".to_owned()),
    };
    if let Some(Value::Array(children)) = event.get_mut("children") {
        for (index, child) in children.iter_mut().enumerate() {
            if let Value::Object(child) = child {
                fill_ids(child, derive_child(&id, index))?;
            }
        }
    }
    Ok(id)
}

/// `/children/0/duration: "x" is not of type "number"` as
/// `children/0/duration: "x" is not of type "number"`; the whole event is
/// `event`.
pub fn field_problem(problem: &str) -> String {
    match problem.strip_prefix('/') {
        Some(rest) if rest.starts_with(':') => format!("event{rest}"),
        Some(rest) => rest.to_owned(),
        None => problem.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_line_is_its_session_and_event_and_keeps_the_id() {
        let line = r#"{"at_ms":1,"session_id":"s-1","event_id":"e-1","reason":"x","status":null,"event":{"event_id":"e-1","event_name":"n","event_type":"tool"}}"#;
        let parsed = parse(line, 7, None, Route::Event).unwrap();
        assert_eq!(parsed.session_id, "s-1");
        assert_eq!(parsed.event_id, "e-1");
        assert_eq!(parsed.event.as_api().event_name.as_deref(), Some("n"));
    }

    #[test]
    fn ids_are_derived_from_session_line_and_bytes_and_reach_the_children() {
        let line = r#"{"event_name":"n","children":[{"event_name":"c"},{"event_name":"d","event_id":"given"}]}"#;
        let a = parse(line, 3, Some("s"), Route::Event).unwrap();
        let again = parse(line, 3, Some("s"), Route::Event).unwrap();
        assert_eq!(a.event_id, again.event_id);
        assert_eq!(Uuid::parse_str(&a.event_id).unwrap().get_version_num(), 5);
        assert_ne!(
            parse(line, 4, Some("s"), Route::Event).unwrap().event_id,
            a.event_id
        );
        assert_ne!(
            parse(line, 3, Some("t"), Route::Event).unwrap().event_id,
            a.event_id
        );
        let children = &a.event.as_api().children;
        let first = children[0].event_id.clone().unwrap();
        assert_eq!(
            first,
            parse(line, 3, Some("s"), Route::Event)
                .unwrap()
                .event
                .as_api()
                .children[0]
                .event_id
                .clone()
                .unwrap()
        );
        assert_ne!(first, a.event_id);
        assert_eq!(children[1].event_id.as_deref(), Some("given"));
    }

    #[test]
    fn the_typed_and_the_value_paths_give_the_same_ids() {
        // Wrapped and valid: the typed path. Same event with a key the
        // typed path cannot take as given (`event` a bare event): the value path.
        let wrapped =
            r#"{"session_id":"s","event":{"event_name":"n","children":[{"event_name":"c"}]}}"#;
        let typed = parse(wrapped, 9, None, Route::Event).unwrap();
        let (session, mut event) = split(wrapped, None).unwrap();
        let by_value = fill_ids(&mut event, derive(&session, 9, wrapped)).unwrap();
        assert_eq!(typed.event_id, by_value);
        assert_eq!(
            typed.event.as_api().children[0].event_id.as_deref(),
            event["children"][0]["event_id"].as_str()
        );
    }

    #[test]
    fn bad_lines_say_what_is_wrong_and_where() {
        let reason =
            |line: &str, session| parse(line, 1, session, Route::Event).unwrap_err().reason();
        assert!(reason("{", Some("s")).starts_with("not JSON"));
        assert!(reason("[1]", Some("s")).starts_with("not a JSON object"));
        assert!(reason(r#"{"event_name":"n"}"#, None).starts_with("session_id: missing"));
        let wrong = parse(
            r#"{"event_name":"n","duration":"12ms"}"#,
            1,
            Some("s"),
            Route::Event,
        )
        .unwrap_err();
        assert!(wrong.reason().starts_with("duration: "), "{wrong:?}");
        // A line that is an event, but a wrong one, keeps its parts.
        let (session, event) = wrong.parsed.expect("session and event");
        assert_eq!(session, "s");
        assert_eq!(event["duration"], "12ms");
        assert!(event["event_id"].is_string(), "ids filled: {event}");
        assert!(reason(r#"{"event_id":5}"#, Some("s")).starts_with("event_id:"));
        let reject = r#"{"file":"f","line":3,"raw":"nope","reason":"not JSON"}"#;
        assert!(reason(reject, Some("s")).starts_with("raw: "));
    }

    #[test]
    fn a_bare_event_takes_its_own_session_unless_one_is_given() {
        let line = r#"{"session_id":"own","event_name":"n"}"#;
        assert_eq!(
            parse(line, 1, None, Route::Event).unwrap().session_id,
            "own"
        );
        assert_eq!(
            parse(line, 1, Some("given"), Route::Event)
                .unwrap()
                .session_id,
            "given"
        );
        let wrapped = r#"{"session_id":"line","event":{"event_name":"n"}}"#;
        assert_eq!(
            parse(wrapped, 1, Some("given"), Route::Event)
                .unwrap()
                .session_id,
            "line"
        );
        let unnamed = r#"{"event":{"event_name":"n"}}"#;
        assert_eq!(
            parse(unnamed, 1, Some("given"), Route::Event)
                .unwrap()
                .session_id,
            "given"
        );
    }
}
