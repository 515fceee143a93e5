//! Long recordings in upload-sized pieces: where to cut (a first decoding pass
//! that keeps only a loudness profile, 4 bytes per millisecond), then a second
//! pass that downmixes, resamples and encodes one chunk at a time, so memory
//! stays at the profile plus one chunk whatever the recording's length. Both
//! passes decode under the call's [`Bounds`] (deadline, cancellation, longest
//! audio), which also refuse a container announcing too long a recording up front.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::decode::Decoder;
use crate::encode::wav_pcm16;
use crate::resample::Resampler;
use crate::silence::{Loudness, SilenceRule, nonsilent_ranges, split_points};
use crate::{Bounds, MediaError};

/// The largest chunk the host produces (a 480 s chunk at 16 kHz is 15.4 MB).
pub const MAX_CHUNK_BYTES: u64 = 128 * 1024 * 1024;

/// How to cut and encode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkRequest {
    /// Longest chunk, in seconds (Python's `max_chunk_duration`, 480 by default).
    pub max_chunk_secs: u32,
    /// Output rate in Hz (mono 16-bit WAV).
    pub sample_rate: u32,
    /// Cut at silences (Python's `use_silence_chunking`), or at fixed multiples.
    pub silence: Option<SilenceRule>,
}

impl ChunkRequest {
    fn validate(&self) -> Result<(), MediaError> {
        if !(8_000..=48_000).contains(&self.sample_rate) {
            return Err(MediaError::InvalidRequest(format!(
                "output rate {} Hz is outside 8000–48000 Hz",
                self.sample_rate
            )));
        }
        if self.max_chunk_secs == 0 {
            return Err(MediaError::InvalidRequest("the chunk length must be at least 1 s".into()));
        }
        let bytes = u64::from(self.max_chunk_secs) * u64::from(self.sample_rate) * 2;
        if bytes > MAX_CHUNK_BYTES {
            return Err(MediaError::TooLarge(format!(
                "{} s chunks at {} Hz would be {bytes} bytes each; the host's limit is {MAX_CHUNK_BYTES}",
                self.max_chunk_secs, self.sample_rate
            )));
        }
        Ok(())
    }
}

/// One encoded piece of a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// 0-based position.
    pub index: usize,
    /// Where it starts in the recording, in ms.
    pub start_ms: u64,
    /// Where it ends, in ms.
    pub end_ms: u64,
    /// Mono 16-bit PCM WAV.
    pub wav: Vec<u8>,
}

/// The cut points (ms) and the duration (ms) of `bytes` under `request`,
/// decoding under `bounds`.
pub fn plan_cuts(
    bytes: &Arc<[u8]>,
    extension: Option<&str>,
    request: &ChunkRequest,
    bounds: &Bounds,
) -> Result<(Vec<u64>, u64), MediaError> {
    request.validate()?;
    let mut decoder = Decoder::open(bytes.clone(), extension)?.bounded(bounds);
    decoder.check_announced_length()?;
    let max_ms = u64::from(request.max_chunk_secs) * 1000;
    let Some(rule) = request.silence else {
        let frames = decoder.total_frames()?;
        let duration_ms = (frames * 1000 + u64::from(decoder.sample_rate) / 2) / u64::from(decoder.sample_rate);
        return Ok((split_points(&[], duration_ms, max_ms), duration_ms));
    };
    let mut loudness: Option<Loudness> = None;
    let rate = decoder.sample_rate;
    while let Some(block) = decoder.next_block()? {
        loudness.get_or_insert_with(|| Loudness::new(rate, block.channels)).push(block.samples);
    }
    let loudness = loudness.ok_or_else(|| MediaError::Corrupt("the stream holds no audio".into()))?;
    let duration_ms = loudness.len_ms();
    let silent = loudness.silent_ranges(rule, decoder.bits_per_sample);
    let nonsilent = nonsilent_ranges(&silent, duration_ms);
    Ok((split_points(&nonsilent, duration_ms, max_ms), duration_ms))
}

/// The chunks of a recording, produced one at a time.
pub struct Chunks {
    decoder: Decoder,
    resampler: Option<Resampler>,
    cuts: VecDeque<u64>,
    rate: u32,
    ready: Vec<f32>,
    mono: Vec<f32>,
    emitted: u64,
    start_ms: u64,
    index: usize,
    drained: bool,
}

impl Chunks {
    /// Chunks of `bytes` cut at `cuts` (ms, increasing, e.g. from [`plan_cuts`]),
    /// decoded under `bounds`.
    pub fn new(
        bytes: Arc<[u8]>,
        extension: Option<&str>,
        cuts: Vec<u64>,
        sample_rate: u32,
        bounds: &Bounds,
    ) -> Result<Self, MediaError> {
        let decoder = Decoder::open(bytes, extension)?.bounded(bounds);
        decoder.check_announced_length()?;
        let resampler = Some(Resampler::new(decoder.sample_rate, sample_rate)?);
        Ok(Self {
            decoder,
            resampler,
            cuts: cuts.into(),
            rate: sample_rate,
            ready: Vec::new(),
            mono: Vec::new(),
            emitted: 0,
            start_ms: 0,
            index: 0,
            drained: false,
        })
    }

    /// Decode, downmix and resample until `wanted` samples are ready or the
    /// stream ends.
    fn fill(&mut self, wanted: usize) -> Result<(), MediaError> {
        while self.ready.len() < wanted && !self.drained {
            let Some(resampler) = self.resampler.as_mut() else { break };
            match self.decoder.next_block()? {
                Some(block) => {
                    let channels = usize::from(block.channels.max(1));
                    self.mono.clear();
                    self.mono.extend(
                        block.samples.chunks(channels).map(|frame| frame.iter().sum::<f32>() / frame.len() as f32),
                    );
                    resampler.push(&self.mono, &mut self.ready)?;
                }
                None => {
                    resampler.finish(&mut self.ready)?;
                    self.drained = true;
                }
            }
        }
        Ok(())
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, MediaError> {
        let end_sample = self.cuts.front().map(|ms| ms * u64::from(self.rate) / 1000);
        let wanted = end_sample
            .map_or(usize::MAX, |end| usize::try_from(end.saturating_sub(self.emitted)).unwrap_or(usize::MAX));
        self.fill(wanted)?;
        let take = wanted.min(self.ready.len());
        if take == 0 && self.drained {
            return Ok(None);
        }
        let wav = wav_pcm16(&self.ready[..take], self.rate);
        self.ready.drain(..take);
        self.emitted += take as u64;
        let end_ms = match self.cuts.pop_front() {
            Some(cut) if !(self.drained && self.ready.is_empty()) => cut,
            _ => {
                self.cuts.clear();
                self.emitted * 1000 / u64::from(self.rate)
            }
        };
        let chunk = Chunk { index: self.index, start_ms: self.start_ms, end_ms, wav };
        self.index += 1;
        self.start_ms = end_ms;
        Ok(Some(chunk))
    }
}

impl Iterator for Chunks {
    type Item = Result<Chunk, MediaError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_chunk() {
            Ok(chunk) => chunk.map(Ok),
            Err(error) => {
                self.drained = true;
                self.ready.clear();
                self.resampler = None;
                Some(Err(error))
            }
        }
    }
}

/// Plan the cuts of `bytes` and return its chunks (see [`plan_cuts`], [`Chunks`]).
pub fn chunks(
    bytes: Arc<[u8]>,
    extension: Option<&str>,
    request: &ChunkRequest,
    bounds: &Bounds,
) -> Result<Chunks, MediaError> {
    let (cuts, _) = plan_cuts(&bytes, extension, request, bounds)?;
    Chunks::new(bytes, extension, cuts, request.sample_rate, bounds)
}
