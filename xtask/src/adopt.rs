//! `cargo xtask adopt NEWER --operations a,b`: takes operations from a newer
//! spec into this one, leaving every operation already here as it is.
//!
//! The newer spec is first converted as `import` does (cut to the named
//! operations and what they reach, then read the 3.0 way). Then, into the
//! base spec:
//! - each operation goes under its path (an operation already there, the
//!   same, is left alone; a different one at the same place, or another
//!   operation with the same operationId, is refused);
//! - each component it reaches is added; one whose name is taken by a
//!   component of the same shape is shared; one whose name is taken by a
//!   different component is renamed (`Name` + the suffix, `V1` for a newer
//!   spec of version 1.x) and every reference to it follows;
//! - the security schemes and tags the operations use come along the same
//!   way, and the newer spec's top-level security is written on each
//!   operation when it differs from the base's;
//! - what the generated code then needs (`uuid` for `format: uuid`, `chrono`
//!   for `format: date-time`) is said, for the caller to add.
//!
//! Like `import.rs`, this file uses serde_json only, so that
//! `xtask/import-check` can compile it into its build script.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::import::{self, Problem, Rewrite};

/// The component maps whose entries are referred to by `$ref`.
const REFERRED: [&str; 6] = [
    "schemas",
    "parameters",
    "responses",
    "requestBodies",
    "headers",
    "examples",
];

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The merged spec and what was done to make it.
#[derive(Debug)]
pub struct Adopted {
    pub spec: Value,
    /// What the conversion rewrote in the newer spec.
    pub rewrites: Vec<Rewrite>,
    /// One line per operation adopted, component added, shared or renamed,
    /// tag or security scheme brought along.
    pub report: Vec<String>,
    /// Crates the generated code needs for what was adopted.
    pub needs: Vec<Need>,
}

/// A crate the generated code needs, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub krate: &'static str,
    pub features: &'static [&'static str],
    /// The JSON pointer (in the merged spec) of the first use.
    pub because: String,
}

impl Need {
    /// The line for a `[dependencies]` table of the crate the code is
    /// generated in (a workspace member of this repository).
    pub fn dependency_line(&self) -> String {
        match self.krate {
            "uuid" => r#"uuid = { workspace = true, features = ["serde"] }"#.to_owned(),
            other => format!(
                r#"{other} = {{ version = "0.4", default-features = false, features = ["serde", "std"] }}"#
            ),
        }
    }
}

/// Adopts `operations` from `newer` into `base`; `suffix` overrides the
/// suffix of renamed components.
pub fn adopt(
    base: Value,
    newer: Value,
    operations: &[String],
    suffix: Option<&str>,
) -> Result<Adopted, Vec<Problem>> {
    let newer_version = newer
        .pointer("/info/version")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let newer_security = newer.get("security").cloned();
    let newer_tags = newer.get("tags").cloned().unwrap_or_else(|| json!([]));
    let newer_servers = newer.get("servers").cloned();
    let imported = import::import(newer, Some(operations))?;
    let mut incoming = imported.spec;
    let mut base = import::normalize(base);
    let mut report = Vec::new();
    let mut problems = Vec::new();
    let suffix = suffix.map_or_else(|| default_suffix(&newer_version), str::to_owned);

    // Components: shared, added or renamed; references follow the renames.
    let mut renames: Vec<(String, String)> = Vec::new();
    let mut to_add: Vec<(String, String, Value)> = Vec::new();
    for kind in REFERRED {
        let Some(items) = incoming
            .pointer(&format!("/components/{kind}"))
            .and_then(Value::as_object)
            .cloned()
        else {
            continue;
        };
        for (name, value) in items {
            let existing = base.pointer(&format!("/components/{kind}/{}", escape(&name)));
            match existing {
                Some(same) if same_shape(&base, same, &incoming, &value) => {
                    report.push(format!(
                        "shared {kind}/{name}: the same shape is here already"
                    ));
                }
                Some(_) => {
                    // Under the first free name, or one an earlier adoption
                    // gave this same shape (adopting again changes nothing).
                    let mut n = 1;
                    let (new_name, shared) = loop {
                        let candidate = if n == 1 {
                            format!("{name}{suffix}")
                        } else {
                            format!("{name}{suffix}_{n}")
                        };
                        let here =
                            base.pointer(&format!("/components/{kind}/{}", escape(&candidate)));
                        let there =
                            incoming.pointer(&format!("/components/{kind}/{}", escape(&candidate)));
                        match (here, there) {
                            (Some(here), _) if same_shape(&base, here, &incoming, &value) => {
                                break (candidate, true);
                            }
                            (None, None) => break (candidate, false),
                            _ => n += 1,
                        }
                    };
                    renames.push((
                        format!("#/components/{kind}/{}", escape(&name)),
                        format!("#/components/{kind}/{}", escape(&new_name)),
                    ));
                    if shared {
                        report.push(format!(
                            "shared {kind}/{name} as {kind}/{new_name}: adopted under that name before"
                        ));
                    } else {
                        report.push(format!(
                            "renamed {kind}/{name} -> {kind}/{new_name}: a {name} of another shape is here already"
                        ));
                        to_add.push((kind.to_owned(), new_name, value));
                    }
                }
                None => {
                    report.push(format!("added {kind}/{name}"));
                    to_add.push((kind.to_owned(), name, value));
                }
            }
        }
    }
    for (_, _, value) in &mut to_add {
        follow(value, &renames);
    }
    if let Some(paths) = incoming.get_mut("paths") {
        follow(paths, &renames);
    }
    // The newer spec as its operations now read: components under their
    // new names, references followed. Operations are compared in it.
    let mut renamed = incoming.clone();
    if let Some(Value::Object(components)) = renamed.get_mut("components") {
        for (from, to) in &renames {
            let (Some(from), Some(to)) = (
                from.strip_prefix("#/components/"),
                to.strip_prefix("#/components/"),
            ) else {
                continue;
            };
            let (Some((kind, old)), Some((_, new))) = (from.split_once('/'), to.split_once('/'))
            else {
                continue;
            };
            if let Some(Value::Object(items)) = components.get_mut(kind)
                && let Some(value) = items.remove(&old.replace("~1", "/").replace("~0", "~"))
            {
                items.insert(new.replace("~1", "/").replace("~0", "~"), value);
            }
        }
        let mut all = Value::Object(std::mem::take(components));
        follow(&mut all, &renames);
        if let Value::Object(all) = all {
            *components = all;
        }
    }

    // Security schemes, by name in the requirements.
    let base_security = base.get("security").cloned();
    let mut scheme_renames: BTreeMap<String, String> = BTreeMap::new();
    let used_schemes = schemes_used(&incoming, newer_security.as_ref());
    for name in &used_schemes {
        let Some(scheme) = incoming
            .pointer(&format!("/components/securitySchemes/{}", escape(name)))
            .cloned()
        else {
            continue;
        };
        match base.pointer(&format!("/components/securitySchemes/{}", escape(name))) {
            Some(same) if same_shape(&base, same, &incoming, &scheme) => {
                report.push(format!(
                    "shared securitySchemes/{name}: the same scheme is here already"
                ));
            }
            Some(_) => {
                let new_name = format!("{name}{suffix}");
                report.push(format!(
                    "renamed securitySchemes/{name} -> {new_name}: another {name} is here already"
                ));
                scheme_renames.insert(name.clone(), new_name.clone());
                insert(
                    &mut base,
                    &["components", "securitySchemes", &new_name],
                    scheme,
                );
            }
            None => {
                report.push(format!("added securitySchemes/{name}"));
                insert(&mut base, &["components", "securitySchemes", name], scheme);
            }
        }
    }

    // Operations.
    let mut tags_used = BTreeSet::new();
    let mut adopted = Vec::new();
    let existing_ids = operation_ids(&base);
    let paths: Map<String, Value> = incoming
        .get("paths")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (path, item) in &paths {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let mut operation = operation.clone();
            let id = operation
                .get("operationId")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let pointer = format!("/paths/{}/{method}", escape(path));
            // The newer spec's security, where this one's differs.
            if operation.get("security").is_none()
                && newer_security != base_security
                && let Some(security) = &newer_security
            {
                operation["security"] = security.clone();
            }
            if let Some(requirements) = operation.get_mut("security") {
                rename_schemes(requirements, &scheme_renames);
            }
            for tag in operation
                .get("tags")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                tags_used.insert(tag.to_owned());
            }
            match base.pointer(&pointer) {
                Some(here) if same_shape(&base, here, &renamed, &operation) => {
                    report.push(format!(
                        "kept {id}: {} {path} is here already, the same",
                        method.to_uppercase()
                    ));
                    continue;
                }
                Some(here) => {
                    let here_id = here
                        .get("operationId")
                        .and_then(Value::as_str)
                        .unwrap_or("?");
                    problems.push(Problem {
                        pointer: pointer.clone(),
                        message: format!(
                            "{} {path} is here already, as {here_id}, with another shape; \
                             remove it first to replace it",
                            method.to_uppercase()
                        ),
                    });
                    continue;
                }
                None => {}
            }
            if let Some(elsewhere) = existing_ids.get(&id) {
                problems.push(Problem {
                    pointer: pointer.clone(),
                    message: format!(
                        "operationId {id} is taken here already, by {elsewhere}: the generated \
                         method would clash"
                    ),
                });
                continue;
            }
            insert(&mut base, &["paths", path, method], operation);
            report.push(format!("adopted {id}: {} {path}", method.to_uppercase()));
            adopted.push(pointer);
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    for (kind, name, value) in to_add {
        insert(&mut base, &["components", &kind, &name], value);
    }

    // Tags the adopted operations use.
    let known: BTreeSet<String> = base
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    for tag in tags_used.difference(&known) {
        let definition = newer_tags
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t.get("name").and_then(Value::as_str) == Some(tag))
            .cloned()
            .unwrap_or_else(|| json!({ "name": tag }));
        if !base.get("tags").is_some_and(Value::is_array) {
            base["tags"] = json!([]);
        }
        if let Some(tags) = base["tags"].as_array_mut() {
            tags.push(definition);
        }
        report.push(format!("added tag {tag}"));
    }

    if newer_servers.is_some() && newer_servers != base.get("servers").cloned() {
        report.push(format!(
            "kept this spec's servers; the newer one names {}",
            newer_servers
                .as_ref()
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|s| s.get("url").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

    let needs = needs(&base, &adopted);
    Ok(Adopted {
        spec: base,
        rewrites: imported.rewrites,
        report,
        needs,
    })
}

/// `V` and the major version of `version` (`1.9.0` → `V1`), or `New`.
fn default_suffix(version: &str) -> String {
    match version
        .split('.')
        .next()
        .filter(|m| m.chars().all(|c| c.is_ascii_digit()) && !m.is_empty())
    {
        Some(major) => format!("V{major}"),
        None => "New".to_owned(),
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A value without what only documents it: what two components must share
/// to be the same.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "description"
                            | "summary"
                            | "example"
                            | "examples"
                            | "title"
                            | "externalDocs"
                    ) && !k.starts_with("x-")
                })
                .map(|(k, v)| (k.clone(), shape(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        other => other.clone(),
    }
}

/// Whether `a` (in the document `base`) and `b` (in `newer`) have the same
/// shape: what only documents them aside, and each `$ref` compared by what
/// it points at in its own document, not by its text (two `Wrapper`s that
/// both name `#/components/schemas/Event` differ when the two `Event`s
/// do). A pair of references already being compared counts as the same,
/// so recursive schemas end; a reference that points at nothing is
/// compared as text.
fn same_shape(base: &Value, a: &Value, newer: &Value, b: &Value) -> bool {
    fn target<'d>(doc: &'d Value, value: &'d Value) -> (Option<&'d str>, &'d Value) {
        let reference = value.get("$ref").and_then(Value::as_str);
        let resolved = reference
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|pointer| doc.pointer(pointer));
        (reference, resolved.unwrap_or(value))
    }
    fn same(
        base: &Value,
        a: &Value,
        newer: &Value,
        b: &Value,
        comparing: &mut Vec<(String, String)>,
    ) -> bool {
        let (ref_a, at_a) = target(base, a);
        let (ref_b, at_b) = target(newer, b);
        if ref_a.is_some() || ref_b.is_some() {
            let pair = (
                ref_a.unwrap_or_default().to_owned(),
                ref_b.unwrap_or_default().to_owned(),
            );
            if comparing.contains(&pair) {
                return true;
            }
            if std::ptr::eq(at_a, a) && std::ptr::eq(at_b, b) {
                // Neither resolved: compare the references themselves.
                return shape(a) == shape(b);
            }
            comparing.push(pair);
            let result = same(base, at_a, newer, at_b, comparing);
            comparing.pop();
            return result;
        }
        match (shape_keys(a), shape_keys(b)) {
            (Some(keys_a), Some(keys_b)) => {
                keys_a.len() == keys_b.len()
                    && keys_a.iter().all(|(key, value_a)| {
                        keys_b
                            .iter()
                            .find(|(k, _)| k == key)
                            .is_some_and(|(_, value_b)| {
                                same(base, value_a, newer, value_b, comparing)
                            })
                    })
            }
            _ => match (a, b) {
                (Value::Array(items_a), Value::Array(items_b)) => {
                    items_a.len() == items_b.len()
                        && items_a
                            .iter()
                            .zip(items_b)
                            .all(|(x, y)| same(base, x, newer, y, comparing))
                }
                _ => a == b,
            },
        }
    }
    same(base, a, newer, b, &mut Vec::new())
}

/// An object's entries without what only documents it; `None` for any
/// other value.
fn shape_keys(value: &Value) -> Option<Vec<(&String, &Value)>> {
    let map = value.as_object()?;
    Some(
        map.iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "description" | "summary" | "example" | "examples" | "title" | "externalDocs"
                ) && !k.starts_with("x-")
            })
            .collect(),
    )
}

/// Rewrites every `$ref` in `value` that `renames` names.
fn follow(value: &mut Value, renames: &[(String, String)]) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get_mut("$ref")
                && let Some((_, to)) = renames.iter().find(|(from, _)| from == target)
            {
                *target = to.clone();
            }
            for child in map.values_mut() {
                follow(child, renames);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|child| follow(child, renames)),
        _ => {}
    }
}

/// Sets `value` at `keys`, making the objects on the way.
fn insert(doc: &mut Value, keys: &[&str], value: Value) {
    let mut here = doc;
    for key in &keys[..keys.len() - 1] {
        if !here.get(*key).is_some_and(Value::is_object) {
            here[*key] = json!({});
        }
        here = &mut here[*key];
    }
    here[keys[keys.len() - 1]] = value;
}

/// Every operationId in `doc`, with where it is.
fn operation_ids(doc: &Value) -> BTreeMap<String, String> {
    let mut ids = BTreeMap::new();
    for (path, item) in doc
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        for method in METHODS {
            if let Some(id) = item
                .pointer(&format!("/{method}/operationId"))
                .and_then(Value::as_str)
            {
                ids.insert(id.to_owned(), format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    ids
}

/// The security schemes the operations of `doc` name (theirs, or the
/// document's `global` requirements).
fn schemes_used(doc: &Value, global: Option<&Value>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut add = |requirements: &Value| {
        for requirement in requirements.as_array().into_iter().flatten() {
            for name in requirement
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                names.insert(name.clone());
            }
        }
    };
    if let Some(global) = global {
        add(global);
    }
    for item in doc
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(_, v)| v)
    {
        for method in METHODS {
            if let Some(security) = item.pointer(&format!("/{method}/security")) {
                add(security);
            }
        }
    }
    names
}

fn rename_schemes(requirements: &mut Value, renames: &BTreeMap<String, String>) {
    for requirement in requirements.as_array_mut().into_iter().flatten() {
        if let Some(map) = requirement.as_object_mut() {
            for (from, to) in renames {
                if let Some(scopes) = map.remove(from) {
                    map.insert(to.clone(), scopes);
                }
            }
        }
    }
}

/// The crates the generated code needs for the formats the adopted
/// operations (at `adopted`) reach.
fn needs(doc: &Value, adopted: &[String]) -> Vec<Need> {
    let mut found: Vec<Need> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut stack: Vec<(String, &Value)> = adopted
        .iter()
        .filter_map(|p| Some((p.clone(), doc.pointer(p)?)))
        .collect();
    while let Some((pointer, value)) = stack.pop() {
        match value {
            Value::Object(map) => {
                let need = match map.get("format").and_then(Value::as_str) {
                    Some("uuid") => Some(("uuid", &["serde"][..])),
                    Some("date-time" | "date") => Some(("chrono", &["serde"][..])),
                    _ => None,
                };
                if let Some((krate, features)) = need
                    && !found.iter().any(|n| n.krate == krate)
                {
                    found.push(Need {
                        krate,
                        features,
                        because: pointer.clone(),
                    });
                }
                if let Some(target) = map.get("$ref").and_then(Value::as_str)
                    && let Some(at) = target.strip_prefix('#')
                    && seen.insert(at.to_owned())
                    && let Some(referred) = doc.pointer(at)
                {
                    stack.push((at.to_owned(), referred));
                }
                for (key, child) in map {
                    stack.push((format!("{pointer}/{}", escape(key)), child));
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    stack.push((format!("{pointer}/{i}"), child));
                }
            }
            _ => {}
        }
    }
    found.sort_by_key(|n| n.krate);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suffix_is_the_major_version() {
        assert_eq!(default_suffix("1.9.0"), "V1");
        assert_eq!(default_suffix("2"), "V2");
        assert_eq!(default_suffix(""), "New");
        assert_eq!(default_suffix("beta"), "New");
    }

    #[test]
    fn a_component_whose_reference_points_at_another_shape_is_renamed_too() {
        let spec = |event_type: &str| {
            json!({
                "openapi": "3.0.3",
                "info": {"title": "t", "version": "1.0.0"},
                "paths": {"/wrap": {"post": {
                    "operationId": "postWrapper",
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Wrapper"}}}},
                    "responses": {"200": {"description": "ok"}}
                }}},
                "components": {"schemas": {
                    "Wrapper": {"type": "object", "properties": {"event": {"$ref": "#/components/schemas/Event"}}},
                    "Event": {"type": "object", "properties": {"kind": {"type": event_type}}}
                }}
            })
        };
        let mut base = spec("string");
        base["paths"] = json!({});
        let adopted = adopt(base, spec("integer"), &["postWrapper".to_owned()], None).unwrap();
        let schemas = &adopted.spec["components"]["schemas"];
        assert_eq!(schemas["EventV1"]["properties"]["kind"]["type"], "integer");
        assert_eq!(
            schemas["WrapperV1"]["properties"]["event"]["$ref"],
            "#/components/schemas/EventV1"
        );
        assert_eq!(
            schemas["Wrapper"]["properties"]["event"]["$ref"],
            "#/components/schemas/Event"
        );
        let body = &adopted.spec["paths"]["/wrap"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"];
        assert_eq!(body["$ref"], "#/components/schemas/WrapperV1");
        // The same spec adopted again shares everything, recursion included.
        let again = adopt(
            adopted.spec.clone(),
            spec("integer"),
            &["postWrapper".to_owned()],
            None,
        )
        .unwrap();
        assert_eq!(again.spec, adopted.spec);
    }

    #[test]
    fn shape_ignores_what_only_documents() {
        let a = json!({"type": "string", "description": "one", "x-go-name": "A"});
        let b = json!({"type": "string", "description": "two"});
        assert_eq!(shape(&a), shape(&b));
        assert_ne!(shape(&a), shape(&json!({"type": "number"})));
    }
}
