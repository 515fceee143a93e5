//! Test fixture: an untrusted link's attacks on the host, one per `mode`, sized
//! by options. It exports the component interface itself (not through the
//! SDK's `Link` trait) so it can hand the host any string it likes.
//!
//! - `fields`: create `count` `wasi:http` header maps, each with one header of
//!   `value_bytes` bytes, and keep them all alive; then answer unchanged.
//! - `output`: answer a vCon of about `bytes` bytes: `{"uuid": …, "pad": [0,0,…]}`.
//! - `deep`: answer a vCon holding `depth` nested arrays.
//! - `log`: write `lines` log lines of `message` (default `x`) repeated to
//!   `line_bytes` bytes (default: the message's length).
//! - `secrets`: ask `count` times for a secret the config does not grant.
//! - `denied`: send `count` requests to `url` (a host not on the allow-list).
//! - `error`: fail with `message` repeated to `bytes` bytes (default: its length).
//!
//! Every mode answers unchanged unless it says otherwise.

#[cfg(target_arch = "wasm32")]
mod export {
    use conserver_link_sdk::bindings::exports::vcon::conserver0_1_0::processor::Guest;
    use conserver_link_sdk::bindings::vcon::conserver0_1_0::log::{self, Level};
    use conserver_link_sdk::bindings::vcon::conserver0_1_0::secrets;
    use conserver_link_sdk::bindings::vcon::conserver0_1_0::types::{Action, Context, LinkError, Verdict};
    use serde_json::Value;

    struct Hostile;

    fn fail(message: String) -> LinkError {
        LinkError { message, retryable: false }
    }

    fn unchanged() -> Verdict {
        Verdict { action: Action::Proceed(None), directives: Vec::new() }
    }

    fn changed(vcon: String) -> Verdict {
        Verdict { action: Action::Proceed(Some(vcon)), directives: Vec::new() }
    }

    fn repeated(unit: &str, bytes: usize) -> String {
        let unit = if unit.is_empty() { "x" } else { unit };
        let mut text = unit.repeat(bytes / unit.len() + 1);
        text.truncate(bytes);
        text
    }

    impl Guest for Hostile {
        fn process(context: Context, vcon: String) -> Result<Verdict, LinkError> {
            let options: Value = serde_json::from_str(&context.options).map_err(|e| fail(format!("options: {e}")))?;
            let number = |key: &str, default: u64| options.get(key).and_then(Value::as_u64).unwrap_or(default);
            let count = usize::try_from(number("count", 1)).unwrap_or(usize::MAX);
            let text =
                |key: &str, default: &str| options.get(key).and_then(Value::as_str).unwrap_or(default).to_string();
            let uuid = serde_json::from_str::<Value>(&vcon)
                .ok()
                .and_then(|v| v.get("uuid").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_default();
            match text("mode", "").as_str() {
                "fields" => {
                    let value = vec![b'a'; usize::try_from(number("value_bytes", 0)).unwrap_or(0)];
                    let mut kept = Vec::new();
                    for _ in 0..count {
                        let fields = wasip2::http::types::Fields::new();
                        if !value.is_empty() {
                            fields.append("x-pad", &value).map_err(|e| fail(format!("append: {e:?}")))?;
                        }
                        kept.push(fields);
                    }
                    log::write(Level::Info, &format!("kept {} header maps", kept.len()));
                    Ok(unchanged())
                }
                "output" => {
                    let bytes = usize::try_from(number("bytes", 0)).unwrap_or(0);
                    let mut out = format!("{{\"uuid\":\"{uuid}\",\"pad\":[0");
                    while out.len() + 3 < bytes {
                        out.push_str(",0");
                    }
                    out.push_str("]}");
                    Ok(changed(out))
                }
                "deep" => {
                    let depth = usize::try_from(number("depth", 1)).unwrap_or(1);
                    Ok(changed(format!("{{\"uuid\":\"{uuid}\",\"x\":{}{}}}", "[".repeat(depth), "]".repeat(depth))))
                }
                "log" => {
                    let message = text("message", "x");
                    let bytes = number("line_bytes", message.len() as u64);
                    let line = repeated(&message, usize::try_from(bytes).unwrap_or(1));
                    for _ in 0..number("lines", 1) {
                        log::write(Level::Info, &line);
                    }
                    Ok(unchanged())
                }
                "secrets" => {
                    for _ in 0..count {
                        let _ = secrets::get("HOSTILE_NOT_GRANTED");
                    }
                    Ok(unchanged())
                }
                "denied" => {
                    use conserver_link_sdk::http::{Client, Request, Transport};
                    let url = text("url", "http://denied.invalid/");
                    for _ in 0..count {
                        let _ = Client::host().send(&Request::new("GET", &url));
                    }
                    Ok(unchanged())
                }
                "error" => {
                    let message = text("message", "x");
                    let bytes = number("bytes", message.len() as u64);
                    Err(fail(repeated(&message, usize::try_from(bytes).unwrap_or(1))))
                }
                other => Err(fail(format!("unknown mode `{other}`"))),
            }
        }
    }

    conserver_link_sdk::bindings::export_link_world!(Hostile);
}
