//! Event trees as HoneyHive's `/v1` event routes take them: flat.
//!
//! The v1 event (`PostEventRequest` in the published spec) has no nested
//! `children`: a tree built with [`Event::child`](crate::Event::child) goes
//! out as one event per node, in depth-first order (each before its
//! children), linked by `parent_id` (the parent's `event_id`; the root has
//! none, so the server takes the session) and `children_ids`, each
//! carrying the session id. The schema has no `project` (it has a
//! `project_id`, which is not a project's name): it is not sent. `inputs`
//! is required, and sent as `{}` when unset. `event_type` is required and
//! must be one of `model`, `tool`, `chain`, `session`.
//!
//! A batch body is `{"events":[...]}`; each logged tree is serialized once,
//! as its events' JSON objects joined by commas (a [`Flat`]), and batches
//! are those pieces put together.

use bytes::Bytes;
use serde_json::Value;

use crate::api::types::{Event as Wire, PostEventRequest, PostEventRequestEventType};
use crate::error::{Error, Fix};
use crate::session::SessionId;
use crate::tree::{self, Place};

/// What opens and closes a batch body around its events.
const BATCH_OPEN: &[u8] = b"{\"events\":[";
const BATCH_CLOSE: &[u8] = b"]}";
/// The bytes a batch body takes besides its events and their commas.
pub(crate) const FRAMING: usize = BATCH_OPEN.len() + BATCH_CLOSE.len();

/// The length of `joined` bytes of events' JSON with `next` more joined
/// on (the comma between them included): what a batch body holds besides
/// its [`FRAMING`].
pub(crate) fn joined(joined: usize, next: usize) -> usize {
    joined + usize::from(joined > 0) + next
}

/// A createEventBatch body holding `parts` (each one or more events'
/// JSON objects, joined by commas), in order: the one place a batch body
/// is written.
pub(crate) fn batch_body<'a>(parts: impl Iterator<Item = &'a [u8]> + Clone) -> Bytes {
    let json = parts.clone().fold(0, |json, part| joined(json, part.len()));
    let mut body = Vec::with_capacity(FRAMING + json);
    body.extend_from_slice(BATCH_OPEN);
    for (index, part) in parts.enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(part);
    }
    body.extend_from_slice(BATCH_CLOSE);
    Bytes::from(body)
}

/// One logged event tree, flattened and serialized.
#[derive(Clone, Debug)]
pub(crate) struct Flat {
    /// The events' JSON objects, joined by commas.
    pub(crate) json: Bytes,
    /// The root event's id.
    pub(crate) event_id: String,
}

impl Flat {
    /// The bytes of a batch body holding only this tree.
    pub(crate) fn alone_len(&self) -> usize {
        FRAMING + self.json.len()
    }
}

/// The first field in the tree the v1 routes cannot take: an `event_type`
/// that is missing or not one of the four. `Ok` for a tree every route
/// takes. Called before an event is queued or sent, so that the problem
/// is the caller's error, naming the field (`children[1].event_type`).
pub(crate) fn check(event: &Wire) -> Result<(), Error> {
    tree::visit(event, &mut |event, place| {
        event_type(event, place).map(drop)
    })
}

fn event_type(event: &Wire, path: Place<'_>) -> Result<PostEventRequestEventType, Error> {
    match event.event_type.as_deref() {
        None => Err(Error::invalid_fixed_by(
            format!("{path}event_type"),
            "is required by HoneyHive's /v1 event routes",
            Fix::EventType,
        )),
        Some(name) => name.parse().map_err(|_| {
            Error::invalid(
                format!("{path}event_type"),
                format!(
                    "is {name:?}; HoneyHive's /v1 event routes take model, tool, chain or \
                     session"
                ),
            )
        }),
    }
}

/// [`flatten_into`] a new buffer (the tests' form).
#[cfg(test)]
pub(crate) fn flatten(
    session_id: &SessionId,
    event: Wire,
    default_source: Option<&str>,
    size_hint: usize,
) -> Result<Flat, Error> {
    let mut out = Vec::with_capacity(size_hint.saturating_mul(2).saturating_add(128));
    let event_id = flatten_into(&mut out, session_id, event, default_source)?;
    Ok(Flat {
        json: Bytes::from(out),
        event_id,
    })
}

/// Flattens `event` (ids filled) into v1 events of `session_id`,
/// serialized and joined by commas, appended to `out` (nothing when it
/// fails); returns the root event's id. An event without a `source` takes
/// its parent's, and the root `default_source` if it has none.
///
/// # Errors
/// [`Error::InvalidInput`] naming an `event_type` the routes cannot take
/// (see [`check`]).
pub(crate) fn flatten_into(
    out: &mut Vec<u8>,
    session_id: &SessionId,
    mut event: Wire,
    default_source: Option<&str>,
) -> Result<String, Error> {
    let event_id = event.event_id.clone().unwrap_or_default();
    let start = out.len();
    // The `event_id` and `source` of each event above the one written, by
    // depth: its parent's are the last.
    let mut above: Vec<(Option<String>, Option<String>)> = Vec::new();
    let written = tree::visit_mut(&mut event, &mut |event, place| {
        above.truncate(place.depth());
        let (parent_id, inherited_source) = match above.last() {
            Some((id, source)) => (id.as_deref(), source.as_deref()),
            None => (None, default_source),
        };
        let request = request(event, place, session_id, parent_id, inherited_source)?;
        if !place.is_root() {
            out.push(b',');
        }
        // The generated types hold only strings, maps of JSON values and
        // numbers, none of which serde_json refuses.
        serde_json::to_writer(&mut *out, &request)
            .map_err(|e| Error::invalid("event", format!("could not be serialized: {e}")))?;
        above.push((request.event_id, request.source));
        Ok(())
    });
    if let Err(error) = written {
        out.truncate(start);
        return Err(error);
    }
    Ok(event_id)
}

/// `event`'s v1 request: its fields taken (its `children` left, for the
/// walk to go on into), with the session and the links.
fn request(
    event: &mut Wire,
    place: Place<'_>,
    session_id: &SessionId,
    parent_id: Option<&str>,
    inherited_source: Option<&str>,
) -> Result<PostEventRequest, Error> {
    let event_type = event_type(event, place)?;
    let children_ids: Vec<String> = event
        .children
        .iter()
        .map(|child| child.event_id.clone().unwrap_or_default())
        .collect();
    let children = std::mem::take(&mut event.children);
    let Wire {
        children: _,
        config,
        duration,
        end_time,
        error,
        event_id,
        event_name,
        event_type: _,
        feedback,
        inputs,
        metadata,
        metrics,
        outputs,
        // Not in the v1 schema (its `project_id` is an id, not a name).
        project: _,
        session_id: _,
        source,
        start_time,
        user_properties,
    } = std::mem::replace(
        event,
        Wire {
            children,
            ..Wire::default()
        },
    );
    Ok(PostEventRequest {
        children_ids,
        config,
        duration,
        end_time,
        error,
        event_id,
        event_name,
        event_type,
        feedback,
        inputs,
        metadata,
        metrics,
        outputs,
        parent_id: parent_id.map(str::to_owned),
        project_id: None,
        session_id: Some(session_id.as_str().to_owned()),
        source: source.or_else(|| inherited_source.map(str::to_owned)),
        start_time,
        user_properties,
    })
}

/// The tree a [`Flat`] was made from, as this crate's event JSON (children
/// nested, `session_id` kept, `parent_id` and `children_ids` dropped): what
/// a dead letter carries, whatever the route, so that it can be replayed
/// through any of them. `Null` if the bytes are not what [`flatten_into`]
/// wrote.
pub(crate) fn unflatten(json: &[u8]) -> Value {
    let mut list = Vec::with_capacity(json.len() + 2);
    list.push(b'[');
    list.extend_from_slice(json);
    list.push(b']');
    let Ok(events) = serde_json::from_slice::<Vec<Value>>(&list) else {
        return Value::Null;
    };
    let mut events = events.into_iter();
    nest(&mut events).unwrap_or(Value::Null)
}

/// Takes the next event, then as many subtrees as it has children.
fn nest(events: &mut impl Iterator<Item = Value>) -> Option<Value> {
    let Value::Object(mut event) = events.next()? else {
        return None;
    };
    let children = match event.remove("children_ids") {
        Some(Value::Array(ids)) => ids.len(),
        _ => 0,
    };
    event.remove("parent_id");
    let nested: Option<Vec<Value>> = (0..children).map(|_| nest(events)).collect();
    let nested = nested?;
    if !nested.is_empty() {
        event.insert("children".to_owned(), Value::Array(nested));
    }
    Some(Value::Object(event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use serde_json::json;

    fn wire(event: Event) -> Wire {
        event.into_api().unwrap()
    }

    fn parse(flat: &Flat) -> Vec<Value> {
        let body = batch_body(std::iter::once(&flat.json[..]));
        let value: Value = serde_json::from_slice(&body).unwrap();
        value["events"].as_array().unwrap().clone()
    }

    #[test]
    fn a_tree_goes_out_flat_linked_by_ids_each_with_the_session() {
        let tree = Event::chain("agent")
            .event_id("root")
            .project("p")
            .source("prod")
            .inputs(json!({"q": 1}))
            .child(
                Event::model("m")
                    .event_id("m1")
                    .child(Event::tool("t").event_id("t1").source("eval")),
            )
            .child(Event::tool("t2").event_id("t2"));
        let flat = flatten(&"s-1".into(), wire(tree), Some("default"), 0).unwrap();
        assert_eq!(flat.event_id, "root");
        assert_eq!(
            parse(&flat),
            vec![
                json!({"event_id": "root", "event_name": "agent", "event_type": "chain",
                       "inputs": {"q": 1}, "session_id": "s-1", "source": "prod",
                       "children_ids": ["m1", "t2"]}),
                json!({"event_id": "m1", "event_name": "m", "event_type": "model", "inputs": {},
                       "session_id": "s-1", "source": "prod", "parent_id": "root",
                       "children_ids": ["t1"]}),
                json!({"event_id": "t1", "event_name": "t", "event_type": "tool", "inputs": {},
                       "session_id": "s-1", "source": "eval", "parent_id": "m1"}),
                json!({"event_id": "t2", "event_name": "t2", "event_type": "tool", "inputs": {},
                       "session_id": "s-1", "source": "prod", "parent_id": "root"}),
            ]
        );
    }

    #[test]
    fn the_default_source_fills_only_a_root_without_one() {
        let flat = flatten(
            &"s".into(),
            wire(Event::tool("t").event_id("e")),
            Some("ci"),
            0,
        )
        .unwrap();
        assert_eq!(parse(&flat)[0]["source"], "ci");
        let flat = flatten(&"s".into(), wire(Event::tool("t").event_id("e")), None, 0).unwrap();
        assert!(parse(&flat)[0].get("source").is_none());
    }

    #[test]
    fn a_missing_or_unknown_event_type_is_refused_naming_its_place() {
        let missing = wire(Event::default().name("x"));
        let err = check(&missing).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid event_type: is required"),
            "{err}"
        );
        let mut unknown = wire(
            Event::chain("c")
                .child(Event::tool("a"))
                .child(Event::tool("b")),
        );
        unknown.children[1].event_type = Some("span".into());
        let err = check(&unknown).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid children[1].event_type: is \"span\""),
            "{err}"
        );
        let err = flatten(&"s".into(), unknown, None, 0).unwrap_err();
        assert!(err.to_string().contains("children[1].event_type"), "{err}");
    }

    #[test]
    fn unflatten_gives_back_the_tree_as_logged_without_the_links() {
        let tree = Event::chain("agent")
            .event_id("root")
            .child(
                Event::model("m")
                    .event_id("m1")
                    .child(Event::tool("t").event_id("t1")),
            )
            .child(Event::tool("t2").event_id("t2"));
        let flat = flatten(&"s".into(), wire(tree), None, 0).unwrap();
        assert_eq!(
            unflatten(&flat.json),
            json!({"event_id": "root", "event_name": "agent", "event_type": "chain",
                   "inputs": {}, "session_id": "s", "children": [
                {"event_id": "m1", "event_name": "m", "event_type": "model", "inputs": {},
                 "session_id": "s", "children": [
                    {"event_id": "t1", "event_name": "t", "event_type": "tool", "inputs": {},
                     "session_id": "s"}]},
                {"event_id": "t2", "event_name": "t2", "event_type": "tool", "inputs": {},
                 "session_id": "s"}]})
        );
        assert_eq!(unflatten(b"not json"), Value::Null);
    }
}
