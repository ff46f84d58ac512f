//! [`Events`]: events read back (`GET /v1/events/{event_id}`,
//! `POST /v1/events/search`).

use std::num::NonZeroU64;
use std::time::SystemTime;

use super::{Page, Paged, page_size, uuid};
use crate::api::types;
use crate::{client::Client, error::Error, event::EventType, session::SessionId};

/// Events read back: made by [`Client::events`]. (Events are logged with
/// [`Client::log_event`], [`Client::log_batch`] and the
/// [`Logger`](crate::Logger).)
///
/// ```no_run
/// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
/// use futures_util::TryStreamExt;
/// use honeyhive::{EventSearch, EventType};
///
/// let search = EventSearch::new().event_type(EventType::Model).is("metadata.tier", "pro");
/// let mut events = client.events().search(search);
/// while let Some(event) = events.try_next().await? {
///     println!("{:?}", event.event_id);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Events {
    client: Client,
}

impl Client {
    /// Events read back: one by id, or every event a search selects (see
    /// [`Events`]).
    pub fn events(&self) -> Events {
        Events {
            client: self.clone(),
        }
    }
}

/// Which events [`Events::search`] gives: every event unless narrowed.
/// Each condition narrows further (they all must hold).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use honeyhive::{EventSearch, EventType};
///
/// let now = SystemTime::now();
/// let search = EventSearch::new()
///     .session_id("3fa85f64-5717-4562-b3fc-2c963f66afa6")
///     .event_type(EventType::Tool)
///     .event_name("search")
///     .is("metadata.customer", "acme")
///     .date_range(now - Duration::from_secs(3600), now)
///     .page_size(500);
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "an EventSearch does nothing until given to Events::search"]
pub struct EventSearch {
    filters: Vec<types::EventSearchFilter>,
    date_range: Option<(SystemTime, SystemTime)>,
    evaluation_id: Option<String>,
    page_size: Option<u64>,
}

impl EventSearch {
    /// The largest page the API gives, and the page size unless set.
    pub const MAX_PAGE_SIZE: u64 = 1000;

    /// Every event.
    pub fn new() -> Self {
        EventSearch::default()
    }

    /// Only events whose `field` (such as `event_name`, or
    /// `metadata.customer` for a key inside a free-form field) is `value`.
    pub fn is(self, field: impl Into<String>, value: impl Into<String>) -> Self {
        self.filter(types::EventSearchFilter {
            field: field.into(),
            operator: types::EventSearchFilterOperator::Is,
            type_: Some(types::EventSearchFilterType::String),
            value: types::EventSearchFilterValue::Variant0(Some(value.into())),
        })
    }

    /// Only events of the session `session_id`.
    pub fn session_id(self, session_id: impl Into<SessionId>) -> Self {
        let session_id = session_id.into();
        self.is("session_id", session_id.as_str())
    }

    /// Only events of this type.
    pub fn event_type(self, event_type: EventType) -> Self {
        self.is("event_type", event_type.as_str())
    }

    /// Only events of this name.
    pub fn event_name(self, name: impl Into<String>) -> Self {
        self.is("event_name", name)
    }

    /// Only events that pass `filter` (any operator the spec has:
    /// `contains`, `greater than`, `exists`…).
    pub fn filter(mut self, filter: types::EventSearchFilter) -> Self {
        self.filters.push(filter);
        self
    }

    /// Only events that started from `start` to `end`, both included.
    pub fn date_range(mut self, start: SystemTime, end: SystemTime) -> Self {
        self.date_range = Some((start, end));
        self
    }

    /// Only events of this evaluation (experiment run).
    pub fn evaluation_id(mut self, run_id: impl Into<String>) -> Self {
        self.evaluation_id = Some(run_id.into());
        self
    }

    /// Events fetched per request: 1 to [`EventSearch::MAX_PAGE_SIZE`]
    /// (which is the size unless set).
    pub fn page_size(mut self, size: u64) -> Self {
        self.page_size = Some(size);
        self
    }

    /// The body of every page's request but its page number, and the page
    /// size.
    fn into_body(self) -> Result<(types::SearchEventsRequest, u64), Error> {
        let size = page_size(
            "page_size",
            self.page_size.unwrap_or(Self::MAX_PAGE_SIZE),
            Self::MAX_PAGE_SIZE,
        )?;
        for (i, filter) in self.filters.iter().enumerate() {
            if filter.field.trim().is_empty() {
                return Err(Error::invalid(
                    format!("filters[{i}].field"),
                    "is empty; name the event field the filter looks at",
                ));
            }
        }
        let date_range = match self.date_range {
            Some((start, end)) if end < start => {
                return Err(Error::invalid(
                    "date_range",
                    "ends before it starts; give the earlier time first",
                ));
            }
            Some((start, end)) => Some(types::SearchEventsRequestDateRange {
                start_time: start.into(),
                end_time: end.into(),
            }),
            None => None,
        };
        let body = types::SearchEventsRequest {
            filters: (!self.filters.is_empty())
                .then_some(types::EventSearchFiltersArray(self.filters)),
            date_range,
            evaluation_id: self.evaluation_id,
            limit: NonZeroU64::new(size),
            page: None,
            ignore_order: None,
        };
        Ok((body, size))
    }
}

impl Events {
    /// The event `event_id` (`GET /v1/events/{event_id}`, getEvent).
    /// Retried: a GET.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `event_id` when it is not a UUID;
    /// [`Error::NotFound`] when there is no such event; any call's.
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// let event = client.events().get("3fa85f64-5717-4562-b3fc-2c963f66afa6").await?;
    /// println!("{:?} took {:?} ms", event.event_name, event.duration);
    /// # Ok(()) }
    /// ```
    pub async fn get(&self, event_id: &str) -> Result<types::GetEventResponseEvent, Error> {
        let id = uuid("event_id", event_id)?;
        let answer = self
            .client
            .call_for(
                "event",
                event_id,
                self.client.raw().get_event().event_id(id).send(),
            )
            .await?;
        Ok(answer.event)
    }

    /// Every event `search` selects, newest first (`POST /v1/events/search`,
    /// searchEvents), page by page as a [`Paged`] stream: one page in
    /// memory whatever the number of events. Each page is retried: the
    /// search only reads. The stream ends when it has given as many events
    /// as the answers' `count` (every event the search selects) says, or
    /// at an empty page.
    ///
    /// A search refused before sending (a page size outside 1 to
    /// [`EventSearch::MAX_PAGE_SIZE`], an empty filter field, a date range
    /// that ends before it starts) is the stream's one item.
    ///
    /// ```no_run
    /// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
    /// use futures_util::TryStreamExt;
    /// let search = honeyhive::EventSearch::new().session_id("3fa85f64-5717-4562-b3fc-2c963f66afa6");
    /// let mut events = client.events().search(search);
    /// while let Some(event) = events.try_next().await? {
    ///     println!("{:?}", event.event_name);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn search(&self, search: EventSearch) -> Paged<types::LegacyEvent> {
        let (body, size) = match search.into_body() {
            Ok(body) => body,
            Err(error) => return Paged::refused(error),
        };
        let client = self.client.clone();
        // Events received so far, against the total each answer gives.
        let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        Paged::new(move |page| {
            let client = client.clone();
            let received = std::sync::Arc::clone(&received);
            let mut body = body.clone();
            body.page = NonZeroU64::new(page);
            async move {
                let answer = client
                    .call(client.raw().search_events().body(body).send())
                    .await?;
                let got = answer.events.len() as u64;
                let so_far = received.fetch_add(got, std::sync::atomic::Ordering::Relaxed) + got;
                // The answer's `count` is every event the search selects: a
                // server that pages shorter than asked is read to the end,
                // and a total that fills the last page costs no empty page.
                // Without a usable count, a short page is the last.
                let total = answer.count.as_u64().or_else(|| {
                    // A whole number written as a float (`250.0`).
                    answer
                        .count
                        .as_f64()
                        .filter(|c| c.fract() == 0.0 && *c >= 0.0)
                        .map(|c| c as u64)
                });
                let more = match total {
                    Some(total) => so_far < total,
                    None => got >= size,
                };
                Ok(Page {
                    items: answer.events,
                    more,
                })
            }
        })
    }
}
