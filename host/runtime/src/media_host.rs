//! The `media` import of the 0.2.0 link world: a dialog's media fetched (inline
//! body decoded, or its `url` fetched under the link's allow-list), checked
//! against its hashes, probed, and cut into WAV chunks by `conserver-media`.
//! Decoding runs on the blocking pool, one chunk per call, so a long recording
//! neither stalls the async workers nor sits in memory whole. Media is fetched
//! at most once per dialog per call.
//!
//! Decoding is bounded three ways: every job takes one of the process's media
//! slots (`wasm.media_concurrency`) for as long as it actually runs; it checks
//! the call's deadline and a cancellation flag (raised when the call's state is
//! dropped, however the call ended) before every packet, so a job the call no
//! longer waits for stops instead of decoding on; and one decoding pass produces
//! at most `limits.media_decode_secs` of audio, past which the call fails with
//! that budget.

use std::collections::HashMap;
use std::sync::Arc;

use conserver_config::Limits;
use conserver_media::{self as media, Bounds, MediaLocation};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use wasmtime::component::Resource;

use crate::bindings::vcon::conserver0_2_0::media::{self as wit, Host, HostChunks};
use crate::failure::Budget;
use crate::host::HostState;
use crate::outbound_http::{self, FetchError};

/// The process's media decoding slots, shared by every call of every link.
#[derive(Clone)]
pub(crate) struct MediaSlots {
    semaphore: Arc<Semaphore>,
    total: usize,
}

impl MediaSlots {
    /// `total` slots (at least one).
    pub(crate) fn new(total: usize) -> Self {
        let total = total.clamp(1, Semaphore::MAX_PERMITS);
        Self { semaphore: Arc::new(Semaphore::new(total)), total }
    }

    /// Jobs holding a slot now.
    pub(crate) fn running(&self) -> usize {
        self.total.saturating_sub(self.semaphore.available_permits())
    }
}

/// What a loaded link's media calls run under.
#[derive(Clone)]
pub(crate) struct MediaLimits {
    slots: MediaSlots,
    decode_secs: u64,
    /// `limits.media_bytes`: recordings one call may have fetched in all.
    call_bytes: u64,
}

impl MediaLimits {
    pub(crate) fn new(slots: MediaSlots, limits: &Limits) -> Self {
        Self { slots, decode_secs: limits.media_decode_secs, call_bytes: limits.media_bytes }
    }
}

/// Largest media the host fetches, decodes or hands to a link (a two-hour 16 kHz
/// stereo WAV is 460 MB; a two-hour MP3 at 64 kbit/s, 58 MB).
pub(crate) const MAX_MEDIA_BYTES: u64 = 256 * 1024 * 1024;

/// One dialog's verified media, kept for the rest of the call.
#[derive(Clone)]
struct DialogMedia {
    bytes: Arc<[u8]>,
    mediatype: Option<String>,
    filename: Option<String>,
}

impl DialogMedia {
    /// A file extension to hint the decoder with.
    fn extension(&self) -> Option<String> {
        let from_name =
            self.filename.as_deref().and_then(|name| name.rsplit_once('.')).map(|(_, ext)| ext.to_ascii_lowercase());
        from_name.or_else(|| {
            let subtype = self.mediatype.as_deref()?.split(';').next()?.rsplit('/').next()?.trim().to_ascii_lowercase();
            Some(subtype.trim_start_matches("x-").to_string())
        })
    }
}

/// The media side of one call's state.
#[derive(Default)]
pub(crate) struct MediaState {
    vcon: Option<String>,
    parsed: Option<Map<String, Value>>,
    fetched: HashMap<u32, DialogMedia>,
    /// Bytes of every recording in `fetched` (checked against `media_bytes`).
    fetched_bytes: u64,
    /// The bounds every decoding job of this call shares (made on first use).
    bounds: Option<Bounds>,
}

/// The call is over, however it ended: stop its decoding jobs at their next packet.
impl Drop for MediaState {
    fn drop(&mut self) {
        if let Some(bounds) = &self.bounds {
            bounds.cancel();
        }
    }
}

impl MediaState {
    /// The vCon the link was called with (only set for links that import `media`).
    pub(crate) fn set_vcon(&mut self, vcon: &str) {
        self.vcon = Some(vcon.to_string());
    }

    fn document(&mut self) -> Result<&Map<String, Value>, wit::MediaError> {
        if self.parsed.is_none() {
            let text = self.vcon.as_deref().unwrap_or("{}");
            let parsed = serde_json::from_str::<Map<String, Value>>(text)
                .map_err(|e| wit::MediaError::NoMedia(format!("the vCon is not a JSON object: {e}")))?;
            self.parsed = Some(parsed);
        }
        Ok(self.parsed.get_or_insert_with(Map::new))
    }
}

/// The host side of a `chunks` resource.
pub struct ChunksResource {
    chunks: Option<media::Chunks>,
    count: u32,
}

fn to_wit(error: media::MediaError) -> wit::MediaError {
    let text = error.to_string();
    match error {
        media::MediaError::NoMedia(_) | media::MediaError::NoDialog(_) => wit::MediaError::NoMedia(text),
        media::MediaError::Encoding { .. } | media::MediaError::Integrity { .. } => wit::MediaError::Integrity(text),
        media::MediaError::Unsupported(_) => wit::MediaError::Unsupported(text),
        media::MediaError::Corrupt(_) => wit::MediaError::Corrupt(text),
        media::MediaError::TooLarge(_) | media::MediaError::TooLong { .. } | media::MediaError::Stopped(_) => {
            wit::MediaError::TooLarge(text)
        }
        media::MediaError::InvalidRequest(_) => wit::MediaError::InvalidRequest(text),
    }
}

fn lost(error: tokio::task::JoinError) -> wit::MediaError {
    wit::MediaError::Corrupt(format!("the decoder stopped unexpectedly: {error}"))
}

/// Run `job` on the blocking pool once one of `slots` is free (waiting at most
/// until `deadline`); the job holds the slot until it returns, also when the
/// call stopped waiting for it.
async fn media_job<T: Send + 'static>(
    slots: &MediaSlots,
    deadline: std::time::Instant,
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, wit::MediaError> {
    let semaphore = slots.semaphore.clone();
    let slot = match tokio::time::timeout_at(deadline.into(), semaphore.acquire_owned()).await {
        Ok(Ok(slot)) => slot,
        Ok(Err(_closed)) => return Err(wit::MediaError::InvalidRequest("the host's media slots are closed".into())),
        Err(_elapsed) => {
            return Err(wit::MediaError::TooLarge(
                "no media slot came free before the call's deadline (wasm.media_concurrency)".into(),
            ));
        }
    };
    tokio::task::spawn_blocking(move || {
        let done = job();
        drop(slot);
        done
    })
    .await
    .map_err(lost)
}

/// The last path segment of a URL, without its query.
fn url_file_name(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next()?;
    let name = path.rsplit('/').next()?;
    (!name.is_empty() && path.contains("://") && path.matches('/').count() > 2).then(|| name.to_string())
}

impl HostState {
    /// The bounds of this call's decoding: its deadline, its length limit and
    /// the cancellation flag its state raises when dropped.
    fn media_bounds(&mut self) -> Bounds {
        let (deadline, decode_secs) = (self.deadline, self.capabilities.media.decode_secs);
        self.media
            .bounds
            .get_or_insert_with(|| Bounds::unbounded().with_deadline(deadline).with_max_secs(decode_secs))
            .clone()
    }

    /// A media failure for the guest; a recording past the length limit also
    /// fails the call with budget `media_decode_secs`.
    fn media_failure(&mut self, error: media::MediaError) -> wit::MediaError {
        if let media::MediaError::TooLong { limit_secs } = error {
            self.breach.get_or_insert((Budget::MediaDecodeSecs, limit_secs));
        }
        to_wit(error)
    }

    async fn dialog_media(&mut self, index: u32) -> Result<DialogMedia, wit::MediaError> {
        if let Some(found) = self.media.fetched.get(&index) {
            return Ok(found.clone());
        }
        let position = index as usize;
        let dialog = media::source::dialog(self.media.document()?, position).map_err(to_wit)?.clone();
        let text = |key: &str| dialog.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        let (bytes, content_type, url_name): (Arc<[u8]>, _, _) =
            match media::locate(&dialog, position).map_err(to_wit)? {
                MediaLocation::Inline(bytes) => (bytes.into(), None, None),
                MediaLocation::Url(url) => {
                    let limits =
                        crate::grants::HttpLimits { max_response_bytes: MAX_MEDIA_BYTES, ..self.capabilities.http };
                    let fetched = outbound_http::fetch(
                        &url,
                        &self.labels.link,
                        &self.capabilities.allowed_hosts,
                        &self.capabilities.network,
                        limits,
                    )
                    .await
                    .map_err(|e| match e {
                        FetchError::Denied(m) => wit::MediaError::Denied(format!("dialog {index}: {m}")),
                        FetchError::TooLarge(m) => wit::MediaError::TooLarge(format!("dialog {index}: {m}")),
                        FetchError::Failed(m) => wit::MediaError::FetchFailed(format!("dialog {index}: {m}")),
                    })?;
                    (fetched.body.to_vec().into(), fetched.content_type, url_file_name(&url))
                }
            };
        if bytes.len() as u64 > MAX_MEDIA_BYTES {
            return Err(wit::MediaError::TooLarge(format!(
                "dialog {index}: {} bytes, more than the host's {MAX_MEDIA_BYTES}",
                bytes.len()
            )));
        }
        let held = self.media.fetched_bytes.saturating_add(bytes.len() as u64);
        let allowed = self.capabilities.media.call_bytes;
        if held > allowed {
            self.breach.get_or_insert((Budget::MediaBytes, allowed));
            return Err(wit::MediaError::TooLarge(format!(
                "dialog {index}: {} bytes would bring this call's recordings to {held} bytes, more than its {allowed} (limits.media_bytes)",
                bytes.len()
            )));
        }
        media::verify(&dialog, position, &bytes).map_err(to_wit)?;
        self.media.fetched_bytes = held;
        let found = DialogMedia {
            bytes,
            mediatype: content_type.or_else(|| text("mediatype")).or_else(|| text("mimetype")),
            filename: text("filename").or(url_name),
        };
        self.media.fetched.insert(index, found.clone());
        Ok(found)
    }
}

impl Host for HostState {
    async fn fetch(&mut self, dialog: u32) -> Result<wit::Media, wit::MediaError> {
        let found = self.dialog_media(dialog).await?;
        Ok(wit::Media { bytes: found.bytes.to_vec(), mediatype: found.mediatype, filename: found.filename })
    }

    async fn probe(&mut self, dialog: u32) -> Result<wit::ProbeInfo, wit::MediaError> {
        let found = self.dialog_media(dialog).await?;
        let extension = found.extension();
        let size = found.bytes.len() as u64;
        let bytes = found.bytes.clone();
        let bounds = self.media_bounds();
        let slots = self.capabilities.media.slots.clone();
        let info = media_job(&slots, self.deadline, move || media::probe(bytes, extension.as_deref(), &bounds))
            .await?
            .map_err(|e| self.media_failure(e))?;
        Ok(wit::ProbeInfo {
            format: info.format,
            codec: info.codec,
            sample_rate: info.sample_rate,
            channels: u32::from(info.channels),
            duration_secs: info.duration_secs,
            size_bytes: size,
        })
    }

    async fn split(
        &mut self,
        dialog: u32,
        request: wit::ChunkRequest,
    ) -> Result<Resource<ChunksResource>, wit::MediaError> {
        let found = self.dialog_media(dialog).await?;
        let extension = found.extension();
        let request = media::ChunkRequest {
            max_chunk_secs: request.max_chunk_secs,
            sample_rate: request.sample_rate,
            silence: request.split_at_silence.then_some(media::SilenceRule {
                threshold_dbfs: request.silence_threshold_dbfs,
                window_ms: u64::from(request.silence_window_ms),
            }),
        };
        let bytes = found.bytes.clone();
        let bounds = self.media_bounds();
        let slots = self.capabilities.media.slots.clone();
        let resource = media_job(&slots, self.deadline, move || {
            let (cuts, _) = media::plan_cuts(&bytes, extension.as_deref(), &request, &bounds)?;
            let count = u32::try_from(cuts.len() + 1).unwrap_or(u32::MAX);
            let chunks = media::Chunks::new(bytes, extension.as_deref(), cuts, request.sample_rate, &bounds)?;
            Ok::<_, media::MediaError>(ChunksResource { chunks: Some(chunks), count })
        })
        .await?
        .map_err(|e| self.media_failure(e))?;
        self.table
            .push(resource)
            .map_err(|e| wit::MediaError::InvalidRequest(format!("too many open chunk readers: {e}")))
    }
}

impl HostChunks for HostState {
    async fn next(&mut self, handle: Resource<ChunksResource>) -> Option<Result<wit::Chunk, wit::MediaError>> {
        let mut chunks = self.table.get_mut(&handle).ok()?.chunks.take()?;
        let slots = self.capabilities.media.slots.clone();
        let (chunks, item) = match media_job(&slots, self.deadline, move || {
            let item = chunks.next();
            (chunks, item)
        })
        .await
        {
            Ok(done) => done,
            Err(e) => return Some(Err(e)),
        };
        if let Ok(entry) = self.table.get_mut(&handle) {
            entry.chunks = Some(chunks);
        }
        match item? {
            Ok(c) => Some(Ok(wit::Chunk {
                index: u32::try_from(c.index).unwrap_or(u32::MAX),
                start_ms: c.start_ms,
                end_ms: c.end_ms,
                wav: c.wav,
            })),
            Err(e) => Some(Err(self.media_failure(e))),
        }
    }

    async fn count(&mut self, handle: Resource<ChunksResource>) -> u32 {
        self.table.get(&handle).map_or(0, |entry| entry.count)
    }

    async fn drop(&mut self, handle: Resource<ChunksResource>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_and_extensions() {
        assert_eq!(url_file_name("https://h.test/a/call%201.mp3?X-Amz-Signature=s"), Some("call%201.mp3".into()));
        assert_eq!(url_file_name("https://h.test/"), None);
        assert_eq!(url_file_name("https://h.test"), None);
        let media = |filename: Option<&str>, mediatype: Option<&str>| DialogMedia {
            bytes: Arc::from(Vec::new()),
            mediatype: mediatype.map(str::to_string),
            filename: filename.map(str::to_string),
        };
        assert_eq!(media(Some("a.WAV"), Some("audio/mpeg")).extension().as_deref(), Some("wav"));
        assert_eq!(media(None, Some("audio/x-mp3")).extension().as_deref(), Some("mp3"));
        assert_eq!(media(None, Some("audio/flac; rate=44100")).extension().as_deref(), Some("flac"));
        assert_eq!(media(None, None).extension(), None);
    }
}
