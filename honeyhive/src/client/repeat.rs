//! Which generated calls may be sent again after a failure: the one table
//! `client.raw()`'s retries follow.
//!
//! A repeat is safe when it cannot do a second time what the first attempt
//! may already have done:
//! - GET, HEAD, PUT and DELETE are idempotent (RFC 9110 §9.2.2);
//! - a POST that only reads ([`READS`]) or sets a state to a value the
//!   request names ([`SETS`]);
//! - a POST whose body carries the ids the client chose for what it creates
//!   ([`CLIENT_IDS`]): HoneyHive records an id once, so a repeat is the same
//!   record. Without them the server picks new ids, and a repeat would make
//!   a second record, so such a request is sent once.
//!
//! Every other POST (creating a dataset, a datapoint, a metric, running a
//! metric…) is sent once, and sent again only when it provably never
//! reached the server: the connection was never made.

use reqwest::Method;
use serde_json::Value;

/// POSTs that only read.
pub(crate) const READS: &[&str] = &["searchEvents", "exportEventsLegacy"];

/// POSTs that set a state to a value the request names.
pub(crate) const SETS: &[&str] = &["deployMetricVersion"];

/// POSTs whose body carries client-chosen ids for what they create, as JSON
/// pointers (`*`: every item of an array). A repeat is safe when every one
/// is there and not empty.
pub(crate) const CLIENT_IDS: &[(&str, &[&str])] = &[
    ("logEvent", &["/event_id"]),
    ("createEvent", &["/event_id", "/session_id"]),
    (
        "createEventBatch",
        &["/events/*/event_id", "/events/*/session_id"],
    ),
    ("createSession", &["/session_id"]),
    ("createSessionEventBatch", &["/events/*/event_id"]),
    ("createRun", &["/run_id"]),
    (
        "createEventLegacy",
        &["/event/event_id", "/event/session_id"],
    ),
    ("startSessionLegacy", &["/session/session_id"]),
];

/// Whether an attempt of this call that failed may be sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Any retryable failure is retried.
    Safe,
    /// Only a failure to connect is retried: the request never left.
    OnlyUnsent,
}

/// Whether `name` (the spec's operationId, as the table says it) is
/// `operation_id`, as the spec or the generated code (snake case) says it.
pub(super) fn is(name: &str, operation_id: &str) -> bool {
    name == operation_id || snake(name) == operation_id
}

/// `name` (camel case, as the spec says it) in snake case, as the
/// generated code says it.
fn snake(name: &str) -> String {
    let mut snake = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    snake
}

/// What the table says of `operation_id` (the spec's, or the generated
/// method's name), sent with `method` and `body`.
pub(crate) fn repeat(method: &Method, operation_id: &str, body: Option<&[u8]>) -> Repeat {
    if method != Method::POST {
        return if method.is_idempotent() {
            Repeat::Safe
        } else {
            Repeat::OnlyUnsent
        };
    }
    if READS.iter().chain(SETS).any(|name| is(name, operation_id)) {
        return Repeat::Safe;
    }
    let Some((_, ids)) = CLIENT_IDS.iter().find(|(name, _)| is(name, operation_id)) else {
        return Repeat::OnlyUnsent;
    };
    let Some(body) = body.and_then(|b| serde_json::from_slice::<Value>(b).ok()) else {
        return Repeat::OnlyUnsent;
    };
    // A batch put in one new session (`single_session`) makes a session
    // the server names: the spec gives the client no field to name it.
    let new_session = body.get("single_session") == Some(&Value::Bool(true));
    let all_named = ids.iter().all(|pointer| {
        let steps: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
        present(&body, &steps)
    });
    if all_named && !new_session {
        Repeat::Safe
    } else {
        Repeat::OnlyUnsent
    }
}

/// Whether every value at `steps` (`*`: each item of a non-empty array) is
/// there, and neither null nor an empty string.
fn present(value: &Value, steps: &[&str]) -> bool {
    match steps.split_first() {
        None => !(value.is_null() || value.as_str() == Some("")),
        Some((&"*", rest)) => value
            .as_array()
            .is_some_and(|items| !items.is_empty() && items.iter().all(|i| present(i, rest))),
        Some((key, rest)) => value.get(*key).is_some_and(|v| present(v, rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(operation_id: &str, body: Value) -> Repeat {
        repeat(
            &Method::POST,
            operation_id,
            Some(&body.to_string().into_bytes()),
        )
    }

    #[test]
    fn idempotent_methods_repeat_and_an_unknown_post_is_sent_once() {
        for method in [Method::GET, Method::PUT, Method::DELETE, Method::HEAD] {
            assert_eq!(repeat(&method, "anything", None), Repeat::Safe, "{method}");
        }
        assert_eq!(
            repeat(&Method::PATCH, "patchThing", None),
            Repeat::OnlyUnsent
        );
        assert_eq!(
            post("createDataset", serde_json::json!({"name": "d"})),
            Repeat::OnlyUnsent
        );
        assert_eq!(post("runMetric", serde_json::json!({})), Repeat::OnlyUnsent);
        assert_eq!(post("searchEvents", serde_json::json!({})), Repeat::Safe);
        assert_eq!(
            post("search_events", serde_json::json!({})),
            Repeat::Safe,
            "as generated"
        );
        assert_eq!(
            post("deployMetricVersion", serde_json::json!({})),
            Repeat::Safe
        );
    }

    #[test]
    fn a_post_repeats_only_when_every_id_it_creates_is_in_its_body() {
        let event = |id: &str| serde_json::json!({"event_id": id, "session_id": "s"});
        assert_eq!(post("createEvent", event("e")), Repeat::Safe);
        assert_eq!(post("createEvent", event("")), Repeat::OnlyUnsent);
        assert_eq!(
            post("createEvent", serde_json::json!({"event_id": "e"})),
            Repeat::OnlyUnsent
        );
        assert_eq!(
            post(
                "createEventBatch",
                serde_json::json!({"events": [event("a"), event("b")]})
            ),
            Repeat::Safe
        );
        assert_eq!(
            post(
                "createEventBatch",
                serde_json::json!({"events": [event("a"), {"session_id": "s"}]})
            ),
            Repeat::OnlyUnsent,
            "one event without an id"
        );
        assert_eq!(
            post("createEventBatch", serde_json::json!({"events": []})),
            Repeat::OnlyUnsent
        );
        assert_eq!(
            post(
                "createEventBatch",
                serde_json::json!({"events": [event("a")], "single_session": true})
            ),
            Repeat::OnlyUnsent,
            "the new session has no id of the client's"
        );
        assert_eq!(
            post("createRun", serde_json::json!({"name": "r"})),
            Repeat::OnlyUnsent
        );
        assert_eq!(
            post(
                "createRun",
                serde_json::json!({"name": "r", "run_id": "r-1"})
            ),
            Repeat::Safe
        );
        assert_eq!(
            repeat(&Method::POST, "createSession", Some(b"not json")),
            Repeat::OnlyUnsent
        );
    }

    #[test]
    fn the_readme_table_names_every_post_the_table_repeats() {
        let readme = include_str!("../../../README.md");
        let named = READS
            .iter()
            .chain(SETS)
            .chain(CLIENT_IDS.iter().map(|(id, _)| id));
        for id in named {
            assert!(
                readme.contains(&format!("`{id}`")),
                "README.md's table lacks {id}"
            );
        }
    }

    #[test]
    fn the_table_names_only_posts_of_the_spec() {
        let spec: Value = serde_json::from_str(honeyhive_gen::OPENAPI_JSON).unwrap();
        let posts: Vec<&str> = spec["paths"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(|item| item.pointer("/post/operationId").and_then(Value::as_str))
            .collect();
        let named = READS
            .iter()
            .chain(SETS)
            .chain(CLIENT_IDS.iter().map(|(id, _)| id));
        for id in named {
            assert!(posts.contains(id), "{id} is not a POST of openapi.yaml");
        }
    }
}
