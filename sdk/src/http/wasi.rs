//! [`super::Client`] on `wasi:http/outgoing-handler`: build the request, stream the
//! body out, wait for the answer and read it whole, mapping the host's error codes
//! to [`HttpError`].

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingResponse, Method, OutgoingBody, OutgoingRequest, RequestOptions,
    Scheme,
};
use wasip2::io::streams::StreamError;

use super::{HttpError, Request, Response, split_url};

/// Largest chunk written to an output stream in one call (the WASI limit).
const WRITE_CHUNK: usize = 4096;
/// Bytes asked for per read.
const READ_CHUNK: u64 = 64 * 1024;

pub(super) fn send(request: &Request) -> Result<Response, HttpError> {
    let url = request.url.as_str();
    let parts = split_url(url)?;
    let invalid = |what: &str| HttpError::InvalidRequest(format!("{what} for {url}"));
    let mut entries: Vec<(String, Vec<u8>)> =
        request.headers.iter().map(|(name, value)| (name.to_ascii_lowercase(), value.as_bytes().to_vec())).collect();
    // A known length, so servers that cannot read chunked bodies get one they can.
    if !request.body.is_empty() && request.header_value("content-length").is_none() {
        entries.push(("content-length".into(), request.body.len().to_string().into_bytes()));
    }
    let headers = Fields::from_list(&entries).map_err(|e| invalid(&format!("header refused ({e:?})")))?;
    let outgoing = OutgoingRequest::new(headers);
    outgoing.set_method(&method(&request.method)).map_err(|()| invalid("bad method"))?;
    outgoing
        .set_scheme(Some(if parts.https { &Scheme::Https } else { &Scheme::Http }))
        .map_err(|()| invalid("bad scheme"))?;
    outgoing.set_authority(Some(&parts.authority)).map_err(|()| invalid("bad host"))?;
    outgoing.set_path_with_query(Some(&parts.path_and_query)).map_err(|()| invalid("bad path"))?;
    let body = outgoing.body().map_err(|()| invalid("no body"))?;
    let options = RequestOptions::new();
    if let Some(timeout) = request.timeout {
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        // The host may refuse to change its own caps; that is fine.
        let _ = options.set_first_byte_timeout(Some(nanos));
    }
    let future = outgoing_handler::handle(outgoing, Some(options)).map_err(|code| error(url, &code))?;
    write_body(body, &request.body, url)?;
    let response = wait(&future, url)?;
    read(response, url)
}

fn method(name: &str) -> Method {
    match name.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "HEAD" => Method::Head,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_string()),
    }
}

fn write_body(body: OutgoingBody, bytes: &[u8], url: &str) -> Result<(), HttpError> {
    {
        let stream =
            body.write().map_err(|()| HttpError::InvalidRequest(format!("cannot write the body for {url}")))?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream.blocking_write_and_flush(chunk).map_err(|e| stream_error(url, e))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|code| error(url, &code))
}

fn wait(future: &FutureIncomingResponse, url: &str) -> Result<IncomingResponse, HttpError> {
    loop {
        match future.get() {
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(code))) => return Err(error(url, &code)),
            Some(Err(())) => return Err(HttpError::InvalidResponse(format!("answer from {url} already taken"))),
            None => future.subscribe().block(),
        }
    }
}

fn read(response: IncomingResponse, url: &str) -> Result<Response, HttpError> {
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let incoming = response.consume().map_err(|()| HttpError::InvalidResponse(format!("no body from {url}")))?;
    let mut body = Vec::new();
    {
        let stream = incoming.stream().map_err(|()| HttpError::InvalidResponse(format!("no body from {url}")))?;
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(e) => return Err(stream_error(url, e)),
            }
        }
    }
    Ok(Response { status, headers, body })
}

fn stream_error(url: &str, error: StreamError) -> HttpError {
    match error {
        StreamError::Closed => HttpError::Connection(format!("{url}: the connection closed early")),
        StreamError::LastOperationFailed(io) => match wasip2::http::types::http_error_code(&io) {
            Some(code) => self::error(url, &code),
            // wasmtime 48 reports errors inside a response body as text only.
            None => {
                let text = io.to_debug_string();
                let lower = text.to_ascii_lowercase();
                if lower.contains("body size exceeds") {
                    HttpError::TooLarge(url.to_string())
                } else if lower.contains("timeout") || lower.contains("timed out") {
                    HttpError::Timeout(url.to_string())
                } else {
                    HttpError::Connection(format!("{url}: {text}"))
                }
            }
        },
    }
}

fn error(url: &str, code: &ErrorCode) -> HttpError {
    match code {
        ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpProhibited => HttpError::Denied(url.to_string()),
        ErrorCode::ConnectionTimeout | ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            HttpError::Timeout(url.to_string())
        }
        ErrorCode::HttpResponseBodySize(_) => HttpError::TooLarge(url.to_string()),
        ErrorCode::HttpRequestUriInvalid | ErrorCode::HttpRequestMethodInvalid => {
            HttpError::InvalidRequest(format!("{url}: {code:?}"))
        }
        other => HttpError::Connection(format!("{url}: {other:?}")),
    }
}
