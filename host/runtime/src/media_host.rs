//! The `media` import of the 0.2.0 link world: a dialog's media fetched (inline
//! body decoded, or its `url` fetched under the link's allow-list), checked
//! against its hashes, probed, and cut into WAV chunks by `conserver-media`.
//! Decoding runs on the blocking pool, one chunk per call, so a long recording
//! neither stalls the async workers nor sits in memory whole. Media is fetched
//! at most once per dialog per call.

use std::collections::HashMap;
use std::sync::Arc;

use conserver_media::{self as media, MediaLocation};
use serde_json::{Map, Value};
use wasmtime::component::Resource;

use crate::bindings::vcon::conserver0_2_0::media::{self as wit, Host, HostChunks};
use crate::host::HostState;
use crate::outbound_http::{self, FetchError};

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
        media::MediaError::TooLarge(_) => wit::MediaError::TooLarge(text),
        media::MediaError::InvalidRequest(_) => wit::MediaError::InvalidRequest(text),
    }
}

fn lost(error: tokio::task::JoinError) -> wit::MediaError {
    wit::MediaError::Corrupt(format!("the decoder stopped unexpectedly: {error}"))
}

/// The last path segment of a URL, without its query.
fn url_file_name(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next()?;
    let name = path.rsplit('/').next()?;
    (!name.is_empty() && path.contains("://") && path.matches('/').count() > 2).then(|| name.to_string())
}

impl HostState {
    async fn dialog_media(&mut self, index: u32) -> Result<DialogMedia, wit::MediaError> {
        if let Some(found) = self.media.fetched.get(&index) {
            return Ok(found.clone());
        }
        let position = index as usize;
        let dialog = media::source::dialog(self.media.document()?, position).map_err(to_wit)?.clone();
        let text = |key: &str| dialog.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        let (bytes, content_type, url_name): (Arc<[u8]>, _, _) = match media::locate(&dialog, position)
            .map_err(to_wit)?
        {
            MediaLocation::Inline(bytes) => (bytes.into(), None, None),
            MediaLocation::Url(url) => {
                let limits =
                    crate::grants::HttpLimits { max_response_bytes: MAX_MEDIA_BYTES, ..self.capabilities.http };
                let fetched = outbound_http::fetch(&url, &self.labels.link, &self.capabilities.allowed_hosts, limits)
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
        media::verify(&dialog, position, &bytes).map_err(to_wit)?;
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
        let info = tokio::task::spawn_blocking(move || media::probe(bytes, extension.as_deref()))
            .await
            .map_err(lost)?
            .map_err(to_wit)?;
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
        let resource = tokio::task::spawn_blocking(move || {
            let (cuts, _) = media::plan_cuts(&bytes, extension.as_deref(), &request)?;
            let count = u32::try_from(cuts.len() + 1).unwrap_or(u32::MAX);
            let chunks = media::Chunks::new(bytes, extension.as_deref(), cuts, request.sample_rate)?;
            Ok::<_, media::MediaError>(ChunksResource { chunks: Some(chunks), count })
        })
        .await
        .map_err(lost)?
        .map_err(to_wit)?;
        self.table
            .push(resource)
            .map_err(|e| wit::MediaError::InvalidRequest(format!("too many open chunk readers: {e}")))
    }
}

impl HostChunks for HostState {
    async fn next(&mut self, handle: Resource<ChunksResource>) -> Option<Result<wit::Chunk, wit::MediaError>> {
        let mut chunks = self.table.get_mut(&handle).ok()?.chunks.take()?;
        let (chunks, item) = match tokio::task::spawn_blocking(move || {
            let item = chunks.next();
            (chunks, item)
        })
        .await
        {
            Ok(done) => done,
            Err(e) => return Some(Err(lost(e))),
        };
        if let Ok(entry) = self.table.get_mut(&handle) {
            entry.chunks = Some(chunks);
        }
        item.map(|result| {
            result
                .map(|c| wit::Chunk {
                    index: u32::try_from(c.index).unwrap_or(u32::MAX),
                    start_ms: c.start_ms,
                    end_ms: c.end_ms,
                    wav: c.wav,
                })
                .map_err(to_wit)
        })
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
