//! [`Datapoint`]: one row of a dataset, and the stable ids of local rows.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::Error;

/// One row of an experiment's dataset: the task's inputs, the expected
/// answer, free-form metadata, and its id.
///
/// A hosted dataset's rows ([`Experiment::dataset`](super::Experiment::dataset))
/// carry HoneyHive's ids. A local row ([`Experiment::datapoints`](super::Experiment::datapoints))
/// gets an id derived from its content (a UUIDv5 of its canonical JSON,
/// the same on every machine and every run), unless [`id`](Self::id) sets
/// one; the second and later copies of an identical row get ids of their
/// own (the content and the copy's number), so every row is counted once.
///
/// The task gets the row with [`repetition`](Self::repetition) set (from 0,
/// see [`Experiment::repetitions`](super::Experiment::repetitions)).
///
/// ```
/// use honeyhive::experiment::Datapoint;
/// use serde_json::json;
///
/// let row = Datapoint::new(json!({"question": "2 + 2?"})).ground_truth(json!({"answer": "4"}));
/// assert_eq!(row.inputs["question"], "2 + 2?");
/// assert!(row.id.is_empty(), "derived from the content when the run starts");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Datapoint {
    /// The datapoint's id (empty on a local row until the run derives it).
    pub id: String,
    /// The task's inputs.
    pub inputs: Map<String, Value>,
    /// The expected answer, for evaluators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ground_truth: Option<Value>,
    /// Free-form metadata.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    /// Which repetition of the row this is, from 0.
    #[serde(skip)]
    pub repetition: u32,
    /// The first problem a setter met, reported by the run before any
    /// request.
    #[serde(skip)]
    pub(super) invalid: Option<(String, String)>,
}

impl Datapoint {
    /// A row with these inputs: anything that serializes to a JSON object.
    /// Anything else is reported by [`Experiment::run`](super::Experiment::run)
    /// as [`Error::InvalidInput`] on `datapoints[i].inputs`, before any
    /// request.
    pub fn new(inputs: impl Serialize) -> Self {
        let mut row = Datapoint {
            id: String::new(),
            inputs: Map::new(),
            ground_truth: None,
            metadata: Map::new(),
            repetition: 0,
            invalid: None,
        };
        row.inputs = row.object("inputs", inputs);
        row
    }

    /// Sets the expected answer (any JSON).
    pub fn ground_truth(mut self, ground_truth: impl Serialize) -> Self {
        match serde_json::to_value(ground_truth) {
            Ok(value) => self.ground_truth = Some(value),
            Err(e) => self.remember("ground_truth", format!("could not be made JSON: {e}")),
        }
        self
    }

    /// Sets the metadata: anything that serializes to a JSON object.
    pub fn metadata(mut self, metadata: impl Serialize) -> Self {
        self.metadata = self.object("metadata", metadata);
        self
    }

    /// Sets the id instead of deriving it from the content.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// A row from its JSON form, `{"inputs": {…}, "ground_truth": …,
    /// "metadata": {…}, "id": "…"}` (every key but `inputs` optional;
    /// others ignored): one line of a JSONL dataset.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the key: not an object, no `inputs`
    /// object, a `metadata` or `id` of the wrong kind.
    ///
    /// ```
    /// use honeyhive::experiment::Datapoint;
    /// use serde_json::json;
    ///
    /// let row = Datapoint::from_json(json!({"inputs": {"q": "hi"}, "ground_truth": "hello"}))?;
    /// assert_eq!(row.ground_truth, Some(json!("hello")));
    /// assert!(Datapoint::from_json(json!({"q": "hi"})).is_err());
    /// # Ok::<(), honeyhive::Error>(())
    /// ```
    pub fn from_json(value: Value) -> Result<Datapoint, Error> {
        let Value::Object(mut object) = value else {
            return Err(Error::invalid(
                "datapoint",
                format!(
                    "is {}; give an object with an `inputs` object",
                    crate::fields::json_kind(&value)
                ),
            ));
        };
        let inputs = match object.remove("inputs") {
            Some(Value::Object(inputs)) => inputs,
            other => {
                return Err(Error::invalid(
                    "inputs",
                    format!(
                        "is {}; give the task's inputs as an object: {{\"inputs\": {{…}}}}",
                        other.as_ref().map_or("missing", crate::fields::json_kind)
                    ),
                ));
            }
        };
        let metadata = match object.remove("metadata") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(metadata)) => metadata,
            Some(other) => {
                return Err(Error::invalid(
                    "metadata",
                    format!("is {}; give an object", crate::fields::json_kind(&other)),
                ));
            }
        };
        let id = match object.remove("id") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(id)) => id,
            Some(other) => {
                return Err(Error::invalid(
                    "id",
                    format!("is {}; give a string", crate::fields::json_kind(&other)),
                ));
            }
        };
        Ok(Datapoint {
            id,
            inputs,
            ground_truth: object.remove("ground_truth").filter(|v| !v.is_null()),
            metadata,
            repetition: 0,
            invalid: None,
        })
    }

    fn object(&mut self, field: &str, value: impl Serialize) -> Map<String, Value> {
        match serde_json::to_value(value) {
            Ok(Value::Object(object)) => object,
            Ok(other) => {
                self.remember(
                    field,
                    format!(
                        "must be a JSON object, got {}; pass a struct or a map, or wrap the \
                         value: json!({{\"value\": ...}})",
                        crate::fields::json_kind(&other)
                    ),
                );
                Map::new()
            }
            Err(e) => {
                self.remember(field, format!("could not be made JSON: {e}"));
                Map::new()
            }
        }
    }

    fn remember(&mut self, field: &str, problem: String) {
        if self.invalid.is_none() {
            self.invalid = Some((field.to_owned(), problem));
        }
    }
}
