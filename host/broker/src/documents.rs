//! The document half of the broker contract ([`VconDocuments`]).

use async_trait::async_trait;

use crate::{Result, Ttl};

/// vCon documents and their indexes: `vcon:{uuid}` with a TTL, the vCon list
/// (sorted by `created_at`) and the party search sets.
#[async_trait]
pub trait VconDocuments: Send + Sync {
    /// The vCon document `vcon:{uuid}`, if present.
    async fn get_vcon(&self, uuid: &str) -> Result<Option<String>>;
    /// Write the vCon document.
    async fn put_vcon(&self, uuid: &str, json: &str, ttl: Ttl) -> Result<()>;
    /// Delete the vCon document; whether it existed.
    async fn delete_vcon(&self, uuid: &str) -> Result<bool>;
    /// Set the vCon document's TTL in seconds (0 removes the expiry).
    async fn expire_vcon(&self, uuid: &str, secs: u64) -> Result<()>;
    /// Add `uuid` to the vCon list (the `vcons` sorted set, scored by `created_at`
    /// in epoch seconds) and to the party search sets `terms` (`tel:…`, `mailto:…`,
    /// `name:…`), whose TTL becomes `terms_ttl_secs` (0: none).
    async fn index_vcon(&self, uuid: &str, score: f64, terms: &[String], terms_ttl_secs: u64) -> Result<()>;
    /// Store a vCon with its indexes in one round trip: the document (with `ttl`),
    /// its list entry (`score`) and its party `terms` (with `terms_ttl_secs`).
    /// Returns the document it replaced, if any, so stale terms can be dropped.
    async fn store_vcon(
        &self,
        uuid: &str,
        json: &str,
        ttl: Ttl,
        score: f64,
        terms: &[String],
        terms_ttl_secs: u64,
    ) -> Result<Option<String>>;
    /// As [`store_vcon`](Broker::store_vcon), but only when no live document
    /// has this uuid, decided atomically: returns `None` when it stored the
    /// document, else the document already there (and writes nothing, index
    /// included).
    async fn create_vcon(
        &self,
        uuid: &str,
        json: &str,
        ttl: Ttl,
        score: f64,
        terms: &[String],
        terms_ttl_secs: u64,
    ) -> Result<Option<String>>;
    /// Remove `uuid` from the vCon list and from the party sets `terms`.
    async fn unindex_vcon(&self, uuid: &str, terms: &[String]) -> Result<()>;
    /// Listed uuids, newest first (score descending, ties by uuid descending), with
    /// a score within `[min, max]` (inclusive; `None` is unbounded), skipping
    /// `offset`, at most `count`.
    async fn list_vcons(&self, min: Option<f64>, max: Option<f64>, offset: u64, count: u64) -> Result<Vec<String>>;
    /// The uuids in every one of the party sets `terms` (none when `terms` is empty).
    async fn search(&self, terms: &[String]) -> Result<Vec<String>>;
    /// The uuid of every stored vCon document.
    async fn vcon_uuids(&self) -> Result<Vec<String>>;
}
