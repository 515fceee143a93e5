//! `sampler`: keep a share of vCons and halt the chain quietly for the rest.
//!
//! Options:
//! - `method` (string, default `"percentage"`): one of
//!   - `percentage`: keep when a uniform draw from [0, 100) is ≤ `value`;
//!   - `rate`: keep when an exponential draw with mean `value` is ≤ 1, i.e. with
//!     probability 1 − e^(−1/`value`); `value` must be above 0;
//!   - `modulo`: keep when the first 8 hex digits of SHA-256(uuid), read as a
//!     number, are divisible by `value` (a whole number above 0). Deterministic, and
//!     bit for bit the Python result;
//!   - `time_based`: keep when the current Unix time in whole seconds is divisible
//!     by `value` (a whole number above 0).
//! - `value` (number, default `50`): the parameter of the method, as above.
//! - `seed` (string or integer, default none): makes the random methods repeatable
//!   (see below).
//!
//! A kept vCon goes on unchanged; a dropped one halts the chain (no later links,
//! storages or egress, no dead-letter entry), as the Python conserver's
//! `links.sampler` returning `None`. An unknown `method` is a fatal error naming the
//! option (Python raised `ValueError`, which also dead-lettered the vCon).
//!
//! Randomness comes from the host (WASI `random`), the time from the WASI wall
//! clock.
//!
//! Differences from Python:
//! - Python's Mersenne Twister sequence is not reproduced, only the decisions'
//!   probabilities (`modulo` is exact).
//! - `seed`: Python reseeded its process-wide generator with it before every vCon,
//!   so every vCon got the same draw (all kept or all dropped) and other users of
//!   `random` in the process were disturbed. Here the draw is taken from
//!   SHA-256(seed, uuid): the same vCon always gets the same decision for a given
//!   seed, and different vCons are still sampled at the configured share.
//! - Values Python failed on or misread are fatal errors naming the option: a
//!   `value` that is not a number; `rate` with `value` ≤ 0 (Python: division by zero
//!   at 0, and every vCon kept when negative); `modulo`/`time_based` with a value that
//!   is not a whole number above 0 (Python: division by zero at 0, odd float
//!   remainders otherwise).
//! - Missing `options` mean `{}` (Python crashed on them).

use conserver_link_sdk::prelude::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `sampler` link.
pub struct Sampler;

/// How the share is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Method {
    /// Keep when uniform(0, 100) ≤ the value.
    Percentage(f64),
    /// Keep when an exponential draw with this mean is ≤ 1.
    Rate(f64),
    /// Keep when the uuid hash is divisible by this.
    Modulo(u64),
    /// Keep when the Unix second is divisible by this.
    TimeBased(u64),
}

/// The link's options, validated.
#[derive(Debug, Clone, PartialEq)]
struct Options {
    method: Method,
    /// The seed's text (a string, or an integer's digits), hashed with the uuid.
    seed: Option<String>,
}

const METHODS: &str = "`percentage`, `rate`, `modulo` or `time_based`";

impl Options {
    fn from_context(ctx: &Context) -> Result<Self, LinkError> {
        let link = &ctx.link_name;
        let method: String = ctx
            .option_or("method", "percentage".to_string())
            .map_err(|_| LinkError::fatal(format!("option `method` of link `{link}` must be one of {METHODS}")))?;
        let value = match ctx.options.get("value") {
            None | Some(Value::Null) => Value::from(50),
            Some(value) => value.clone(),
        };
        let number = |expect: &str| {
            LinkError::fatal(format!(
                "option `value` of link `{link}` must be {expect} for method `{method}`, got {value}"
            ))
        };
        let finite = value.as_f64().filter(|v| v.is_finite());
        let whole = || match finite {
            Some(v) if v >= 1.0 && v.fract() == 0.0 && v <= u64::MAX as f64 => Ok(v as u64),
            _ => Err(number("a whole number above 0")),
        };
        let method = match method.as_str() {
            "percentage" => Method::Percentage(finite.ok_or_else(|| number("a number"))?),
            "rate" => Method::Rate(finite.filter(|v| *v > 0.0).ok_or_else(|| number("a number above 0"))?),
            "modulo" => Method::Modulo(whole()?),
            "time_based" => Method::TimeBased(whole()?),
            other => {
                return Err(LinkError::fatal(format!(
                    "option `method` of link `{link}` must be one of {METHODS}, got `{other}`"
                )));
            }
        };
        let seed = match ctx.options.get("seed") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            Some(other) => {
                return Err(LinkError::fatal(format!(
                    "option `seed` of link `{link}` must be a string or an integer, got {other}"
                )));
            }
        };
        Ok(Self { method, seed })
    }
}

/// A uniform draw from [0, 1) taken from 64 random bits (53 of them used, as
/// Python's `random()`).
fn unit_from_bits(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// The first 8 bytes of SHA-256 over the parts, each followed by a NUL.
fn hash_bits(parts: &[&str]) -> u64 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The first 8 hex digits of SHA-256(uuid), as a number (Python's
/// `int(sha256(uuid).hexdigest()[:8], 16)`).
fn uuid_hash(uuid: &str) -> u64 {
    let digest = Sha256::digest(uuid.as_bytes());
    u64::from(u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]))
}

/// Whether the vCon is kept. `unit` yields the uniform draw from [0, 1) and `now`
/// the Unix time in whole seconds; each is called only by the methods that need it.
fn keep(
    method: Method,
    uuid: &str,
    unit: impl FnOnce() -> Result<f64, LinkError>,
    now: impl FnOnce() -> Result<u64, LinkError>,
) -> Result<bool, LinkError> {
    Ok(match method {
        // Python: random.uniform(0, 100) <= percentage.
        Method::Percentage(percentage) => 100.0 * unit()? <= percentage,
        // Python: random.expovariate(1 / rate) <= 1, i.e. -ln(1 - u) * rate <= 1.
        Method::Rate(rate) => -(1.0 - unit()?).ln() * rate <= 1.0,
        Method::Modulo(modulo) => uuid_hash(uuid).is_multiple_of(modulo),
        Method::TimeBased(interval) => now()?.is_multiple_of(interval),
    })
}

fn random_unit(seed: Option<&str>, uuid: &str) -> Result<f64, LinkError> {
    let bits = match seed {
        Some(seed) => hash_bits(&[seed, uuid]),
        None => getrandom::u64().map_err(|e| LinkError::retryable(format!("the host gave no random numbers: {e}")))?,
    };
    Ok(unit_from_bits(bits))
}

fn unix_now() -> Result<u64, LinkError> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|e| LinkError::retryable(format!("the host clock is before 1970: {e}")))
}

impl Link for Sampler {
    fn process(ctx: &Context, _vcon: Vcon) -> LinkResult {
        let options = Options::from_context(ctx)?;
        let uuid = ctx.vcon_uuid.as_str();
        let kept = keep(options.method, uuid, || random_unit(options.seed.as_deref(), uuid), unix_now)?;
        if kept {
            conserver_link_sdk::log::debug(&format!("sampled in ({:?})", options.method));
            Ok(Verdict::unchanged())
        } else {
            conserver_link_sdk::log::debug(&format!("sampled out ({:?})", options.method));
            Ok(Verdict::halt())
        }
    }
}

export_link!(Sampler);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options(options: Value) -> Result<Options, LinkError> {
        Options::from_context(&Context::for_test("sampler", options))
    }

    fn method(value: Value) -> Method {
        options(value).unwrap().method
    }

    fn run(options: Value, uuid: &str) -> Verdict {
        let mut ctx = Context::for_test("sampler", options);
        ctx.vcon_uuid = uuid.to_string();
        Sampler::process(&ctx, Vcon::from_json("{}").unwrap()).unwrap()
    }

    fn never<T>() -> Result<T, LinkError> {
        panic!("not needed by this method")
    }

    #[test]
    fn defaults_are_percentage_50_without_seed() {
        let defaults = options(json!({})).unwrap();
        assert_eq!(defaults, Options { method: Method::Percentage(50.0), seed: None });
        assert_eq!(options(json!({"method": null, "value": null, "seed": null})).unwrap(), defaults);
    }

    #[test]
    fn percentage_keeps_draws_at_or_below_the_value() {
        let m = method(json!({"method": "percentage", "value": 50}));
        assert!(keep(m, "u", || Ok(0.25), never).unwrap(), "uniform 25 is kept");
        assert!(!keep(m, "u", || Ok(0.75), never).unwrap(), "uniform 75 is dropped");
        assert!(keep(m, "u", || Ok(0.5), never).unwrap(), "uniform 50 is kept (<=)");
        let all = method(json!({"value": 100}));
        assert!(keep(all, "u", || Ok(0.999_999), never).unwrap());
        let none = method(json!({"value": 0}));
        assert!(!keep(none, "u", || Ok(0.000_001), never).unwrap());
        assert_eq!(method(json!({"value": 12.5})), Method::Percentage(12.5));
    }

    #[test]
    fn rate_keeps_exponential_draws_at_or_below_one() {
        let m = method(json!({"method": "rate", "value": 2}));
        // An exponential draw x comes from u = 1 - e^(-x / mean).
        let u_for = |x: f64| 1.0 - (-x / 2.0).exp();
        assert!(keep(m, "u", || Ok(u_for(0.5)), never).unwrap(), "expovariate 0.5 is kept");
        assert!(!keep(m, "u", || Ok(u_for(1.5)), never).unwrap(), "expovariate 1.5 is dropped");
        assert!(keep(m, "u", || Ok(0.0), never).unwrap());
    }

    #[test]
    fn modulo_matches_the_python_golden_values() {
        assert_eq!(uuid_hash("uuid-1"), 0x1b95_bc50);
        assert_eq!(uuid_hash("uuid-2"), 0x6499_7a1c);
        assert_eq!(uuid_hash("uuid-3"), 0xecde_2b6f);
        assert_eq!(uuid_hash("uuid-4"), 0x3ebd_e4b5);
        let three = json!({"method": "modulo", "value": 3});
        assert!(!run(three.clone(), "uuid-1").is_halt(), "uuid-1 mod 3 = 0: kept");
        assert!(run(three.clone(), "uuid-2").is_halt(), "uuid-2 mod 3 = 1: dropped");
        assert!(!run(three, "uuid-3").is_halt(), "uuid-3 mod 3 = 0: kept");
        assert!(!run(json!({"method": "modulo", "value": 7}), "uuid-4").is_halt(), "uuid-4 mod 7 = 0: kept");
        assert_eq!(method(json!({"method": "modulo", "value": 3.0})), Method::Modulo(3));
    }

    #[test]
    fn time_based_keeps_seconds_divisible_by_the_interval() {
        let m = method(json!({"method": "time_based", "value": 5}));
        assert!(keep(m, "u", never, || Ok(1000)).unwrap(), "time 1000 is kept");
        assert!(!keep(m, "u", never, || Ok(1002)).unwrap(), "time 1002 is dropped");
        // The real clock: interval 1 always keeps.
        assert!(!run(json!({"method": "time_based", "value": 1}), "u").is_halt());
    }

    #[test]
    fn a_dropped_vcon_halts_and_a_kept_one_goes_on_unchanged() {
        let kept = run(json!({"method": "percentage", "value": 100}), "u");
        assert!(!kept.is_halt());
        assert!(kept.vcon().is_none());
        assert!(kept.directives().is_empty());
        let dropped = run(json!({"method": "percentage", "value": -1}), "u");
        assert!(dropped.is_halt());
        assert!(dropped.directives().is_empty());
    }

    #[test]
    fn a_seed_gives_repeatable_per_vcon_results_at_the_configured_share() {
        let seeded = |seed: Value, uuid: &str| !run(json!({"value": 50, "seed": seed}), uuid).is_halt();
        for i in 0..50 {
            let uuid = format!("uuid-{i}");
            assert_eq!(seeded(json!(42), &uuid), seeded(json!(42), &uuid));
            assert_eq!(seeded(json!("abc"), &uuid), seeded(json!("abc"), &uuid));
        }
        let kept = (0..1000).filter(|i| seeded(json!(42), &format!("uuid-{i}"))).count();
        assert!((400..600).contains(&kept), "{kept} of 1000 kept at 50 %");
        assert_eq!(
            random_unit(Some("42"), "uuid-1").unwrap(),
            unit_from_bits(hash_bits(&["42", "uuid-1"])),
            "the seeded draw is SHA-256(seed, uuid)"
        );
        assert_ne!(random_unit(Some("42"), "uuid-1").unwrap(), random_unit(Some("43"), "uuid-1").unwrap());
    }

    #[test]
    fn unseeded_draws_come_from_the_host_and_spread() {
        let draws: Vec<f64> = (0..200).map(|_| random_unit(None, "u").unwrap()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        let below_half = draws.iter().filter(|u| **u < 0.5).count();
        assert!((50..150).contains(&below_half), "{below_half} of 200 below 0.5");
    }

    #[test]
    fn unit_draws_cover_zero_to_one() {
        assert_eq!(unit_from_bits(0), 0.0);
        assert!(unit_from_bits(u64::MAX) < 1.0);
        assert_eq!(unit_from_bits(1 << 63), 0.5);
    }

    #[test]
    fn bad_options_are_fatal_errors_naming_the_option() {
        for (bad, option) in [
            (json!({"method": "sometimes"}), "option `method`"),
            (json!({"method": 3}), "option `method`"),
            (json!({"value": "50"}), "option `value`"),
            (json!({"method": "rate", "value": 0}), "option `value`"),
            (json!({"method": "rate", "value": -2}), "option `value`"),
            (json!({"method": "modulo", "value": 0}), "option `value`"),
            (json!({"method": "modulo", "value": 2.5}), "option `value`"),
            (json!({"method": "modulo", "value": -3}), "option `value`"),
            (json!({"method": "time_based", "value": 0}), "option `value`"),
            (json!({"seed": 1.5}), "option `seed`"),
            (json!({"seed": [1]}), "option `seed`"),
        ] {
            let err = options(bad.clone()).unwrap_err();
            assert!(!err.retryable, "{bad}");
            assert!(err.message.contains(option), "{bad}: {}", err.message);
        }
        let unknown = options(json!({"method": "sometimes"})).unwrap_err();
        assert!(unknown.message.contains("`percentage`, `rate`, `modulo` or `time_based`"), "{}", unknown.message);
    }
}
