//! `cargo xtask diff`: a semantic diff of two OpenAPI documents, each change
//! classified from a client's point of view. The rules are listed in the
//! CONTRIBUTING.md ("When the API changes") and each has a fixture-driven test.
//!
//! Both documents are first read the 3.0 way (`import::normalize`), so a 3.1
//! document and its 3.0 transcription compare equal.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use serde_json::{Value, json};

use crate::import::normalize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Breaking,
    Compatible,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub severity: Severity,
    pub location: String,
    /// The operation's `operationId` (the generated method's name), for a
    /// change inside an operation: `old -> new` when it changed.
    pub operation_id: Option<String>,
    pub message: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.severity {
            Severity::Breaking => "BREAKING  ",
            Severity::Compatible => "compatible",
        };
        match &self.operation_id {
            Some(id) => write!(f, "{tag}  {} ({id}): {}", self.location, self.message),
            None => write!(f, "{tag}  {}: {}", self.location, self.message),
        }
    }
}

impl Change {
    pub fn to_json(&self) -> Value {
        json!({
            "severity": match self.severity { Severity::Breaking => "breaking", Severity::Compatible => "compatible" },
            "location": self.location,
            "operation_id": self.operation_id,
            "message": self.message,
        })
    }
}

/// Which way data flows through a schema: the client writes requests and
/// reads responses, so the same change can break one and not the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Flow {
    Request,
    Response,
}

struct Differ<'a> {
    old: &'a Value,
    new: &'a Value,
    changes: Vec<Change>,
    /// (old ref, new ref, flow) pairs being compared, against recursion.
    visiting: HashSet<(String, String, Flow)>,
    /// The operation being compared, for the changes noted inside it.
    operation_id: Option<String>,
}

/// The changes from `old` to `new`, breaking first.
pub fn diff(old: Value, new: Value) -> Vec<Change> {
    let (old, new) = (normalize(old), normalize(new));
    let mut differ = Differ {
        old: &old,
        new: &new,
        changes: Vec::new(),
        visiting: HashSet::new(),
        operation_id: None,
    };
    differ.servers();
    differ.security_schemes();
    differ.operations();
    differ.components();
    let mut changes = differ.changes;
    changes.sort_by_key(|a| a.severity);
    changes
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    let mut current = value;
    for _ in 0..32 {
        match current
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
        {
            Some(pointer) => match doc.pointer(pointer) {
                Some(target) => current = target,
                None => return current,
            },
            None => return current,
        }
    }
    current
}

fn strings(value: Option<&Value>) -> BTreeSet<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The schemes an operation requires: any one requirement set must be met.
fn security(doc: &Value, operation: &Value) -> BTreeSet<String> {
    let requirements = operation.get("security").or_else(|| doc.get("security"));
    requirements
        .and_then(Value::as_array)
        .map(|sets| {
            sets.iter()
                .map(|set| {
                    let mut names: Vec<&str> = set
                        .as_object()
                        .map(|m| m.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    names.sort_unstable();
                    names.join("+")
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Differ<'_> {
    fn note(&mut self, severity: Severity, location: &str, message: impl Into<String>) {
        self.changes.push(Change {
            severity,
            location: location.to_owned(),
            operation_id: self.operation_id.clone(),
            message: message.into(),
        });
    }

    fn servers(&mut self) {
        let urls = |doc: &Value| -> BTreeSet<String> {
            doc.get("servers")
                .and_then(Value::as_array)
                .map(|s| {
                    s.iter()
                        .filter_map(|s| s.get("url").and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (old, new) = (urls(self.old), urls(self.new));
        for gone in old.difference(&new) {
            self.note(
                Severity::Breaking,
                "servers",
                format!("server {gone} removed: clients using it as their base URL fail"),
            );
        }
        for added in new.difference(&old) {
            self.note(
                Severity::Compatible,
                "servers",
                format!("server {added} added"),
            );
        }
    }

    fn security_schemes(&mut self) {
        let schemes = |doc: &Value| {
            doc.pointer("/components/securitySchemes")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let (old, new) = (schemes(self.old), schemes(self.new));
        for (name, scheme) in &old {
            match new.get(name) {
                None => self.note(
                    Severity::Breaking,
                    "security",
                    format!("security scheme {name} removed"),
                ),
                Some(changed) => {
                    for field in ["type", "scheme", "in", "name", "bearerFormat"] {
                        let (a, b) = (scheme.get(field), changed.get(field));
                        if a != b && field != "bearerFormat" {
                            self.note(
                                Severity::Breaking,
                                "security",
                                format!(
                                    "security scheme {name}: {field} {} -> {}",
                                    show(a),
                                    show(b)
                                ),
                            );
                        }
                    }
                }
            }
        }
        for name in new.keys().filter(|k| !old.contains_key(*k)) {
            self.note(
                Severity::Compatible,
                "security",
                format!("security scheme {name} added"),
            );
        }
    }

    fn operations(&mut self) {
        let list = |doc: &Value| -> BTreeMap<String, Value> {
            let mut found = BTreeMap::new();
            for (path, item) in doc
                .get("paths")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                for method in METHODS {
                    if let Some(op) = item.get(method) {
                        found.insert(format!("{} {path}", method.to_uppercase()), op.clone());
                    }
                }
            }
            found
        };
        let (old, new) = (list(self.old), list(self.new));
        let id = |op: &Value| {
            op.get("operationId")
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        for (key, op) in &old {
            let changed = new.get(key);
            self.operation_id = match (id(op), changed.and_then(id)) {
                (Some(a), Some(b)) if a != b => Some(format!("{a} -> {b}")),
                (a, b) => a.or(b),
            };
            match changed {
                None => self.note(Severity::Breaking, key, "operation removed"),
                Some(changed) => self.operation(key, op, changed),
            }
        }
        for (key, op) in new.iter().filter(|(k, _)| !old.contains_key(*k)) {
            self.operation_id = id(op);
            self.note(Severity::Compatible, key, "operation added");
        }
        self.operation_id = None;
    }

    /// The schemas by name: progenitor makes a type of each. One that an
    /// operation uses on both sides is compared at that operation; the
    /// others (no longer used, or not yet) are said here when removed,
    /// added, or changed under the same name.
    fn components(&mut self) {
        let schemas = |doc: &Value| {
            doc.pointer("/components/schemas")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let (old, new) = (schemas(self.old), schemas(self.new));
        let (used_old, used_new) = (used_schemas(self.old), used_schemas(self.new));
        for (name, schema) in &old {
            if used_old.contains(name) && used_new.contains(name) {
                continue;
            }
            let at = format!("components/schemas/{name}");
            match new.get(name) {
                None => self.note(
                    Severity::Breaking,
                    &at,
                    format!("schema removed: the generated type {name} is gone"),
                ),
                Some(changed) if shape(changed) != shape(schema) => {
                    let (was, now) = (property_names(schema), property_names(changed));
                    let gone: Vec<&String> = was.difference(&now).collect();
                    let came: Vec<&String> = now.difference(&was).collect();
                    let mut said = format!(
                        "schema {name} changed shape under the same name: its generated type changes"
                    );
                    if !gone.is_empty() {
                        said.push_str(&format!("; properties gone: {}", join(&gone)));
                    }
                    if !came.is_empty() {
                        said.push_str(&format!("; properties new: {}", join(&came)));
                    }
                    self.note(Severity::Compatible, &at, said);
                }
                Some(_) => {}
            }
        }
        for name in new.keys().filter(|k| !old.contains_key(*k)) {
            self.note(
                Severity::Compatible,
                &format!("components/schemas/{name}"),
                "schema added",
            );
        }
    }

    fn operation(&mut self, at: &str, old: &Value, new: &Value) {
        let (old_id, new_id) = (old.get("operationId"), new.get("operationId"));
        if old_id != new_id {
            self.note(
                Severity::Breaking,
                at,
                format!(
                    "operationId {} -> {}: the generated method is renamed",
                    show(old_id),
                    show(new_id)
                ),
            );
        }
        let (old_security, new_security) = (security(self.old, old), security(self.new, new));
        if old_security != new_security {
            // A client meets one of the old alternatives; it still succeeds if
            // the new ones need nothing, or still include every old one.
            let open = |set: &BTreeSet<String>| set.is_empty() || set.contains("");
            let loosened = open(&new_security)
                || (!open(&old_security) && new_security.is_superset(&old_security));
            let severity = if loosened {
                Severity::Compatible
            } else {
                Severity::Breaking
            };
            self.note(
                severity,
                at,
                format!("security {:?} -> {:?}", old_security, new_security),
            );
        }
        self.parameters(at, old, new);
        self.request_body(at, old, new);
        self.responses(at, old, new);
    }

    fn parameters(&mut self, at: &str, old: &Value, new: &Value) {
        let params = |doc: &Value, op: &Value| -> BTreeMap<(String, String), Value> {
            strings_free(op.get("parameters"))
                .into_iter()
                .map(|p| resolve(doc, &p).clone())
                .filter_map(|p| {
                    let key = (
                        p.get("in")?.as_str()?.to_owned(),
                        p.get("name")?.as_str()?.to_owned(),
                    );
                    Some((key, p))
                })
                .collect()
        };
        let (old_params, new_params) = (params(self.old, old), params(self.new, new));
        for ((place, name), param) in &old_params {
            let where_ = format!("{at} {place} parameter {name}");
            let required = |p: &Value| p.get("required").and_then(Value::as_bool).unwrap_or(false);
            match new_params.get(&(place.clone(), name.clone())) {
                None if required(param) => {
                    self.note(Severity::Breaking, &where_, "required parameter removed")
                }
                None => self.note(
                    Severity::Compatible,
                    &where_,
                    "optional parameter removed: the server ignores it",
                ),
                Some(changed) => {
                    if !required(param) && required(changed) {
                        self.note(Severity::Breaking, &where_, "became required");
                    } else if required(param) && !required(changed) {
                        self.note(Severity::Compatible, &where_, "became optional");
                    }
                    if let (Some(a), Some(b)) = (param.get("schema"), changed.get("schema")) {
                        self.schema(&where_, a, b, Flow::Request);
                    }
                }
            }
        }
        for ((place, name), param) in &new_params {
            if !old_params.contains_key(&(place.clone(), name.clone())) {
                let where_ = format!("{at} {place} parameter {name}");
                if param
                    .get("required")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                {
                    self.note(Severity::Breaking, &where_, "new required parameter");
                } else {
                    self.note(Severity::Compatible, &where_, "new optional parameter");
                }
            }
        }
    }

    fn request_body(&mut self, at: &str, old: &Value, new: &Value) {
        let body = |doc: &Value, op: &Value| op.get("requestBody").map(|b| resolve(doc, b).clone());
        let where_ = format!("{at} request body");
        let required = |b: &Value| b.get("required").and_then(Value::as_bool).unwrap_or(false);
        match (body(self.old, old), body(self.new, new)) {
            (None, None) => {}
            (Some(_), None) => self.note(Severity::Breaking, &where_, "request body removed"),
            (None, Some(b)) if required(&b) => {
                self.note(Severity::Breaking, &where_, "new required request body")
            }
            (None, Some(_)) => {
                self.note(Severity::Compatible, &where_, "new optional request body")
            }
            (Some(a), Some(b)) => {
                if !required(&a) && required(&b) {
                    self.note(Severity::Breaking, &where_, "became required");
                }
                self.content(&where_, &a, &b, Flow::Request);
            }
        }
    }

    fn responses(&mut self, at: &str, old: &Value, new: &Value) {
        let responses = |op: &Value| {
            op.get("responses")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let (old_responses, new_responses) = (responses(old), responses(new));
        for (code, response) in &old_responses {
            let where_ = format!("{at} response {code}");
            match new_responses.get(code) {
                None if code.starts_with('2') => {
                    self.note(Severity::Breaking, &where_, "success response removed")
                }
                None => self.note(Severity::Compatible, &where_, "response removed"),
                Some(changed) => {
                    let (a, b) = (
                        resolve(self.old, response).clone(),
                        resolve(self.new, changed).clone(),
                    );
                    self.content(&where_, &a, &b, Flow::Response);
                }
            }
        }
        for code in new_responses
            .keys()
            .filter(|c| !old_responses.contains_key(*c))
        {
            let where_ = format!("{at} response {code}");
            if code.starts_with('2') {
                self.note(
                    Severity::Breaking,
                    &where_,
                    "new success status: generated code treats it as unexpected",
                );
            } else {
                self.note(Severity::Compatible, &where_, "response added");
            }
        }
    }

    fn content(&mut self, at: &str, old: &Value, new: &Value, flow: Flow) {
        let json_schema = |v: &Value| v.pointer("/content/application~1json/schema").cloned();
        match (json_schema(old), json_schema(new)) {
            (Some(a), Some(b)) => self.schema(at, &a, &b, flow),
            (Some(_), None) => self.note(Severity::Breaking, at, "application/json body removed"),
            (None, Some(_)) if flow == Flow::Response => {
                self.note(Severity::Compatible, at, "application/json body added")
            }
            (None, Some(_)) => self.note(Severity::Breaking, at, "application/json body added"),
            (None, None) => {}
        }
    }

    /// Compares two schemas for data flowing `flow`.
    fn schema(&mut self, at: &str, old: &Value, new: &Value, flow: Flow) {
        let (old_ref, new_ref) = (ref_name(old), ref_name(new));
        if let (Some(a), Some(b)) = (&old_ref, &new_ref)
            && !self.visiting.insert((a.clone(), b.clone(), flow))
        {
            return; // already comparing these two: a recursive schema
        }
        let (old_s, new_s) = (unwrap(self.old, old), unwrap(self.new, new));
        self.compare(at, &old_s, &new_s, flow);
        if let (Some(a), Some(b)) = (old_ref, new_ref) {
            self.visiting.remove(&(a, b, flow));
        }
    }

    fn compare(&mut self, at: &str, old: &Value, new: &Value, flow: Flow) {
        use Severity::{Breaking, Compatible};
        let request = flow == Flow::Request;
        // For a request, the server must accept all the client sends: the
        // new schema may widen, not narrow. For a response, the client must
        // accept all the server sends: the new schema may narrow, not widen.
        let (widen, narrow) = if request {
            (Compatible, Breaking)
        } else {
            (Breaking, Compatible)
        };

        let (old_type, new_type) = (
            old.get("type").and_then(Value::as_str),
            new.get("type").and_then(Value::as_str),
        );
        if old_type != new_type {
            let severity = match (old_type, new_type) {
                (_, None) => widen,
                (None, Some(_)) => narrow,
                (Some("integer"), Some("number")) => widen,
                (Some("number"), Some("integer")) => narrow,
                _ => Breaking,
            };
            self.note(
                severity,
                at,
                format!(
                    "type {} -> {}",
                    old_type.unwrap_or("any"),
                    new_type.unwrap_or("any")
                ),
            );
        }

        let (old_format, new_format) = (old.get("format"), new.get("format"));
        if old_format != new_format {
            let severity = match (old_format, new_format) {
                (Some(_), None) => widen,
                (None, Some(_)) => narrow,
                _ => Breaking,
            };
            self.note(
                severity,
                at,
                format!("format {} -> {}", show(old_format), show(new_format)),
            );
        }

        match (accepts_null(old), accepts_null(new)) {
            (false, true) => self.note(widen, at, "became nullable"),
            (true, false) => self.note(narrow, at, "no longer nullable"),
            _ => {}
        }

        let (old_enum, new_enum) = (old.get("enum"), new.get("enum"));
        match (old_enum, new_enum) {
            (None, Some(_)) => self.note(narrow, at, "values now limited to an enum"),
            (Some(_), None) => self.note(widen, at, "enum restriction removed"),
            (Some(a), Some(b)) => {
                let (a, b) = (strings(Some(a)), strings(Some(b)));
                for gone in a.difference(&b) {
                    self.note(narrow, at, format!("enum value {gone} removed"));
                }
                for added in b.difference(&a) {
                    let why = if request {
                        ""
                    } else {
                        ": the generated enum rejects it"
                    };
                    self.note(widen, at, format!("enum value {added} added{why}"));
                }
            }
            (None, None) => {}
        }

        let props = |s: &Value| {
            s.get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let (old_props, new_props) = (props(old), props(new));
        let (old_required, new_required) =
            (strings(old.get("required")), strings(new.get("required")));
        for (name, schema) in &old_props {
            let here = format!("{at} .{name}");
            match new_props.get(name) {
                None if request => self.note(
                    Breaking,
                    &here,
                    "property removed: what clients send is no longer accepted",
                ),
                None => self.note(Breaking, &here, "property removed from the response"),
                Some(changed) => self.schema(&here, schema, changed, flow),
            }
        }
        for name in new_props.keys().filter(|n| !old_props.contains_key(*n)) {
            let here = format!("{at} .{name}");
            match (request, new_required.contains(name)) {
                (true, true) => self.note(Breaking, &here, "new required property"),
                (true, false) => self.note(Compatible, &here, "new optional property"),
                (false, _) => self.note(Compatible, &here, "new property in the response"),
            }
        }
        for name in old_props.keys().filter(|n| new_props.contains_key(*n)) {
            let here = format!("{at} .{name}");
            match (old_required.contains(name), new_required.contains(name)) {
                (false, true) if request => self.note(Breaking, &here, "became required"),
                (false, true) => self.note(Compatible, &here, "now always present"),
                (true, false) if request => self.note(Compatible, &here, "became optional"),
                (true, false) => self.note(
                    Breaking,
                    &here,
                    "may now be absent: the generated field is not optional",
                ),
                _ => {}
            }
        }

        if let (Some(a), Some(b)) = (old.get("items"), new.get("items")) {
            self.schema(&format!("{at}[]"), a, b, flow);
        }
        let closed = |s: &Value| s.get("additionalProperties") == Some(&Value::Bool(false));
        match (closed(old), closed(new)) {
            (false, true) => self.note(narrow, at, "additional properties no longer allowed"),
            (true, false) => self.note(widen, at, "additional properties now allowed"),
            _ => {}
        }
    }
}

/// A schema without what only documents it.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "description" | "summary" | "example" | "examples" | "title"
                    ) && !k.starts_with("x-")
                })
                .map(|(k, v)| (k.clone(), shape(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        other => other.clone(),
    }
}

/// The schemas the operations of `doc` reach, following `$ref`s.
fn used_schemas(doc: &Value) -> BTreeSet<String> {
    fn refs(value: &Value, into: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(name) = map
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                {
                    into.push(name.replace("~1", "/").replace("~0", "~"));
                }
                map.values().for_each(|child| refs(child, into));
            }
            Value::Array(items) => items.iter().for_each(|child| refs(child, into)),
            _ => {}
        }
    }
    let mut reached = BTreeSet::new();
    let mut frontier = Vec::new();
    refs(doc.get("paths").unwrap_or(&Value::Null), &mut frontier);
    while let Some(name) = frontier.pop() {
        if reached.insert(name.clone())
            && let Some(schema) = doc
                .pointer("/components/schemas")
                .and_then(|schemas| schemas.get(&name))
        {
            refs(schema, &mut frontier);
        }
    }
    reached
}

fn property_names(schema: &Value) -> BTreeSet<String> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn join(names: &[&String]) -> String {
    names
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn strings_free(value: Option<&Value>) -> Vec<Value> {
    value.and_then(Value::as_array).cloned().unwrap_or_default()
}

fn ref_name(schema: &Value) -> Option<String> {
    schema
        .get("$ref")
        .or_else(|| schema.pointer("/allOf/0/$ref"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// A schema with `$ref`s followed, and a nullable `allOf: [$ref]` wrapper
/// (how 3.0 writes a nullable reference) read as the referenced schema plus
/// `nullable`.
fn unwrap(doc: &Value, schema: &Value) -> Value {
    let mut resolved = resolve(doc, schema).clone();
    if let Some(Value::Array(all_of)) = resolved.get("allOf").cloned()
        && all_of.len() == 1
    {
        let nullable = resolved.get("nullable").cloned();
        let mut inner = resolve(doc, &all_of[0]).clone();
        if let (Some(n), Some(map)) = (nullable, inner.as_object_mut()) {
            map.insert("nullable".into(), n);
        }
        resolved = inner;
    }
    resolved
}

/// Whether a schema lets null through: `nullable` on it, or on a branch of
/// its `anyOf`/`oneOf` (where 3.0.3 needs it when the branches differ in
/// type, since `nullable` takes effect only beside a `type`).
fn accepts_null(schema: &Value) -> bool {
    let nullable = |s: &Value| s.get("nullable").and_then(Value::as_bool).unwrap_or(false);
    nullable(schema)
        || ["anyOf", "oneOf"].iter().any(|combinator| {
            schema
                .get(combinator)
                .and_then(Value::as_array)
                .is_some_and(|branches| branches.iter().any(nullable))
        })
}

fn show(value: Option<&Value>) -> String {
    match value {
        None => "none".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}
