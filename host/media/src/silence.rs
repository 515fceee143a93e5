//! Where to cut a long recording: the Python conserver's rule (pydub's
//! `detect_nonsilent` with a 2000 ms window, −40 dBFS, 1 ms step; then, for each
//! multiple of the chunk length, the silence midpoint nearest to it within ±25 %
//! of the chunk length, else the multiple itself), in O(n): the signal is
//! reduced once to a sum of squares per millisecond, and each window's sum is
//! kept by adding the millisecond that enters and removing the one that leaves.

/// How silence is recognised (the Python defaults via [`Default`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SilenceRule {
    /// A window is silent when its RMS is at or below this level (dBFS).
    pub threshold_dbfs: f64,
    /// The window, in milliseconds.
    pub window_ms: u64,
}

impl Default for SilenceRule {
    fn default() -> Self {
        Self { threshold_dbfs: -40.0, window_ms: 2000 }
    }
}

/// Sum of squared samples (all channels) per millisecond of a recording, built
/// from interleaved blocks as they are decoded. Millisecond `k` holds the frames
/// `floor(k·rate/1000) .. floor((k+1)·rate/1000)`, the frames pydub slices.
#[derive(Debug, Clone)]
pub struct Loudness {
    rate: u64,
    channels: usize,
    frames: u64,
    bin_end: u64,
    current: f64,
    bins: Vec<f32>,
}

impl Loudness {
    /// An empty profile for audio at `rate` Hz with `channels` channels.
    pub fn new(rate: u32, channels: u16) -> Self {
        let rate = u64::from(rate.max(1));
        Self {
            rate,
            channels: usize::from(channels.max(1)),
            frames: 0,
            bin_end: rate / 1000,
            current: 0.0,
            bins: Vec::new(),
        }
    }

    /// Add a block of interleaved samples.
    pub fn push(&mut self, interleaved: &[f32]) {
        for frame in interleaved.chunks(self.channels) {
            while self.frames >= self.bin_end {
                self.bins.push(self.current as f32);
                self.current = 0.0;
                self.bin_end = (self.bins.len() as u64 + 1) * self.rate / 1000;
            }
            self.current += frame.iter().map(|s| f64::from(*s) * f64::from(*s)).sum::<f64>();
            self.frames += 1;
        }
    }

    /// The recording's length in milliseconds, as pydub's `len()` gives it.
    pub fn len_ms(&self) -> u64 {
        (self.frames * 1000 + self.rate / 2) / self.rate
    }

    fn frame_at(&self, ms: u64) -> u64 {
        (ms * self.rate / 1000).min(self.frames)
    }

    /// pydub's `detect_silence`: `[start, end)` millisecond ranges whose windows are
    /// silent. `full_scale` is the source's largest amplitude (2^(bits−1)); the RMS is
    /// truncated to an integer of that scale, as `audioop.rms` does.
    pub fn silent_ranges(mut self, rule: SilenceRule, bits_per_sample: u32) -> Vec<(u64, u64)> {
        // The last millisecond, complete or not, once it holds a frame.
        if self.frames > self.bins.len() as u64 * self.rate / 1000 {
            self.bins.push(self.current as f32);
        }
        let len = self.len_ms();
        let window = rule.window_ms.max(1);
        if len < window {
            return Vec::new();
        }
        let full_scale = 2f64.powi(bits_per_sample.clamp(8, 32) as i32 - 1);
        let threshold = 10f64.powf(rule.threshold_dbfs / 20.0) * full_scale;
        let bin = |k: u64| self.bins.get(k as usize).copied().map_or(0.0, f64::from);
        let last_start = len - window;
        let mut sum: f64 = (0..window).map(bin).sum();
        let mut starts = Vec::new();
        for start in 0..=last_start {
            if start > 0 {
                sum += bin(start + window - 1) - bin(start - 1);
            }
            let frames = self.frame_at(start + window) - self.frame_at(start);
            let count = frames as f64 * self.channels as f64;
            let rms = if count > 0.0 { ((sum.max(0.0) / count).sqrt() * full_scale).floor() } else { 0.0 };
            if rms <= threshold {
                starts.push(start);
            }
        }
        merge_silent_starts(&starts, window)
    }
}

/// pydub's merge of silent window starts into ranges.
fn merge_silent_starts(starts: &[u64], window: u64) -> Vec<(u64, u64)> {
    let Some((&first, rest)) = starts.split_first() else {
        return Vec::new();
    };
    let mut ranges = Vec::new();
    let (mut range_start, mut previous) = (first, first);
    for &start in rest {
        let continuous = start == previous + 1;
        let has_gap = start > previous + window;
        if !continuous && has_gap {
            ranges.push((range_start, previous + window));
            range_start = start;
        }
        previous = start;
    }
    ranges.push((range_start, previous + window));
    ranges
}

/// pydub's `detect_nonsilent` from the silent ranges of a `len_ms` recording.
pub fn nonsilent_ranges(silent: &[(u64, u64)], len_ms: u64) -> Vec<(u64, u64)> {
    if silent.is_empty() {
        return vec![(0, len_ms)];
    }
    if silent[0] == (0, len_ms) {
        return Vec::new();
    }
    let mut ranges = Vec::new();
    let mut previous_end = 0;
    for &(start, end) in silent {
        ranges.push((previous_end, start));
        previous_end = end;
    }
    if previous_end != len_ms {
        ranges.push((previous_end, len_ms));
    }
    if ranges.first() == Some(&(0, 0)) {
        ranges.remove(0);
    }
    ranges
}

/// The cut points (ms) for chunks of at most about `max_ms`: for each target
/// `k·max_ms` (k = 1 … ⌊duration/max⌋), the midpoint of a silence (between
/// non-silent spans, or leading/trailing) nearest to it within ±25 % of `max_ms`,
/// else the target itself. Without any non-silent span the cuts are the targets.
/// Cuts at 0 or at the end are dropped.
pub fn split_points(nonsilent: &[(u64, u64)], duration_ms: u64, max_ms: u64) -> Vec<u64> {
    if max_ms == 0 {
        return Vec::new();
    }
    let targets = (1..=duration_ms / max_ms).map(|k| k * max_ms);
    let mut midpoints = Vec::new();
    if let (Some(first), Some(last)) = (nonsilent.first(), nonsilent.last()) {
        if first.0 > 0 {
            midpoints.push(first.0 / 2);
        }
        for pair in nonsilent.windows(2) {
            midpoints.push((pair[0].1 + pair[1].0) / 2);
        }
        if last.1 < duration_ms {
            midpoints.push((last.1 + duration_ms) / 2);
        }
    }
    let tolerance = max_ms / 4;
    let mut cuts: Vec<u64> = targets
        .map(|target| {
            midpoints
                .iter()
                .copied()
                .filter(|m| m.abs_diff(target) <= tolerance)
                .min_by_key(|m| m.abs_diff(target))
                .unwrap_or(target)
        })
        .filter(|cut| *cut > 0 && *cut < duration_ms)
        .collect();
    cuts.dedup();
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recording at 1 kHz (one frame per millisecond) of `spans` of noise at
    /// amplitude 0.5 in silence.
    fn recording(len_ms: u64, spans: &[(u64, u64)]) -> Loudness {
        let samples: Vec<f32> = (0..len_ms)
            .map(|ms| {
                if spans.iter().any(|(a, b)| (*a..*b).contains(&ms)) {
                    if ms % 2 == 0 { 0.5 } else { -0.5 }
                } else {
                    0.0
                }
            })
            .collect();
        let mut loudness = Loudness::new(1000, 1);
        for block in samples.chunks(97) {
            loudness.push(block);
        }
        loudness
    }

    #[test]
    fn the_python_split_example_cuts_at_a_midpoint_and_at_a_target() {
        // links.md §9: 25 s, max 10 s, speech at 2–8, 10–14 and 18–23 s → 9000 and 20000 ms.
        let nonsilent = [(2000, 8000), (10_000, 14_000), (18_000, 23_000)];
        assert_eq!(split_points(&nonsilent, 25_000, 10_000), vec![9000, 20_000]);
    }

    #[test]
    fn without_speech_the_cuts_are_the_targets() {
        // links.md §9: 12 s at max 5 s → [0–5000], [5000–10000], [10000–12000].
        assert_eq!(split_points(&[], 12_000, 5000), vec![5000, 10_000]);
        assert_eq!(split_points(&[(0, 20_000)], 20_000, 10_000), vec![10_000], "no cut at the very end");
    }

    #[test]
    fn silences_are_found_as_pydub_finds_them() {
        let loudness = recording(25_000, &[(2000, 8000), (10_000, 14_000), (18_000, 23_000)]);
        assert_eq!(loudness.len_ms(), 25_000);
        let silent = loudness.silent_ranges(SilenceRule::default(), 16);
        // Only the gaps of at least the window are silences: the 2 s gap 8–10 s is one.
        assert_eq!(silent, vec![(0, 2000), (8000, 10_000), (14_000, 18_000), (23_000, 25_000)]);
        let nonsilent = nonsilent_ranges(&silent, 25_000);
        assert_eq!(nonsilent, vec![(2000, 8000), (10_000, 14_000), (18_000, 23_000)]);
        assert_eq!(split_points(&nonsilent, 25_000, 10_000), vec![9000, 20_000]);
    }

    #[test]
    fn short_or_silent_recordings() {
        assert!(recording(1500, &[]).silent_ranges(SilenceRule::default(), 16).is_empty(), "shorter than the window");
        let silent = recording(5000, &[]).silent_ranges(SilenceRule::default(), 16);
        assert_eq!(silent, vec![(0, 5000)]);
        assert!(nonsilent_ranges(&silent, 5000).is_empty());
        assert_eq!(nonsilent_ranges(&[], 5000), vec![(0, 5000)]);
    }

    #[test]
    fn the_threshold_is_minus_40_dbfs_of_the_source_scale() {
        // 1 % of full scale is exactly the threshold: silent. 1.1 % is not.
        let quiet = |amplitude: f32| {
            let mut loudness = Loudness::new(1000, 2);
            loudness.push(&vec![amplitude; 2 * 3000]);
            loudness.silent_ranges(SilenceRule::default(), 16)
        };
        assert_eq!(quiet(0.01), vec![(0, 3000)]);
        assert!(quiet(0.011).is_empty());
    }
}
