//! The audio of the test corpora: every recording probed, decoded and resampled
//! (next to ffmpeg's decoding of the same file), every integrity pair the vCons
//! carry checked both ways, the inline bodies located, and a GSM 6.10 WAV decoded
//! by the host's own decoder exactly as ffmpeg decodes it.
//!
//! Each check runs on the project's corpus (`tests/fixtures`: speech from
//! espeak-ng encoded by ffmpeg and sox) and, when `CONSERVER_REAL_VCONS` names it,
//! on the public real corpus (the spec's examples and conserver datasets).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use conserver_media::{Bounds, MediaError, MediaLocation, locate, probe, verify};

/// What one corpus offers the audio checks, by file name under its directories.
struct AudioCorpus {
    name: &'static str,
    /// Where the recordings are.
    audio: PathBuf,
    /// Where the vCons are.
    vcons: PathBuf,
    /// (file, rate, channels) as ffprobe reports them.
    mp3s: Vec<(&'static str, u32, u16)>,
    /// (vCon, recording, the integrity field its first dialog carries).
    pairs: Vec<(&'static str, &'static str, &'static str)>,
    /// A GSM 6.10 WAV and the vCons carrying it inline with encoding base64url.
    gsm: (&'static str, Vec<&'static str>),
    /// A vCon whose first dialog is standard base64 without `encoding`, and the
    /// recording it holds when the corpus has it as a file.
    base64_without_encoding: (&'static str, Option<&'static str>),
    /// A vCon whose first dialog is an external recording, and the url's ending.
    url_recording: (&'static str, &'static str),
}

fn project() -> AudioCorpus {
    AudioCorpus {
        name: "project",
        audio: conserver_fixtures::audio_dir(),
        vcons: conserver_fixtures::vcons_dir(),
        mp3s: vec![("call.mp3", 8_000, 1), ("greeting.mp3", 24_000, 1), ("followup.mp3", 24_000, 1)],
        pairs: vec![
            (conserver_fixtures::CALL, "call.mp3", "content_hash"),
            ("unversioned/dataset_unpadded_signature.vcon.json", "greeting.mp3", "signature"),
            ("v0.0.1/padded_signature.vcon.json", "followup.mp3", "signature"),
            ("v0.0.1/call_signature.vcon.json", "call_gsm.wav", "signature"),
            ("v0.0.1/conserver_legacy.vcon.json", "greeting.mp3", "signature"),
        ],
        gsm: ("call_gsm.wav", vec![conserver_fixtures::CALL_INLINE, "v0.0.1/uuidless_inline.vcon.json"]),
        base64_without_encoding: ("unversioned/inline_base64_no_encoding.vcon.json", Some("followup.mp3")),
        url_recording: (conserver_fixtures::CALL, "call.mp3"),
    }
}

fn real() -> Option<AudioCorpus> {
    let corpus = conserver_fixtures::real_corpus()?;
    Some(AudioCorpus {
        name: "real",
        audio: corpus.vcons.clone(),
        vcons: corpus.vcons,
        mp3s: vec![
            ("05cec3d4-0561-4010-9fb8-23cc7edef146.mp3", 24_000, 1),
            ("ab_call.mp3", 8_000, 1),
            ("ed6e1610-6208-457b-a65f-549e84173730.mp3", 24_000, 1),
        ],
        pairs: vec![
            ("ab_call_ext_rec.vcon", "ab_call.mp3", "content_hash"),
            ("05cec3d4-0561-4010-9fb8-23cc7edef146.vcon.json", "05cec3d4-0561-4010-9fb8-23cc7edef146.mp3", "signature"),
            ("ed6e1610-6208-457b-a65f-549e84173730.vcon.json", "ed6e1610-6208-457b-a65f-549e84173730.mp3", "signature"),
            ("spec-0.0.1/ab_call_ext_rec.vcon", "spec-0.0.1/ab_call.wav", "signature"),
        ],
        gsm: ("spec-0.0.1/ab_call.wav", vec!["ab_call_int_rec.vcon", "the_first.vcon"]),
        base64_without_encoding: ("inline-recording-output.vcon.json", None),
        url_recording: ("ab_call_ext_rec.vcon", "ab_call.mp3"),
    })
}

fn corpora() -> Vec<AudioCorpus> {
    std::iter::once(project()).chain(real()).collect()
}

impl AudioCorpus {
    fn recording(&self, name: &str) -> PathBuf {
        self.audio.join(name)
    }
    fn first_dialog(&self, vcon: &str) -> serde_json::Map<String, serde_json::Value> {
        vcon_at(&self.vcons.join(vcon))["dialog"][0].as_object().unwrap().clone()
    }
}

#[test]
fn every_mp3_probes_decodes_and_resamples_as_ffmpeg_does() {
    for corpus in corpora() {
        for (name, rate, channels) in &corpus.mp3s {
            let path = corpus.recording(name);
            let label = format!("{} corpus, {name}", corpus.name);
            let info = probe(bytes_of(&path), Some("mp3"), &Bounds::unbounded()).unwrap();
            assert_eq!((info.format.as_str(), info.codec.as_str()), ("mp3", "mp3"), "{label}");
            assert_eq!((info.sample_rate, info.channels), (*rate, *channels), "{label}");

            let ours = decode_16k(bytes_of(&path), Some("mp3"));
            let theirs = ffmpeg_16k_mono(&path);
            let seconds = |n: usize| n as f64 / 16_000.0;
            // Encoder delay and padding removed, as ffmpeg does (ffprobe's container
            // duration includes the padding).
            assert!(
                (info.duration_secs - seconds(theirs.len())).abs() < 0.01,
                "{label}: {} s vs ffmpeg's {}",
                info.duration_secs,
                seconds(theirs.len())
            );
            assert!(
                (seconds(ours.len()) - seconds(theirs.len())).abs() < 0.1,
                "{label}: {} vs {} s",
                seconds(ours.len()),
                seconds(theirs.len())
            );
            let ratio = rms(&ours) / rms(&theirs);
            assert!((ratio - 1.0).abs() < 0.05, "{label}: level {ratio} of ffmpeg's");
        }
    }
}

#[test]
fn the_integrity_pairs_verify_and_crossed_pairs_do_not() {
    for corpus in corpora() {
        let pairs: Vec<_> =
            corpus.pairs.iter().map(|(vcon, file, field)| (corpus.first_dialog(vcon), *file, *field)).collect();
        for (dialog, file, _) in &pairs {
            assert_eq!(verify(dialog, 0, &bytes_of(&corpus.recording(file))), Ok(()), "{} corpus, {file}", corpus.name);
        }
        for (i, (dialog, file, field)) in pairs.iter().enumerate() {
            let other = pairs[(i + 1) % pairs.len()].1;
            assert_ne!(*file, other, "a crossed pair needs two recordings");
            match verify(dialog, 0, &bytes_of(&corpus.recording(other))) {
                Err(MediaError::Integrity { field: found, .. }) => assert_eq!(found, *field),
                result => panic!("{} corpus: {other} against the hash of {file}: {result:?}", corpus.name),
            }
        }
    }
}

#[test]
fn inline_bodies_decode_by_their_encoding() {
    for corpus in corpora() {
        let (gsm, carriers) = &corpus.gsm;
        let wav = bytes_of(&corpus.recording(gsm));
        for name in carriers {
            let dialog = corpus.first_dialog(name);
            assert_eq!(
                locate(&dialog, 0),
                Ok(MediaLocation::Inline(wav.to_vec())),
                "{} corpus, {name}: base64url body",
                corpus.name
            );
        }
        // No `encoding`, standard base64 of an MP3.
        let (name, file) = corpus.base64_without_encoding;
        let dialog = corpus.first_dialog(name);
        let MediaLocation::Inline(mp3) = locate(&dialog, 0).unwrap() else {
            panic!("{} corpus, {name}: expected an inline body", corpus.name)
        };
        if let Some(file) = file {
            assert_eq!(mp3, bytes_of(&corpus.recording(file)).to_vec(), "{} corpus, {name}", corpus.name);
        }
        let info = probe(mp3.into(), None, &Bounds::unbounded()).unwrap();
        assert_eq!(info.codec, "mp3");
        let said = dialog["duration"].as_f64().unwrap();
        assert!((info.duration_secs - said).abs() < 0.2, "{name}: the dialog says {said} s: {}", info.duration_secs);
        // An external recording is located by its url (fetched by the runtime).
        let (name, ending) = corpus.url_recording;
        let dialog = corpus.first_dialog(name);
        assert!(matches!(locate(&dialog, 0), Ok(MediaLocation::Url(url)) if url.ends_with(ending)), "{name}");
    }
}

fn gsm_decodes_as_ffmpeg_does(path: &Path, seconds: f64) {
    let info = probe(bytes_of(path), Some("wav"), &Bounds::unbounded()).unwrap();
    assert_eq!(
        (info.format.as_str(), info.codec.as_str(), info.sample_rate, info.channels),
        ("wav", "gsm_ms", 8000, 1),
        "{}",
        path.display()
    );
    assert!((info.duration_secs - seconds).abs() < 0.05, "{}: {}", path.display(), info.duration_secs);
    let mut decoder = conserver_media::Decoder::open(bytes_of(path), None).unwrap();
    let mut ours = Vec::new();
    while let Some(block) = decoder.next_block().unwrap() {
        ours.extend(block.samples.iter().map(|s| (s * 32768.0) as i16));
    }
    let theirs = ffmpeg_s16(path);
    assert_eq!(ours.len(), theirs.len(), "{}", path.display());
    let differing = ours.iter().zip(&theirs).filter(|(a, b)| a != b).count();
    assert_eq!(differing, 0, "{}: samples that differ from ffmpeg's", path.display());
    assert!(rms(&decode_16k(bytes_of(path), None)) > 0.01, "{}: speech, not silence", path.display());
}

#[test]
fn the_gsm_wav_decodes_sample_for_sample_as_ffmpeg_does() {
    // GSM 6.10 in WAV (sox's encoding of the project's call; the spec's 0.0.1
    // example recording in the real corpus): decoded by the host's own decoder,
    // bit-exact with ffmpeg's.
    for corpus in corpora() {
        let path = corpus.recording(corpus.gsm.0);
        let seconds = ffprobe_duration(&path);
        gsm_decodes_as_ffmpeg_does(&path, seconds);
    }
}
