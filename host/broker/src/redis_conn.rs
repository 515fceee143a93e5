//! The connection behind the Redis backend: one auto-reconnecting multiplexed
//! connection to a single server, or a Redis Cluster connection (detected from
//! `INFO cluster` at connect, so `REDIS_URL` stays the same). Commands whose keys
//! live in different cluster slots are sent as a [`Batch`]: one pipeline on a single
//! server, separate concurrent commands on a cluster.

use std::time::Duration;

use futures::future::join_all;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::io::tcp::TcpSettings;
use redis::{
    Client, Cmd, ErrorKind, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, RedisResult, TlsCertificates, Value,
};

use crate::redis_tls::{RedisTls, parse_url};

/// A connection to a single Redis or to a cluster, with the longest a command
/// may wait in all: the response timeout bounds the wait for an answer, but
/// not a command waiting for the connection to be re-established (a Redis
/// whose packets vanish held it for over 30 s); this bound covers both.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager, Duration),
    Cluster(ClusterConnection, Duration),
}

/// `future`, failed as a timeout after `limit`.
fn bounded<'a, T: Send + 'a>(limit: Duration, future: RedisFuture<'a, T>) -> RedisFuture<'a, T> {
    Box::pin(async move {
        match tokio::time::timeout(limit, future).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("Redis did not answer within {} ms", limit.as_millis()),
            ))),
        }
    })
}

/// How to open further connections (for poppers, which block theirs).
#[derive(Clone)]
pub(crate) enum Opener {
    Single(Client),
    /// A cluster's seed URL and TLS material (each connection gets its own
    /// client, so a popper's answers may take longer than other commands').
    Cluster(String, Option<TlsCertificates>),
}

/// Socket settings that notice a Redis that vanished without closing the
/// connection (a host gone, a network path dropping packets): keepalive probes
/// on an idle connection, and `TCP_USER_TIMEOUT` for one with unanswered data.
/// Without them such a connection stays open, every command on it timing out,
/// until the kernel gives up after about 15 minutes; with them it fails within
/// [`DEAD_PEER_AFTER`] and is reconnected.
fn tcp_settings() -> TcpSettings {
    let keepalive =
        socket2::TcpKeepalive::new().with_time(Duration::from_secs(30)).with_interval(Duration::from_secs(10));
    let settings = TcpSettings::default().set_nodelay(true).set_keepalive(keepalive);
    #[cfg(target_os = "linux")]
    let settings = settings.set_user_timeout(DEAD_PEER_AFTER);
    settings
}

/// What a command's overall bound adds to the response timeout.
const COMMAND_SLACK: Duration = Duration::from_millis(500);

/// How long sent data may go unacknowledged before the connection counts as dead.
const DEAD_PEER_AFTER: Duration = Duration::from_secs(20);

impl Opener {
    /// Connect to `url`, detecting a cluster; commands wait `command_timeout`
    /// for their answer.
    pub(crate) async fn connect(url: &str, command_timeout: Duration, tls: &RedisTls) -> RedisResult<(Self, Conn)> {
        let parsed = parse_url(url);
        // What the URL names (a Python deployment's) comes before the environment.
        let tls = parsed.tls.or(tls.clone());
        if parsed.insecure {
            tracing::warn!(
                "the Redis server's TLS certificate is NOT checked (ssl_cert_reqs=none or #insecure in REDIS_URL):                  anyone on the path can read and change the queues; name its CA with CONSERVER_REDIS_CA_FILE instead"
            );
        }
        let certificates = if tls.is_set() {
            if !parsed.url.starts_with("rediss://") {
                return Err(RedisError::from((
                    ErrorKind::InvalidClientConfig,
                    "TLS files are set for a plain redis:// URL",
                    "use rediss:// in REDIS_URL, or unset the CONSERVER_REDIS_*_FILE settings".to_string(),
                )));
            }
            Some(tls.certificates().map_err(|e| RedisError::from((ErrorKind::InvalidClientConfig, "Redis TLS", e)))?)
        } else {
            None
        };
        let info = parsed.url.as_str().into_connection_info()?.set_tcp_settings(tcp_settings());
        let client = match &certificates {
            Some(certificates) => Client::build_with_tls(info, certificates.clone())?,
            None => Client::open(info)?,
        };
        let probe = Self::Single(client.clone()).open(command_timeout).await?;
        let info: String = match redis::cmd("INFO").arg("cluster").query_async(&mut probe.clone()).await {
            Ok(info) => info,
            // A server that refuses `INFO` (an ACL, a proxy) is taken as a single server.
            Err(error) if !(error.is_io_error() || error.is_timeout() || error.is_connection_dropped()) => {
                String::new()
            }
            Err(error) => return Err(error),
        };
        if info.lines().any(|line| line.trim() == "cluster_enabled:1") {
            let opener = Self::Cluster(parsed.url, certificates);
            let conn = opener.open(command_timeout).await?;
            Ok((opener, conn))
        } else {
            Ok((Self::Single(client), probe))
        }
    }

    /// A new connection whose replies may take up to `response_timeout`.
    pub(crate) async fn open(&self, response_timeout: Duration) -> RedisResult<Conn> {
        match self {
            Self::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(response_timeout))
                    .set_connection_timeout(Some(Duration::from_secs(5)))
                    .set_max_delay(Duration::from_secs(2));
                let manager = ConnectionManager::new_with_config(client.clone(), config).await?;
                Ok(Conn::Single(manager, response_timeout + COMMAND_SLACK))
            }
            Self::Cluster(url, certificates) => {
                let mut builder = ClusterClient::builder(vec![url.as_str()])
                    .connection_timeout(Duration::from_secs(5))
                    .response_timeout(response_timeout)
                    .tcp_settings(tcp_settings());
                if let Some(certificates) = certificates {
                    builder = builder.certs(certificates.clone());
                }
                let client = builder.build()?;
                Ok(Conn::Cluster(client.get_async_connection().await?, response_timeout + COMMAND_SLACK))
            }
        }
    }
}

impl Conn {
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(..))
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn, limit) => bounded(*limit, conn.req_packed_command(cmd)),
            Self::Cluster(conn, limit) => bounded(*limit, conn.req_packed_command(cmd)),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn, limit) => bounded(*limit, conn.req_packed_commands(cmd, offset, count)),
            Self::Cluster(conn, limit) => bounded(*limit, conn.req_packed_commands(cmd, offset, count)),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn, _) => conn.get_db(),
            Self::Cluster(conn, _) => conn.get_db(),
        }
    }
}

/// Commands that may touch keys in different cluster slots; replies in order.
#[derive(Default, Clone)]
pub(crate) struct Batch(Vec<Cmd>);

impl Batch {
    pub(crate) fn add(&mut self, cmd: Cmd) -> &mut Self {
        self.0.push(cmd);
        self
    }

    /// Add each of `cmds` (e.g. an `Option<Cmd>`).
    pub(crate) fn extend(&mut self, cmds: impl IntoIterator<Item = Cmd>) -> &mut Self {
        self.0.extend(cmds);
        self
    }

    /// Add every command of `other`, after these.
    pub(crate) fn append(&mut self, other: Batch) -> &mut Self {
        self.0.extend(other.0);
        self
    }

    /// Run every command; one round trip on a single server.
    pub(crate) async fn run(self, conn: &Conn) -> RedisResult<Vec<Value>> {
        if self.0.is_empty() {
            return Ok(Vec::new());
        }
        // Through `Conn` itself, so every command keeps its overall bound.
        if conn.is_cluster() {
            let replies = join_all(self.0.iter().map(|cmd| {
                let mut conn = conn.clone();
                async move { cmd.query_async::<Value>(&mut conn).await }
            }))
            .await;
            replies.into_iter().collect()
        } else {
            let mut pipe = redis::pipe();
            for cmd in self.0 {
                pipe.add_command(cmd);
            }
            pipe.query_async(&mut conn.clone()).await
        }
    }
}
