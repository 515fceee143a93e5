//! The idle timeout of a connection: a socket wrapper that fails reads and
//! writes with `TimedOut` once nothing has moved for the configured time while no
//! request is being handled. It closes connections that open and send nothing,
//! keep-alive connections left idle, and clients that stop reading or writing
//! between requests. A request being handled (however long a handler takes) is
//! never cut; hyper's header-read timeout bounds a request head sent slowly.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How many requests of one connection are being handled.
#[derive(Debug, Default)]
pub struct InFlight(AtomicUsize);

impl InFlight {
    /// Count a request in until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlightGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self.clone())
    }

    fn busy(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }
}

/// A request being handled; counted out on drop.
pub struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `inner` with an idle timeout.
pub struct IdleTimeout<S> {
    inner: S,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    in_flight: Arc<InFlight>,
}

impl<S> IdleTimeout<S> {
    /// Wrap `inner`; `in_flight` tells whether a request is being handled.
    pub fn new(inner: S, idle: Duration, in_flight: Arc<InFlight>) -> Self {
        Self { inner, idle, deadline: Box::pin(tokio::time::sleep(idle)), in_flight }
    }

    fn touch(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.idle);
    }

    /// Whether the connection has been idle too long (registering the timer's
    /// waker when it has not).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.in_flight.busy() {
            // The idle period starts when the request is done.
            self.touch();
            return false;
        }
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle for too long (CONSERVER_HTTP_IDLE_TIMEOUT_SECS)")
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleTimeout<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.touch();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.touch();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.touch();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_times_out_but_a_busy_one_does_not() {
        let (client, server) = tokio::io::duplex(64);
        let in_flight = Arc::new(InFlight::default());
        let mut wrapped = IdleTimeout::new(server, Duration::from_secs(5), in_flight.clone());
        let mut buf = [0u8; 8];
        // Busy: a read may wait past the idle time.
        let guard = in_flight.begin();
        let mut client = client;
        let read = tokio::spawn(async move {
            let n = wrapped.read(&mut buf).await;
            (n.map_err(|e| e.kind()), wrapped)
        });
        tokio::time::sleep(Duration::from_secs(20)).await;
        client.write_all(b"x").await.unwrap();
        let (n, mut wrapped) = read.await.unwrap();
        assert_eq!(n, Ok(1));
        // Idle: the next read fails after the idle time.
        drop(guard);
        let err = wrapped.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
