//! AI-usage reporting (Python's `lib.ai_usage.send_ai_usage_data_for_tracking`).
//!
//! When `send_ai_usage_data_to_url` is set, each LLM answer is reported by a POST
//! of `{created_at, record_id, type, sub_type, unit_type, input_units,
//! output_units, ai_model}` with `Authorization: Bearer <ai_usage_api_token>` and a
//! 30 s timeout. A failure is only logged (Python also raised on connection
//! errors, inside the LLM retry loop, so a down usage endpoint re-ran the LLM call;
//! here it never fails the link). The URL's host must be in the link's
//! `allowed_outbound_hosts`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conserver_link_sdk::http::{Request, Transport};
use conserver_link_sdk::{Context, LinkError, log};
use serde_json::{Value, json};

use crate::options::string;

/// Where to report usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageTarget {
    /// `send_ai_usage_data_to_url`.
    pub url: String,
    /// `ai_usage_api_token` (may be empty: Python then sent `Bearer `).
    pub token: String,
}

impl UsageTarget {
    /// The target from the options, or `None` when `send_ai_usage_data_to_url` is
    /// empty or absent.
    pub fn from_context(ctx: &Context) -> Result<Option<Self>, LinkError> {
        let url = string(ctx, "send_ai_usage_data_to_url", "")?;
        if url.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self { url, token: string(ctx, "ai_usage_api_token", "")? }))
    }
}

/// One usage record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord<'a> {
    /// The vCon uuid (`record_id`).
    pub record_id: &'a str,
    /// `sub_type` (`ANALYZE`, …).
    pub sub_type: &'a str,
    /// `unit_type` (`tokens`).
    pub unit_type: &'a str,
    /// `input_units`.
    pub input_units: u64,
    /// `output_units`.
    pub output_units: u64,
    /// `ai_model`.
    pub model: &'a str,
}

impl UsageRecord<'_> {
    /// The JSON body, `type` being `VCON_PROCESSING`.
    pub fn to_json(&self, created_at: &str) -> Value {
        json!({
            "created_at": created_at,
            "record_id": self.record_id,
            "type": "VCON_PROCESSING",
            "sub_type": self.sub_type,
            "unit_type": self.unit_type,
            "input_units": self.input_units,
            "output_units": self.output_units,
            "ai_model": self.model,
        })
    }
}

/// Report `record` to `target`; failures are logged only.
pub fn report(transport: &dyn Transport, target: &UsageTarget, record: &UsageRecord<'_>) {
    let body = record.to_json(&python_utc_isoformat(SystemTime::now()));
    let request = match Request::post(&target.url).json(&body) {
        Ok(request) => request.bearer(&target.token).timeout(Duration::from_secs(30)),
        Err(e) => {
            log::error(&format!("AI usage report not sent: {e}"));
            return;
        }
    };
    match transport.send(&request) {
        Ok(answer) if answer.is_success() => log::info(&format!("AI usage reported to {}", target.url)),
        Ok(answer) => log::error(&format!(
            "failed to report AI usage to {}: {}",
            target.url,
            answer.error_for_status().err().map(|e| e.to_string()).unwrap_or_default()
        )),
        Err(e) => log::error(&format!("failed to report AI usage to {}: {e}", target.url)),
    }
}

/// Python's `datetime.now(timezone.utc).isoformat().replace('+00:00', 'Z')`:
/// `2026-08-16T12:34:56.789012Z`, without the fraction when it is zero.
pub fn python_utc_isoformat(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rest = secs % 86_400;
    let (hour, minute, second) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let micros = since.subsec_micros();
    let fraction = if micros == 0 { String::new() } else { format!(".{micros:06}") };
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}Z")
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeServer;
    use conserver_link_sdk::http::{HttpError, Response};

    fn record() -> UsageRecord<'static> {
        UsageRecord {
            record_id: "uuid-1",
            sub_type: "ANALYZE",
            unit_type: "tokens",
            input_units: 11,
            output_units: 7,
            model: "gpt-4",
        }
    }

    #[test]
    fn timestamps_are_pythons_isoformat_with_z() {
        let at = |secs: u64, micros: u32| {
            python_utc_isoformat(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(u64::from(micros)))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(at(1_786_883_696, 789_012), "2026-08-16T12:34:56.789012Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.000005Z");
        assert_eq!(at(4_107_542_399, 0), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn the_target_needs_a_url() {
        assert_eq!(UsageTarget::from_context(&Context::for_test("l", json!({}))).unwrap(), None);
        assert_eq!(
            UsageTarget::from_context(&Context::for_test("l", json!({"send_ai_usage_data_to_url": ""}))).unwrap(),
            None
        );
        let target = UsageTarget::from_context(&Context::for_test(
            "l",
            json!({"send_ai_usage_data_to_url": "https://portal/usage", "ai_usage_api_token": "t"}),
        ))
        .unwrap();
        assert_eq!(target, Some(UsageTarget { url: "https://portal/usage".into(), token: "t".into() }));
        assert!(UsageTarget::from_context(&Context::for_test("l", json!({"send_ai_usage_data_to_url": 1}))).is_err());
    }

    #[test]
    fn a_report_is_a_bearer_post_of_the_python_fields() {
        let server = FakeServer::answering([Response::new(200, "")]);
        let target = UsageTarget { url: "https://portal/usage".into(), token: "tok".into() };
        report(&server.transport(), &target, &record());
        let sent = &server.requests()[0];
        assert_eq!(sent.url, "https://portal/usage");
        assert_eq!(sent.header_value("authorization"), Some("Bearer tok"));
        assert_eq!(sent.timeout, Some(Duration::from_secs(30)));
        let mut body = server.bodies()[0].clone();
        let created_at = body.as_object_mut().and_then(|b| b.remove("created_at")).unwrap();
        assert!(created_at.as_str().unwrap().ends_with('Z'));
        assert_eq!(
            body,
            json!({"record_id": "uuid-1", "type": "VCON_PROCESSING", "sub_type": "ANALYZE", "unit_type": "tokens",
                   "input_units": 11, "output_units": 7, "ai_model": "gpt-4"})
        );
    }

    #[test]
    fn failures_are_only_logged() {
        let target = UsageTarget { url: "https://portal/usage".into(), token: String::new() };
        let server = FakeServer::new([Ok(Response::new(500, "down")), Err(HttpError::Denied("x".into()))]);
        report(&server.transport(), &target, &record());
        report(&server.transport(), &target, &record());
        assert_eq!(server.requests().len(), 2);
        assert_eq!(server.requests()[0].header_value("authorization"), Some("Bearer "));
    }
}
