//! Recordings generated here (espeak-ng speech, sox and ffmpeg conversions; never
//! committed): every format the host promises probes to the right codec and
//! ffmpeg's duration and decodes; silences put at known places are found and the
//! cuts land in them; a corrupt file and an Opus file give clear errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use conserver_media::silence::{Loudness, nonsilent_ranges};
use conserver_media::{Bounds, ChunkRequest, Decoder, MediaError, SilenceRule, chunks, plan_cuts, probe};

fn read(path: &Path) -> Arc<[u8]> {
    std::fs::read(path).unwrap().into()
}

/// Speech: three sentences from espeak-ng.
fn speech(dir: &Path, index: usize, text: &str) -> PathBuf {
    let path = dir.join(format!("speech{index}.wav"));
    tool("espeak-ng", &["-w", path.to_str().unwrap(), text]);
    path
}

/// `a`, then `gap` seconds of digital silence, then `b`… (sox concatenation).
fn with_gaps(dir: &Path, parts: &[&Path], gap: f64) -> PathBuf {
    let silence = dir.join("silence.wav");
    tool(
        "sox",
        &["-n", "-r", "22050", "-c", "1", "-b", "16", silence.to_str().unwrap(), "trim", "0", &gap.to_string()],
    );
    let mut args: Vec<String> = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            args.push(silence.to_str().unwrap().into());
        }
        args.push(part.to_str().unwrap().into());
    }
    let out = dir.join("joined.wav");
    args.push(out.to_str().unwrap().into());
    tool("sox", &args.iter().map(String::as_str).collect::<Vec<_>>());
    out
}

#[test]
fn every_promised_format_probes_and_decodes_like_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let source = speech(dir.path(), 0, "Thank you for calling. Your call is important to us.");
    let stereo = dir.path().join("stereo44.wav");
    tool("sox", &[source.to_str().unwrap(), "-r", "44100", "-c", "2", stereo.to_str().unwrap()]);
    let path = |name: &str| dir.path().join(name);
    let conversions: [(&str, &[&str], &str, u32, u16); 8] = [
        ("pcm.wav", &["-c:a", "pcm_s16le"], "pcm_s16le", 44_100, 2),
        ("pcm24.wav", &["-c:a", "pcm_s24le"], "pcm_s24le", 44_100, 2),
        ("mulaw.wav", &["-c:a", "pcm_mulaw", "-ar", "8000", "-ac", "1"], "pcm_mulaw", 8_000, 1),
        ("alaw.wav", &["-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1"], "pcm_alaw", 8_000, 1),
        ("speech.flac", &["-c:a", "flac"], "flac", 44_100, 2),
        ("speech.ogg", &["-c:a", "libvorbis"], "vorbis", 44_100, 2),
        ("speech.m4a", &["-c:a", "aac"], "aac", 44_100, 2),
        ("speech.mp3", &["-c:a", "libmp3lame"], "mp3", 44_100, 2),
    ];
    for (name, codec_args, codec, rate, channels) in conversions {
        let target = path(name);
        let mut args = vec!["-v", "error", "-y", "-i", stereo.to_str().unwrap()];
        args.extend_from_slice(codec_args);
        args.push(target.to_str().unwrap());
        tool("ffmpeg", &args);
        let extension = name.rsplit('.').next();
        let info = probe(read(&target), extension, &Bounds::unbounded()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((info.codec.as_str(), info.sample_rate, info.channels), (codec, rate, channels), "{name}");
        let theirs = ffmpeg_16k_mono(&target);
        let ours = decode_16k(read(&target), extension);
        let expected = theirs.len() as f64 / 16_000.0;
        // Lossy codecs' priming is handled differently by each decoder; within 50 ms.
        assert!(
            (info.duration_secs - expected).abs() < 0.05,
            "{name}: probed {} s, ffmpeg decodes {expected} s",
            info.duration_secs
        );
        assert!(
            (ours.len() as f64 / 16_000.0 - expected).abs() < 0.05,
            "{name}: decoded {} samples, ffmpeg {}",
            ours.len(),
            theirs.len()
        );
        let ratio = rms(&ours) / rms(&theirs);
        assert!((ratio - 1.0).abs() < 0.05, "{name}: level {ratio} of ffmpeg's");
    }
}

#[test]
fn silences_are_found_where_they_were_put_and_the_cuts_land_in_them() {
    let dir = tempfile::tempdir().unwrap();
    let parts = [
        speech(dir.path(), 1, "Hello, this is the first part of the call."),
        speech(dir.path(), 2, "Now the customer explains the problem in some detail."),
        speech(dir.path(), 3, "And finally the agent says goodbye."),
    ];
    let lengths: Vec<f64> = parts.iter().map(|p| ffprobe_duration(p)).collect();
    let joined = with_gaps(dir.path(), &parts.iter().map(PathBuf::as_path).collect::<Vec<_>>(), 3.0);
    // The inserted silences, in ms.
    let gap1 = (lengths[0] * 1000.0, (lengths[0] + 3.0) * 1000.0);
    let gap2_start = (lengths[0] + 3.0 + lengths[1]) * 1000.0;
    let gap2 = (gap2_start, gap2_start + 3000.0);

    let mut decoder = Decoder::open(read(&joined), Some("wav")).unwrap();
    let mut loudness = Loudness::new(decoder.sample_rate, 1);
    while let Some(block) = decoder.next_block().unwrap() {
        loudness.push(block.samples);
    }
    let len = loudness.len_ms();
    let nonsilent = nonsilent_ranges(&loudness.silent_ranges(SilenceRule::default(), 16), len);
    assert_eq!(nonsilent.len(), 3, "three sentences: {nonsilent:?}");
    // Each found silence covers the inserted one (espeak's own trailing quiet may add to it).
    for ((_, end), (next_start, _), gap) in [(nonsilent[0], nonsilent[1], gap1), (nonsilent[1], nonsilent[2], gap2)] {
        assert!(end as f64 <= gap.0 + 1.0 && next_start as f64 >= gap.1 - 1.0, "{end}..{next_start} vs {gap:?}");
    }

    // Chunks of about the first gap's middle: the cut lands inside the gap.
    let max_secs = ((gap1.0 + gap1.1) / 2000.0).round() as u32;
    let request = ChunkRequest { max_chunk_secs: max_secs, sample_rate: 16_000, silence: Some(SilenceRule::default()) };
    let (cuts, duration) = plan_cuts(&read(&joined), Some("wav"), &request, &Bounds::unbounded()).unwrap();
    assert_eq!(duration, len);
    assert!(!cuts.is_empty());
    assert!((gap1.0..gap1.1).contains(&(cuts[0] as f64)), "cut {} outside the gap {gap1:?}", cuts[0]);
    for cut in &cuts {
        let in_a_gap = [gap1, gap2].iter().any(|g| (g.0..g.1).contains(&(*cut as f64)));
        let at_a_target = cut % (u64::from(max_secs) * 1000) == 0;
        assert!(in_a_gap || at_a_target, "cut {cut} is neither in a silence nor a fallback target");
    }

    // The chunks cover the recording without gaps or overlaps, each at most the maximum.
    let produced: Vec<_> =
        chunks(read(&joined), Some("wav"), &request, &Bounds::unbounded()).unwrap().map(Result::unwrap).collect();
    assert_eq!(produced.len(), cuts.len() + 1);
    let mut expected_start = 0;
    let mut total = 0;
    for (i, chunk) in produced.iter().enumerate() {
        assert_eq!((chunk.index, chunk.start_ms), (i, expected_start));
        let samples = wav_samples(&chunk.wav).len();
        assert!(samples as u64 <= u64::from(max_secs) * 16_000 * 5 / 4, "chunk {i} is {samples} samples");
        expected_start = chunk.end_ms;
        total += samples;
    }
    assert_eq!(expected_start, len, "the last chunk ends at the end");
    assert!((total as f64 / 16.0 - len as f64).abs() <= 2.0, "{total} samples for {len} ms");
}

#[test]
fn fixed_cuts_without_silence_detection() {
    let dir = tempfile::tempdir().unwrap();
    let tone = dir.path().join("tone.wav");
    tool("sox", &["-n", "-r", "8000", "-c", "1", "-b", "16", tone.to_str().unwrap(), "synth", "12", "sine", "440"]);
    let request = ChunkRequest { max_chunk_secs: 5, sample_rate: 16_000, silence: None };
    let spans: Vec<(u64, u64)> = chunks(read(&tone), None, &request, &Bounds::unbounded())
        .unwrap()
        .map(|c| c.map(|c| (c.start_ms, c.end_ms)).unwrap())
        .collect();
    assert_eq!(spans, vec![(0, 5000), (5000, 10_000), (10_000, 12_000)], "links.md §9's time-based example");
}

#[test]
fn corrupt_and_unsupported_files_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let source = speech(dir.path(), 0, "Opus is not decoded here.");
    let opus = dir.path().join("speech.ogg");
    tool("ffmpeg", &["-v", "error", "-y", "-i", source.to_str().unwrap(), "-c:a", "libopus", opus.to_str().unwrap()]);
    let err = probe(read(&opus), Some("ogg"), &Bounds::unbounded()).unwrap_err();
    assert!(matches!(err, MediaError::Unsupported(_)), "opus: {err:?}");

    let garbage: Arc<[u8]> =
        (0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect::<Vec<_>>().into();
    let err = probe(garbage, None, &Bounds::unbounded()).unwrap_err();
    assert!(matches!(err, MediaError::Unsupported(_) | MediaError::Corrupt(_)), "{err:?}");

    // A WAV header that promises more than it holds, then noise: decodes what is there.
    let mut truncated = std::fs::read(&source).unwrap();
    truncated.truncate(truncated.len() / 2);
    let info = probe(truncated.into(), Some("wav"), &Bounds::unbounded());
    assert!(info.is_ok() || matches!(info, Err(MediaError::Corrupt(_))), "{info:?}");

    let request = ChunkRequest { max_chunk_secs: 0, sample_rate: 16_000, silence: None };
    assert!(matches!(
        plan_cuts(&read(&source), None, &request, &Bounds::unbounded()),
        Err(MediaError::InvalidRequest(_))
    ));
    let request = ChunkRequest { max_chunk_secs: 10, sample_rate: 1, silence: None };
    assert!(matches!(
        plan_cuts(&read(&source), None, &request, &Bounds::unbounded()),
        Err(MediaError::InvalidRequest(_))
    ));
}
