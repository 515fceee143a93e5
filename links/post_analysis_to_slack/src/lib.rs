//! `post_analysis_to_slack`: post flagged analyses to Slack.
//!
//! For each analysis whose `type` is `only_if.analysis_type`, whose body contains
//! `only_if.includes` (a string body is searched as is, any other body in its
//! Python `json.dumps` form) and that has no truthy `was_posted_to_slack`, the link
//! posts the abstract (the body of the `summary` analysis of the same dialog index)
//! with Slack's Web API `chat.postMessage`
//! (`POST https://slack.com/api/chat.postMessage`, `Authorization: Bearer <token>`,
//! JSON `{"channel", "text": <abstract>, "blocks": [...]}`; three section blocks:
//! "Check this out :neutral_face:", the abstract, and "Please review the details
//! here:" with a "Details" button to the details URL):
//! 1. when the vCon has a `strolid_dealer` attachment (by `purpose` or legacy
//!    `type`; the body an object or a JSON string) whose `team.name` first word,
//!    lower-cased, is not `strolid`: to `team-<team>-alerts`, with ` #<dealer>`
//!    (the attachment's `name`) appended to the abstract;
//! 2. always: to `default_channel_name` (with the same abstract).
//!
//! Then `was_posted_to_slack: true` is added to the analysis entry and the vCon is
//! returned changed. When a post fails (HTTP error, or Slack answers `ok: false`),
//! the message "The channel name doesn't exist - <channel>" is posted to
//! `default_channel_name` and the link fails with the first error (the vCon goes
//! to the dead-letter queue, nothing is marked), as in Python.
//!
//! Options (defaults as in the Python conserver's `links.post_analysis_to_slack`):
//! - `token` (string, none): the Slack bot token. When empty or absent, the token
//!   is read from the granted secret named by `token_secret`.
//! - `token_secret` (string, `"SLACK_BOT_TOKEN"`; new): the secret holding the
//!   token (`secrets: [SLACK_BOT_TOKEN]` in the link's config).
//! - `default_channel_name` (string, required when something is posted): the
//!   channel every alert goes to, and where failures are reported.
//! - `url` (string, `"Url to link to the details page"`): the details URL. A
//!   `{vcon_id}` placeholder is replaced by the vCon's uuid (plain text replace;
//!   other braces are kept); without one, `?_vcon_id="<uuid>"` is appended.
//! - `only_if` (mapping, `{"analysis_type": "customer_frustration", "includes":
//!   "NEEDS REVIEW"}`): which analyses to post; both keys are required when the
//!   option is given.
//! - `channel_name` (none) and `analysis_to_post` (`"summary"`): accepted and
//!   unused, as in Python (the `summary` analysis is always the abstract).
//!
//! - `slack_api_url` (string, `"https://slack.com/api"`; new): the Slack Web API
//!   base, for a Slack-compatible gateway or a test server.
//!
//! `slack.com` (or the `slack_api_url` host) must be in the link's
//! `allowed_outbound_hosts`.
//!
//! Differences from Python:
//! - The token may come from a granted secret (`token_secret`) instead of the
//!   config. With no token at all, the link fails with an error naming `token`
//!   before posting (Python posted without credentials and failed on Slack's
//!   `not_authed`).
//! - Missing `options` mean `{}` (Python crashed on `None`); an option of the
//!   wrong type is a fatal error naming it. `token` and `default_channel_name`
//!   are only required when there is something to post, as in Python.
//! - A flagged analysis with no `summary` for its dialog is a fatal error saying
//!   so (Python crashed with a `TypeError`). Analysis entries without `type`,
//!   `body` or `dialog` are skipped or do not match (Python crashed on the
//!   missing key). A `strolid_dealer` team without a usable `name` counts as no
//!   team (Python crashed).
//! - Python's `WebClient` retried once on a connection error; this link does not
//!   (the vCon goes to the dead-letter queue, and a timeout or 5xx is marked
//!   retryable).
//! - Metrics counters (`fallback_channel_used`, `post_failures`) are log lines.

use conserver_link_sdk::http::{Client, Request, Transport};
use conserver_link_sdk::prelude::*;
use conserver_link_sdk::secrets::{self, SecretError};
use conserver_link_sdk::{log, python_json};
use serde_json::{Map, Value, json};

/// The `post_analysis_to_slack` link.
pub struct PostAnalysisToSlack;

/// Slack's Web API method the link calls.
pub const SLACK_POST_MESSAGE_URL: &str = "https://slack.com/api/chat.postMessage";
/// Where the Slack Web API is, unless `slack_api_url` says otherwise.
pub const DEFAULT_SLACK_API_URL: &str = "https://slack.com/api";

const DEFAULT_URL: &str = "Url to link to the details page";
const DEFAULT_ANALYSIS_TYPE: &str = "customer_frustration";
const DEFAULT_INCLUDES: &str = "NEEDS REVIEW";
const DEFAULT_TOKEN_SECRET: &str = "SLACK_BOT_TOKEN";

/// Reads a granted secret (the SDK's `secrets::get`; a closure in tests).
pub type SecretReader<'a> = &'a dyn Fn(&str) -> Result<String, SecretError>;

/// The options this link acts on.
#[derive(Debug, Clone, PartialEq)]
struct Options {
    slack_api_url: String,
    token: Option<String>,
    token_secret: String,
    default_channel_name: Option<String>,
    url: String,
    analysis_type: String,
    includes: String,
}

impl Options {
    fn from_context(ctx: &Context) -> Result<Self, LinkError> {
        let invalid = |name: &str, why: &str| {
            LinkError::fatal(format!("option `{name}` of link `{}` is invalid: {why}", ctx.link_name))
        };
        let (analysis_type, includes) = match ctx.options.get("only_if") {
            None | Some(Value::Null) => (DEFAULT_ANALYSIS_TYPE.to_string(), DEFAULT_INCLUDES.to_string()),
            Some(Value::Object(only_if)) => {
                let field = |key: &str| match only_if.get(key) {
                    Some(Value::String(text)) => Ok(text.clone()),
                    None => Err(invalid(&format!("only_if.{key}"), "required when `only_if` is given")),
                    Some(other) => Err(invalid(&format!("only_if.{key}"), &format!("must be a string, got {other}"))),
                };
                (field("analysis_type")?, field("includes")?)
            }
            Some(other) => return Err(invalid("only_if", &format!("must be a mapping, got {other}"))),
        };
        // Accepted and unused, as in Python.
        ctx.option_or::<Option<String>>("channel_name", None)?;
        ctx.option_or::<String>("analysis_to_post", "summary".into())?;
        Ok(Self {
            slack_api_url: ctx
                .option_or("slack_api_url", DEFAULT_SLACK_API_URL.to_string())?
                .trim_end_matches('/')
                .to_string(),
            token: ctx.option_or::<Option<String>>("token", None)?.filter(|t| !t.is_empty()),
            token_secret: ctx.option_or("token_secret", DEFAULT_TOKEN_SECRET.to_string())?,
            default_channel_name: ctx.option_or::<Option<String>>("default_channel_name", None)?,
            url: ctx.option_or("url", DEFAULT_URL.to_string())?,
            analysis_type,
            includes,
        })
    }
}

/// The details URL: `{vcon_id}` replaced, or the legacy `?_vcon_id="<uuid>"` suffix.
pub fn build_details_url(template: &str, vcon_uuid: &str) -> String {
    if template.contains("{vcon_id}") {
        template.replace("{vcon_id}", vcon_uuid)
    } else {
        format!("{template}?_vcon_id=\"{vcon_uuid}\"")
    }
}

/// Python's `str()` of a JSON value, for text built with f-strings.
fn python_str(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(text) => text.clone(),
        other => python_json::dumps(other),
    }
}

/// Python's `bool()` of a JSON value.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

/// Python's `==` between two JSON values (numbers compare by value, `True == 1`).
fn python_eq(a: &Value, b: &Value) -> bool {
    let number = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    };
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// vcon-lib's `decode_body`: a string body with `encoding` `json` or absent is
/// parsed when it is JSON; anything else is returned as is.
fn decoded_body(entry: &Map<String, Value>) -> Value {
    let body = entry.get("body").cloned().unwrap_or(Value::Null);
    let json_or_unset = match entry.get("encoding") {
        None | Some(Value::Null) => true,
        Some(encoding) => encoding.as_str() == Some("json"),
    };
    if let Value::String(text) = &body
        && json_or_unset
        && let Ok(parsed) = serde_json::from_str(text)
    {
        return parsed;
    }
    body
}

fn strolid_dealer_bodies(vcon: &Vcon) -> Vec<Value> {
    let Some(Value::Array(attachments)) = vcon.get("attachments") else {
        return Vec::new();
    };
    attachments
        .iter()
        .filter_map(Value::as_object)
        .filter(|a| {
            let label = |key: &str| a.get(key).and_then(Value::as_str) == Some("strolid_dealer");
            label("purpose") || label("type")
        })
        .map(decoded_body)
        .collect()
}

/// The team: the first word, lower-cased, of `team.name` of the last
/// `strolid_dealer` attachment that has a team.
pub fn get_team(vcon: &Vcon) -> Option<String> {
    let mut team_name = None;
    for body in strolid_dealer_bodies(vcon) {
        let Some(team) = body.get("team").filter(|t| truthy(t)) else { continue };
        match team.get("name").and_then(Value::as_str).and_then(|n| n.split_whitespace().next()) {
            Some(first) => team_name = Some(first.to_lowercase()),
            None => log::warn(&format!("post_analysis_to_slack: strolid_dealer team without a usable name: {team}")),
        }
    }
    team_name
}

/// The dealer: `name` of the last `strolid_dealer` attachment (null when it has
/// none, as in Python).
pub fn get_dealer(vcon: &Vcon) -> Option<Value> {
    strolid_dealer_bodies(vcon).last().map(|body| body.get("name").cloned().unwrap_or(Value::Null))
}

/// The first `summary` analysis of dialog `index`.
pub fn get_summary(analyses: &[Value], index: &Value) -> Option<Map<String, Value>> {
    analyses.iter().filter_map(Value::as_object).find_map(|a| {
        let is_summary = a.get("type").and_then(Value::as_str) == Some("summary");
        let same_dialog = a.get("dialog").is_some_and(|d| python_eq(d, index));
        (is_summary && same_dialog).then(|| a.clone())
    })
}

/// Sends Slack Web API calls.
struct Slack<'a> {
    api_url: &'a str,
    token: String,
    transport: &'a dyn Transport,
}

impl Slack<'_> {
    fn post_message(&self, payload: &Value) -> Result<(), LinkError> {
        let body = serde_json::to_vec(payload).map_err(|e| LinkError::fatal(e.to_string()))?;
        let request = Request::post(&format!("{}/chat.postMessage", self.api_url))
            .bearer(&self.token)
            .header("content-type", "application/json; charset=utf-8")
            .body(body);
        let answer = self.transport.send(&request)?.error_for_status()?;
        let reply: Value = answer.json()?;
        if reply.get("ok") == Some(&Value::Bool(true)) {
            return Ok(());
        }
        let error = reply.get("error").map_or_else(|| reply.to_string(), python_str);
        let message = format!("Slack chat.postMessage failed: {error}");
        Err(if error == "ratelimited" { LinkError::retryable(message) } else { LinkError::fatal(message) })
    }

    /// Python's `post_blocks_to_channel`.
    fn post_blocks(&self, channel: &str, abstract_: &str, url: &str, default_channel: &str) -> Result<(), LinkError> {
        let blocks = json!([
            {"type": "section", "text": {"type": "mrkdwn", "text": "Check this out :neutral_face:"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": abstract_}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "Please review the details here:"},
                "accessory": {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Details", "emoji": true},
                    "value": "click_me_123",
                    "url": url,
                    "action_id": "button-action"
                }
            }
        ]);
        let payload = json!({"channel": channel, "text": abstract_, "blocks": blocks});
        let Err(error) = self.post_message(&payload) else { return Ok(()) };
        log::warn("post_analysis_to_slack: conserver.link.slack.fallback_channel_used");
        let fallback =
            json!({"channel": default_channel, "text": format!("The channel name doesn't exist - {channel}")});
        if let Err(second) = self.post_message(&fallback) {
            return Err(LinkError {
                message: format!(
                    "{second} (while reporting to `{default_channel}` that posting to `{channel}` failed: {error})"
                ),
                retryable: second.retryable,
            });
        }
        log::error(&format!("post_analysis_to_slack: an error occurred posting to {channel}: {error}"));
        Err(error)
    }
}

impl PostAnalysisToSlack {
    fn run(ctx: &Context, mut vcon: Vcon, transport: &dyn Transport, secret: SecretReader<'_>) -> LinkResult {
        let options = Options::from_context(ctx)?;
        let analyses = match vcon.get("analysis") {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let uuid = vcon.uuid().unwrap_or_else(|| ctx.vcon_uuid.clone());
        let mut slack: Option<Slack<'_>> = None;
        let mut posted = Vec::new();
        for (position, entry) in analyses.iter().enumerate() {
            let Some(analysis) = entry.as_object() else { continue };
            if analysis.get("type").and_then(Value::as_str) != Some(options.analysis_type.as_str()) {
                continue;
            }
            let haystack = match analysis.get("body") {
                None => continue,
                Some(Value::String(text)) => text.clone(),
                Some(other) => python_json::dumps(other),
            };
            if !haystack.contains(&options.includes) {
                continue;
            }
            if analysis.get("was_posted_to_slack").is_some_and(truthy) {
                continue;
            }
            let default_channel = options.default_channel_name.clone().ok_or_else(|| {
                LinkError::fatal(format!(
                    "option `default_channel_name` of link `{}` is required to post analyses to Slack",
                    ctx.link_name
                ))
            })?;
            let slack = match &slack {
                Some(slack) => slack,
                None => slack.insert(Slack {
                    api_url: &options.slack_api_url,
                    token: Self::token(ctx, &options, secret)?,
                    transport,
                }),
            };
            let url = build_details_url(&options.url, &uuid);
            let team = get_team(&vcon);
            let dealer = get_dealer(&vcon).unwrap_or(Value::Null);
            let dialog = analysis.get("dialog").cloned().unwrap_or(Value::Null);
            let summary = get_summary(&analyses, &dialog).ok_or_else(|| {
                LinkError::fatal(format!(
                    "analysis `{}` of dialog {dialog} is flagged but the vCon has no `summary` analysis for that \
                     dialog to post",
                    options.analysis_type
                ))
            })?;
            let mut abstract_ = match summary.get("body") {
                Some(Value::String(text)) => text.clone(),
                Some(other) => python_json::dumps(other),
                None => {
                    return Err(LinkError::fatal(format!("the `summary` analysis of dialog {dialog} has no body")));
                }
            };
            if let Some(team) = team.filter(|t| t != "strolid") {
                let channel = format!("team-{team}-alerts");
                abstract_.push_str(&format!(" #{}", python_str(&dealer)));
                slack.post_blocks(&channel, &abstract_, &url, &default_channel).inspect_err(|_| {
                    log::warn("post_analysis_to_slack: conserver.link.slack.post_failures");
                })?;
            }
            slack.post_blocks(&default_channel, &abstract_, &url, &default_channel).inspect_err(|_| {
                log::warn("post_analysis_to_slack: conserver.link.slack.post_failures");
            })?;
            posted.push(position);
        }
        if posted.is_empty() {
            return Ok(Verdict::unchanged());
        }
        if let Value::Array(entries) = vcon.field_mut("analysis") {
            for position in posted {
                if let Some(Value::Object(entry)) = entries.get_mut(position) {
                    entry.insert("was_posted_to_slack".into(), Value::Bool(true));
                }
            }
        }
        Ok(Verdict::changed(vcon))
    }

    fn token(ctx: &Context, options: &Options, secret: SecretReader<'_>) -> Result<String, LinkError> {
        if let Some(token) = &options.token {
            return Ok(token.clone());
        }
        match secret(&options.token_secret) {
            Ok(token) if !token.is_empty() => Ok(token),
            result => {
                let why = match result {
                    Err(SecretError::NotGranted) => SecretError::NotGranted.to_string(),
                    _ => "is empty or not set on the host".to_string(),
                };
                Err(LinkError::fatal(format!(
                    "option `token` of link `{}` is not set, and secret `{}` (option `token_secret`) {why}",
                    ctx.link_name, options.token_secret
                )))
            }
        }
    }
}

impl Link for PostAnalysisToSlack {
    fn process(ctx: &Context, vcon: Vcon) -> LinkResult {
        Self::run(ctx, vcon, &Client::host(), &secrets::get)
    }
}

export_link!(PostAnalysisToSlack);

#[cfg(test)]
mod tests {
    use super::*;
    use conserver_link_sdk::http::Recorder;
    use conserver_link_sdk::http::{HttpError, Response};

    /// Records every request and answers the n-th with `answer(n)`.
    fn recorder<F: Fn(usize) -> Result<Response, HttpError>>(
        answer: F,
    ) -> Recorder<impl Fn(&Request, usize) -> Result<Response, HttpError>> {
        Recorder::new(move |_, n| answer(n))
    }

    fn slack_ok(_: usize) -> Result<Response, HttpError> {
        Ok(Response::new(200, r#"{"ok": true, "channel": "C1", "ts": "1.2"}"#))
    }

    fn no_secret(_: &str) -> Result<String, SecretError> {
        Err(SecretError::NotGranted)
    }

    /// The vCon of the Python tests (legacy `type` attachment with a native body).
    fn sample() -> Value {
        json!({
            "uuid": "test-uuid",
            "attachments": [{"type": "strolid_dealer", "body": {"name": "Dealer One", "team": {"name": "Acme Toyota"}}}],
            "analysis": [
                {"dialog": 0, "type": "customer_frustration", "body": "Customer is angry and NEEDS REVIEW immediately"},
                {"dialog": 0, "type": "summary", "body": "Summary for Slack"}
            ]
        })
    }

    fn base_options() -> Value {
        json!({"token": "test-token", "default_channel_name": "default-alerts", "url": "https://details.test"})
    }

    fn vcon_of(doc: &Value) -> Vcon {
        Vcon::from_json(&doc.to_string()).unwrap()
    }

    fn run_with(
        options: Value,
        doc: &Value,
        transport: &dyn Transport,
        secret: SecretReader<'_>,
    ) -> Result<Verdict, LinkError> {
        let mut ctx = Context::for_test("post_analysis_to_slack", options);
        ctx.vcon_uuid = "test-uuid".into();
        PostAnalysisToSlack::run(&ctx, vcon_of(doc), transport, secret)
    }

    fn blocks_message(channel: &str, text: &str, url: &str) -> Value {
        json!({
            "channel": channel,
            "text": text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": "Check this out :neutral_face:"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": "Please review the details here:"},
                    "accessory": {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Details", "emoji": true},
                        "value": "click_me_123",
                        "url": url,
                        "action_id": "button-action"
                    }
                }
            ]
        })
    }

    fn expected_request(token: &str, payload: &Value) -> Request {
        Request {
            method: "POST".into(),
            url: "https://slack.com/api/chat.postMessage".into(),
            headers: vec![
                ("authorization".into(), format!("Bearer {token}")),
                ("content-type".into(), "application/json; charset=utf-8".into()),
            ],
            body: serde_json::to_vec(payload).unwrap(),
            timeout: None,
        }
    }

    fn sent(transport: &Recorder<impl Fn(&Request, usize) -> Result<Response, HttpError>>) -> Vec<Request> {
        transport.requests().clone()
    }

    #[test]
    fn helpers_read_team_dealer_and_summary_in_legacy_and_spec_shapes() {
        let legacy = vcon_of(&sample());
        assert_eq!(get_team(&legacy).as_deref(), Some("acme"));
        assert_eq!(get_dealer(&legacy), Some(json!("Dealer One")));
        let analyses = sample()["analysis"].as_array().unwrap().clone();
        assert_eq!(get_summary(&analyses, &json!(0)).unwrap()["body"], "Summary for Slack");
        assert_eq!(get_summary(&analyses, &json!(0.0)).unwrap()["body"], "Summary for Slack");
        assert!(get_summary(&analyses, &json!(1)).is_none());

        let spec = vcon_of(&json!({"attachments": [{
            "purpose": "strolid_dealer",
            "body": "{\"name\": \"Dealer Two\", \"team\": {\"name\": \"  Big\\tMotors Group\"}}",
            "encoding": "json"
        }]}));
        assert_eq!(get_team(&spec).as_deref(), Some("big"));
        assert_eq!(get_dealer(&spec), Some(json!("Dealer Two")));

        let none = vcon_of(&json!({"attachments": [{"purpose": "tags", "body": "[]", "encoding": "json"}]}));
        assert_eq!(get_team(&none), None);
        assert_eq!(get_dealer(&none), None);

        // The last dealer attachment wins; a team without a usable name is no team.
        let several = vcon_of(&json!({"attachments": [
            {"purpose": "strolid_dealer", "body": {"name": "First", "team": {"name": "Alpha"}}},
            {"purpose": "strolid_dealer", "body": {"team": {"name": ""}}},
            {"purpose": "strolid_dealer", "body": "not json", "encoding": "none"}
        ]}));
        assert_eq!(get_team(&several).as_deref(), Some("alpha"));
        assert_eq!(get_dealer(&several), Some(Value::Null));
    }

    #[test]
    fn details_urls_follow_the_python_rules() {
        assert_eq!(
            build_details_url("https://details.test", "test-uuid"),
            "https://details.test?_vcon_id=\"test-uuid\""
        );
        assert_eq!(
            build_details_url("https://app.hex.tech/x/app/y/latest?_vcon_id=\"{vcon_id}\"", "abc-123"),
            "https://app.hex.tech/x/app/y/latest?_vcon_id=\"abc-123\""
        );
        assert_eq!(
            build_details_url("https://portal.strolidcxm.com/app/conversations/{vcon_id}", "abc-123"),
            "https://portal.strolidcxm.com/app/conversations/abc-123"
        );
        assert_eq!(build_details_url("https://x.test/{other}/{vcon_id}/{0}", "u"), "https://x.test/{other}/u/{0}");
    }

    #[test]
    fn posts_to_the_team_then_the_default_channel_and_marks_the_analysis() {
        let transport = recorder(slack_ok);
        let verdict = run_with(base_options(), &sample(), &transport, &no_secret).unwrap();
        let url = "https://details.test?_vcon_id=\"test-uuid\"";
        let text = "Summary for Slack #Dealer One";
        assert_eq!(
            sent(&transport),
            vec![
                expected_request("test-token", &blocks_message("team-acme-alerts", text, url)),
                expected_request("test-token", &blocks_message("default-alerts", text, url)),
            ]
        );
        let mut expected = sample();
        expected["analysis"][0]["was_posted_to_slack"] = json!(true);
        let out = verdict.vcon().unwrap();
        assert_eq!(Value::Object(out.to_map()), expected);
        assert_eq!(
            out.to_json().unwrap(),
            r#"{"uuid":"test-uuid","attachments":[{"type":"strolid_dealer","body":{"name":"Dealer One","team":{"name":"Acme Toyota"}}}],"analysis":[{"dialog":0,"type":"customer_frustration","body":"Customer is angry and NEEDS REVIEW immediately","was_posted_to_slack":true},{"dialog":0,"type":"summary","body":"Summary for Slack"}]}"#
        );
    }

    #[test]
    fn already_posted_or_unmatched_analyses_post_nothing() {
        let mut posted = sample();
        posted["analysis"][0]["was_posted_to_slack"] = json!(true);
        let mut other_text = sample();
        other_text["analysis"][0]["body"] = json!("all fine");
        let mut other_type = sample();
        other_type["analysis"][0]["type"] = json!("customers_frustration");
        let no_analysis = json!({"uuid": "test-uuid"});
        for doc in [posted, other_text, other_type, no_analysis] {
            let transport = recorder(slack_ok);
            // Nothing to post: the token and default channel are not needed.
            let verdict = run_with(json!({}), &doc, &transport, &no_secret).unwrap();
            assert!(verdict.vcon().is_none() && !verdict.is_halt());
            assert!(sent(&transport).is_empty());
        }
    }

    #[test]
    fn a_strolid_team_or_no_team_posts_only_to_the_default_channel() {
        let mut strolid = sample();
        strolid["attachments"][0]["body"]["team"]["name"] = json!("Strolid Internal");
        let mut no_team = sample();
        no_team["attachments"] = json!([]);
        for doc in [strolid, no_team] {
            let transport = recorder(slack_ok);
            let options = json!({"token": "t", "default_channel_name": "d", "url": "https://p/{vcon_id}"});
            let verdict = run_with(options, &doc, &transport, &no_secret).unwrap();
            assert_eq!(
                sent(&transport),
                vec![expected_request("t", &blocks_message("d", "Summary for Slack", "https://p/test-uuid"))]
            );
            assert_eq!(verdict.vcon().unwrap().get("analysis").unwrap()[0]["was_posted_to_slack"], json!(true));
        }
    }

    #[test]
    fn a_dealer_without_a_name_is_written_as_python_writes_none() {
        let mut doc = sample();
        doc["attachments"][0]["body"] = json!({"team": {"name": "Acme"}});
        let transport = recorder(slack_ok);
        run_with(base_options(), &doc, &transport, &no_secret).unwrap();
        let body: Value = serde_json::from_slice(&sent(&transport)[0].body).unwrap();
        assert_eq!(body["text"], "Summary for Slack #None");
    }

    #[test]
    fn every_flagged_analysis_is_posted_with_its_own_summary() {
        let doc = json!({
            "uuid": "test-uuid",
            "analysis": [
                {"dialog": 0, "type": "summary", "body": {"short": "zero"}, "encoding": "json"},
                {"dialog": 1, "type": "frustration", "body": {"verdict": "NEEDS REVIEW"}},
                {"dialog": 1, "type": "summary", "body": "one"},
                {"dialog": 0, "type": "frustration", "body": "NEEDS REVIEW"},
                {"dialog": 2, "type": "frustration", "body": "NEEDS REVIEW", "was_posted_to_slack": false}
            ]
        });
        let summaries = json!([{"dialog": 2, "type": "summary", "body": "two"}]);
        let mut doc = doc;
        doc["analysis"].as_array_mut().unwrap().extend(summaries.as_array().unwrap().clone());
        let options = json!({"token": "t", "default_channel_name": "d", "url": "u",
            "only_if": {"analysis_type": "frustration", "includes": "NEEDS REVIEW"}});
        let transport = recorder(slack_ok);
        let verdict = run_with(options, &doc, &transport, &no_secret).unwrap();
        let texts: Vec<Value> = sent(&transport)
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["text"].clone())
            .collect();
        assert_eq!(texts, [json!("one"), json!("{\"short\": \"zero\"}"), json!("two")]);
        let out = verdict.vcon().unwrap().get("analysis").unwrap();
        let marks: Vec<_> = out.as_array().unwrap().iter().map(|a| a.get("was_posted_to_slack").cloned()).collect();
        assert_eq!(marks, [None, Some(json!(true)), None, Some(json!(true)), Some(json!(true)), None]);
    }

    #[test]
    fn a_failed_post_reports_to_the_default_channel_and_fails_without_marking() {
        let transport = recorder(|n| {
            Ok(match n {
                0 => Response::new(200, r#"{"ok": false, "error": "channel_not_found"}"#),
                _ => Response::new(200, r#"{"ok": true}"#),
            })
        });
        let err = run_with(base_options(), &sample(), &transport, &no_secret).unwrap_err();
        assert!(err.message.contains("channel_not_found"), "{err}");
        assert!(!err.retryable);
        let url = "https://details.test?_vcon_id=\"test-uuid\"";
        assert_eq!(
            sent(&transport),
            vec![
                expected_request(
                    "test-token",
                    &blocks_message("team-acme-alerts", "Summary for Slack #Dealer One", url)
                ),
                expected_request(
                    "test-token",
                    &json!({"channel": "default-alerts", "text": "The channel name doesn't exist - team-acme-alerts"})
                ),
            ]
        );
    }

    #[test]
    fn a_failed_fallback_is_reported_with_both_errors() {
        let transport =
            recorder(|n| if n == 0 { Ok(Response::new(503, "down")) } else { Err(HttpError::Timeout("slack".into())) });
        let err = run_with(base_options(), &sample(), &transport, &no_secret).unwrap_err();
        assert!(err.retryable);
        assert!(err.message.contains("timed out") && err.message.contains("503"), "{err}");
        assert_eq!(sent(&transport).len(), 2);
    }

    #[test]
    fn a_failed_default_channel_post_fails_after_the_team_post() {
        let transport = recorder(|n| {
            Ok(match n {
                1 => Response::new(429, r#"{"ok": false, "error": "ratelimited"}"#),
                _ => Response::new(200, r#"{"ok": true}"#),
            })
        });
        let err = run_with(base_options(), &sample(), &transport, &no_secret).unwrap_err();
        assert!(err.retryable, "429 is retryable");
        let channels: Vec<Value> = sent(&transport)
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["channel"].clone())
            .collect();
        assert_eq!(channels, [json!("team-acme-alerts"), json!("default-alerts"), json!("default-alerts")]);
    }

    #[test]
    fn the_token_comes_from_the_option_or_the_granted_secret() {
        let from_secret = |name: &str| {
            if name == "SLACK_BOT_TOKEN" { Ok("xoxb-secret".to_string()) } else { Err(SecretError::NotGranted) }
        };
        let options = json!({"default_channel_name": "d", "url": "u", "token": ""});
        let transport = recorder(slack_ok);
        run_with(options, &sample(), &transport, &from_secret).unwrap();
        assert!(sent(&transport).iter().all(|r| r.header_value("authorization") == Some("Bearer xoxb-secret")));

        let named = |name: &str| {
            if name == "MY_SLACK" { Ok("xoxb-named".to_string()) } else { Err(SecretError::NotGranted) }
        };
        let options = json!({"default_channel_name": "d", "url": "u", "token_secret": "MY_SLACK"});
        let transport = recorder(slack_ok);
        run_with(options, &sample(), &transport, &named).unwrap();
        assert_eq!(sent(&transport)[0].header_value("authorization"), Some("Bearer xoxb-named"));

        let options = json!({"default_channel_name": "d", "token": "opt"});
        let transport = recorder(slack_ok);
        run_with(options, &sample(), &transport, &from_secret).unwrap();
        assert_eq!(sent(&transport)[0].header_value("authorization"), Some("Bearer opt"));
    }

    #[test]
    fn a_missing_token_or_default_channel_fails_before_posting() {
        let transport = recorder(slack_ok);
        let err = run_with(json!({"default_channel_name": "d"}), &sample(), &transport, &no_secret).unwrap_err();
        assert!(err.message.contains("option `token`") && err.message.contains("SLACK_BOT_TOKEN"), "{err}");
        assert!(err.message.contains("not granted"), "{err}");
        let empty = |_: &str| Ok(String::new());
        let err = run_with(json!({"default_channel_name": "d"}), &sample(), &transport, &empty).unwrap_err();
        assert!(err.message.contains("not set on the host"), "{err}");
        let err = run_with(json!({"token": "t"}), &sample(), &transport, &no_secret).unwrap_err();
        assert!(err.message.contains("option `default_channel_name`"), "{err}");
        assert!(!err.retryable);
        assert!(sent(&transport).is_empty());
    }

    #[test]
    fn a_flagged_analysis_without_a_summary_is_an_error() {
        let mut doc = sample();
        doc["analysis"][1]["dialog"] = json!(1);
        let transport = recorder(slack_ok);
        let err = run_with(base_options(), &doc, &transport, &no_secret).unwrap_err();
        assert!(err.message.contains("no `summary` analysis"), "{err}");
        assert!(sent(&transport).is_empty());
    }

    #[test]
    fn bad_options_are_fatal_errors_naming_the_option() {
        let cases = [
            (json!({"token": 5}), "token"),
            (json!({"token_secret": ["x"]}), "token_secret"),
            (json!({"url": 1}), "url"),
            (json!({"default_channel_name": true}), "default_channel_name"),
            (json!({"only_if": "x"}), "only_if"),
            (json!({"only_if": {"analysis_type": "x"}}), "only_if.includes"),
            (json!({"only_if": {"analysis_type": 1, "includes": "x"}}), "only_if.analysis_type"),
            (json!({"channel_name": 3}), "channel_name"),
            (json!({"analysis_to_post": {}}), "analysis_to_post"),
        ];
        for (options, name) in cases {
            let transport = recorder(slack_ok);
            let err = run_with(options.clone(), &sample(), &transport, &no_secret).unwrap_err();
            assert!(err.message.contains(&format!("option `{name}`")), "{options}: {err}");
            assert!(!err.retryable);
            assert!(sent(&transport).is_empty());
        }
    }
}
