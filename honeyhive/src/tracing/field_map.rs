//! [`FieldMap`]: a framework's own field names, mapped without forking.

use std::collections::HashMap;

/// Renames and drops applied to a span's fields before the layer maps
/// them (see the [module docs](super#genai-fields)): a framework's own
/// names into names the layer knows (a GenAI semconv name such as
/// `gen_ai.input.messages`, or a bucket key such as `inputs.query`), and
/// its internal fields out of the event.
///
/// [`FieldMap::new`] starts from the layer's built-in list
/// ([`FieldMap::FRAMEWORK_INTERNAL`] dropped, [`FieldMap::FRAMEWORK_RENAMED`]
/// renamed); [`FieldMap::empty`] from nothing. Applied when the Logger
/// builds the event, off the application's thread.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), honeyhive::Error> {
/// use std::time::Duration;
/// use honeyhive::tracing::{FieldMap, HoneyHiveLayer};
/// use honeyhive::{Logger, LoggerConfig, testing::MockHoneyHive};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let mock = MockHoneyHive::start_async().await;
/// let logger = Logger::new(&mock.client()?, LoggerConfig::default())?;
/// // A framework that names the prompt `myfw.prompt` and the model
/// // `myfw.model`, and keeps a cache key of its own.
/// let fields = FieldMap::new()
///     .rename("myfw.prompt", "gen_ai.prompt")
///     .rename("myfw.model", "gen_ai.request.model")
///     .drop("myfw.cache_key");
/// let layer = HoneyHiveLayer::new(logger.clone()).field_map(fields);
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     tracing::info_span!(
///         "generate",
///         honeyhive.event_type = "model",
///         myfw.prompt = "Hello?",
///         myfw.model = "tiny-1",
///         myfw.cache_key = 7,
///     )
///     .in_scope(|| {});
/// });
/// logger.shutdown(Duration::from_secs(5)).await;
/// let event = &mock.events()[0].event;
/// assert_eq!(event["event_name"], "tiny-1");
/// assert_eq!(event["config"]["model"], "tiny-1");
/// assert_eq!(event["inputs"]["chat_history"][0]["content"], "Hello?");
/// assert!(event["metadata"].get("myfw.cache_key").is_none());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a FieldMap does nothing until it is given to HoneyHiveLayer::field_map"]
pub struct FieldMap {
    exact: HashMap<String, Target>,
    /// Name prefixes dropped (`drop_prefix`).
    prefixes: Vec<String>,
}

/// What becomes of a field the map names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Target {
    Drop,
    Rename(String),
}

impl FieldMap {
    /// Framework-internal fields the layer drops by default: markers a
    /// framework sets for itself, with nothing for a reader of the event.
    /// rig's `rig.completion_parent` says that its span adopted a chat.
    pub const FRAMEWORK_INTERNAL: &'static [&'static str] = &["rig.completion_parent"];

    /// Framework fields the layer renames by default, into a name with a
    /// home (from, to). rig's provider request id is the request's id at
    /// the provider, which HoneyHive keeps in `metadata`.
    pub const FRAMEWORK_RENAMED: &'static [(&'static str, &'static str)] =
        &[("rig.provider_request_id", "metadata.provider_request_id")];

    /// The built-in list: [`FRAMEWORK_INTERNAL`](Self::FRAMEWORK_INTERNAL)
    /// dropped, [`FRAMEWORK_RENAMED`](Self::FRAMEWORK_RENAMED) renamed.
    ///
    /// ```
    /// use honeyhive::tracing::FieldMap;
    ///
    /// let map = FieldMap::new();
    /// assert!(map.drops("rig.completion_parent"));
    /// assert_eq!(map.renamed("rig.provider_request_id"), Some("metadata.provider_request_id"));
    /// ```
    pub fn new() -> Self {
        let map = FieldMap::empty();
        let map = Self::FRAMEWORK_INTERNAL
            .iter()
            .fold(map, |map, name| map.drop(*name));
        Self::FRAMEWORK_RENAMED
            .iter()
            .fold(map, |map, (from, to)| map.rename(*from, *to))
    }

    /// A map that renames and drops nothing (the layer's GenAI mapping
    /// still applies).
    ///
    /// ```
    /// use honeyhive::tracing::FieldMap;
    ///
    /// assert!(!FieldMap::empty().drops("rig.completion_parent"));
    /// ```
    pub fn empty() -> Self {
        FieldMap {
            exact: HashMap::new(),
            prefixes: Vec::new(),
        }
    }

    /// Reads the field `from` as if it were named `to`: a name the layer
    /// maps (`gen_ai.input.messages`, `gen_ai.usage.input_tokens`…), a
    /// bucket key (`inputs.query`, `metrics.score`), or any other name
    /// (kept in `metadata` under it). Replaces an earlier rule for `from`.
    ///
    /// Not the four names the layer reads while the span records, before
    /// the map applies: `error`, `honeyhive.event_type`,
    /// `honeyhive.event_name` and `honeyhive.session_id`. A field renamed
    /// to one of them is kept in `metadata` under that name and does not
    /// set the error, type, name or session; the app records those itself.
    ///
    /// ```
    /// use honeyhive::tracing::FieldMap;
    ///
    /// let map = FieldMap::empty().rename("llm.prompt_text", "gen_ai.prompt");
    /// assert_eq!(map.renamed("llm.prompt_text"), Some("gen_ai.prompt"));
    /// ```
    pub fn rename(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.exact.insert(from.into(), Target::Rename(to.into()));
        self
    }

    /// Leaves the field `name` out of the event. Replaces an earlier rule
    /// for `name`.
    ///
    /// ```
    /// use honeyhive::tracing::FieldMap;
    ///
    /// assert!(FieldMap::empty().drop("myfw.cache_key").drops("myfw.cache_key"));
    /// ```
    pub fn drop(mut self, name: impl Into<String>) -> Self {
        self.exact.insert(name.into(), Target::Drop);
        self
    }

    /// Leaves every field whose name starts with `prefix` out of the event
    /// (a rule for the exact name wins).
    ///
    /// ```
    /// use honeyhive::tracing::FieldMap;
    ///
    /// let map = FieldMap::empty().drop_prefix("myfw.internal.");
    /// assert!(map.drops("myfw.internal.retry"));
    /// assert!(!map.drops("myfw.user"));
    /// ```
    pub fn drop_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefixes.push(prefix.into());
        self
    }

    /// Whether the field `name` is left out of the event.
    ///
    /// ```
    /// use honeyhive::tracing::FieldMap;
    ///
    /// assert!(FieldMap::new().drops("rig.completion_parent"));
    /// assert!(!FieldMap::new().drops("gen_ai.request.model"));
    /// ```
    pub fn drops(&self, name: &str) -> bool {
        self.target(name) == Some(&Target::Drop)
    }

    /// The name the field `name` is read as, if it is renamed.
    ///
    /// ```
    /// use honeyhive::tracing::FieldMap;
    ///
    /// let map = FieldMap::empty().rename("myfw.tokens_in", "gen_ai.usage.input_tokens");
    /// assert_eq!(map.renamed("myfw.tokens_in"), Some("gen_ai.usage.input_tokens"));
    /// assert_eq!(map.renamed("myfw.other"), None);
    /// ```
    pub fn renamed(&self, name: &str) -> Option<&str> {
        match self.target(name) {
            Some(Target::Rename(to)) => Some(to),
            _ => None,
        }
    }

    pub(super) fn target(&self, name: &str) -> Option<&Target> {
        if let Some(target) = self.exact.get(name) {
            return Some(target);
        }
        self.prefixes
            .iter()
            .any(|prefix| name.starts_with(prefix.as_str()))
            .then_some(&Target::Drop)
    }
}

impl Default for FieldMap {
    /// [`FieldMap::new`]: the built-in list.
    fn default() -> Self {
        FieldMap::new()
    }
}
