//! Reading `created_at` the way real vCons write it: RFC 3339 with `T` or a space,
//! with or without an offset (naive times are read as UTC), date only, or epoch
//! seconds as a number or numeric string. Used for the sorted-set score.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::Value;

/// Epoch seconds of a `created_at` value, or `None` when it is not a time.
pub fn epoch_seconds(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        Value::String(text) => parse_text(text.trim()),
        _ => None,
    }
}

fn parse_text(text: &str) -> Option<f64> {
    if text.is_empty() {
        return None;
    }
    if let Ok(number) = text.parse::<f64>() {
        return number.is_finite().then_some(number);
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(seconds(time.timestamp(), time.timestamp_subsec_nanos()));
    }
    let with_t = text.replacen(' ', "T", 1);
    if let Ok(time) = DateTime::parse_from_rfc3339(&with_t) {
        return Some(seconds(time.timestamp(), time.timestamp_subsec_nanos()));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(&with_t, format) {
            let utc = naive.and_utc();
            return Some(seconds(utc.timestamp(), utc.timestamp_subsec_nanos()));
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|midnight| midnight.and_utc().timestamp() as f64)
}

fn seconds(secs: i64, nanos: u32) -> f64 {
    secs as f64 + f64::from(nanos) / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_real_form_parses() {
        let base = 1_704_067_200.0; // 2024-01-01T00:00:00Z
        for value in [
            json!("2024-01-01T00:00:00Z"),
            json!("2024-01-01T00:00:00+00:00"),
            json!("2024-01-01 00:00:00"),
            json!("2024-01-01T00:00:00"),
            json!("2024-01-01T00:00:00.000000"),
            json!("2024-01-01"),
            json!(1_704_067_200),
            json!("1704067200"),
            json!("2024-01-01T01:00:00+01:00"),
        ] {
            assert_eq!(epoch_seconds(&value), Some(base), "{value}");
        }
    }

    #[test]
    fn non_times_are_refused() {
        for value in [json!(""), json!("yesterday"), json!("Tue, 1 Jan 2024 00:00:00 +0000"), json!(true), json!(null)]
        {
            assert_eq!(epoch_seconds(&value), None, "{value}");
        }
    }
}
