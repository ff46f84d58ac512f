//! What holds events the Logger has not been given yet (the `tracing`
//! layer's open trees, through this general interface). The dispatcher ticks each source, so a bound stated
//! in time acts on time and not on the next span; `shutdown` closes them
//! first, so what they hold is sent with the rest.

use parking_lot::Mutex;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How often the dispatcher ticks the sources, at most. It looks at the
/// queue at least every 100 ms, so they are ticked about this often.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// Holds events for a Logger until they are complete (see the module docs).
pub(crate) trait Source: Send + Sync {
    /// Time passed: send what has waited past its bound, as it stands.
    fn tick(&self, now: Instant);
    /// The logger is shutting down: send everything held, as it stands.
    fn close(&self);
}

/// The sources of one Logger. A source that was dropped is forgotten.
#[derive(Default)]
pub(crate) struct Sources {
    list: Mutex<Vec<Weak<dyn Source>>>,
    last_tick: Mutex<Option<Instant>>,
}

impl Sources {
    pub(super) fn add(&self, source: Weak<dyn Source>) {
        let mut list = self.list.lock();
        list.retain(|s| s.strong_count() > 0);
        list.push(source);
    }

    /// The live sources, taken out of the lock so that none is called
    /// under it.
    fn live(&self) -> Vec<Arc<dyn Source>> {
        let mut list = self.list.lock();
        list.retain(|s| s.strong_count() > 0);
        list.iter().filter_map(Weak::upgrade).collect()
    }

    /// Ticks every source, if [`TICK`] passed since the last time.
    pub(super) fn tick(&self) {
        let now = Instant::now();
        {
            let mut last = self.last_tick.lock();
            if last.is_some_and(|at| now.duration_since(at) < TICK) {
                return;
            }
            *last = Some(now);
        }
        for source in self.live() {
            source.tick(now);
        }
    }

    pub(super) fn close(&self) {
        for source in self.live() {
            source.close();
        }
    }
}
