//! Timing and memory of the host's media path, for `scripts/bench-media.sh`.
//!
//! * `media_bench decode <file> [repeats]` — decode, downmix and resample to
//!   16 kHz mono, as the chunker does; prints the best wall time of the repeats
//!   and the multiple of real time (one thread).
//! * `media_bench chunk <file> <max_secs>` — the whole chunking path (loudness
//!   pass, silence rule, second pass to 16 kHz WAV chunks, one at a time); prints
//!   the chunk count, the time and the process's peak resident memory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use conserver_media::resample::Resampler;
use conserver_media::{Bounds, ChunkRequest, Decoder, SilenceRule, chunks};

fn extension(path: &str) -> Option<&str> {
    path.rsplit_once('.').map(|(_, ext)| ext)
}

/// Peak resident set size, from /proc (kB).
fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn decode_once(bytes: &Arc<[u8]>, ext: Option<&str>) -> (f64, usize) {
    let mut decoder = Decoder::open(bytes.clone(), ext).unwrap();
    let mut resampler = Resampler::new(decoder.sample_rate, 16_000).unwrap();
    let rate = decoder.sample_rate;
    let (mut mono, mut out, mut frames, mut produced) = (Vec::new(), Vec::new(), 0u64, 0usize);
    while let Some(block) = decoder.next_block().unwrap() {
        let channels = usize::from(block.channels.max(1));
        mono.clear();
        mono.extend(block.samples.chunks(channels).map(|f| f.iter().sum::<f32>() / f.len() as f32));
        frames += mono.len() as u64;
        resampler.push(&mono, &mut out).unwrap();
        produced += out.len();
        out.clear();
    }
    resampler.finish(&mut out).unwrap();
    produced += out.len();
    (frames as f64 / f64::from(rate), produced)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: media_bench decode <file> [repeats] | media_bench chunk <file> <max_secs>";
    let (mode, path) = (args.get(1).expect(usage), args.get(2).expect(usage));
    let bytes: Arc<[u8]> = std::fs::read(path).unwrap().into();
    let ext = extension(path);
    match mode.as_str() {
        "decode" => {
            let repeats: usize = args.get(3).map_or(3, |r| r.parse().unwrap());
            let mut best = f64::MAX;
            let mut audio = 0.0;
            for _ in 0..repeats {
                let started = Instant::now();
                let (secs, produced) = decode_once(&bytes, ext);
                best = best.min(started.elapsed().as_secs_f64());
                audio = secs;
                assert!(produced > 0);
            }
            println!("audio_secs={audio:.1} best_wall_secs={best:.4} x_realtime={:.0}", audio / best);
        }
        "chunk" => {
            let max: u32 = args.get(3).expect(usage).parse().unwrap();
            let request =
                ChunkRequest { max_chunk_secs: max, sample_rate: 16_000, silence: Some(SilenceRule::default()) };
            let started = Instant::now();
            let (mut count, mut wav_bytes) = (0, 0usize);
            for chunk in chunks(bytes.clone(), ext, &request, &Bounds::unbounded()).unwrap() {
                let chunk = chunk.unwrap();
                count += 1;
                wav_bytes += chunk.wav.len();
            }
            let input_mb = bytes.len() as f64 / 1e6;
            println!(
                "chunks={count} wav_mb={:.1} input_mb={input_mb:.1} wall_secs={:.2} peak_rss_mb={:.1}",
                wav_bytes as f64 / 1e6,
                started.elapsed().as_secs_f64(),
                peak_rss_kb() as f64 / 1024.0
            );
        }
        _ => panic!("{usage}"),
    }
}
