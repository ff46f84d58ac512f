//! Which code answers which operation: one table, by operationId.

use super::call::{Call, Reply};
use super::{State, datasets, events, resources, runs};

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
