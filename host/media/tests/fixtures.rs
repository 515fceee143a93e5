//! The audio of the shared fixtures: every recording probed, decoded and
//! resampled (next to ffmpeg's decoding of the same file), every integrity pair
//! the fixtures carry checked both ways, the inline bodies located, and the GSM
//! WAV of the 0.0.1 examples decoded by the host's GSM 6.10 decoder exactly as
//! ffmpeg decodes it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use conserver_media::{MediaError, MediaLocation, locate, probe, verify};

/// (file, rate, channels) as ffprobe reports them.
const MP3_FIXTURES: [(&str, u32, u16); 3] = [
    ("05cec3d4-0561-4010-9fb8-23cc7edef146.mp3", 24_000, 1),
    ("ab_call.mp3", 8_000, 1),
    ("ed6e1610-6208-457b-a65f-549e84173730.mp3", 24_000, 1),
];

#[test]
fn every_mp3_fixture_probes_decodes_and_resamples_as_ffmpeg_does() {
    for (name, rate, channels) in MP3_FIXTURES {
        let info = probe(fixture_bytes(name), Some("mp3")).unwrap();
        assert_eq!((info.format.as_str(), info.codec.as_str()), ("mp3", "mp3"), "{name}");
        assert_eq!((info.sample_rate, info.channels), (rate, channels), "{name}");

        let ours = decode_16k(fixture_bytes(name), Some("mp3"));
        let theirs = ffmpeg_16k_mono(&fixture_dir().join(name));
        let seconds = |n: usize| n as f64 / 16_000.0;
        // Encoder delay and padding removed, as ffmpeg does (ffprobe's container
        // duration includes the padding).
        assert!(
            (info.duration_secs - seconds(theirs.len())).abs() < 0.01,
            "{name}: {} s vs ffmpeg's {}",
            info.duration_secs,
            seconds(theirs.len())
        );
        assert!(
            (seconds(ours.len()) - seconds(theirs.len())).abs() < 0.1,
            "{name}: {} vs {} s",
            seconds(ours.len()),
            seconds(theirs.len())
        );
        let ratio = rms(&ours) / rms(&theirs);
        assert!((ratio - 1.0).abs() < 0.05, "{name}: level {ratio} of ffmpeg's");
    }
}

#[test]
fn the_integrity_pairs_of_the_fixtures_verify_and_crossed_pairs_do_not() {
    let ab_call = fixture_vcon("ab_call_ext_rec.vcon");
    let pairs = [
        (ab_call["dialog"][0].as_object().unwrap().clone(), "ab_call.mp3", "content_hash"),
        (
            fixture_vcon("05cec3d4-0561-4010-9fb8-23cc7edef146.vcon.json")["dialog"][0].as_object().unwrap().clone(),
            "05cec3d4-0561-4010-9fb8-23cc7edef146.mp3",
            "signature",
        ),
        (
            fixture_vcon("ed6e1610-6208-457b-a65f-549e84173730.vcon.json")["dialog"][0].as_object().unwrap().clone(),
            "ed6e1610-6208-457b-a65f-549e84173730.mp3",
            "signature",
        ),
        (
            fixture_vcon("spec-0.0.1/ab_call_ext_rec.vcon")["dialog"][0].as_object().unwrap().clone(),
            "spec-0.0.1/ab_call.wav",
            "signature",
        ),
    ];
    for (dialog, file, _) in &pairs {
        assert_eq!(verify(dialog, 0, &fixture_bytes(file)), Ok(()), "{file}");
    }
    for (i, (dialog, _, field)) in pairs.iter().enumerate() {
        let other = pairs[(i + 1) % pairs.len()].1;
        match verify(dialog, 0, &fixture_bytes(other)) {
            Err(MediaError::Integrity { field: found, .. }) => assert_eq!(found, *field),
            other_result => panic!("{other} against the hash of {}: {other_result:?}", pairs[i].1),
        }
    }
}

#[test]
fn inline_bodies_decode_by_their_encoding() {
    let wav = fixture_bytes("spec-0.0.1/ab_call.wav");
    for name in ["ab_call_int_rec.vcon", "the_first.vcon"] {
        let vcon = fixture_vcon(name);
        let dialog = vcon["dialog"][0].as_object().unwrap();
        assert_eq!(locate(dialog, 0), Ok(MediaLocation::Inline(wav.to_vec())), "{name}: base64url body");
    }
    // No `encoding`, standard base64 of an MP3.
    let vcon = fixture_vcon("inline-recording-output.vcon.json");
    let MediaLocation::Inline(mp3) = locate(vcon["dialog"][0].as_object().unwrap(), 0).unwrap() else {
        panic!("expected an inline body")
    };
    let info = probe(mp3.into(), None).unwrap();
    assert_eq!(info.codec, "mp3");
    assert!((info.duration_secs - 82.728).abs() < 0.2, "the dialog says 82.728 s: {}", info.duration_secs);
    // An external recording is located by its url (fetched by the runtime).
    let dialog = fixture_vcon("ab_call_ext_rec.vcon")["dialog"][0].as_object().unwrap().clone();
    assert!(matches!(locate(&dialog, 0), Ok(MediaLocation::Url(url)) if url.ends_with("ab_call.mp3")));
}

#[test]
fn the_gsm_wav_decodes_sample_for_sample_as_ffmpeg_does() {
    // GSM 6.10 in WAV (the 0.0.1 examples' recording, also inline in two vCons):
    // decoded by the host's own decoder, bit-exact with ffmpeg's.
    let info = probe(fixture_bytes("spec-0.0.1/ab_call.wav"), Some("wav")).unwrap();
    assert_eq!(
        (info.format.as_str(), info.codec.as_str(), info.sample_rate, info.channels),
        ("wav", "gsm_ms", 8000, 1)
    );
    assert!((info.duration_secs - 4.72).abs() < 0.05, "{}", info.duration_secs);
    let mut decoder = conserver_media::Decoder::open(fixture_bytes("spec-0.0.1/ab_call.wav"), None).unwrap();
    let mut ours = Vec::new();
    while let Some(block) = decoder.next_block().unwrap() {
        ours.extend(block.samples.iter().map(|s| (s * 32768.0) as i16));
    }
    let theirs = ffmpeg_s16(&fixture_dir().join("spec-0.0.1/ab_call.wav"));
    assert_eq!(ours.len(), theirs.len());
    let differing = ours.iter().zip(&theirs).filter(|(a, b)| a != b).count();
    assert_eq!(differing, 0, "samples that differ from ffmpeg's");
    assert!(rms(&decode_16k(fixture_bytes("spec-0.0.1/ab_call.wav"), None)) > 0.01, "speech, not silence");
}
