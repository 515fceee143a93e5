//! The link end to end against recorded HTTP and fake media.

mod deepgram;
mod dispatch;
mod groq;
mod hugging_face;
mod openai;

pub(crate) use super::*;
pub(crate) use conserver_link_sdk::http::multipart::{self, Part};
pub(crate) use conserver_link_sdk::http::{HttpError, Recorder, Request, Response};
pub(crate) use conserver_link_sdk::media::{Chunk, ChunkRequest, FakeMedia, Media, MediaError, ProbeInfo};
pub(crate) use conserver_link_sdk::python_json::dumps;
pub(crate) use conserver_llm::testing::grant_secrets;
pub(crate) use serde_json::json;

/// A context for link `transcribe` with `options`, vCon uuid `uuid-1`, no secrets.
pub(crate) fn ctx(options: Value) -> Context {
    conserver_llm::testing::context("transcribe", options)
}

/// The vCon `{uuid: "uuid-1", dialog}`.
pub(crate) fn vcon_with(dialog: Value) -> Vcon {
    Vcon::from_json(&json!({"uuid": "uuid-1", "dialog": dialog}).to_string()).unwrap()
}

/// A transport answering request `n` with `answers[n]` (then a connection error).
pub(crate) fn scripted(
    answers: Vec<Result<Response, HttpError>>,
) -> Recorder<impl Fn(&Request, usize) -> Result<Response, HttpError>> {
    Recorder::new(move |_: &Request, n: usize| {
        answers.get(n).cloned().unwrap_or_else(|| Err(HttpError::Connection("no more scripted answers".into())))
    })
}

/// A 200 answer with this JSON body.
pub(crate) fn ok(body: Value) -> Result<Response, HttpError> {
    Ok(Response::new(200, body.to_string()))
}

/// An answer with this status and body.
pub(crate) fn status(code: u16, body: &str) -> Result<Response, HttpError> {
    Ok(Response::new(code, body))
}

/// Media for dialog `index`.
pub(crate) fn with_audio(
    media: &mut FakeMedia,
    index: u32,
    bytes: &[u8],
    mediatype: Option<&str>,
    filename: Option<&str>,
) {
    media.media.insert(
        index,
        Ok(Media {
            bytes: bytes.to_vec(),
            mediatype: mediatype.map(String::from),
            filename: filename.map(String::from),
        }),
    );
}

/// A probe answer for dialog `index`.
pub(crate) fn with_probe(media: &mut FakeMedia, index: u32, format: &str, secs: f64) {
    media.probes.insert(
        index,
        Ok(ProbeInfo {
            format: format.into(),
            codec: format.into(),
            sample_rate: 44_100,
            channels: 2,
            duration_secs: secs,
            size_bytes: 1000,
        }),
    );
}

/// The multipart parts of a request.
pub(crate) fn parts(request: &Request) -> Vec<Part> {
    multipart::parse(request.header_value("content-type").unwrap(), &request.body).unwrap()
}

/// A text part.
pub(crate) fn text_part(name: &str, value: &str) -> Part {
    Part { name: name.into(), filename: None, content_type: None, data: value.as_bytes().to_vec() }
}

/// A file part.
pub(crate) fn file_part(name: &str, filename: &str, content_type: &str, data: &[u8]) -> Part {
    Part {
        name: name.into(),
        filename: Some(filename.into()),
        content_type: Some(content_type.into()),
        data: data.to_vec(),
    }
}

/// The whole vCon the link returned.
pub(crate) fn written(verdict: &Verdict) -> Value {
    Value::Object(verdict.vcon().expect("the vCon was changed").to_map())
}

/// The request's headers other than `content-type` (whose boundary varies).
pub(crate) fn headers_but_type(request: &Request) -> Vec<(String, String)> {
    request.headers.iter().filter(|(n, _)| !n.eq_ignore_ascii_case("content-type")).cloned().collect()
}

/// The pair `(name, value)` as owned strings.
pub(crate) fn header(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}
