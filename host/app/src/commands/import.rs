//! `conserver import <dir>`: every vCon file under a directory posted once to
//! `POST /vcon?ingress_lists=<list>`, a few at a time, with a progress bar.
//!
//! A file is sent once and never retried after the request went out (a retry could
//! enqueue it twice); only a refused connection is retried. The server validates
//! each file as it validates any client's; a refused file is reported with the
//! server's reason and the rest carry on. The exit status says whether every file
//! went in.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;

use super::client::{ApiClient, query};

/// Extensions taken as vCon files.
const VCON_EXTENSIONS: &[&str] = &["vcon", "json"];

/// Every vCon file under `dir`, sorted, recursively.
pub fn vcon_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let entries =
            std::fs::read_dir(&next).map_err(|e| anyhow::anyhow!("reading directory {}: {e}", next.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| anyhow::anyhow!("reading directory {}: {e}", next.display()))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| VCON_EXTENSIONS.iter().any(|v| v.eq_ignore_ascii_case(e)))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// What happened to one file.
enum Sent {
    Imported,
    Refused(String),
}

async fn send_one(client: &ApiClient, path: &Path, target: &str) -> Sent {
    let body = match tokio::fs::read(path).await {
        Ok(body) => body,
        Err(error) => return Sent::Refused(format!("cannot read it: {error}")),
    };
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=5 {
        let request =
            client.request(Method::POST, target).header("content-type", "application/json").body(body.clone());
        match client.send(request, "importing").await {
            Ok(_) => return Sent::Imported,
            Err(error) => {
                let not_sent = error
                    .chain()
                    .any(|cause| cause.downcast_ref::<reqwest::Error>().is_some_and(reqwest::Error::is_connect));
                if !not_sent || attempt == 5 {
                    return Sent::Refused(format!("{error:#}"));
                }
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    Sent::Refused("gave up".into())
}

/// Import every vCon file under `dir` into `ingress_list`.
pub async fn run(client: &ApiClient, dir: &Path, ingress_list: &str, concurrency: usize) -> Result<()> {
    let files = vcon_files(dir)?;
    if files.is_empty() {
        bail!("no vCon files (*.vcon, *.json) under {}", dir.display());
    }
    let target = format!("/vcon?{}", query("ingress_lists", ingress_list));
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut results = futures::stream::iter(files.iter())
        .map(|path| {
            let target = &target;
            async move { (path, send_one(client, path, target).await) }
        })
        .buffer_unordered(concurrency.max(1));
    let (mut imported, mut refused) = (0usize, Vec::new());
    while let Some((path, sent)) = results.next().await {
        match sent {
            Sent::Imported => imported += 1,
            Sent::Refused(reason) => {
                bar.suspend(|| eprintln!("{}: {reason}", path.display()));
                refused.push(path.clone());
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!("imported {imported} of {} file(s) into {ingress_list}", files.len());
    if !refused.is_empty() {
        bail!("{} file(s) were not imported (reasons above); fix them and import them again", refused.len());
    }
    Ok(())
}
