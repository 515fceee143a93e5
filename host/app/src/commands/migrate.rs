//! `conserver migrate --to json|string`: every `vcon:{uuid}` in Redis rewritten
//! in one form, in place, a few keys at a time, with a progress bar.
//!
//! Each key changes in one atomic step (a script on the server) with its TTL
//! kept, so servers — conserver or Python — may keep running; a key already in
//! the asked form is left alone, so an interrupted run is resumed by running it
//! again. The exit status says whether every key converted.

use anyhow::{Result, bail};
use conserver_broker::{Conversion, DocumentForm, VconDocuments};
use conserver_config::{BrokerChoice, Settings};
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::MigrateTarget;

/// Keys whose failure is printed in full; the rest are counted.
const SHOWN_FAILURES: usize = 10;

/// Convert every vCon in the Redis `settings` name to `to`.
pub async fn run(settings: &Settings, to: MigrateTarget, concurrency: usize) -> Result<()> {
    let BrokerChoice::Redis(url) = &settings.broker else {
        bail!("conserver migrate converts the vCons kept in Redis; set REDIS_URL to the Redis to convert");
    };
    let broker =
        crate::open_redis(settings, url).await.map_err(|(error, doing)| anyhow::anyhow!("{doing}: {error}"))?;
    let form = match to {
        MigrateTarget::Json => DocumentForm::Json,
        MigrateTarget::String => DocumentForm::Text,
    };
    if form == DocumentForm::Json && broker.document_form() != DocumentForm::Json {
        bail!(
            "the Redis at {} has no RedisJSON module (MODULE LIST does not name ReJSON and JSON.GET is refused); \
             use Redis Stack or a Redis with the JSON module, or keep the documents as strings",
            crate::redact_url(url)
        );
    }
    let uuids = broker.vcon_uuids().await.map_err(|e| anyhow::anyhow!("listing the vCons in Redis: {e}"))?;
    let bar = ProgressBar::new(uuids.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut converted, mut already, mut missing, mut failed) = (0u64, 0u64, 0u64, 0u64);
    let mut conversions = futures::stream::iter(uuids.iter())
        .map(|uuid| {
            let broker = &broker;
            async move { (uuid, broker.convert_vcon(uuid, form).await) }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some((uuid, outcome)) = conversions.next().await {
        match outcome {
            Ok(Conversion::Converted) => converted += 1,
            Ok(Conversion::Already) => already += 1,
            Ok(Conversion::Missing) => missing += 1,
            Err(error) => {
                failed += 1;
                if failed <= SHOWN_FAILURES as u64 {
                    bar.suspend(|| eprintln!("vcon:{uuid}: {error}"));
                }
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let target = match to {
        MigrateTarget::Json => "RedisJSON documents",
        MigrateTarget::String => "plain strings",
    };
    println!(
        "{} vCon key(s): {converted} converted to {target}, {already} already were, {missing} gone meanwhile, {failed} failed",
        uuids.len()
    );
    if failed > 0 {
        bail!("{failed} key(s) could not be converted (see above); they are unchanged — fix them and run again");
    }
    Ok(())
}
