//! `expire_vcon`: give the stored vCon a time to live.
//!
//! Options:
//! - `seconds` (whole number of seconds above 0, default `86400`, one day): the
//!   time to live.
//!
//! The link returns an `expire-after-secs` directive; the vCon itself is not read
//! or changed and the chain always goes on, as with the Python conserver's
//! `links.expire_vcon` (which ran `EXPIRE vcon:<uuid> <seconds>`).
//!
//! Differences from Python, from the TTL being a directive the host applies:
//! - The host sets the TTL after it has written the vCon at the end of the chain
//!   (or when a later link halts it), so the position of this link in the chain no
//!   longer matters: in Python a later link's write-back could clear the TTL. When
//!   several links ask for a TTL, the last one wins, and the host's own
//!   `VCON_REDIS_EXPIRY` is then not applied.
//! - If a later link fails, the vCon goes to the dead-letter queue with the host's
//!   `VCON_DLQ_EXPIRY` instead.
//! - `seconds` must be above 0. Python's `EXPIRE` with 0 or less deleted the vCon at
//!   once; there is no "delete" directive, and the host reads a TTL of 0 as "no
//!   TTL", so such a value is refused with a fatal error instead of doing the
//!   opposite of what it asked.
//! - Missing `options` mean `{}` (Python crashed on them).

use conserver_link_sdk::prelude::*;
use serde_json::Value;

/// The `expire_vcon` link.
pub struct ExpireVcon;

/// One day, the Python default.
const DEFAULT_SECONDS: u64 = 60 * 60 * 24;

fn seconds(ctx: &Context) -> Result<u64, LinkError> {
    let invalid = |got: &Value| {
        LinkError::fatal(format!(
            "option `seconds` of link `{}` must be a whole number of seconds above 0, got {got}",
            ctx.link_name
        ))
    };
    match ctx.options.get("seconds") {
        None | Some(Value::Null) => Ok(DEFAULT_SECONDS),
        Some(value) => match value.as_u64() {
            Some(secs) if secs > 0 => Ok(secs),
            _ => Err(invalid(value)),
        },
    }
}

impl Link for ExpireVcon {
    fn process(ctx: &Context, _vcon: Vcon) -> LinkResult {
        let secs = seconds(ctx)?;
        conserver_link_sdk::log::info(&format!("the vCon expires {secs} s after this chain"));
        Ok(Verdict::unchanged().with(Directive::ExpireAfterSecs(secs)))
    }
}

export_link!(ExpireVcon);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(options: Value) -> LinkResult {
        ExpireVcon::process(&Context::for_test("expire", options), Vcon::from_json(r#"{"uuid":"u"}"#).unwrap())
    }

    #[test]
    fn default_is_one_day() {
        let verdict = run(json!({})).unwrap();
        assert!(!verdict.is_halt());
        assert!(verdict.vcon().is_none());
        assert_eq!(verdict.directives(), [Directive::ExpireAfterSecs(86400)]);
        assert_eq!(run(json!({"seconds": null})).unwrap().directives(), [Directive::ExpireAfterSecs(86400)]);
    }

    #[test]
    fn custom_seconds_are_passed_on() {
        assert_eq!(run(json!({"seconds": 3600})).unwrap().directives(), [Directive::ExpireAfterSecs(3600)]);
        assert_eq!(run(json!({"seconds": 1})).unwrap().directives(), [Directive::ExpireAfterSecs(1)]);
    }

    #[test]
    fn zero_negative_fractional_and_non_numbers_are_fatal_errors_naming_the_option() {
        for bad in [json!(0), json!(-5), json!(1.5), json!("3600"), json!(true)] {
            let err = run(json!({"seconds": bad})).unwrap_err();
            assert!(!err.retryable);
            assert!(err.message.contains("option `seconds`"), "{}", err.message);
            assert!(err.message.contains("above 0"), "{}", err.message);
        }
    }
}
