//! The log budget of one link call (`limits.log_lines`, `limits.log_bytes`).
//!
//! It covers the link's own `log` calls and every host warning the call causes
//! (a secret or an HTTP request denied, a cache failure, a connection error):
//! a link calling `secrets.get` for an ungranted name in a loop must not write a
//! line per call. Lines past either budget are dropped and counted; when the
//! call ends, [`CallLog::finish`] writes one summary line and counts the call in
//! `conserver_link_limit_breaches_total{kind="log_lines"|"log_bytes"}`. The call
//! itself goes on: chatty logging is not a reason to dead-letter a vCon.
//!
//! Host code that has the call's state at hand charges its [`CallLog`]; code
//! that does not (address checks, host-side fetches, tasks a request spawned)
//! finds it through [`current`], which [`scope`] sets around the call's future.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use conserver_config::Limits;

use crate::failure::Budget;
use crate::host::CallLabels;

/// One call's log budget; cheap to clone (the clones share it).
#[derive(Clone)]
pub(crate) struct CallLog(Arc<Inner>);

struct Inner {
    labels: CallLabels,
    max_lines: u64,
    max_bytes: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct State {
    lines: u64,
    bytes: u64,
    dropped_lines: u64,
    dropped_bytes: u64,
    used_up: Option<Budget>,
    finished: bool,
}

impl CallLog {
    pub(crate) fn new(labels: CallLabels, limits: &Limits) -> Self {
        Self(Arc::new(Inner {
            labels,
            max_lines: limits.log_lines,
            max_bytes: limits.log_bytes,
            state: Mutex::new(State::default()),
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a line of `bytes` bytes may be written. Once either budget is
    /// used up every later line is dropped (and counted) too.
    pub(crate) fn admit(&self, bytes: usize) -> bool {
        let bytes = bytes as u64;
        let mut state = self.state();
        if state.used_up.is_none() {
            if state.lines >= self.0.max_lines {
                state.used_up = Some(Budget::LogLines);
            } else if state.bytes.saturating_add(bytes) > self.0.max_bytes {
                state.used_up = Some(Budget::LogBytes);
            } else {
                state.lines += 1;
                state.bytes += bytes;
                return true;
            }
        }
        state.dropped_lines += 1;
        state.dropped_bytes = state.dropped_bytes.saturating_add(bytes);
        false
    }

    /// End of the call: if lines were dropped, say how many in one line and
    /// count the budget in the breach metric. Only the first call does anything.
    pub(crate) fn finish(&self) {
        let state = {
            let mut state = self.state();
            let before = *state;
            state.finished = true;
            before
        };
        let (false, Some(budget)) = (state.finished, state.used_up) else { return };
        let CallLabels { link, chain, vcon_uuid } = &self.0.labels;
        let (dropped_lines, dropped_bytes) = (state.dropped_lines, state.dropped_bytes);
        let (max_lines, max_bytes) = (self.0.max_lines, self.0.max_bytes);
        tracing::warn!(
            %link, %chain, %vcon_uuid, dropped_lines, dropped_bytes, budget = budget.name(),
            "link call's log budget used up: {dropped_lines} lines / {dropped_bytes} bytes dropped \
             (limits.log_lines {max_lines}, limits.log_bytes {max_bytes})"
        );
        conserver_core::metrics::record_budget_used_up(chain, link, budget.name());
    }

    #[cfg(test)]
    fn dropped(&self) -> (u64, u64) {
        let state = self.state();
        (state.dropped_lines, state.dropped_bytes)
    }
}

/// Something a host warning can be charged to: a call's [`CallLog`], or
/// [`current`]'s answer (`None` outside a call: written unbudgeted).
pub(crate) trait Admit {
    /// Whether a line of `bytes` bytes may be written.
    fn admit(&self, bytes: usize) -> bool;
}

impl Admit for CallLog {
    fn admit(&self, bytes: usize) -> bool {
        CallLog::admit(self, bytes)
    }
}

impl Admit for Option<CallLog> {
    fn admit(&self, bytes: usize) -> bool {
        self.as_ref().is_none_or(|log| log.admit(bytes))
    }
}

tokio::task_local! {
    static CURRENT: CallLog;
}

/// The log budget of the call whose future is running, if any.
pub(crate) fn current() -> Option<CallLog> {
    CURRENT.try_with(CallLog::clone).ok()
}

/// Run `future` with `log` as the [`current`] call's budget.
pub(crate) fn scope<F: Future>(log: CallLog, future: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(log, future)
}

/// Write a warning caused by a link call, charged to its log budget: `$log` is
/// a [`CallLog`] or `call_log::current()`. Each field's value is formatted at
/// most [`MAX_FIELD_BYTES`](crate::link_text::MAX_FIELD_BYTES) long with its
/// control characters escaped (values often come from the link: a secret's
/// name, a URL's host); a line costs its message and fields.
///
/// `host_warn!(log, link = name, secret = asked; "message")`
macro_rules! host_warn {
    ($log:expr, $($key:ident = $value:expr),* ; $message:literal) => {{
        $( let $key = $crate::link_text::field(&$value, $crate::link_text::MAX_FIELD_BYTES); )*
        let cost = $message.len() $( + stringify!($key).len() + 1 + $key.len() )*;
        if $crate::call_log::Admit::admit(&$log, cost) {
            ::tracing::warn!($($key = %$key,)* $message);
        }
    }};
}
pub(crate) use host_warn;

#[cfg(test)]
mod tests {
    use super::*;

    fn log(lines: u64, bytes: u64) -> CallLog {
        let labels = CallLabels { link: "chatty".into(), chain: "call-log-test".into(), vcon_uuid: "u".into() };
        CallLog::new(labels, &Limits { log_lines: lines, log_bytes: bytes, ..Limits::default() })
    }

    #[test]
    fn lines_past_the_line_budget_are_dropped_and_counted() {
        let log = log(3, 1_000_000);
        let admitted = (0..10).filter(|_| log.admit(10)).count();
        assert_eq!(admitted, 3);
        assert_eq!(log.dropped(), (7, 70));
        assert_eq!(log.state().used_up, Some(Budget::LogLines));
    }

    #[test]
    fn the_byte_budget_drops_everything_after_the_line_that_broke_it() {
        let log = log(100, 25);
        assert!(log.admit(10));
        assert!(log.admit(10));
        assert!(!log.admit(10));
        // Even a line that would still fit: the log of this call has ended.
        assert!(!log.admit(1));
        assert_eq!(log.dropped(), (2, 11));
        assert_eq!(log.state().used_up, Some(Budget::LogBytes));
    }

    #[test]
    fn the_summary_is_written_and_counted_once() {
        let log = log(1, 1000);
        assert!(log.admit(1));
        assert!(!log.admit(1));
        log.finish();
        log.finish();
        let text = conserver_core::metrics::render_prometheus();
        let expected = "conserver_link_limit_breaches_total{link_name=\"chatty\",chain_name=\"call-log-test\",kind=\"log_lines\"} 1";
        assert!(text.contains(expected), "missing `{expected}` in\n{text}");
    }

    #[tokio::test]
    async fn the_current_call_is_found_inside_its_scope_only() {
        assert!(current().is_none());
        let log = log(1, 1000);
        let inside = scope(log.clone(), async { current().map(|found| Arc::ptr_eq(&found.0, &log.0)) }).await;
        assert_eq!(inside, Some(true));
        let none: Option<CallLog> = None;
        assert!((0..5).all(|_| none.admit(1_000_000)), "outside a call nothing is budgeted");
    }
}
