//! Bounded retries with exponential backoff.
//!
//! Python wrapped each LLM call in tenacity: 6 attempts, waits of 2, 4, 8, 16, 32 s
//! (`wait_exponential(multiplier=2, min=1, max=65)`), on any exception. Here only
//! failures that may pass are retried (429, 5xx, timeouts, connection failures); a
//! refused request, a 4xx or a bad URL fails at once. And the host kills a link at
//! its deadline (`limits.timeout_ms`, 30 s by default), so retries are also bounded
//! by a time budget counted from the start of the link's work: no wait starts if it
//! would end past the budget. A `Retry-After` answer header (in seconds) lengthens a
//! wait, up to the maximum wait.
//!
//! Options (shared by the LLM links):
//! - `retry_attempts` (whole number ≥ 1, default `6`): attempts per request;
//! - `retry_backoff_secs` (number ≥ 0, default `2`): the first wait, doubled after
//!   each failed attempt, at most 65 s;
//! - `retry_budget_secs` (number ≥ 0, default `20`): no retry starts after this
//!   much time; keep it well below the link's `limits.timeout_ms`.

use std::time::{Duration, Instant};

use conserver_link_sdk::http::{HttpError, Request, Response, Transport};
use conserver_link_sdk::{Context, LinkError, log};

use crate::options::{get, invalid};

/// The longest single wait.
const MAX_WAIT: Duration = Duration::from_secs(65);

/// How often and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per request (at least 1).
    pub attempts: u32,
    /// The wait after the first failed attempt; doubled after each further one.
    pub first_wait: Duration,
    /// The longest single wait.
    pub max_wait: Duration,
    /// No wait may end later than this after the clock started.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { attempts: 6, first_wait: Duration::from_secs(2), max_wait: MAX_WAIT, budget: Duration::from_secs(20) }
    }
}

impl RetryPolicy {
    /// The policy from the `retry_*` options.
    pub fn from_context(ctx: &Context) -> Result<Self, LinkError> {
        let defaults = Self::default();
        let attempts = match get(ctx, "retry_attempts") {
            None => defaults.attempts,
            Some(value) => value
                .as_u64()
                .filter(|n| *n >= 1)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| invalid(ctx, "retry_attempts", "a whole number of at least 1", value))?,
        };
        let first_wait = seconds(ctx, "retry_backoff_secs")?.unwrap_or(defaults.first_wait);
        let budget = seconds(ctx, "retry_budget_secs")?.unwrap_or(defaults.budget);
        Ok(Self { attempts, first_wait, max_wait: defaults.max_wait, budget })
    }

    /// The wait after failed attempt number `attempt` (1-based).
    pub fn wait_after(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.first_wait.saturating_mul(factor).min(self.max_wait)
    }
}

fn seconds(ctx: &Context, key: &str) -> Result<Option<Duration>, LinkError> {
    match get(ctx, key) {
        None => Ok(None),
        Some(value) => value
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 86_400.0)
            .map(|s| Some(Duration::from_secs_f64(s)))
            .ok_or_else(|| invalid(ctx, key, "a number of seconds from 0 to 86400", value)),
    }
}

/// Time as the retry loop sees it.
pub trait Clock {
    /// Time since the link started its work.
    fn elapsed(&self) -> Duration;
    /// Wait.
    fn sleep(&self, duration: Duration);
}

/// The real clock (`std::time::Instant` and `std::thread::sleep`, both backed by
/// WASI clocks in a component).
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    start: Instant,
}

impl SystemClock {
    /// A clock counting from now.
    pub fn start() -> Self {
        Self { start: Instant::now() }
    }
}

impl Clock for SystemClock {
    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn sleep(&self, duration: Duration) {
        if !duration.is_zero() {
            std::thread::sleep(duration);
        }
    }
}

/// Send `request`, retrying retryable failures under `policy`. A non-2xx answer
/// is a failure. The error names `what` was requested.
pub fn send(
    transport: &dyn Transport,
    request: &Request,
    policy: &RetryPolicy,
    clock: &dyn Clock,
    what: &str,
) -> Result<Response, LinkError> {
    let attempts = policy.attempts.max(1);
    let mut attempt = 1;
    loop {
        let (error, retry_after) = match transport.send(request) {
            Ok(response) if response.is_success() => return Ok(response),
            Ok(response) => {
                let retry_after = response.header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
                let error = response.error_for_status().err().unwrap_or(HttpError::InvalidResponse(String::new()));
                (error, retry_after.map(Duration::from_secs))
            }
            Err(error) => (error, None),
        };
        if !error.is_retryable() {
            return Err(LinkError::fatal(format!("{what} failed: {error}")));
        }
        if attempt >= attempts {
            return Err(LinkError::retryable(format!("{what} failed after {attempt} attempt(s): {error}")));
        }
        let wait = policy.wait_after(attempt).max(retry_after.unwrap_or_default().min(policy.max_wait));
        if clock.elapsed().saturating_add(wait) > policy.budget {
            return Err(LinkError::retryable(format!(
                "{what} failed after {attempt} attempt(s), retry time budget of {} s spent: {error}",
                policy.budget.as_secs_f64()
            )));
        }
        log::warn(&format!("{what} failed (attempt {attempt} of {attempts}), retrying in {wait:?}: {error}"));
        clock.sleep(wait);
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cell::{Cell, RefCell};

    /// A clock that only moves when slept, recording the waits.
    #[derive(Default)]
    struct FakeClock {
        now: Cell<Duration>,
        waits: RefCell<Vec<u64>>,
    }

    impl Clock for FakeClock {
        fn elapsed(&self) -> Duration {
            self.now.get()
        }
        fn sleep(&self, duration: Duration) {
            self.now.set(self.now.get() + duration);
            self.waits.borrow_mut().push(duration.as_secs());
        }
    }

    fn scripted(
        answers: Vec<Result<Response, HttpError>>,
    ) -> (impl Fn(&Request) -> Result<Response, HttpError>, std::rc::Rc<Cell<usize>>) {
        let calls = std::rc::Rc::new(Cell::new(0));
        let seen = calls.clone();
        let answers = RefCell::new(answers.into_iter());
        let transport = move |_: &Request| {
            seen.set(seen.get() + 1);
            answers.borrow_mut().next().unwrap_or_else(|| Err(HttpError::Connection("done".into())))
        };
        (transport, calls)
    }

    fn policy(attempts: u32, budget: u64) -> RetryPolicy {
        RetryPolicy { attempts, budget: Duration::from_secs(budget), ..RetryPolicy::default() }
    }

    #[test]
    fn defaults_follow_python_but_are_bounded() {
        let p = RetryPolicy::default();
        assert_eq!(p.attempts, 6);
        let waits: Vec<u64> = (1..=7).map(|n| p.wait_after(n).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 65], "tenacity's multiplier 2, capped at 65 s");
        assert_eq!(p.budget, Duration::from_secs(20));
    }

    #[test]
    fn options_set_the_policy() {
        let ctx =
            Context::for_test("l", json!({"retry_attempts": 3, "retry_backoff_secs": 0.5, "retry_budget_secs": 10}));
        let p = RetryPolicy::from_context(&ctx).unwrap();
        assert_eq!(p.attempts, 3);
        assert_eq!(p.first_wait, Duration::from_millis(500));
        assert_eq!(p.budget, Duration::from_secs(10));
        assert_eq!(RetryPolicy::from_context(&Context::for_test("l", json!({}))).unwrap(), RetryPolicy::default());
        for (bad, key) in [
            (json!({"retry_attempts": 0}), "retry_attempts"),
            (json!({"retry_attempts": 1.5}), "retry_attempts"),
            (json!({"retry_attempts": "3"}), "retry_attempts"),
            (json!({"retry_backoff_secs": -1}), "retry_backoff_secs"),
            (json!({"retry_budget_secs": "20"}), "retry_budget_secs"),
        ] {
            let err = RetryPolicy::from_context(&Context::for_test("l", bad.clone())).unwrap_err();
            assert!(err.message.starts_with(&format!("option `{key}` of link `l` must be")), "{bad}: {}", err.message);
        }
    }

    #[test]
    fn retryable_failures_are_retried_with_growing_waits() {
        let (transport, calls) = scripted(vec![
            Ok(Response::new(429, "slow down")),
            Ok(Response::new(503, "busy")),
            Err(HttpError::Timeout("u".into())),
            Ok(Response::new(200, "ok")),
        ]);
        let clock = FakeClock::default();
        let answer = send(&transport, &Request::post("http://h/"), &policy(6, 60), &clock, "LLM request").unwrap();
        assert_eq!(answer.text(), "ok");
        assert_eq!(calls.get(), 4);
        assert_eq!(*clock.waits.borrow(), [2, 4, 8]);
    }

    #[test]
    fn client_errors_are_fatal_at_once() {
        for failure in [
            Ok(Response::new(400, "bad request")),
            Ok(Response::new(401, "no key")),
            Err(HttpError::Denied("http://h/".into())),
            Err(HttpError::InvalidRequest("bad url".into())),
        ] {
            let (transport, calls) = scripted(vec![failure]);
            let clock = FakeClock::default();
            let err = send(&transport, &Request::post("http://h/"), &policy(6, 60), &clock, "LLM request").unwrap_err();
            assert!(!err.retryable, "{}", err.message);
            assert!(err.message.starts_with("LLM request failed: "), "{}", err.message);
            assert_eq!(calls.get(), 1);
            assert!(clock.waits.borrow().is_empty());
        }
    }

    #[test]
    fn attempts_are_bounded() {
        let (transport, calls) = scripted(vec![Ok(Response::new(500, "boom")); 10]);
        let clock = FakeClock::default();
        let err = send(&transport, &Request::post("http://h/"), &policy(3, 600), &clock, "LLM request").unwrap_err();
        assert!(err.retryable);
        assert_eq!(err.message, "LLM request failed after 3 attempt(s): the server answered 500: boom");
        assert_eq!(calls.get(), 3);
        assert_eq!(*clock.waits.borrow(), [2, 4]);
    }

    #[test]
    fn the_time_budget_stops_retries_before_the_deadline() {
        let (transport, calls) = scripted(vec![Ok(Response::new(503, "busy")); 10]);
        let clock = FakeClock::default();
        let err = send(&transport, &Request::post("http://h/"), &policy(6, 20), &clock, "LLM request").unwrap_err();
        assert!(err.retryable);
        assert!(err.message.contains("retry time budget of 20 s spent"), "{}", err.message);
        // Attempts at 0, 2, 6 and 14 s; the next wait (16 s) would end at 30 s.
        assert_eq!(calls.get(), 4);
        assert_eq!(*clock.waits.borrow(), [2, 4, 8]);
        // Time already spent (earlier dialogs) counts too.
        let (transport, calls) = scripted(vec![Ok(Response::new(503, "busy")); 10]);
        let late = FakeClock::default();
        late.now.set(Duration::from_secs(19));
        assert!(send(&transport, &Request::post("http://h/"), &policy(6, 20), &late, "x").unwrap_err().retryable);
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn retry_after_lengthens_a_wait_up_to_the_maximum() {
        let mut busy = Response::new(429, "later");
        busy.headers.push(("retry-after".into(), "7".into()));
        let mut very_busy = Response::new(429, "much later");
        very_busy.headers.push(("retry-after".into(), "3600".into()));
        let (transport, _) = scripted(vec![Ok(busy), Ok(very_busy), Ok(Response::new(200, "ok"))]);
        let clock = FakeClock::default();
        send(&transport, &Request::post("http://h/"), &policy(6, 600), &clock, "x").unwrap();
        assert_eq!(*clock.waits.borrow(), [7, 65]);
    }

    #[test]
    fn the_system_clock_measures_and_sleeps() {
        let clock = SystemClock::start();
        clock.sleep(Duration::from_millis(5));
        clock.sleep(Duration::ZERO);
        assert!(clock.elapsed() >= Duration::from_millis(5));
    }
}
