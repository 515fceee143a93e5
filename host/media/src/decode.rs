//! Decoding with symphonia (and the host's GSM 6.10 decoder for Microsoft GSM
//! WAV files, which symphonia lacks), one packet at a time: [`Decoder`] yields interleaved
//! `f32` samples (full scale ±1.0) so callers can measure, downmix and resample
//! without ever holding the whole recording. [`probe`] reads format, codec,
//! rate, channels and duration (from the container's frame count, or by decoding
//! when the container does not say). A decoder given [`Bounds`] checks them
//! before every packet and stops with [`MediaError::Stopped`] or
//! [`MediaError::TooLong`].

use std::io::Cursor;
use std::sync::Arc;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, CodecParameters, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::gsm::GsmWav;
use crate::{Bounds, MediaError};

/// What [`probe`] finds.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeInfo {
    /// The container: `mp3`, `wav`, `flac`, `ogg`, `mp4`, `mkv`….
    pub format: String,
    /// The codec, as symphonia names it (`mp3`, `pcm_s16le`, `pcm_mulaw`, `flac`, `vorbis`, `aac`…).
    pub codec: String,
    /// Frames per second.
    pub sample_rate: u32,
    /// Channel count.
    pub channels: u16,
    /// Bits per sample of PCM sources (the full scale silence is measured
    /// against); 16 for compressed codecs, which ffmpeg decodes to 16 bits.
    pub bits_per_sample: u32,
    /// Duration in seconds.
    pub duration_secs: f64,
    /// Frames in the stream.
    pub frames: u64,
}

/// Decoded samples of one packet.
#[derive(Debug, Clone, Copy)]
pub struct Block<'a> {
    /// Interleaved samples, full scale ±1.0.
    pub samples: &'a [f32],
    /// Channels per frame.
    pub channels: u16,
}

/// symphonia's reader and decoder for one track.
struct SymphoniaTrack {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn symphonia::core::codecs::Decoder>,
    track_id: u32,
    buffer: Option<SampleBuffer<f32>>,
}

/// What decodes the stream.
enum Source {
    Symphonia(SymphoniaTrack),
    Gsm(Box<GsmWav>),
}

/// A packet-by-packet decoder of the first audio track (symphonia, or the
/// host's own GSM 6.10 decoder for Microsoft GSM WAV files).
pub struct Decoder {
    source: Source,
    /// The probed format name.
    pub format_name: String,
    /// The codec name.
    pub codec_name: String,
    /// Frames per second.
    pub sample_rate: u32,
    /// Channels per frame.
    pub channels: u16,
    /// Bits per sample (see [`ProbeInfo::bits_per_sample`]).
    pub bits_per_sample: u32,
    /// Frames the container announces, if it does.
    pub announced_frames: Option<u64>,
    bounds: Bounds,
    decoded_frames: u64,
}

/// The container, from its magic bytes (symphonia's readers do not name
/// themselves).
fn container_name(bytes: &[u8]) -> &'static str {
    let at = |offset: usize, magic: &[u8]| bytes.get(offset..offset + magic.len()) == Some(magic);
    if at(0, b"RIFF") && at(8, b"WAVE") {
        "wav"
    } else if at(0, b"fLaC") {
        "flac"
    } else if at(0, b"OggS") {
        "ogg"
    } else if at(4, b"ftyp") {
        "mp4"
    } else if at(0, &[0x1a, 0x45, 0xdf, 0xa3]) {
        "mkv"
    } else if at(0, b"ID3")
        || bytes.first() == Some(&0xff) && bytes.get(1).is_some_and(|b| b & 0xe0 == 0xe0 && b & 0x06 != 0)
    {
        "mp3"
    } else if bytes.first() == Some(&0xff) && bytes.get(1).is_some_and(|b| b & 0xf6 == 0xf0) {
        "aac"
    } else {
        "unknown"
    }
}

fn codec_name(params: &CodecParameters) -> String {
    symphonia::default::get_codecs()
        .get_codec(params.codec)
        .map_or_else(|| format!("codec {}", params.codec), |d| d.short_name.to_string())
}

fn unsupported_or_corrupt(error: SymphoniaError, what: &str) -> MediaError {
    match error {
        SymphoniaError::Unsupported(why) => MediaError::Unsupported(format!("{what}: {why}")),
        other => MediaError::Corrupt(format!("{what}: {other}")),
    }
}

impl Decoder {
    /// Open `bytes`; `extension` (e.g. from the dialog's `filename`) is a hint only.
    pub fn open(bytes: Arc<[u8]>, extension: Option<&str>) -> Result<Self, MediaError> {
        if let Some(gsm) = GsmWav::open(bytes.clone()) {
            let gsm = gsm?;
            return Ok(Self {
                format_name: "wav".into(),
                codec_name: "gsm_ms".into(),
                sample_rate: gsm.sample_rate,
                channels: 1,
                bits_per_sample: 16,
                announced_frames: Some(gsm.frames()),
                source: Source::Gsm(Box::new(gsm)),
                bounds: Bounds::unbounded(),
                decoded_frames: 0,
            });
        }
        let stream = MediaSourceStream::new(Box::new(Cursor::new(bytes.clone())), Default::default());
        let mut hint = Hint::new();
        if let Some(extension) = extension {
            hint.with_extension(extension);
        }
        let probed = symphonia::default::get_probe()
            .format(
                &hint,
                stream,
                &FormatOptions { enable_gapless: true, ..Default::default() },
                &MetadataOptions::default(),
            )
            .map_err(|e| match e {
                SymphoniaError::Unsupported(_) => MediaError::Unsupported(
                    "not a container symphonia reads (mp3, wav, flac, ogg, mp4/m4a, mkv/webm)".into(),
                ),
                other => MediaError::Corrupt(format!("cannot read the container: {other}")),
            })?;
        let format = probed.format;
        let track = format
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or_else(|| MediaError::Unsupported("no audio track with a known codec".into()))?;
        let params = track.codec_params.clone();
        let codec = codec_name(&params);
        let decoder = symphonia::default::get_codecs()
            .make(&params, &DecoderOptions::default())
            .map_err(|e| unsupported_or_corrupt(e, &format!("codec {codec}")))?;
        let sample_rate =
            params.sample_rate.filter(|r| *r > 0).ok_or_else(|| MediaError::Corrupt("no sample rate".into()))?;
        let channels = params.channels.map_or(0, |c| c.count() as u16);
        let bits_per_sample = if codec.starts_with("pcm") { params.bits_per_sample.unwrap_or(16) } else { 16 };
        Ok(Self {
            format_name: container_name(&bytes).to_string(),
            codec_name: codec,
            announced_frames: params.n_frames,
            source: Source::Symphonia(SymphoniaTrack { track_id: track.id, format, decoder, buffer: None }),
            sample_rate,
            channels,
            bits_per_sample,
            bounds: Bounds::unbounded(),
            decoded_frames: 0,
        })
    }

    /// This decoder, checking `bounds` before every packet.
    #[must_use]
    pub fn bounded(mut self, bounds: &Bounds) -> Self {
        self.bounds = bounds.clone();
        self
    }

    /// Fail now if the container announces more audio than the bounds let one
    /// pass decode (before decoding any of it).
    pub fn check_announced_length(&self) -> Result<(), MediaError> {
        match self.announced_frames {
            Some(frames) => self.bounds.check_frames(frames, self.sample_rate),
            None => Ok(()),
        }
    }

    /// Frames in the stream: the container's count, else counted by decoding to
    /// the end (the decoder is then spent).
    pub fn total_frames(&mut self) -> Result<u64, MediaError> {
        if let Some(frames) = self.announced_frames.filter(|frames| *frames > 0) {
            return Ok(frames);
        }
        let mut samples = 0u64;
        while let Some(block) = self.next_block()? {
            samples += block.samples.len() as u64;
        }
        Ok(samples / u64::from(self.channels.max(1)))
    }

    /// The next block of interleaved samples, `None` at the end. A damaged packet
    /// is skipped, as players do; a stream that yields nothing at all is corrupt.
    /// With bounds, a packet past the deadline or the length limit is an error.
    pub fn next_block(&mut self) -> Result<Option<Block<'_>>, MediaError> {
        self.bounds.check()?;
        let block = match &mut self.source {
            Source::Gsm(gsm) => gsm.next_block().map(|samples| Block { samples, channels: 1 }),
            Source::Symphonia(track) => {
                let Some(channels) =
                    track.decode_next_packet(&self.bounds, &mut self.decoded_frames, self.sample_rate)?
                else {
                    return Ok(None);
                };
                self.channels = channels;
                track.buffer.as_ref().map(|buffer| Block { samples: buffer.samples(), channels })
            }
        };
        if let Some(block) = &block {
            self.decoded_frames += (block.samples.len() / usize::from(block.channels.max(1))) as u64;
            self.bounds.check_frames(self.decoded_frames, self.sample_rate)?;
        }
        Ok(block)
    }
}

impl SymphoniaTrack {
    /// Decode the next packet of the track into the buffer; its channel count,
    /// `None` at the end. Packets skipped on the way (other tracks, damaged or
    /// empty ones) are each checked against `bounds` and their length counted in
    /// `decoded_frames`, so a file made only of skipped packets still stops at
    /// the deadline and the length limit.
    fn decode_next_packet(
        &mut self,
        bounds: &Bounds,
        decoded_frames: &mut u64,
        sample_rate: u32,
    ) -> Result<Option<u16>, MediaError> {
        let mut first = true;
        loop {
            if !first {
                bounds.check()?;
                bounds.check_frames(*decoded_frames, sample_rate)?;
            }
            first = false;
            let packet = match self.format.next_packet() {
                Ok(packet) => packet,
                Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(SymphoniaError::ResetRequired) => return Ok(None),
                Err(e) => return Err(MediaError::Corrupt(format!("reading packets: {e}"))),
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(decoded) => decoded,
                Err(SymphoniaError::DecodeError(_)) => {
                    *decoded_frames = decoded_frames.saturating_add(packet.dur());
                    continue;
                }
                Err(e) => return Err(unsupported_or_corrupt(e, "decoding")),
            };
            if decoded.frames() == 0 {
                *decoded_frames = decoded_frames.saturating_add(packet.dur());
                continue;
            }
            let spec = *decoded.spec();
            let needed = decoded.capacity();
            if self.buffer.as_ref().is_none_or(|b| b.capacity() < needed * spec.channels.count()) {
                self.buffer = Some(SampleBuffer::new(needed as u64, spec));
            }
            if let Some(buffer) = self.buffer.as_mut() {
                buffer.copy_interleaved_ref(decoded);
                return Ok(Some(spec.channels.count() as u16));
            }
        }
    }
}

/// Probe `bytes`: container, codec, rate, channels and duration (decoding, under
/// `bounds`, only when the container does not give the length).
pub fn probe(bytes: Arc<[u8]>, extension: Option<&str>, bounds: &Bounds) -> Result<ProbeInfo, MediaError> {
    let mut decoder = Decoder::open(bytes, extension)?.bounded(bounds);
    let frames = decoder.total_frames()?;
    if decoder.channels == 0 {
        // Containers that announce no layout learn it from the first packet.
        decoder.next_block()?;
    }
    Ok(ProbeInfo {
        format: decoder.format_name.clone(),
        codec: decoder.codec_name.clone(),
        sample_rate: decoder.sample_rate,
        channels: decoder.channels,
        bits_per_sample: decoder.bits_per_sample,
        duration_secs: frames as f64 / f64::from(decoder.sample_rate),
        frames,
    })
}
