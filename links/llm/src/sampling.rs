//! The `sampling_rate` option (Python's `randomly_execute_with_sampling`): run only
//! when a uniform draw from [0, 1) is below the rate. As in Python, a rate of 0 (or
//! an absent/null rate) means **always run**, and a rate of 1 or more always runs.
//! Randomness comes from the host (WASI `random`).

use conserver_link_sdk::{Context, LinkError};
use serde_json::Value;

use crate::options::invalid;

/// Whether the link should process this vCon.
pub fn sampled_in(ctx: &Context) -> Result<bool, LinkError> {
    let rate = match ctx.options.get("sampling_rate") {
        None | Some(Value::Null) => return Ok(true),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(other) => {
            return Err(invalid(ctx, "sampling_rate", "a number (the share of vCons to process; 0 means all)", other));
        }
    };
    if rate == 0.0 || rate >= 1.0 {
        return Ok(true);
    }
    Ok(decide(rate, random_unit()?))
}

/// The decision for `rate` given a uniform `draw` from [0, 1).
pub fn decide(rate: f64, draw: f64) -> bool {
    rate == 0.0 || draw < rate
}

/// A uniform draw from [0, 1) with 53 random bits, as Python's `random()`.
fn random_unit() -> Result<f64, LinkError> {
    let bits = getrandom::u64().map_err(|e| LinkError::retryable(format!("the host gave no random numbers: {e}")))?;
    Ok((bits >> 11) as f64 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sampled(rate: Value) -> bool {
        sampled_in(&Context::for_test("l", json!({"sampling_rate": rate}))).unwrap()
    }

    #[test]
    fn zero_absent_null_and_one_or_more_always_run() {
        assert!(sampled_in(&Context::for_test("l", json!({}))).unwrap());
        for rate in [json!(null), json!(0), json!(0.0), json!(1), json!(2.5)] {
            for _ in 0..20 {
                assert!(sampled(rate.clone()), "{rate}");
            }
        }
    }

    #[test]
    fn negative_rates_never_run() {
        for _ in 0..20 {
            assert!(!sampled(json!(-1)));
        }
    }

    #[test]
    fn the_draw_must_be_below_the_rate() {
        assert!(decide(0.5, 0.25));
        assert!(!decide(0.5, 0.5));
        assert!(!decide(0.5, 0.75));
        assert!(decide(0.0, 0.99), "0 means always");
    }

    #[test]
    fn a_fractional_rate_keeps_about_that_share() {
        let kept = (0..1000).filter(|_| sampled(json!(0.3))).count();
        assert!((200..400).contains(&kept), "{kept} of 1000 at 0.3");
    }

    #[test]
    fn a_non_number_is_a_fatal_error_naming_the_option() {
        let err = sampled_in(&Context::for_test("l", json!({"sampling_rate": "0.5"}))).unwrap_err();
        assert!(!err.retryable);
        assert!(err.message.starts_with("option `sampling_rate` of link `l` must be a number"), "{}", err.message);
    }
}
