//! Which code answers which operation: one table, by operationId.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::{State, datasets, events, resources, runs};

/// A request the validator accepted, as the answers read it.
pub(super) struct Call<'a> {
    /// The operationId.
    pub(super) operation: &'static str,
    /// The path parameters, percent-decoded, in order.
    pub(super) params: Vec<String>,
    /// The query parameters the spec names, typed.
    pub(super) query: Map<String, Value>,
    /// The body as JSON (`Null` without one).
    pub(super) body: Value,
    /// The body as it came over the wire.
    pub(super) raw: &'a Bytes,
}

impl Call<'_> {
    /// The `n`th path parameter (empty when there is none).
    pub(super) fn param(&self, n: usize) -> String {
        self.params.get(n).cloned().unwrap_or_default()
    }

    /// A query parameter as text (empty when absent).
    pub(super) fn query_text(&self, name: &str) -> String {
        match self.query.get(name) {
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }
}

/// What the mock answers.
#[derive(Debug, PartialEq)]
pub(super) enum Reply {
    /// A status and a JSON body.
    Json(u16, Value),
    /// 200 without a body (`updateEvent`).
    Empty,
}

impl Reply {
    pub(super) fn ok(body: Value) -> Self {
        Reply::Json(200, body)
    }

    /// The status, and the body when there is one.
    pub(super) fn parts(&self) -> (u16, Option<&Value>) {
        match self {
            Reply::Json(status, body) => (*status, Some(body)),
            Reply::Empty => (200, None),
        }
    }
}

/// The 404 for an id the mock does not have. The spec gives 404s no body;
/// the mock's names the resource and the id: `{"error": "run 42 not
/// found", "resource": "run", "id": "42"}`.
pub(super) fn not_found(resource: &str, id: &str) -> Reply {
    Reply::Json(
        404,
        json!({ "error": format!("{resource} {id} not found"), "resource": resource, "id": id }),
    )
}

/// `{field: row}` for a row found, the 404 for `resource` `id` otherwise.
pub(super) fn found(row: Option<&Value>, field: &str, resource: &str, id: &str) -> Reply {
    match row {
        Some(row) => Reply::ok(json!({ field: row })),
        None => not_found(resource, id),
    }
}

/// The page asked for and its size: the spec's `page` (from 1) and
/// `limit`, 1 and `default_limit` when absent.
pub(super) fn paging(
    page: Option<&Value>,
    limit: Option<&Value>,
    default_limit: u64,
) -> (u64, u64) {
    let number = |value: Option<&Value>, default: u64| {
        value.and_then(Value::as_u64).unwrap_or(default).max(1)
    };
    (number(page, 1), number(limit, default_limit))
}

/// Page `page` of `items`, `limit` to a page.
pub(super) fn one_page<T>(items: impl IntoIterator<Item = T>, (page, limit): (u64, u64)) -> Vec<T> {
    let skip = (page - 1).saturating_mul(limit);
    items
        .into_iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect()
}

type Answer = fn(&mut State, &Call<'_>) -> Reply;

/// Every operation but the generic ones (`resources::generic`), with the
/// code that answers it.
const TABLE: &[(&str, Answer)] = &[
    ("logEvent", events::log_event),
    ("createEvent", events::create_event),
    ("createEventLegacy", events::create_event),
    ("createModelEventLegacy", events::create_event),
    ("createEventBatch", events::create_event_batch),
    ("createEventBatchLegacy", events::create_event_batch),
    ("createModelEventBatchLegacy", events::create_event_batch),
    ("createSessionEventBatch", events::session_batch),
    ("addSessionTracesLegacy", events::session_batch),
    ("createSession", events::create_session),
    ("startSessionLegacy", events::create_session),
    ("updateEvent", events::update_event),
    ("updateEventLegacy", events::update_event),
    ("getEvent", events::get_event),
    ("searchEvents", events::search),
    ("exportEventsLegacy", events::search),
    ("getEventsSchemaLegacy", events::schema),
    ("getRunsSchema", events::schema),
    ("getRunSchema", events::schema),
    ("createDataset", datasets::create_dataset),
    ("getDatasets", datasets::get_datasets),
    ("updateDataset", datasets::update_dataset),
    ("updateDatasetLegacy", datasets::update_dataset),
    ("deleteDataset", datasets::delete_dataset),
    ("deleteDatasetLegacy", datasets::delete_dataset),
    ("addDatapoints", datasets::add_datapoints),
    ("removeDatapoint", datasets::remove_datapoint),
    ("removeDatapointLegacy", datasets::remove_datapoint),
    ("createDatapoint", datasets::create_datapoint),
    ("batchCreateDatapoints", datasets::batch_create),
    ("getDatapoints", datasets::get_datapoints),
    ("getDatapoint", datasets::get_datapoint),
    ("updateDatapoint", datasets::update_datapoint),
    ("deleteDatapoint", datasets::delete_datapoint),
    ("createRun", runs::create_run),
    ("getRuns", runs::get_runs),
    ("getRun", runs::get_run),
    ("updateRun", runs::update_run),
    ("deleteRun", runs::delete_run),
    ("getExperimentSummary", runs::get_summary),
    ("getExperimentResultLegacy", runs::get_summary),
    ("getExperimentComparison", runs::compare),
    ("getExperimentComparisonLegacy", runs::compare),
    ("getExperimentCompareEvents", runs::compare_events),
    ("getExperimentCompareEventsLegacy", runs::compare_events),
    ("getExperimentRunMetrics", runs::run_metrics),
    ("getMetricVersions", resources::versions),
    ("createMetricVersion", resources::create_version),
    ("deployMetricVersion", resources::deploy_version),
    ("runMetric", resources::run_metric),
    ("runMetricLegacy", resources::run_metric),
];

/// The answer to `call`, and the state changed as it says; `None` for an
/// operation the mock has no answer for.
pub(super) fn answer(state: &mut State, call: &Call<'_>) -> Option<Reply> {
    if let Some((kind, action)) = resources::generic(call.operation) {
        return Some(resources::answer(state, call, kind, action));
    }
    TABLE
        .iter()
        .find(|(id, _)| *id == call.operation)
        .map(|(_, answer)| answer(state, call))
}

/// Whether the mock answers `operation`.
#[cfg(test)]
pub(super) fn answers(operation: &str) -> bool {
    resources::generic(operation).is_some() || TABLE.iter().any(|(id, _)| *id == operation)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_of_the_spec_has_an_answer() {
        let spec = crate::validate::Spec::embedded();
        let missing: Vec<&str> = spec
            .operation_ids()
            .filter(|id| !super::answers(id))
            .collect();
        assert!(missing.is_empty(), "no answer for {missing:?}");
        assert_eq!(spec.operation_ids().count(), 71);
    }
}
