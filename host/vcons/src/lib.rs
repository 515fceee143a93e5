//! The one place vCons are stored and loaded: the API's ingest, the workers'
//! load and wrap-up, and the follower's copies all go through [`VconStore`], so
//! a vCon is indexed, re-cached and given a time to live the same way whoever
//! writes it.
//!
//! * [`VconStore::ingest`] / [`VconStore::create`]: an accepted vCon with its
//!   list entry and party search terms, in one broker round trip (the party
//!   terms of a version it replaces that it no longer has are dropped).
//! * [`VconStore::load`]: the broker's copy, else the first storage that has
//!   it, canonicalised and re-cached **with its indexes**.
//! * [`VconStore::finish`]: the whole wrap-up of a processed vCon and its ack
//!   as one broker operation ([`conserver_broker::Finish`]).

use std::sync::Arc;

use conserver_broker::{Broker, BrokerError, Finish, Popped, Ttl};
use conserver_core::{IngestedVcon, epoch_seconds, index_terms};
use conserver_storage::Storage;
use serde_json::{Map, Value};

/// How the store treats times to live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreSettings {
    /// `VCON_REDIS_EXPIRY`: the TTL of a vCon no chain is going to read (0: none).
    pub vcon_expiry_secs: u64,
    /// `VCON_INDEX_EXPIRY`: the TTL of the party search sets a vCon is added to (0: none).
    pub index_expiry_secs: u64,
}

/// Who a vCon read back from a storage is re-cached for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recache {
    /// A chain is about to run on it: no TTL, so it cannot expire meanwhile
    /// (the wrap-up gives it one).
    ForChain,
    /// A reader asked for it: `VCON_REDIS_EXPIRY`, as the Python server does.
    ForReader,
}

/// The vCon store over a broker. Cheap to clone.
#[derive(Clone)]
pub struct VconStore {
    broker: Arc<dyn Broker>,
    settings: StoreSettings,
}

impl VconStore {
    /// A store writing to `broker` with `settings`.
    pub fn new(broker: Arc<dyn Broker>, settings: StoreSettings) -> Self {
        Self { broker, settings }
    }

    /// The broker underneath (lists, DLQ, key-value).
    pub fn broker(&self) -> &Arc<dyn Broker> {
        &self.broker
    }

    /// The settings it applies.
    pub fn settings(&self) -> StoreSettings {
        self.settings
    }

    /// Store an accepted vCon: the document, its place in the vCon list and its
    /// party search terms in one round trip; then drop the party terms of the
    /// version it replaced that this one no longer has. A vCon about to be
    /// enqueued (`queued`) gets no TTL, so it cannot expire while it waits (the
    /// worker gives it `VCON_REDIS_EXPIRY` when its chain is done); otherwise it
    /// gets `VCON_REDIS_EXPIRY` now, as in the Python server.
    pub async fn ingest(&self, vcon: &IngestedVcon, queued: bool) -> Result<(), BrokerError> {
        let ttl = if queued { Ttl::Secs(0) } else { Ttl::Secs(self.settings.vcon_expiry_secs) };
        let score = vcon.created_at.floor();
        let previous = self
            .broker
            .store_vcon(&vcon.uuid, &vcon.json, ttl, score, &vcon.index_terms, self.settings.index_expiry_secs)
            .await?;
        self.drop_stale_terms(&vcon.uuid, previous.as_deref(), &vcon.index_terms).await
    }

    /// Store an accepted vCon, to be enqueued, only if no document has its uuid
    /// (decided atomically by the broker): `None` when stored, else the
    /// document already there (nothing written).
    pub async fn create(&self, vcon: &IngestedVcon) -> Result<Option<String>, BrokerError> {
        let score = vcon.created_at.floor();
        self.broker
            .create_vcon(
                &vcon.uuid,
                &vcon.json,
                Ttl::Secs(0),
                score,
                &vcon.index_terms,
                self.settings.index_expiry_secs,
            )
            .await
    }

    /// Store a document that is not an accepted vCon (a remote's copy that does
    /// not validate) as it came: not listed, not searchable.
    pub async fn store_as_received(&self, uuid: &str, json: &str, ttl: Ttl) -> Result<(), BrokerError> {
        self.broker.put_vcon(uuid, json, ttl).await
    }

    /// The vCon `uuid`: the broker's copy, else the first of `storages` that has
    /// it (canonicalised as the Python conserver does, then re-cached with its
    /// indexes). `None` when nobody has it. A storage that fails is skipped with
    /// a warning; a failed re-cache is logged (the vCon is still returned) for a
    /// reader, and returned for a chain (which needs the copy to run on).
    pub async fn load(
        &self,
        uuid: &str,
        storages: &[Arc<dyn Storage>],
        recache: Recache,
    ) -> Result<Option<String>, BrokerError> {
        if let Some(json) = self.broker.get_vcon(uuid).await? {
            return Ok(Some(json));
        }
        self.read_back(uuid, storages, recache).await
    }

    /// The storage half of [`load`](Self::load): for a caller that already
    /// knows the broker has no copy.
    pub async fn read_back(
        &self,
        uuid: &str,
        storages: &[Arc<dyn Storage>],
        recache: Recache,
    ) -> Result<Option<String>, BrokerError> {
        let Some(found) = conserver_storage::read_back(storages, uuid).await else {
            return Ok(None);
        };
        let ttl = match recache {
            Recache::ForChain => Ttl::Secs(0),
            Recache::ForReader => Ttl::Secs(self.settings.vcon_expiry_secs),
        };
        match self.store_document(uuid, &found.json, &found.document, ttl).await {
            Ok(()) => tracing::info!(storage = %found.storage, vcon_uuid = uuid, "vCon read back from storage"),
            Err(error) if recache == Recache::ForReader => {
                tracing::warn!(vcon_uuid = uuid, %error, "cannot re-cache a vCon read from storage");
            }
            Err(error) => return Err(error),
        }
        Ok(Some(found.json))
    }

    /// The wrap-up of a processed vCon, then the ack of `item` held by `worker`,
    /// as one broker operation.
    pub async fn finish(&self, worker: &str, item: &Popped, finish: &Finish) -> Result<(), BrokerError> {
        self.broker.finish(worker, item, finish).await
    }

    /// Write `document` (whose text is `json`) with its indexes, in one round
    /// trip, dropping the terms of the version it replaces; a document without
    /// a readable `created_at` is written without a list entry.
    async fn store_document(
        &self,
        uuid: &str,
        json: &str,
        document: &Map<String, Value>,
        ttl: Ttl,
    ) -> Result<(), BrokerError> {
        let (Some(score), terms) = index_entry(document) else {
            return self.broker.put_vcon(uuid, json, ttl).await;
        };
        let previous = self.broker.store_vcon(uuid, json, ttl, score, &terms, self.settings.index_expiry_secs).await?;
        self.drop_stale_terms(uuid, previous.as_deref(), &terms).await
    }

    /// Remove `uuid` from the party sets of `previous` that `kept` does not name.
    async fn drop_stale_terms(&self, uuid: &str, previous: Option<&str>, kept: &[String]) -> Result<(), BrokerError> {
        let Some(previous) = previous else { return Ok(()) };
        let stale: Vec<String> = terms_of(previous).into_iter().filter(|t| !kept.contains(t)).collect();
        if stale.is_empty() {
            return Ok(());
        }
        self.broker.unindex_vcon(uuid, &stale).await
    }
}

/// A document's place in the vCon list (`created_at` in whole epoch seconds,
/// when it has a readable one) and its party search terms.
pub fn index_entry(document: &Map<String, Value>) -> (Option<f64>, Vec<String>) {
    (document.get("created_at").and_then(epoch_seconds).map(f64::floor), index_terms(document))
}

/// The party search terms of a stored document (none for signed/encrypted forms).
pub fn terms_of(json: &str) -> Vec<String> {
    serde_json::from_str::<Map<String, Value>>(json).map(|doc| index_terms(&doc)).unwrap_or_default()
}
