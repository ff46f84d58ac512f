//! Why the reader stopped early, shared by the reader, the Ctrl-C handler
//! and the tracker; the first reason set wins.

use std::sync::atomic::{AtomicU8, Ordering};

/// Why `send` stops reading before the end of its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum StopReason {
    /// Ctrl-C: the events already read are sent, then the command ends.
    Interrupted = 1,
    /// Nothing was sent and the first failure had no answer at all.
    Unreachable = 2,
    /// Nothing was sent and the API refused the key (401, 403).
    RefusedKey = 3,
}

/// A [`StopReason`] once one is set, readable from any thread.
#[derive(Debug, Default)]
pub(super) struct Stop(AtomicU8);

impl Stop {
    /// Sets `reason` unless a reason is set already.
    pub(super) fn set(&self, reason: StopReason) {
        let _first_wins =
            self.0
                .compare_exchange(0, reason as u8, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The reason set, if any.
    pub(super) fn reason(&self) -> Option<StopReason> {
        match self.0.load(Ordering::SeqCst) {
            1 => Some(StopReason::Interrupted),
            2 => Some(StopReason::Unreachable),
            3 => Some(StopReason::RefusedKey),
            _ => None,
        }
    }

    /// Whether reading goes on.
    pub(super) fn going(&self) -> bool {
        self.reason().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_wins_and_each_reads_back_as_itself() {
        for reason in [
            StopReason::Interrupted,
            StopReason::Unreachable,
            StopReason::RefusedKey,
        ] {
            let stop = Stop::default();
            assert!(stop.going());
            stop.set(reason);
            stop.set(StopReason::Interrupted);
            stop.set(StopReason::Unreachable);
            assert_eq!(stop.reason(), Some(reason));
            assert!(!stop.going());
        }
    }
}
