//! Option parsing shared by several backends (the Python configs write numbers
//! both as YAML numbers and as strings).

use serde::Deserialize;
use serde_json::Value;

/// A TCP port given as a number or a numeric string.
pub(crate) fn port<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| serde::de::Error::custom("port must be 1-65535")),
        Value::String(s) => {
            s.trim().parse().map_err(|_| serde::de::Error::custom(format!("port `{s}` is not a number")))
        }
        other => Err(serde::de::Error::custom(format!("port must be a number, got {other}"))),
    }
}
