//! A path's heartbeat round-trip times as a distribution: eight buckets
//! four times apart, from 250 µs (two hosts in one rack) to a second (a
//! satellite hop, a congested roaming link) and above, and their sum. The
//! last RTT alone hides a path that is usually fast and sometimes slow;
//! the buckets give its percentiles (Prometheus' `histogram_quantile`),
//! the sum its mean. Liveness heartbeats only: a PMTU probe's answer waits
//! on its size, not on the path.

/// Upper bounds (µs, inclusive) of the buckets but the last (above 1.024 s).
pub const BOUNDS_US: [u32; 7] = [250, 1_000, 4_000, 16_000, 64_000, 256_000, 1_024_000];

/// Heartbeat RTTs of one path: samples per bucket (saturating) and their
/// sum in µs. 40 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RttHistogram {
    /// Samples per bucket: `buckets[i]` counts RTTs at most `BOUNDS_US[i]`
    /// and above the bound before; the last, those above 1.024 s.
    pub buckets: [u32; 8],
    pub sum_us: u64,
}

impl RttHistogram {
    pub const NEW: RttHistogram = RttHistogram { buckets: [0; 8], sum_us: 0 };

    pub fn record(&mut self, rtt_us: u32) {
        let i = BOUNDS_US.partition_point(|&b| b < rtt_us);
        self.buckets[i] = self.buckets[i].saturating_add(1);
        self.sum_us = self.sum_us.saturating_add(rtt_us as u64);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|&n| n as u64).sum()
    }

    /// The upper bound (µs) of the bucket holding the `q` quantile
    /// (0 < q ≤ 1) of the samples; `None` without samples, `u32::MAX` when
    /// that bucket is the last (above 1.024 s).
    pub fn quantile_bound_us(&self, q: f64) -> Option<u32> {
        let counts: Vec<u64> = self.buckets.iter().map(|&n| n as u64).collect();
        quantile_bucket(&counts, q).map(|i| BOUNDS_US.get(i).copied().unwrap_or(u32::MAX))
    }
}

/// The index of the bucket holding the `q` quantile (0 < q ≤ 1) of samples
/// counted per bucket; `None` without samples. (`top` reads the agent's
/// histograms with it.)
pub fn quantile_bucket(counts: &[u64], q: f64) -> Option<usize> {
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return None;
    }
    let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
    let mut seen = 0;
    counts.iter().position(|&c| {
        seen += c;
        seen >= rank
    })
}

/// The label of bucket `i` as a person reads it (`≤1 ms`, `>1.024 s`).
pub fn bucket_label(i: usize) -> String {
    match BOUNDS_US.get(i) {
        Some(&b) if b < 1_000 => format!("≤{b} µs"),
        Some(&b) => format!("≤{} ms", b as f64 / 1_000.0),
        None => format!(">{} s", BOUNDS_US[BOUNDS_US.len() - 1] as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_the_bucket_whose_bound_holds_them() {
        let mut h = RttHistogram::NEW;
        for us in [0, 250, 251, 1_000, 1_001, 999_999, 1_024_000, 1_024_001, u32::MAX] {
            h.record(us);
        }
        assert_eq!(h.buckets, [2, 2, 1, 0, 0, 0, 2, 2]);
        assert_eq!(h.count(), 9);
        assert_eq!(
            h.sum_us,
            [0u64, 250, 251, 1_000, 1_001, 999_999, 1_024_000, 1_024_001, u32::MAX as u64].iter().sum::<u64>()
        );
    }

    #[test]
    fn quantiles_are_the_bounds_of_the_buckets_that_hold_them() {
        let mut h = RttHistogram::NEW;
        assert_eq!(h.quantile_bound_us(0.5), None);
        for _ in 0..90 {
            h.record(100);
        }
        for _ in 0..10 {
            h.record(20_000);
        }
        assert_eq!(h.quantile_bound_us(0.5), Some(250));
        assert_eq!(h.quantile_bound_us(0.9), Some(250));
        assert_eq!(h.quantile_bound_us(0.91), Some(64_000));
        assert_eq!(h.quantile_bound_us(1.0), Some(64_000));
        h.record(2_000_000);
        assert_eq!(h.quantile_bound_us(1.0), Some(u32::MAX));
    }

    #[test]
    fn counts_saturate() {
        let mut h = RttHistogram { buckets: [u32::MAX; 8], sum_us: u64::MAX };
        h.record(5);
        assert_eq!((h.buckets[0], h.sum_us), (u32::MAX, u64::MAX));
    }

    #[test]
    fn labels_read_as_durations() {
        let labels: Vec<String> = (0..8).map(bucket_label).collect();
        assert_eq!(labels, ["≤250 µs", "≤1 ms", "≤4 ms", "≤16 ms", "≤64 ms", "≤256 ms", "≤1024 ms", ">1.024 s"]);
    }
}
