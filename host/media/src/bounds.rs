//! Bounds on the decoding done for one link call: a deadline and a cancellation
//! flag checked before every packet, and the longest audio decoded from one
//! recording. A job past its deadline, or whose call has ended, stops at its next
//! packet, so the blocking thread is given back instead of decoding on for nobody.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crate::MediaError;

/// What a decoding job may use. Clones share the cancellation flag and the
/// packet count, so the caller keeps one and hands clones to the jobs.
#[derive(Debug, Clone, Default)]
pub struct Bounds {
    deadline: Option<Instant>,
    max_secs: Option<u64>,
    cancelled: Arc<AtomicBool>,
    packets: Arc<AtomicU64>,
}

impl Bounds {
    /// No deadline and no length limit (tools and tests).
    pub fn unbounded() -> Self {
        Self::default()
    }

    /// These bounds, with decoding stopping once `deadline` has passed.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// These bounds, with at most `secs` seconds of audio decoded from one
    /// recording (per decoding pass).
    #[must_use]
    pub fn with_max_secs(mut self, secs: u64) -> Self {
        self.max_secs = Some(secs);
        self
    }

    /// Stop every job holding these bounds (or a clone) at its next packet.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Packets decoded so far under these bounds, by every job sharing them.
    pub fn packets(&self) -> u64 {
        self.packets.load(Ordering::Relaxed)
    }

    /// The longest audio one pass may decode, in seconds, if limited.
    pub fn max_secs(&self) -> Option<u64> {
        self.max_secs
    }

    /// Before each packet: fail when the job must stop.
    pub(crate) fn check(&self) -> Result<(), MediaError> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(MediaError::Stopped("the link call ended".into()));
        }
        if self.deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Err(MediaError::Stopped("the link call's deadline passed".into()));
        }
        self.packets.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Fail when `frames` at `rate` Hz is more audio than one pass may decode.
    pub(crate) fn check_frames(&self, frames: u64, rate: u32) -> Result<(), MediaError> {
        match self.max_secs {
            Some(limit_secs) if frames > limit_secs.saturating_mul(u64::from(rate.max(1))) => {
                Err(MediaError::TooLong { limit_secs })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_cancellation_and_counts() {
        let bounds = Bounds::unbounded();
        let job = bounds.clone();
        assert!(job.check().is_ok());
        assert_eq!(bounds.packets(), 1);
        bounds.cancel();
        assert!(matches!(job.check(), Err(MediaError::Stopped(_))));
        assert_eq!(bounds.packets(), 1, "a refused packet is not counted");
        let late = Bounds::unbounded().with_deadline(Instant::now());
        assert!(matches!(late.check(), Err(MediaError::Stopped(m)) if m.contains("deadline")));
        let short = Bounds::unbounded().with_max_secs(2);
        assert!(short.check_frames(16_000, 8000).is_ok());
        assert_eq!(short.check_frames(16_001, 8000), Err(MediaError::TooLong { limit_secs: 2 }));
        assert!(Bounds::unbounded().check_frames(u64::MAX, 8000).is_ok());
    }
}
