//! Decoding under a call's bounds, on hostile recordings made in code (a small
//! FLAC holding hours of silence): a cancelled or late job stops at its next
//! packet instead of decoding on, and a recording longer than the limit is
//! refused, up front when the container announces its length.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use conserver_media::synth::silent_flac;
use conserver_media::{Bounds, ChunkRequest, Chunks, MediaError, SilenceRule, plan_cuts, probe};

const TWELVE_HOURS: u64 = 12 * 3600;

fn at_silences() -> ChunkRequest {
    ChunkRequest { max_chunk_secs: 480, sample_rate: 16_000, silence: Some(SilenceRule::default()) }
}

#[test]
fn a_cancelled_decode_stops_at_its_next_packet() {
    // 12 h of silence in 1.2 MB, length unannounced: only decoding finds the end.
    let flac: Arc<[u8]> = silent_flac(8000, 1, TWELVE_HOURS, false).into();
    assert!(flac.len() < 1_500_000, "{} bytes", flac.len());
    // The length limit only ends the run if cancellation does not (4 h of audio).
    let bounds = Bounds::unbounded().with_max_secs(4 * 3600);
    let job = {
        let (flac, bounds) = (flac.clone(), bounds.clone());
        std::thread::spawn(move || plan_cuts(&flac, Some("flac"), &at_silences(), &bounds))
    };
    let mut polls = 0;
    while bounds.packets() < 10 {
        polls += 1;
        assert!(polls < 6000, "the decoder never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    bounds.cancel();
    let result = job.join().unwrap();
    assert!(matches!(&result, Err(MediaError::Stopped(why)) if why.contains("ended")), "{result:?}");
    let stopped_at = bounds.packets();
    assert!(stopped_at < 4 * 3600 * 8000 / 4096, "it decoded on to the length limit: {stopped_at} packets");
}

#[test]
fn a_job_past_its_deadline_decodes_nothing() {
    let flac: Arc<[u8]> = silent_flac(8000, 1, 600, false).into();
    let late = Bounds::unbounded().with_deadline(Instant::now());
    let planned = plan_cuts(&flac, Some("flac"), &at_silences(), &late);
    assert!(matches!(&planned, Err(MediaError::Stopped(why)) if why.contains("deadline")), "{planned:?}");
    let mut chunks = Chunks::new(flac.clone(), Some("flac"), vec![], 16_000, &late).unwrap();
    assert!(matches!(chunks.next(), Some(Err(MediaError::Stopped(_)))));
    assert!(chunks.next().is_none(), "a stopped reader is finished");
    assert!(matches!(probe(flac, None, &late), Err(MediaError::Stopped(_))), "unannounced: probing decodes");
    assert_eq!(late.packets(), 0);
}

#[test]
fn recordings_longer_than_the_limit_are_refused() {
    let limit = Bounds::unbounded().with_max_secs(60);
    // Announced: refused before a packet is decoded.
    let announced: Arc<[u8]> = silent_flac(8000, 1, TWELVE_HOURS, true).into();
    let refused = plan_cuts(&announced, Some("flac"), &at_silences(), &limit);
    assert_eq!(refused, Err(MediaError::TooLong { limit_secs: 60 }));
    assert!(matches!(Chunks::new(announced.clone(), None, vec![], 16_000, &limit), Err(MediaError::TooLong { .. })));
    assert_eq!(limit.packets(), 0);
    // Probing an announced length decodes nothing and is not refused.
    assert_eq!(probe(announced, None, &limit).unwrap().duration_secs, TWELVE_HOURS as f64);
    // Unannounced: decoding stops at the limit (60 s at 8 kHz is 118 packets of 4096).
    let unannounced: Arc<[u8]> = silent_flac(8000, 1, TWELVE_HOURS, false).into();
    let refused = plan_cuts(&unannounced, Some("flac"), &at_silences(), &limit);
    assert_eq!(refused, Err(MediaError::TooLong { limit_secs: 60 }));
    assert!(limit.packets() <= 120, "{} packets", limit.packets());
    assert!(refused.unwrap_err().to_string().contains("limits.media_decode_secs"));
    // Within the limit all is as before.
    let short: Arc<[u8]> = silent_flac(8000, 1, 59, false).into();
    let (cuts, duration_ms) = plan_cuts(&short, None, &at_silences(), &limit).unwrap();
    assert_eq!((cuts.len(), duration_ms), (0, 59_000));
}
