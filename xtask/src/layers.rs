//! `cargo xtask layers`: the `honeyhive` crate's modules in layers, checked.
//!
//! A module uses only modules of its own layer or of the layers below it;
//! a lower layer never imports a higher one, no two modules import each
//! other (directly or round a loop), and no module imports through the
//! crate root (`crate::Error`): internal code names the module an item
//! lives in (`crate::error::Error`), so `lib.rs` is the public face and
//! nothing else.
//!
//! [`LAYERS`] is the one list of the layers, from the bottom. The check
//! reads every `crate::`, `$crate::`, `super::` and `self::` path of
//! `honeyhive/src/**/*.rs` (in `use` lines and in code, comments and
//! strings left out), resolves each to the deepest module the file tree
//! has, and fails naming each file, line and path that breaks a rule. A
//! module and the modules inside it count as one for the loops (a child
//! uses its parent's items, a parent declares its children). Tests are
//! left out (`#[cfg(test)] mod` blocks, and modules named `tests`): a
//! test may build what it needs from any layer.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// The top-level modules of `honeyhive`, in layers from the bottom: a
/// module may use its own layer and those before it, never one after.
pub const LAYERS: &[&[&str]] = &[
    // What an HTTP status and a time are, and the generated code.
    &["millis", "status", "api"],
    // The error, and how requests are retried.
    &["error", "retry"],
    // What the builders' setters share; the walk over an event tree.
    &["fields", "tree"],
    // The values and their wire form; what leaves the process.
    &[
        "session",
        "event",
        "update",
        "session_start",
        "flat",
        "footprint",
        "sample",
        "mask",
        "cut",
        "dead_letter",
        "validate",
    ],
    // Sending.
    &["client"],
    // The resource handles and the Logger.
    &["resources", "logger"],
    // What builds on the Logger and the client.
    &["tracing", "experiment", "testing"],
];

/// Loops the check tolerates, each with why: a pair of modules that import
/// each other, sorted. Empty is the goal.
pub const KNOWN_LOOPS: &[(&str, &str, &str)] = &[];

/// One rule broken, where.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub file: PathBuf,
    pub line: usize,
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.what)
    }
}

/// Checks the crate whose sources are under `src` against `layers`,
/// tolerating `known` loops; the problems found, in file order.
pub fn check(
    src: &Path,
    layers: &[&[&str]],
    known: &[(&str, &str, &str)],
) -> Result<Vec<Problem>, String> {
    let files = modules(src)?;
    let known_modules: BTreeSet<&[String]> = files.keys().map(Vec::as_slice).collect();
    let layer_of = |top: &str| {
        layers
            .iter()
            .position(|layer| layer.contains(&top))
            .ok_or_else(|| format!("module `{top}` is in no layer: add it to xtask's LAYERS"))
    };
    let mut problems = Vec::new();
    // Edges between modules (outside each other), with where one was seen.
    let mut edges: BTreeMap<(String, String), (PathBuf, usize)> = BTreeMap::new();
    for (module, file) in &files {
        if module.last().is_some_and(|name| name == "tests") {
            continue;
        }
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let shown = file.strip_prefix(src).unwrap_or(file).to_path_buf();
        for found in paths(&text, module) {
            let Some(target) = resolve(&known_modules, &found.path) else {
                continue;
            };
            if target.is_empty() {
                if !module.is_empty() {
                    problems.push(Problem {
                        file: shown.clone(),
                        line: found.line,
                        what: format!(
                            "`{}` goes through the crate root: import it from its module",
                            found.written
                        ),
                    });
                }
                continue;
            }
            if module.is_empty() {
                continue; // lib.rs declares and re-exports
            }
            let (from_top, to_top) = (&module[0], &target[0]);
            if from_top != to_top && layer_of(from_top)? < layer_of(to_top)? {
                problems.push(Problem {
                    file: shown.clone(),
                    line: found.line,
                    what: format!(
                        "`{}` runs upward: `{from_top}` (layer {}) uses `{to_top}` (layer {})",
                        found.written,
                        layer_of(from_top)? + 1,
                        layer_of(to_top)? + 1
                    ),
                });
            }
            let inside = |a: &[String], b: &[String]| a.starts_with(b) || b.starts_with(a);
            if !inside(module, &target) {
                edges
                    .entry((module.join("::"), target.join("::")))
                    .or_insert((shown.clone(), found.line));
            }
        }
    }
    for cycle in loops(&edges) {
        let tolerated = cycle.len() == 2
            && known.iter().any(|(a, b, _)| {
                cycle.contains(&(*a).to_owned()) && cycle.contains(&(*b).to_owned())
            });
        if tolerated {
            continue;
        }
        let first = &cycle[0];
        let next = &cycle[1 % cycle.len()];
        let (file, line) = edges
            .get(&(first.clone(), next.clone()))
            .cloned()
            .unwrap_or_default();
        problems.push(Problem {
            file,
            line,
            what: format!("modules import each other: {}", cycle.join(" -> ")),
        });
    }
    problems.sort();
    Ok(problems)
}

/// Every module of the crate under `src` by its path (empty for the
/// root), and its file.
fn modules(src: &Path) -> Result<BTreeMap<Vec<String>, PathBuf>, String> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).map_err(|e| e.to_string())?;
            let mut segments: Vec<String> = relative
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            let last = segments.pop().unwrap_or_default();
            let stem = last.trim_end_matches(".rs");
            if !(stem == "mod" || (segments.is_empty() && stem == "lib")) {
                segments.push(stem.to_owned());
            }
            found.insert(segments, path);
        }
    }
    Ok(found)
}

/// A path found in a file: absolute (from the crate root), as written, and
/// on which line.
struct Found {
    path: Vec<String>,
    written: String,
    line: usize,
}

/// The deepest module of `path`, or `None` for a path into no module of
/// the crate (`self::CONST` inside an inline module the tree does not have
/// resolves to its file's module).
fn resolve(modules: &BTreeSet<&[String]>, path: &[String]) -> Option<Vec<String>> {
    (0..=path.len())
        .rev()
        .map(|n| &path[..n])
        .find(|prefix| modules.contains(prefix))
        .map(<[String]>::to_vec)
}

/// Every `crate::`, `$crate::`, `super::` and `self::` path in `text`, the
/// source of `module`, made absolute; `use` groups (`{a, b::c}`) give one
/// path each.
fn paths(text: &str, module: &[String]) -> Vec<Found> {
    let code = code_only(text);
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    // Inline modules open here: (name, the brace depth inside it, whether
    // it is test code).
    let mut inline: Vec<(String, usize, bool)> = Vec::new();
    let mut depth = 0usize;
    let mut pending_mod: Option<(String, bool)> = None;
    // Where the current item began: after the last `;`, `{` or `}`.
    let mut item_start = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'{' => {
                depth += 1;
                if let Some((name, test)) = pending_mod.take() {
                    inline.push((name, depth, test));
                }
                i += 1;
                item_start = i;
                continue;
            }
            b'}' => {
                if inline.last().is_some_and(|(_, d, _)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
                item_start = i;
                continue;
            }
            b';' => {
                pending_mod = None;
                i += 1;
                item_start = i;
                continue;
            }
            _ => {}
        }
        if !is_ident_start(c) || (i > 0 && (is_ident(bytes[i - 1]) || bytes[i - 1] == b':')) {
            i += 1;
            continue;
        }
        let word_end = ident_end(bytes, i);
        let word = &code[i..word_end];
        if word == "mod" {
            let name_start = skip_space(bytes, word_end);
            let name_end = ident_end(bytes, name_start);
            if name_end > name_start {
                let attributes: String = code[item_start..i].split_whitespace().collect();
                let test = attributes.contains("#[cfg(test)]");
                pending_mod = Some((code[name_start..name_end].to_owned(), test));
            }
            i = name_end.max(word_end);
            continue;
        }
        let is_root =
            matches!(word, "crate" | "super" | "self") && code[word_end..].starts_with("::");
        if !is_root || inline.iter().any(|(_, _, test)| *test) {
            i = word_end;
            continue;
        }
        let start = if i > 0 && bytes[i - 1] == b'$' {
            i - 1
        } else {
            i
        };
        let line = code[..i].matches('\n').count() + 1;
        let here: Vec<String> = module
            .iter()
            .cloned()
            .chain(inline.iter().map(|(name, _, _)| name.clone()))
            .collect();
        let (tails, end) = use_tree(&code, i);
        let dollar = if start < i { "$" } else { "" };
        for tail in tails {
            if let Some(path) = absolute(&here, &tail) {
                found.push(Found {
                    path,
                    written: format!("{dollar}{}", tail.join("::")),
                    line,
                });
            }
        }
        i = end.max(word_end);
    }
    found
}

/// The paths of a `use` tree (or a plain path) starting at `at`, each as
/// its segments, and where it ends.
fn use_tree(code: &str, at: usize) -> (Vec<Vec<String>>, usize) {
    let bytes = code.as_bytes();
    let mut segments = Vec::new();
    let mut i = at;
    loop {
        i = skip_space(bytes, i);
        if i < bytes.len() && bytes[i] == b'{' {
            let mut all = Vec::new();
            i += 1;
            loop {
                i = skip_space(bytes, i);
                if i >= bytes.len() {
                    return (all, i);
                }
                if bytes[i] == b'}' {
                    return (all, i + 1);
                }
                if bytes[i] == b',' {
                    i += 1;
                    continue;
                }
                let (inner, end) = use_tree(code, i);
                for tail in inner {
                    let mut path = segments.clone();
                    path.extend(tail);
                    all.push(path);
                }
                if end == i {
                    i += 1; // not a path: step over
                } else {
                    i = end;
                }
            }
        }
        let end = ident_end(bytes, i);
        if end == i {
            if bytes.get(i) == Some(&b'*') {
                return (vec![segments], i + 1);
            }
            return (vec![segments], i);
        }
        segments.push(code[i..end].to_owned());
        let after = skip_space(bytes, end);
        if code[after..].starts_with("::") {
            i = after + 2;
        } else {
            return (vec![segments], end);
        }
    }
}

/// `tail` (starting `crate`, `super` or `self`) as a path from the root,
/// seen from module `here`.
fn absolute(here: &[String], tail: &[String]) -> Option<Vec<String>> {
    let mut rest = tail.iter().peekable();
    let mut base: Vec<String> = match rest.peek().map(|s| s.as_str()) {
        Some("crate") => {
            rest.next();
            Vec::new()
        }
        Some("self") => {
            rest.next();
            here.to_vec()
        }
        Some("super") => here.to_vec(),
        _ => return None,
    };
    while rest.peek().is_some_and(|s| *s == "super") {
        rest.next();
        base.pop()?;
    }
    base.extend(rest.filter(|s| *s != "self").cloned());
    Some(base)
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn ident_end(bytes: &[u8], mut i: usize) -> usize {
    if i < bytes.len() && is_ident_start(bytes[i]) {
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
    }
    i
}

fn skip_space(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// `text` with comments, strings and character literals blanked (newlines
/// kept, so lines still count).
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let blank = |out: &mut Vec<u8>, part: &[u8]| {
        out.extend(part.iter().map(|b| if *b == b'\n' { b'\n' } else { b' ' }));
    };
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let end = if rest.starts_with(b"//") {
            rest.iter()
                .position(|b| *b == b'\n')
                .map_or(bytes.len(), |n| i + n)
        } else if rest.starts_with(b"/*") {
            let mut nesting = 0usize;
            let mut j = i;
            loop {
                if j + 1 >= bytes.len() {
                    break bytes.len();
                }
                if bytes[j..].starts_with(b"/*") {
                    nesting += 1;
                    j += 2;
                } else if bytes[j..].starts_with(b"*/") {
                    nesting -= 1;
                    j += 2;
                    if nesting == 0 {
                        break j;
                    }
                } else {
                    j += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(bytes, i) {
            let open = i + 2 + hashes + usize::from(bytes[i] == b'b');
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            bytes[open..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(bytes.len(), |n| open + n + close.len())
        } else if rest[0] == b'"' && (i == 0 || !is_ident(bytes[i - 1]) || bytes[i - 1] == b'b') {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            (j + 1).min(bytes.len())
        } else if rest[0] == b'\'' {
            // A character literal ('x', '\n', '\u{..}'), not a lifetime.
            if rest.get(1) == Some(&b'\\') {
                rest.iter()
                    .skip(2)
                    .position(|b| *b == b'\'')
                    .map_or(i + 1, |n| i + n + 3)
            } else if rest.get(2) == Some(&b'\'') {
                i + 3
            } else {
                i + 1
            }
        } else {
            out.push(bytes[i]);
            i += 1;
            continue;
        };
        if end <= i {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        blank(&mut out, &bytes[i..end]);
        i = end;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The number of `#` of a raw string starting at `i` (`r"`, `r#"`, `br"`).
fn raw_string_start(bytes: &[u8], i: usize) -> Option<usize> {
    if i > 0 && is_ident(bytes[i - 1]) {
        return None;
    }
    let mut j = i;
    if bytes.get(j) == Some(&b'b') {
        j += 1;
    }
    if bytes.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = bytes[j..].iter().take_while(|b| **b == b'#').count();
    (bytes.get(j + hashes) == Some(&b'"')).then_some(hashes)
}

/// The loops of the module graph: each strongly connected group of more
/// than one module, as a path round it.
fn loops(edges: &BTreeMap<(String, String), (PathBuf, usize)>) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        next.entry(from).or_default().push(to);
        next.entry(to).or_default();
    }
    // Tarjan's strongly connected components, iteratively.
    let names: Vec<&str> = next.keys().copied().collect();
    let index_of: BTreeMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let n = names.len();
    let (mut index, mut low, mut on_stack) = (vec![usize::MAX; n], vec![0; n], vec![false; n]);
    let (mut stack, mut groups, mut counter) = (Vec::new(), Vec::new(), 0);
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work = vec![(root, 0usize)];
        while let Some((v, child)) = work.pop() {
            if child == 0 {
                index[v] = counter;
                low[v] = counter;
                counter += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            let outs = &next[names[v]];
            if let Some(w) = outs.get(child).map(|w| index_of[w]) {
                work.push((v, child + 1));
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut group = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    group.push(w);
                    if w == v {
                        break;
                    }
                }
                if group.len() > 1 {
                    groups.push(group);
                }
            }
        }
    }
    groups
        .into_iter()
        .map(|group| {
            let members: BTreeSet<usize> = group.iter().copied().collect();
            round(&members, &next, &names, &index_of)
        })
        .collect()
}

/// A path round a strongly connected group, from its first module back to
/// it (breadth first, so the shortest).
fn round(
    members: &BTreeSet<usize>,
    next: &BTreeMap<&str, Vec<&str>>,
    names: &[&str],
    index_of: &BTreeMap<&str, usize>,
) -> Vec<String> {
    let Some(&start) = members.iter().next() else {
        return Vec::new();
    };
    let mut came_from: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for w in next[names[v]].iter().map(|w| index_of[w]) {
            if !members.contains(&w) {
                continue;
            }
            if w == start {
                let mut path = vec![v];
                let mut at = v;
                while at != start {
                    at = came_from[&at];
                    path.push(at);
                }
                path.reverse();
                return path.into_iter().map(|i| names[i].to_owned()).collect();
            }
            if let std::collections::btree_map::Entry::Vacant(entry) = came_from.entry(w) {
                entry.insert(v);
                queue.push_back(w);
            }
        }
    }
    members.iter().map(|i| names[*i].to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/layers")
            .join(name)
    }

    const FIXTURE_LAYERS: &[&[&str]] = &[&["low"], &["mid", "side"], &["high"]];

    fn problems(name: &str) -> Vec<String> {
        check(&fixture(name), FIXTURE_LAYERS, &[])
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_tree_that_keeps_its_layers_passes() {
        assert_eq!(problems("good"), Vec::<String>::new());
    }

    #[test]
    fn an_upward_import_fails_naming_file_line_and_layers() {
        assert_eq!(
            problems("upward"),
            ["low.rs:3: `crate::high::Top` runs upward: `low` (layer 1) uses `high` (layer 3)"]
        );
    }

    #[test]
    fn an_import_through_the_crate_root_fails() {
        assert_eq!(
            problems("root"),
            ["mid.rs:1: `crate::Low` goes through the crate root: import it from its module"]
        );
    }

    #[test]
    fn modules_that_import_each_other_fail_even_in_one_layer() {
        assert_eq!(
            problems("cycle"),
            [
                "mid/a.rs:1: modules import each other: mid::a -> mid::b",
                "mid/mod.rs:1: modules import each other: mid -> side"
            ]
        );
        // A loop said to be known is tolerated.
        let known = check(
            &fixture("cycle"),
            FIXTURE_LAYERS,
            &[("mid::a", "mid::b", "being merged")],
        )
        .unwrap();
        assert_eq!(known.len(), 1, "{known:?}");
    }

    #[test]
    fn a_module_in_no_layer_is_an_error() {
        let err = check(&fixture("good"), &[&["low"], &["mid"]], &[]).unwrap_err();
        assert!(err.contains("`high` is in no layer"), "{err}");
    }

    #[test]
    fn paths_are_read_from_use_trees_and_code_not_from_comments_or_strings() {
        let text = r##"
use crate::{a::{B, c::D}, e};
use super::f as g;
// crate::comment::X
/* crate::block::Y */
const S: &str = "crate::string::Z";
const R: &str = r#"crate::raw::W"#;
fn f<'a>(x: &'a str) -> char { let _ = $crate::h::i(); 'c' }
mod inner {
    use super::super::j;
    use self::k::L;
}
#[cfg(test)]
mod tests {
    use crate::high::Anything;
}
"##;
        let module = vec!["m".to_owned(), "n".to_owned()];
        let found: Vec<String> = paths(text, &module)
            .iter()
            .map(|f| format!("{}@{}", f.path.join("::"), f.line))
            .collect();
        assert_eq!(
            found,
            [
                "a::B@2",
                "a::c::D@2",
                "e@2",
                "m::f@3",
                "h::i@8",
                "m::j@10",
                "m::n::inner::k::L@11"
            ]
        );
    }
}
