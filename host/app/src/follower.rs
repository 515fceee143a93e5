//! Followers: pull another conserver's egress list into a local ingress list.
//!
//! Each poll reads the oldest uuids of the remote egress list, fetches each vCon,
//! stores it locally and pushes the uuids to the local list in the same order; only
//! then are they removed remotely. Against a conserver remote this uses
//! `GET /vcon/egress?peek=true` + `POST /vcon/egress/ack`, so a crash at any point
//! loses nothing (a uuid may arrive twice). A Python conserver remote has only the
//! destructive pop; popped uuids are then kept in memory and retried until the
//! local push succeeds. Requests have timeouts; failures back off up to a minute.

use std::time::Duration;

use conserver_broker::Ttl;
use conserver_config::FollowerDef;
use conserver_core::ingest_vcon;
use conserver_vcons::VconStore;
use reqwest::StatusCode;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Longest pause between attempts after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One running follower.
pub struct Follower {
    name: String,
    def: FollowerDef,
    /// Where copies are stored (indexed as any ingested vCon) and queued.
    store: VconStore,
    client: reqwest::Client,
    header: String,
    /// uuids popped destructively (Python remote) but not yet pushed locally.
    pending: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The remote supports peek + ack (a conserver).
    PeekAck,
    /// The remote only pops (the Python conserver).
    Pop,
}

impl Follower {
    /// A follower `name` for `def`, sending the token in header `header`.
    pub fn new(name: &str, def: FollowerDef, store: VconStore, header: &str) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self { name: name.to_string(), def, store, client, header: header.to_string(), pending: Vec::new() })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.def.url.trim_end_matches('/'))
    }

    fn request(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.def.auth_token {
            Some(token) => builder.header(self.header.as_str(), token),
            None => builder,
        }
    }

    /// Poll until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let interval = Duration::from_secs_f64(self.def.pulling_interval);
        let mut mode = None;
        let mut backoff = interval;
        tracing::info!(follower = %self.name, url = %crate::redact_url(&self.def.url), remote = %self.def.egress_list, local = %self.def.follower_ingress_list, "follower started");
        loop {
            let result = match mode {
                Some(mode) => self.poll(mode).await,
                None => match self.detect().await {
                    Ok(detected) => {
                        mode = Some(detected);
                        tracing::info!(follower = %self.name, ?detected, "remote conserver detected");
                        continue;
                    }
                    Err(e) => Err(e),
                },
            };
            let pause = match result {
                Ok(moved) if moved > 0 => {
                    backoff = interval;
                    Duration::ZERO // more may be waiting
                }
                Ok(_) => {
                    backoff = interval;
                    interval
                }
                Err(error) => {
                    tracing::warn!(follower = %self.name, %error, retry_in_s = backoff.as_secs_f64(), "follower poll failed");
                    let pause = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF).max(interval);
                    pause
                }
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = shutdown.cancelled() => break,
            }
        }
        if !self.pending.is_empty() {
            tracing::error!(follower = %self.name, uuids = ?self.pending, "stopping with vCons popped from the remote but not enqueued locally");
        }
    }

    /// A conserver answers the acknowledgement route; the Python server does not.
    async fn detect(&self) -> Result<Mode, String> {
        let url = self.url(&format!("/vcon/egress/ack?egress_list={}", self.def.egress_list));
        let response = self.request(self.client.post(url).json(&Vec::<String>::new())).send().await.map_err(shown)?;
        match response.status() {
            status if status.is_success() => Ok(Mode::PeekAck),
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::UNPROCESSABLE_ENTITY => Ok(Mode::Pop),
            status => Err(format!("the remote answered {status} to a capability check (check url and auth_token)")),
        }
    }

    /// One round: returns how many uuids were moved.
    async fn poll(&mut self, mode: Mode) -> Result<usize, String> {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            if let Err(error) = self.store.broker().push(&self.def.follower_ingress_list, &pending).await {
                self.pending = pending;
                return Err(format!("local push failed: {error}"));
            }
        }
        let peek = if mode == Mode::PeekAck { "&peek=true" } else { "" };
        let url = self.url(&format!(
            "/vcon/egress?egress_list={}&limit={}{peek}",
            self.def.egress_list, self.def.fetch_vcon_limit
        ));
        let response = self.request(self.client.get(url)).send().await.map_err(shown)?;
        if !response.status().is_success() {
            return Err(format!("remote egress answered {}", response.status()));
        }
        let uuids: Vec<String> =
            response.json().await.map_err(|e| format!("remote egress is not a list of uuids: {}", e.without_url()))?;
        if uuids.is_empty() {
            return Ok(0);
        }
        let mut moved = Vec::with_capacity(uuids.len());
        let mut failure = None;
        for uuid in &uuids {
            match self.copy(uuid).await {
                Ok(true) => moved.push(uuid.clone()),
                Ok(false) => {
                    tracing::error!(follower = %self.name, vcon_uuid = %uuid, "the remote listed a vCon it does not have; skipped");
                    if mode == Mode::PeekAck {
                        // Drop it remotely too, or it would block the list forever.
                        let _ = self.ack(std::slice::from_ref(uuid)).await;
                    }
                }
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        if let Err(error) = self.store.broker().push(&self.def.follower_ingress_list, &moved).await {
            if mode == Mode::Pop {
                self.pending = moved;
            }
            return Err(format!("local push failed: {error}"));
        }
        if mode == Mode::PeekAck && !moved.is_empty() {
            self.ack(&moved).await?;
        }
        if mode == Mode::Pop && failure.is_some() {
            // Popped but not fetched: keep trying them next round.
            self.pending.extend(uuids.iter().skip(moved.len()).cloned());
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(moved.len()),
        }
    }

    /// Fetch one vCon from the remote and store it locally (no TTL: it is queued).
    /// `Ok(false)` when the remote does not have it.
    async fn copy(&self, uuid: &str) -> Result<bool, String> {
        let response = self.request(self.client.get(self.url(&format!("/vcon/{uuid}")))).send().await.map_err(shown)?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        if !response.status().is_success() {
            return Err(format!("remote read of {uuid} answered {}", response.status()));
        }
        let body = response.bytes().await.map_err(shown)?;
        let stored = match ingest_vcon(&body) {
            Ok(vcon) => self.store.ingest(&vcon, true).await,
            Err(problem) => {
                tracing::warn!(follower = %self.name, vcon_uuid = %uuid, %problem, "remote vCon stored as received without indexing");
                let text = serde_json::from_slice::<Value>(&body).map(|v| v.to_string()).map_err(|e| e.to_string())?;
                self.store.store_as_received(uuid, &text, Ttl::Secs(0)).await
            }
        };
        stored.map(|()| true).map_err(|e| format!("local store of {uuid} failed: {e}"))
    }

    async fn ack(&self, uuids: &[String]) -> Result<(), String> {
        let url = self.url(&format!("/vcon/egress/ack?egress_list={}", self.def.egress_list));
        let response = self.request(self.client.post(url).json(uuids)).send().await.map_err(shown)?;
        if response.status().is_success() { Ok(()) } else { Err(format!("remote ack answered {}", response.status())) }
    }
}

/// A request error for the log: without its URL (the remote's may hold a
/// credential; the follower's name says which remote it is).
fn shown(error: reqwest::Error) -> String {
    error.without_url().to_string()
}
