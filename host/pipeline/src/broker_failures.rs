//! What a worker does when the broker fails on one vCon mid-chain (reading or
//! writing its document, routing it). The vCon goes back to its list after a
//! pause that grows with each failure of that vCon (0.5 s doubling to 30 s), so
//! a failing broker is not hammered and its log not flooded. A failure retrying
//! cannot fix — a `vcon:{uuid}` key of another type, a document that is not
//! text — dead-letters the vCon after [`POISON_ATTEMPTS`] tries, with the
//! reason; before this a poison item was returned and popped again tens of
//! thousands of times a second.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use conserver_broker::{BrokerError, Popped};

/// Tries before a vCon the broker keeps refusing for a lasting reason is
/// dead-lettered.
pub const POISON_ATTEMPTS: u32 = 3;
/// Pause before the second try; it doubles with each failure.
const FIRST_PAUSE: Duration = Duration::from_millis(500);
/// Longest pause between two tries.
const MAX_PAUSE: Duration = Duration::from_secs(30);
/// vCons whose failures are remembered at once (beyond it the memory starts over,
/// so it stays bounded).
const MAX_TRACKED: usize = 10_000;

/// What to do with a vCon after a broker failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Return it to its list after this pause.
    RetryAfter(Duration),
    /// Dead-letter it: retrying will not help.
    DeadLetter,
}

/// Failures of one vCon so far, this one included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Every broker failure (the pause grows with these).
    pub failures: u32,
    /// Failures retrying cannot fix (the poison limit counts these only, so an
    /// outage never brings a vCon closer to the DLQ).
    pub lasting: u32,
}

/// Whether retrying may fix `error`.
pub fn is_lasting(error: &BrokerError) -> bool {
    !error.is_retryable() && !error.is_unavailable()
}

/// The decision after a failure, given the vCon's `tally`.
pub fn next(tally: Tally) -> Next {
    if tally.lasting >= POISON_ATTEMPTS {
        return Next::DeadLetter;
    }
    Next::RetryAfter(pause(tally.failures))
}

/// The pause after the `failures`-th failure (1-based).
pub fn pause(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(10);
    (FIRST_PAUSE * 2u32.pow(doublings)).min(MAX_PAUSE)
}

/// Broker failures per vCon, shared by a process's workers (a poison item is
/// popped by any of them).
#[derive(Default)]
pub struct FailureCounts {
    counts: Mutex<HashMap<(String, String), Tally>>,
}

impl FailureCounts {
    /// Count a failure of `item` (`lasting`: retrying cannot fix it); the tally.
    pub fn record(&self, item: &Popped, lasting: bool) -> Tally {
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if counts.len() >= MAX_TRACKED {
            counts.clear();
        }
        let tally = counts.entry((item.list.clone(), item.uuid.clone())).or_insert(Tally { failures: 0, lasting: 0 });
        tally.failures = tally.failures.saturating_add(1);
        if lasting {
            tally.lasting = tally.lasting.saturating_add(1);
        }
        *tally
    }

    /// Forget `item` (it completed, or was dead-lettered).
    pub fn forget(&self, item: &Popped) {
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.remove(&(item.list.clone(), item.uuid.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lasting() -> BrokerError {
        BrokerError::Corrupt("vcon:x holds a hash, not a document".into())
    }

    fn transient() -> BrokerError {
        BrokerError::Contended("busy".into())
    }

    #[test]
    fn lasting_and_transient_failures_are_told_apart() {
        assert!(is_lasting(&lasting()));
        assert!(!is_lasting(&transient()));
    }

    #[test]
    fn only_lasting_failures_bring_a_vcon_to_the_dlq() {
        let counts = FailureCounts::default();
        let item = Popped { list: "in".into(), uuid: "a".into() };
        // An outage first: paused, never dead-lettered.
        for _ in 0..5 {
            assert!(matches!(next(counts.record(&item, false)), Next::RetryAfter(_)));
        }
        assert!(matches!(next(counts.record(&item, true)), Next::RetryAfter(_)));
        assert!(matches!(next(counts.record(&item, true)), Next::RetryAfter(_)));
        assert_eq!(next(counts.record(&item, true)), Next::DeadLetter);
    }

    #[test]
    fn the_pause_doubles_to_a_bound() {
        assert_eq!(pause(1), Duration::from_millis(500));
        assert_eq!(pause(2), Duration::from_secs(1));
        assert_eq!(pause(5), Duration::from_secs(8));
        assert_eq!(pause(50), MAX_PAUSE);
    }

    #[test]
    fn counts_are_per_vcon_and_forgotten() {
        let counts = FailureCounts::default();
        let a = Popped { list: "in".into(), uuid: "a".into() };
        let b = Popped { list: "in".into(), uuid: "b".into() };
        assert_eq!(counts.record(&a, true).lasting, 1);
        assert_eq!(counts.record(&a, false), Tally { failures: 2, lasting: 1 });
        assert_eq!(counts.record(&b, true).failures, 1);
        counts.forget(&a);
        assert_eq!(counts.record(&a, false).failures, 1);
    }
}
