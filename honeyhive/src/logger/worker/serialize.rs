//! Serializing: queued events become what is sent (one request's body,
//! or their part of a batch body), or the dead letters they are handed
//! back as.

use super::*;

impl Shared {
    /// Serializes a queued event as it will be sent (ids and defaults
    /// filled, so that every attempt, and a dead letter, carries the same
    /// ids). An event that cannot be sent (over the size limit) is a dead
    /// letter at once.
    pub(super) fn prepare(&self, item: Item) -> Result<Unit, DeadLetter> {
        let Item {
            session_id,
            event,
            json_at_least,
            ..
        } = item;
        let event = event.into_event();
        let body = match self.config.route {
            Route::Event => self
                .client
                .serialize(&session_id, event, json_at_least)
                .map(Body::Request),
            Route::EventBatch => self
                .client
                .flat(&session_id, event, json_at_least)
                .map(Body::Part),
        };
        let unit = match body {
            Ok(body) => Unit { session_id, body },
            // A mask that panicked (`log` refused other invalid input, and
            // the generated types always serialize). The letter carries no
            // event: the mask may have changed it half-way.
            Err(error) => return Err(DeadLetter::unsent(&session_id, error.to_string())),
        };
        let len = match &unit.body {
            Body::Request(prepared) => prepared.body.len(),
            Body::Part(flat) => flat.alone_len(),
        };
        match self.client.check_len("event", len) {
            Ok(()) => Ok(unit),
            Err(error) => Err(unit.letter(error.to_string())),
        }
    }

    /// A dead letter for an event the batch route cannot take: its JSON as
    /// the per-event route carries it (ids filled), with the reason.
    pub(super) fn per_event_letter(
        &self,
        session_id: &SessionId,
        event: crate::event::Event,
        error: &Error,
    ) -> DeadLetter {
        match self.client.serialize(session_id, event, 0) {
            Ok(prepared) => Unit {
                session_id: session_id.clone(),
                body: Body::Request(prepared),
            }
            .letter(error.to_string()),
            Err(_) => DeadLetter::unsent(session_id, error.to_string()),
        }
    }

    /// A dead letter for a queued event: serialized as it would have been
    /// sent (ids and defaults filled), with `reason`.
    pub(super) fn letter_for(&self, item: Item, reason: &str) -> DeadLetter {
        match self.prepare(item) {
            Ok(unit) => unit.letter(reason.to_owned()),
            Err(mut letter) => {
                letter.reason = format!("{reason} ({})", letter.reason);
                letter
            }
        }
    }

    /// Serializes the taken events that are still queued (a hand-back may
    /// have taken some), in their stages, so that a hand-back meanwhile
    /// waits for each or finds it serialized. An event that cannot be sent
    /// (over the body limit) is settled as a dead letter. With batches, the
    /// events are written into one body, which comes back too (each event's
    /// JSON is a slice of it).
    pub(super) fn serialize(&self, taken: Vec<Grabbed>) -> (Vec<Numbered>, Option<Bytes>) {
        if self.config.route == Route::EventBatch {
            return self.serialize_batch(taken);
        }
        let mut ready = Vec::with_capacity(taken.len());
        for (seq, held) in taken {
            let mut stage = held.lock();
            let unit = match std::mem::replace(&mut *stage, Stage::Handed) {
                Stage::Queued(item) => match self.prepare(item) {
                    Ok(unit) => Arc::new(unit),
                    Err(letter) => {
                        drop(stage);
                        self.settle_letter(seq, letter);
                        continue;
                    }
                },
                Stage::Ready(unit) => unit,
                Stage::Handed => continue,
            };
            *stage = Stage::Ready(Arc::clone(&unit));
            ready.push((seq, unit));
        }
        (ready, None)
    }

    /// [`serialize`](Self::serialize) for a batch: every event written into
    /// one body, once. The stages stay locked until their events are ready.
    pub(super) fn serialize_batch(&self, taken: Vec<Grabbed>) -> (Vec<Numbered>, Option<Bytes>) {
        let mut stages: Vec<(u64, MutexGuard<'_, Stage>)> = taken
            .iter()
            .map(|(seq, held)| (*seq, held.lock()))
            .collect();
        let hint: usize = stages
            .iter()
            .map(|(_, stage)| match &**stage {
                Stage::Queued(item) => item.json_at_least * 2,
                _ => 0,
            })
            .sum();
        let mut body = Vec::with_capacity(BATCH_OPEN.len() + hint + BATCH_CLOSE.len());
        body.extend_from_slice(BATCH_OPEN);
        // (index in `stages`, where its JSON is in `body`, the unit less its JSON)
        let mut parts = Vec::with_capacity(stages.len());
        let mut letters = Vec::new();
        let limit = self.client.max_body_bytes();
        for (index, (seq, stage)) in stages.iter_mut().enumerate() {
            let mark = body.len();
            if !parts.is_empty() {
                body.push(b',');
            }
            let start = body.len();
            let (session_id, event_id) = match std::mem::replace(&mut **stage, Stage::Handed) {
                Stage::Queued(item) => {
                    let event = item.event.into_event();
                    // `log` checked this, but a tree built when taken (the
                    // tracing layer's) is checked only now.
                    if let Err(error) = crate::flat::check(event.as_api()) {
                        body.truncate(mark);
                        let letter = self.per_event_letter(&item.session_id, event, &error);
                        letters.push((*seq, letter));
                        continue;
                    }
                    match self.client.flat_into(
                        &mut body,
                        &item.session_id,
                        event,
                        item.json_at_least,
                    ) {
                        Ok(event_id) => (item.session_id, event_id),
                        Err(error) => {
                            // A mask that panicked: a letter without the
                            // event, which it may have changed half-way.
                            body.truncate(mark);
                            let letter = DeadLetter::unsent(&item.session_id, error.to_string());
                            letters.push((*seq, letter));
                            continue;
                        }
                    }
                }
                Stage::Ready(unit) => {
                    body.extend_from_slice(unit_json(&unit));
                    (unit.session_id.clone(), unit.event_id().to_owned())
                }
                Stage::Handed => {
                    body.truncate(mark);
                    continue;
                }
            };
            let alone = BATCH_OPEN.len() + (body.len() - start) + BATCH_CLOSE.len();
            if let Err(error) = self.client.check_len("event", alone) {
                let json = Bytes::copy_from_slice(&body[start..]);
                body.truncate(mark);
                let unit = Unit {
                    session_id,
                    body: Body::Part(Flat { json, event_id }),
                };
                letters.push((*seq, unit.letter(error.to_string())));
                continue;
            }
            parts.push((index, start..body.len(), session_id, event_id));
        }
        body.extend_from_slice(BATCH_CLOSE);
        let whole = Bytes::from(body);
        let mut ready = Vec::with_capacity(parts.len());
        for (index, range, session_id, event_id) in parts {
            let (seq, stage) = &mut stages[index];
            let unit = Arc::new(Unit {
                session_id,
                body: Body::Part(Flat {
                    json: whole.slice(range),
                    event_id,
                }),
            });
            **stage = Stage::Ready(Arc::clone(&unit));
            ready.push((*seq, unit));
        }
        drop(stages);
        for (seq, letter) in letters {
            self.settle_letter(seq, letter);
        }
        let whole = (whole.len() <= limit && !ready.is_empty()).then_some(whole);
        (ready, whole)
    }

    /// The request for `units`: the one event's own, or a batch (with
    /// `body` when it was written for exactly these units).
    pub(super) fn request<'a>(
        &self,
        units: &'a [Numbered],
        body: Option<Bytes>,
    ) -> std::borrow::Cow<'a, Prepared> {
        if let [(_, unit)] = units
            && let Body::Request(prepared) = &unit.body
        {
            return std::borrow::Cow::Borrowed(prepared);
        }
        if let Some(body) = body {
            let event_ids = units
                .iter()
                .map(|(_, unit)| unit.event_id().to_owned())
                .collect();
            return std::borrow::Cow::Owned(Prepared::post(
                self.client.url("/v1/events/batch"),
                body,
                Expect::Batch { event_ids },
            ));
        }
        std::borrow::Cow::Owned(self.client.batch(units.iter().filter_map(|(_, unit)| {
            match &unit.body {
                Body::Part(flat) => Some(flat),
                Body::Request(_) => None,
            }
        })))
    }
}
