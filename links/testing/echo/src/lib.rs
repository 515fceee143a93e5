//! Test fixture: returns the vCon unchanged by default. Options select other
//! answers so one component covers every verdict: `mode` = `unchanged` | `changed`
//! (adds `"echoed": true`) | `halt` | `error` (message from `message`, retryable from
//! `retryable`) | `route` (routes to `lists`) | `expire` (`seconds`) | `log` (logs
//! `message` at info) | `garbage` (returns a vCon that is not JSON).

use conserver_link_sdk::prelude::*;

/// The echo fixture.
pub struct Echo;

impl Link for Echo {
    fn process(ctx: &Context, mut vcon: Vcon) -> LinkResult {
        let mode: String = ctx.option_or("mode", "unchanged".to_string())?;
        let message: String = ctx.option_or("message", "echo failed on purpose".to_string())?;
        match mode.as_str() {
            "unchanged" => Ok(Verdict::unchanged()),
            "changed" => {
                vcon.as_map_mut().insert("echoed".into(), true.into());
                Ok(Verdict::changed(vcon))
            }
            "halt" => Ok(Verdict::halt()),
            "error" => {
                let retryable: bool = ctx.option_or("retryable", false)?;
                Err(LinkError { message, retryable })
            }
            "route" => Ok(Verdict::unchanged().with(Directive::RouteTo(ctx.option_or("lists", Vec::new())?))),
            "expire" => Ok(Verdict::unchanged().with(Directive::ExpireAfterSecs(ctx.option_or("seconds", 60)?))),
            "log" => {
                conserver_link_sdk::log::info(&message);
                Ok(Verdict::unchanged())
            }
            "garbage" => {
                // Bypass the SDK's serialisation to hand the host something broken.
                let mut broken = Vcon::default();
                broken.as_map_mut().insert("uuid".into(), serde_json::Value::Null);
                Ok(Verdict::changed(broken))
            }
            other => Err(LinkError::fatal(format!("unknown mode `{other}`"))),
        }
    }
}

export_link!(Echo);
