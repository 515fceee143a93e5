//! GSM 06.10 full-rate decoding for Microsoft GSM WAV files (format tag 0x0031,
//! "WAV49": what Asterisk and many call recorders write, and the recording of
//! the vCon spec's `ab_call` examples), which symphonia does not decode.
//!
//! A port of the fixed-point reference decoder (RPE-LTP: RPE decoding, long-term
//! and short-term synthesis, de-emphasis), bit-exact with it and with ffmpeg.
//! Each 65-byte block holds two 260-bit frames, packed least significant bit
//! first, of 160 samples at 8 kHz each.

use crate::MediaError;

const MIN_WORD: i16 = i16::MIN;
const MAX_WORD: i16 = i16::MAX;

/// The WAVE format tag of Microsoft GSM 6.10.
pub const WAVE_FORMAT_GSM610: u16 = 0x0031;
/// Bytes per block (two frames).
const BLOCK_BYTES: usize = 65;
/// Samples per frame.
const FRAME_SAMPLES: usize = 160;

fn saturate(value: i32) -> i16 {
    value.clamp(i32::from(MIN_WORD), i32::from(MAX_WORD)) as i16
}

fn add(a: i16, b: i16) -> i16 {
    saturate(i32::from(a) + i32::from(b))
}

fn sub(a: i16, b: i16) -> i16 {
    saturate(i32::from(a) - i32::from(b))
}

/// `gsm_mult_r`: rounded Q15 product.
fn mult_r(a: i16, b: i16) -> i16 {
    if a == MIN_WORD && b == MIN_WORD {
        return MAX_WORD;
    }
    ((i32::from(a) * i32::from(b) + 16384) >> 15) as i16
}

fn asr(a: i16, n: i16) -> i16 {
    if n >= 16 {
        return if a < 0 { -1 } else { 0 };
    }
    if n <= -16 {
        return 0;
    }
    if n < 0 {
        return ((i32::from(a)) << -n) as i16;
    }
    a >> n
}

fn asl(a: i16, n: i16) -> i16 {
    if n >= 16 {
        return 0;
    }
    if n <= -16 {
        return if a < 0 { -1 } else { 0 };
    }
    if n < 0 {
        return asr(a, -n);
    }
    ((i32::from(a)) << n) as i16
}

const FAC: [i16; 8] = [18431, 20479, 22527, 24575, 26623, 28671, 30719, 32767];
const QLB: [i16; 4] = [3277, 11469, 21299, 32767];
const MIC: [i16; 8] = [-32, -32, -16, -16, -8, -8, -4, -4];
const B: [i16; 8] = [0, 0, 2048, -2560, 94, -1792, -341, -1144];
const INVA: [i16; 8] = [13107, 13107, 13107, 13107, 19223, 17476, 31454, 29708];
const LAR_BITS: [u32; 8] = [6, 6, 5, 5, 4, 4, 3, 3];

/// Samples `start..end` of a frame use the log-area ratios `f(previous, current)`.
type Interpolation = (usize, usize, fn(i16, i16) -> i16);

/// One frame's parameters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Frame {
    larc: [i16; 8],
    nc: [i16; 4],
    bc: [i16; 4],
    mc: [i16; 4],
    xmaxc: [i16; 4],
    xmc: [[i16; 13]; 4],
}

/// Reads fields least significant bit first.
struct Bits<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl Bits<'_> {
    fn take(&mut self, width: u32) -> i16 {
        let mut value = 0u16;
        for bit in 0..width {
            let byte = self.bytes.get(self.position / 8).copied().unwrap_or(0);
            value |= u16::from((byte >> (self.position % 8)) & 1) << bit;
            self.position += 1;
        }
        value as i16
    }

    fn frame(&mut self) -> Frame {
        let mut frame = Frame::default();
        for (lar, width) in frame.larc.iter_mut().zip(LAR_BITS) {
            *lar = self.take(width);
        }
        for j in 0..4 {
            frame.nc[j] = self.take(7);
            frame.bc[j] = self.take(2);
            frame.mc[j] = self.take(2);
            frame.xmaxc[j] = self.take(6);
            for x in &mut frame.xmc[j] {
                *x = self.take(3);
            }
        }
        frame
    }
}

/// The decoder's state, carried from frame to frame.
pub struct GsmState {
    dp0: [i16; 280],
    nrp: i16,
    larpp: [[i16; 8]; 2],
    j: usize,
    v: [i16; 9],
    msr: i16,
}

impl Default for GsmState {
    fn default() -> Self {
        Self { dp0: [0; 280], nrp: 40, larpp: [[0; 8]; 2], j: 0, v: [0; 9], msr: 0 }
    }
}

fn rpe_decoding(xmaxc: i16, mc: i16, xmc: &[i16; 13], erp: &mut [i16; 40]) {
    let mut exp = 0i16;
    if xmaxc > 15 {
        exp = (xmaxc >> 3) - 1;
    }
    let mut mant = xmaxc - (exp << 3);
    if mant == 0 {
        exp = -4;
        mant = 7;
    } else {
        while mant <= 7 {
            mant = (mant << 1) | 1;
            exp -= 1;
        }
        mant -= 8;
    }
    let temp1 = FAC[mant as usize & 7];
    let temp2 = sub(6, exp);
    let temp3 = asl(1, sub(temp2, 1));
    erp.fill(0);
    for (i, x) in xmc.iter().enumerate() {
        let temp = ((x << 1) - 7) << 12;
        let temp = add(mult_r(temp1, temp), temp3);
        erp[(mc as usize & 3) + 3 * i] = asr(temp, temp2);
    }
}

impl GsmState {
    fn long_term_synthesis(&mut self, ncr: i16, bcr: i16, erp: &[i16; 40]) {
        let nr = if (40..=120).contains(&ncr) { ncr } else { self.nrp };
        self.nrp = nr;
        let brp = QLB[bcr as usize & 3];
        let base = 120;
        for (k, &e) in erp.iter().enumerate() {
            let drpp = mult_r(brp, self.dp0[base + k - nr as usize]);
            self.dp0[base + k] = add(e, drpp);
        }
        for k in 0..120 {
            self.dp0[k] = self.dp0[40 + k];
        }
    }

    fn short_term_synthesis(&mut self, rrp: &[i16; 8], wt: &[i16], out: &mut [i16]) {
        for (sample, &w) in out.iter_mut().zip(wt) {
            let mut sri = w;
            for i in (0..8).rev() {
                let tmp1 = rrp[i];
                let tmp2 = self.v[i];
                let tmp2 = if tmp1 == MIN_WORD && tmp2 == MIN_WORD {
                    MAX_WORD
                } else {
                    ((i32::from(tmp1) * i32::from(tmp2) + 16384) >> 15) as i16
                };
                sri = sub(sri, tmp2);
                let tmp1 = if tmp1 == MIN_WORD && sri == MIN_WORD {
                    MAX_WORD
                } else {
                    ((i32::from(tmp1) * i32::from(sri) + 16384) >> 15) as i16
                };
                self.v[i + 1] = add(self.v[i], tmp1);
            }
            self.v[0] = sri;
            *sample = sri;
        }
    }

    /// Decode one frame into 160 samples.
    fn decode_frame(&mut self, frame: &Frame, out: &mut [i16; FRAME_SAMPLES]) {
        let mut wt = [0i16; FRAME_SAMPLES];
        let mut erp = [0i16; 40];
        for j in 0..4 {
            rpe_decoding(frame.xmaxc[j], frame.mc[j], &frame.xmc[j], &mut erp);
            self.long_term_synthesis(frame.nc[j], frame.bc[j], &erp);
            wt[j * 40..j * 40 + 40].copy_from_slice(&self.dp0[120..160]);
        }
        // Decoding of the coded log-area ratios.
        let previous = self.larpp[self.j];
        self.j ^= 1;
        let mut current = [0i16; 8];
        for i in 0..8 {
            let temp1 = ((i32::from(add(frame.larc[i], MIC[i]))) << 10) as i16;
            let temp2 = B[i] << 1;
            let temp1 = mult_r(INVA[i], sub(temp1, temp2));
            current[i] = add(temp1, temp1);
        }
        self.larpp[self.j] = current;
        let interpolations: [Interpolation; 4] = [
            (0, 13, |old, new| add(add(old >> 2, new >> 2), old >> 1)),
            (13, 27, |old, new| add(old >> 1, new >> 1)),
            (27, 40, |old, new| add(add(old >> 2, new >> 2), new >> 1)),
            (40, 160, |_, new| new),
        ];
        for (start, end, interpolate) in interpolations {
            let mut rp = [0i16; 8];
            for i in 0..8 {
                rp[i] = lar_to_rp(interpolate(previous[i], current[i]));
            }
            self.short_term_synthesis(&rp, &wt[start..end], &mut out[start..end]);
        }
        // De-emphasis, upscaling and truncation.
        for sample in out.iter_mut() {
            let tmp = mult_r(self.msr, 28180);
            self.msr = add(*sample, tmp);
            *sample = (add(self.msr, self.msr) as u16 & 0xfff8) as i16;
        }
    }
}

fn lar_to_rp(lar: i16) -> i16 {
    let magnitude = |temp: i16| {
        if temp < 11059 {
            temp << 1
        } else if temp < 20070 {
            temp + 11059
        } else {
            add(temp >> 2, 26112)
        }
    };
    if lar < 0 {
        let temp = if lar == MIN_WORD { MAX_WORD } else { -lar };
        -magnitude(temp)
    } else {
        magnitude(lar)
    }
}

/// A Microsoft GSM WAV file, decoded one block at a time.
pub struct GsmWav {
    data: std::sync::Arc<[u8]>,
    start: usize,
    end: usize,
    position: usize,
    state: GsmState,
    /// The file's sample rate (8000 Hz in practice).
    pub sample_rate: u32,
    samples: Vec<f32>,
}

fn le16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([*bytes.get(at)?, *bytes.get(at + 1)?, *bytes.get(at + 2)?, *bytes.get(at + 3)?]))
}

impl GsmWav {
    /// `Some` when `bytes` is a RIFF/WAVE file whose format is GSM 6.10.
    pub fn open(bytes: std::sync::Arc<[u8]>) -> Option<Result<Self, MediaError>> {
        if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
            return None;
        }
        let (mut at, mut format, mut data) = (12usize, None, None);
        while let (Some(id), Some(size)) = (bytes.get(at..at + 4), le32(&bytes, at + 4)) {
            let body = at + 8;
            let size = size as usize;
            match id {
                b"fmt " => format = Some((le16(&bytes, body)?, le16(&bytes, body + 2)?, le32(&bytes, body + 4)?)),
                b"data" => data = Some((body, (body + size).min(bytes.len()))),
                _ => {}
            }
            at = body + size + (size & 1);
        }
        let (tag, channels, sample_rate) = format?;
        if tag != WAVE_FORMAT_GSM610 {
            return None;
        }
        if channels != 1 {
            return Some(Err(MediaError::Unsupported(format!("GSM 6.10 with {channels} channels"))));
        }
        let Some((start, end)) = data else {
            return Some(Err(MediaError::Corrupt("a GSM WAV file without a data chunk".into())));
        };
        Some(Ok(Self {
            data: bytes,
            start,
            end,
            position: start,
            state: GsmState::default(),
            sample_rate,
            samples: Vec::new(),
        }))
    }

    /// Frames in the file.
    pub fn frames(&self) -> u64 {
        ((self.end - self.start) / BLOCK_BYTES * 2 * FRAME_SAMPLES) as u64
    }

    /// The next block's 320 samples (full scale ±1.0), `None` at the end (a
    /// trailing partial block is ignored, as other decoders do).
    pub fn next_block(&mut self) -> Option<&[f32]> {
        if self.position + BLOCK_BYTES > self.end {
            return None;
        }
        let block = &self.data[self.position..self.position + BLOCK_BYTES];
        self.position += BLOCK_BYTES;
        let mut bits = Bits { bytes: block, position: 0 };
        self.samples.clear();
        for _ in 0..2 {
            let frame = bits.frame();
            let mut out = [0i16; FRAME_SAMPLES];
            self.state.decode_frame(&frame, &mut out);
            self.samples.extend(out.iter().map(|s| f32::from(*s) / 32768.0));
        }
        Some(&self.samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_like_the_reference() {
        assert_eq!(add(32000, 1000), MAX_WORD);
        assert_eq!(sub(-32000, 1000), MIN_WORD);
        assert_eq!(mult_r(MIN_WORD, MIN_WORD), MAX_WORD);
        assert_eq!(mult_r(16384, 16384), 8192);
        assert_eq!(asr(-1, 20), -1);
        assert_eq!(asl(1, 3), 8);
        assert_eq!(asl(16, -2), 4);
        assert_eq!(lar_to_rp(MIN_WORD), -add(MAX_WORD >> 2, 26112));
    }

    #[test]
    fn fields_are_read_least_significant_bit_first() {
        let mut bits = Bits { bytes: &[0b1010_1101, 0b0000_0011], position: 0 };
        assert_eq!(bits.take(6), 0b10_1101);
        assert_eq!(bits.take(4), 0b1110);
    }

    #[test]
    fn non_gsm_wavs_are_left_to_symphonia() {
        let pcm = crate::encode::wav_pcm16(&[0.0; 10], 8000);
        assert!(GsmWav::open(pcm.into()).is_none());
        assert!(GsmWav::open(b"not a wav".to_vec().into()).is_none());
    }
}
