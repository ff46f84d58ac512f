//! Request bodies that can tell how far they were sent, and wait for an
//! early answer before sending anything.
//!
//! A server or proxy may refuse a request from its head alone (`413 Payload
//! Too Large`, `401`, `431`) and close the connection while the client is
//! still writing the body. The answer is then on the wire; a large body
//! goes on a connection where it is read even so (`linger.rs`), but behind
//! a proxy (or when the reset came with no answer) the client only sees the
//! failed write, and would send the whole body again. So:
//!
//! - a large body is handed to hyper in chunks that record how much of it
//!   was taken, so a failure while writing it is known to be one;
//! - the attempt after such a failure asks before sending its body
//!   (`Expect: 100-continue`, RFC 9110 §10.1.1) and holds the body back for
//!   up to [`HOLD`], as curl does for large bodies: a server that refuses
//!   from the head answers within that time and the body is not sent again.
//!   (hyper does not surface the `100 Continue`, so a server that accepts
//!   gets the body after the hold.)

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// Bodies at least this large are sent in tracked chunks (and, where they
/// may, on the client's own connections: `linger.rs`); smaller ones go out
/// whole in one write, where the race above has nowhere to happen. 16 KiB
/// is where Linux starts a TCP socket's send buffer (`tcp_wmem`'s
/// default), so a smaller body is taken whole by the kernel whatever the
/// network; a larger one may be written in parts.
pub(crate) const TRACK_FROM: usize = 16 * 1024;
/// How much of a tracked body is handed to hyper at a time.
const CHUNK: usize = 64 * 1024;
/// How long an attempt that asks first holds its body back, at most.
pub(crate) const HOLD: Duration = Duration::from_secs(1);

/// How long an attempt with `timeout` holds its body back when it asks
/// first: [`HOLD`], or half the attempt's time when that is shorter, so the
/// body still has time to go once the hold ends.
pub(crate) fn hold(timeout: Duration) -> Duration {
    HOLD.min(timeout / 2)
}

/// A request body, and (for a tracked one) how many of its bytes hyper
/// has taken to write.
pub(crate) struct Outgoing {
    pub(crate) body: reqwest::Body,
    /// Whether the request should carry `Expect: 100-continue`.
    pub(crate) ask_first: bool,
    taken: Option<Arc<AtomicUsize>>,
}

impl Outgoing {
    /// `bytes` as a body; held back for `hold` (with `Expect:
    /// 100-continue`) after an attempt whose connection closed while its
    /// body was being written.
    pub(crate) fn new(bytes: Bytes, hold: Option<Duration>) -> Outgoing {
        let ask_first = hold.is_some();
        if bytes.len() < TRACK_FROM && !ask_first {
            return Outgoing {
                body: reqwest::Body::from(bytes),
                ask_first,
                taken: None,
            };
        }
        let (tracked, Progress(taken)) = Tracked::new(bytes, hold);
        Outgoing {
            body: reqwest::Body::wrap(tracked),
            ask_first,
            taken,
        }
    }

    /// A probe that says, after the request failed, whether it failed
    /// while its body was being written (some but not all of it taken).
    pub(crate) fn progress(&self) -> Progress {
        Progress(self.taken.clone())
    }
}

/// See [`Outgoing::progress`].
#[derive(Default)]
pub(crate) struct Progress(Option<Arc<AtomicUsize>>);

impl Progress {
    /// Whether hyper had started writing the body when the request failed.
    pub(crate) fn body_started(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|taken| taken.load(Ordering::Relaxed) > 0)
    }
}

/// A body handed to hyper chunk by chunk, counting what was taken.
pub(crate) struct Tracked {
    bytes: Bytes,
    at: usize,
    taken: Arc<AtomicUsize>,
    hold: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Tracked {
    /// `bytes` as a tracked body, held back for `hold` when there is one,
    /// and the probe of how far it went.
    pub(crate) fn new(bytes: Bytes, hold: Option<Duration>) -> (Tracked, Progress) {
        let taken = Arc::new(AtomicUsize::new(0));
        let tracked = Tracked {
            bytes,
            at: 0,
            taken: Arc::clone(&taken),
            hold: hold.map(|hold| Box::pin(tokio::time::sleep(hold))),
        };
        (tracked, Progress(Some(taken)))
    }
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if let Some(hold) = &mut this.hold {
            if hold.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.hold = None;
        }
        if this.at >= this.bytes.len() {
            return Poll::Ready(None);
        }
        let end = (this.at + CHUNK).min(this.bytes.len());
        let chunk = this.bytes.slice(this.at..end);
        this.at = end;
        this.taken.store(end, Ordering::Relaxed);
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.hold.is_none() && self.at >= self.bytes.len()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact((self.bytes.len() - self.at) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_tracked_body_gives_every_byte_in_chunks_and_counts_them() {
        let bytes = Bytes::from(vec![7u8; 3 * CHUNK + 10]);
        let outgoing = Outgoing::new(bytes.clone(), None);
        let progress = outgoing.progress();
        assert!(!progress.body_started());
        let mut body = Tracked {
            bytes: bytes.clone(),
            at: 0,
            taken: Arc::clone(outgoing.taken.as_ref().unwrap()),
            hold: None,
        };
        assert_eq!(body.size_hint().exact(), Some(bytes.len() as u64));
        let mut sizes = Vec::new();
        while let Some(frame) = body.frame().await {
            sizes.push(frame.unwrap().into_data().unwrap().len());
        }
        assert_eq!(sizes, [CHUNK, CHUNK, CHUNK, 10]);
        assert!(progress.body_started());
    }

    #[tokio::test]
    async fn a_small_body_goes_whole_and_is_not_tracked() {
        let outgoing = Outgoing::new(Bytes::from_static(b"{}"), None);
        assert!(outgoing.taken.is_none());
        assert_eq!(outgoing.body.as_bytes(), Some(&b"{}"[..]));
        assert!(!outgoing.progress().body_started());
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_body_gives_nothing_before_the_hold_ends() {
        let outgoing = Outgoing::new(Bytes::from_static(b"{\"a\":1}"), Some(HOLD));
        assert!(outgoing.ask_first);
        let mut body = Tracked {
            bytes: Bytes::from_static(b"{\"a\":1}"),
            at: 0,
            taken: Arc::new(AtomicUsize::new(0)),
            hold: Some(Box::pin(tokio::time::sleep(HOLD))),
        };
        let early = tokio::time::timeout(HOLD / 2, body.frame()).await;
        assert!(early.is_err(), "nothing before the hold ends");
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), Bytes::from_static(b"{\"a\":1}"));
    }

    #[test]
    fn the_hold_leaves_the_body_time_to_go_within_the_attempt() {
        assert_eq!(hold(Duration::from_secs(30)), HOLD);
        assert_eq!(hold(Duration::from_millis(200)), Duration::from_millis(100));
    }
}
