//! File helpers and the external tools (sox, espeak-ng, ffmpeg/ffprobe, from
//! Debian; `cargo xtask test` installs them) the media tests use to generate
//! recordings and to compare with.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use serde_json::{Map, Value};

/// The bytes of a file.
pub fn bytes_of(path: &Path) -> Arc<[u8]> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())).into()
}

/// A vCon file, parsed.
pub fn vcon_at(path: &Path) -> Map<String, Value> {
    serde_json::from_slice(&bytes_of(path)).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Run a tool, failing the test with its output when it fails.
pub fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed by this test (`cargo xtask test` installs it): {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// ffprobe's duration of a file, in seconds.
pub fn ffprobe_duration(path: &Path) -> f64 {
    let text =
        tool("ffprobe", &["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path.to_str().unwrap()]);
    text.trim().parse().unwrap_or_else(|_| panic!("ffprobe said {text:?}"))
}

/// ffmpeg's decoding of `path` to 16 kHz mono, as f32 samples. Stereo is
/// downmixed to the mean of the channels, as the host does (ffmpeg's own `-ac 1`
/// scales by 1/√2 per channel instead).
pub fn ffmpeg_16k_mono(path: &Path) -> Vec<f32> {
    let channels =
        tool("ffprobe", &["-v", "error", "-show_entries", "stream=channels", "-of", "csv=p=0", path.to_str().unwrap()]);
    let mix = if channels.trim() == "2" { "pan=mono|c0=0.5*c0+0.5*c1," } else { "" };
    let filter = format!("{mix}aresample=16000");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i", path.to_str().unwrap(), "-af", &filter, "-ac", "1", "-f", "f32le", "-"])
        .output()
        .expect("ffmpeg is needed by this test (`cargo xtask test` installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// ffmpeg's decoding of `path` at its own rate and channels, as 16-bit samples.
pub fn ffmpeg_s16(path: &Path) -> Vec<i16> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i", path.to_str().unwrap(), "-f", "s16le", "-"])
        .output()
        .expect("ffmpeg is needed by this test (`cargo xtask test` installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

/// The samples of a mono 16-bit WAV the host produced.
pub fn wav_samples(wav: &[u8]) -> Vec<f32> {
    assert_eq!(&wav[..4], b"RIFF");
    wav[44..].chunks_exact(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0).collect()
}

pub fn rms(samples: &[f32]) -> f64 {
    (samples.iter().map(|s| f64::from(*s) * f64::from(*s)).sum::<f64>() / samples.len().max(1) as f64).sqrt()
}

/// Every chunk of `bytes` at 16 kHz, joined.
pub fn decode_16k(bytes: Arc<[u8]>, extension: Option<&str>) -> Vec<f32> {
    let request = conserver_media::ChunkRequest { max_chunk_secs: 3600, sample_rate: 16_000, silence: None };
    let mut samples = Vec::new();
    for chunk in conserver_media::chunks(bytes, extension, &request, &conserver_media::Bounds::unbounded()).unwrap() {
        samples.extend(wav_samples(&chunk.unwrap().wav));
    }
    samples
}
