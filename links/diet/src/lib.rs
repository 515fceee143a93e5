//! `diet`: slim or redact a vCon before it goes further (to webhooks, LLMs, …).
//!
//! Options (defaults as in the Python conserver's `links.diet`):
//! - `remove_dialog_body` (bool, `false`): replace the `body` of every dialog that
//!   has one (the key is kept; `encoding` and the other fields are left alone):
//!   - with `post_media_to_url` set and a non-empty body: the body is POSTed there
//!     as JSON `{"content": <body>, "vcon_uuid": <uuid>, "dialog_id": <dialog id or
//!     "">}`; when the answer is HTTP 200 with a JSON object whose `url` is a
//!     non-empty string, the body becomes that URL and `body_type: "url"` is added
//!     (Python puts the URL in `body`, not in the spec's `url` field; kept). Any
//!     other answer, or a failed request, empties the body (logged): the body never
//!     goes on;
//!   - otherwise the body becomes `""`.
//! - `post_media_to_url` (string, `""`): see above. Its host must be listed in the
//!   link's `allowed_outbound_hosts`.
//! - `remove_analysis` (bool, `false`): delete the whole `analysis` key.
//! - `remove_attachment_types` (list of media types, `[]`): drop the attachments
//!   whose media type is in the list.
//! - `remove_system_prompts` (bool, `false`): delete every `system_prompt` key, at
//!   any depth of the document.
//! - `s3_bucket` (string, `""`): **not supported**, see below. The other S3
//!   options (`s3_path` `""`, `aws_access_key_id` `""`, `aws_secret_access_key` `""`,
//!   `aws_region` `"us-east-1"`, `presigned_url_expiration` none, meaning 3600 s) are
//!   accepted (type-checked) and only matter with `s3_bucket`.
//!
//! The chain always goes on. The vCon is returned changed when something was
//! removed or replaced, unchanged otherwise. Option values whose name contains
//! `secret`, `password` or `token` are masked in the debug log of the options.
//!
//! Not supported: `s3_bucket`. In Python, with `remove_dialog_body`, each body was
//! uploaded to S3 and replaced by a presigned URL; links have no blob-storage
//! capability (that needs a host `blob.put` + presign, which would also keep the AWS
//! keys out of the guest). A non-empty `s3_bucket` is a fatal error naming the
//! option, so no body is silently dropped or kept.
//!
//! Differences from Python:
//! - `remove_attachment_types` compares the attachment's `mediatype` (the vCon
//!   0.4.0 name), and also the legacy `mimetype` and the `mime_type` key Python
//!   read. Python looked only at `mime_type`, which spec vCons do not have, so the
//!   option removed nothing on them: a bug, fixed here.
//! - A `post_media_to_url` the host refuses (not in `allowed_outbound_hosts`) or
//!   that is not an absolute http(s) URL is a fatal error naming the option (the vCon
//!   goes to the dead-letter queue with its bodies); Python emptied every body.
//!   Timeouts, connection failures and non-200 answers empty the body, as in Python.
//! - A `url` in the answer that is not a string is treated as no URL (body emptied);
//!   Python stored any truthy value.
//! - A missing vCon is the host's concern; Python returned the uuid for it.
//! - Missing `options` mean `{}` (Python crashed on them); an option of the wrong
//!   type is a fatal error naming it (Python used Python truthiness).

use conserver_link_sdk::http::{Client, HttpError, Request, Transport};
use conserver_link_sdk::prelude::*;
use serde_json::{Map, Value, json};

/// The `diet` link.
pub struct Diet;

/// The options this link acts on.
#[derive(Debug, Clone, Default, PartialEq)]
struct Options {
    remove_dialog_body: bool,
    post_media_to_url: String,
    remove_analysis: bool,
    remove_attachment_types: Vec<String>,
    remove_system_prompts: bool,
}

/// Attachment keys that may hold the media type, newest name first.
const MEDIA_TYPE_KEYS: [&str; 3] = ["mediatype", "mimetype", "mime_type"];

/// Whether an option key holds a secret that must not be logged (as Python's
/// `_redact_option_value`).
fn is_secret(key: &str) -> bool {
    let key = key.to_lowercase();
    ["secret", "password", "token"].iter().any(|word| key.contains(word))
}

impl Options {
    fn from_context(ctx: &Context) -> Result<Self, LinkError> {
        for (key, value) in &ctx.options {
            let shown = if is_secret(key) { Value::String("[REDACTED]".into()) } else { value.clone() };
            conserver_link_sdk::log::debug(&format!("diet option {key}: {shown}"));
        }
        let bucket: String = ctx.option_or("s3_bucket", String::new())?;
        if !bucket.is_empty() {
            return Err(LinkError::fatal(format!(
                "option `s3_bucket` of link `{}` is not supported: uploading dialog bodies to S3 needs a \
                 blob-storage capability the host does not give links; remove it (with `remove_dialog_body` the \
                 bodies are then emptied, or posted to `post_media_to_url`)",
                ctx.link_name
            )));
        }
        // Accepted for compatibility; they only matter with `s3_bucket`.
        for option in ["s3_path", "aws_access_key_id", "aws_secret_access_key", "aws_region"] {
            ctx.option_or::<String>(option, String::new())?;
        }
        ctx.option_or::<Option<u64>>("presigned_url_expiration", None)?;
        Ok(Self {
            remove_dialog_body: ctx.option_or("remove_dialog_body", false)?,
            post_media_to_url: ctx.option_or("post_media_to_url", String::new())?,
            remove_analysis: ctx.option_or("remove_analysis", false)?,
            remove_attachment_types: ctx.option_or("remove_attachment_types", Vec::new())?,
            remove_system_prompts: ctx.option_or("remove_system_prompts", false)?,
        })
    }
}

/// Python's `bool()` of a JSON value.
fn python_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_none_or(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

/// Where dialog bodies go.
struct MediaPost<'a> {
    url: &'a str,
    vcon_uuid: &'a str,
    transport: &'a dyn Transport,
}

impl MediaPost<'_> {
    /// POST one body; the URL it is now stored at, or `None` when the post failed
    /// (logged). Only a configuration problem is an error.
    fn store(&self, content: &Value, dialog_id: &Value) -> Result<Option<String>, LinkError> {
        let payload = json!({"content": content, "vcon_uuid": self.vcon_uuid, "dialog_id": dialog_id});
        let request = Request::post(self.url).json(&payload)?;
        // Python's `requests` sends a Content-Length; without it the body goes out
        // chunked, which simple media stores (Python's http.server, …) cannot read.
        let length = request.body.len().to_string();
        let request = request.header("content-length", &length);
        let answer = match self.transport.send(&request) {
            Ok(answer) => answer,
            Err(error @ (HttpError::Denied(_) | HttpError::InvalidRequest(_) | HttpError::Unsupported)) => {
                return Err(LinkError::fatal(format!("option `post_media_to_url`: {error}")));
            }
            Err(error) => {
                conserver_link_sdk::log::error(&format!("posting a dialog body failed: {error}; emptying it"));
                return Ok(None);
            }
        };
        if answer.status != 200 {
            conserver_link_sdk::log::error(&format!("posting a dialog body got HTTP {}; emptying it", answer.status));
            return Ok(None);
        }
        match answer.json::<Value>() {
            Ok(Value::Object(map)) => match map.get("url") {
                Some(Value::String(url)) if !url.is_empty() => Ok(Some(url.clone())),
                _ => {
                    conserver_link_sdk::log::error("the media store answered without a `url`; emptying the body");
                    Ok(None)
                }
            },
            Ok(_) | Err(_) => {
                conserver_link_sdk::log::error("the media store's answer is not a JSON object; emptying the body");
                Ok(None)
            }
        }
    }
}

/// Replace every dialog body (posted, or emptied); returns whether anything changed.
fn replace_dialog_bodies(vcon: &mut Map<String, Value>, post: Option<&MediaPost<'_>>) -> Result<bool, LinkError> {
    let Some(Value::Array(dialogs)) = vcon.get_mut("dialog") else {
        return Ok(false);
    };
    let mut changed = false;
    for dialog in dialogs.iter_mut().filter_map(Value::as_object_mut) {
        let Some(body) = dialog.get("body") else { continue };
        let stored = match post {
            Some(post) if python_truthy(body) => {
                let dialog_id = dialog.get("id").cloned().unwrap_or_else(|| Value::String(String::new()));
                post.store(body, &dialog_id)?
            }
            _ => None,
        };
        match stored {
            Some(url) => {
                dialog.insert("body".into(), Value::String(url));
                dialog.insert("body_type".into(), Value::String("url".into()));
                changed = true;
            }
            None if body.as_str() == Some("") => {}
            None => {
                dialog.insert("body".into(), Value::String(String::new()));
                changed = true;
            }
        }
    }
    Ok(changed)
}

/// Drop the attachments whose media type is listed; returns whether any was.
fn remove_attachments(vcon: &mut Map<String, Value>, types: &[String]) -> bool {
    let Some(Value::Array(attachments)) = vcon.get_mut("attachments") else {
        return false;
    };
    let before = attachments.len();
    attachments.retain(|attachment| {
        !MEDIA_TYPE_KEYS.iter().any(|key| {
            attachment.get(key).and_then(Value::as_str).is_some_and(|media_type| types.iter().any(|t| t == media_type))
        })
    });
    attachments.len() != before
}

/// Delete every `system_prompt` key at any depth; returns whether any was.
fn remove_system_prompts(value: &mut Value) -> bool {
    match value {
        Value::Object(map) => {
            let mut changed = map.shift_remove("system_prompt").is_some();
            for child in map.values_mut() {
                changed |= remove_system_prompts(child);
            }
            changed
        }
        Value::Array(items) => items.iter_mut().fold(false, |changed, item| remove_system_prompts(item) | changed),
        _ => false,
    }
}

impl Diet {
    fn run(ctx: &Context, mut vcon: Vcon, transport: &dyn Transport) -> LinkResult {
        let options = Options::from_context(ctx)?;
        let nothing_to_do = !options.remove_dialog_body
            && !options.remove_analysis
            && options.remove_attachment_types.is_empty()
            && !options.remove_system_prompts;
        if nothing_to_do {
            return Ok(Verdict::unchanged());
        }
        let doc = vcon.as_map_mut();
        let mut changed = false;
        if options.remove_dialog_body {
            let post = (!options.post_media_to_url.is_empty()).then(|| MediaPost {
                url: &options.post_media_to_url,
                vcon_uuid: &ctx.vcon_uuid,
                transport,
            });
            changed |= replace_dialog_bodies(doc, post.as_ref())?;
        }
        if options.remove_analysis {
            changed |= doc.shift_remove("analysis").is_some();
        }
        if !options.remove_attachment_types.is_empty() {
            changed |= remove_attachments(doc, &options.remove_attachment_types);
        }
        if options.remove_system_prompts {
            let mut whole = Value::Object(std::mem::take(doc));
            changed |= remove_system_prompts(&mut whole);
            if let Value::Object(map) = whole {
                *doc = map;
            }
        }
        Ok(if changed { Verdict::changed(vcon) } else { Verdict::unchanged() })
    }
}

impl Link for Diet {
    fn process(ctx: &Context, vcon: Vcon) -> LinkResult {
        Self::run(ctx, vcon, &Client::host())
    }
}

export_link!(Diet);

#[cfg(test)]
mod tests {
    use super::*;
    use conserver_link_sdk::http::Response;
    use std::cell::RefCell;

    fn sample() -> Value {
        json!({
            "uuid": "u",
            "vcon": "0.4.0",
            "dialog": [
                {"type": "recording", "body": "AAAA", "encoding": "base64url", "mediatype": "audio/wav", "id": "d1"},
                {"type": "text", "body": "hello", "encoding": "none", "system_prompt": "nested"},
                {"type": "recording", "url": "https://example.com/a.wav"}
            ],
            "analysis": [{"type": "summary", "body": "s", "system_prompt": "be nice"}],
            "attachments": [
                {"purpose": "tags", "body": "[]", "encoding": "json"},
                {"purpose": "photo", "mediatype": "image/jpeg", "body": "x"},
                {"purpose": "legacy", "mime_type": "audio/mp3", "body": "y"},
                {"purpose": "old", "mimetype": "image/jpeg", "body": "z"}
            ],
            "system_prompt": "top",
            "meta": {"deep": [{"system_prompt": "deeper", "keep": 1}]}
        })
    }

    fn no_network(request: &Request) -> Result<Response, HttpError> {
        panic!("unexpected request to {}", request.url)
    }

    fn run_with(options: Value, doc: Value, transport: &dyn Transport) -> Result<Verdict, LinkError> {
        let vcon = Vcon::from_json(&doc.to_string()).unwrap();
        let mut ctx = Context::for_test("diet", options);
        ctx.vcon_uuid = "u".into();
        Diet::run(&ctx, vcon, transport)
    }

    fn run_on(options: Value, doc: Value) -> Result<Verdict, LinkError> {
        run_with(options, doc, &no_network)
    }

    /// A media store that records each request and answers with `answer(n)` for the
    /// n-th one.
    struct MediaStore<F> {
        requests: RefCell<Vec<Request>>,
        answer: F,
    }

    impl<F: Fn(usize) -> Result<Response, HttpError>> Transport for MediaStore<F> {
        fn send(&self, request: &Request) -> Result<Response, HttpError> {
            let n = self.requests.borrow().len();
            self.requests.borrow_mut().push(request.clone());
            (self.answer)(n)
        }
    }

    fn store<F: Fn(usize) -> Result<Response, HttpError>>(answer: F) -> MediaStore<F> {
        MediaStore { requests: RefCell::new(Vec::new()), answer }
    }

    fn post_options() -> Value {
        json!({"remove_dialog_body": true, "post_media_to_url": "http://media.example/store"})
    }

    /// The vCon after the link, or the input when it was left unchanged.
    fn run(options: Value) -> Value {
        let verdict = run_on(options, sample()).unwrap();
        assert!(!verdict.is_halt());
        assert!(verdict.directives().is_empty());
        verdict.vcon().map_or_else(sample, |v| Value::Object(v.to_map()))
    }

    #[test]
    fn defaults_change_nothing() {
        let verdict = run_on(json!({}), sample()).unwrap();
        assert!(verdict.vcon().is_none());
        assert!(!verdict.is_halt());
        let explicit = json!({"remove_dialog_body": false, "remove_analysis": false, "remove_attachment_types": [],
            "remove_system_prompts": false, "s3_bucket": "", "post_media_to_url": "", "s3_path": "",
            "aws_access_key_id": "", "aws_secret_access_key": "", "aws_region": "us-east-1",
            "presigned_url_expiration": null});
        assert!(run_on(explicit, sample()).unwrap().vcon().is_none());
    }

    #[test]
    fn remove_dialog_body_empties_present_bodies_only() {
        let out = run(json!({"remove_dialog_body": true}));
        assert_eq!(
            out["dialog"],
            json!([
                {"type": "recording", "body": "", "encoding": "base64url", "mediatype": "audio/wav", "id": "d1"},
                {"type": "text", "body": "", "encoding": "none", "system_prompt": "nested"},
                {"type": "recording", "url": "https://example.com/a.wav"}
            ])
        );
        let mut expected = sample();
        expected["dialog"] = out["dialog"].clone();
        assert_eq!(out, expected, "nothing else changes");
    }

    #[test]
    fn a_null_body_becomes_empty_like_python_and_empty_bodies_are_no_change() {
        let doc = json!({"dialog": [{"body": null}]});
        let verdict = run_on(json!({"remove_dialog_body": true}), doc).unwrap();
        assert_eq!(verdict.vcon().unwrap().get("dialog").unwrap(), json!([{"body": ""}]));
        let doc = json!({"dialog": [{"body": ""}, {"url": "u"}, "not an object"]});
        assert!(run_on(json!({"remove_dialog_body": true}), doc).unwrap().vcon().is_none());
    }

    #[test]
    fn remove_analysis_deletes_the_key() {
        let out = run(json!({"remove_analysis": true}));
        assert!(out.get("analysis").is_none());
        assert_eq!(out["dialog"], sample()["dialog"]);
        let no_analysis = json!({"uuid": "u"});
        assert!(run_on(json!({"remove_analysis": true}), no_analysis).unwrap().vcon().is_none());
    }

    #[test]
    fn remove_attachment_types_matches_mediatype_and_the_legacy_keys() {
        let out = run(json!({"remove_attachment_types": ["image/jpeg", "audio/mp3"]}));
        assert_eq!(out["attachments"], json!([{"purpose": "tags", "body": "[]", "encoding": "json"}]));
        let out = run(json!({"remove_attachment_types": ["audio/mp3"]}));
        let purposes: Vec<_> = out["attachments"].as_array().unwrap().iter().map(|a| a["purpose"].clone()).collect();
        assert_eq!(purposes, [json!("tags"), json!("photo"), json!("old")]);
        let verdict = run_on(json!({"remove_attachment_types": ["video/mp4"]}), sample()).unwrap();
        assert!(verdict.vcon().is_none(), "no match, no change");
    }

    #[test]
    fn remove_system_prompts_deletes_them_at_every_depth() {
        let out = run(json!({"remove_system_prompts": true}));
        assert!(!out.to_string().contains("system_prompt"), "{out}");
        assert_eq!(out["meta"], json!({"deep": [{"keep": 1}]}));
        assert_eq!(out["analysis"], json!([{"type": "summary", "body": "s"}]));
        assert_eq!(out["dialog"][1], json!({"type": "text", "body": "hello", "encoding": "none"}));
        let keys: Vec<_> = out.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["uuid", "vcon", "dialog", "analysis", "attachments", "meta"], "order kept");
    }

    #[test]
    fn combined_options() {
        let out = run(json!({
            "remove_dialog_body": true,
            "remove_analysis": true,
            "remove_attachment_types": ["image/jpeg"],
            "remove_system_prompts": true
        }));
        assert_eq!(
            out,
            json!({
                "uuid": "u",
                "vcon": "0.4.0",
                "dialog": [
                    {"type": "recording", "body": "", "encoding": "base64url", "mediatype": "audio/wav", "id": "d1"},
                    {"type": "text", "body": "", "encoding": "none"},
                    {"type": "recording", "url": "https://example.com/a.wav"}
                ],
                "attachments": [
                    {"purpose": "tags", "body": "[]", "encoding": "json"},
                    {"purpose": "legacy", "mime_type": "audio/mp3", "body": "y"}
                ],
                "meta": {"deep": [{"keep": 1}]}
            })
        );
    }

    #[test]
    fn post_media_to_url_replaces_bodies_by_the_returned_url() {
        let media = store(|n| Ok(Response::new(200, format!(r#"{{"url": "https://media.example/{n}"}}"#))));
        let verdict = run_with(post_options(), sample(), &media).unwrap();
        let out = Value::Object(verdict.vcon().unwrap().to_map());
        assert_eq!(out["dialog"][0]["body"], json!("https://media.example/0"));
        assert_eq!(out["dialog"][0]["body_type"], json!("url"));
        assert_eq!(out["dialog"][0]["encoding"], json!("base64url"), "other fields are left alone");
        assert_eq!(out["dialog"][1]["body"], json!("https://media.example/1"));
        assert_eq!(out["dialog"][2], sample()["dialog"][2], "a dialog without body is not posted");
        let requests = media.requests.borrow();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].method, "POST");
        assert_eq!(requests[0].url, "http://media.example/store");
        assert_eq!(requests[0].header_value("content-type"), Some("application/json"));
        assert_eq!(requests[0].header_value("content-length"), Some(requests[0].body.len().to_string().as_str()));
        let payload = |i: usize| serde_json::from_slice::<Value>(&requests[i].body).unwrap();
        assert_eq!(payload(0), json!({"content": "AAAA", "vcon_uuid": "u", "dialog_id": "d1"}));
        assert_eq!(payload(1), json!({"content": "hello", "vcon_uuid": "u", "dialog_id": ""}));
        let keys: Vec<String> = payload(0).as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["content", "vcon_uuid", "dialog_id"]);
    }

    #[test]
    fn empty_bodies_are_not_posted() {
        let doc = json!({"dialog": [{"body": ""}, {"body": null, "id": 3}]});
        let verdict = run_with(post_options(), doc, &no_network).unwrap();
        assert_eq!(verdict.vcon().unwrap().get("dialog").unwrap(), json!([{"body": ""}, {"body": "", "id": 3}]));
    }

    #[test]
    fn post_media_to_url_without_remove_dialog_body_does_nothing() {
        let options = json!({"post_media_to_url": "http://media.example/store"});
        assert!(run_with(options, sample(), &no_network).unwrap().vcon().is_none());
    }

    #[test]
    fn a_failed_post_empties_the_body() {
        let answers: [fn(usize) -> Result<Response, HttpError>; 7] = [
            |_| Ok(Response::new(500, "boom")),
            |_| Ok(Response::new(201, r#"{"url": "https://media.example/x"}"#)),
            |_| Ok(Response::new(200, r#"{"location": "x"}"#)),
            |_| Ok(Response::new(200, r#"{"url": ""}"#)),
            |_| Ok(Response::new(200, r#"{"url": 5}"#)),
            |_| Ok(Response::new(200, "not json")),
            |_| Err(HttpError::Timeout("http://media.example/store".into())),
        ];
        for answer in answers {
            let media = store(answer);
            let verdict = run_with(post_options(), sample(), &media).unwrap();
            let out = Value::Object(verdict.vcon().unwrap().to_map());
            assert_eq!(out["dialog"][0]["body"], json!(""));
            assert!(out["dialog"][0].get("body_type").is_none());
            assert_eq!(out["dialog"][1]["body"], json!(""));
            assert_eq!(media.requests.borrow().len(), 2);
        }
        let connection = store(|_| Err(HttpError::Connection("refused".into())));
        let verdict = run_with(post_options(), sample(), &connection).unwrap();
        assert_eq!(verdict.vcon().unwrap().get("dialog").unwrap()[0]["body"], json!(""));
    }

    #[test]
    fn a_refused_or_malformed_media_url_is_a_fatal_error_naming_the_option() {
        for error in [
            HttpError::Denied("http://media.example/store".into()),
            HttpError::InvalidRequest("bad url".into()),
            HttpError::Unsupported,
        ] {
            let media = store(move |_| Err(error.clone()));
            let err = run_with(post_options(), sample(), &media).unwrap_err();
            assert!(!err.retryable);
            assert!(err.message.contains("option `post_media_to_url`"), "{}", err.message);
        }
    }

    #[test]
    fn s3_is_a_fatal_error_naming_the_option() {
        for options in [json!({"s3_bucket": "b", "remove_dialog_body": true}), json!({"s3_bucket": "b"})] {
            let err = run_on(options, sample()).unwrap_err();
            assert!(!err.retryable);
            assert!(err.message.contains("option `s3_bucket`"), "{}", err.message);
            assert!(err.message.contains("not supported"), "{}", err.message);
        }
    }

    #[test]
    fn python_truthiness_of_bodies() {
        for falsy in [json!(null), json!(""), json!(0), json!([]), json!({}), json!(false)] {
            assert!(!python_truthy(&falsy), "{falsy}");
        }
        for truthy in [json!("x"), json!(1), json!(0.5), json!([0]), json!({"a": 1}), json!(true)] {
            assert!(python_truthy(&truthy), "{truthy}");
        }
    }

    #[test]
    fn wrongly_typed_options_are_fatal_errors_naming_the_option() {
        for (options, option) in [
            (json!({"remove_dialog_body": "yes"}), "option `remove_dialog_body`"),
            (json!({"remove_analysis": 1}), "option `remove_analysis`"),
            (json!({"remove_attachment_types": "image/jpeg"}), "option `remove_attachment_types`"),
            (json!({"remove_system_prompts": []}), "option `remove_system_prompts`"),
            (json!({"s3_bucket": 5}), "option `s3_bucket`"),
            (json!({"post_media_to_url": true}), "option `post_media_to_url`"),
            (json!({"presigned_url_expiration": "1h"}), "option `presigned_url_expiration`"),
            (json!({"aws_region": 1}), "option `aws_region`"),
        ] {
            let err = run_on(options, sample()).unwrap_err();
            assert!(!err.retryable);
            assert!(err.message.contains(option), "{}", err.message);
        }
    }

    #[test]
    fn secret_option_names_are_recognised_for_masking() {
        assert!(is_secret("aws_secret_access_key"));
        assert!(is_secret("api_TOKEN"));
        assert!(is_secret("db_password"));
        assert!(!is_secret("aws_access_key_id"));
        assert!(!is_secret("s3_bucket"));
    }
}
