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

use super::client::ApiClient;

/// Extensions taken as vCon files.
const VCON_EXTENSIONS: &[&str] = &["vcon", "json"];

/// Every vCon file under `dir`, sorted, recursively. Symbolic links to
/// directories are not followed, and a file reached by two paths is listed once,
/// so no file is sent twice.
pub fn vcon_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let entries =
            std::fs::read_dir(&next).map_err(|e| anyhow::anyhow!("reading directory {}: {e}", next.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| anyhow::anyhow!("reading directory {}: {e}", next.display()))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            let is_vcon = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| VCON_EXTENSIONS.iter().any(|v| v.eq_ignore_ascii_case(e)));
            if kind.is_dir() {
                pending.push(path);
            } else if is_vcon
                && (kind.is_file() || (kind.is_symlink() && path.is_file()))
                && seen.insert(path.canonicalize().unwrap_or_else(|_| path.clone()))
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
    /// The request went out but no answer came: it may have been stored.
    Unknown(String),
}

async fn send_one(client: &ApiClient, path: &Path, ingress_list: &str) -> Sent {
    let body = match tokio::fs::read(path).await {
        Ok(body) => body,
        Err(error) => return Sent::Refused(format!("cannot read it: {error}")),
    };
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=5 {
        let request = client
            .request(Method::POST, "/vcon")
            .query(&[("ingress_lists", ingress_list)])
            .header("content-type", "application/json")
            .body(body.clone());
        match client.send(request, "importing").await {
            Ok(_) => return Sent::Imported,
            Err(error) => {
                let cause = |test: fn(&reqwest::Error) -> bool| {
                    error.chain().any(|cause| cause.downcast_ref::<reqwest::Error>().is_some_and(test))
                };
                if cause(reqwest::Error::is_timeout) {
                    return Sent::Unknown(format!("{error:#}"));
                }
                if !cause(reqwest::Error::is_connect) || attempt == 5 {
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
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut results = futures::stream::iter(files.iter())
        .map(|path| async move { (path, send_one(client, path, ingress_list).await) })
        .buffer_unordered(concurrency.max(1));
    let (mut imported, mut refused, mut unknown) = (0usize, 0usize, 0usize);
    while let Some((path, sent)) = results.next().await {
        match sent {
            Sent::Imported => imported += 1,
            Sent::Refused(reason) => {
                bar.suspend(|| eprintln!("{}: {reason}", path.display()));
                refused += 1;
            }
            Sent::Unknown(reason) => {
                bar.suspend(|| eprintln!("{}: no answer, it may have been imported: {reason}", path.display()));
                unknown += 1;
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!("imported {imported} of {} file(s) into {ingress_list}", files.len());
    if unknown > 0 {
        bail!(
            "{unknown} file(s) got no answer and may have been imported (listed above): check them with \
             `conserver vcon get` before importing them again; {refused} file(s) were refused"
        );
    }
    if refused > 0 {
        bail!("{refused} file(s) were not imported (reasons above); fix them and import them again");
    }
    Ok(())
}
