//! What can go wrong with a dialog's media, worded for the DLQ reason a link's
//! failure ends up in.

/// A media failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// The dialog carries neither an inline `body` nor a `url`.
    #[error("dialog {0} has no media: it has neither a `body` nor a `url`")]
    NoMedia(usize),
    /// The dialog index is out of range or the entry is not an object.
    #[error("the vCon has no dialog {0}")]
    NoDialog(usize),
    /// An inline body that does not decode under its `encoding`.
    #[error("dialog {index}: the inline body is not valid {encoding}: {reason}")]
    Encoding {
        /// The dialog index.
        index: usize,
        /// The encoding the body claims (or tried).
        encoding: String,
        /// What the decoder found.
        reason: String,
    },
    /// `content_hash` or the legacy `alg`/`signature` does not match the bytes.
    #[error("dialog {index}: the media does not match its {field}: {reason}; refusing to use it")]
    Integrity {
        /// The dialog index.
        index: usize,
        /// `content_hash` or `signature`.
        field: &'static str,
        /// Expected against found, or why the field cannot be checked.
        reason: String,
    },
    /// A container or codec symphonia cannot read (Opus, AMR, G.729, video…).
    #[error("unsupported media: {0} (the original bytes can still be sent unchanged)")]
    Unsupported(String),
    /// Bytes that claim a supported format but do not decode.
    #[error("corrupt media: {0}")]
    Corrupt(String),
    /// More than the host is willing to hold or produce.
    #[error("media too large: {0}")]
    TooLarge(String),
    /// A request the caller should not have made (zero rate, zero chunk length…).
    #[error("invalid media request: {0}")]
    InvalidRequest(String),
    /// Decoding stopped before the end: the call's deadline passed or it ended.
    #[error("media decoding stopped: {0}")]
    Stopped(String),
    /// More audio than one decoding pass may produce.
    #[error(
        "the recording is longer than the {limit_secs} s of audio the host decodes for this link (raise `limits.media_decode_secs` if it legitimately needs more)"
    )]
    TooLong {
        /// The limit, in seconds of audio.
        limit_secs: u64,
    },
}
