//! `cargo xtask import`: rewrites an OpenAPI 3.1 (or 3.0) document into the
//! 3.0.3 dialect progenitor reads, listing every rewrite, and refusing what
//! has no 3.0 form with the JSON pointer of the place.
//!
//! This file is also compiled into `xtask/import-check`'s build script, which
//! generates and compiles a client from the imported fixture, so it depends
//! on serde_json only.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// The imported document and what was changed to get it.
#[derive(Debug)]
pub struct Imported {
    pub spec: Value,
    pub rewrites: Vec<Rewrite>,
}

/// One change the conversion made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub pointer: String,
    /// What kind of rewrite, the same words for every rewrite of its kind
    /// (for the summary).
    pub kind: &'static str,
    /// What was done here, when it says more than the kind.
    pub detail: Option<String>,
}

impl std::fmt::Display for Rewrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        match &self.detail {
            Some(detail) => write!(f, "{at}: {detail}"),
            None => write!(f, "{at}: {}", self.kind),
        }
    }
}

/// One line per kind of rewrite with how many there were, most first.
pub fn summary(rewrites: &[Rewrite]) -> Vec<String> {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for rewrite in rewrites {
        match counts.iter_mut().find(|(kind, _)| *kind == rewrite.kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((rewrite.kind, 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    counts
        .into_iter()
        .map(|(kind, n)| format!("{n:>5}  {kind}"))
        .collect()
}

/// A place that could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub pointer: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}",
            if self.pointer.is_empty() {
                "/"
            } else {
                &self.pointer
            },
            self.message
        )
    }
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Schema keywords JSON Schema 2020-12 has and OpenAPI 3.0 does not, with no
/// faithful rewrite.
const UNSUPPORTED: [&str; 12] = [
    "prefixItems",
    "if",
    "then",
    "else",
    "dependentSchemas",
    "dependentRequired",
    "unevaluatedProperties",
    "unevaluatedItems",
    "patternProperties",
    "contains",
    "propertyNames",
    "$defs",
];

/// Keywords that only annotate and that 3.0 lacks: dropped, with a note.
const DROPPED: [&str; 6] = [
    "$schema",
    "$id",
    "$anchor",
    "$comment",
    "contentMediaType",
    "contentEncoding",
];

struct Ctx {
    rewrites: Vec<Rewrite>,
    problems: Vec<Problem>,
}

impl Ctx {
    /// A rewrite that its kind says all of.
    fn rewrite(&mut self, pointer: &str, kind: &'static str) {
        self.rewrites.push(Rewrite {
            pointer: pointer.to_owned(),
            kind,
            detail: None,
        });
    }

    /// A rewrite of `kind`, with what was done at this place.
    fn rewrite_as(&mut self, pointer: &str, kind: &'static str, detail: String) {
        self.rewrites.push(Rewrite {
            pointer: pointer.to_owned(),
            kind,
            detail: Some(detail),
        });
    }

    fn problem(&mut self, pointer: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            pointer: pointer.to_owned(),
            message: message.into(),
        });
    }
}

/// Converts `spec` to OpenAPI 3.0.3, keeping only `operations` (by
/// operationId) when given.
pub fn import(mut spec: Value, operations: Option<&[String]>) -> Result<Imported, Vec<Problem>> {
    let mut ctx = Ctx {
        rewrites: Vec::new(),
        problems: Vec::new(),
    };
    // Pruned first, so that only what is kept must be convertible.
    name_operations(&mut spec, &mut ctx);
    if let Some(keep) = operations {
        keep_operations(&mut spec, keep, &mut ctx);
    }
    convert_document(&mut spec, &mut ctx);
    single_bodies(&mut spec, &mut ctx);
    if ctx.problems.is_empty() {
        Ok(Imported {
            spec,
            rewrites: ctx.rewrites,
        })
    } else {
        Err(ctx.problems)
    }
}

/// The 3.0 reading of a document, as far as it goes: what `diff` compares.
/// Problems are ignored here; `import` reports them.
pub fn normalize(mut spec: Value) -> Value {
    let mut ctx = Ctx {
        rewrites: Vec::new(),
        problems: Vec::new(),
    };
    convert_document(&mut spec, &mut ctx);
    spec
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn convert_document(spec: &mut Value, ctx: &mut Ctx) {
    let Some(doc) = spec.as_object_mut() else {
        ctx.problem("", "the document is not an object");
        return;
    };
    match doc.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.0") => {}
        Some(v) if v.starts_with("3.1") => {
            ctx.rewrite_as("/openapi", "openapi 3.1 -> 3.0.3", format!("{v} -> 3.0.3"));
            doc.insert("openapi".into(), json!("3.0.3"));
        }
        Some(v) => ctx.problem("/openapi", format!("version {v} is neither 3.0 nor 3.1")),
        None => ctx.problem("/openapi", "missing: this is not an OpenAPI 3 document"),
    }
    for key in ["jsonSchemaDialect", "webhooks"] {
        if doc.remove(key).is_some() {
            ctx.rewrite(
                &format!("/{key}"),
                "removed (OpenAPI 3.0 has no such field)",
            );
        }
    }
    if let Some(info) = doc.get_mut("info").and_then(Value::as_object_mut) {
        if info.remove("summary").is_some() {
            ctx.rewrite("/info/summary", "removed (3.1 only)");
        }
        if let Some(license) = info.get_mut("license").and_then(Value::as_object_mut)
            && license.remove("identifier").is_some()
        {
            ctx.rewrite(
                "/info/license/identifier",
                "removed (3.1 only; keep the url)",
            );
        }
    }
    if let Some(components) = doc.get_mut("components").and_then(Value::as_object_mut)
        && components.remove("pathItems").is_some()
    {
        ctx.rewrite("/components/pathItems", "removed (3.1 only)");
    }
    if !doc.contains_key("paths") {
        doc.insert("paths".into(), json!({}));
        ctx.rewrite("/paths", "added as empty (required in 3.0)");
    }
    walk(spec, "", ctx);
}

/// Finds the schemas in a document: under `components/schemas` and at every
/// `schema` key.
fn walk(value: &mut Value, pointer: &str, ctx: &mut Ctx) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let at = format!("{pointer}/{}", escape(key));
                let is_schema =
                    (key == "schema" && child.is_object()) || pointer == "/components/schemas";
                if is_schema {
                    convert_schema(child, &at, ctx);
                } else {
                    walk(child, &at, ctx);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                walk(child, &format!("{pointer}/{i}"), ctx);
            }
        }
        _ => {}
    }
}

fn is_null_schema(value: &Value) -> bool {
    value.get("type").and_then(Value::as_str) == Some("null")
        || value
            .get("type")
            .and_then(Value::as_array)
            .is_some_and(|t| t.len() == 1 && t[0] == "null")
}

/// `type: null` (or `[null]`): 3.0 says it as `nullable: true` with
/// `enum: [null]`.
fn null_only(map: &mut Map<String, Value>, pointer: &str, ctx: &mut Ctx) {
    map.remove("type");
    map.insert("nullable".into(), json!(true));
    map.insert("enum".into(), json!([null]));
    ctx.rewrite(
        &format!("{pointer}/type"),
        "type: null -> nullable: true, enum: [null]",
    );
}

fn convert_schema(schema: &mut Value, pointer: &str, ctx: &mut Ctx) {
    let Some(map) = schema.as_object_mut() else {
        if schema.is_boolean() {
            ctx.problem(pointer, "a boolean schema has no OpenAPI 3.0 form");
        }
        return;
    };

    for key in UNSUPPORTED {
        if map.contains_key(key) {
            ctx.problem(
                &format!("{pointer}/{}", escape(key)),
                format!("`{key}` has no OpenAPI 3.0 form"),
            );
        }
    }
    for key in DROPPED {
        if map.remove(key).is_some() {
            ctx.rewrite(
                &format!("{pointer}/{}", escape(key)),
                "removed (annotation 3.0 lacks)",
            );
        }
    }

    // `$ref` with siblings: 3.0 ignores the siblings, so wrap the ref.
    if map.contains_key("$ref") && map.len() > 1 {
        let reference = map.remove("$ref").unwrap_or(Value::Null);
        let mut all_of = vec![json!({ "$ref": reference })];
        if let Some(Value::Array(existing)) = map.remove("allOf") {
            all_of.extend(existing);
        }
        map.insert("allOf".into(), Value::Array(all_of));
        ctx.rewrite(
            pointer,
            "$ref with sibling keywords -> allOf: [$ref] beside them",
        );
    }

    // String enums whose values differ only in case or punctuation ("1m"
    // and "1M"): Rust variant names cannot tell them apart, so the
    // generator cannot name them. Kept as plain strings.
    if let Some(Value::Array(values)) = map.get("enum") {
        let mut names: Vec<String> = values
            .iter()
            .filter_map(Value::as_str)
            .map(|v| {
                v.chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect::<String>()
                    .to_ascii_lowercase()
            })
            .collect();
        let count = names.len();
        names.sort();
        names.dedup();
        if names.len() < count {
            map.remove("enum");
            ctx.rewrite(
                &format!("{pointer}/enum"),
                "enum whose values differ only in case or punctuation -> plain string (Rust names cannot tell them apart)",
            );
        }
    }

    // `type: [t, "null"]` -> `type: t, nullable: true`.
    if let Some(Value::Array(types)) = map.get("type").cloned() {
        let has_null = types.iter().any(|t| t == "null");
        let others: Vec<Value> = types.into_iter().filter(|t| t != "null").collect();
        match others.len() {
            0 => null_only(map, pointer, ctx),
            1 => {
                map.insert("type".into(), others[0].clone());
                if has_null {
                    map.insert("nullable".into(), json!(true));
                }
                ctx.rewrite(
                    &format!("{pointer}/type"),
                    if has_null {
                        "type array -> type + nullable"
                    } else {
                        "type array -> type"
                    },
                );
            }
            _ => {
                map.remove("type");
                let branches: Vec<Value> = others.iter().map(|t| json!({ "type": t })).collect();
                map.insert("anyOf".into(), Value::Array(branches));
                if has_null {
                    map.insert("nullable".into(), json!(true));
                }
                ctx.rewrite(
                    &format!("{pointer}/type"),
                    "type array of several types -> anyOf",
                );
            }
        }
    } else if map.get("type").and_then(Value::as_str) == Some("null") {
        null_only(map, pointer, ctx);
    }

    // A `null` branch of anyOf/oneOf -> nullable.
    for combinator in ["anyOf", "oneOf"] {
        let Some(Value::Array(branches)) = map.get(combinator).cloned() else {
            continue;
        };
        if !branches.iter().any(is_null_schema) {
            continue;
        }
        let rest: Vec<Value> = branches
            .into_iter()
            .filter(|b| !is_null_schema(b))
            .collect();
        map.remove(combinator);
        map.insert("nullable".into(), json!(true));
        match rest.len() {
            0 => ctx.problem(
                &format!("{pointer}/{combinator}"),
                "only null branches: no OpenAPI 3.0 form",
            ),
            1 => {
                let only = rest.into_iter().next().unwrap_or(Value::Null);
                if only.get("$ref").is_some() {
                    map.insert("allOf".into(), json!([only]));
                    ctx.rewrite(
                        &format!("{pointer}/{combinator}"),
                        "null branch -> nullable; the other branch, a $ref, -> allOf",
                    );
                } else if let Value::Object(branch) = only {
                    for (k, v) in branch {
                        map.entry(k).or_insert(v);
                    }
                    ctx.rewrite(
                        &format!("{pointer}/{combinator}"),
                        "null branch -> nullable; merged the other branch",
                    );
                }
            }
            _ => {
                // 3.0.3 lets `nullable` allow null only beside a `type`:
                // the branches' one type goes beside it, or, when they have
                // several, the first typed branch allows null itself (which
                // keeps a oneOf's "exactly one" true for null too).
                let mut rest = rest;
                let types: BTreeSet<Option<&str>> = rest
                    .iter()
                    .map(|b| b.get("type").and_then(Value::as_str))
                    .collect();
                let how = match types.into_iter().collect::<Vec<_>>()[..] {
                    [Some(one)] => {
                        map.insert("type".into(), json!(one));
                        "null branch -> nullable beside the branches' one type"
                    }
                    _ => match rest
                        .iter_mut()
                        .find(|b| b.get("type").is_some_and(Value::is_string))
                    {
                        Some(Value::Object(branch)) => {
                            map.remove("nullable");
                            branch.insert("nullable".into(), json!(true));
                            "null branch -> nullable on the first typed branch"
                        }
                        _ => "null branch -> nullable",
                    },
                };
                map.insert(combinator.into(), Value::Array(rest));
                ctx.rewrite(&format!("{pointer}/{combinator}"), how);
            }
        }
    }

    // Numeric exclusive bounds -> the 3.0 boolean form.
    for (exclusive, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(limit) = map.get(exclusive).filter(|v| v.is_number()).cloned() {
            map.insert(bound.into(), limit);
            map.insert(exclusive.into(), json!(true));
            ctx.rewrite_as(
                &format!("{pointer}/{exclusive}"),
                "numeric exclusive bound -> bound + boolean",
                format!("numeric -> {bound} + {exclusive}: true"),
            );
        }
    }

    // `examples: [...]` -> `example`.
    if let Some(Value::Array(examples)) = map.remove("examples") {
        if let Some(first) = examples.into_iter().next() {
            map.entry("example").or_insert(first);
        }
        ctx.rewrite(
            &format!("{pointer}/examples"),
            "examples -> example (the first)",
        );
    }

    // `const` -> a one-value enum.
    if let Some(value) = map.remove("const") {
        map.insert("enum".into(), json!([value]));
        ctx.rewrite(&format!("{pointer}/const"), "const -> enum of one value");
    }

    // Into the sub-schemas.
    for key in ["items", "not", "additionalProperties"] {
        if let Some(child) = map.get_mut(key).filter(|c| c.is_object()) {
            convert_schema(child, &format!("{pointer}/{key}"), ctx);
        }
    }
    if let Some(Value::Object(properties)) = map.get_mut("properties") {
        for (name, child) in properties.iter_mut() {
            convert_schema(
                child,
                &format!("{pointer}/properties/{}", escape(name)),
                ctx,
            );
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = map.get_mut(key) {
            for (i, child) in branches.iter_mut().enumerate() {
                convert_schema(child, &format!("{pointer}/{key}/{i}"), ctx);
            }
        }
    }
}

/// Every operation, as (path, method, pointer).
fn operations(spec: &Value) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    if let Some(paths) = spec.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for method in METHODS {
                if item.get(method).is_some_and(Value::is_object) {
                    found.push((
                        path.clone(),
                        method.to_owned(),
                        format!("/paths/{}/{method}", escape(path)),
                    ));
                }
            }
        }
    }
    found
}

/// progenitor names methods after operationIds and refuses operations
/// without one: give each a name made of its method and path.
fn name_operations(spec: &mut Value, ctx: &mut Ctx) {
    for (path, method, pointer) in operations(spec) {
        let Some(operation) = spec.pointer_mut(&pointer).and_then(Value::as_object_mut) else {
            continue;
        };
        if operation
            .get("operationId")
            .and_then(Value::as_str)
            .is_some_and(|id| !id.is_empty())
        {
            continue;
        }
        let mut id = method.clone();
        for word in path
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                id.push(first.to_ascii_uppercase());
                id.extend(chars);
            }
        }
        ctx.rewrite_as(
            &format!("{pointer}/operationId"),
            "missing operationId -> named from method and path",
            format!("missing; named {id}"),
        );
        operation.insert("operationId".into(), json!(id));
    }
}

/// progenitor gives an operation one success type and one error type (an
/// answer without a body counts as a type of its own): when the 2xx answers
/// (or the error answers) differ, keep those like the first with a body and
/// remove the others, which the generated client then treats as unexpected.
/// Also keeps one media type per body, preferring application/json.
fn single_bodies(spec: &mut Value, ctx: &mut Ctx) {
    for (_, _, pointer) in operations(spec) {
        if let Some(content) = spec
            .pointer_mut(&format!("{pointer}/requestBody/content"))
            .and_then(Value::as_object_mut)
        {
            one_media_type(content, &format!("{pointer}/requestBody/content"), ctx);
        }
        let Some(responses) = spec
            .pointer_mut(&format!("{pointer}/responses"))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        for (code, response) in responses.iter_mut() {
            if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) {
                one_media_type(
                    content,
                    &format!("{pointer}/responses/{}/content", escape(code)),
                    ctx,
                );
            }
        }
        let mut codes: Vec<String> = responses.keys().cloned().collect();
        codes.sort();
        for success in [true, false] {
            let class: Vec<&String> = codes
                .iter()
                .filter(|c| {
                    if success {
                        c.starts_with('2')
                    } else {
                        c.starts_with('4') || c.starts_with('5') || *c == "default"
                    }
                })
                .collect();
            let bodies: Vec<(String, Option<Value>)> = class
                .iter()
                .map(|c| {
                    (
                        (*c).clone(),
                        responses.get(*c).and_then(|r| r.get("content")).cloned(),
                    )
                })
                .collect();
            let kept = bodies.iter().find_map(|(_, body)| body.clone());
            for (code, body) in &bodies {
                if *body != kept {
                    responses.remove(code);
                    ctx.rewrite(
                        &format!("{pointer}/responses/{}", escape(code)),
                        "removed: its body differs from the operation's other answers of its kind (progenitor takes one type)",
                    );
                }
            }
        }
    }
}

fn one_media_type(content: &mut Map<String, Value>, pointer: &str, ctx: &mut Ctx) {
    if content.len() <= 1 {
        return;
    }
    let keep = if content.contains_key("application/json") {
        "application/json".to_owned()
    } else {
        content.keys().next().cloned().unwrap_or_default()
    };
    let dropped: Vec<String> = content.keys().filter(|k| **k != keep).cloned().collect();
    content.retain(|k, _| *k == keep);
    ctx.rewrite_as(
        pointer,
        "several media types -> one kept",
        format!("kept {keep}; removed {}", dropped.join(", ")),
    );
}

/// Keeps the named operations and the component schemas they reach.
fn keep_operations(spec: &mut Value, keep: &[String], ctx: &mut Ctx) {
    let mut found = Vec::new();
    for (path, method, pointer) in operations(spec) {
        let id = spec
            .pointer(&format!("{pointer}/operationId"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if keep.contains(&id) {
            found.push(id);
        } else if let Some(item) = spec
            .pointer_mut(&format!("/paths/{}", escape(&path)))
            .and_then(Value::as_object_mut)
        {
            item.remove(&method);
            ctx.rewrite_as(
                &pointer,
                "removed operation (not in --operations)",
                format!("removed operation {id} (not in --operations)"),
            );
        }
    }
    for id in keep {
        if !found.contains(id) {
            ctx.problem(
                "/paths",
                format!("--operations names {id}, which no operation has"),
            );
        }
    }
    if let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) {
        paths.retain(|_, item| {
            item.as_object()
                .is_some_and(|m| METHODS.iter().any(|k| m.contains_key(*k)))
        });
    }
    // Prune the schemas nothing kept refers to, following refs transitively.
    let mut reached = std::collections::BTreeSet::new();
    let mut frontier = refs_in(spec.get("paths").unwrap_or(&Value::Null));
    while let Some(name) = frontier.pop() {
        if reached.insert(name.clone())
            && let Some(schema) = spec.pointer(&format!("/components/schemas/{}", escape(&name)))
        {
            frontier.extend(refs_in(schema));
        }
    }
    if let Some(schemas) = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        let unused: Vec<String> = schemas
            .keys()
            .filter(|k| !reached.contains(*k))
            .cloned()
            .collect();
        for name in unused {
            schemas.remove(&name);
            ctx.rewrite(
                &format!("/components/schemas/{}", escape(&name)),
                "removed (no kept operation uses it)",
            );
        }
    }
}

/// The component schema names `value` refers to.
fn refs_in(value: &Value) -> Vec<String> {
    let mut names = Vec::new();
    match value {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                names.push(name.replace("~1", "/").replace("~0", "~"));
            }
            for child in map.values() {
                names.extend(refs_in(child));
            }
        }
        Value::Array(items) => items.iter().for_each(|child| names.extend(refs_in(child))),
        _ => {}
    }
    names
}
