//! Finds non-finite floats in a value before it is turned into JSON.
//!
//! serde_json writes NaN and infinity as `null` without a word, which would
//! silently change what the user logged. This visitor walks a value the way
//! serde_json would and reports the path of the first non-finite float, so
//! the event can be refused instead.

use serde::Serialize;

use crate::walk::{Step, Stop, Visitor, walk};

/// The path (such as `scores[2]` or `usage.cost`) of the first NaN or
/// infinity in `value`, if there is one. A value whose own `Serialize`
/// fails has no path here: serde_json meets that failure too and reports it
/// with its message.
pub(crate) fn first_non_finite<T: Serialize + ?Sized>(value: &T) -> Option<String> {
    let mut checker = Checker::default();
    let _stopped = walk(value, &mut checker);
    checker.found
}

#[derive(Default)]
struct Checker {
    path: Vec<Step>,
    found: Option<String>,
}

impl Visitor for Checker {
    const PATHS: bool = true;

    fn float(&mut self, value: f64) -> Result<(), Stop> {
        if value.is_finite() {
            return Ok(());
        }
        let mut at = String::new();
        for step in &self.path {
            match step {
                Step::Field(name) if at.is_empty() => at.push_str(name),
                Step::Field(name) => {
                    at.push('.');
                    at.push_str(name);
                }
                Step::Index(i) => at.push_str(&format!("[{i}]")),
            }
        }
        self.found = Some(at);
        Err(Stop)
    }

    fn enter(&mut self, step: Step) {
        self.path.push(step);
    }

    fn leave(&mut self) {
        self.path.pop();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(serde::Serialize)]
    struct Usage {
        tokens: u32,
        cost: f64,
        scores: Vec<f32>,
        extra: Option<BTreeMap<String, f64>>,
    }

    #[test]
    fn names_the_path_of_the_first_non_finite_float() {
        let fine = Usage {
            tokens: 3,
            cost: 0.5,
            scores: vec![1.0, 2.0],
            extra: None,
        };
        assert_eq!(first_non_finite(&fine), None);

        let nan_in_list = Usage {
            scores: vec![1.0, f32::NAN],
            ..fine
        };
        assert_eq!(first_non_finite(&nan_in_list).as_deref(), Some("scores[1]"));

        let inf_in_map = Usage {
            tokens: 1,
            cost: 0.0,
            scores: vec![],
            extra: Some(BTreeMap::from([("latency".to_owned(), f64::INFINITY)])),
        };
        assert_eq!(
            first_non_finite(&inf_in_map).as_deref(),
            Some("extra.latency")
        );
        assert_eq!(first_non_finite(&f64::NEG_INFINITY).as_deref(), Some(""));
    }

    #[test]
    fn a_value_that_fails_to_serialize_is_not_a_non_finite_number() {
        struct Refuses;
        impl Serialize for Refuses {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        assert_eq!(first_non_finite(&Refuses), None);
        assert_eq!(first_non_finite(&vec![Refuses]), None);
    }
}
