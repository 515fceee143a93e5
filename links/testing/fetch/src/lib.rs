//! Test fixture for the host capabilities. Options (all optional, applied in
//! this order):
//! - `secret`: read this secret; a failure is the link's error. The value is
//!   logged and, with `leak_secret: true`, put in the error message, so tests can
//!   check that the host scrubs it.
//! - `cache_key`: read the key, then store `cache_value` under it; the value read
//!   before (or null) is reported as `cached`.
//! - `url`: send a request (`method`, default GET; `body` sent as JSON when set);
//!   an HTTP failure is the link's error.
//! - `route_to_field`: route the vCon to the list named by this top-level field of
//!   the vCon (a list the options do not name, to test the host's route checks).
//!
//! What happened is written under `fetch` in the returned vCon.

use conserver_link_sdk::http::{Client, Request, Transport};
use conserver_link_sdk::prelude::*;
use conserver_link_sdk::{cache, log, secrets};
use serde_json::{Value, json};

/// The fetch fixture.
pub struct Fetch;

impl Link for Fetch {
    fn process(ctx: &Context, mut vcon: Vcon) -> LinkResult {
        let mut report = serde_json::Map::new();
        if let Some(name) = ctx.options.get("secret").and_then(Value::as_str) {
            let value = secrets::get(name).map_err(|e| LinkError::fatal(format!("secret `{name}` {e}")))?;
            log::info(&format!("read secret {name}: {value}"));
            if ctx.options.get("leak_secret").and_then(Value::as_bool) == Some(true) {
                return Err(LinkError::fatal(format!("leaking {value} on purpose")));
            }
            report.insert("secret_len".into(), json!(value.len()));
        }
        if let Some(key) = ctx.options.get("cache_key").and_then(Value::as_str) {
            let before = cache::get(key).map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
            report.insert("cached".into(), json!(before));
            let value = ctx.options.get("cache_value").and_then(Value::as_str).unwrap_or_default();
            cache::set(key, value.as_bytes(), 60).map_err(LinkError::fatal)?;
        }
        if let Some(url) = ctx.options.get("url").and_then(Value::as_str) {
            let method = ctx.options.get("method").and_then(Value::as_str).unwrap_or("GET");
            let mut request = Request::new(method, url);
            if let Some(body) = ctx.options.get("body") {
                request = request.json(body)?;
            }
            let response = Client::host().send(&request)?;
            report.insert("status".into(), json!(response.status));
            report.insert("body".into(), json!(response.text()));
        }
        let route = ctx
            .options
            .get("route_to_field")
            .and_then(Value::as_str)
            .and_then(|field| vcon.get(field))
            .and_then(|list| list.as_str().map(String::from));
        vcon.as_map_mut().insert("fetch".into(), Value::Object(report));
        let verdict = Verdict::changed(vcon);
        Ok(match route {
            Some(list) => verdict.with(Directive::RouteTo(vec![list])),
            None => verdict,
        })
    }
}

export_link!(Fetch);
