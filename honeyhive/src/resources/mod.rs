//! Handles for the resources users work with: experiment runs
//! ([`Client::runs`]), datasets ([`Client::datasets`]), datapoints
//! ([`Client::datapoints`]) and events ([`Client::events`]).
//!
//! Each method checks its input before anything is sent (an id the spec
//! types `format: uuid` must be one, an empty name or a page size outside
//! the spec's range is refused, each as [`Error::InvalidInput`] naming the
//! field), sends one generated call through [`Client::raw`], and returns
//! the generated type of the answer ([`api::types`]). A missing resource is
//! [`Error::NotFound`], naming it and its id; any other failure is the
//! [`Error`] every call of this crate returns, with the URL the answer came
//! from. Lists that page ([`Runs::list`], [`Events::search`]) are
//! [`Paged`] streams: one page in memory at a time, the next fetched when
//! the last item of this one has been taken.
//!
//! Every call runs on the client's retry loop, and is repeated after a
//! retryable failure only where a repeat cannot do harm, by the table in
//! the README's [raw API section](https://github.com/honeyhive-rs/honeyhive-rs#the-raw-api);
//! each method's docs say which case it is. The rest of the API (metrics
//! and their versions, configurations, queues, charts) is reached through
//! [`Client::raw`], and a failure turned into an [`Error`] by
//! [`Client::call`].
//!
//! ```no_run
//! # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
//! use futures_util::StreamExt;
//!
//! let dataset = client.datasets().create("qa-golden", Some("questions with answers")).await?;
//! let dataset_id = dataset.result.inserted_id.as_str();
//! let mut runs = client.runs().list(honeyhive::RunQuery::new().dataset_id(dataset_id));
//! while let Some(run) = runs.next().await {
//!     println!("{}", run?.run_id);
//! }
//! # Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::{api, client::Client, error::Error};

mod datapoints;
mod datasets;
mod events;
mod runs;

pub use datapoints::{DatapointBatch, DatapointUpdate, Datapoints, NewDatapoint};
pub use datasets::{DatasetUpdate, Datasets};
pub use events::{EventSearch, Events};
pub use runs::{Aggregate, NewRun, RunQuery, RunStatus, RunUpdate, Runs};

/// Every item of a paged list, page by page: a [`Stream`] of
/// `Result<T, Error>` that holds one page in memory and fetches the next
/// when this one is used up. A failed page ends the stream after its error.
///
/// ```no_run
/// # async fn run(client: honeyhive::Client) -> Result<(), honeyhive::Error> {
/// use futures_util::TryStreamExt;
///
/// let mut runs = client.runs().list(honeyhive::RunQuery::new());
/// while let Some(run) = runs.try_next().await? {
///     println!("{} {:?}", run.run_id, run.status);
/// }
/// # Ok(()) }
/// ```
#[must_use = "a Paged stream fetches nothing until it is polled"]
pub struct Paged<T> {
    inner: Pin<Box<dyn Stream<Item = Result<T, Error>> + Send>>,
}

impl<T> std::fmt::Debug for Paged<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paged").finish_non_exhaustive()
    }
}

impl<T> Stream for Paged<T> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// One page: its items, and whether another may follow.
pub(crate) struct Page<T> {
    pub(crate) items: Vec<T>,
    pub(crate) more: bool,
}

impl<T: Send + 'static> Paged<T> {
    /// Pages 1, 2, … from `fetch`, until a page says it is the last or
    /// fails.
    pub(crate) fn new<F, Fut>(fetch: F) -> Self
    where
        F: FnMut(u64) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Page<T>, Error>> + Send + 'static,
    {
        struct State<F, T> {
            fetch: F,
            next_page: Option<u64>,
            items: std::vec::IntoIter<T>,
        }
        let state = State {
            fetch,
            next_page: Some(1),
            items: Vec::new().into_iter(),
        };
        let stream = futures_util::stream::unfold(state, |mut state| async move {
            loop {
                if let Some(item) = state.items.next() {
                    return Some((Ok(item), state));
                }
                let page = state.next_page?;
                match (state.fetch)(page).await {
                    Ok(Page { items, more }) => {
                        state.next_page = (more && !items.is_empty()).then_some(page + 1);
                        state.items = items.into_iter();
                    }
                    Err(error) => {
                        state.next_page = None;
                        return Some((Err(error), state));
                    }
                }
            }
        });
        Paged {
            inner: Box::pin(stream),
        }
    }

    /// A stream that yields `error` and ends: input refused before any
    /// request.
    pub(crate) fn refused(error: Error) -> Self {
        Paged {
            inner: Box::pin(futures_util::stream::once(async move { Err(error) })),
        }
    }
}

/// `id`, checked to be a UUID, as the spec's `format: uuid` path ids must
/// be.
pub(crate) fn uuid(field: &str, id: &str) -> Result<uuid::Uuid, Error> {
    uuid::Uuid::try_parse(id.trim()).map_err(|_| {
        Error::invalid(
            field,
            format!(
                "is {id:?}, not a UUID; pass the id the API gave (such as \
                 3fa85f64-5717-4562-b3fc-2c963f66afa6)"
            ),
        )
    })
}

/// `id`, checked to be usable as a path segment: not blank, and not `.`
/// or `..` (which a URL parser reads as steps in the path).
pub(crate) fn path_id<'a>(field: &str, id: &'a str) -> Result<&'a str, Error> {
    if id.trim().is_empty() {
        return Err(Error::invalid(field, "is empty; pass the id the API gave"));
    }
    if id == "." || id == ".." {
        return Err(Error::invalid(
            field,
            format!("is {id:?}, which a URL reads as a step in the path; pass the id the API gave"),
        ));
    }
    Ok(id)
}

/// `value` as the generated newtype `T` (a string the spec constrains),
/// its refusal as the problem of `field`.
pub(crate) fn typed<T>(field: &str, value: impl Into<String>) -> Result<T, Error>
where
    T: TryFrom<String>,
    T::Error: std::fmt::Display,
{
    T::try_from(value.into()).map_err(|e| Error::invalid(field, format!("{e}")))
}

/// A page size, checked against the spec's range.
pub(crate) fn page_size(field: &str, size: u64, max: u64) -> Result<u64, Error> {
    if (1..=max).contains(&size) {
        Ok(size)
    } else {
        Err(Error::invalid(
            field,
            format!("is {size}; the API takes 1 to {max} items a page"),
        ))
    }
}

impl Client {
    /// [`Client::call`] of a call about the `resource` `id`: its 404 is
    /// [`Error::NotFound`].
    pub(crate) async fn call_for<T, E>(
        &self,
        resource: &'static str,
        id: &str,
        call: impl Future<Output = Result<api::ResponseValue<T>, api::Error<E>>>,
    ) -> Result<T, Error> {
        self.call(call)
            .await
            .map_err(|e| e.not_found_as(resource, id))
    }
}

impl Error {
    /// A 404 as [`Error::NotFound`] of `resource` `id`; any other error as
    /// it is.
    fn not_found_as(self, resource: &'static str, id: &str) -> Self {
        match self {
            Error::Api {
                status: reqwest::StatusCode::NOT_FOUND,
                body,
                attempts,
                url,
            } => Error::NotFound {
                resource,
                id: id.to_owned(),
                body,
                attempts,
                url,
            },
            other => other,
        }
    }
}

/// [`Error::NotFound`] for an answer that lists nothing where one item was
/// asked for by id (an answer of 200 with an empty list).
pub(crate) fn none_found(resource: &'static str, id: &str) -> Error {
    Error::NotFound {
        resource,
        id: id.to_owned(),
        body: String::new(),
        attempts: 1,
        url: None,
    }
}
