//! A client generated from `cargo xtask import`'s output for the 3.1 fixture
//! (`xtask/tests/fixtures/import/openapi-3.1.yaml`). That this crate compiles
//! is the check; the tests pin what the rewrites turned into.

#![allow(
    missing_docs,
    missing_debug_implementations,
    unused_qualifications,
    dead_code
)]
#![allow(clippy::all)]

// The generated client sends through `crate::Hooks` (the build's own
// settings), so this crate carries the same hand-written hooks.
#[path = "../../../honeyhive-gen/src/hooks.rs"]
#[macro_use]
mod hooks;
pub use hooks::{Exec, ExecFuture, Hooks};

include!(concat!(env!("OUT_DIR"), "/client.rs"));

/// The imported spec, as YAML.
pub const IMPORTED: &str = include_str!(concat!(env!("OUT_DIR"), "/imported.yaml"));

/// HoneyHive's published spec of 2026-02-09, imported whole.
pub mod upstream_0209 {
    use crate::Hooks;

    include!(concat!(env!("OUT_DIR"), "/upstream_0209.rs"));
    client_hooks!(Client);
}

/// HoneyHive's published spec of 2026-02-12, imported whole.
pub mod upstream_0212 {
    use crate::Hooks;

    include!(concat!(env!("OUT_DIR"), "/upstream_0212.rs"));
    client_hooks!(Client);
}

/// The 2026-02-12 spec cut to `createEvent`, `createEventBatch` and
/// `startSession` (and the components they reach).
pub mod upstream_0212_events {
    use crate::Hooks;

    include!(concat!(env!("OUT_DIR"), "/upstream_0212_events.rs"));
    client_hooks!(Client);
}

/// The seed spec (logEvent alone) with HoneyHive's five v1 ingestion
/// operations adopted from the data-plane spec 1.9.0, as `cargo xtask
/// adopt` does it.
pub mod adopted {
    use crate::Hooks;

    include!(concat!(env!("OUT_DIR"), "/adopted.rs"));
    client_hooks!(Client);

    /// The merged spec, as YAML.
    pub const SPEC: &str = include_str!(concat!(env!("OUT_DIR"), "/adopted.yaml"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewritten_constructs_become_the_expected_rust() {
        // `type: [string, 'null']` and the null branches of anyOf/oneOf are
        // optional values; `exclusiveMinimum` kept a number.
        let widget: types::Widget = serde_json::from_value(serde_json::json!({
            "id": "w-1", "name": null, "kind": "gadget", "owner": null, "note": null, "weight": 2.5
        }))
        .expect("the imported schema accepts nulls where 3.1 allowed them");
        assert_eq!(widget.name, None);
        assert_eq!(widget.owner, None);
        assert_eq!(widget.weight, Some(2.5));
    }

    #[test]
    fn every_operation_has_a_method_named_after_its_operation_id() {
        // Naming the methods is the check: this compiles only if they exist.
        // The operation without an operationId got one from its method and path.
        let _get: fn(&Client) -> builder::GetWidgetsWidgetId<'_> = Client::get_widgets_widget_id;
        let _create: fn(&Client) -> builder::CreateWidget<'_> = Client::create_widget;
        let _delete: fn(&Client) -> builder::DeleteEverything<'_> = Client::delete_everything;
        assert!(IMPORTED.contains("openapi: 3.0.3"));
    }

    #[test]
    fn the_published_specs_give_the_methods_their_operation_ids_name() {
        use upstream_0209 as v0209;
        use upstream_0212 as v0212;
        use upstream_0212_events as events;
        // The tools operations 2026-02-12 removed, in the version that had them.
        let _: fn(&v0209::Client) -> v0209::builder::DeleteTool<'_> = v0209::Client::delete_tool;
        let _: fn(&v0209::Client) -> v0209::builder::GetTools<'_> = v0209::Client::get_tools;
        let _: fn(&v0212::Client) -> v0212::builder::CreateEvent<'_> = v0212::Client::create_event;
        // Cut to three operations: those three.
        let _: fn(&events::Client) -> events::builder::CreateEvent<'_> =
            events::Client::create_event;
        let _: fn(&events::Client) -> events::builder::CreateEventBatch<'_> =
            events::Client::create_event_batch;
        let _: fn(&events::Client) -> events::builder::StartSession<'_> =
            events::Client::start_session;
    }

    #[test]
    fn the_adopted_spec_keeps_log_event_and_gains_the_five_v1_methods() {
        use adopted as a;
        let _: fn(&a::Client) -> a::builder::LogEvent<'_> = a::Client::log_event;
        let _: fn(&a::Client) -> a::builder::CreateSession<'_> = a::Client::create_session;
        let _: fn(&a::Client) -> a::builder::CreateEvent<'_> = a::Client::create_event;
        let _: fn(&a::Client) -> a::builder::CreateEventBatch<'_> = a::Client::create_event_batch;
        let _: fn(&a::Client) -> a::builder::CreateSessionEventBatch<'_> =
            a::Client::create_session_event_batch;
        let _: fn(&a::Client) -> a::builder::UpdateEvent<'_> = a::Client::update_event;
        // The v1 event is closed, as published: an unknown field is refused.
        let closed = serde_json::from_value::<a::types::PostEventRequest>(serde_json::json!({
            "event_type": "tool", "inputs": {}, "project": "p"
        }));
        assert!(closed.is_err());
        assert!(a::SPEC.contains("/v1/events/batch"));
    }
}
