//! Settling: events sent or handed back, their outcomes told, and the
//! flushes waiting on them answered.

use super::*;

impl Shared {
    /// Settles `units` as sent (those shutdown has not handed back first),
    /// telling [`OutcomeSink::sent`](super::OutcomeSink::sent) of each before it
    /// counts as settled.
    pub(super) fn settle_sent(&self, units: &[Numbered], attempts: u32) {
        let Some(outcomes) = &self.config.outcomes else {
            let mut in_flight = self.in_flight.lock();
            // Gone when shutdown handed it back first; it counts as failed then.
            let sent = units
                .iter()
                .filter(|(seq, _)| in_flight.events.remove(*seq).is_some())
                .count();
            self.counters.sent.fetch_add(sent as u64, Ordering::SeqCst);
            settle_flushes(&mut in_flight);
            return;
        };
        let mut settling = Vec::with_capacity(units.len());
        {
            let mut in_flight = self.in_flight.lock();
            for (seq, unit) in units {
                if let Some(entry) = in_flight.events.get_mut(*seq)
                    && entry.phase == Phase::Sending
                {
                    entry.phase = Phase::Settling;
                    settling.push((*seq, unit));
                }
            }
            self.counters
                .sent
                .fetch_add(settling.len() as u64, Ordering::SeqCst);
        }
        // Outside the lock; before the events count as settled, so a flush
        // that returns has seen every callback. A panic in it must not
        // leave an event unsettled (a flush would wait forever).
        for (_, unit) in &settling {
            let sent = Sent {
                session_id: &unit.session_id,
                event_id: unit.event_id(),
                attempts,
            };
            let called =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| outcomes.sent(&sent)));
            if called.is_err() {
                warn_loss("the logger's OutcomeSink::sent panicked; the event was sent");
            }
        }
        let mut in_flight = self.in_flight.lock();
        for (seq, _) in settling {
            in_flight.events.remove(seq);
        }
        settle_flushes(&mut in_flight);
    }

    /// Settles `units` as failed with `error` (those shutdown has not
    /// handed back first): dead letters. The letters are made outside the
    /// lock (a tree's is parsed back from its JSON), and in the report
    /// before the events count as settled, so that a flush that returns has
    /// every failure in its report (and waits for the sink to take it).
    pub(super) fn settle_failed(&self, units: &[Numbered], error: &Error) {
        let failing: Vec<&Numbered> = {
            let mut in_flight = self.in_flight.lock();
            units
                .iter()
                .filter(|(seq, _)| match in_flight.events.get_mut(*seq) {
                    Some(entry) if entry.phase == Phase::Sending => {
                        entry.phase = Phase::Settling;
                        true
                    }
                    _ => false,
                })
                .collect()
        };
        let letters = failing
            .iter()
            .map(|(_, unit)| DeadLetter {
                status: error.status(),
                fix: error.fix(),
                ..unit.letter(error.to_string())
            })
            .collect();
        self.hand_back(letters);
        let mut in_flight = self.in_flight.lock();
        for (seq, _) in failing {
            in_flight.events.remove(*seq);
        }
        settle_flushes(&mut in_flight);
    }

    /// Settles an event that could not be serialized for sending as
    /// `letter`. Handed back whether or not a shutdown's hand-back drained
    /// it meanwhile: that one skips an event whose delivery took it to
    /// serialize (its stage is `Handed`), and leaves it to this.
    pub(super) fn settle_letter(&self, seq: u64, letter: DeadLetter) {
        self.hand_back(vec![letter]);
        let mut in_flight = self.in_flight.lock();
        in_flight.events.remove(seq);
        settle_flushes(&mut in_flight);
    }

    /// Counts the letters as failed, keeps them for the next report, and
    /// queues them for the sink's thread.
    pub(in crate::logger) fn hand_back(&self, letters: Vec<DeadLetter>) {
        self.counters
            .failed
            .fetch_add(letters.len() as u64, Ordering::SeqCst);
        self.letters.hand_back(letters);
    }

    /// Hands back everything queued or in flight as dead letters with
    /// `reason`: queued events serialized as they would have been sent,
    /// in-flight ones with the body they were sent with; then answers the
    /// flushes waiting (their events are settled now). For shutdown, drop
    /// and a runtime that ended, after the state is `Stopped`. Returns how
    /// many events it handed back.
    pub(in crate::logger) fn hand_back_unsettled(&self, reason: &str) -> usize {
        let mut letters = Vec::new();
        let mut markers = Vec::new();
        while let Some(entry) = self.queue.pop() {
            match entry {
                Entry::Event(item) => letters.push(self.letter_for(item, reason)),
                Entry::Flush(done) => markers.push(done),
            }
        }
        // Everything in flight, and the flushes waiting for it, taken out
        // at once: no settle can answer those flushes before the letters
        // below are in the report. The letters are made outside the lock.
        let (entries, flushes) = {
            let mut in_flight = self.in_flight.lock();
            let entries: Vec<Unsettled> = in_flight.events.drain().collect();
            (entries, std::mem::take(&mut in_flight.flushes))
        };
        for entry in entries {
            // One its delivery is settling was counted then.
            if entry.phase != Phase::Sending {
                continue;
            }
            // Waits for a delivery serializing it, if one is; one whose
            // delivery could not serialize it is that delivery's to hand
            // back (`settle_letter`).
            let mut stage = entry.held.lock();
            match std::mem::replace(&mut *stage, Stage::Handed) {
                Stage::Queued(item) => letters.push(self.letter_for(item, reason)),
                Stage::Ready(unit) => letters.push(unit.letter(reason.to_owned())),
                Stage::Handed => {}
            }
        }
        let count = letters.len();
        self.hand_back(letters);
        for done in markers
            .into_iter()
            .chain(flushes.into_iter().map(|(_, done)| done))
        {
            let _answered = done.send(());
        }
        count
    }
}

/// Answers the flushes whose events are all settled: a flush numbered
/// `target` waits for every event numbered below it.
pub(super) fn settle_flushes(in_flight: &mut InFlight) {
    if in_flight.flushes.is_empty() {
        return;
    }
    let oldest = in_flight.events.oldest().unwrap_or(in_flight.next);
    while let Some(at) = in_flight
        .flushes
        .iter()
        .position(|(target, _)| *target <= oldest)
    {
        let (_, done) = in_flight.flushes.swap_remove(at);
        // The flush may have timed out and gone: nothing to tell then.
        let _answered = done.send(());
    }
}
