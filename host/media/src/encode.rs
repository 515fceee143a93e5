//! Encoding decoded audio for upload: 16-bit PCM WAV (mono), which every
//! transcription API accepts. A 480 s chunk at 16 kHz is 15.4 MB, under
//! OpenAI's 25 MB limit.

/// A mono 16-bit PCM WAV file of `samples` (full scale ±1.0, clipped) at `rate` Hz.
pub fn wav_pcm16(samples: &[f32], rate: u32) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).unwrap_or(u32::MAX - 36);
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        let value = (sample.clamp(-1.0, 1.0) * 32767.0).round() as i16;
        out.extend_from_slice(&value.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Bounds;
    use crate::decode::probe;

    #[test]
    fn the_wav_reads_back_with_its_rate_length_and_samples() {
        let samples: Vec<f32> = (0..16_000).map(|i| ((i % 100) as f32 / 50.0) - 1.0).collect();
        let wav = wav_pcm16(&samples, 16_000);
        assert_eq!(wav.len(), 44 + 32_000);
        let info = probe(wav.clone().into(), Some("wav"), &Bounds::unbounded()).unwrap();
        assert_eq!((info.format.as_str(), info.sample_rate, info.channels, info.frames), ("wav", 16_000, 1, 16_000));
        assert_eq!(info.duration_secs, 1.0);
        let mut decoder = crate::decode::Decoder::open(wav.into(), None).unwrap();
        let mut back = Vec::new();
        while let Some(block) = decoder.next_block().unwrap() {
            back.extend_from_slice(block.samples);
        }
        assert_eq!(back.len(), samples.len());
        assert!(back.iter().zip(&samples).all(|(a, b)| (a - b).abs() < 1.0 / 16_000.0));
        assert_eq!(wav_pcm16(&[2.0, -2.0], 8000)[44..], [0xff, 0x7f, 0x01, 0x80]);
    }
}
