//! `multipart/form-data` bodies (RFC 7578): text fields and file parts, for APIs
//! that take uploads (speech-to-text services, …).
//!
//! ```ignore
//! use conserver_link_sdk::http::Request;
//! use conserver_link_sdk::http::multipart::Multipart;
//!
//! let form = Multipart::new().text("model", "whisper-1").file("file", "call.mp3", "audio/mpeg", bytes);
//! let request = Request::post("https://api.example.com/v1/audio/transcriptions").multipart(&form);
//! ```
//!
//! The boundary is not random: it is derived from a hash of the parts, and a
//! candidate that occurs anywhere in a part is replaced by the next one, so it can
//! never collide with the content and the same form always gives the same bytes
//! (which keeps unit tests exact). Field names and file names are written in
//! double quotes with `"`, CR and LF percent-encoded, as browsers do.
//!
//! [`parse`] reads such a body back (unit tests use it to check what a link
//! uploaded).

use super::{HttpError, Request};

/// One part of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The field name.
    pub name: String,
    /// The file name, for a file part.
    pub filename: Option<String>,
    /// The part's `Content-Type`, if given.
    pub content_type: Option<String>,
    /// The content.
    pub data: Vec<u8>,
}

impl Part {
    /// The content as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// A `multipart/form-data` form, built part by part (parts keep their order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Multipart {
    parts: Vec<Part>,
}

impl Multipart {
    /// An empty form.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a text field.
    #[must_use]
    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.parts.push(Part {
            name: name.to_string(),
            filename: None,
            content_type: None,
            data: value.as_bytes().to_vec(),
        });
        self
    }

    /// Add a file part with its file name and content type.
    #[must_use]
    pub fn file(mut self, name: &str, filename: &str, content_type: &str, data: impl Into<Vec<u8>>) -> Self {
        self.parts.push(Part {
            name: name.to_string(),
            filename: Some(filename.to_string()),
            content_type: Some(content_type.to_string()),
            data: data.into(),
        });
        self
    }

    /// The parts, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The boundary: `conserver-` and 32 hex digits hashed from the parts, the
    /// first such candidate that occurs in no part.
    pub fn boundary(&self) -> String {
        self.first_absent(|salt| {
            format!("conserver-{:016x}{:016x}", self.hash(salt, FNV_OFFSET_A), self.hash(salt, FNV_OFFSET_B))
        })
    }

    /// The first of `candidate(0)`, `candidate(1)`, … that occurs in no part.
    fn first_absent(&self, candidate: impl Fn(u64) -> String) -> String {
        let mut salt = 0u64;
        loop {
            let text = candidate(salt);
            if !self.parts.iter().any(|part| part.contains(text.as_bytes())) {
                return text;
            }
            salt += 1;
        }
    }

    /// The `Content-Type` header value: `multipart/form-data; boundary=…`.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary())
    }

    /// The encoded body.
    pub fn body(&self) -> Vec<u8> {
        self.encode_with(&self.boundary())
    }

    /// The `Content-Type` header value and the body, computing the boundary once.
    pub fn encode(&self) -> (String, Vec<u8>) {
        let boundary = self.boundary();
        (format!("multipart/form-data; boundary={boundary}"), self.encode_with(&boundary))
    }

    fn encode_with(&self, boundary: &str) -> Vec<u8> {
        let size: usize = self.parts.iter().map(|p| p.data.len() + p.name.len() + 160).sum();
        let mut out = Vec::with_capacity(size + boundary.len() + 8);
        for part in &self.parts {
            out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", escape(&part.name));
            if let Some(filename) = &part.filename {
                disposition.push_str(&format!("; filename=\"{}\"", escape(filename)));
            }
            out.extend_from_slice(disposition.as_bytes());
            out.extend_from_slice(b"\r\n");
            if let Some(content_type) = &part.content_type {
                let clean: String = content_type.chars().filter(|c| *c != '\r' && *c != '\n').collect();
                out.extend_from_slice(format!("Content-Type: {clean}\r\n").as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&part.data);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        out
    }

    /// FNV-1a over every part (name, file name, type, data, each length-prefixed)
    /// and `salt`.
    fn hash(&self, salt: u64, offset: u64) -> u64 {
        let mut hash = offset;
        let mut feed = |bytes: &[u8]| {
            for byte in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
                hash ^= u64::from(*byte);
                hash = hash.wrapping_mul(FNV_PRIME);
            }
        };
        feed(&salt.to_le_bytes());
        for part in &self.parts {
            feed(part.name.as_bytes());
            feed(part.filename.as_deref().unwrap_or_default().as_bytes());
            feed(part.content_type.as_deref().unwrap_or_default().as_bytes());
            feed(&part.data);
        }
        hash
    }
}

const FNV_OFFSET_A: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_OFFSET_B: u64 = 0x6c62_272e_07bb_0142;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Part {
    /// Whether `needle` occurs in the part's name, file name, type or data.
    fn contains(&self, needle: &[u8]) -> bool {
        let found = |haystack: &[u8]| haystack.windows(needle.len()).any(|w| w == needle);
        found(&self.data)
            || found(self.name.as_bytes())
            || self.filename.as_deref().is_some_and(|f| found(f.as_bytes()))
            || self.content_type.as_deref().is_some_and(|t| found(t.as_bytes()))
    }
}

/// A field or file name as written between double quotes.
fn escape(text: &str) -> String {
    text.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A")
}

fn unescape(text: &str) -> String {
    text.replace("%22", "\"").replace("%0D", "\r").replace("%0A", "\n")
}

impl Request {
    /// Set `form` as the body, with its `Content-Type` header.
    #[must_use]
    pub fn multipart(mut self, form: &Multipart) -> Self {
        let (content_type, body) = form.encode();
        self.body = body;
        self.header("content-type", &content_type)
    }
}

/// Read a `multipart/form-data` body whose `Content-Type` header is
/// `content_type`.
pub fn parse(content_type: &str, body: &[u8]) -> Result<Vec<Part>, HttpError> {
    let invalid = |what: &str| HttpError::InvalidResponse(format!("not a multipart/form-data body: {what}"));
    let (kind, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Err(invalid("the content type is not multipart/form-data"));
    }
    let boundary = params
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty())
        .ok_or_else(|| invalid("no boundary"))?;
    let first = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    let mut rest = body.strip_prefix(first.as_bytes()).ok_or_else(|| invalid("it does not start with the boundary"))?;
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        rest = rest.strip_prefix(b"\r\n").ok_or_else(|| invalid("no line break after a boundary"))?;
        let end_of_headers = find(rest, b"\r\n\r\n").ok_or_else(|| invalid("a part has no end of headers"))?;
        let headers = String::from_utf8_lossy(&rest[..end_of_headers]).into_owned();
        rest = &rest[end_of_headers + 4..];
        let end = find(rest, delimiter.as_bytes()).ok_or_else(|| invalid("a part has no closing boundary"))?;
        let data = rest[..end].to_vec();
        rest = &rest[end + delimiter.len()..];
        let mut part = Part { name: String::new(), filename: None, content_type: None, data };
        let mut named = false;
        for line in headers.split("\r\n") {
            let Some((header, value)) = line.split_once(':') else { continue };
            if header.trim().eq_ignore_ascii_case("content-type") {
                part.content_type = Some(value.trim().to_string());
            } else if header.trim().eq_ignore_ascii_case("content-disposition") {
                if let Some(name) = quoted_param(value, "name") {
                    part.name = name;
                    named = true;
                }
                part.filename = quoted_param(value, "filename");
            }
        }
        if !named {
            return Err(invalid("a part has no name"));
        }
        parts.push(part);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The value of `key="…"` in a `Content-Disposition` value.
fn quoted_param(value: &str, key: &str) -> Option<String> {
    let mut rest = value;
    while let Some(at) = rest.find(';') {
        rest = rest[at + 1..].trim_start();
        let (name, tail) = rest.split_once('=')?;
        let tail = tail.strip_prefix('"')?;
        let close = tail.find('"')?;
        if name.trim().eq_ignore_ascii_case(key) {
            return Some(unescape(&tail[..close]));
        }
        rest = &tail[close + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> Multipart {
        Multipart::new().text("model", "whisper-1").file("file", "call one.wav", "audio/wav", b"RIFF\x00\x01".to_vec())
    }

    #[test]
    fn bodies_have_the_rfc_7578_shape() {
        let form = form();
        let boundary = form.boundary();
        assert!(boundary.starts_with("conserver-") && boundary.len() == "conserver-".len() + 32, "{boundary}");
        let mut expected = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--{boundary}\r\n\
             Content-Disposition: form-data; name=\"file\"; filename=\"call one.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
        )
        .into_bytes();
        expected.extend_from_slice(b"RIFF\x00\x01");
        expected.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        assert_eq!(form.body(), expected);
        assert_eq!(form.content_type(), format!("multipart/form-data; boundary={boundary}"));
        assert_eq!(form.encode(), (form.content_type(), form.body()));
    }

    #[test]
    fn the_boundary_is_stable_and_depends_on_the_parts() {
        assert_eq!(form().boundary(), form().boundary());
        assert_ne!(form().boundary(), Multipart::new().text("model", "whisper-2").boundary());
        assert_ne!(Multipart::new().boundary(), Multipart::new().text("", "").boundary());
    }

    #[test]
    fn a_candidate_found_in_the_content_is_never_used() {
        let form = Multipart::new().text("a", "text with conserver-0 inside").file(
            "f",
            "conserver-1.wav",
            "audio/wav",
            b"and conserver-2 here".to_vec(),
        );
        assert_eq!(form.first_absent(|salt| format!("conserver-{salt}")), "conserver-3");
        // The real boundary is absent too, and the body parses back.
        let boundary = form.boundary();
        assert!(!form.parts().iter().any(|p| p.contains(boundary.as_bytes())));
        assert_eq!(parse(&form.content_type(), &form.body()).unwrap(), form.parts());
    }

    #[test]
    fn names_are_escaped_and_round_trip() {
        let form = Multipart::new().text("we\"ird\r\nname", "v").file(
            "f",
            "a\"b.mp3",
            "audio/mpeg\r\nX-Injected: 1",
            b"--conserver-\r\n\r\n".to_vec(),
        );
        let body = String::from_utf8_lossy(&form.body()).into_owned();
        assert!(body.contains("name=\"we%22ird%0D%0Aname\""), "{body}");
        assert!(body.contains("filename=\"a%22b.mp3\""), "{body}");
        assert!(body.contains("Content-Type: audio/mpegX-Injected: 1\r\n"), "{body}");
        let parsed = parse(&form.content_type(), &form.body()).unwrap();
        assert_eq!(parsed[0].name, "we\"ird\r\nname");
        assert_eq!(parsed[0].text(), "v");
        assert_eq!(parsed[1].filename.as_deref(), Some("a\"b.mp3"));
        assert_eq!(parsed[1].data, b"--conserver-\r\n\r\n");
    }

    #[test]
    fn requests_get_the_body_and_header() {
        let form = form();
        let request = Request::post("https://h/x").multipart(&form);
        assert_eq!(request.header_value("Content-Type"), Some(form.content_type().as_str()));
        assert_eq!(request.body, form.body());
        let parts = parse(request.header_value("content-type").unwrap(), &request.body).unwrap();
        assert_eq!(parts, form.parts());
        assert_eq!(parts[1].content_type.as_deref(), Some("audio/wav"));
        assert_eq!(parts[0].filename, None);
    }

    #[test]
    fn an_empty_form_is_just_the_closing_boundary() {
        let form = Multipart::new();
        assert_eq!(form.body(), format!("--{}--\r\n", form.boundary()).into_bytes());
        assert_eq!(parse(&form.content_type(), &form.body()).unwrap(), Vec::new());
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let form = form();
        let body = form.body();
        assert!(parse("application/json", &body).is_err());
        assert!(parse("multipart/form-data", &body).is_err());
        assert!(parse("multipart/form-data; boundary=other", &body).is_err());
        assert!(parse(&form.content_type(), &body[..body.len() - 20]).is_err());
        let quoted = format!("multipart/form-data; boundary=\"{}\"", form.boundary());
        assert_eq!(parse(&quoted, &body).unwrap().len(), 2);
    }
}
