//! Serving the API over HTTP/1.1 with the limits axum's `serve` does not have: a
//! header-read timeout (hyper's, counted from when the server starts waiting for
//! a request head), an idle timeout between requests ([`idle`]), a global
//! connection cap and an optional per-address cap ([`admission`]). Connections
//! over a cap get a `503` and are closed at once. On shutdown the listener is
//! closed, idle connections are closed, requests in progress may finish for the
//! drain period, and whatever is still open after it is dropped.

mod admission;
pub mod exposure;
mod idle;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use conserver_config::HttpLimits;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use admission::{Admission, Refused};
use idle::{IdleTimeout, InFlight};

/// What a refused connection is told before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n\
retry-after: 1\r\ncontent-length: 58\r\n\r\n{\"detail\":\"too many connections to the server; try again\"}";

/// Logs a refusal at most every ten seconds, with how many there were.
struct RefusalLog {
    started: Instant,
    last_logged_secs: AtomicU64,
    since: AtomicU64,
}

impl RefusalLog {
    fn new() -> Self {
        Self { started: Instant::now(), last_logged_secs: AtomicU64::new(0), since: AtomicU64::new(0) }
    }

    fn record(&self, why: Refused, limits: &HttpLimits) {
        let count = self.since.fetch_add(1, Ordering::Relaxed) + 1;
        let now = self.started.elapsed().as_secs() + 10;
        let last = self.last_logged_secs.load(Ordering::Relaxed);
        if now < last + 10
            || self.last_logged_secs.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        self.since.store(0, Ordering::Relaxed);
        match why {
            Refused::Global => tracing::warn!(
                refused = count,
                max = limits.max_connections,
                "connections refused: CONSERVER_HTTP_MAX_CONNECTIONS are open"
            ),
            Refused::PerIp => tracing::warn!(
                refused = count,
                max = limits.max_connections_per_ip,
                "connections refused: one address holds CONSERVER_HTTP_MAX_CONNECTIONS_PER_IP"
            ),
        }
    }
}

/// Tell a connection over a cap, without waiting for it, and close it.
fn refuse(stream: TcpStream) {
    let _ = stream.try_write(BUSY);
    drop(stream);
}

/// The process's soft open-file limit, from `/proc/self/limits` (Linux).
fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Serve `router` on `listener` until `shutdown`, then drain for at most `drain`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
    drain: Duration,
) -> std::io::Result<()> {
    if let Some(files) = open_file_limit()
        && files < limits.max_connections as u64 + 64
    {
        tracing::warn!(
            open_file_limit = files,
            max_connections = limits.max_connections,
            "the open-file limit leaves little room above CONSERVER_HTTP_MAX_CONNECTIONS; raise `ulimit -n` or lower it"
        );
    }
    let admission = Admission::new(limits.max_connections, limits.max_connections_per_ip);
    let refusals = RefusalLog::new();
    let idle = Duration::from_secs(limits.idle_timeout_secs);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs));
    let graceful = GracefulShutdown::new();
    // Every connection's task, so those still open after the drain are dropped.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors (or similar): do not spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let admitted = match admission.admit(peer.ip()) {
            Ok(admitted) => admitted,
            Err(why) => {
                refusals.record(why, &limits);
                refuse(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let in_flight = Arc::new(InFlight::default());
        let io = TokioIo::new(IdleTimeout::new(stream, idle, in_flight.clone()));
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let handling = in_flight.begin();
            let router = router.clone();
            async move {
                let response = router.oneshot(request.map(axum::body::Body::new)).await;
                drop(handling);
                response
            }
        });
        let connection = graceful.watch(http.serve_connection(io, service));
        connections.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection closed with an error");
            }
            drop(admitted);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(drain) => {
            tracing::warn!(drain_secs = drain.as_secs(), "HTTP connections still open after the drain period; closing them");
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    Ok(())
}
