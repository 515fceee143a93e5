//! `delay`: a test fixture that sleeps, then lets the chain go on with the vCon
//! unchanged. It widens the time each vCon spends in a chain, so concurrent
//! processing can be watched.
//!
//! Options:
//! - `seconds` (number of seconds, fractions allowed, default `5`): how long to
//!   sleep. A negative value is clamped to 0 with a warning, as in the Python
//!   conserver's `links.delay`.
//!
//! The sleep blocks in the host (a WASI clock wait), so it burns no fuel, but it
//! counts against the link's wall-clock deadline (`limits.timeout_ms`, 30 s by
//! default): raise that for delays near or above it.
//!
//! Differences from Python: a value that is not a number (`"5"`, `true`), not
//! finite, or too large to be a duration is a fatal error naming the option; Python
//! failed on most of those with a `TypeError`/`ValueError` (and took `true` as 1 s).

use std::time::Duration;

use conserver_link_sdk::prelude::*;
use serde_json::Value;

/// The `delay` link.
pub struct Delay;

/// The Python default, in seconds.
const DEFAULT_SECONDS: f64 = 5.0;

/// How long to sleep, from the options.
fn duration(ctx: &Context) -> Result<Duration, LinkError> {
    let invalid = |got: &Value| {
        LinkError::fatal(format!("option `seconds` of link `{}` must be a number of seconds, got {got}", ctx.link_name))
    };
    let seconds = match ctx.options.get("seconds") {
        None | Some(Value::Null) => DEFAULT_SECONDS,
        Some(value) => value.as_f64().ok_or_else(|| invalid(value))?,
    };
    let seconds = if seconds < 0.0 {
        conserver_link_sdk::log::warn(&format!(
            "link `{}`: negative seconds ({seconds}); clamping to 0",
            ctx.link_name
        ));
        0.0
    } else {
        seconds
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| {
        LinkError::fatal(format!(
            "option `seconds` of link `{}` must be a finite number of seconds, got {seconds}",
            ctx.link_name
        ))
    })
}

impl Delay {
    fn run(ctx: &Context, sleep: impl FnOnce(Duration)) -> LinkResult {
        let duration = duration(ctx)?;
        conserver_link_sdk::log::info(&format!("sleeping {} s", duration.as_secs_f64()));
        sleep(duration);
        conserver_link_sdk::log::info(&format!("resumed after {} s", duration.as_secs_f64()));
        Ok(Verdict::unchanged())
    }
}

impl Link for Delay {
    fn process(ctx: &Context, _vcon: Vcon) -> LinkResult {
        Self::run(ctx, std::thread::sleep)
    }
}

export_link!(Delay);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Instant;

    /// The duration the link asked to sleep.
    fn slept(options: Value) -> Result<Duration, LinkError> {
        let mut asked = None;
        let verdict = Delay::run(&Context::for_test("delay", options), |d| asked = Some(d))?;
        assert!(!verdict.is_halt());
        assert!(verdict.vcon().is_none());
        Ok(asked.unwrap())
    }

    #[test]
    fn default_is_five_seconds() {
        assert_eq!(slept(json!({})).unwrap(), Duration::from_secs(5));
        assert_eq!(slept(json!({"seconds": null})).unwrap(), Duration::from_secs(5));
    }

    #[test]
    fn custom_and_fractional_seconds() {
        assert_eq!(slept(json!({"seconds": 2})).unwrap(), Duration::from_secs(2));
        assert_eq!(slept(json!({"seconds": 0.25})).unwrap(), Duration::from_millis(250));
        assert_eq!(slept(json!({"seconds": 0})).unwrap(), Duration::ZERO);
    }

    #[test]
    fn other_options_keep_the_default() {
        assert_eq!(slept(json!({"unrelated": 1})).unwrap(), Duration::from_secs(5));
    }

    #[test]
    fn negative_seconds_are_clamped_to_zero() {
        assert_eq!(slept(json!({"seconds": -3})).unwrap(), Duration::ZERO);
        assert_eq!(slept(json!({"seconds": -0.5})).unwrap(), Duration::ZERO);
    }

    #[test]
    fn non_numbers_and_huge_values_are_fatal_errors_naming_the_option() {
        for bad in [json!("5"), json!(true), json!([1]), json!(1e300)] {
            let err = slept(json!({"seconds": bad})).unwrap_err();
            assert!(!err.retryable);
            assert!(err.message.contains("option `seconds`"), "{}", err.message);
        }
    }

    #[test]
    fn process_really_sleeps() {
        let start = Instant::now();
        let verdict =
            Delay::process(&Context::for_test("delay", json!({"seconds": 0.05})), Vcon::from_json("{}").unwrap())
                .unwrap();
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert!(!verdict.is_halt());
    }
}
