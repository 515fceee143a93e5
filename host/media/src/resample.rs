//! Streaming mono resampling (rubato's FFT resampler): push blocks at the source
//! rate, get blocks at the target rate, with the resampler's delay removed so the
//! output lines up with the input and has `ceil(n · out / in)` samples in all.

use rubato::{FftFixedIn, Resampler as _};

use crate::MediaError;

const CHUNK_FRAMES: usize = 1024;

/// Counts samples in and out, drops the resampler's leading delay and never lets
/// more out than `ceil(in · to / from)`.
struct Alignment {
    to_skip: usize,
    consumed: u64,
    produced: u64,
    from: u64,
    to: u64,
}

impl Alignment {
    fn expected(&self) -> u64 {
        (self.consumed * self.to).div_ceil(self.from)
    }

    fn emit(&mut self, block: &[f32], out: &mut Vec<f32>) {
        let skip = self.to_skip.min(block.len());
        self.to_skip -= skip;
        let room = usize::try_from(self.expected().saturating_sub(self.produced)).unwrap_or(usize::MAX);
        let take = (block.len() - skip).min(room);
        out.extend_from_slice(&block[skip..skip + take]);
        self.produced += take as u64;
    }
}

/// Mono samples at `from` Hz in, at `to` Hz out.
pub struct Resampler {
    inner: Option<FftFixedIn<f32>>,
    pending: Vec<f32>,
    scratch: Vec<Vec<f32>>,
    alignment: Alignment,
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz (a pass-through when they are equal).
    pub fn new(from: u32, to: u32) -> Result<Self, MediaError> {
        if from == 0 || to == 0 {
            return Err(MediaError::InvalidRequest(format!("cannot resample from {from} Hz to {to} Hz")));
        }
        let inner = if from == to {
            None
        } else {
            Some(
                FftFixedIn::new(from as usize, to as usize, CHUNK_FRAMES, 2, 1)
                    .map_err(|e| MediaError::InvalidRequest(format!("resampling {from} Hz to {to} Hz: {e}")))?,
            )
        };
        let to_skip = inner.as_ref().map_or(0, |r| r.output_delay());
        let scratch = vec![vec![0.0; inner.as_ref().map_or(0, |r| r.output_frames_max())]];
        let alignment = Alignment { to_skip, consumed: 0, produced: 0, from: u64::from(from), to: u64::from(to) };
        Ok(Self { inner, pending: Vec::new(), scratch, alignment })
    }

    /// Resample `input`, appending what is ready to `out`.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), MediaError> {
        self.alignment.consumed += input.len() as u64;
        let Some(inner) = self.inner.as_mut() else {
            self.alignment.emit(input, out);
            return Ok(());
        };
        self.pending.extend_from_slice(input);
        let mut start = 0;
        loop {
            let n = inner.input_frames_next();
            if self.pending.len() - start < n {
                break;
            }
            let (_, written) = inner
                .process_into_buffer(&[&self.pending[start..start + n]], &mut self.scratch, None)
                .map_err(|e| MediaError::Corrupt(format!("resampling: {e}")))?;
            start += n;
            self.alignment.emit(&self.scratch[0][..written], out);
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// Flush the resampler's tail into `out`.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), MediaError> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(());
        };
        // Each partial call pushes at most one chunk of (zero-padded) input through;
        // the delay is a fraction of a chunk, so a few calls always suffice.
        for _ in 0..8 {
            if self.alignment.produced >= self.alignment.expected() {
                break;
            }
            let pending = std::mem::take(&mut self.pending);
            let input: Option<&[&[f32]]> = if pending.is_empty() { None } else { Some(&[&pending]) };
            let (_, written) = inner
                .process_partial_into_buffer(input, &mut self.scratch, None)
                .map_err(|e| MediaError::Corrupt(format!("resampling: {e}")))?;
            self.alignment.emit(&self.scratch[0][..written], out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tone(rate: u32, hz: f32, secs: f32) -> Vec<f32> {
        (0..(rate as f32 * secs) as usize)
            .map(|i| (i as f32 / rate as f32 * hz * std::f32::consts::TAU).sin() * 0.5)
            .collect()
    }

    fn resample_all(input: &[f32], from: u32, to: u32, block: usize) -> Vec<f32> {
        let mut resampler = Resampler::new(from, to).unwrap();
        let mut out = Vec::new();
        for part in input.chunks(block) {
            resampler.push(part, &mut out).unwrap();
        }
        resampler.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn lengths_are_exact_and_blocks_do_not_matter() {
        let input = tone(44_100, 440.0, 1.37);
        let a = resample_all(&input, 44_100, 16_000, 1152);
        let b = resample_all(&input, 44_100, 16_000, 333);
        assert_eq!(a.len(), (input.len() as u64 * 16_000).div_ceil(44_100) as usize);
        assert_eq!(a, b);
        assert_eq!(resample_all(&input, 16_000, 16_000, 100), input);
    }

    #[test]
    fn a_tone_keeps_its_phase_and_level() {
        let input = tone(48_000, 440.0, 1.0);
        let out = resample_all(&input, 48_000, 16_000, 4096);
        let expected = tone(16_000, 440.0, 1.0);
        // Away from the edges the resampled tone is the tone sampled at 16 kHz.
        let worst = out[400..15_600].iter().zip(&expected[400..15_600]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst < 0.05, "worst difference {worst} (a fraction of a sample of delay at most)");
        let rms = |x: &[f32]| (x.iter().map(|s| s * s).sum::<f32>() / x.len() as f32).sqrt();
        let ratio = rms(&out[400..15_600]) / rms(&expected[400..15_600]);
        assert!((ratio - 1.0).abs() < 0.01, "level ratio {ratio}");
    }

    #[test]
    fn zero_rates_are_refused() {
        assert!(Resampler::new(0, 16_000).is_err());
        assert!(Resampler::new(8_000, 0).is_err());
    }
}
