//! Transcription through the real host with the real `transcribe` and
//! `wtf_transcribe` components and the host's media capability, against local
//! servers speaking each vendor's API (support/vendors.rs): the upload each
//! vendor gets (original bytes, or 16 kHz WAV chunks cut at silences), the URL and
//! inline-body paths, the transcript written, the cache (a second vCon with the
//! same recording makes no call, and `/metrics` counts the hit), a GSM WAV (the
//! spec examples' recording) decoded and cut by the host, and media failures
//! (hash mismatch, corrupt file, a codec the host cannot split, a media host not
//! allowed) dead-lettered with a clear reason while the next vCon
//! completes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::support::vendors::{Vendors, transcript_of};
use crate::support::{Backend, Server, fixture_vcon, unique};

const WAIT: Duration = Duration::from_secs(90);

fn tool(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{program} is needed (`cargo xtask test` installs it): {e}"));
    assert!(status.success(), "{program} {args:?}");
}

/// About 25 s of espeak-ng speech in three parts separated by 3 s silences.
fn long_recording(dir: &Path) -> Vec<u8> {
    let mut parts = Vec::new();
    for (i, text) in [
        "Hello, thank you for calling. This is the first part of a long conversation about a billing problem.",
        "The customer explains that the invoice shows the same charge twice, and asks for a refund of the second one.",
        "The agent apologises, issues the refund, and says goodbye.",
    ]
    .iter()
    .enumerate()
    {
        let path = dir.join(format!("part{i}.wav"));
        tool("espeak-ng", &["-w", path.to_str().unwrap(), text]);
        parts.push(path);
    }
    let silence = dir.join("silence.wav");
    tool("sox", &["-n", "-r", "22050", "-c", "1", "-b", "16", silence.to_str().unwrap(), "trim", "0", "3"]);
    let joined = dir.join("joined.wav");
    let args: Vec<&str> = vec![
        parts[0].to_str().unwrap(),
        silence.to_str().unwrap(),
        parts[1].to_str().unwrap(),
        silence.to_str().unwrap(),
        parts[2].to_str().unwrap(),
        joined.to_str().unwrap(),
    ];
    tool("sox", &args);
    std::fs::read(joined).unwrap()
}

/// A vCon with one recording dialog (fresh uuid).
fn recording_vcon(dialog: Value) -> (String, Value) {
    let uuid = uuid::Uuid::new_v4().to_string();
    let vcon = json!({
        "uuid": uuid, "vcon": "0.4.0", "created_at": "2026-01-02T03:04:05+00:00",
        "parties": [{"tel": "+15551230001"}, {"tel": "+15551230002"}],
        "dialog": [dialog]
    });
    (uuid, vcon)
}

fn inline(bytes: &[u8], filename: &str, mediatype: &str) -> Value {
    json!({"type": "recording", "start": "2026-01-02T03:04:05+00:00", "parties": [0, 1],
           "body": URL_SAFE_NO_PAD.encode(bytes), "encoding": "base64url", "filename": filename, "mediatype": mediatype})
}

fn link(name: &str, module: &str, vendors: &Vendors, options: Value) -> String {
    format!(
        "  {name}:\n    module: {module}\n    limits: {{timeout_ms: 120000, memory_bytes: 536870912}}\n    allowed_outbound_hosts: ['{}']\n    options: {options}",
        vendors.url("")
    )
}

fn chain(name: &str, link: &str, ingress: &str, egress: &str) -> String {
    format!("  {name}:\n    links: [{link}]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]")
}

/// The last analysis of the stored vCon, with its body decoded.
async fn last_analysis(server: &Server, uuid: &str) -> (Value, Value) {
    let (_, stored) = server.get_json(&format!("/api/vcon/{uuid}")).await;
    let analysis = stored["analysis"]
        .as_array()
        .and_then(|a| a.last())
        .cloned()
        .unwrap_or_else(|| panic!("no analysis on {stored}"));
    let body = match &analysis["body"] {
        Value::String(text) => serde_json::from_str(text).unwrap_or(Value::String(text.clone())),
        other => other.clone(),
    };
    (analysis, body)
}

/// Channels, rate and seconds of a mono 16-bit PCM WAV.
fn wav_shape(wav: &[u8]) -> (u16, u32, f64) {
    assert_eq!(&wav[..4], b"RIFF", "a WAV file");
    let channels = u16::from_le_bytes([wav[22], wav[23]]);
    let rate = u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]);
    (channels, rate, (wav.len() - 44) as f64 / 2.0 / f64::from(rate) / f64::from(channels))
}

#[tokio::test]
async fn openai_gets_short_recordings_unchanged_and_long_ones_in_chunks_and_the_cache_saves_a_call() {
    let vendors = Vendors::start().await;
    let call_mp3 = conserver_fixtures::audio("call.mp3");
    vendors.serve("call.mp3", call_mp3.clone());
    let dir = tempfile::tempdir().unwrap();
    let long = long_recording(dir.path());

    let (short_in, long_in, egress) = (unique("tr-short"), unique("tr-long"), unique("tr-out"));
    let options = |max: u32| {
        json!({"vendor": "openai", "vendor_options": {
            "base_url": vendors.url("/v1"), "OPENAI_API_KEY": "sk-test-key", "max_chunk_duration": max
        }})
    };
    let config = [
        "links:".to_string(),
        link("openai_short", "links.transcribe", &vendors, options(480)),
        link(
            "openai_long",
            "links.openai_transcribe",
            &vendors,
            json!({"base_url": vendors.url("/v1"), "OPENAI_API_KEY": "sk-test-key", "max_chunk_duration": 10}),
        ),
        "chains:".into(),
        chain("short", "openai_short", &short_in, &egress),
        chain("long", "openai_long", &long_in, &egress),
    ]
    .join("\n");
    let server = Server::start(Backend::Embedded, &config, &[]).await;

    // A fixture recording by URL, with its content_hash: uploaded as is.
    let mut fixture = fixture_vcon(conserver_fixtures::CALL);
    let uuid = uuid::Uuid::new_v4().to_string();
    fixture["uuid"] = json!(uuid);
    fixture["dialog"][0]["url"] = json!(vendors.url("/media/call.mp3"));
    assert_eq!(server.post_vcon(&fixture, &short_in).await.status(), 201);
    server.wait_for_egress(&egress, &uuid, WAIT).await;
    let uploads = vendors.received("/v1/audio/transcriptions");
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].header("authorization"), Some("Bearer sk-test-key"));
    let file = uploads[0].part("file");
    assert_eq!(file.data, call_mp3, "the original bytes, unchanged");
    assert_eq!(file.filename.as_deref(), Some("call.mp3"));
    assert_eq!(uploads[0].part("model").text(), "gpt-4o-transcribe");
    let (analysis, body) = last_analysis(&server, &uuid).await;
    assert_eq!(
        (analysis["type"].as_str(), analysis["vendor"].as_str(), analysis["dialog"].as_u64()),
        (Some("transcript"), Some("openai"), Some(0))
    );
    assert_eq!(body["text"], transcript_of(&call_mp3));
    let schema = analysis["vendor_schema"]["opts"].to_string();
    assert!(!schema.contains("sk-test-key"), "no key in the vCon: {schema}");

    // The same recording in another vCon: served from the link's cache.
    let mut again = fixture.clone();
    let uuid2 = uuid::Uuid::new_v4().to_string();
    again["uuid"] = json!(uuid2);
    assert_eq!(server.post_vcon(&again, &short_in).await.status(), 201);
    server.wait_for_egress(&egress, &uuid2, WAIT).await;
    assert_eq!(vendors.received("/v1/audio/transcriptions").len(), 1, "no second call for the same recording");
    assert_eq!(last_analysis(&server, &uuid2).await.1["text"], transcript_of(&call_mp3));
    let metrics = server.get_text("/metrics").await;
    assert!(
        metrics.contains("conserver_link_cache_hits_total{link_name=\"openai_short\",chain_name=\"short\"} 1"),
        "{metrics}"
    );

    // 25 s of speech, inline, through the legacy module name, at most 10 s a chunk:
    // WAV chunks cut at the silences, the texts joined.
    let (uuid3, vcon) = recording_vcon(inline(&long, "call.wav", "audio/x-wav"));
    assert_eq!(server.post_vcon(&vcon, &long_in).await.status(), 201);
    server.wait_for_egress(&egress, &uuid3, WAIT).await;
    let chunks: Vec<_> = vendors.received("/v1/audio/transcriptions").into_iter().skip(1).collect();
    assert!(chunks.len() >= 3, "{} chunks for 25 s at 10 s each", chunks.len());
    let mut texts = Vec::new();
    for (n, upload) in chunks.iter().enumerate() {
        let file = upload.part("file");
        assert_eq!(file.filename, Some(format!("call_chunk_{n:03}.wav")));
        let (channels, rate, secs) = wav_shape(&file.data);
        assert_eq!((channels, rate), (1, 16_000), "mono 16 kHz");
        assert!(secs <= 12.5, "chunk {n} is {secs} s");
        texts.push(transcript_of(&file.data));
    }
    let (analysis, body) = last_analysis(&server, &uuid3).await;
    assert_eq!(analysis["vendor"], "openai");
    assert_eq!(body["text"], texts.join(" "));
    assert_eq!(body["chunked_transcription"]["total_chunks"], chunks.len());
    assert_eq!(body["usage"]["input_tokens"], 10 * chunks.len());
}

#[tokio::test]
async fn deepgram_groq_hugging_face_and_vfun_get_what_their_apis_expect() {
    let vendors = Vendors::start().await;
    let call_mp3 = conserver_fixtures::audio("call.mp3");
    vendors.serve("call.mp3", call_mp3.clone());
    let egress = unique("vendors-out");
    let ingress: Vec<String> = ["dg", "groq", "hf", "wtf"].iter().map(|n| unique(n)).collect();
    let config = [
        "links:".to_string(),
        link("dg", "links.deepgram_link", &vendors, json!({"DEEPGRAM_KEY": "dg-key", "api": {"model": "nova-3", "smart_format": true}, "api_url": vendors.url("/v1/listen"), "minimum_duration": 1})),
        link("groq", "links.groq_whisper", &vendors, json!({"API_KEY": "gsk-key", "api_url": vendors.url("/openai/v1/audio/transcriptions"), "minimum_duration": 1})),
        link("hf", "links.hugging_face_whisper", &vendors, json!({"API_KEY": "hf-key", "API_URL": vendors.url("/hf"), "minimum_duration": 1})),
        link("wtf", "links.wtf_transcribe", &vendors, json!({"vfun-server-url": vendors.url("/vfun"), "language": "en", "diarize": true})),
        "chains:".into(),
        chain("dg", "dg", &ingress[0], &egress),
        chain("groq", "groq", &ingress[1], &egress),
        chain("hf", "hf", &ingress[2], &egress),
        chain("wtf", "wtf", &ingress[3], &egress),
    ]
    .join("\n");
    let server = Server::start(Backend::Embedded, &config, &[]).await;
    let by_url = json!({"type": "recording", "url": vendors.url("/media/call.mp3"), "duration": 33.12, "filename": "call.mp3", "mediatype": "audio/mpeg"});
    let by_body = inline(&call_mp3, "call.mp3", "audio/mpeg");

    // Deepgram: a URL is passed through for Deepgram to fetch; an inline body is uploaded.
    let (dg_url, vcon) = recording_vcon(by_url.clone());
    assert_eq!(server.post_vcon(&vcon, &ingress[0]).await.status(), 201);
    server.wait_for_egress(&egress, &dg_url, WAIT).await;
    let (dg_body, vcon) = recording_vcon(by_body.clone());
    assert_eq!(server.post_vcon(&vcon, &ingress[0]).await.status(), 201);
    server.wait_for_egress(&egress, &dg_body, WAIT).await;
    let calls = vendors.received("/v1/listen");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].header("authorization"), Some("Token dg-key"));
    let query = calls[0].query.clone().unwrap_or_default();
    assert!(query.contains("model=nova-3") && query.contains("smart_format=true"), "{query}");
    assert_eq!(
        serde_json::from_slice::<Value>(&calls[0].body).unwrap(),
        json!({"url": vendors.url("/media/call.mp3")})
    );
    assert_eq!(calls[1].body, call_mp3, "the inline recording is uploaded");
    let (analysis, body) = last_analysis(&server, &dg_url).await;
    assert_eq!((analysis["type"].as_str(), analysis["vendor"].as_str()), (Some("transcript"), Some("deepgram")));
    assert_eq!(body["transcript"], format!("fetched {}", vendors.url("/media/call.mp3")));
    assert_eq!(body["detected_language"], "en");
    assert_eq!(last_analysis(&server, &dg_body).await.1["transcript"], transcript_of(&call_mp3));

    // Groq: the recording (here by URL) as a multipart upload named by its real format.
    let (uuid, vcon) = recording_vcon(by_url.clone());
    assert_eq!(server.post_vcon(&vcon, &ingress[1]).await.status(), 201);
    server.wait_for_egress(&egress, &uuid, WAIT).await;
    let groq = vendors.received("/openai/v1/audio/transcriptions");
    assert_eq!(groq.len(), 1);
    assert_eq!(groq[0].header("authorization"), Some("Bearer gsk-key"));
    assert_eq!(groq[0].part("file").data, call_mp3);
    assert!(groq[0].part("file").filename.unwrap_or_default().ends_with(".mp3"));
    assert_eq!(groq[0].part("model").text(), "whisper-large-v3-turbo");
    let (analysis, body) = last_analysis(&server, &uuid).await;
    assert_eq!(analysis["vendor"], "groq_whisper");
    assert_eq!(body["text"], transcript_of(&call_mp3));

    // Hugging Face: the raw bytes (here from an inline body).
    let (uuid, vcon) = recording_vcon(by_body.clone());
    assert_eq!(server.post_vcon(&vcon, &ingress[2]).await.status(), 201);
    server.wait_for_egress(&egress, &uuid, WAIT).await;
    let hf = vendors.received("/hf");
    assert_eq!(hf.len(), 1);
    assert_eq!(hf[0].body, call_mp3);
    assert_eq!(hf[0].header("authorization"), Some("Bearer hf-key"));
    assert_eq!(hf[0].header("content-type"), Some("audio/flac"), "the configured Content-Type, as Python sends");
    assert_eq!(last_analysis(&server, &uuid).await.0["vendor"], "hugging_face_whisper");

    // vfun: multipart `file-binary` with `diarize` and `language`; a WTF analysis.
    let (uuid, vcon) = recording_vcon(by_body);
    assert_eq!(server.post_vcon(&vcon, &ingress[3]).await.status(), 201);
    server.wait_for_egress(&egress, &uuid, WAIT).await;
    let wtf = vendors.received("/vfun");
    assert_eq!(wtf.len(), 1);
    let file = wtf[0].part("file-binary");
    assert_eq!((file.data.as_slice(), file.filename.as_deref()), (call_mp3.as_slice(), Some("call.mp3")));
    assert_eq!((wtf[0].part("diarize").text(), wtf[0].part("language").text()), ("true".to_string(), "en".to_string()));
    let (analysis, body) = last_analysis(&server, &uuid).await;
    assert_eq!(
        (analysis["type"].as_str(), analysis["vendor"].as_str(), analysis["schema"].as_str()),
        (Some("wtf_transcription"), Some("vfun"), Some("wtf-1.0"))
    );
    assert_eq!(body["transcript"]["text"], transcript_of(&call_mp3));
}

#[tokio::test]
async fn media_failures_dead_letter_with_a_clear_reason_and_the_next_vcon_completes() {
    let vendors = Vendors::start().await;
    let call_mp3 = conserver_fixtures::audio("call.mp3");
    let dir = tempfile::tempdir().unwrap();
    let (tone, opus) = (dir.path().join("tone.wav"), dir.path().join("tone.ogg"));
    tool("sox", &["-n", "-r", "16000", "-c", "1", "-b", "16", tone.to_str().unwrap(), "synth", "1.5", "sine", "440"]);
    tool("ffmpeg", &["-v", "error", "-y", "-i", tone.to_str().unwrap(), "-c:a", "libopus", opus.to_str().unwrap()]);
    let (tone, opus) = (std::fs::read(tone).unwrap(), std::fs::read(opus).unwrap());
    vendors.serve("tampered.mp3", [call_mp3.as_slice(), b"tampered"].concat());
    let (ingress, egress) = (unique("trfail-in"), unique("trfail-out"));
    let config = [
        "links:".to_string(),
        link("openai", "links.transcribe", &vendors, json!({"vendor": "openai", "vendor_options": {"base_url": vendors.url("/v1"), "OPENAI_API_KEY": "sk-test", "max_chunk_duration": 2, "minimum_duration": 1}})),
        "chains:".into(),
        chain("main", "openai", &ingress, &egress),
    ]
    .join("\n");
    let server = Server::start(Backend::Embedded, &config, &[]).await;
    let content_hash = fixture_vcon(conserver_fixtures::CALL)["dialog"][0]["content_hash"].clone();
    let garbage: Vec<u8> = (0..40_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    let cases = [
        (
            json!({"type": "recording", "url": vendors.url("/media/tampered.mp3"), "content_hash": content_hash, "duration": 33.12}),
            "content_hash",
        ),
        (
            json!({"type": "recording", "url": "https://media.elsewhere.test/a.mp3", "duration": 33.12}),
            "allowed_outbound_hosts",
        ),
        (
            {
                // Not audio at all: the host says it cannot read it.
                let mut body = inline(&garbage, "noise.mp3", "audio/mpeg");
                body["duration"] = json!(30);
                body
            },
            "media",
        ),
        (
            {
                // Opus, which the host cannot decode, longer than the chunk limit.
                let mut body = inline(&opus, "call.ogg", "audio/ogg");
                body["duration"] = json!(30);
                body
            },
            "cannot be split",
        ),
    ];
    for (dialog, needle) in cases {
        let (uuid, vcon) = recording_vcon(dialog);
        assert_eq!(server.post_vcon(&vcon, &ingress).await.status(), 201);
        let reason = server.wait_for_dlq(&ingress, &uuid, WAIT).await;
        let error = reason["error"].as_str().unwrap();
        assert!(error.contains(needle) && error.contains("dialog 0") && error.contains("openai"), "{needle}: {error}");
        assert_eq!(reason["link"], "openai");
    }
    assert!(vendors.received("/v1/audio/transcriptions").is_empty(), "nothing was sent to the vendor");
    // The next vCon (1.5 s, under the 2 s chunk limit) is transcribed.
    let (uuid, vcon) = recording_vcon(inline(&tone, "tone.wav", "audio/wav"));
    assert_eq!(server.post_vcon(&vcon, &ingress).await.status(), 201);
    server.wait_for_egress(&egress, &uuid, WAIT).await;
    assert_eq!(vendors.received("/v1/audio/transcriptions")[0].part("file").data, tone);

    // An inline GSM 6.10 WAV (the project's call, 5.6 s): decoded by the host and
    // cut into WAV chunks of about 2 s.
    let mut gsm = fixture_vcon(conserver_fixtures::CALL_INLINE);
    let uuid = uuid::Uuid::new_v4().to_string();
    gsm["uuid"] = json!(uuid);
    assert_eq!(server.post_vcon(&gsm, &ingress).await.status(), 201);
    server.wait_for_egress(&egress, &uuid, WAIT).await;
    let chunks: Vec<_> = vendors.received("/v1/audio/transcriptions").into_iter().skip(1).collect();
    let recorded = gsm["dialog"][0]["duration"].as_f64().unwrap();
    assert!(chunks.len() >= 3, "{} chunks for {recorded} s at about 2 s each", chunks.len());
    let mut total = 0.0;
    for upload in &chunks {
        let (channels, rate, secs) = wav_shape(&upload.part("file").data);
        assert_eq!((channels, rate), (1, 16_000));
        assert!(secs <= 2.5, "{secs} s");
        total += secs;
    }
    assert!((total - recorded).abs() < 0.1, "the chunks hold {total} s of {recorded} s");
    assert_eq!(last_analysis(&server, &uuid).await.0["vendor"], "openai");
}

#[tokio::test]
async fn a_call_fetching_recordings_past_its_media_bytes_budget_is_dead_lettered_naming_it() {
    let vendors = Vendors::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tone = dir.path().join("tone.wav");
    tool("sox", &["-n", "-r", "16000", "-c", "1", "-b", "16", tone.to_str().unwrap(), "synth", "1.5", "sine", "440"]);
    let tone = std::fs::read(tone).unwrap();
    let (ingress, egress) = (unique("trbytes-in"), unique("trbytes-out"));
    // Room for one recording of the two: the second `media` request breaks it.
    let budget = tone.len() * 3 / 2;
    let config = [
        "links:".to_string(),
        link("openai", "links.transcribe", &vendors, json!({"vendor": "openai", "vendor_options": {"base_url": vendors.url("/v1"), "OPENAI_API_KEY": "sk-test", "minimum_duration": 1}}))
            .replace("memory_bytes: 536870912}", &format!("memory_bytes: 536870912, media_bytes: {budget}}}")),
        "chains:".into(),
        chain("main", "openai", &ingress, &egress),
    ]
    .join("\n");
    let server = Server::start(Backend::Embedded, &config, &[]).await;
    let (uuid, mut vcon) = recording_vcon(inline(&tone, "a.wav", "audio/wav"));
    vcon["dialog"].as_array_mut().unwrap().push(inline(&tone, "b.wav", "audio/wav"));
    assert_eq!(server.post_vcon(&vcon, &ingress).await.status(), 201);
    let reason = server.wait_for_dlq(&ingress, &uuid, WAIT).await;
    let error = reason["error"].as_str().unwrap();
    assert!(error.contains("media_bytes") && error.contains(&budget.to_string()), "{error}");
    let metrics = server.get_text("/metrics").await;
    assert!(metrics.contains(r#"kind="media_bytes""#), "the breach is counted: {metrics}");
}
