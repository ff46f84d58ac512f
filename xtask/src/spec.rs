//! Reading specs: from files or git revisions, YAML or JSON.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Loads `source`: a file path, or `REV:path` for a file in git (such as
/// `HEAD~1:openapi.yaml`), relative to the repository root `root`.
pub fn load(source: &str, root: &Path) -> Result<Value, String> {
    let text = if Path::new(source).exists() {
        std::fs::read_to_string(source).map_err(|e| format!("cannot read {source}: {e}"))?
    } else if source.contains(':') {
        git_show(source, root)?
    } else {
        return Err(format!(
            "{source} is neither a file nor a git revision:path (such as HEAD~1:openapi.yaml)"
        ));
    };
    parse(&text).map_err(|e| format!("{source}: {e}"))
}

pub fn git_show(object: &str, root: &Path) -> Result<String, String> {
    let output = Command::new("git")
        .args(["show", object])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "git show {object}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    String::from_utf8(output.stdout).map_err(|_| format!("{object} is not UTF-8"))
}

/// Parses YAML (which includes JSON) into a JSON value; non-string mapping
/// keys, such as unquoted status codes, become strings.
pub fn parse(text: &str) -> Result<Value, String> {
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| format!("not YAML or JSON: {e}"))?;
    Ok(to_json(yaml))
}

fn to_json(yaml: serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Y;
    match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => serde_yaml_ng::to_string(&other)
                            .unwrap_or_default()
                            .trim()
                            .to_owned(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => to_json(tagged.value),
    }
}

/// Writes `spec` as YAML, or as JSON when `path` ends in `.json`.
pub fn render(spec: &Value, json: bool) -> Result<String, String> {
    if json {
        serde_json::to_string_pretty(spec)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string())
    } else {
        serde_yaml_ng::to_string(spec).map_err(|e| e.to_string())
    }
}

/// Writes `spec` as YAML with the keys of each mapping in the order the
/// same mapping has in `like` (a YAML document), and keys `like` lacks
/// after them, sorted: a spec rewritten from `like` keeps its layout, and
/// what was added goes at the end of each mapping.
pub fn render_like(spec: &Value, like: &str) -> Result<String, String> {
    let like: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(like).map_err(|e| format!("not YAML: {e}"))?;
    serde_yaml_ng::to_string(&ordered(spec, Some(&like))).map_err(|e| e.to_string())
}

fn ordered(value: &Value, like: Option<&serde_yaml_ng::Value>) -> serde_yaml_ng::Value {
    use serde_yaml_ng::Value as Y;
    match value {
        Value::Object(map) => {
            let like_map = like.and_then(Y::as_mapping);
            let mut keys: Vec<&String> = Vec::new();
            if let Some(like_map) = like_map {
                for key in like_map.keys().filter_map(Y::as_str) {
                    if let Some((k, _)) = map.get_key_value(key) {
                        keys.push(k);
                    }
                }
            }
            let mut rest: Vec<&String> = map.keys().filter(|k| !keys.contains(k)).collect();
            rest.sort();
            keys.extend(rest);
            let mut out = serde_yaml_ng::Mapping::new();
            for key in keys {
                let child_like = like_map.and_then(|m| m.get(key.as_str()));
                out.insert(Y::String(key.clone()), ordered(&map[key], child_like));
            }
            Y::Mapping(out)
        }
        Value::Array(items) => Y::Sequence(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let child_like = like.and_then(Y::as_sequence).and_then(|s| s.get(i));
                    ordered(item, child_like)
                })
                .collect(),
        ),
        other => serde_yaml_ng::to_value(other).unwrap_or(Y::Null),
    }
}
