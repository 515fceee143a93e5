//! A dialog's media, done by the host: the original bytes (inline body decoded, or
//! the `url` fetched under the link's `allowed_outbound_hosts`, checked against
//! `content_hash` / the legacy `signature`), a probe (format, codec, rate,
//! channels, duration), and chunks of at most N seconds as mono 16-bit WAV, cut at
//! silences by the Python conserver's rule, decoded one at a time so a long
//! recording never sits in the link's memory.
//!
//! Links take a `&dyn` [`MediaSource`] so unit tests can hand in a [`FakeMedia`];
//! [`HostMedia`] is the real one (native builds have no host and get
//! [`MediaError::InvalidRequest`]).
//!
//! Dialogs are those of the vCon the link was called with, by index.

/// Why media could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaError {
    /// The dialog does not exist, or has neither a `body` nor a `url`.
    NoMedia(String),
    /// The `url`'s host is not allowed for this link.
    Denied(String),
    /// Fetching the `url` failed; may work later.
    FetchFailed(String),
    /// The bytes do not match their hash, or the body is not valid under its encoding.
    Integrity(String),
    /// A container or codec the host cannot decode; the original bytes can still be sent.
    Unsupported(String),
    /// Bytes that do not decode.
    Corrupt(String),
    /// Larger than the host allows.
    TooLarge(String),
    /// A request the host cannot serve.
    InvalidRequest(String),
}

impl MediaError {
    /// Whether trying again later may help (only a failed fetch).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::FetchFailed(_))
    }

    /// This error as a [`crate::LinkError`] for dialog `dialog`.
    pub fn for_dialog(&self, dialog: u32) -> crate::LinkError {
        let message = format!("dialog {dialog}: {self}");
        if self.is_retryable() { crate::LinkError::retryable(message) } else { crate::LinkError::fatal(message) }
    }
}

impl std::fmt::Display for MediaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoMedia(m) => write!(f, "no media: {m}"),
            Self::Denied(m) => {
                write!(f, "media fetch denied: {m} (add the host to this link's allowed_outbound_hosts)")
            }
            Self::FetchFailed(m) => write!(f, "media fetch failed: {m}"),
            Self::Integrity(m) => write!(f, "media integrity: {m}"),
            Self::Unsupported(m) => write!(f, "unsupported media: {m}"),
            Self::Corrupt(m) => write!(f, "corrupt media: {m}"),
            Self::TooLarge(m) => write!(f, "media too large: {m}"),
            Self::InvalidRequest(m) => write!(f, "invalid media request: {m}"),
        }
    }
}

impl std::error::Error for MediaError {}

/// A dialog's original media.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Media {
    /// The verified bytes.
    pub bytes: Vec<u8>,
    /// The media type (the answer's `Content-Type`, else the dialog's `mediatype`).
    pub mediatype: Option<String>,
    /// A file name (the dialog's `filename`, else the URL's last segment).
    pub filename: Option<String>,
}

/// What a recording is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProbeInfo {
    /// Container (`mp3`, `wav`, `flac`, `ogg`, `mp4`, `mkv`, `aac`).
    pub format: String,
    /// Codec (`mp3`, `pcm_s16le`, `pcm_mulaw`, `flac`, `vorbis`, `aac`…).
    pub codec: String,
    /// Frames per second.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u32,
    /// Length in seconds.
    pub duration_secs: f64,
    /// Size of the original bytes.
    pub size_bytes: u64,
}

/// How to cut a recording.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkRequest {
    /// Longest chunk, in seconds.
    pub max_chunk_secs: u32,
    /// Output rate (mono 16-bit WAV), 8000–48000 Hz.
    pub sample_rate: u32,
    /// Cut at silences rather than at exact multiples.
    pub split_at_silence: bool,
    /// Silence level, dBFS (Python: -40).
    pub silence_threshold_dbfs: f64,
    /// Silence window, ms (Python: 2000).
    pub silence_window_ms: u32,
}

impl Default for ChunkRequest {
    /// The Python conserver's OpenAI chunking: 480 s, 16 kHz, at silences of
    /// 2 s under -40 dBFS.
    fn default() -> Self {
        Self {
            max_chunk_secs: 480,
            sample_rate: 16_000,
            split_at_silence: true,
            silence_threshold_dbfs: -40.0,
            silence_window_ms: 2000,
        }
    }
}

/// One piece of a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// 0-based position.
    pub index: u32,
    /// Start in the recording, ms.
    pub start_ms: u64,
    /// End in the recording, ms.
    pub end_ms: u64,
    /// Mono 16-bit PCM WAV.
    pub wav: Vec<u8>,
}

/// Chunks, produced one at a time.
pub type ChunkIter<'a> = Box<dyn Iterator<Item = Result<Chunk, MediaError>> + 'a>;

/// Where a link gets media from.
pub trait MediaSource {
    /// The original media of dialog `dialog`.
    fn fetch(&self, dialog: u32) -> Result<Media, MediaError>;
    /// Probe dialog `dialog`'s recording.
    fn probe(&self, dialog: u32) -> Result<ProbeInfo, MediaError>;
    /// Dialog `dialog`'s recording in chunks.
    fn split(&self, dialog: u32, request: &ChunkRequest) -> Result<ChunkIter<'_>, MediaError>;
}

/// The host's media capability.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostMedia;

#[cfg(target_arch = "wasm32")]
mod host {
    use super::*;
    use crate::bindings::vcon::conserver0_2_0::media as wit;

    impl From<wit::MediaError> for MediaError {
        fn from(error: wit::MediaError) -> Self {
            match error {
                wit::MediaError::NoMedia(m) => Self::NoMedia(m),
                wit::MediaError::Denied(m) => Self::Denied(m),
                wit::MediaError::FetchFailed(m) => Self::FetchFailed(m),
                wit::MediaError::Integrity(m) => Self::Integrity(m),
                wit::MediaError::Unsupported(m) => Self::Unsupported(m),
                wit::MediaError::Corrupt(m) => Self::Corrupt(m),
                wit::MediaError::TooLarge(m) => Self::TooLarge(m),
                wit::MediaError::InvalidRequest(m) => Self::InvalidRequest(m),
            }
        }
    }

    impl MediaSource for HostMedia {
        fn fetch(&self, dialog: u32) -> Result<Media, MediaError> {
            let media = wit::fetch(dialog)?;
            Ok(Media { bytes: media.bytes, mediatype: media.mediatype, filename: media.filename })
        }

        fn probe(&self, dialog: u32) -> Result<ProbeInfo, MediaError> {
            let info = wit::probe(dialog)?;
            Ok(ProbeInfo {
                format: info.format,
                codec: info.codec,
                sample_rate: info.sample_rate,
                channels: info.channels,
                duration_secs: info.duration_secs,
                size_bytes: info.size_bytes,
            })
        }

        fn split(&self, dialog: u32, request: &ChunkRequest) -> Result<ChunkIter<'_>, MediaError> {
            let chunks = wit::split(
                dialog,
                wit::ChunkRequest {
                    max_chunk_secs: request.max_chunk_secs,
                    sample_rate: request.sample_rate,
                    split_at_silence: request.split_at_silence,
                    silence_threshold_dbfs: request.silence_threshold_dbfs,
                    silence_window_ms: request.silence_window_ms,
                },
            )?;
            Ok(Box::new(std::iter::from_fn(move || {
                chunks.next().map(|chunk| {
                    chunk
                        .map(|c| Chunk { index: c.index, start_ms: c.start_ms, end_ms: c.end_ms, wav: c.wav })
                        .map_err(MediaError::from)
                })
            })))
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl MediaSource for HostMedia {
    fn fetch(&self, _dialog: u32) -> Result<Media, MediaError> {
        Err(MediaError::InvalidRequest("no host media capability in a native build".into()))
    }

    fn probe(&self, _dialog: u32) -> Result<ProbeInfo, MediaError> {
        Err(MediaError::InvalidRequest("no host media capability in a native build".into()))
    }

    fn split(&self, _dialog: u32, _request: &ChunkRequest) -> Result<ChunkIter<'_>, MediaError> {
        Err(MediaError::InvalidRequest("no host media capability in a native build".into()))
    }
}

/// Media for unit tests: per dialog, the original media, a probe and the chunks
/// (or an error for any of them); records each split request.
#[derive(Debug, Default)]
pub struct FakeMedia {
    /// Per dialog index: what `fetch` answers.
    pub media: std::collections::BTreeMap<u32, Result<Media, MediaError>>,
    /// Per dialog index: what `probe` answers.
    pub probes: std::collections::BTreeMap<u32, Result<ProbeInfo, MediaError>>,
    /// Per dialog index: what `split` answers.
    pub chunks: std::collections::BTreeMap<u32, Result<Vec<Chunk>, MediaError>>,
    /// The `split` calls made, in order.
    pub split_requests: std::cell::RefCell<Vec<(u32, ChunkRequest)>>,
}

impl MediaSource for FakeMedia {
    fn fetch(&self, dialog: u32) -> Result<Media, MediaError> {
        self.media.get(&dialog).cloned().unwrap_or_else(|| Err(MediaError::NoMedia(format!("no dialog {dialog}"))))
    }

    fn probe(&self, dialog: u32) -> Result<ProbeInfo, MediaError> {
        self.probes.get(&dialog).cloned().unwrap_or_else(|| Err(MediaError::NoMedia(format!("no dialog {dialog}"))))
    }

    fn split(&self, dialog: u32, request: &ChunkRequest) -> Result<ChunkIter<'_>, MediaError> {
        self.split_requests.borrow_mut().push((dialog, *request));
        let chunks = self
            .chunks
            .get(&dialog)
            .cloned()
            .unwrap_or_else(|| Err(MediaError::NoMedia(format!("no dialog {dialog}"))))?;
        Ok(Box::new(chunks.into_iter().map(Ok)))
    }
}
