//! Large bodies on connections where a failed write does not hide an
//! answer that already came.
//!
//! A server that refuses a request from its head (`413`) answers and closes
//! while the client is still writing the body; the close resets the
//! connection, and the client's next write fails. hyper's HTTP/1 connection
//! reads and writes in turns (`proto/h1/dispatch.rs`, `poll_loop`: read,
//! then write, then flush), and a write error ends the connection at once
//! (`poll_catch` hands the error to the waiting request): when the answer
//! and the reset land between a read and the next write, the answer,
//! though in the socket's receive queue, is never read, and the request
//! fails as a broken connection. reqwest owns its connections (its
//! `Conn` is sealed), so the socket cannot be reached through it.
//!
//! So a request with a large body ([`TRACK_FROM`](super::body::TRACK_FROM)
//! bytes or more) goes
//! through a hyper client of the crate's own, whose TCP sockets
//! ([`Linger`]) take a write the peer has reset as written and drop it:
//! the request then waits for its answer as if the body had gone, and
//! hyper reads what came before the reset (the kernel keeps received
//! bytes readable after a reset). When nothing came, the read fails, and
//! the request fails as before. Nothing is invented: an answer is only
//! what the server sent.
//!
//! It is used where reqwest would connect directly: no proxy, and not
//! HTTP/2 by prior knowledge (HTTP/2 answers each stream on its own, and
//! a reset there names the stream). TLS is the client's own configuration
//! (its roots, its versions) but offers HTTP/1.1 only in ALPN: these are
//! HTTP/1.1 connections, one per large request in flight (pooled), as
//! [`ClientBuilder::max_connections`](crate::ClientBuilder::max_connections)
//! says of HTTP/1.1.
//!
//! What it rests on: the kernel keeping bytes received before a reset
//! readable (Linux does, and so do the BSDs and macOS; Windows discards
//! them, and there an early answer is lost as before, never invented).
//! Calls through [`Client::raw`](crate::Client::raw) go through reqwest
//! alone: the generated client builds and sends its own requests.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use reqwest::header::HeaderMap;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::body::Tracked;

/// The crate's own HTTP client for large bodies (see the module docs).
pub(super) struct Lingering {
    client: hyper_util::client::legacy::Client<Connect, Tracked>,
    /// What reqwest puts on every request: the key, the `User-Agent`.
    headers: HeaderMap,
}

impl Lingering {
    /// A client with `tls`, connecting within `connect_timeout`, sending
    /// `headers` on every request.
    pub(super) fn new(
        tls: rustls::ClientConfig,
        connect_timeout: Duration,
        headers: HeaderMap,
    ) -> Lingering {
        let mut tls = tls;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connect = Connect {
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            connect_timeout,
        };
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connect);
        Lingering { client, headers }
    }

    /// Sends `request` (its body ignored) with `body`; the answer as a
    /// reqwest response, its body unread.
    pub(super) async fn send(
        &self,
        request: &reqwest::Request,
        body: Tracked,
    ) -> Result<reqwest::Response, BoxError> {
        let tracked = body;
        let answer = async {
            let url = request.url().clone();
            let mut outgoing = http::Request::new(tracked);
            *outgoing.method_mut() = request.method().clone();
            *outgoing.uri_mut() = http::Uri::try_from(url.as_str())?;
            let headers = outgoing.headers_mut();
            headers.clone_from(&self.headers);
            for (name, value) in request.headers() {
                headers.insert(name, value.clone());
            }
            let (mut head, incoming) = self.client.request(outgoing).await?.into_parts();
            head.extensions.insert(url);
            Ok(reqwest::Response::from(http::Response::from_parts(
                head,
                reqwest::Body::wrap(incoming),
            )))
        };
        answer.await
    }
}

/// Connects [`Lingering`]'s sockets: TCP, then TLS for `https`.
#[derive(Clone)]
struct Connect {
    tls: tokio_rustls::TlsConnector,
    connect_timeout: Duration,
}

/// A connection of [`Lingering`]'s.
struct Conn {
    io: TokioIo<Pin<Box<dyn Io>>>,
}

trait Io: AsyncRead + AsyncWrite + Send {}
impl<T: AsyncRead + AsyncWrite + Send> Io for T {}

/// Why a request through [`Lingering`] got no answer.
pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<http::Uri> for Connect {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let https = uri.scheme_str() == Some("https");
            let host = uri
                .host()
                .ok_or("the URL has no host")?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let tcp = tokio::time::timeout(
                this.connect_timeout,
                TcpStream::connect((host.as_str(), port)),
            )
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connecting timed out"))??;
            tcp.set_nodelay(true)?;
            let tcp = Linger { tcp, reset: false };
            if !https {
                return Ok(Conn {
                    io: TokioIo::new(Box::pin(tcp)),
                });
            }
            let name = rustls::pki_types::ServerName::try_from(host)?;
            let tls = this.tls.connect(name, tcp).await?;
            Ok(Conn {
                io: TokioIo::new(Box::pin(tls)),
            })
        })
    }
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A TCP socket that takes writes after the peer reset it as written (and
/// drops them), so that what the peer sent before the reset is still read.
struct Linger {
    tcp: TcpStream,
    /// The peer reset the connection: writes go nowhere.
    reset: bool,
}

/// Whether a write failed because the peer closed or reset the connection.
fn peer_gone(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

impl Linger {
    /// `written` of `len` bytes, or all of them when the peer is gone.
    fn wrote(&mut self, written: Poll<io::Result<usize>>, len: usize) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Err(error)) if peer_gone(&error) => {
                tracing::debug!(%error, "the peer closed the connection while a body was being written; reading what it answered");
                self.reset = true;
                Poll::Ready(Ok(len))
            }
            other => other,
        }
    }
}

impl AsyncRead for Linger {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Linger {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.reset {
            return Poll::Ready(Ok(buf.len()));
        }
        let written = Pin::new(&mut self.tcp).poll_write(cx, buf);
        self.wrote(written, buf.len())
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        if self.reset {
            return Poll::Ready(Ok(len));
        }
        let written = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        self.wrote(written, len)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.reset {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.reset {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
