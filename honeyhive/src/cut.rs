//! Events over the body limit cut to fit instead of lost: the largest
//! string values of `inputs`, `outputs`, `metadata` and `config` (of every
//! event of a tree) are shortened, each ending in a marker that says how
//! many bytes were cut, and each cut event's `metadata` lists the JSON
//! pointers of what was cut under [`CUT_KEY`].
//!
//! One pass finds the strings long enough to cut, measured by what they
//! take in the body (escapes counted: a control character is six bytes
//! there); the largest are cut first, each by no more than the event still has to lose, so most
//! strings stay whole. Cuts fall on character boundaries (UTF-8 safe).
//! Nothing else is touched: an event whose bulk is not in such strings
//! (a huge array of numbers) cannot be cut, and the plan says why.

use serde_json::{Map, Value};

use crate::api::types::Event as Wire;
use crate::mask::FreeForm;
use crate::tree;

/// The `metadata` key listing what was cut from an event, as JSON
/// pointers into it (`"/inputs/messages/0/content"`).
pub(crate) const CUT_KEY: &str = "honeyhive.cut";

/// What a cut string keeps at least, in bytes, so that a reader still
/// sees how it began.
const KEEP: usize = 256;

/// The fields whose strings may be cut.
const CUTTABLE: [FreeForm; 4] = [
    FreeForm::Inputs,
    FreeForm::Outputs,
    FreeForm::Metadata,
    FreeForm::Config,
];

/// What ends a cut string.
fn marker(cut: usize) -> String {
    format!("[...{cut} bytes cut]")
}

/// The longest a marker can be (a `usize` of bytes cut).
const MARKER_MAX: usize = "[... bytes cut]".len() + 20;

/// A string long enough to cut.
#[derive(Debug)]
struct Candidate {
    /// The event's place in the tree, depth first from 0 (the root).
    event: usize,
    field: FreeForm,
    /// A JSON pointer within the field.
    pointer: String,
    len: usize,
}

/// The strings to cut, and to how many bytes each.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    cuts: Vec<(Candidate, usize)>,
}

impl Plan {
    /// The JSON pointers of what would be cut, each with the event's path
    /// in the tree (`children[0]`) when it is not the root's.
    #[cfg_attr(
        not(feature = "validate"),
        allow(dead_code, reason = "validate's report")
    )]
    pub(crate) fn paths(&self) -> Vec<String> {
        self.cuts
            .iter()
            .map(|(c, _)| {
                let place = if c.event == 0 {
                    String::new()
                } else {
                    format!("event {} of the tree: ", c.event)
                };
                format!("{place}/{}{}", c.field.as_str(), c.pointer)
            })
            .collect()
    }
}

/// Plans cuts that take at least `over` bytes off the event's JSON.
///
/// # Errors
/// Why it cannot be cut enough, in words.
pub(crate) fn plan(event: &Wire, over: usize) -> Result<Plan, String> {
    let mut candidates = Vec::new();
    let mut index = 0;
    tree::each(event, |event, _| {
        collect(event, index, &mut candidates);
        index += 1;
    });
    candidates.sort_by_key(|c| std::cmp::Reverse(c.len));
    let mut need = over;
    let mut plan = Plan::default();
    let mut noted = Vec::new();
    for candidate in candidates {
        if need == 0 {
            break;
        }
        // What this cut adds back: its marker, its entry in the note, and
        // the note's key on the first cut of its event.
        let mut overhead = MARKER_MAX + candidate.pointer.len() + 16;
        if !noted.contains(&candidate.event) {
            overhead += CUT_KEY.len() + 8;
        }
        let available = candidate.len - KEEP;
        if available <= overhead {
            continue;
        }
        let take = available.min(need + overhead);
        need -= (take - overhead).min(need);
        noted.push(candidate.event);
        let keep = candidate.len - take;
        plan.cuts.push((candidate, keep));
    }
    if need > 0 {
        return Err(format!(
            "cutting every string of its inputs, outputs, metadata and config to {KEEP} bytes \
             would still leave it {need} bytes over"
        ));
    }
    Ok(plan)
}

/// Cuts as planned and notes each cut in its event's `metadata`.
pub(crate) fn apply(event: &mut Wire, plan: Plan) {
    let mut by_event: Vec<Vec<(Candidate, usize)>> = Vec::new();
    for (candidate, keep) in plan.cuts {
        let at = candidate.event;
        if by_event.len() <= at {
            by_event.resize_with(at + 1, Vec::new);
        }
        by_event[at].push((candidate, keep));
    }
    let mut index = 0;
    tree::each_mut(event, |event, _| {
        let cuts = by_event
            .get_mut(index)
            .map(std::mem::take)
            .unwrap_or_default();
        index += 1;
        for (candidate, keep) in cuts {
            let map = candidate.field.of(event);
            if let Some(text) = string_at(map, &candidate.pointer) {
                // Cut before (a second pass): one marker, with the sum.
                let before = strip_marker(text);
                let cut_at = escaped_prefix(text, keep);
                let cut = text.len() - cut_at + before;
                text.truncate(cut_at);
                text.push_str(&marker(cut));
            }
            let note = Value::String(format!(
                "/{}{}",
                candidate.field.as_str(),
                candidate.pointer
            ));
            match event.metadata.get_mut(CUT_KEY) {
                Some(Value::Array(list)) if list.contains(&note) => {}
                Some(Value::Array(list)) => list.push(note),
                _ => {
                    event
                        .metadata
                        .insert(CUT_KEY.to_owned(), Value::Array(vec![note]));
                }
            }
        }
    });
}

/// [`plan`] and [`apply`]: the event cut by at least `over` bytes.
///
/// # Errors
/// As [`plan`]; the event is unchanged then.
pub(crate) fn fit(event: &mut Wire, over: usize) -> Result<(), String> {
    let plan = plan(event, over)?;
    apply(event, plan);
    Ok(())
}

/// The strings of `event` (the `at`th of its tree) long enough to cut.
fn collect(event: &Wire, at: usize, out: &mut Vec<Candidate>) {
    for field in CUTTABLE {
        for (key, value) in field.of_ref(event) {
            let mut pointer = String::new();
            push_segment(&mut pointer, key);
            strings(value, &mut pointer, &mut |pointer, len| {
                out.push(Candidate {
                    event: at,
                    field,
                    pointer: pointer.to_owned(),
                    len,
                });
            });
        }
    }
}

/// Calls `f` on every string a cut may shorten, in every event of the
/// tree (before a cut: the API key out of them, so that a cut through it
/// cannot leave a part the body's redaction would not recognise).
pub(crate) fn each_string(event: &mut Wire, f: &mut impl FnMut(&mut String)) {
    fn strings_in(value: &mut Value, f: &mut impl FnMut(&mut String)) {
        match value {
            Value::String(text) => f(text),
            Value::Array(items) => items.iter_mut().for_each(|item| strings_in(item, f)),
            Value::Object(map) => map.values_mut().for_each(|item| strings_in(item, f)),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    tree::each_mut(event, |event, _| {
        for field in CUTTABLE {
            field
                .of(event)
                .values_mut()
                .for_each(|value| strings_in(value, f));
        }
    });
}

/// Calls `found` with the pointer and length of each string in `value`
/// long enough to be worth cutting.
fn strings(value: &Value, pointer: &mut String, found: &mut impl FnMut(&str, usize)) {
    match value {
        Value::String(text) => {
            // Measured as the body carries it: a control character takes
            // six bytes there, a quote two.
            let len = escaped_len(text);
            if len > KEEP + MARKER_MAX {
                found(pointer, len);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&i.to_string());
                strings(item, pointer, found);
                pointer.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = pointer.len();
                push_segment(pointer, key);
                strings(item, pointer, found);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

/// Appends `/key`, escaped as RFC 6901 says (`~` as `~0`, `/` as `~1`).
fn push_segment(pointer: &mut String, key: &str) {
    pointer.push('/');
    for c in key.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// The string at `pointer` (which starts with `/`) within `map`.
fn string_at<'a>(map: &'a mut Map<String, Value>, pointer: &str) -> Option<&'a mut String> {
    let rest = pointer.strip_prefix('/')?;
    let (first, rest) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    let key = first.replace("~1", "/").replace("~0", "~");
    let value = map.get_mut(&key)?;
    let value = if rest.is_empty() {
        value
    } else {
        value.pointer_mut(rest)?
    };
    match value {
        Value::String(text) => Some(text),
        _ => None,
    }
}

/// Removes the marker a cut left at the end of `text`; the bytes it said
/// were cut (0 without one).
fn strip_marker(text: &mut String) -> usize {
    let Some(body) = text.strip_suffix(" bytes cut]") else {
        return 0;
    };
    let Some(at) = body.rfind("[...") else {
        return 0;
    };
    match body[at + 4..].parse::<usize>() {
        Ok(cut) => {
            text.truncate(at);
            cut
        }
        Err(_) => 0,
    }
}

/// What one byte of a string takes in JSON, as serde_json writes it:
/// `\"`, `\\` and the short escapes 2, other control characters 6
/// (`\u001f`), anything else (a byte of a multi-byte character too) 1.
fn escaped_byte_len(byte: u8) -> usize {
    match byte {
        b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
        0..=0x1f => 6,
        _ => 1,
    }
}

/// The bytes `text` takes inside a JSON string (its quotes aside).
fn escaped_len(text: &str) -> usize {
    text.bytes().map(escaped_byte_len).sum()
}

/// The longest prefix of `text`, ending on a character boundary, that
/// takes at most `budget` bytes in JSON: where to cut it.
fn escaped_prefix(text: &str, budget: usize) -> usize {
    let mut taken = 0;
    let mut at = text.len();
    for (index, byte) in text.bytes().enumerate() {
        taken += escaped_byte_len(byte);
        if taken > budget {
            at = index;
            break;
        }
    }
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wire(value: Value) -> Wire {
        serde_json::from_value(value).unwrap()
    }

    fn json_len(event: &Wire) -> usize {
        serde_json::to_vec(event).unwrap().len()
    }

    #[test]
    fn the_largest_string_is_cut_first_and_only_as_much_as_needed() {
        let big = "a".repeat(100_000);
        let small = "b".repeat(10_000);
        let mut event = wire(json!({"inputs": {"big": big, "small": small}, "metadata": {"k": 1}}));
        let before = json_len(&event);
        fit(&mut event, 30_000).unwrap();
        let after = json_len(&event);
        assert!(before - after >= 30_000, "{before} -> {after}");
        assert!(
            before - after < 31_000,
            "cut no more than needed: {before} -> {after}"
        );
        assert_eq!(
            event.inputs["small"],
            small.as_str(),
            "the smaller one is whole"
        );
        let cut = event.inputs["big"].as_str().unwrap();
        assert!(cut.ends_with(" bytes cut]"), "{}", &cut[cut.len() - 40..]);
        assert_eq!(event.metadata[CUT_KEY], json!(["/inputs/big"]));
        assert_eq!(event.metadata["k"], 1);
    }

    #[test]
    fn strings_are_measured_and_cut_by_what_escaping_makes_of_them() {
        // 300 000 control characters: 300 KB as text, 1.8 MB in JSON.
        let text = "\u{1}".repeat(300_000);
        let mut event = wire(json!({"inputs": {"raw": text}, "outputs": {"a": "b"}}));
        let limit = 600_000;
        let over = json_len(&event) - limit;
        assert!(over > 300_000, "more to lose than the text is long");
        fit(&mut event, over).expect("cuttable: its bulk is that string");
        let len = json_len(&event);
        assert!(len <= limit, "{len} over {limit}");
        assert!(len > limit - 20_000, "not cut much more than needed: {len}");
        let kept = event.inputs["raw"].as_str().unwrap();
        assert!(kept.ends_with(" bytes cut]"));
        assert_eq!(escaped_len("a\"\\\n\u{1f}é"), 1 + 2 + 2 + 2 + 6 + 2);
        assert_eq!(escaped_prefix("ab\u{1}c", 7), 2, "the escape does not fit");
        assert_eq!(escaped_prefix("ab\u{1}c", 8), 3);
        assert_eq!(escaped_prefix("éé", 3), 2, "a character is not split");
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        let text = "é".repeat(50_000); // two bytes each
        let mut event = wire(json!({"outputs": {"text": text}}));
        fit(&mut event, 33_333).unwrap();
        let cut = event.outputs["text"].as_str().unwrap();
        let kept = cut.split("[...").next().unwrap();
        assert!(kept.chars().all(|c| c == 'é'));
        let said: usize = cut
            .rsplit("[...")
            .next()
            .unwrap()
            .trim_end_matches(" bytes cut]")
            .parse()
            .unwrap();
        assert_eq!(kept.len() + said, 100_000);
    }

    #[test]
    fn strings_in_nested_arrays_and_children_are_found_with_their_pointers() {
        let big = "x".repeat(20_000);
        let mut event = wire(json!({
            "children": [{"config": {"a/b": [{"~t": big}]}}]
        }));
        fit(&mut event, 10_000).unwrap();
        assert_eq!(
            event.children[0].metadata[CUT_KEY],
            json!(["/config/a~1b/0/~0t"])
        );
        assert!(event.metadata.is_empty(), "the root was not cut");
    }

    #[test]
    fn each_string_sees_every_string_a_cut_may_shorten_and_no_other() {
        let mut event = wire(json!({
            "inputs": {"a": "1", "n": [2, {"b": "3"}]},
            "feedback": {"c": "no"},
            "event_name": "no",
            "children": [{"config": {"d": "4"}, "metrics": {"e": "no"}}]
        }));
        let mut seen = Vec::new();
        each_string(&mut event, &mut |text| {
            seen.push(text.clone());
            text.push('!');
        });
        assert_eq!(seen, ["1", "3", "4"]);
        assert_eq!(event.inputs["n"][1]["b"], "3!");
        assert_eq!(event.children[0].config["d"], "4!");
    }

    #[test]
    fn an_event_that_is_all_numbers_cannot_be_cut_and_is_left_as_it_was() {
        let numbers: Vec<u32> = (0..100_000).collect();
        let mut event = wire(json!({"inputs": {"vector": numbers}}));
        let before = event.clone();
        let why = fit(&mut event, 1_000).unwrap_err();
        assert!(why.contains("would still leave it"), "{why}");
        assert_eq!(event, before);
    }
}
