//! `webhook`: POST the vCon to each configured URL.
//!
//! Options (defaults as in the Python conserver's `links.webhook`):
//! - `webhook-urls` (list of URLs, `[]`): each URL gets, in order, a `POST` whose
//!   body is the bare vCon (not wrapped in `{"vcon": …}`), written exactly as
//!   Python's `requests.post(url, json=vcon)` writes it (`json.dumps` form: `", "`
//!   and `": "` separators, non-ASCII as `\uXXXX`, key order as stored), with
//!   `Content-Type: application/json` unless `headers` sets its own. Every host
//!   must be listed in the link's `allowed_outbound_hosts`. With no URL the link
//!   logs a warning and the chain goes on.
//! - `headers` (mapping of header name to string value, `{}`): sent with every
//!   request. Put credentials here with `${VAR}` references in the config.
//! - `egress_format_version` (string, unset): `"0.0.1"` posts the legacy 0.0.1
//!   shape instead of the stored one; unset or `""` posts the vCon as stored. The
//!   downgrade is the Python `lib.vcon_egress_compat.to_legacy` (and the host's
//!   `to_legacy_001`): top-level `amended`→`appended`, `critical`→`must_support`;
//!   dialog, analysis and attachment `schema`→`schema_version`,
//!   `mediatype`→`mimetype`, `critical`→`must_support` (when both names are
//!   present the legacy one wins and the spec one is dropped); attachment
//!   `purpose`→`type` when `type` is absent; analysis and attachment bodies with
//!   `encoding: "json"` become native JSON with `encoding: "none"` (a string body
//!   that is not JSON is left alone); `group: []`, `redacted: {}` and
//!   `appended: null` are added when absent; `vcon` becomes `"0.0.1"`. The
//!   stored vCon is never changed.
//!
//! Answers: any HTTP status is accepted; a non-2xx one is logged and ignored, as
//! in Python. A request that fails (connection refused, timeout, host not allowed,
//! bad URL) stops the link with an error naming the URL, so the vCon goes to the
//! dead-letter queue (Python re-raised); URLs before it have already been posted.
//! The vCon is never modified (the verdict is always "unchanged").
//!
//! Differences from Python:
//! - `EGRESS_FORMAT_VERSION` was a deployment-wide environment setting; a link
//!   cannot read the host's environment, so it is the `egress_format_version`
//!   option here (the name the earlier Python versions used per egress point).
//!   Any value other than unset, `""` or `"0.0.1"` is a fatal error naming the
//!   option (Python raised `ValueError` on every vCon).
//! - Missing `options` mean `{}` (Python crashed on `None`); an option of the
//!   wrong type (a URL or header value that is not a string, …) is a fatal error
//!   naming it.
//! - No per-request timeout is set (Python had none either), but the host caps
//!   connect, first-byte and idle times, so a stuck endpoint fails the link
//!   instead of hanging the worker.
//! - Redirects are not followed (`requests` followed them): a 3xx answer is
//!   logged and ignored like any other non-2xx answer.
//! - Python's metrics counters (`no_urls_configured`, `post_failures`) are log
//!   lines here.
//! - A missing vCon is the host's concern (Python crashed).

use conserver_link_sdk::http::{Client, HttpError, Request, Transport};
use conserver_link_sdk::prelude::*;
use conserver_link_sdk::{log, python_json};
use serde_json::{Map, Value};

/// The `webhook` link.
pub struct Webhook;

/// The one legacy version the downgrade knows.
const LEGACY_VERSION: &str = "0.0.1";

/// The options this link acts on.
#[derive(Debug, Clone, PartialEq)]
struct Options {
    urls: Vec<String>,
    headers: Vec<(String, String)>,
    legacy: bool,
}

impl Options {
    fn from_context(ctx: &Context) -> Result<Self, LinkError> {
        let urls: Vec<String> = ctx.option_or("webhook-urls", Vec::new())?;
        let headers = match ctx.options.get("headers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(name, value)| match value {
                    Value::String(text) => Ok((name.clone(), text.clone())),
                    other => Err(LinkError::fatal(format!(
                        "option `headers` of link `{}` is invalid: the value of header `{name}` must be a string, \
                         got {other}",
                        ctx.link_name
                    ))),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(LinkError::fatal(format!(
                    "option `headers` of link `{}` must be a mapping of header names to strings, got {other}",
                    ctx.link_name
                )));
            }
        };
        let version: String = ctx.option_or("egress_format_version", String::new())?;
        let legacy = match version.trim() {
            "" => false,
            LEGACY_VERSION => true,
            other => {
                return Err(LinkError::fatal(format!(
                    "option `egress_format_version` of link `{}` is {other:?}: the only supported legacy version is \
                     \"{LEGACY_VERSION}\" (leave it unset to post the vCon as stored)",
                    ctx.link_name
                )));
            }
        };
        Ok(Self { urls, headers, legacy })
    }
}

/// Move `from` to `to` unless `to` is already there; `from` is dropped either way
/// (Python's `_rename`).
fn rename(map: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(value) = map.shift_remove(from)
        && !map.contains_key(to)
    {
        map.insert(to.to_string(), value);
    }
}

/// Spec → legacy names at the top level.
const TOP_SPEC_TO_LEGACY: &[(&str, &str)] = &[("amended", "appended"), ("critical", "must_support")];
/// Spec → legacy names in dialog, analysis and attachment entries.
const ENTRY_SPEC_TO_LEGACY: &[(&str, &str)] =
    &[("schema", "schema_version"), ("mediatype", "mimetype"), ("critical", "must_support")];

/// An `encoding: "json"` body back to a native value with `encoding: "none"`
/// (Python's `_body_to_legacy`).
fn body_to_legacy(entry: &mut Map<String, Value>) {
    if entry.get("encoding").and_then(Value::as_str) != Some("json") {
        return;
    }
    match entry.get("body") {
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(parsed) => {
                entry.insert("body".into(), parsed);
            }
            Err(_) => return,
        },
        Some(Value::Object(_) | Value::Array(_)) => {}
        _ => return,
    }
    entry.insert("encoding".into(), Value::String("none".into()));
}

/// The `0.0.1` downgrade of a vCon document (Python's `to_legacy(doc, "0.0.1")`).
pub fn to_legacy_001(mut doc: Map<String, Value>) -> Map<String, Value> {
    for (spec, legacy) in TOP_SPEC_TO_LEGACY {
        rename(&mut doc, spec, legacy);
    }
    for section in ["dialog", "analysis", "attachments"] {
        let Some(Value::Array(entries)) = doc.get_mut(section) else { continue };
        for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
            for (spec, legacy) in ENTRY_SPEC_TO_LEGACY {
                rename(entry, spec, legacy);
            }
            if section == "attachments" && !entry.contains_key("type") && entry.contains_key("purpose") {
                rename(entry, "purpose", "type");
            }
            if section != "dialog" {
                body_to_legacy(entry);
            }
        }
    }
    doc.entry("group").or_insert_with(|| Value::Array(Vec::new()));
    doc.entry("redacted").or_insert_with(|| Value::Object(Map::new()));
    doc.entry("appended").or_insert(Value::Null);
    doc.insert("vcon".into(), Value::String(LEGACY_VERSION.into()));
    doc
}

impl Webhook {
    fn run(ctx: &Context, vcon: Vcon, transport: &dyn Transport) -> LinkResult {
        let options = Options::from_context(ctx)?;
        let uuid = vcon.uuid().unwrap_or_else(|| ctx.vcon_uuid.clone());
        if options.urls.is_empty() {
            log::warn(&format!(
                "webhook: no webhook-urls configured for vcon {uuid}, skipping \
                 (conserver.link.webhook.no_urls_configured)"
            ));
            return Ok(Verdict::unchanged());
        }
        let doc = if options.legacy { to_legacy_001(vcon.to_map()) } else { vcon.to_map() };
        let body = python_json::dumps(&Value::Object(doc));
        let has_content_type = options.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        for url in &options.urls {
            log::info(&format!("webhook: posting vcon {uuid} to webhook url: {url}"));
            let mut request = Request::post(url);
            for (name, value) in &options.headers {
                request = request.header(name, value);
            }
            if !has_content_type {
                request = request.header("content-type", "application/json");
            }
            let request = request.body(body.as_bytes());
            match transport.send(&request) {
                Ok(answer) if answer.is_success() => {
                    log::info(&format!("webhook response for {uuid}: {} {}", answer.status, answer.text()));
                }
                Ok(answer) => {
                    log::warn(&format!(
                        "webhook response for {uuid} from {url}: {} {} (ignored)",
                        answer.status,
                        answer.text()
                    ));
                }
                Err(error) => {
                    log::error(&format!(
                        "webhook: failed to post vcon {uuid} to {url}: {error} (conserver.link.webhook.post_failures)"
                    ));
                    let message = format!("webhook: posting to {url} failed: {error}");
                    return Err(match error {
                        HttpError::Timeout(_) | HttpError::Connection(_) => LinkError::retryable(message),
                        _ => LinkError::fatal(message),
                    });
                }
            }
        }
        Ok(Verdict::unchanged())
    }
}

impl Link for Webhook {
    fn process(ctx: &Context, vcon: Vcon) -> LinkResult {
        Self::run(ctx, vcon, &Client::host())
    }
}

export_link!(Webhook);

#[cfg(test)]
mod tests {
    use super::*;
    use conserver_link_sdk::http::Recorder;
    use conserver_link_sdk::http::Response;
    use serde_json::json;

    /// Records every request and answers the n-th with `answer(n)`.
    fn recorder<F: Fn(usize) -> Result<Response, HttpError>>(
        answer: F,
    ) -> Recorder<impl Fn(&Request, usize) -> Result<Response, HttpError>> {
        Recorder::new(move |_, n| answer(n))
    }

    fn ok(_: usize) -> Result<Response, HttpError> {
        Ok(Response::new(200, "ok"))
    }

    /// A spec-current vCon as the Python integration test builds it.
    const CANONICAL: &str = r#"{"vcon":"0.4.0","uuid":"test-uuid","created_at":"2026-06-05T00:00:00+00:00","subject":null,"parties":[{"tel":"+15551234567","role":"customer"}],"dialog":[{"type":"recording","start":"2026-06-05T00:00:00+00:00","mediatype":"audio/wav"}],"analysis":[{"type":"summary","dialog":0,"vendor":"openai","body":"s","encoding":"none","schema":"v1"}],"attachments":[{"purpose":"tags","body":"[\"category:1\"]","encoding":"json"}],"meta":{"tenant_id":42}}"#;

    fn run_with(options: Value, doc: &str, transport: &dyn Transport) -> Result<Verdict, LinkError> {
        let mut ctx = Context::for_test("webhook", options);
        ctx.vcon_uuid = "test-uuid".into();
        Webhook::run(&ctx, Vcon::from_json(doc).unwrap(), transport)
    }

    fn body_of(request: &Request) -> Value {
        serde_json::from_slice(&request.body).unwrap()
    }

    #[test]
    fn no_urls_posts_nothing_and_the_chain_goes_on() {
        let transport = recorder(ok);
        for options in [json!({}), json!({"webhook-urls": []}), json!({"webhook-urls": null, "headers": null})] {
            let verdict = run_with(options, CANONICAL, &transport).unwrap();
            assert!(!verdict.is_halt());
            assert!(verdict.vcon().is_none());
            assert!(verdict.directives().is_empty());
        }
        assert!(transport.requests().is_empty());
    }

    #[test]
    fn each_url_gets_the_same_python_json_body_and_headers_in_order() {
        let transport = recorder(ok);
        let doc = r#"{"uuid":"test-uuid","dialog":[{"type":"text","body":"héllo 😀"}],"n":1.0,"e":1e-05}"#;
        let options = json!({
            "webhook-urls": ["https://example.test/a", "https://example.test/b"],
            "headers": {"Authorization": "Bearer token", "x-conserver-api-token": "t"}
        });
        let verdict = run_with(options, doc, &transport).unwrap();
        assert!(verdict.vcon().is_none());
        let expected_body = r#"{"uuid": "test-uuid", "dialog": [{"type": "text", "body": "h\u00e9llo \ud83d\ude00"}], "n": 1.0, "e": 1e-05}"#;
        let requests = transport.requests();
        let expected = |url: &str| Request {
            method: "POST".into(),
            url: url.into(),
            headers: vec![
                ("Authorization".into(), "Bearer token".into()),
                ("x-conserver-api-token".into(), "t".into()),
                ("content-type".into(), "application/json".into()),
            ],
            body: expected_body.as_bytes().to_vec(),
            timeout: None,
        };
        assert_eq!(*requests, vec![expected("https://example.test/a"), expected("https://example.test/b")]);
    }

    #[test]
    fn a_configured_content_type_is_not_doubled() {
        let transport = recorder(ok);
        let options =
            json!({"webhook-urls": ["https://example.test/a"], "headers": {"Content-Type": "application/vcon+json"}});
        run_with(options, CANONICAL, &transport).unwrap();
        let requests = transport.requests();
        assert_eq!(requests[0].headers, vec![("Content-Type".to_string(), "application/vcon+json".to_string())]);
    }

    #[test]
    fn the_body_is_the_bare_vcon_as_stored_without_the_egress_option() {
        let transport = recorder(ok);
        run_with(json!({"webhook-urls": ["https://downstream.example/ingest"]}), CANONICAL, &transport).unwrap();
        let posted = body_of(&transport.requests()[0]);
        assert_eq!(posted, serde_json::from_str::<Value>(CANONICAL).unwrap());
        assert_eq!(posted["vcon"], "0.4.0");
        assert_eq!(posted["attachments"][0]["purpose"], "tags");
        let empty = recorder(ok);
        run_with(json!({"webhook-urls": ["https://d.example/"], "egress_format_version": ""}), CANONICAL, &empty)
            .unwrap();
        assert_eq!(body_of(&empty.requests()[0]), posted);
    }

    #[test]
    fn egress_format_0_0_1_posts_the_legacy_shape_exactly() {
        let transport = recorder(ok);
        let options = json!({"webhook-urls": ["https://downstream.example/ingest"], "egress_format_version": "0.0.1"});
        let verdict = run_with(options, CANONICAL, &transport).unwrap();
        assert!(verdict.vcon().is_none(), "the stored vCon is not changed");
        let requests = transport.requests();
        let expected = r#"{"vcon": "0.0.1", "uuid": "test-uuid", "created_at": "2026-06-05T00:00:00+00:00", "subject": null, "parties": [{"tel": "+15551234567", "role": "customer"}], "dialog": [{"type": "recording", "start": "2026-06-05T00:00:00+00:00", "mimetype": "audio/wav"}], "analysis": [{"type": "summary", "dialog": 0, "vendor": "openai", "body": "s", "encoding": "none", "schema_version": "v1"}], "attachments": [{"body": ["category:1"], "encoding": "none", "type": "tags"}], "meta": {"tenant_id": 42}, "group": [], "redacted": {}, "appended": null}"#;
        assert_eq!(String::from_utf8(requests[0].body.clone()).unwrap(), expected);
    }

    #[test]
    fn the_legacy_downgrade_follows_the_python_rules() {
        let doc = json!({
            "vcon": "0.4.0",
            "amended": {"uuid": "x"},
            "critical": ["ext"],
            "must_support": ["kept"],
            "group": [{"uuid": "g"}],
            "redacted": {"uuid": "r"},
            "dialog": [{"mediatype": "audio/wav", "body": "{\"a\": 1}", "encoding": "json"}, "not an object"],
            "analysis": [
                {"type": "a", "body": "prose, not json", "encoding": "json"},
                {"type": "b", "body": {"k": [1, 2]}, "encoding": "json"},
                {"type": "c", "body": "[1]", "encoding": "none"},
                {"type": "d", "body": 5, "encoding": "json"}
            ],
            "attachments": [
                {"type": "lawful_basis", "purpose": "consent", "body": "x"},
                {"purpose": "tags", "mimetype": "text/plain", "mediatype": "text/x", "body": "[\"a:a\"]", "encoding": "json"}
            ]
        });
        let out = Value::Object(to_legacy_001(doc.as_object().unwrap().clone()));
        assert_eq!(
            out,
            json!({
                "vcon": "0.0.1",
                "must_support": ["kept"],
                "group": [{"uuid": "g"}],
                "redacted": {"uuid": "r"},
                "dialog": [{"body": "{\"a\": 1}", "encoding": "json", "mimetype": "audio/wav"}, "not an object"],
                "analysis": [
                    {"type": "a", "body": "prose, not json", "encoding": "json"},
                    {"type": "b", "body": {"k": [1, 2]}, "encoding": "none"},
                    {"type": "c", "body": "[1]", "encoding": "none"},
                    {"type": "d", "body": 5, "encoding": "json"}
                ],
                "attachments": [
                    {"type": "lawful_basis", "purpose": "consent", "body": "x"},
                    {"mimetype": "text/plain", "body": ["a:a"], "encoding": "none", "type": "tags"}
                ],
                "appended": {"uuid": "x"}
            })
        );
        // Key order too: the output of Python's `to_legacy` on the same input.
        let python = r#"{"vcon": "0.0.1", "must_support": ["kept"], "group": [{"uuid": "g"}], "redacted": {"uuid": "r"}, "dialog": [{"body": "{\"a\": 1}", "encoding": "json", "mimetype": "audio/wav"}, "not an object"], "analysis": [{"type": "a", "body": "prose, not json", "encoding": "json"}, {"type": "b", "body": {"k": [1, 2]}, "encoding": "none"}, {"type": "c", "body": "[1]", "encoding": "none"}, {"type": "d", "body": 5, "encoding": "json"}], "attachments": [{"type": "lawful_basis", "purpose": "consent", "body": "x"}, {"mimetype": "text/plain", "body": ["a:a"], "encoding": "none", "type": "tags"}], "appended": {"uuid": "x"}}"#;
        assert_eq!(python_json::dumps(&out), python);
    }

    #[test]
    fn a_non_2xx_answer_is_logged_and_ignored() {
        let transport = recorder(|n| Ok(Response::new(if n == 0 { 500 } else { 302 }, "bad gateway")));
        let options = json!({"webhook-urls": ["https://example.test/a", "https://example.test/b"]});
        let verdict = run_with(options, CANONICAL, &transport).unwrap();
        assert!(!verdict.is_halt() && verdict.vcon().is_none());
        assert_eq!(transport.requests().len(), 2);
    }

    #[test]
    fn a_failed_request_stops_the_link_with_the_url() {
        let transport =
            recorder(
                |n| {
                    if n == 0 { Ok(Response::new(200, "")) } else { Err(HttpError::Connection("refused".into())) }
                },
            );
        let options =
            json!({"webhook-urls": ["https://example.test/a", "https://example.test/b", "https://example.test/c"]});
        let err = run_with(options, CANONICAL, &transport).unwrap_err();
        assert!(err.retryable);
        assert!(err.message.contains("https://example.test/b") && err.message.contains("refused"), "{err}");
        assert_eq!(transport.requests().len(), 2, "the third URL is not tried");

        let denied = recorder(|_| Err(HttpError::Denied("https://evil.example/".into())));
        let err = run_with(json!({"webhook-urls": ["https://evil.example/"]}), CANONICAL, &denied).unwrap_err();
        assert!(!err.retryable);
        assert!(err.message.contains("allowed_outbound_hosts"), "{err}");

        let timeout = recorder(|_| Err(HttpError::Timeout("https://slow.example/".into())));
        let err = run_with(json!({"webhook-urls": ["https://slow.example/"]}), CANONICAL, &timeout).unwrap_err();
        assert!(err.retryable);
    }

    #[test]
    fn bad_options_are_fatal_errors_naming_the_option() {
        let cases = [
            (json!({"webhook-urls": "https://example.test/a"}), "webhook-urls"),
            (json!({"webhook-urls": [1]}), "webhook-urls"),
            (json!({"webhook-urls": ["https://a/"], "headers": ["x"]}), "headers"),
            (json!({"webhook-urls": ["https://a/"], "headers": {"X-Count": 3}}), "headers"),
            (json!({"webhook-urls": ["https://a/"], "egress_format_version": "0.3.0"}), "egress_format_version"),
            (json!({"webhook-urls": ["https://a/"], "egress_format_version": 1}), "egress_format_version"),
        ];
        for (options, name) in cases {
            let transport = recorder(ok);
            let err = run_with(options.clone(), CANONICAL, &transport).unwrap_err();
            assert!(!err.retryable);
            assert!(err.message.contains(&format!("option `{name}`")), "{options}: {err}");
            assert!(transport.requests().is_empty());
        }
    }
}
