//! What a task returns ([`TaskOutput`]) and what an evaluator gives
//! ([`Score`], [`IntoScore`]).

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

/// An evaluator's score, as HoneyHive records it in a session's `metrics`:
/// a number, a bool, or any JSON.
///
/// Numbers and bools are aggregated in the report (a bool as 1 or 0);
/// JSON is recorded as it is.
///
/// ```
/// use honeyhive::experiment::Score;
///
/// assert_eq!(Score::from(0.5).as_f64(), Some(0.5));
/// assert_eq!(Score::from(true).as_f64(), Some(1.0));
/// assert_eq!(Score::from(serde_json::json!({"label": "ok"})).as_f64(), None);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Score {
    /// A number (finite).
    Number(f64),
    /// Pass or fail.
    Bool(bool),
    /// Anything else.
    Json(Value),
}

impl Score {
    /// The score as a number to aggregate: a number, or a bool as 1 or 0;
    /// `None` for JSON (a JSON number counts as a number).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Score::Number(n) => Some(*n),
            Score::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Score::Json(Value::Number(n)) => n.as_f64(),
            Score::Json(Value::Bool(b)) => Some(if *b { 1.0 } else { 0.0 }),
            Score::Json(_) => None,
        }
    }

    /// The score as JSON, as it goes on the wire.
    pub fn to_json(&self) -> Value {
        match self {
            Score::Number(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
            Score::Bool(b) => Value::Bool(*b),
            Score::Json(v) => v.clone(),
        }
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Score::Number(n) => write!(f, "{n}"),
            Score::Bool(b) => write!(f, "{b}"),
            Score::Json(v) => write!(f, "{v}"),
        }
    }
}

impl From<f64> for Score {
    fn from(n: f64) -> Self {
        Score::Number(n)
    }
}

impl From<f32> for Score {
    fn from(n: f32) -> Self {
        Score::Number(f64::from(n))
    }
}

impl From<i32> for Score {
    fn from(n: i32) -> Self {
        Score::Number(f64::from(n))
    }
}

impl From<u32> for Score {
    fn from(n: u32) -> Self {
        Score::Number(f64::from(n))
    }
}

impl From<bool> for Score {
    fn from(b: bool) -> Self {
        Score::Bool(b)
    }
}

impl From<Value> for Score {
    /// A JSON number or bool becomes [`Score::Number`] or [`Score::Bool`].
    fn from(value: Value) -> Self {
        match value {
            Value::Bool(b) => Score::Bool(b),
            Value::Number(n) => n
                .as_f64()
                .map_or(Score::Json(Value::Number(n)), Score::Number),
            other => Score::Json(other),
        }
    }
}

/// What an evaluator may return: a score (anything that is
/// `Into<`[`Score`]`>`), or a `Result` of one whose error (anything
/// `Display`) means the evaluator failed: the datapoint then has no score
/// of that name, and the report says why.
///
/// ```
/// use honeyhive::experiment::{IntoScore, Score};
///
/// assert_eq!(0.75.into_score(), Ok(Score::Number(0.75)));
/// assert_eq!(true.into_score(), Ok(Score::Bool(true)));
/// let failed: Result<f64, String> = Err("judge timed out".into());
/// assert_eq!(failed.into_score(), Err("judge timed out".to_owned()));
/// assert!(f64::NAN.into_score().is_err(), "not a number is not a score");
/// ```
pub trait IntoScore {
    /// The score, or why there is none.
    ///
    /// # Errors
    /// The evaluator's own error, as text; or a number that is not finite.
    fn into_score(self) -> Result<Score, String>;
}

impl<T: Into<Score>> IntoScore for T {
    fn into_score(self) -> Result<Score, String> {
        match self.into() {
            Score::Number(n) if !n.is_finite() => Err(format!(
                "gave {n}, which is not a finite number; return a finite number, a bool or JSON"
            )),
            score => Ok(score),
        }
    }
}

impl<T: Into<Score>, E: fmt::Display> IntoScore for Result<T, E> {
    fn into_score(self) -> Result<Score, String> {
        self.map_err(|e| e.to_string())
            .and_then(IntoScore::into_score)
    }
}

/// What a task returns for one datapoint: its outputs (recorded as the
/// session's `outputs`, given to evaluators) and, optionally, metrics it
/// measured itself (recorded beside the evaluators' scores).
///
/// A task may return any JSON value (`From<Value>`): an object is the
/// outputs as they are; anything else is recorded as `{"output": value}`,
/// since a session's outputs are an object.
///
/// ```
/// use honeyhive::experiment::TaskOutput;
/// use serde_json::json;
///
/// let out = TaskOutput::from(json!({"answer": "4"})).metric("tokens", 12);
/// assert_eq!(out.outputs["answer"], "4");
/// assert_eq!(out.metrics["tokens"].as_f64(), Some(12.0));
/// assert_eq!(TaskOutput::from(json!("4")).outputs, json!({"output": "4"}));
/// // The command line's form: {"outputs": …, "metrics": {…}}.
/// let split = TaskOutput::from_json(json!({"outputs": {"a": 1}, "metrics": {"ok": true}}));
/// assert_eq!(split.outputs, json!({"a": 1}));
/// assert_eq!(split.metrics["ok"], true);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TaskOutput {
    /// The outputs (a JSON object).
    pub outputs: Value,
    /// Metrics the task measured, by name.
    pub metrics: Map<String, Value>,
}

impl TaskOutput {
    /// Adds a metric the task measured.
    pub fn metric(mut self, name: impl Into<String>, score: impl Into<Score>) -> Self {
        self.metrics.insert(name.into(), score.into().to_json());
        self
    }

    /// A task's JSON, where an object with an `outputs` key and at most a
    /// `metrics` object beside it is taken apart (`{"outputs": …,
    /// "metrics": {…}}`), and anything else is the outputs, as
    /// [`From<Value>`](#impl-From<Value>-for-TaskOutput) takes it.
    pub fn from_json(value: Value) -> Self {
        if let Value::Object(object) = &value
            && object.contains_key("outputs")
            && object.keys().all(|k| k == "outputs" || k == "metrics")
            && object.get("metrics").is_none_or(Value::is_object)
        {
            let Value::Object(mut object) = value else {
                unreachable!("matched as an object above")
            };
            let outputs = object.remove("outputs").unwrap_or(Value::Null);
            let metrics = match object.remove("metrics") {
                Some(Value::Object(metrics)) => metrics,
                _ => Map::new(),
            };
            let mut out = TaskOutput::from(outputs);
            out.metrics = metrics;
            return out;
        }
        TaskOutput::from(value)
    }
}

impl From<Value> for TaskOutput {
    fn from(value: Value) -> Self {
        let outputs = match value {
            Value::Object(_) => value,
            other => serde_json::json!({ "output": other }),
        };
        TaskOutput {
            outputs,
            metrics: Map::new(),
        }
    }
}

impl From<String> for TaskOutput {
    fn from(text: String) -> Self {
        TaskOutput::from(Value::String(text))
    }
}

impl From<&str> for TaskOutput {
    fn from(text: &str) -> Self {
        TaskOutput::from(Value::String(text.to_owned()))
    }
}
