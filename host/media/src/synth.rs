//! Recordings made in code, for tests of the host's bounds: a FLAC file of
//! digital silence of any length in about 14 bytes per 4096 frames (twelve hours
//! at 8 kHz mono is 1.2 MB), the shape of a "small file, endless audio" attack.
//! Every frame is a constant subframe; the stream is valid FLAC (CRC-8 headers,
//! CRC-16 footers) that ffmpeg and symphonia decode.

/// Frames per FLAC frame.
const BLOCK: u64 = 4096;

/// A 16-bit FLAC of `secs` seconds of silence at `rate` Hz with `channels`
/// channels (1–8). With `announce_length`, STREAMINFO gives the frame count
/// (decoders know the length without decoding); without, it says "unknown".
pub fn silent_flac(rate: u32, channels: u8, secs: u64, announce_length: bool) -> Vec<u8> {
    let channels = channels.clamp(1, 8);
    let total = secs.saturating_mul(u64::from(rate));
    let mut out = b"fLaC".to_vec();
    out.extend_from_slice(&stream_info(rate, channels, total, announce_length));
    let mut written = 0u64;
    let mut number = 0u64;
    while written < total {
        let frames = (total - written).min(BLOCK);
        frame(&mut out, number, frames, rate, channels);
        written += frames;
        number += 1;
    }
    out
}

/// The last-block metadata header and STREAMINFO (34 bytes).
fn stream_info(rate: u32, channels: u8, total: u64, announce_length: bool) -> Vec<u8> {
    let mut block = vec![0x80, 0, 0, 34];
    let block_size = u16::try_from(BLOCK).unwrap_or(u16::MAX).to_be_bytes();
    block.extend_from_slice(&block_size); // min block size
    block.extend_from_slice(&block_size); // max block size
    block.extend_from_slice(&[0; 6]); // min and max frame size: unknown
    let samples = if announce_length { total & 0xf_ffff_ffff } else { 0 };
    // 20 bits rate, 3 bits channels − 1, 5 bits bits per sample − 1, 36 bits samples.
    let packed: u64 = (u64::from(rate & 0xf_ffff) << 44) | (u64::from(channels - 1) << 41) | (15 << 36) | samples;
    block.extend_from_slice(&packed.to_be_bytes());
    block.extend_from_slice(&[0; 16]); // MD5: unknown
    block
}

/// One frame of `frames` silent frames, numbered `number`.
fn frame(out: &mut Vec<u8>, number: u64, frames: u64, rate: u32, channels: u8) {
    let start = out.len();
    let size_code: u8 = if frames == BLOCK { 0b1100 } else { 0b0111 };
    let rate_code: u8 = match rate {
        8000 => 0b0100,
        16_000 => 0b0101,
        22_050 => 0b0110,
        24_000 => 0b0111,
        32_000 => 0b1000,
        44_100 => 0b1001,
        48_000 => 0b1010,
        96_000 => 0b1011,
        _ => 0b0000, // from STREAMINFO
    };
    out.extend_from_slice(&[0xff, 0xf8, (size_code << 4) | rate_code, ((channels - 1) << 4) | 0b1000]);
    utf8_number(out, number);
    if size_code == 0b0111 {
        out.extend_from_slice(&u16::try_from(frames - 1).unwrap_or(u16::MAX).to_be_bytes());
    }
    let header_crc = crc8(&out[start..]);
    out.push(header_crc);
    for _ in 0..channels {
        // Subframe header: CONSTANT, no wasted bits; then the 16-bit value 0.
        out.extend_from_slice(&[0, 0, 0]);
    }
    let footer_crc = crc16(&out[start..]);
    out.extend_from_slice(&footer_crc.to_be_bytes());
}

/// FLAC's "UTF-8" coding of a frame number (up to 31 bits here).
fn utf8_number(out: &mut Vec<u8>, number: u64) {
    let n = number & 0x7fff_ffff;
    if n < 0x80 {
        out.push(n as u8);
        return;
    }
    let continuation = match n {
        0..0x800 => 1,
        0x800..0x1_0000 => 2,
        0x1_0000..0x20_0000 => 3,
        0x20_0000..0x400_0000 => 4,
        _ => 5,
    };
    let lead_marker: u8 = !(0xffu8 >> (continuation + 1));
    out.push(lead_marker | (n >> (6 * continuation)) as u8);
    for i in (0..continuation).rev() {
        out.push(0x80 | ((n >> (6 * i)) & 0x3f) as u8);
    }
}

fn crc8(bytes: &[u8]) -> u8 {
    let mut crc = 0u8;
    for byte in bytes {
        crc ^= byte;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 { (crc << 1) ^ 0x07 } else { crc << 1 };
        }
    }
    crc
}

fn crc16(bytes: &[u8]) -> u16 {
    let mut crc = 0u16;
    for byte in bytes {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x8005 } else { crc << 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{Bounds, Decoder, probe};

    #[test]
    fn the_file_is_tiny_and_decodes_to_its_length_of_silence() {
        let flac = silent_flac(8000, 1, 61, true);
        assert!(flac.len() < 2_000, "{} bytes", flac.len());
        let info = probe(flac.clone().into(), Some("flac"), &Bounds::unbounded()).unwrap();
        assert_eq!((info.codec.as_str(), info.sample_rate, info.channels, info.frames), ("flac", 8000, 1, 488_000));
        let unannounced = silent_flac(16_000, 2, 3, false);
        let mut decoder = Decoder::open(unannounced.into(), None).unwrap();
        assert_eq!(decoder.announced_frames.filter(|f| *f > 0), None);
        let (mut frames, mut loud) = (0u64, 0usize);
        while let Some(block) = decoder.next_block().unwrap() {
            frames += (block.samples.len() / usize::from(block.channels)) as u64;
            loud += block.samples.iter().filter(|s| **s != 0.0).count();
        }
        assert_eq!((frames, loud), (48_000, 0));
    }

    #[test]
    fn frame_numbers_use_flacs_utf8_coding() {
        let coded = |n| {
            let mut out = Vec::new();
            utf8_number(&mut out, n);
            out
        };
        assert_eq!(coded(0x7f), [0x7f]);
        assert_eq!(coded(0x80), [0xc2, 0x80]);
        assert_eq!(coded(0xffff), [0xef, 0xbf, 0xbf]);
        assert_eq!(coded(84_375), [0xf0, 0x94, 0xa6, 0x97]);
    }
}
